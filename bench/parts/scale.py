"""Bench part 4, scale: the pipeline at 1x, 4x and 8x the default data: time
per component, bytes per transformed example, peak memory of the run's
process tree.
"""

import argparse
import os
import shutil
from typing import Any, Dict, List

from bench.parts.common import Context
from bench.parts.common import bytes_per_example
from bench.parts.common import log
from bench.parts.common import pipeline_run
from bench.parts.common import synth

NUMBER = 4
# The part's figures in results.json.
KEY = 'scale'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = True
NEEDS_WORKSPACE = True


def part_scale(out: str, one_x: Dict[str, Any], factors: List[int],
               keep: bool, per_class: int) -> Dict[str, Any]:
  """Part 4: the pipeline at larger multiples of the default data."""
  logs = os.path.join(out, 'logs')
  first = one_x['cold_runs'][0]
  rows = {1: {'images': 2 * per_class,
              'run_seconds': first['run_seconds'],
              'ingest_seconds': first['ingest_seconds'],
              'peak_rss_bytes': first['peak_rss_bytes'],
              'components': first['components'],
              'bytes_per_transformed_example': one_x.get('transformed_bytes')}}
  for factor in factors:
    if factor == 1:
      continue
    folder = os.path.join(out, f'data-{factor}x')
    log(f'part 4: making {factor}x data')
    synth(folder, per_class * factor, 0, logs)
    workspace = os.path.join(out, f'ws-{factor}x')
    shutil.rmtree(workspace, ignore_errors=True)
    log(f'part 4: pipeline at {factor}x')
    result = pipeline_run(workspace, folder, logs, f'scale{factor}')
    rows[factor] = {
        'images': 2 * per_class * factor,
        'run_seconds': result['run_seconds'],
        'ingest_seconds': result['ingest_seconds'],
        'peak_rss_bytes': result['peak_rss_bytes'],
        'components': result['components'],
        'bytes_per_transformed_example': bytes_per_example(
            result['summary'])}
    log(f"  run {result['run_seconds']:.1f} s, peak "
        f"{result['peak_rss_bytes'] / 2**20:.0f} MiB")
    if not keep:
      shutil.rmtree(workspace, ignore_errors=True)
      shutil.rmtree(folder, ignore_errors=True)
  return {'rows': rows}


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 4's section of RESULTS.md (none when not measured)."""
  scale = results.get('scale', {}).get('rows')
  if not scale:
    return []
  lines: List[str] = []
  factors = sorted(scale, key=int)
  components = list(scale[factors[0]]['components'])
  lines += ['', '## 4. Scale', '',
            'The default settings (500 training steps) on 1x, 4x and 8x the '
            'default data; one run each.', '',
            '| | ' + ' | '.join(f'{f}x' for f in factors) + ' |',
            '|---' * (len(factors) + 1) + '|',
            '| images | ' + ' | '.join(f"{scale[f]['images']:,}"
                                       for f in factors) + ' |',
            '| ingest s | ' + ' | '.join(
                f"{scale[f]['ingest_seconds']:.1f}" for f in factors) + ' |',
            '| **run s** | ' + ' | '.join(
                f"**{scale[f]['run_seconds']:.1f}**" for f in factors)
            + ' |']
  for component in components:
    lines.append(f'| {component} s | ' + ' | '.join(
        f"{scale[f]['components'].get(component, 0):.1f}"
        for f in factors) + ' |')
  lines += ['| **peak memory MiB** | ' + ' | '.join(
      f"**{scale[f]['peak_rss_bytes'] / 2**20:,.0f}**" for f in factors)
            + ' |',
            '| bytes per transformed example | ' + ' | '.join(
                f"{scale[f]['bytes_per_transformed_example'] or 0:,.0f}"
                for f in factors) + ' |']
  return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--scale', default='1,4,8',
                      help='multiples of the default data (default %(default)s)')


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 4; its figures."""
  return part_scale(ctx.out, ctx.results['pipeline_vs_notebook'],
                    [int(f) for f in args.scale.split(',')], args.keep,
                    args.per_class)
