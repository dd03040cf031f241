"""Bench part 9, width study: every width the search offers, trained on the 1x
default data at the default steps with `--width-seeds` seeds each, in one
workspace (Transform runs once; each run trains, evaluates and pushes):
eval AUC and accuracy (mean and spread), pushed bytes, latency, Trainer
seconds and the run's peak memory, per width, and the width the default's
rule (:data:`WIDTH_RULE`) picks from them; a chart in
`bench/width_study.svg`.
"""

import argparse
import datetime
import math
import os
import shutil
import statistics
from typing import Any, Dict, List, Sequence

from bench.parts.common import Context
from bench.parts.common import RUN_ARGS
from bench.parts.common import pushed_figures
from bench.parts.common import log
from bench.parts.common import pipeline_run

NUMBER = 9
# The part's figures in results.json.
KEY = 'width_study'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = True
NEEDS_WORKSPACE = False


# The rule the default width follows, applied to part 9's table: by the
# cascade's measure when the runs judged one (spans with families), else
# by phase one's own figures.
WIDTH_RULE = ('the narrowest width whose mean end-to-end accuracy at 20% '
              'instruments (phase one at its chosen threshold, then phase '
              'two) is within 0.005 of the widest\'s, whose mean cloud share '
              'there is at most 0.01 above the widest\'s, and whose mean '
              'eval AUC is within 0.005 of the widest\'s')
PHASE_ONE_RULE = ('the narrowest width whose mean eval AUC and mean accuracy '
                  'are both within 0.005 of the widest\'s, and whose spreads '
                  '(max - min over the seeds) are no larger than the '
                  'widest\'s')
_SHARE_TOLERANCE = 0.01


_WIDTH_TOLERANCE = 0.005


# Every model must bless and push to be measured, whatever its quality.
_STUDY_GATES = ('--min-auc', '0', '--min-accuracy', '0', '--max-auc-drop',
                '1', '--max-accuracy-drop', '1',
                '--cascade-max-loss-vs-cloud', '1',
                '--cascade-max-cloud-share', '1',
                '--cascade-max-accuracy-drop', '1')
# The cascade's figures a run records, by the row's name for them.
CASCADE_FIGURES = {'cascade_accuracy': 'accuracy_pi_0.2',
                   'cloud_share': 'cloud_share_pi_0.2'}


def cascade_figures(summary: Dict[str, Any]) -> Dict[str, Any]:
  """A run's cascade figures at 20% instruments by their row names (None
  where the run judged no cascade), and phase one's threshold."""
  cascade = (summary.get('phase_two') or {}).get('cascade') or {}
  return {'threshold': (summary.get('pushed') or {}).get('threshold'),
          **{name: cascade.get(key) for name, key in CASCADE_FIGURES.items()}}


