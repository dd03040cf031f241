"""The run lock on a real metadata server, and what a run does when it is
lost midway: a restarted server drops every connection and every lock they
held (tests/db_servers.py restarts a private server)."""

import os
import signal
import subprocess
import sys
import time

import pytest

import db_servers
from components.common import errors
from components.common import run_guard
from components.ondevice import push
from pipeline.cli import commands as cli
from pipeline.runners import store_lock
from pipeline.settings import metadata_url

pytestmark = pytest.mark.server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINE = 'on_device_classifier'


@pytest.fixture(params=['mariadb', 'postgresql'])
def server(request):
  return request.getfixturevalue(request.param)


def _store(server, database):
  return metadata_url.parse(server.url(database))


def test_a_second_runner_is_refused_as_busy_naming_the_holder(server):
  store = _store(server, 'lock_busy')
  with store_lock.held(store, PIPELINE, 'runner A'):
    with pytest.raises(store_lock.StoreLockBusy) as busy:
      with store_lock.held(store, PIPELINE, 'runner B'):
        pass
  assert isinstance(busy.value, errors.BusyError)
  assert busy.value.holder == 'runner A'
  assert 'Another pipeline run (runner A)' in str(busy.value)
  with store_lock.held(store, PIPELINE, 'runner B'):
    pass  # Released when the holder's block ended.


def test_a_lock_lost_to_a_restart_is_won_back_when_no_one_took_it(server):
  store = _store(server, 'lock_regained')
  with store_lock.held(store, PIPELINE, 'runner A') as lock:
    server.restart()
    lock.check()  # Finds the connection gone, and wins the lock back.
    assert lock.lost_at is not None and lock.taken_by == ''
    with pytest.raises(store_lock.StoreLockBusy):
      with store_lock.held(store, PIPELINE, 'runner B'):
        pass
    lock.check()
  with store_lock.held(store, PIPELINE, 'runner B'):
    pass


def test_a_lock_another_runner_took_after_a_restart_stops_the_push(server):
  store = _store(server, 'lock_taken')
  with store_lock.held(store, PIPELINE, 'runner A') as lock:
    server.restart()
    with store_lock.held(store, PIPELINE, 'runner B'):
      with run_guard.installed(lock.check):
        with pytest.raises(store_lock.StoreLockLost) as lost:
          run_guard.before_push()
    message = str(lost.value)
    assert 'another runner (runner B) took it' in message
    assert 'stopped before pushing' in message
    assert db_servers.PASSWORD not in message and '***' in message
    # Taken once is lost for good, though runner B has finished since.
    with pytest.raises(store_lock.StoreLockLost):
      lock.check()
  # Runner A's release on its dead connection raised nothing, and left
  # nothing held.
  with store_lock.held(store, PIPELINE, 'runner C'):
    pass


def test_a_lock_taken_and_let_go_meanwhile_is_not_won_back(server):
  store = _store(server, 'lock_overlapped')
  with store_lock.held(store, PIPELINE, 'runner A') as lock:
    server.restart()
    with store_lock.held(store, PIPELINE, 'runner B'):
      pass  # B ran beside A, and finished before A looked.
    with pytest.raises(store_lock.StoreLockLost) as lost:
      lock.check()
  assert '(runner B)' in str(lost.value)


def test_the_keeper_notices_a_lost_lock_between_checks(mariadb):
  store = _store(mariadb, 'lock_keeper')
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(store_lock, 'KEEPALIVE_SECONDS', 0.2)
    with store_lock.held(store, PIPELINE, 'runner A') as lock:
      mariadb.restart()
      deadline = time.time() + 30
      while lock.lost_at is None and time.time() < deadline:
        time.sleep(0.1)
      assert lock.lost_at is not None
      # The keeper wins it back on its own (no other runner may try
      # meanwhile: one that took the lock, even for a moment, would make
      # it lost for good: test_a_lock_taken_and_let_go_meanwhile_...) ...
      deadline = time.time() + 60
      while not lock.held and time.time() < deadline:
        time.sleep(0.1)
      assert lock.held, 'the keeper never won the lock back'
      # ... and then another runner is refused.
      with pytest.raises(store_lock.StoreLockBusy):
        with store_lock.held(store, PIPELINE, 'runner B'):
          pass


# The wiring, not the model: see test_e2e.py.
RUN_FLAGS = ['--image-size', '32', '--train-steps', '4', '--batch-size', '8',
             '--min-auc', '0', '--min-accuracy', '0', '--max-auc-drop', '1',
             '--max-accuracy-drop', '1']


@pytest.mark.e2e
def test_a_run_whose_server_restarted_mid_run_stops_before_pushing(
    mariadb, tmp_path, small_spectrograms):
  url = mariadb.url('mlmd_restarted')
  workspace = str(tmp_path / 'ws')
  assert cli.main(['ingest', '--workspace', workspace,
                   small_spectrograms]) == 0
  env = dict(os.environ, PYTHONPATH=ROOT, TF_USE_LEGACY_KERAS='1',
             TF_CPP_MIN_LOG_LEVEL='3')
  command = [sys.executable, '-m', 'pipeline', 'run', '--metadata', url,
             '--workspace', workspace, *RUN_FLAGS]
  first = subprocess.Popen(command, cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
  try:
    db_servers.wait_for_line(first.stderr, 'Component Transform is running', 300)
    mariadb.restart()
    # Another runner takes the lock the restart dropped, and holds it
    # while the first run goes on to its pusher.
    with store_lock.held(metadata_url.parse(url), PIPELINE, 'runner B'):
      rest = first.stderr.read()
      first.wait(timeout=600)
  finally:
    if first.poll() is None:
      first.send_signal(signal.SIGKILL)
      first.wait()
  error_lines = [line for line in rest.splitlines()
                 if line.startswith('error:')]
  assert len(error_lines) == 1, rest
  if first.returncode == 2:
    assert 'was lost at' in error_lines[0], rest
    assert 'another runner (runner B) took it' in error_lines[0]
  else:
    # The restart can also catch one of ML Metadata's own queries in
    # flight (seen once in a fresh-clone run): the run then fails there,
    # before its pusher, naming the dropped connection.
    assert first.returncode == 1, rest
    assert 'Lost connection to MySQL server' in error_lines[0], rest
  assert 'Traceback' not in rest
  destination = os.path.join(workspace, 'pushed')
  assert push.latest_version(destination) is None
  # The next run completes: it pushes what the stopped one did not.
  second = subprocess.run(command + ['--json'], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600,
                          check=False)
  assert second.returncode == 0, second.stderr
  assert push.latest_version(destination) == 1
