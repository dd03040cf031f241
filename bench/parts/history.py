"""Bench part 5, history: 8 spans of 1x each (the synthesizer with seeds 1 to
8), ingested and run one after another in one workspace with the default
window of 3 spans. Once the window is full, history must cost nothing: run
8's time and peak memory against run 3's (both train on 3 spans).
"""

import argparse
import datetime
import os
import shutil
from typing import Any, Dict, List

from bench.parts.common import Context
from bench.parts.common import log
from bench.parts.common import median
from bench.parts.common import pipeline_run
from bench.parts.common import synth

NUMBER = 5
# The part's figures in results.json.
KEY = 'history'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = False
NEEDS_WORKSPACE = False


def part_history(out: str, spans: int, keep: bool, per_class: int,
                 repeats: int) -> Dict[str, Any]:
  """Part 5: spans ingested and run one after another, default window.

  The runs of the history are measured once each, so one slow Trainer skews
  a ratio between two of them. After the history, the workspace as it stood
  after each run in `compare` is put back in place (at the same path, as
  ML Metadata holds absolute URIs) and run again with the cache off,
  `repeats` times each, the two taking turns; the ratio of the medians is
  the figure.
  """
  compare = (min(3, spans), spans)  # The first full window, and the last.
  logs = os.path.join(out, 'logs')
  workspace = os.path.join(out, 'ws-history')
  snapshots = {span: os.path.join(out, f'ws-history-after{span}')
               for span in compare}
  for path in [workspace, *snapshots.values()]:
    shutil.rmtree(path, ignore_errors=True)
  rows = []
  for span in range(1, spans + 1):
    folder = os.path.join(out, f'data-span{span}')
    synth(folder, per_class, span, logs)
    log(f'part 5: span {span} of {spans}')
    result = pipeline_run(workspace, folder, logs, f'history{span}')
    rows.append({'span': span, 'window': result['summary'].get('spans'),
                 'run_seconds': result['run_seconds'],
                 'ingest_seconds': result['ingest_seconds'],
                 'peak_rss_bytes': result['peak_rss_bytes'],
                 'components': result['components']})
    log(f"  run {result['run_seconds']:.1f} s, peak "
        f"{result['peak_rss_bytes'] / 2**20:.0f} MiB, window "
        f"{rows[-1]['window']}")
    if span in snapshots:
      shutil.copytree(workspace, snapshots[span], symlinks=True)
    if not keep:
      shutil.rmtree(folder, ignore_errors=True)
  reruns: Dict[int, List[Dict[str, Any]]] = {span: [] for span in snapshots}
  for repeat in range(repeats if len(snapshots) == 2 else 0):
    order = list(compare) if repeat % 2 == 0 else list(reversed(compare))
    for span in order:
      log(f'part 5: run {span} again without the cache '
          f'({repeat + 1} of {repeats})')
      shutil.rmtree(workspace, ignore_errors=True)
      shutil.copytree(snapshots[span], workspace, symlinks=True)
      result = pipeline_run(workspace, '', logs, f'history{span}-again',
                            ingest=False, extra=('--enable-cache', 'false'))
      reruns[span].append({'run_seconds': result['run_seconds'],
                           'run_cpu_seconds': result['run_cpu_seconds'],
                           'peak_rss_bytes': result['peak_rss_bytes'],
                           'components': result['components']})
      log(f"  run {result['run_seconds']:.1f} s, peak "
          f"{result['peak_rss_bytes'] / 2**20:.0f} MiB")
  if not keep:
    for path in [workspace, *snapshots.values()]:
      shutil.rmtree(path, ignore_errors=True)
  return {'rows': rows, 'reruns': {str(k): v for k, v in reruns.items()},
          'measured': datetime.datetime.now().astimezone()
          .isoformat(timespec='seconds')}


