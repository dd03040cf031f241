"""Bench part 8, model search: on the 1x default data, a default run and a run
with `--tune true --tune-trials 6` under a size budget (`--search-budget`,
default half the default model's bytes): time per trial, and the chosen
model against the default one in bytes, AUC and latency (both pushed files
timed side by side, taking turns).
"""

import argparse
import datetime
import os
import shutil
from typing import Any, Dict, List

from bench.parts.common import Context
from bench.parts.common import last_json
from bench.parts.common import latency_side_by_side
from bench.parts.common import pushed_figures
from bench.parts.common import cli
from bench.parts.common import log
from bench.parts.common import median
from bench.parts.common import pipeline_run
from bench.parts.common import run_process

NUMBER = 8
# The part's figures in results.json.
KEY = 'search'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = True
NEEDS_WORKSPACE = False


def part_search(data_dir: str, out: str, trials: int, budget: int,
                keep: bool) -> Dict[str, Any]:
  """Part 8: the device-aware model search against the default model."""
  logs = os.path.join(out, 'logs')
  runs: Dict[str, Dict[str, Any]] = {}
  workspace = os.path.join(out, 'ws-search-default')
  shutil.rmtree(workspace, ignore_errors=True)
  log('part 8: default run')
  default = pipeline_run(workspace, data_dir, logs, 'search-default')
  runs['default'] = dict(pushed_figures(default['summary']),
                         run_seconds=default['run_seconds'])
  budget = budget or int(runs['default']['pushed_bytes']) // 2
  tuned_ws = os.path.join(out, 'ws-search-tuned')
  shutil.rmtree(tuned_ws, ignore_errors=True)
  log(f'part 8: --tune true --tune-trials {trials} --max-tflite-bytes '
      f'{budget}')
  tuned = pipeline_run(tuned_ws, data_dir, logs, 'search-tuned', extra=(
      '--tune', 'true', '--tune-trials', str(trials),
      '--max-tflite-bytes', str(budget)))
  runs['tuned'] = dict(pushed_figures(tuned['summary']),
                       run_seconds=tuned['run_seconds'],
                       search_seconds=tuned['components'].get('ModelSearch'),
                       trainer_seconds=tuned['components'].get('Trainer'),
                       search=tuned['summary'].get('search'))
  runs['default']['trainer_seconds'] = default['components'].get('Trainer')
  listed = run_process(cli('inspect', 'trials', '--workspace', tuned_ws,
                           '--json'),
                       os.path.join(logs, 'search-trials.log'))
  table = last_json(listed['stdout'])
  files = {name: os.path.join(figures['destination'], 'model.tflite')
           for name, figures in runs.items() if figures['pushed']}
  latency = latency_side_by_side(files) if files else {}
  for name, value in latency.items():
    runs[name]['latency_ms'] = value
  log(f"  chosen trial {table.get('chosen_trial')}: "
      f"{runs['tuned'].get('pushed_bytes')} bytes against "
      f"{runs['default'].get('pushed_bytes')}")
  if not keep:
    for path in (workspace, tuned_ws):
      shutil.rmtree(path, ignore_errors=True)
  return {'measured': f'{datetime.date.today()}', 'budget': budget,
          'trials': table['trials'], 'chosen_trial': table['chosen_trial'],
          'runs': runs}


def _search_lines(search: Dict[str, Any]) -> List[str]:
  """Part 8's section of the report."""
  runs = search['runs']
  default, tuned = runs['default'], runs['tuned']
  done = [t for t in search['trials'] if t.get('auc') is not None]
  seconds = [t['seconds'] for t in done]
  lines = ['', '## 8. Model search', '',
           f"The 1x default data: a default run, and a run with `--tune true "
           f"--tune-trials {len(search['trials'])} --max-tflite-bytes "
           f"{search['budget']}` (measured {search['measured']}). The search "
           f"took {tuned.get('search_seconds') or 0:.1f} s, "
           f"{median(seconds):.1f} s per trial (median; each trains the "
           'trial\'s short number of steps, then exports, converts and times '
           'its model).', '',
           '| trial | width | dropout | learning rate | TFLite bytes | '
           'latency ms | AUC (short training) | within budget |',
           '|---|---|---|---|---|---|---|---|']
  for t in search['trials']:
    hp = t.get('hyperparameters', {})
    mark = ' (chosen)' if t['trial_id'] == search['chosen_trial'] else ''
    lines.append(
        f"| {t['trial_id']}{mark} | {hp.get('width')} | {hp.get('dropout')} "
        f"| {hp.get('learning_rate', 0):.2e} | "
        f"{t.get('tflite_bytes', 0):,} | "
        f"{t.get('latency_ms_median', float('nan')):.3f} | "
        f"{t.get('auc', float('nan')):.4f} | "
        f"{'yes' if t.get('within_budget') else 'no'} |")

  def cell(figures, key, form):
    value = figures.get(key)
    return 'n/a' if value is None else format(value, form)

  lines += ['', 'The pushed models (the chosen settings trained the full '
            'number of steps; latency: both files side by side, one thread, '
            'the median of 5 rounds of 300 invokes, taking turns):', '',
            '| | default | searched | searched / default |',
            '|---|---|---|---|']
  for key, label, form in (('pushed_bytes', 'TFLite bytes', ',.0f'),
                           ('latency_ms', 'latency ms', '.3f'),
                           ('evaluator_auc', 'AUC (Evaluator)', '.4f'),
                           ('tflite_auc', 'AUC (TFLite, pusher)', '.4f'),
                           ('accuracy', 'accuracy (Evaluator)', '.4f'),
                           ('trainer_seconds', 'Trainer s', '.1f'),
                           ('run_seconds', 'run s', '.1f')):
    a, b = default.get(key), tuned.get(key)
    ratio = (f'{b / a:.3f}' if a and b is not None
             and key not in ('evaluator_auc', 'tflite_auc', 'accuracy')
             else (f'{b - a:+.4f}' if a is not None and b is not None
                   else 'n/a'))
    lines.append(f'| {label} | {cell(default, key, form)} | '
                 f'{cell(tuned, key, form)} | {ratio} |')
  lines += ['', 'AUC and accuracy rows give the difference (searched minus '
            'default), not a ratio.']
  return lines


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 8's section of RESULTS.md (none when not measured)."""
  return _search_lines(results[KEY]) if results.get(KEY) else []


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--search-trials', type=int, default=6,
                      help='trials of parts 8 and 13 (default %(default)s)')
  parser.add_argument('--search-budget', type=int, default=0,
                      help="part 8's --max-tflite-bytes (default: half the "
                      "default model's bytes)")


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 8; its figures."""
  return part_search(ctx.data_dir, ctx.out, args.search_trials,
                     args.search_budget, args.keep)
