"""Bench part 10, width side by side: cold runs of the default width and of a
narrower one (`--side-width`), and `bench/notebook.py` building the
narrower model, taking turns; both pushed files' bytes and latency side by
side.
"""

import argparse
import datetime
import json
import os
import shutil
import sys
from typing import Any, Dict, List

from bench.parts.common import Context
from bench.parts.common import ROOT
from bench.parts.common import latency_side_by_side
from bench.parts.common import pushed_figures
from bench.parts.common import log
from bench.parts.common import median
from bench.parts.common import pipeline_run
from bench.parts.common import run_process
from bench.parts.width_study import cascade_figures

NUMBER = 10
# The part's figures in results.json.
KEY = 'width_side_by_side'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = True
NEEDS_WORKSPACE = False


def part_width_side_by_side(data_dir: str, out: str, repeats: int,
                            steps: int, keep: bool,
                            narrow: float) -> Dict[str, Any]:
  """Part 10: the default width against a narrower one (`--side-width`),
  and the notebook script building the narrower model, taking turns: cold
  runs (ingest + run, fresh workspace), then both pushed files timed side
  by side."""
  from components.modules import model_defaults  # pylint: disable=g-import-not-at-top
  logs = os.path.join(out, 'logs')
  widths = [narrow, model_defaults.DEFAULT_WIDTH]
  sides = {f'width {w:g}': ('--model-width', str(w)) for w in widths}
  cold: Dict[str, List[Dict[str, Any]]] = {name: [] for name in sides}
  notebook: List[Dict[str, Any]] = []
  files: Dict[str, str] = {}
  for index in range(repeats):
    for name, extra in sides.items():
      tag = name.replace(' ', '')
      workspace = os.path.join(out, f'ws-side-{tag}')
      shutil.rmtree(workspace, ignore_errors=True)
      log(f'part 10: cold run, {name}, {index + 1}/{repeats}')
      result = pipeline_run(workspace, data_dir, logs, f'side-{tag}-{index}',
                            extra=extra)
      figures = pushed_figures(result['summary'])
      cold[name].append({
          'total_seconds': result['ingest_seconds'] + result['run_seconds'],
          'trainer_seconds': result['components'].get('Trainer'),
          'peak_rss_bytes': result['peak_rss_bytes'], **figures,
          **cascade_figures(result['summary'])})
      log(f"  {cold[name][-1]['total_seconds']:.1f} s, "
          f"{figures['pushed_bytes']} bytes, AUC {figures['evaluator_auc']}")
      if figures['pushed'] and index == repeats - 1:
        kept = os.path.join(out, f'side-{tag}.tflite')
        shutil.copyfile(os.path.join(figures['destination'], 'model.tflite'),
                        kept)
        files[name] = kept
      if not keep:
        shutil.rmtree(workspace, ignore_errors=True)
    log(f'part 10: notebook script, width {narrow:g}, {index + 1}/{repeats}')
    ran = run_process([sys.executable, os.path.join(ROOT, 'bench',
                                                    'notebook.py'),
                       data_dir, os.path.join(out, 'notebook-side'),
                       '--steps', str(steps), '--width', str(narrow)],
                      os.path.join(logs, f'side-notebook{index}.log'))
    notebook.append(dict(json.loads(ran['stdout'].strip().splitlines()[-1]),
                         wall_seconds=ran['seconds']))
    log(f"  notebook {ran['seconds']:.1f} s")
  latency = latency_side_by_side(files) if files else {}
  rows = {}
  for name, runs in cold.items():
    rows[name] = {key: median([r[key] for r in runs if r[key] is not None])
                  for key in ('total_seconds', 'trainer_seconds',
                              'peak_rss_bytes', 'pushed_bytes',
                              'evaluator_auc', 'accuracy')}
    for key in ('threshold', 'cascade_accuracy', 'cloud_share'):
      values = [r[key] for r in runs if r.get(key) is not None]
      rows[name][key] = median(values) if values else None
    rows[name]['latency_ms'] = latency.get(name)
  return {'measured': f'{datetime.date.today()}', 'repeats': repeats,
          'widths': widths, 'rows': rows, 'runs': cold,
          'notebook_width': narrow,
          'notebook_seconds': median([n['wall_seconds'] for n in notebook]),
          'notebook_accuracy': median([n['keras_accuracy']
                                       for n in notebook]),
          'notebook_tflite_bytes': notebook[0]['tflite_bytes']}


def _side_lines(side: Dict[str, Any]) -> List[str]:
  """Part 10's section of the report."""
  narrow, wide = (f'width {w:g}' for w in side['widths'])
  rows = side['rows']
  new, old = rows[narrow], rows[wide]

  def ratio(key):
    if new.get(key) and old.get(key):
      return f'{new[key] / old[key]:.3f}'
    return 'n/a'

  # Runs that judged a cascade (spans with families) add its columns.
  cascade = all(r.get('cascade_accuracy') is not None for r in rows.values())
  lines = ['', f'## 10. Width {side["widths"][0]:g} against '
           f'{side["widths"][1]:g}, side by side', '',
           f"Cold runs (ingest + run in a fresh workspace) at both widths, "
           f"and `bench/notebook.py` building the width "
           f"{side['notebook_width']:g} model, taking turns, "
           f"{side['repeats']} time(s) each (measured {side['measured']}); "
           'medians. Latency: both pushed files timed side by side, one '
           'thread.' + (' The cascade at 20% instruments, phase one at the '
                        'threshold its converter chose.' if cascade else ''),
           '',
           '| | cold run s | Trainer s | pushed bytes | latency ms | AUC | '
           'accuracy | ' + ('threshold | cascade accuracy | cloud share | '
                            if cascade else '') + 'peak MiB |',
           '|---|---|---|---|---|---|---|' + ('---|---|---|' if cascade
                                              else '') + '---|']
  for name, r in rows.items():
    latency = (f"{r['latency_ms']:.3f}" if r.get('latency_ms') is not None
               else 'n/a')
    lines.append(
        f"| {name} | {r['total_seconds']:.1f} | {r['trainer_seconds']:.1f} | "
        f"{r['pushed_bytes']:,.0f} | {latency} | {r['evaluator_auc']:.4f} | "
        f"{r['accuracy']:.4f} | " + (
            f"{r['threshold']:.4g} | {r['cascade_accuracy']:.4f} | "
            f"{r['cloud_share']:.4f} | " if cascade else '') +
        f"{r['peak_rss_bytes'] / 2 ** 20:,.0f} |")
  lines.append(f"| {narrow} / {wide} | {ratio('total_seconds')} | "
               f"{ratio('trainer_seconds')} | {ratio('pushed_bytes')} | "
               f"{ratio('latency_ms')} | | | " + ('| | | ' if cascade else '')
               + f"{ratio('peak_rss_bytes')} |")
  lines += ['', f"The notebook script: {side['notebook_seconds']:.1f} s, "
            f"Keras accuracy {side['notebook_accuracy']:.3f}, "
            f"{side['notebook_tflite_bytes']:,} bytes; the width "
            f"{side['widths'][0]:g} cold run takes "
            f"{new['total_seconds'] / side['notebook_seconds']:.2f}x its "
            'time.']
  return lines


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 10's section of RESULTS.md (none when not measured)."""
  return _side_lines(results[KEY]) if results.get(KEY) else []


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--side-width', type=float, default=0.5,
                      help='the narrower width part 10 runs beside the '
                      'default (default %(default)s)')


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 10; its figures."""
  return part_width_side_by_side(ctx.data_dir, ctx.out, args.repeats,
                                 args.steps, args.keep, args.side_width)
