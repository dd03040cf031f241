"""Bench part 7, beam profiles: a cold run (ingest + run) with `--beam local`
and with `--beam portable` (every DoFn in SDK worker processes of a worker
pool) at 1x and 8x the default data, taking turns: time per component and
peak memory of the whole process tree (runner, pool and its workers). No
target; it shows what the portable profile costs on one machine.
"""

import argparse
import datetime
import os
import shutil
from typing import Any, Dict, List

from bench.parts.common import Context
from bench.parts.common import log
from bench.parts.common import pipeline_run
from bench.parts.common import synth

NUMBER = 7
# The part's figures in results.json.
KEY = 'beam_profiles'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = False
NEEDS_WORKSPACE = False


def part_beam_profiles(out: str, factors: List[int], per_class: int,
                       keep: bool) -> Dict[str, Any]:
  """Part 7: cold runs with the local and the portable Beam profile."""
  logs = os.path.join(out, 'logs')
  rows: Dict[str, Dict[str, Any]] = {}
  for factor in factors:
    folder = os.path.join(out, f'data-{factor}x')
    log(f'part 7: making {factor}x data')
    synth(folder, per_class * factor, 0, logs)
    for index, profile in enumerate(('local', 'portable')
                                    if factor % 2 else
                                    ('portable', 'local')):
      workspace = os.path.join(out, f'ws-beam-{profile}-{factor}x')
      shutil.rmtree(workspace, ignore_errors=True)
      log(f'part 7: {profile} at {factor}x ({index + 1}/2)')
      result = pipeline_run(workspace, folder, logs,
                            f'beam-{profile}-{factor}x',
                            extra=('--beam', profile))
      summary = result.pop('summary')
      result['examples'] = (summary.get('metrics') or {}).get(
          'example_count')
      rows[f'{profile}-{factor}x'] = dict(result, images=2 * per_class *
                                          factor)
      log(f"  run {result['run_seconds']:.1f} s, peak "
          f"{result['peak_rss_bytes'] / 2**20:.0f} MiB")
      if not keep:
        shutil.rmtree(workspace, ignore_errors=True)
    if not keep and factor != 1:
      shutil.rmtree(folder, ignore_errors=True)
  return {'measured': f'{datetime.date.today()}', 'factors': factors,
          'rows': rows}


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 7's section of RESULTS.md (none when not measured)."""
  beam = results.get('beam_profiles')
  if not beam:
    return []
  lines: List[str] = []
  lines += ['', '## 7. Beam profiles', '',
            'A cold run (ingest + run) with `--beam local` (in-process) '
            'and `--beam portable` (a worker pool; every DoFn in separate '
            'SDK worker processes, as on Dataflow), one run each, taking '
            f"turns (measured {beam['measured']}). Peak memory is the "
            "whole process tree's: runner, pool and workers.", '',
            '| data | profile | ingest s | run s | portable / local run '
            '| peak MiB | portable / local peak |',
            '|---|---|---|---|---|---|---|']
  for factor in beam['factors']:
    local = beam['rows'].get(f'local-{factor}x')
    for profile in ('local', 'portable'):
      row = beam['rows'].get(f'{profile}-{factor}x')
      if not row:
        continue
      time_ratio = peak_ratio = ''
      if profile == 'portable' and local:
        time_ratio = f"{row['run_seconds'] / local['run_seconds']:.2f}"
        peak = row['peak_rss_bytes'] / local['peak_rss_bytes']
        peak_ratio = f'{peak:.2f}'
      lines.append(
          f"| {factor}x ({row['images']:,} images) | {profile} | "
          f"{row['ingest_seconds']:.1f} | {row['run_seconds']:.1f} | "
          f"{time_ratio} | {row['peak_rss_bytes'] / 2**20:,.0f} | "
          f'{peak_ratio} |')
  components = sorted({c for row in beam['rows'].values()
                       for c in row['components']})
  names = [f'{profile}-{factor}x' for factor in beam['factors']
           for profile in ('local', 'portable')
           if f'{profile}-{factor}x' in beam['rows']]
  lines += ['', 'Seconds per component:', '',
            '| component | ' + ' | '.join(names) + ' |',
            '|---|' + '---|' * len(names)]
  for component in components:
    lines.append(f'| {component} | ' + ' | '.join(
        f"{beam['rows'][n]['components'].get(component, 0.0):.1f}"
        for n in names) + ' |')
  return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--beam-scale', default='1,8',
                      help='multiples of the default data for part 7 '
                      '(default %(default)s)')


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 7; its figures."""
  factors = [int(f) for f in args.beam_scale.split(',')]
  return part_beam_profiles(ctx.out, factors, args.per_class, args.keep)