def rerun_medians(history: Dict[str, Any]) -> Dict[int, Dict[str, float]]:
  """Per compared run: median seconds, peak memory and component times."""
  medians = {}
  for span, runs in (history.get('reruns') or {}).items():
    if not runs:
      continue
    components = sorted({c for run in runs for c in run['components']})
    medians[int(span)] = {
        'run_seconds': median([run['run_seconds'] for run in runs]),
        'peak_rss_bytes': median([run['peak_rss_bytes'] for run in runs]),
        'run_cpu_seconds': median([run.get('run_cpu_seconds', float('nan'))
                                   for run in runs]),
        'repeats': len(runs),
        'components': {c: median([run['components'].get(c, 0.0)
                                  for run in runs]) for c in components}}
  return medians


def turn_ratios(history: Dict[str, Any], first: int, last: int
                ) -> List[float]:
  """Run `last`'s seconds over run `first`'s, per turn of the reruns (the
  two ran one after the other in each turn)."""
  reruns = history.get('reruns') or {}
  return [b['run_seconds'] / a['run_seconds'] for a, b in
          zip(reruns.get(str(first), []), reruns.get(str(last), []))]


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 5's section of RESULTS.md (none when not measured)."""
  history = results.get('history', {}).get('rows')
  if not history:
    return []
  lines: List[str] = []
  lines += ['', '## 5. History', '',
            'Spans of 1x each, ingested and run one after another in one '
            'workspace with the default window of 3 spans; one run each'
            + (f" (measured {results['history']['measured']})"
               if results['history'].get('measured') else '') + '.',
            '', '| run | window | ingest s | run s | peak memory MiB |',
            '|---|---|---|---|---|']
  for row in history:
    lines.append(
        f"| {row['span']} | {', '.join(map(str, row['window'] or []))} | "
        f"{row['ingest_seconds']:.1f} | {row['run_seconds']:.1f} | "
        f"{row['peak_rss_bytes'] / 2**20:,.0f} |")
  again = rerun_medians(results['history'])
  if len(again) == 2:
    first, last = sorted(again)
    repeats = min(again[first]['repeats'], again[last]['repeats'])
    lines += ['', f'One run each is noisy, so the workspace as it stood '
              f'after run {first} and after run {last} was put back and '
              f'run again with the cache off, {repeats} times each, the '
              'two taking turns. Medians; the targets use these:', '',
              f'| | run {first} | run {last} | ratio |', '|---|---|---|---|']
    components = sorted(set(again[first]['components'])
                        | set(again[last]['components']),
                        key=lambda c: -again[last]['components'].get(c, 0))
    for component in components:
      a = again[first]['components'].get(component, 0.0)
      b = again[last]['components'].get(component, 0.0)
      if max(a, b) >= 0.5:
        lines.append(f'| {component} s | {a:.1f} | {b:.1f} | '
                     f'{b / a if a else float("nan"):.2f} |')
    a, b = again[first]['run_seconds'], again[last]['run_seconds']
    lines.append(f'| **run s** | **{a:.1f}** | **{b:.1f}** | '
                 f'**{b / a:.2f}** |')
    a, b = again[first]['run_cpu_seconds'], again[last]['run_cpu_seconds']
    if a == a and b == b:  # Not NaN: measured since CPU time was recorded.
      lines.append(f'| run CPU s (user + system) | {a:.1f} | {b:.1f} | '
                   f'{b / a:.2f} |')
    a, b = again[first]['peak_rss_bytes'], again[last]['peak_rss_bytes']
    lines.append(f'| **peak memory MiB** | **{a / 2**20:,.0f}** | '
                 f'**{b / 2**20:,.0f}** | **{b / a:.2f}** |')
    turns = turn_ratios(results['history'], first, last)
    lines += ['', f'Run {last} against run {first} in each turn (run '
              'seconds): ' + ', '.join(f'{t:.2f}' for t in turns) +
              f'; median **{median(turns):.2f}**, the target\'s figure. '
              'The ratio of the medians above compares runs from '
              'different turns, and this machine\'s speed drifts between '
              'turns by more than the bound; the CPU seconds show the '
              'work each run does.']
  return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--history-spans', type=int, default=8,
                      help='spans of part 5 (default %(default)s)')


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 5; its figures."""
  return part_history(ctx.out, args.history_spans, args.keep,
                      args.per_class, args.repeats)
