"""Starting and stopping KServe's model server (`server.py`) from the
pipeline's environment: `python -m pipeline serve`, the serving check
before phase two's push, the tests and the benchmark start it alike.

The server runs in KServe's own environment, `.venv-kserve` in the
checkout (scripts/ensure_kserve.sh makes it); `PIPELINE_KSERVE_PYTHON`
names another interpreter.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import IO, List, Optional

from components.common import errors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PYTHON_VARIABLE = 'PIPELINE_KSERVE_PYTHON'
MAKE_IT = 'bash scripts/ensure_kserve.sh makes it (about 2 GB)'
# KServe and TensorFlow take some seconds to import and load a version.
READY_SECONDS = 120.0
# How long a stopped server may take to answer what is in flight.
STOP_SECONDS = 15.0


class LaunchError(errors.PipelineError, RuntimeError):
  """Raised when the server cannot be started or does not become ready."""


def kserve_python() -> str:
  """The interpreter of KServe's environment; LaunchError if absent."""
  python = os.environ.get(PYTHON_VARIABLE) or os.path.join(
      ROOT, '.venv-kserve', 'bin', 'python')
  if not os.access(python, os.X_OK):
    raise LaunchError(f'no KServe environment at {python}: {MAKE_IT}, or '
                      f'{PYTHON_VARIABLE} names its python')
  return python


def check_address(host: str, port: int) -> Optional[str]:
  """Checks that `serve` can listen on (host, port) before anything is
  started.

  Returns:
    A warning to print when `host` is not a loopback address (the model
    then answers anyone who reaches this machine), else None.

  Raises:
    LaunchError: for a port outside 1..65535, or one already in use (the
      message names it and what to do).
  """
  if not 1 <= port <= 65535:
    raise LaunchError(f'--port {port} is not a TCP port (1 to 65535)')
  try:
    with socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET,
                       socket.SOCK_STREAM) as probe:
      probe.bind((host, port))
  except OSError as e:
    raise LaunchError(f'cannot listen on {host}:{port}: {e.strerror} '
                      '(another server there? choose another --port, or '
                      'a --host of this machine)') from None
  if host in ('localhost', '::1') or host.startswith('127.'):
    return None
  return (f'serve: listening on {host}, not only on this machine: anyone '
          'who reaches it can query the model (TLS and access control are '
          "the platform's, as KServe leaves them to its ingress)")


def free_port() -> int:
  """A TCP port no one listens on at 127.0.0.1 now."""
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def command(base: str, name: str, host: str, port: int,
            poll_seconds: Optional[float] = None,
            log_level: str = 'info', batch_windows: Optional[int] = None,
            batch_wait_ms: Optional[float] = None) -> List[str]:
  found = [kserve_python(), '-m', 'components.cloud.server', '--base', base,
           '--name', name, '--host', host, '--port', str(port),
           '--log-level', log_level]
  if poll_seconds is not None:
    found += ['--poll-seconds', str(poll_seconds)]
  if batch_windows is not None:
    found += ['--batch-windows', str(batch_windows)]
  if batch_wait_ms is not None:
    found += ['--batch-wait-ms', str(batch_wait_ms)]
  return found


def _project_path() -> str:
  """A folder holding only the `components` package (a link to ours), for
  KServe's interpreter: where the project is installed, the folder above
  the package is the pipeline environment's site-packages, whose
  TensorFlow must not shadow KServe's."""
  import hashlib  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  package = os.path.join(ROOT, 'components')
  folder = os.path.join(tempfile.gettempdir(), 'pipeline-kserve-path-' +
                        hashlib.sha256(package.encode()).hexdigest()[:12])
  link = os.path.join(folder, 'components')
  if os.path.realpath(link) != os.path.realpath(package):
    os.makedirs(folder, exist_ok=True)
    staged = f'{link}.{os.getpid()}'
    os.symlink(package, staged)
    os.replace(staged, link)
  return folder


def environment() -> dict:
  env = dict(os.environ)
  env['PYTHONPATH'] = _project_path()
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  return env


