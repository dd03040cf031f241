"""Bench part 13, the board: the default model in int8 and the search under a
256 KB arena budget; TensorFlow Lite Micro's arena and latency per image,
the outputs against LiteRT's, the C array compiled.
"""

import argparse
import datetime
import os
import shutil
import subprocess
from typing import Any, Dict, List

from bench.parts.common import Context
from bench.parts.common import last_json
from bench.parts.common import pushed_figures
from bench.parts.common import cli
from bench.parts.common import log
from bench.parts.common import pipeline_run
from bench.parts.common import run_process

NUMBER = 13
# The part's figures in results.json.
KEY = 'board'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = True
NEEDS_WORKSPACE = False


def _board_figures(summary: Dict[str, Any]) -> Dict[str, Any]:
  """A run's pushed int8 model as a board sees it."""
  pushed = summary.get('pushed') or {}
  return dict(pushed_figures(summary), **{
      name: pushed.get(name) for name in (
          'arena_bytes', 'micro_latency_ms_median', 'micro_identical',
          'micro_max_difference_xnnpack', 'micro_examples',
          'latency_ms_median', 'reason')})


def part_board(data_dir: str, out: str, trials: int, arena_budget: int,
               keep: bool) -> Dict[str, Any]:
  """Part 13: the board. The default model in int8, then the search under
  an arena budget (`--quantization int8 --tune true --max-arena-bytes`):
  each pushed model's TensorFlow Lite Micro arena and latency per image
  (TFLM's reference kernels on this machine), its outputs against LiteRT's
  on the pusher's eval sample, and its C array compiled."""
  logs = os.path.join(out, 'logs')
  runs: Dict[str, Dict[str, Any]] = {}
  table: Dict[str, Any] = {}
  for name, extra in (
      ('default', ('--quantization', 'int8')),
      ('searched', ('--quantization', 'int8', '--tune', 'true',
                    '--tune-trials', str(trials), '--max-arena-bytes',
                    str(arena_budget)))):
    workspace = os.path.join(out, f'ws-board-{name}')
    shutil.rmtree(workspace, ignore_errors=True)
    log(f"part 13: {name}: {' '.join(extra)}")
    ran = pipeline_run(workspace, data_dir, logs, f'board-{name}', extra=extra)
    runs[name] = dict(_board_figures(ran['summary']),
                      run_seconds=ran['run_seconds'])
    folder = runs[name]['destination']
    if folder:
      compiled = subprocess.run(
          ['c++', '-std=c++17', '-c', '-o', os.path.join(out, f'{name}.o'),
           os.path.join(folder, 'model_data.cc')],
          capture_output=True, text=True, check=False)
      runs[name]['c_array_compiles'] = compiled.returncode == 0
    if name == 'searched':
      listed = run_process(cli('inspect', 'trials', '--workspace', workspace,
                               '--json'),
                           os.path.join(logs, 'board-trials.log'))
      table = last_json(listed['stdout'])
    log(f"  arena {runs[name].get('arena_bytes')}, TFLM "
        f"{runs[name].get('micro_latency_ms_median')} ms")
    if not keep:
      shutil.rmtree(workspace, ignore_errors=True)
  return {'measured': f'{datetime.date.today()}', 'budget': arena_budget,
          'runs': runs, 'trials': table.get('trials', []),
          'chosen_trial': table.get('chosen_trial')}


def _board_lines(board: Dict[str, Any]) -> List[str]:
  """Part 13's section of the report."""
  lines = ['', '## 13. The board: TensorFlow Lite Micro', '',
           f"Measured {board['measured']}, default data, int8. The default "
           'model, then the search under an arena budget of '
           f"{board['budget']:,} bytes. Arena: the smallest TFLM tensor arena "
           'that runs the pushed file; TFLM ms: one invoke with its reference '
           'kernels on this machine (a board is slower, this ranks models); '
           'identical: the share of the pusher\'s eval sample whose outputs '
           'equal LiteRT\'s builtin kernels bit for bit.', '',
           '| model | file bytes | arena bytes | TFLM ms/image | LiteRT ms '
           '| identical | AUC | C array compiles |',
           '|---|---|---|---|---|---|---|---|']
  for name, run in board['runs'].items():
    def cell(key, fmt='{:,}'):
      value = run.get(key)
      return fmt.format(value) if value is not None else 'n/a'
    lines.append(
        f"| {name} | {cell('pushed_bytes')} | {cell('arena_bytes')} | "
        f"{cell('micro_latency_ms_median', '{:.1f}')} | "
        f"{cell('latency_ms_median', '{:.3f}')} | "
        f"{cell('micro_identical', '{:.0%}')} | "
        f"{cell('evaluator_auc', '{:.4f}')} | "
        f"{run.get('c_array_compiles', 'n/a')} |")
  if board['trials']:
    lines += ['', 'The trials of the search (`inspect trials`):', '',
              '| trial | width | file bytes | arena bytes | AUC | within '
              'budget |', '|---|---|---|---|---|---|']
    for trial in board['trials']:
      mark = ' (chosen)' if trial['trial_id'] == board['chosen_trial'] else ''
      lines.append(
          f"| {trial['trial_id']}{mark} | "
          f"{trial.get('hyperparameters', {}).get('width')} | "
          f"{trial.get('tflite_bytes', 0):,} | "
          f"{trial.get('arena_bytes', -1):,} | {trial.get('auc', 0):.4f} | "
          f"{'yes' if trial.get('within_budget') else 'no'} |")
  return lines


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 13's section of RESULTS.md (none when not measured)."""
  return _board_lines(results[KEY]) if results.get(KEY) else []


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--arena-budget', type=int, default=262_144,
                      help='part 13: the arena budget of the search '
                      '(default %(default)s, 256 KB)')


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 13; its figures."""
  return part_board(ctx.data_dir, ctx.out, args.search_trials,
                    args.arena_budget, args.keep)
