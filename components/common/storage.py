"""Files on a local disk or an object store, through one set of functions.

A path with a scheme (`gs://bucket/...`, `s3://bucket/...`) goes through
TensorFlow's filesystem layer (`tf.io.gfile`); `s3://` also needs
`tensorflow-io`, which registers that scheme and is imported here on first
use. A local path goes through `os` directly: the command line needs no
TensorFlow import for it, and writes keep `components.common.local_disk`'s
guarantees (a file appears whole or not at all, and survives a crash once
written).

On an object store an object also appears whole or not at all, but there
is no rename and no lock; callers that publish several files say which one
completes the set (see `components.ondevice.push`).

S3 settings come from the environment, as the AWS tools read them:
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and for a
server other than AWS `S3_ENDPOINT` or `AWS_ENDPOINT_URL` (see
:func:`share_s3_endpoint`; `S3_USE_HTTPS=0` for plain HTTP).
"""

import hashlib
import os
import re
import sys
from typing import List, Union

from components.common import local_disk

_URI_RE = re.compile(r'^[a-zA-Z][a-zA-Z0-9+.-]*://')


class StorageError(OSError):
  """Raised when a path's filesystem is unavailable or an access fails;
  names the path."""


def is_uri(path: str) -> bool:
  """True for `scheme://...` paths (object stores), False for local ones."""
  return bool(_URI_RE.match(path or ''))


def scheme(path: str) -> str:
  """The scheme of a URI ('s3', 'gs', ...), '' for a local path."""
  return path.split('://', 1)[0].lower() if is_uri(path) else ''


def join(base: str, *parts: str) -> str:
  """`os.path.join` for local paths; `/`-joined for URIs."""
  if not is_uri(base):
    return os.path.join(base, *parts)
  return '/'.join([base.rstrip('/')] + [p.strip('/') for p in parts if p])


def uses_tensorflow_io() -> bool:
  """True once this process loaded tensorflow-io's filesystems (its S3
  client aborts the process at exit; see `pipeline.cli.commands`)."""
  return 'tensorflow_io' in sys.modules


def share_s3_endpoint(environ=None) -> None:
  """Gives both S3 clients the one endpoint the user set.

  TensorFlow's (tensorflow-io) reads `S3_ENDPOINT`; Beam's (boto3) reads
  `AWS_ENDPOINT_URL`. Whichever is set is copied to the other, so a user
  of an S3-compatible server sets one, in either name.
  """
  environ = os.environ if environ is None else environ
  tensorflow_name, boto_name = 'S3_ENDPOINT', 'AWS_ENDPOINT_URL'
  if environ.get(tensorflow_name) and not environ.get(boto_name):
    endpoint = environ[tensorflow_name]
    if '://' not in endpoint:
      https = environ.get('S3_USE_HTTPS', '1') != '0'
      endpoint = ('https://' if https else 'http://') + endpoint
    environ[boto_name] = endpoint
  elif environ.get(boto_name) and not environ.get(tensorflow_name):
    environ[tensorflow_name] = environ[boto_name]
    if environ[boto_name].startswith('http://'):
      environ.setdefault('S3_USE_HTTPS', '0')


def _gfile(path: str):
  """tf.io.gfile, with the filesystem of `path`'s scheme registered."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if scheme(path) == 's3':
    share_s3_endpoint()
    try:
      import tensorflow_io  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    except ImportError as e:
      raise StorageError(
          f'{path}: s3:// paths need the tensorflow-io package '
          '(pip install tensorflow-io==0.37.1)') from e
  return tf.io.gfile


def _failure(path: str, error: Exception) -> StorageError:
  message = getattr(error, 'message', None) or str(error)
  return StorageError(f'{path}: {message}')


def isfile(path: str) -> bool:
  if not is_uri(path):
    return os.path.isfile(path)
  gfile = _gfile(path)
  return gfile.exists(path) and not gfile.isdir(path)


def listdir(path: str) -> List[str]:
  """Names in the folder `path` (none if it does not exist)."""
  if not is_uri(path):
    return os.listdir(path) if os.path.isdir(path) else []
  gfile = _gfile(path)
  if not gfile.isdir(path):
    return []
  return [name.rstrip('/') for name in gfile.listdir(path)]


def glob(pattern: str) -> List[str]:
  """Paths matching `pattern`, sorted."""
  if not is_uri(pattern):
    import glob as glob_lib  # pylint: disable=g-import-not-at-top
    return sorted(glob_lib.glob(pattern))
  return sorted(_gfile(pattern).glob(pattern))


def makedirs(path: str) -> None:
  """Creates `path` and its parents (on object stores, folders are only
  name prefixes; this is harmless there)."""
  if not is_uri(path):
    os.makedirs(path, exist_ok=True)
    return
  try:
    _gfile(path).makedirs(path)
  except Exception as e:  # pylint: disable=broad-except
    raise _failure(path, e) from e


def open_binary(path: str):
  """A readable, seekable binary file object for `path` (streamed from a
  bucket, not loaded whole)."""
  if not is_uri(path):
    return open(path, 'rb')  # pylint: disable=consider-using-with
  gfile = _gfile(path)
  if not gfile.exists(path):
    raise StorageError(f'{path}: no such object')
  return gfile.GFile(path, 'rb')


def read_bytes(path: str) -> bytes:
  if not is_uri(path):
    with open(path, 'rb') as f:
      return f.read()
  gfile = _gfile(path)
  try:
    with gfile.GFile(path, 'rb') as f:
      return f.read()
  except Exception as e:  # pylint: disable=broad-except
    raise _failure(path, e) from e


def read_text(path: str) -> str:
  return read_bytes(path).decode('utf-8')


def write_bytes(path: str, data: Union[bytes, str]) -> None:
  """Writes the whole file: readers see the old content or the new one.

  Local files are written atomically and flushed to disk
  (`local_disk.write_file`); objects are uploaded in one piece.
  """
  if isinstance(data, str):
    data = data.encode('utf-8')
  if not is_uri(path):
    local_disk.write_file(path, data)
    return
  gfile = _gfile(path)
  try:
    with gfile.GFile(path, 'wb') as f:
      f.write(data)
  except Exception as e:  # pylint: disable=broad-except
    raise _failure(path, e) from e


def upload(local_path: str, uri: str) -> None:
  """Copies a local file to `uri` in one object and checks its size there.

  Raises:
    StorageError: naming `uri` when the copy fails or comes out short.
  """
  gfile = _gfile(uri)
  size = os.path.getsize(local_path)
  try:
    gfile.copy(local_path, uri, overwrite=True)
    stored = gfile.stat(uri).length
  except Exception as e:  # pylint: disable=broad-except
    raise _failure(uri, e) from e
  if stored != size:
    raise StorageError(f'{uri}: {stored} bytes stored of {size}')


def remove(path: str) -> None:
  """Deletes one file."""
  if not is_uri(path):
    os.unlink(path)
    return
  try:
    _gfile(path).remove(path)
  except Exception as e:  # pylint: disable=broad-except
    raise _failure(path, e) from e


def sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()
