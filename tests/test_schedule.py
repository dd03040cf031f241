"""Tests for pipeline.runners.schedule (the pipeline itself is replaced here; the
retraining e2e test runs the real one)."""

import datetime
import os
import signal
import threading
import time
from unittest import mock

import pytest

from conftest import write_image
from pipeline.settings import config as config_lib
from pipeline.data import ingest
from pipeline.metadata import summary as summary_lib
from pipeline.runners import run
from pipeline.runners import state
from pipeline.runners import schedule


@pytest.mark.parametrize('text, seconds', [
    ('90s', 90), ('15m', 900), ('6h', 21600), ('1d', 86400), ('3600', 3600),
    ('1.5h', 5400)])
def test_parse_interval(text, seconds):
  assert schedule.parse_interval(text) == seconds


@pytest.mark.parametrize('text', ['5x', '', 'h', '0.1s', '-3m'])
def test_parse_interval_refuses(text):
  with pytest.raises(schedule.ScheduleError):
    schedule.parse_interval(text)


def test_cron_cadence_uses_croniter():
  cadence = schedule.Cadence(cron='30 3 * * *')
  start = datetime.datetime(2026, 11, 28, 12, 0).astimezone().timestamp()
  due = datetime.datetime.fromtimestamp(cadence.next_after(start))
  assert (due.day, due.hour, due.minute) == (29, 3, 30)


def test_cadence_needs_exactly_one_valid_setting():
  with pytest.raises(schedule.ScheduleError):
    schedule.Cadence()
  with pytest.raises(schedule.ScheduleError):
    schedule.Cadence(every='1h', cron='* * * * *')
  with pytest.raises(schedule.ScheduleError, match='not a valid cron'):
    schedule.Cadence(cron='61 * * * *')


def _workspace(tmp_path, spans=1):
  config = config_lib.PipelineConfig(workspace=str(tmp_path / 'ws'))
  src = tmp_path / 'src'
  for span in range(spans):
    write_image(str(src / 'instrument' / f'{span}.png'), seed=span)
    write_image(str(src / 'not_instrument' / f'{span}.png'), seed=99 - span)
    ingest.ingest(str(src), config.data_root, progress=False)
  return config, str(src)


def _fake_run(calls):
  def run_fn(config):
    calls.append(time.time())
    spans = ingest.list_spans(config.data_root)
    state.write_state(config.workspace, {'span': spans[-1]})
    return {'spans': spans, 'blessed': True,
            'pushed': {'pushed': 1, 'pushed_version': str(len(calls))}}
  return run_fn


def test_tick_runs_only_when_a_span_was_added(tmp_path):
  config, src = _workspace(tmp_path)
  calls = []
  first = schedule.tick(config, run_fn=_fake_run(calls))
  assert first.action == 'ran' and 'pushed version 1' in first.message
  second = schedule.tick(config, run_fn=_fake_run(calls))
  assert second.action == 'no-new-data'
  assert 'no new span since span 1' in second.message
  forced = schedule.tick(config, force=True, run_fn=_fake_run(calls))
  assert forced.action == 'ran'
  # A changed source folder is ingested as the next span, then trained on.
  write_image(os.path.join(src, 'instrument', 'new.png'), seed=5)
  third = schedule.tick(config, source=src, run_fn=_fake_run(calls))
  assert third.action == 'ran' and third.summary['spans'] == [1, 2]
  assert len(calls) == 3


def test_tick_without_data_does_nothing(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path / 'ws'))
  result = schedule.tick(config, run_fn=_fake_run([]))
  assert result.action == 'no-new-data'


def test_a_failed_run_is_reported_and_the_next_tick_still_runs(tmp_path):
  config, _ = _workspace(tmp_path)
  outcomes = iter([run.RunError('The pipeline run failed: boom'), None])
  calls = []

  def flaky(cfg):
    error = next(outcomes)
    if error:
      raise error
    return _fake_run(calls)(cfg)

  scheduler = schedule.Scheduler(
      config, schedule.Cadence(every='1s'),
      tick_fn=lambda cfg, **kw: schedule.tick(cfg, run_fn=flaky, **kw))
  scheduler.loop(max_ticks=2)
  assert [r.action for r in scheduler.results] == ['failed', 'ran']
  assert 'boom' in scheduler.results[0].message


def test_sigterm_stops_the_loop_after_the_current_run(tmp_path):
  config, _ = _workspace(tmp_path)
  scheduler = schedule.Scheduler(config, schedule.Cadence(every='1h'))
  previous = {sig: signal.getsignal(sig)
              for sig in (signal.SIGINT, signal.SIGTERM)}
  finished = []

  def tick_fn(cfg, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)  # arrives during the run
    time.sleep(0.2)
    finished.append(True)  # ... which still completes
    return schedule.TickResult('ran', 'ok')

  scheduler._tick_fn = tick_fn  # pylint: disable=protected-access
  try:
    scheduler.install_signal_handlers()
    started = time.time()
    scheduler.loop()
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
  assert finished == [True]
  assert len(scheduler.results) == 1
  assert time.time() - started < 30  # did not wait for the next hour


def test_overlapping_ticks_never_run_two_pipelines_at_once(tmp_path):
  config, _ = _workspace(tmp_path)
  active, peak, lock = [0], [0], threading.Lock()
  release = threading.Event()

  def slow_pipeline(self, pipeline):  # the real run_pipeline calls this
    del self, pipeline
    with lock:
      active[0] += 1
      peak[0] = max(peak[0], active[0])
    release.wait(10)
    with lock:
      active[0] -= 1

  results = []
  with mock.patch('tfx.orchestration.local.local_dag_runner.LocalDagRunner.run',
                  slow_pipeline), \
       mock.patch.object(summary_lib, 'summarize_latest_run',
                         return_value={'run_id': 'x', 'components': []}):
    threads = [threading.Thread(
        target=lambda: results.append(schedule.tick(config)))
               for _ in range(2)]
    for thread in threads:
      thread.start()
    deadline = time.time() + 20
    while len(results) < 1 and time.time() < deadline:
      time.sleep(0.05)
    release.set()
    for thread in threads:
      thread.join(30)
  assert peak[0] == 1
  assert sorted(r.action for r in results) == ['busy', 'ran']
  busy = next(r for r in results if r.action == 'busy')
  assert 'Another pipeline run' in busy.message