def width_rows(runs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
  """Part 9's runs, one row per width (widest first): mean and spread
  (max - min) of AUC and accuracy over the seeds, and the means of the
  rest."""
  rows = []
  for width in sorted({r['width'] for r in runs}, reverse=True):
    mine = [r for r in runs if r['width'] == width]
    row: Dict[str, Any] = {'width': width, 'seeds': len(mine)}
    for key in ('auc', 'accuracy', 'threshold', *CASCADE_FIGURES):
      values = [r[key] for r in mine if r.get(key) is not None]
      if values:
        row[key] = statistics.mean(values)
        row[f'{key}_spread'] = max(values) - min(values)
    for key in ('pushed_bytes', 'latency_ms', 'trainer_seconds',
                'peak_rss_bytes'):
      row[key] = statistics.mean(r[key] for r in mine)
    rows.append(row)
  return rows


def by_cascade(rows: List[Dict[str, Any]]) -> bool:
  """Whether every row has the cascade's figures (:data:`WIDTH_RULE`
  applies; else :data:`PHASE_ONE_RULE`)."""
  return all('cascade_accuracy' in r and 'cloud_share' in r for r in rows)


def chosen_width(rows: List[Dict[str, Any]]) -> float:
  """The width :data:`WIDTH_RULE` (or, for runs that judged no cascade,
  :data:`PHASE_ONE_RULE`) picks from :func:`width_rows`."""
  widest = max(rows, key=lambda r: r['width'])
  if by_cascade(rows):
    return min(r['width'] for r in rows
               if r['cascade_accuracy'] >= (widest['cascade_accuracy'] -
                                            _WIDTH_TOLERANCE)
               and r['cloud_share'] <= widest['cloud_share'] +
               _SHARE_TOLERANCE
               and r['auc'] >= widest['auc'] - _WIDTH_TOLERANCE)
  fitting = [r for r in rows
             if r['auc'] >= widest['auc'] - _WIDTH_TOLERANCE
             and r['accuracy'] >= widest['accuracy'] - _WIDTH_TOLERANCE
             and r['auc_spread'] <= widest['auc_spread'] + 1e-12
             and r['accuracy_spread'] <= widest['accuracy_spread'] + 1e-12]
  return min(r['width'] for r in fitting)


def part_width_study(data_dir: str, out: str, seeds: int, keep: bool,
                     widths: Sequence[float] = ()) -> Dict[str, Any]:
  """Part 9: `widths` (default: every width the search offers), `seeds`
  seeds each."""
  from components.modules import search  # pylint: disable=g-import-not-at-top
  widths = widths or search.WIDTHS
  logs = os.path.join(out, 'logs')
  workspace = os.path.join(out, 'ws-widths')
  shutil.rmtree(workspace, ignore_errors=True)
  runs = []
  for width in sorted(widths, reverse=True):
    for seed in range(seeds):
      log(f'part 9: width {width}, seed {seed}')
      result = pipeline_run(workspace, data_dir, logs,
                            f'width{width}-seed{seed}', ingest=not runs,
                            extra=('--model-width', str(width), '--seed',
                                   str(seed), *_STUDY_GATES))
      figures = pushed_figures(result['summary'])
      pushed = result['summary'].get('pushed') or {}
      runs.append({'width': width, 'seed': seed,
                   'auc': figures['evaluator_auc'],
                   'accuracy': figures['accuracy'],
                   **cascade_figures(result['summary']),
                   'pushed_bytes': figures['pushed_bytes'],
                   'latency_ms': pushed.get('latency_ms_median'),
                   'trainer_seconds': result['components'].get('Trainer'),
                   'peak_rss_bytes': result['peak_rss_bytes']})
      log(f"  AUC {figures['evaluator_auc']}, {figures['pushed_bytes']} "
          f"bytes, Trainer {result['components'].get('Trainer')} s")
  if not keep:
    shutil.rmtree(workspace, ignore_errors=True)
  rows = width_rows(runs)
  return {'measured': f'{datetime.date.today()}', 'seeds': seeds,
          'steps': int(RUN_ARGS[1]) if RUN_ARGS else None, 'runs': runs,
          'rows': rows,
          'rule': WIDTH_RULE if by_cascade(rows) else PHASE_ONE_RULE,
          'chosen': chosen_width(rows)}


def width_chart(rows: List[Dict[str, Any]]) -> str:
  """Part 9's chart as SVG: AUC and accuracy (mean, with the seeds' spread)
  and pushed bytes against width."""
  left, top, width, height = 60, 20, 420, 160
  widths = sorted(r['width'] for r in rows)
  lows = [min(r['auc'] - r['auc_spread'], r['accuracy'] -
              r['accuracy_spread']) for r in rows]
  low = max(0.0, math.floor(min(lows) * 50) / 50)
  most = max(r['pushed_bytes'] for r in rows)

  def x(value):
    return left + (value - widths[0]) / (widths[-1] - widths[0] or 1) * width

  def y(value, lo=low, hi=1.0):
    return top + height - (value - lo) / (hi - lo or 1) * height

  parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 70}"'
           f' height="{top + height + 50}" font-family="sans-serif" '
           'font-size="11">',
           f'<rect x="{left}" y="{top}" width="{width}" height="{height}" '
           'fill="none" stroke="#999"/>']
  for key, colour in (('auc', '#c0392b'), ('accuracy', '#2c6fbb')):
    points = ' '.join(f'{x(r["width"]):.1f},{y(r[key]):.1f}'
                      for r in sorted(rows, key=lambda r: r['width']))
    parts.append(f'<polyline points="{points}" fill="none" '
                 f'stroke="{colour}" stroke-width="2"/>')
    for r in rows:
      parts.append(f'<line x1="{x(r["width"]):.1f}" x2="{x(r["width"]):.1f}" '
                   f'y1="{y(r[key] - r[key + "_spread"] / 2):.1f}" '
                   f'y2="{y(r[key] + r[key + "_spread"] / 2):.1f}" '
                   f'stroke="{colour}"/>')
  bytes_points = ' '.join(
      f'{x(r["width"]):.1f},{y(r["pushed_bytes"], 0, most):.1f}'
      for r in sorted(rows, key=lambda r: r['width']))
  parts.append(f'<polyline points="{bytes_points}" fill="none" '
               'stroke="#777" stroke-dasharray="4 3"/>')
  for value in widths:
    parts.append(f'<text x="{x(value):.1f}" y="{top + height + 15}" '
                 f'text-anchor="middle">{value:g}</text>')
  for value in (low, (low + 1) / 2, 1.0):
    parts.append(f'<text x="{left - 5}" y="{y(value) + 4:.1f}" '
                 f'text-anchor="end">{value:.2f}</text>')
  parts.append(f'<text x="{left + width + 5}" y="{top + 10}">'
               f'{most / 1000:,.0f} kB</text>')
  parts.append(f'<text x="{left + width / 2}" y="{top + height + 35}" '
               'text-anchor="middle">width (red: AUC, blue: accuracy, '
               'bars: spread over seeds; dashed: pushed bytes)</text>')
  parts.append('</svg>')
  return '\n'.join(parts) + '\n'


