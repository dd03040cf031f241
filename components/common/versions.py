"""Numbered versions under a base path, each written whole or not at all:
the one push path both phases' pushers use.

A base (a local folder, `gs://...` or `s3://...`) holds numbered versions,
`<base>/1/`, `<base>/2/`, ...; a version is complete when its manifest
exists, and every file the manifest lists has the SHA-256 it gives. How a
version is written:

- **Local disk:** under a lock file (two pushers on one machine take
  turns), into a hidden staging folder that is flushed to disk and renamed
  into place whole (servers and devices skip names that are not numbers).
- **Object store** (no rename, no lock): under the next number past every
  numbered prefix, complete or not (a killed upload's leftovers are never
  mixed into a new version), object by object, each read back and checked
  against its SHA-256; the manifest after the files, but before the files
  named `last` (a model server loads a version once its `saved_model.pb`
  is there).

Each phase keeps what is its own: the manifest's type and place, phase
one's `LATEST` pointer, phase two's model-name folder
(`components.ondevice.push`, `components.cloud.push`).
"""

import hashlib
import os
import re
import shutil
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from components.common import local_disk
from components.common import storage

_VERSION_RE = re.compile(r'^[0-9]+$')
LOCK_FILE = '.push.lock'
# A file of a version: its bytes, or the path of a local file holding them.
Source = Union[bytes, 'LocalFile']


class LocalFile(str):
  """The path of a local file whose bytes a version holds (read when
  written, so a large model is never held twice in memory)."""


def is_version_name(name: str) -> bool:
  """Whether a folder or prefix name is a version number."""
  return bool(_VERSION_RE.match(name))


def numbers(base: str) -> List[int]:
  """Every numbered folder (or prefix) under `base`, complete or not;
  none when `base` does not exist."""
  try:
    names = storage.listdir(base)
  except OSError:
    return []
  return [int(name) for name in names if is_version_name(name)]


def complete(base: str, manifest_path: str) -> List[int]:
  """The versions under `base` that have their manifest (`manifest_path`,
  relative to a version's folder), ascending."""
  return sorted(number for number in numbers(base) if storage.isfile(
      storage.join(base, str(number), *manifest_path.split('/'))))


def _bytes_of(source: Source) -> bytes:
  if isinstance(source, LocalFile):
    with open(source, 'rb') as f:
      return f.read()
  return source


def digests(files: Dict[str, Source]) -> Dict[str, str]:
  """Each file's SHA-256 (relative path -> hex digest); a local file is
  read in blocks, as :func:`first_mismatch` reads it."""
  return {name: _sha256_of(source) if isinstance(source, LocalFile)
          else storage.sha256(source) for name, source in files.items()}


def _sha256_of(path: str) -> str:
  """A file's SHA-256, read in blocks when it is local (a model's variables
  may be large), whole from a bucket."""
  if storage.is_uri(path):
    return storage.sha256(storage.read_bytes(path))
  found = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      found.update(block)
  return found.hexdigest()


def first_mismatch(version_dir: str, expected: Dict[str, Optional[str]]
                   ) -> Optional[Tuple[str, Optional[str]]]:
  """The first file (in name order) of a version that is not as pushed, or
  None when every file has its SHA-256 (a digest of None, which old
  manifests recorded, is not checked).

  Returns:
    (relative path, why it cannot be read), the reason None when the file
    was read and its SHA-256 differs (corrupt or replaced).
  """
  for name, digest in sorted(expected.items()):
    if digest is None:
      continue
    try:
      found = _sha256_of(storage.join(version_dir, *name.split('/')))
    except OSError as e:
      return name, str(getattr(e, 'strerror', None) or e)
    if found != digest:
      return name, None
  return None


def write(base: str, files: Dict[str, Source], manifest_path: str,
          manifest: Callable[[int], bytes], last: Sequence[str] = (),
          floor: int = 0,
          then: Optional[Callable[[int], None]] = None) -> Tuple[int, str]:
  """Writes the next version under `base` (created if needed).

  Args:
    base: the versions' folder or bucket prefix.
    files: relative path ('/'-separated) -> bytes or :class:`LocalFile`.
    manifest_path: where the manifest goes, relative to the version.
    manifest: the manifest's bytes for the version number chosen.
    last: files uploaded after the manifest on an object store.
    floor: the number the next version must pass besides the existing ones
      (phase one's `LATEST`, which may name a version since removed).
    then: called with the version number once it is complete, still under
      the local lock (phase one moves its `LATEST` there).

  Returns:
    (version number, version folder).

  Raises:
    OSError: when the base cannot be written; on a local disk nothing is
      left, on a bucket a numbered prefix without a manifest, which no
      reader accepts and no later version reuses.
  """
  storage.makedirs(base)
  if storage.is_uri(base):
    return _write_object_store(base, files, manifest_path, manifest, last,
                               floor, then)
  with local_disk.locked(os.path.join(base, LOCK_FILE)):
    version = max(numbers(base) + [floor, 0]) + 1
    final = os.path.join(base, str(version))
    # The staging folder is flushed to disk, then renamed whole.
    with local_disk.staged_folder(final) as staging:
      for name, source in list(files.items()) + [
          (manifest_path, manifest(version))]:
        path = os.path.join(staging, *name.split('/'))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(source, LocalFile):
          shutil.copyfile(source, path)
        else:
          local_disk.write_file(path, source)
    if then is not None:
      then(version)
    return version, final


def _write_object_store(base, files, manifest_path, manifest, last, floor,
                        then):
  version = max(numbers(base) + [floor, 0]) + 1
  final = storage.join(base, str(version))
  storage.makedirs(final)  # A folder marker where the store keeps them.
  ordered = ([(name, files[name]) for name in files if name not in last] +
             [(manifest_path, manifest(version))] +
             [(name, files[name]) for name in files if name in last])
  for name, source in ordered:
    data = _bytes_of(source)
    target = storage.join(final, *name.split('/'))
    storage.write_bytes(target, data)
    if storage.sha256(storage.read_bytes(target)) != storage.sha256(data):
      raise OSError(f'{target} read back differs from what was uploaded')
  if then is not None:
    then(version)
  return version, final
