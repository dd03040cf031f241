"""The run lock of a pipeline whose ML Metadata lives on a database server.

A workspace's file lock protects one machine. When several machines share
one MySQL (or MariaDB) or PostgreSQL store, the lock must live where every
runner sees it: the server. MySQL's `GET_LOCK` and PostgreSQL's session
advisory locks are held by a connection, so the server releases them when
the holder's process dies, however it dies: a killed run never leaves a
stale lock. The holder also writes who it is (host, pid, workspace, time)
into a one-row-per-lock table, `pipeline_run_lock`, beside ML Metadata's
tables, so a refused runner can name it.

The drivers (PyMySQL, psycopg2) are imported only when a server is used.
"""

import contextlib
import hashlib
import socket
import threading
import time
from typing import Any, Iterator

from pipeline import metadata_url

HOLDER_TABLE = 'pipeline_run_lock'
CONNECT_TIMEOUT_SECONDS = 10
# A held lock's connection is pinged this often, so no idle timeout of the
# server (MySQL's wait_timeout) closes it during a long run.
KEEPALIVE_SECONDS = 60.0
_MYSQL_UNKNOWN_DATABASE = 1049


class StoreLockError(RuntimeError):
  """Raised when the server cannot be reached or refuses the lock.

  Attributes:
    holder: who holds the lock, when another runner does; else ''.
  """

  def __init__(self, message: str, holder: str = ''):
    super().__init__(message)
    self.holder = holder


def describe_holder(workspace: str) -> str:
  """How this process names itself to a refused runner."""
  import os  # pylint: disable=g-import-not-at-top
  return (f'pid {os.getpid()} on {socket.gethostname()} since '
          f'{time.strftime("%Y-%m-%d %H:%M:%S")}, workspace {workspace}')


def connect(store: metadata_url.MetadataUrl, create_database: bool = True):
  """A DB-API connection to the store's database (autocommit).

  Args:
    store: a MySQL or PostgreSQL metadata URL.
    create_database: create the database when it is missing (as ML
      Metadata does on a run's first connection).

  Raises:
    StoreLockError: naming the redacted URL and the server's answer.
  """
  try:
    if store.scheme == 'mysql':
      return _connect_mysql(store, create_database)
    return _connect_postgresql(store, create_database)
  except StoreLockError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # Both drivers raise their own error classes; the text is what matters.
    raise StoreLockError(f'cannot reach the ML Metadata store '
                         f'{store.redacted()}: {_clean(e, store)}') from None


def _clean(error: BaseException, store: metadata_url.MetadataUrl) -> str:
  text = ' '.join(str(error).split())
  return store.hide(text)


def _connect_mysql(store: metadata_url.MetadataUrl, create_database: bool):
  import pymysql  # pylint: disable=g-import-not-at-top

  def open_database(name):
    return pymysql.connect(
        host=store.host, port=store.port, user=store.user,
        password=store.password, database=name,
        connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True)

  try:
    return open_database(store.database)
  except pymysql.err.OperationalError as e:
    if not create_database or e.args[0] != _MYSQL_UNKNOWN_DATABASE:
      raise
  # The database is new (a user allowed to use but not to create an
  # existing one never gets here).
  connection = open_database(None)
  with connection.cursor() as cursor:
    cursor.execute(
        f'CREATE DATABASE IF NOT EXISTS `{_mysql_name(store.database)}`')
    cursor.execute(f'USE `{_mysql_name(store.database)}`')
  return connection


def _mysql_name(name: str) -> str:
  return name.replace('`', '``')


def _connect_postgresql(store: metadata_url.MetadataUrl,
                        create_database: bool):
  import psycopg2  # pylint: disable=g-import-not-at-top

  def open_database(name):
    connection = psycopg2.connect(
        host=store.host, port=store.port, user=store.user,
        password=store.password, dbname=name,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name='pipeline run lock')
    connection.autocommit = True
    return connection

  try:
    return open_database(store.database)
  except psycopg2.OperationalError as e:
    if not create_database or 'does not exist' not in str(e):
      raise
  # The database is new: create it from the maintenance database.
  maintenance = open_database('postgres')
  try:
    with maintenance.cursor() as cursor:
      cursor.execute('SELECT 1 FROM pg_database WHERE datname = %s',
                     (store.database,))
      if cursor.fetchone() is None:
        name = store.database.replace('"', '""')
        try:
          cursor.execute(f'CREATE DATABASE "{name}"')
        except psycopg2.errors.DuplicateDatabase:
          pass  # Another runner created it meanwhile.
  finally:
    maintenance.close()
  return open_database(store.database)


