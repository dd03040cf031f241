"""Private MariaDB and PostgreSQL servers for the tests.

Each server is a real one from Debian's packages (`scripts/ensure_databases.sh`
installs them), started in a temporary folder on a free loopback port with
a user that logs in with a password, as a shared store would have, and
stopped by the test that started it. Nothing touches the packages' own
services or data.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import List, Optional

USER = 'pipeline'
PASSWORD = 'Secret-Pw-4-tests'


class ServerError(RuntimeError):
  """Raised when a server cannot be started; holds its log's tail."""


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: str,
                   seconds: float = 60.0) -> None:
  deadline = time.time() + seconds
  while time.time() < deadline:
    if process is not None and process.poll() is not None:
      break
    try:
      with socket.create_connection(('127.0.0.1', port), timeout=1):
        return
    except OSError:
      time.sleep(0.2)
  raise ServerError(f'server on port {port} did not start; log:\n'
                    + _tail(log))


def wait_for_line(stream, text: str, seconds: float) -> List[str]:
  """Reads a child process's output until a line holds `text`; returns
  the lines read.

  Raises:
    AssertionError: when the stream ends or `seconds` pass first, with
      the last lines seen.
  """
  deadline = time.time() + seconds
  seen: List[str] = []
  while time.time() < deadline:
    line = stream.readline()
    if not line:
      break
    seen.append(line)
    if text in line:
      return seen
  raise AssertionError(f'{text!r} not seen; got:\n' + ''.join(seen[-30:]))


def _tail(path: str) -> str:
  try:
    with open(path, encoding='utf-8', errors='replace') as f:
      return ''.join(f.readlines()[-20:])
  except OSError:
    return '(no log)'


def _run(args: List[str], log: str) -> None:
  with open(log, 'a', encoding='utf-8') as out:
    result = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT,
                            check=False)
  if result.returncode != 0:
    raise ServerError(f'{" ".join(args)} failed; log:\n' + _tail(log))


def stop_process(process: subprocess.Popen) -> None:
  """Terminates a server process, killing it after 30 s."""
  if process.poll() is None:
    process.terminate()
    try:
      process.wait(timeout=30)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


class Server:
  """A running private server.

  Attributes:
    kind: 'mariadb' or 'postgresql'.
    port: its loopback port.
  """

  def __init__(self, kind: str, port: int, stop_command: Optional[List[str]],
               process: Optional[subprocess.Popen], folder: str,
               start_command: List[str], log: str):
    self.kind = kind
    self.port = port
    self._stop_command = stop_command
    self._process = process
    self._folder = folder
    self._start_command = start_command
    self._log = log

  def url(self, database: str, password: bool = True) -> str:
    """A metadata URL of `database` on this server."""
    scheme = 'mysql' if self.kind == 'mariadb' else 'postgresql'
    secret = f':{PASSWORD}' if password else ''
    return f'{scheme}://{USER}{secret}@127.0.0.1:{self.port}/{database}'

  def restart(self) -> None:
    """Stops the server as a restart would (every client connection is
    dropped, and with it every lock it held), then starts it again on the
    same port and data."""
    self._halt()
    if self._stop_command:
      _run(self._start_command, self._log)
    else:
      self._process = subprocess.Popen(
          self._start_command, stdout=subprocess.DEVNULL,
          stderr=subprocess.DEVNULL)
    wait_for_port(self.port, self._process, self._log)

  def _halt(self) -> None:
    if self._stop_command:
      subprocess.run(self._stop_command, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, check=False)
    if self._process is not None:
      stop_process(self._process)

  def stop(self) -> None:
    self._halt()
    shutil.rmtree(self._folder, ignore_errors=True)


def mariadb_binaries() -> Optional[str]:
  """The MariaDB server binary, or None when it is not installed."""
  for candidate in ('/usr/sbin/mariadbd', shutil.which('mariadbd') or ''):
    if candidate and os.access(candidate, os.X_OK):
      return candidate
  return None


def postgresql_bin() -> Optional[str]:
  """The newest PostgreSQL bin folder, or None when none is installed."""
  found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                 key=lambda p: int(p.split('/')[4]))
  return os.path.dirname(found[-1]) if found else None


def start_mariadb() -> Server:
  """Starts a private MariaDB server with a password user."""
  mariadbd = mariadb_binaries()
  # Under /tmp itself: a short socket path (108 bytes at most).
  folder = tempfile.mkdtemp(prefix='pipeline-mariadb-')
  data, sock = os.path.join(folder, 'data'), os.path.join(folder, 'sock')
  log = os.path.join(folder, 'server.log')
  # Its own temporary folder: in the shared /tmp, a bootstrap once failed
  # on a temporary table file ('/tmp/#sql-temptable-...') gone under it.
  scratch = os.path.join(folder, 'tmp')
  os.makedirs(scratch)
  as_root = ['--user=root'] if os.geteuid() == 0 else []
  _run(['mariadb-install-db', '--no-defaults', f'--datadir={data}',
        '--auth-root-authentication-method=normal', '--skip-test-db',
        f'--tmpdir={scratch}', *as_root], log)
  port = free_port()
  command = [mariadbd, '--no-defaults', f'--datadir={data}',
             f'--socket={sock}', f'--port={port}', '--bind-address=127.0.0.1',
             '--skip-log-bin', '--innodb-buffer-pool-size=64M',
             f'--tmpdir={scratch}', f'--log-error={log}', *as_root]
  process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  server = Server('mariadb', port, None, process, folder, command, log)
  try:
    wait_for_port(port, process, log)
    _run(['mariadb', f'--socket={sock}', '-uroot', '-e',
          f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; "
          f"GRANT ALL ON *.* TO '{USER}'@'%';"], log)
  except ServerError:
    server.stop()
    raise
  return server


def start_postgresql() -> Server:
  """Starts a private PostgreSQL server with a password user (as the
  `postgres` account when run by root, which PostgreSQL refuses)."""
  bin_dir = postgresql_bin()
  # Under /tmp itself, which the postgres account can reach (pytest's
  # folders are private to root).
  folder = tempfile.mkdtemp(prefix='pipeline-postgresql-')
  data = os.path.join(folder, 'data')
  log = os.path.join(folder, 'server.log')
  as_user: List[str] = []
  if os.geteuid() == 0:
    shutil.chown(folder, 'postgres')
    as_user = ['runuser', '-u', 'postgres', '--']
  _run([*as_user, os.path.join(bin_dir, 'initdb'), '-D', data, '-U',
        'postgres', '--auth-local=trust', '--auth-host=scram-sha-256'], log)
  port = free_port()
  pg_ctl = [*as_user, os.path.join(bin_dir, 'pg_ctl'), '-D', data]
  # The server writes its own log, as the postgres account.
  server_log = os.path.join(folder, 'postgres.log')
  start = [*pg_ctl, '-l', server_log, '-w', '-o',
           f'-p {port} -k {folder} -c listen_addresses=127.0.0.1 '
           '-c fsync=off', 'start']
  try:
    _run(start, log)
  except ServerError as e:
    shutil.rmtree(folder, ignore_errors=True)
    raise ServerError(f'{e}\n{_tail(server_log)}') from None
  server = Server('postgresql', port, [*pg_ctl, '-m', 'fast', '-w', 'stop'],
                  None, folder, start, log)
  try:
    _run([*as_user, os.path.join(bin_dir, 'psql'), '-h', folder, '-p',
          str(port), '-U', 'postgres', '-c',
          f"CREATE ROLE {USER} LOGIN CREATEDB PASSWORD '{PASSWORD}'"], log)
  except ServerError:
    server.stop()
    raise
  return server