def _threshold(row: Dict[str, Any]) -> str:
  """A row's mean threshold for the table, or n/a (runs before it was
  recorded)."""
  return f"{row['threshold']:.4g}" if row.get('threshold') is not None \
      else 'n/a'


def _width_lines(study: Dict[str, Any]) -> List[str]:
  """Part 9's section of the report."""
  cascade = by_cascade(study['rows'])
  studied = ', '.join(f"{r['width']:g}" for r in study['rows'])
  lines = ['', '## 9. Width study', '',
           f"Widths {studied} (of those the model search offers), on the 1x "
           f"default data at "
           f"{study['steps'] or 'the default'} steps, {study['seeds']} seeds "
           f"each (measured {study['measured']}); means over the seeds, "
           'spread = max - min. Every model was let through the gates to be '
           'measured.' + (' The cascade columns are at 20% instruments, '
                          "phase one at the threshold its converter chose "
                          'for --phase-one-recall, then phase two (trained '
                          'once a seed, the same for every width).'
                          if cascade else ''), '',
           '| width | AUC | AUC spread | accuracy | accuracy spread | ' +
           ('threshold | cascade accuracy | cloud share | ' if cascade
            else '') +
           'pushed bytes | latency ms | Trainer s | peak MiB |',
           '|---|---|---|---|---|' + ('---|---|---|' if cascade else '') +
           '---|---|---|---|']
  for r in study['rows']:
    lines.append(
        f"| {r['width']:g} | {r['auc']:.4f} | {r['auc_spread']:.4f} | "
        f"{r['accuracy']:.4f} | {r['accuracy_spread']:.4f} | " +
        (_threshold(r) + f" | {r['cascade_accuracy']:.4f} | "
         f"{r['cloud_share']:.4f} | "
         if cascade else '') +
        f"{r['pushed_bytes']:,.0f} | {r['latency_ms']:.3f} | "
        f"{r['trainer_seconds']:.1f} | "
        f"{r['peak_rss_bytes'] / 2 ** 20:,.0f} |")
  lines += ['', f"The rule: {WIDTH_RULE if cascade else PHASE_ONE_RULE}. It "
            f"picks width **{chosen_width(study['rows']):g}**.", '',
            '![AUC, accuracy and bytes against width](width_study.svg)']
  return lines


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 9's section of RESULTS.md (none when not measured)."""
  return _width_lines(results[KEY]) if results.get(KEY) else []


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--width-seeds', type=int, default=3,
                      help='seeds per width of part 9 (default %(default)s)')
  parser.add_argument('--widths', default='',
                      help='comma-separated widths of part 9 (default: '
                      'every width the model search offers)')


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 9; its figures."""
  return part_width_study(
      ctx.data_dir, ctx.out, args.width_seeds, args.keep,
      tuple(float(w) for w in args.widths.split(',') if w.strip()))
