"""Start-up time of the command line, as ratios to `import tensorflow`.

`python bench/startup.py [--workspace WS] [--rounds N]` times, in
interleaved rounds within one process tree, `python -c "import tensorflow"`,
`python -m pipeline --help` and `python -m pipeline inspect runs`, and prints
each command's median wall time and its ratio to TensorFlow's import. The
targets: `--help` at most 0.1x, `inspect runs` at most 0.3x. Ratios, not
seconds: this machine's speed varies from day to day.

`inspect runs` reads WS's ML Metadata store (default: the benchmark's 1x
workspace when it exists, else a new empty store).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = {'help': 0.1, 'inspect_runs': 0.3}


def _seconds(command: List[str], env: Dict[str, str]) -> float:
  started = time.perf_counter()
  subprocess.run(command, cwd=ROOT, env=env, check=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  return time.perf_counter() - started


def _workspace(given: str) -> str:
  if given:
    return given
  bench_ws = os.path.join(ROOT, 'bench', 'out', 'ws-1x')
  if os.path.isfile(os.path.join(bench_ws, 'metadata.sqlite')):
    return bench_ws
  sys.path.insert(0, ROOT)
  from pipeline.settings import metadata_url  # pylint: disable=g-import-not-at-top
  from pipeline.metadata import mlmd  # pylint: disable=g-import-not-at-top
  workspace = tempfile.mkdtemp(prefix='startup-bench-')
  path = os.path.join(workspace, 'metadata.sqlite')
  open(path, 'w').close()
  mlmd.open_store(metadata_url.parse(path))
  return workspace


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workspace', default='')
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--json', help='also write the figures to this file')
  args = parser.parse_args()
  workspace = _workspace(args.workspace)
  python = sys.executable
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1', TF_CPP_MIN_LOG_LEVEL='3')
  commands = {
      'import_tensorflow': [python, '-c', 'import tensorflow'],
      'help': [python, '-m', 'pipeline', '--help'],
      'inspect_runs': [python, '-m', 'pipeline', 'inspect', 'runs',
                       '--workspace', workspace],
  }
  times = {name: [] for name in commands}
  for _ in range(args.rounds):
    for name, command in commands.items():
      times[name].append(_seconds(command, env))
  medians = {name: statistics.median(values) for name, values in times.items()}
  base = medians['import_tensorflow']
  figures = {'workspace': workspace, 'rounds': args.rounds,
             'median_seconds': {k: round(v, 3) for k, v in medians.items()},
             'ratio_to_import_tensorflow': {
                 name: round(medians[name] / base, 3) for name in TARGETS},
             'targets': TARGETS}
  print(f'start-up, median of {args.rounds} interleaved rounds '
        f'(inspect runs on {workspace}):')
  print(f'  python -c "import tensorflow"  {base:6.2f} s  1.00x')
  for name, label in (('help', 'python -m pipeline --help'),
                      ('inspect_runs', 'python -m pipeline inspect runs')):
    ratio = medians[name] / base
    verdict = 'met' if ratio <= TARGETS[name] else 'MISSED'
    print(f'  {label:<31}{medians[name]:6.2f} s  {ratio:.2f}x '
          f'(target <= {TARGETS[name]}x: {verdict})')
  if args.json:
    with open(args.json, 'w', encoding='utf-8') as f:
      json.dump(figures, f, indent=2)


if __name__ == '__main__':
  main()
