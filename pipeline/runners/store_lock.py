"""The run lock of a pipeline whose ML Metadata lives on a database server.

A workspace's file lock protects one machine. When several machines share
one MySQL (or MariaDB) or PostgreSQL store, the lock must live where every
runner sees it: the server. MySQL's `GET_LOCK` and PostgreSQL's session
advisory locks are held by a connection, so the server releases them when
the holder's process dies, however it dies: a killed run never leaves a
stale lock. The holder also writes who it is (host, pid, workspace, time)
into a one-row-per-lock table, `pipeline_run_lock`, beside ML Metadata's
tables, so a refused runner can name it.

A run can lose its lock midway: the server restarts, the network drops,
an idle timeout closes the connection. The lock's connection is pinged
every :data:`KEEPALIVE_SECONDS`, and when it is gone the lock is won back
on a new connection if no other runner took it meanwhile. Before the
pusher pushes, :meth:`HeldLock.check` proves the lock is held (pinging
right then); a lock another runner took stops the run there, with
:class:`StoreLockLost`, so two runs never both push.

The drivers (PyMySQL, psycopg2) are imported only when a server is used.
"""

import contextlib
import hashlib
import logging
import socket
import threading
import time
from typing import Any, Iterator, Optional

from components.common import errors
from pipeline.metadata import server
from pipeline.settings import metadata_url

HOLDER_TABLE = 'pipeline_run_lock'
# A held lock's connection is pinged this often, so no idle timeout of the
# server (MySQL's wait_timeout) closes it during a long run, and a lost
# lock is noticed (and won back) within this time.
KEEPALIVE_SECONDS = 60.0


class StoreLockError(errors.PipelineError, RuntimeError):
  """Raised when the server cannot be reached or refuses the lock."""


class StoreLockBusy(StoreLockError, errors.BusyError):
  """Raised at once when another runner holds the lock; `holder` names
  it."""


class StoreLockLost(StoreLockError, errors.LockLostError):
  """Raised by :meth:`HeldLock.check` when the lock was lost midway and
  could not be won back."""


def describe_holder(workspace: str) -> str:
  """How this process names itself to a refused runner."""
  import os  # pylint: disable=g-import-not-at-top
  return (f'pid {os.getpid()} on {socket.gethostname()} since '
          f'{time.strftime("%Y-%m-%d %H:%M:%S")}, workspace {workspace}')


def _connect(store: metadata_url.MetadataUrl,
             create_database: bool = True) -> Any:
  try:
    return server.connect(store, create_database)
  except server.ServerError as e:
    raise StoreLockError(str(e)) from None


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
         holder: str) -> Iterator['HeldLock']:
  """Holds the store's run lock of `pipeline_name` for the block.

  Args:
    store: a MySQL or PostgreSQL metadata URL.
    pipeline_name: the pipeline whose runs must not interleave.
    holder: how this runner names itself (see :func:`describe_holder`).

  Yields:
    The :class:`HeldLock`, whose `check()` the pusher calls before it
    pushes.

  Raises:
    StoreLockBusy: at once when another runner holds the lock (its
      `holder` set).
    StoreLockError: when the server cannot be reached.
  """
  name = lock_key(store, pipeline_name)
  connection = _connect(store)
  try:
    with connection.cursor() as cursor:
      _create_holder_table(cursor, store)
      if not _try_lock(cursor, store, name):
        other = _read_holder(cursor, name) or 'another runner'
        raise StoreLockBusy(
            f'Another pipeline run ({other}) holds the run lock of '
            f'{pipeline_name!r} in {store.redacted()}; wait for it to '
            'finish.', holder=other)
      _write_holder(cursor, store, name, holder)
  except BaseException:
    connection.close()
    raise
  lock = HeldLock(store, pipeline_name, holder, connection)
  stop = threading.Event()
  keeper = threading.Thread(target=lock.keep_alive, args=(stop,),
                            daemon=True, name='run-lock-keeper')
  keeper.start()
  try:
    yield lock
  finally:
    stop.set()
    keeper.join()
    lock.release()


