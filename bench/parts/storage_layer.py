"""Bench part 6, storage layer: a cold default run (ingest + run, local disk,
SQLite) of this checkout against the same of `--baseline`, the commit
before every file went through `components/common/storage.py` and ML
Metadata through a URL; the two take turns, `--repeats` times each, on the
same data. The local default must stay within 5%.
"""

import argparse
import datetime
import os
import shutil
import subprocess
from typing import Any, Dict, List

from bench.parts.common import Context
from bench.parts.common import ROOT
from bench.parts.common import log
from bench.parts.common import median
from bench.parts.common import pipeline_run

NUMBER = 6
# The part's figures in results.json.
KEY = 'storage_layer'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = True
NEEDS_WORKSPACE = False


def part_storage_layer(data_dir: str, out: str, repeats: int,
                       baseline: str) -> Dict[str, Any]:
  """Part 6: cold default runs of this checkout and of `baseline`, in turns.
  """
  logs = os.path.join(out, 'logs')
  source = os.path.join(out, 'baseline-src')
  shutil.rmtree(source, ignore_errors=True)
  os.makedirs(source)
  commit = subprocess.run(['git', 'rev-parse', '--short', baseline], cwd=ROOT,
                          capture_output=True, text=True,
                          check=True).stdout.strip()
  archive = subprocess.run(['git', 'archive', commit], cwd=ROOT,
                           capture_output=True, check=True).stdout
  subprocess.run(['tar', '-x', '-C', source], input=archive, check=True)
  runs: Dict[str, List[Dict[str, Any]]] = {'baseline': [], 'current': []}
  for index in range(repeats):
    # Alternating, and each side first in turn, so drift of the machine
    # falls on both.
    order = ['baseline', 'current'] if index % 2 == 0 else [
        'current', 'baseline']
    for side in order:
      workspace = os.path.join(out, f'ws-storage-{side}')
      shutil.rmtree(workspace, ignore_errors=True)
      log(f'part 6: cold run of {side} {index + 1}/{repeats}')
      result = pipeline_run(workspace, data_dir, logs,
                            f'storage-{side}{index}',
                            root=source if side == 'baseline' else ROOT)
      result.pop('summary')
      result['total_seconds'] = (result['ingest_seconds']
                                 + result['run_seconds'])
      runs[side].append(result)
      log(f"  ingest {result['ingest_seconds']:.1f} s, run "
          f"{result['run_seconds']:.1f} s")
      shutil.rmtree(workspace, ignore_errors=True)
  shutil.rmtree(source, ignore_errors=True)
  medians = {side: {key: median([r[key] for r in rows]) for key in (
      'ingest_seconds', 'run_seconds', 'total_seconds', 'peak_rss_bytes')}
             for side, rows in runs.items()}
  return {'baseline': commit, 'repeats': repeats,
          'measured': f'{datetime.date.today()}', 'medians': medians,
          'runs': runs}


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 6's section of RESULTS.md (none when not measured)."""
  storage = results.get('storage_layer')
  if not storage:
    return []
  lines: List[str] = []
  lines += ['', '## 6. Storage layer', '',
            f"A cold default run (ingest + run, local disk, SQLite) of this "
            f"checkout and of commit {storage['baseline']}, before the "
            "storage layer and the metadata URL, taking turns, "
            f"{storage['repeats']} times each (measured "
            f"{storage['measured']}). Medians:", '',
            '| | before | now | ratio |', '|---|---|---|---|']
  before, now = storage['medians']['baseline'], storage['medians']['current']
  for key, label in (('ingest_seconds', 'ingest s'), ('run_seconds',
                                                      'run s'),
                     ('total_seconds', '**ingest + run s**')):
    lines.append(f'| {label} | {before[key]:.1f} | {now[key]:.1f} | '
                 f'{now[key] / before[key]:.3f} |')
  # The Trainer runs the same code on a local disk before and after, and
  # its time alone varies most on this machine (see part 5).
  rest = {side: median([r['total_seconds'] - r['components'].get(
      'Trainer', 0.0) for r in rows])
          for side, rows in storage['runs'].items()}
  trainer = {side: median([r['components'].get('Trainer', 0.0)
                           for r in rows])
             for side, rows in storage['runs'].items()}
  lines.append(f"| Trainer s | {trainer['baseline']:.1f} | "
               f"{trainer['current']:.1f} | "
               f"{trainer['current'] / trainer['baseline']:.3f} |")
  lines.append(f"| ingest + run without the Trainer s | "
               f"{rest['baseline']:.1f} | {rest['current']:.1f} | "
               f"{rest['current'] / rest['baseline']:.3f} |")
  lines.append(f"| peak memory MiB | {before['peak_rss_bytes'] / 2**20:,.0f}"
               f" | {now['peak_rss_bytes'] / 2**20:,.0f} | "
               f"{now['peak_rss_bytes'] / before['peak_rss_bytes']:.3f} |")
  return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--baseline', default='84ec98d',
                      help='commit part 6 compares with (default %(default)s, '
                      'the last before the storage layer)')


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 6; its figures."""
  return part_storage_layer(ctx.data_dir, ctx.out, args.repeats, args.baseline)
