"""Retraining on a schedule: `python -m pipeline schedule`.

Each tick (an interval such as `6h`, or a cron expression read by the
croniter library):

1. optionally ingests a source folder (a new span only when it changed);
2. if no span was added since the last successful run, does nothing and
   says so (unless forced);
3. otherwise runs the pipeline: train on the latest spans, evaluate against
   the latest blessed model, push to devices only if blessed and faithful.

One run at a time: the workspace's run lock makes a tick that overlaps a
running pipeline (from this scheduler or any other process) skip with a log
line. A failed run is logged and the next tick still comes. SIGINT or
SIGTERM stop the scheduler between runs; a run in progress is finished
first. `--once` performs one tick and exits, for cron or a systemd timer.
"""

import dataclasses
import datetime
import re
import signal
import threading
import time
from typing import Callable, Dict, List, Optional

from pipeline.settings import config as config_lib
from pipeline.data import ingest
from pipeline.runners import logs
from pipeline.runners import run
from pipeline.runners import state
from components.common import errors

_INTERVAL_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$')
_UNIT_SECONDS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400}


class ScheduleError(errors.PipelineError, ValueError):
  """Raised for a cadence that is neither an interval nor a cron expression."""


def parse_interval(text: str) -> float:
  """Seconds in an interval such as `90s`, `15m`, `6h`, `1d` or `3600`.

  Raises:
    ScheduleError: for anything else, or an interval under one second.
  """
  match = _INTERVAL_RE.match(text)
  if not match:
    raise ScheduleError(f'--every {text!r}: expected a number with an '
                        'optional unit s, m, h or d (e.g. 30m, 6h)')
  seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
  if seconds < 1:
    raise ScheduleError(f'--every {text!r}: the interval must be at least 1 s')
  return seconds


class Cadence:
  """When the next tick is due: a fixed interval or a cron expression.

  Args:
    every: an interval (see :func:`parse_interval`), or None.
    cron: a cron expression such as `0 3 * * *`, or None.

  Raises:
    ScheduleError: unless exactly one of them is valid.
  """

  def __init__(self, every: Optional[str] = None, cron: Optional[str] = None):
    if (every is None) == (cron is None):
      raise ScheduleError('give exactly one of --every or --cron')
    self.interval = parse_interval(every) if every is not None else None
    self.cron = cron
    if cron is not None:
      from croniter import croniter  # pylint: disable=g-import-not-at-top
      if not croniter.is_valid(cron):
        raise ScheduleError(f'--cron {cron!r} is not a valid cron expression '
                            '(five fields: minute hour day month weekday)')

  def next_after(self, now: float) -> float:
    """The first tick strictly after `now` (seconds since the epoch)."""
    if self.interval is not None:
      return now + self.interval
    from croniter import croniter  # pylint: disable=g-import-not-at-top
    start = datetime.datetime.fromtimestamp(now).astimezone()
    return croniter(self.cron, start).get_next(float)


@dataclasses.dataclass
class TickResult:
  """What one tick did.

  Attributes:
    action: 'ran', 'no-new-data', 'busy' or 'failed'.
    message: one line for the log.
    summary: the run summary when the pipeline ran.
  """
  action: str
  message: str
  summary: Optional[Dict] = None