class HeldLock:
  """The run lock this process holds (made by :func:`held`).

  Attributes:
    lost_at: when the lock was first found lost (seconds since the
      epoch), or None while it never was.
    taken_by: the runner that took it meanwhile, once it did; else ''.
  """

  def __init__(self, store: metadata_url.MetadataUrl, pipeline_name: str,
               holder: str, connection: Any):
    self._store = store
    self._pipeline_name = pipeline_name
    self._name = lock_key(store, pipeline_name)
    self._holder = holder
    self._connection: Optional[Any] = connection
    self._mutex = threading.Lock()
    self._reason = ''
    self.lost_at: Optional[float] = None
    self.taken_by = ''

  @property
  def held(self) -> bool:
    """Whether the lock's connection was alive when last used (the
    keeper's last ping, or the last win-back), and no other runner took
    it."""
    return self._connection is not None and not self.taken_by

  def check(self) -> None:
    """Proves, by asking the server now, that the lock is still held;
    wins it back first when its connection was lost and no other runner
    took it meanwhile.

    Raises:
      StoreLockLost: naming the store, when the lock was lost and another
        runner took it, or the server cannot be reached to win it back.
    """
    with self._mutex:
      self._verify()
      if self._connection is None:
        raise StoreLockLost(self._lost_message())

  def keep_alive(self, stop: threading.Event) -> None:
    """Pings the lock's connection until `stop` is set, winning the lock
    back when the connection is lost (the keeper thread's loop)."""
    while not stop.wait(KEEPALIVE_SECONDS):
      with self._mutex:
        if not self.taken_by:
          self._verify()

  def release(self) -> None:
    """Releases the lock (a lost connection's lock is the server's to
    drop) and closes its connection."""
    with self._mutex:
      if self._connection is None:
        return
      try:
        with self._connection.cursor() as cursor:
          _unlock(cursor, self._store, self._name)
      except Exception:  # pylint: disable=broad-except
        pass  # The connection is gone, and the server dropped its lock.
      self._close()

  def _verify(self) -> None:
    if self.taken_by:
      return
    if self._connection is not None:
      try:
        with self._connection.cursor() as cursor:
          cursor.execute('SELECT 1')
          cursor.fetchone()
        return
      except Exception as e:  # pylint: disable=broad-except
        self._close()
        self._reason = server.describe_error(e, self._store) or type(e).__name__
        if self.lost_at is None:
          self.lost_at = time.time()
        logging.warning('pipeline: lost the connection holding the run lock '
                        'of %r (%s); winning it back', self._pipeline_name,
                        self._reason)
    self._win_back()

  def _win_back(self) -> None:
    try:
      connection = _connect(self._store, create_database=False)
    except StoreLockError as e:
      self._reason = str(e)
      return
    try:
      with connection.cursor() as cursor:
        if not _try_lock(cursor, self._store, self._name):
          self.taken_by = _read_holder(cursor, self._name) or 'another runner'
          connection.close()
          return
        recorded = _read_holder(cursor, self._name)
        if recorded and recorded != self._holder:
          # Another runner held the lock meanwhile and let it go: the two
          # runs overlapped, so this one must not go on to push.
          self.taken_by = recorded
          _unlock(cursor, self._store, self._name)
          connection.close()
          return
        _write_holder(cursor, self._store, self._name, self._holder)
    except Exception as e:  # pylint: disable=broad-except
      self._reason = server.describe_error(e, self._store) or type(e).__name__
      connection.close()
      return
    self._connection = connection
    logging.warning('pipeline: won back the run lock of %r',
                    self._pipeline_name)

  def _close(self) -> None:
    try:
      self._connection.close()
    except Exception:  # pylint: disable=broad-except
      pass  # Closing a dead connection can fail; it is closed either way.
    self._connection = None

  def _lost_message(self) -> str:
    when = time.strftime('%H:%M:%S', time.localtime(self.lost_at or
                                                    time.time()))
    if self.taken_by:
      after = (f'and another runner ({self.taken_by}) took it, so this run '
               'stopped before pushing')
    else:
      after = ('and the server cannot be reached to win it back '
               f'({self._reason}), so this run stopped before pushing')
    return (f'The run lock of {self._pipeline_name!r} in '
            f'{self._store.redacted()} was lost at {when} (the connection '
            f'to the server dropped) {after}. Nothing was pushed; run again '
            'once the other run has finished.')


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