class Server:
  """A running model server, stopped by `stop()` or on leaving `with`."""

  def __init__(self, base: str, name: str, port: Optional[int] = None,
               host: str = '127.0.0.1', poll_seconds: Optional[float] = None,
               log: Optional[IO] = None, log_level: str = 'info',
               batch_windows: Optional[int] = None,
               batch_wait_ms: Optional[float] = None):
    self.name, self.host = name, host
    self.port = port or free_port()
    self.process = subprocess.Popen(
        command(base, name, host, self.port, poll_seconds, log_level,
                batch_windows, batch_wait_ms),
        env=environment(), stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True)

  @property
  def url(self) -> str:
    return f'http://{self.host}:{self.port}'

  def predict_url(self) -> str:
    return f'{self.url}/v1/models/{self.name}:predict'

  def wait_ready(self, deadline_seconds: float = READY_SECONDS) -> None:
    try:
      wait_ready(self.url, self.name, self.process, deadline_seconds)
    except LaunchError:
      self.stop()
      raise

  def stop(self, timeout: float = 15.0) -> None:
    if self.process.poll() is None:
      self.process.send_signal(signal.SIGTERM)
      try:
        self.process.wait(timeout)
      except subprocess.TimeoutExpired:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

  def __enter__(self) -> 'Server':
    return self

  def __exit__(self, *exc) -> None:
    self.stop()


def wait_ready(url: str, name: str, process: subprocess.Popen,
               deadline_seconds: float = READY_SECONDS) -> None:
  """Returns once `GET <url>/v1/models/<name>` says ready; LaunchError if
  `process` exits first or the deadline passes."""
  end = time.monotonic() + deadline_seconds
  while True:
    code = process.poll()
    if code is not None:
      raise LaunchError(f'the model server exited ({code}) before it was '
                        'ready')
    try:
      with urllib.request.urlopen(f'{url}/v1/models/{name}',
                                  timeout=2) as answer:
        if json.loads(answer.read()).get('ready'):
          return
    except (urllib.error.URLError, OSError, ValueError):
      pass
    if time.monotonic() > end:
      raise LaunchError(f'the model server was not ready within '
                        f'{deadline_seconds:.0f} s')
    time.sleep(0.25)


def post(url: str, body: dict, timeout: float = 30.0):
  """POSTs JSON; returns (HTTP status, decoded JSON answer)."""
  request = urllib.request.Request(
      url, data=json.dumps(body).encode(),
      headers={'content-type': 'application/json'})
  try:
    with urllib.request.urlopen(request, timeout=timeout) as answer:
      return answer.status, json.loads(answer.read())
  except urllib.error.HTTPError as e:
    text = e.read()
    try:
      return e.code, json.loads(text)
    except ValueError:
      return e.code, {'error': text.decode('utf-8', 'replace')}


def run_foreground(base: str, name: str, host: str, port: int,
                   log_level: str, batch_windows: Optional[int] = None,
                   batch_wait_ms: Optional[float] = None) -> int:
  """Runs the server until it exits or is interrupted (Ctrl-C stops it
  gracefully); returns its exit code. SIGTERM, Kubernetes' way of
  stopping a container, and SIGHUP, a closed terminal's, are passed on to
  the server as SIGTERM: it stops taking connections, answers the requests
  in flight (uvicorn's graceful shutdown, up to its grace period) and
  exits; the launcher returns 0 when it has stopped (killing it after
  `STOP_SECONDS`), so no server is left answering on the port."""
  process = subprocess.Popen(command(base, name, host, port,
                                     log_level=log_level,
                                     batch_windows=batch_windows,
                                     batch_wait_ms=batch_wait_ms),
                             env=environment())
  stopping = []

  def forward(signum, _frame):
    stopping.append(signum)
    process.send_signal(signal.SIGTERM)
    timer = threading.Timer(STOP_SECONDS, lambda: process.poll() is None
                            and process.kill())
    timer.daemon = True
    timer.start()

  previous = {signum: signal.signal(signum, forward)
              for signum in (signal.SIGTERM, signal.SIGHUP)}
  try:
    code = process.wait()
    return 0 if stopping and code in (0, -signal.SIGTERM,
                                      -signal.SIGKILL) else code
  except KeyboardInterrupt:
    # A terminal's Ctrl-C reached the server too; SIGTERM asks again in a
    # way uvicorn never takes as "force".
    process.send_signal(signal.SIGTERM)
    try:
      return process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
      process.kill()
      return process.wait()
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)
    sys.stdout.flush()