def tick(config: config_lib.PipelineConfig, source: Optional[str] = None,
         force: bool = False,
         run_fn: Callable[[config_lib.PipelineConfig], Dict] = run.run_pipeline
         ) -> TickResult:
  """One scheduled step: ingest the source, then run if there is new data.

  Args:
    config: the pipeline configuration.
    source: folder of class subfolders to ingest first, or None.
    force: run even if no span was added since the last successful run.
    run_fn: runs the pipeline (replaced in tests).

  Returns:
    A :class:`TickResult`; errors are reported in it, not raised.
  """
  try:
    if source:
      result = ingest.ingest(source, config.data_root,
                             class_names=config.class_names,
                             limits=config.file_limits(), progress=False,
                             front_end=config.front_end(),
                             proof_windows=config.proof_windows,
                             keep_samples=config.keep_window_samples)
      if result.created:
        print(f'schedule: ingested {source} as span {result.span}',
              flush=True)
    spans = ingest.list_spans(config.data_root)
    if not spans:
      return TickResult('no-new-data', f'no span in {config.data_root} yet')
    last = state.read_state(config.workspace).get('span')
    if not force and last is not None and spans[-1] <= last:
      return TickResult('no-new-data', f'no new span since span {last} '
                        'was trained on; nothing to do (use --force to run '
                        'anyway)')
    summary = run_fn(config)
  except errors.BusyError as e:
    return TickResult('busy', f'skipped: {e}')
  except run.RunError as e:
    if e.unexpected:
      path = logs.log_traceback(e, config.workspace, 'schedule')
      return TickResult('failed',
                        f'run failed: {e} (the traceback is in {path})')
    return TickResult('failed', f'run failed: {e}')
  except (ingest.IngestError, config_lib.ConfigError) as e:
    return TickResult('failed', f'failed: {e}')
  except Exception as e:  # pylint: disable=broad-except
    path = logs.log_traceback(e, config.workspace, 'schedule')
    return TickResult('failed', f'failed unexpectedly: {type(e).__name__}: '
                      f'{e} (the traceback is in {path})')
  pushed = summary.get('pushed') or {}
  if pushed.get('pushed'):
    outcome = f"pushed version {pushed.get('pushed_version')}"
  elif pushed.get('reason'):
    outcome = f"not pushed: {pushed['reason']}"
  else:
    outcome = 'not pushed'
  return TickResult('ran', f"ran on spans {summary.get('spans')}: "
                    f"blessed={summary.get('blessed')}, {outcome}", summary)


class Scheduler:
  """Calls :func:`tick` on a cadence until stopped.

  Args:
    config: the pipeline configuration.
    cadence: when ticks are due (None for `run_once` alone).
    source: folder to ingest at every tick, or None.
    force: run at every tick even without new data.
    tick_fn: one tick (replaced in tests).
    clock: returns the current time (replaced in tests).
  """

  def __init__(self, config: config_lib.PipelineConfig,
               cadence: Optional[Cadence],
               source: Optional[str] = None, force: bool = False,
               tick_fn: Callable[..., TickResult] = tick,
               clock: Callable[[], float] = time.time):
    self.config = config
    self.cadence = cadence
    self.source = source
    self.force = force
    self._tick_fn = tick_fn
    self._clock = clock
    self._stop = threading.Event()
    self.results: List[TickResult] = []

  def stop(self, *_args) -> None:
    """Asks the loop to end after the current tick (a signal handler)."""
    if not self._stop.is_set():
      print('schedule: stopping after the current run', flush=True)
    self._stop.set()

  def install_signal_handlers(self) -> None:
    """Makes SIGINT and SIGTERM stop the loop between runs."""
    signal.signal(signal.SIGINT, self.stop)
    signal.signal(signal.SIGTERM, self.stop)

  def run_once(self) -> TickResult:
    """One tick, logged."""
    started = self._clock()
    result = self._tick_fn(self.config, source=self.source, force=self.force)
    stamp = time.strftime('%Y-%m-%d %H:%M:%S')
    print(f'schedule: {stamp} {result.action}: {result.message} '
          f'({self._clock() - started:.0f} s)', flush=True)
    self.results.append(result)
    return result

  def loop(self, max_ticks: Optional[int] = None) -> None:
    """Ticks now and then at every due time until stopped.

    A tick that falls due while a run is still going is skipped and logged:
    the next one is planned after the run, from the current time.

    Args:
      max_ticks: stop after this many ticks (None: until stopped).
    """
    due = self._clock()
    while not self._stop.is_set():
      self.run_once()
      if max_ticks is not None and len(self.results) >= max_ticks:
        return
      now = self._clock()
      following = self.cadence.next_after(due)
      missed = 0
      while following <= now:
        missed += 1
        following = self.cadence.next_after(following)
      if missed:
        print(f'schedule: {missed} tick(s) skipped while the run was going',
              flush=True)
      due = following
      print(f'schedule: next run at '
            f'{time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(due))}',
            flush=True)
      self._stop.wait(max(0.0, due - self._clock()))