def lock_key(store: metadata_url.MetadataUrl, pipeline_name: str) -> str:
  """The lock's name: the database and the pipeline (at most 64 chars,
  MySQL's limit; a longer one is shortened with a hash)."""
  name = f'pipeline-run:{store.database}:{pipeline_name}'
  if len(name) > 64:
    name = name[:47] + ':' + hashlib.sha256(name.encode()).hexdigest()[:16]
  return name


def _advisory_key(name: str) -> int:
  """PostgreSQL's advisory locks take a signed 64-bit number."""
  return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], 'big',
                        signed=True)


@contextlib.contextmanager
def held(store: metadata_url.MetadataUrl, pipeline_name: str,
         holder: str) -> Iterator[None]:
  """Holds the store's run lock of `pipeline_name` for the block.

  Args:
    store: a MySQL or PostgreSQL metadata URL.
    pipeline_name: the pipeline whose runs must not interleave.
    holder: how this runner names itself (see :func:`describe_holder`).

  Raises:
    StoreLockError: at once when another runner holds the lock (its
      `holder` set), or when the server cannot be reached.
  """
  name = lock_key(store, pipeline_name)
  connection = connect(store)
  try:
    with connection.cursor() as cursor:
      _create_holder_table(cursor, store)
      if not _try_lock(cursor, store, name):
        other = _read_holder(cursor, name) or 'another runner'
        raise StoreLockError(
            f'Another pipeline run ({other}) holds the run lock of '
            f'{pipeline_name!r} in {store.redacted()}; wait for it to '
            'finish.', holder=other)
      _write_holder(cursor, store, name, holder)
    stop = threading.Event()
    keeper = threading.Thread(target=_keep_alive,
                              args=(connection, stop), daemon=True)
    keeper.start()
    try:
      yield
    finally:
      stop.set()
      keeper.join()
      with connection.cursor() as cursor:
        _unlock(cursor, store, name)
  finally:
    connection.close()


def _create_holder_table(cursor: Any,
                         store: metadata_url.MetadataUrl) -> None:
  if store.scheme == 'mysql':
    cursor.execute(f'CREATE TABLE IF NOT EXISTS {HOLDER_TABLE} ('
                   'name VARCHAR(64) PRIMARY KEY, holder TEXT NOT NULL)')
  else:
    cursor.execute(f'CREATE TABLE IF NOT EXISTS {HOLDER_TABLE} ('
                   'name TEXT PRIMARY KEY, holder TEXT NOT NULL)')


def _try_lock(cursor: Any, store: metadata_url.MetadataUrl,
              name: str) -> bool:
  if store.scheme == 'mysql':
    cursor.execute('SELECT GET_LOCK(%s, 0)', (name,))
  else:
    cursor.execute('SELECT pg_try_advisory_lock(%s)', (_advisory_key(name),))
  return bool(cursor.fetchone()[0])


def _unlock(cursor: Any, store: metadata_url.MetadataUrl, name: str) -> None:
  if store.scheme == 'mysql':
    cursor.execute('SELECT RELEASE_LOCK(%s)', (name,))
  else:
    cursor.execute('SELECT pg_advisory_unlock(%s)', (_advisory_key(name),))


def _write_holder(cursor: Any, store: metadata_url.MetadataUrl, name: str,
                  holder: str) -> None:
  if store.scheme == 'mysql':
    cursor.execute(f'REPLACE INTO {HOLDER_TABLE} (name, holder) '
                   'VALUES (%s, %s)', (name, holder))
  else:
    cursor.execute(f'INSERT INTO {HOLDER_TABLE} (name, holder) '
                   'VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET '
                   'holder = EXCLUDED.holder', (name, holder))


def _read_holder(cursor: Any, name: str) -> str:
  cursor.execute(f'SELECT holder FROM {HOLDER_TABLE} WHERE name = %s',
                 (name,))
  row = cursor.fetchone()
  return row[0] if row else ''


def _keep_alive(connection: Any, stop: threading.Event) -> None:
  while not stop.wait(KEEPALIVE_SECONDS):
    try:
      with connection.cursor() as cursor:
        cursor.execute('SELECT 1')
        cursor.fetchone()
    except Exception:  # pylint: disable=broad-except
      return  # The run goes on; the server dropped the lock with it.
