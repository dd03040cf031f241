"""Bench part 1, Pipeline vs notebook: wall time of a cold pipeline run
(ingest + run, in a fresh workspace, as a new process), of the reruns
served from the cache, and of `bench/notebook.py` (flow_from_directory,
fit, TFLite conversion, interpreter predictions) on the same images, the
same model and the same number of steps; medians of `--repeats` runs; time
per component. The pipeline side trains two models when the data give
families (phase two, the cloud model, beside phase one); the notebook one.
"""

import argparse
import json
import os
import shutil
import sys
from typing import Any, Dict, List

from bench.parts.common import Context
from bench.parts.common import ROOT
from bench.parts.common import bytes_per_example
from bench.parts.common import log
from bench.parts.common import median
from bench.parts.common import pipeline_run
from bench.parts.common import run_process

NUMBER = 1
# The part's figures in results.json.
KEY = 'pipeline_vs_notebook'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = True
NEEDS_WORKSPACE = False


def part_pipeline_vs_notebook(data_dir: str, out: str, repeats: int,
                              steps: int, per_class: int) -> Dict[str, Any]:
  """Part 1; also leaves the first workspace for parts 2 and 3."""
  logs = os.path.join(out, 'logs')
  cold, notebook = [], []
  keep = os.path.join(out, 'ws-1x')
  reruns: Dict[str, List[float]] = {'second': [], 'third': []}
  for index in range(repeats):
    workspace = keep if index == 0 else os.path.join(out, f'ws-cold-{index}')
    shutil.rmtree(workspace, ignore_errors=True)
    log(f'part 1: cold pipeline run {index + 1}/{repeats}')
    result = pipeline_run(workspace, data_dir, logs, f'cold{index}')
    cold.append(result)
    log(f"  ingest {result['ingest_seconds']:.1f} s, run "
        f"{result['run_seconds']:.1f} s")
    for which in ('second', 'third'):
      again = pipeline_run(workspace, data_dir, logs, f'{which}{index}',
                           ingest=False)
      reruns[which].append(again['run_seconds'])
      log(f"  {which} run {again['run_seconds']:.1f} s")
    if workspace != keep:
      shutil.rmtree(workspace, ignore_errors=True)
    log(f'part 1: notebook script run {index + 1}/{repeats}')
    ran = run_process([sys.executable, os.path.join(ROOT, 'bench',
                                                    'notebook.py'),
                       data_dir, os.path.join(out, 'notebook'), '--steps',
                       str(steps)],
                      os.path.join(logs, f'notebook{index}.log'))
    figures = json.loads(ran['stdout'].strip().splitlines()[-1])
    figures['wall_seconds'] = ran['seconds']
    figures['peak_rss_bytes'] = ran['peak_rss_bytes']
    notebook.append(figures)
    log(f"  notebook {ran['seconds']:.1f} s")

  components = sorted({c for r in cold for c in r['components']},
                      key=lambda c: list(cold[0]['components']).index(c)
                      if c in cold[0]['components'] else 99)
  cold_total = median([r['ingest_seconds'] + r['run_seconds'] for r in cold])
  return {
      'repeats': repeats,
      'images': 2 * per_class,
      'cold_ingest_seconds': median([r['ingest_seconds'] for r in cold]),
      'cold_run_seconds': median([r['run_seconds'] for r in cold]),
      'cold_total_seconds': cold_total,
      'second_run_seconds': median(reruns['second']),
      'cached_run_seconds': median(reruns['third']),
      'components': {c: median([r['components'].get(c, 0.0) for r in cold])
                     for c in components},
      'notebook_seconds': median([n['wall_seconds'] for n in notebook]),
      'notebook_phases': {k: median([n[k] for n in notebook]) for k in (
          'import_seconds', 'fit_seconds', 'keras_eval_seconds',
          'convert_seconds', 'tflite_predict_seconds')},
      'notebook_steps': notebook[0]['train_steps'],
      'notebook_accuracy': median([n['keras_accuracy'] for n in notebook]),
      'notebook_tflite_accuracy': median([n['tflite_accuracy']
                                          for n in notebook]),
      'notebook_tflite_bytes': notebook[0]['tflite_bytes'],
      'pipeline_metrics': cold[0]['summary'].get('metrics'),
      'transformed_bytes': bytes_per_example(cold[0]['summary']),
      'pipeline_pushed': cold[0]['summary'].get('pushed'),
      'cold_runs': [{k: v for k, v in r.items() if k != 'summary'}
                    for r in cold],
      'notebook_runs': notebook,
  }


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 1's section of RESULTS.md (none when not measured)."""
  one = results.get('pipeline_vs_notebook')
  if not one:
    return []
  lines: List[str] = []
  lines += ['', '## 1. Pipeline vs notebook', '',
            f"Same {one['images']:,} images, same model, "
            f"{one['notebook_steps']} training steps of 32 on both sides; "
            f"median of {one['repeats']} runs, each a new process.", '',
            '| | seconds |', '|---|---|',
            f"| pipeline, cold: ingest | {one['cold_ingest_seconds']:.1f} |",
            f"| pipeline, cold: run | {one['cold_run_seconds']:.1f} |",
            f"| **pipeline, cold: total** | **{one['cold_total_seconds']:.1f}"
            '** |',
            f"| pipeline, second run (Evaluator and pusher run again, "
            f"against the new baseline) | {one['second_run_seconds']:.1f} |",
            f"| **pipeline, cached rerun** | "
            f"**{one['cached_run_seconds']:.1f}** |",
            f"| **notebook script** | **{one['notebook_seconds']:.1f}** |",
            '', 'Time per component of the cold run (median):', '',
            '| component | seconds |', '|---|---|']
  lines += [f'| {c} | {s:.1f} |' for c, s in one['components'].items()]
  phases = one['notebook_phases']
  lines += ['', 'The notebook script by phase (median): ' + ', '.join(
      f"{k.replace('_seconds', '').replace('_', ' ')} {v:.1f} s"
      for k, v in phases.items()) + '.', '',
            'What each side gives: the notebook ends with a `.tflite` file '
            f"({one['notebook_tflite_bytes']:,} bytes; Keras accuracy "
            f"{one['notebook_accuracy']:.3f}, TFLite accuracy "
            f"{one['notebook_tflite_accuracy']:.3f} on its 20% "
            'validation subset). The pipeline also computes statistics, '
            'validates them against the schema, stops on bad data, '
            'evaluates against thresholds and the previous model, checks '
            'the TFLite model against the SavedModel before pushing it '
            'atomically with a manifest, records everything in ML Metadata, '
            'and reruns from its cache: evaluation '
            + ', '.join(f'{k} {v}' for k, v in sorted(
                (one.get('pipeline_metrics') or {}).items())) + '.']
  phase_two = {c: s for c, s in one['components'].items()
               if c.startswith('PhaseTwo')}
  if phase_two:
    # Images in family folders: the pipeline side trains two models.
    total = one['cold_run_seconds']
    lines += ['', 'The pipeline side trains two models, the notebook one: '
              'the data give families, so the cold run also trains, judges, '
              'proves in KServe\'s model server and pushes phase two (' +
              ', '.join(f'{c} {s:.1f} s' for c, s in phase_two.items()) +
              f'), {sum(phase_two.values()):.1f} s of the run\'s {total:.1f} '
              f's (components overlap little: the local runner runs one at a '
              f'time).']
  return lines


def prepare(ctx: Context) -> Dict[str, Any]:
  """Parts 2-4 without part 1: one cold run of a workspace on the default
  data, recorded as part 1's first cold run."""
  log('preparing a workspace for parts 2-4')
  one = pipeline_run(ctx.workspace, ctx.data_dir,
                     os.path.join(ctx.out, 'logs'), 'prepare')
  return {'cold_runs': [{k: v for k, v in one.items() if k != 'summary'}],
          'transformed_bytes': bytes_per_example(one['summary'])}


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  del parser  # none


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 1; its figures."""
  return part_pipeline_vs_notebook(ctx.data_dir, ctx.out, args.repeats,
                                   args.steps, args.per_class)
