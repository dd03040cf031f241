"""A Beam worker pool on this machine, for the `portable` profile (see
`pipeline.settings.beam_profiles`): started and stopped around each run.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Iterator

from pipeline.settings.beam_profiles import BeamProfileError

WORKER_POOL_MODULE = 'apache_beam.runners.worker.worker_pool_main'
# The pool's log line for every SDK worker process it starts.
WORKER_STARTED = 'Starting worker with command'
_POOL_START_SECONDS = 60
_POOL_STOP_SECONDS = 15


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
    probe.bind(('localhost', 0))
    return probe.getsockname()[1]


def _accepts(port: int) -> bool:
  try:
    socket.create_connection(('localhost', port), timeout=1).close()
    return True
  except OSError:
    return False


def _tail(path: str, lines: int = 15) -> str:
  try:
    with open(path, encoding='utf-8', errors='replace') as log:
      return ''.join(log.readlines()[-lines:])
  except OSError:
    return ''


@contextlib.contextmanager
def running(log_path: str, project_root: str) -> Iterator[str]:
  """Runs a Beam worker pool on this machine while the block runs.

  The pool starts one SDK worker process per Beam job with this
  environment's Python (its `bin` first on `PATH`) and `project_root` on
  `PYTHONPATH`. It runs in its own
  process group, so stopping it stops every worker it started, even one a
  failed job left behind.

  Args:
    log_path: a local file for the pool's and its workers' log (it names
      every worker started: :data:`WORKER_STARTED`).
    project_root: the folder holding this project's packages, which
      pickled DoFns name.

  Yields:
    The pool's `localhost:port`, for `--environment_config`.

  Raises:
    BeamProfileError: when the pool does not accept connections within a
      minute (the message holds the end of its log).
  """
  port = _free_port()
  env = dict(os.environ)
  env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get(
      'PATH', '')
  # Workers import the project (pickled DoFns name its functions) from
  # where this process does, whatever the pool's working folder.
  env['PYTHONPATH'] = os.pathsep.join(
      [project_root] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                        if p])
  os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
  with open(log_path, 'ab') as log:
    pool = subprocess.Popen(
        [sys.executable, '-m', WORKER_POOL_MODULE, f'--service_port={port}'],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env=env, start_new_session=True)
  try:
    deadline = time.monotonic() + _POOL_START_SECONDS
    while not _accepts(port):
      if pool.poll() is not None or time.monotonic() > deadline:
        raise BeamProfileError(
            f'the Beam worker pool did not start (log: {log_path}):\n'
            + _tail(log_path))
      time.sleep(0.2)
    yield f'localhost:{port}'
  finally:
    _stop_group(pool)


def _stop_group(pool: subprocess.Popen) -> None:
  """Stops the pool and every process of its group: SIGTERM, a grace
  period for the pool, then SIGKILL for whatever of the group is left."""
  try:
    os.killpg(pool.pid, signal.SIGTERM)
  except ProcessLookupError:
    pool.wait()
    return
  try:
    pool.wait(timeout=_POOL_STOP_SECONDS)
  except subprocess.TimeoutExpired:
    pass
  with contextlib.suppress(ProcessLookupError):
    os.killpg(pool.pid, signal.SIGKILL)
  pool.wait()
