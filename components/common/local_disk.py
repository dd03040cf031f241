"""Atomic writes and locks on a local disk: the one place for both.

A file or folder is written beside its final place under a hidden staging
name, flushed to disk, and renamed into place, so a reader sees either the
old state or the complete new one, and a crash leaves at most a hidden
`.staging-*` leftover, which every reader ignores. Locks are `flock` on a
lock file: they hold between the processes of one machine, not across
machines, and not on object stores (`gs://`, `s3://`), which have neither
rename nor locks.
"""

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from typing import Iterator, Union

STAGING_PREFIX = '.staging-'


class LockBusy(RuntimeError):
  """Raised by a non-blocking :func:`locked` when another process holds it.

  Attributes:
    holder: what the holder wrote into the lock file (its pid and since
      when), or 'another process'.
  """

  def __init__(self, path: str, holder: str):
    super().__init__(f'{path} is locked by {holder}')
    self.holder = holder


def fsync_dir(path: str) -> None:
  """Flushes a folder's entries (new names, renames) to disk."""
  fd = os.open(path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def _fsync_tree(root: str) -> None:
  for folder, _, names in os.walk(root):
    for name in names:
      path = os.path.join(folder, name)
      if not os.path.islink(path):
        with open(path, 'rb') as f:
          os.fsync(f.fileno())
    fsync_dir(folder)


def write_file(path: str, data: Union[bytes, str], mode: int = 0o644) -> None:
  """Writes `path` all at once: readers see the old file or the new one.

  Args:
    path: the file; its folder must exist.
    data: bytes, or text written as UTF-8.
    mode: permission bits of the new file.

  Raises:
    OSError: when the folder cannot be written (nothing is left behind).
  """
  if isinstance(data, str):
    data = data.encode('utf-8')
  folder = os.path.dirname(os.path.abspath(path))
  handle, staging = tempfile.mkstemp(prefix=STAGING_PREFIX, dir=folder)
  try:
    with os.fdopen(handle, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(staging, mode)
    os.replace(staging, path)
  except BaseException:
    if os.path.exists(staging):
      os.unlink(staging)
    raise
  fsync_dir(folder)


@contextlib.contextmanager
def staged_folder(final: str, durable: bool = True) -> Iterator[str]:
  """Yields a hidden staging folder that becomes `final` when the block ends.

  If the block raises, the staging folder is removed and `final` is never
  created.

  Args:
    final: the folder to create; it must not exist yet.
    durable: flush every file to disk before the rename (off for data that
      can be made again, such as the synthesized data set).

  Yields:
    The staging folder's path (readable by all, like `final` will be).
  """
  parent = os.path.dirname(os.path.abspath(final))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent)
  try:
    os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide it from servers
    yield staging
    if durable:
      _fsync_tree(staging)
    os.rename(staging, final)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  fsync_dir(parent)


@contextlib.contextmanager
def locked(path: str, blocking: bool = True) -> Iterator[None]:
  """Holds an exclusive lock on the lock file `path` for the block.

  The holder writes its pid and the time into the file, so a refused
  process can name it.

  Args:
    path: the lock file (created if needed, with its folder).
    blocking: wait for the lock; when False, raise :class:`LockBusy` at once.

  Raises:
    LockBusy: when `blocking` is False and another process holds the lock.
  """
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'a+', encoding='utf-8') as handle:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError as e:
      handle.seek(0)
      raise LockBusy(path, handle.read().strip() or 'another process') from e
    handle.seek(0)
    handle.truncate()
    handle.write(f'pid {os.getpid()} since {time.strftime("%H:%M:%S")}')
    handle.flush()
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)
