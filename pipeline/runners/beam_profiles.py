"""Beam profiles: where the Beam components' work runs.

- `local` (the default): Beam's in-process DirectRunner, one worker; the
  lightest on memory.
- `multiprocess`: the DirectRunner with one worker process per CPU.
- `portable`: Beam's PortableRunner with an EXTERNAL environment: a worker
  pool on this machine (`apache_beam.runners.worker.worker_pool_main`,
  started and stopped around each run) runs every DoFn in separate SDK
  worker processes, as Dataflow, Flink and Spark workers do. It catches
  what the in-process runner lets pass (DoFns that do not pickle, imports
  missing in a worker). The workers use this environment's Python, as a
  Dataflow custom container would hold the project: nothing is staged.
- `dataflow`: Google Cloud Dataflow with the project's container image
  (`--image`) as the SDK container; it needs `--gcp-project`, `--region`
  and a `gs://` `--temp-location`.

`--beam-args` are appended to the profile's, so they override or extend it.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Iterator, List, Optional, Sequence
from components.common import errors

PROFILES = ('local', 'multiprocess', 'portable', 'dataflow')
# Settings the dataflow profile needs, by the name of their flags.
DATAFLOW_SETTINGS = ('gcp_project', 'region', 'temp_location', 'image')
WORKER_POOL_MODULE = 'apache_beam.runners.worker.worker_pool_main'
# The pool's log line for every SDK worker process it starts.
WORKER_STARTED = 'Starting worker with command'
_POOL_START_SECONDS = 60
_POOL_STOP_SECONDS = 15


class BeamProfileError(errors.PipelineError, RuntimeError):
  """Raised when a profile lacks a setting or its worker pool cannot
  start; names the setting or the pool's log."""


def missing_settings(profile: str, **settings: str) -> List[str]:
  """The settings `profile` needs that are empty in `settings`."""
  if profile != 'dataflow':
    return []
  return [name for name in DATAFLOW_SETTINGS if not settings.get(name)]


def pipeline_args(profile: str, extra: Sequence[str] = (), *,
                  worker_pool: Optional[str] = None,
                  gcp_project: str = '', region: str = '',
                  temp_location: str = '', image: str = '') -> List[str]:
  """The Beam pipeline arguments of `profile`, then `extra`.

  Args:
    profile: one of :data:`PROFILES`.
    extra: raw Beam arguments appended (later flags win).
    worker_pool: `host:port` of a running worker pool (`portable` only;
      see :func:`worker_pool`).
    gcp_project, region, temp_location, image: the `dataflow` profile's
      project, region, `gs://` temporary folder and SDK container image.

  Returns:
    The arguments, without any path of this machine.

  Raises:
    BeamProfileError: for an unknown profile, `portable` without a pool,
      or `dataflow` without its settings.
  """
  if profile == 'local':
    # Beam's defaults: the in-memory DirectRunner with one worker. Passing
    # them would make TFX package itself for every Beam component.
    args = []
  elif profile == 'multiprocess':
    # 0 workers: one per CPU of the machine that runs the component.
    args = ['--direct_running_mode=multi_processing',
            '--direct_num_workers=0']
  elif profile == 'portable':
    if not worker_pool:
      raise BeamProfileError(
          'the portable Beam profile runs only with a worker pool on this '
          'machine (python -m pipeline run starts one); to run at scale, '
          'use --beam dataflow')
    args = ['--runner=PortableRunner', '--job_endpoint=embed',
            '--environment_type=EXTERNAL',
            f'--environment_config={worker_pool}']
  elif profile == 'dataflow':
    missing = missing_settings(profile, gcp_project=gcp_project,
                               region=region, temp_location=temp_location,
                               image=image)
    if missing:
      raise BeamProfileError(
          'the dataflow Beam profile needs ' +
          ', '.join('--' + name.replace('_', '-') for name in missing))
    args = ['--runner=DataflowRunner', f'--project={gcp_project}',
            f'--region={region}', f'--temp_location={temp_location}',
            f'--sdk_container_image={image}']
  else:
    raise BeamProfileError(f'unknown Beam profile {profile!r}; choose one '
                           f'of {", ".join(PROFILES)}')
  return args + list(extra)


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
def worker_pool(log_path: str, project_root: str) -> Iterator[str]:
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
