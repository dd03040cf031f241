"""Versioned, all-or-nothing pushes of TFLite models to a folder or bucket.

Layout of a destination (a local folder, `gs://...` or `s3://...`)::

  <destination>/
    1/  model.tflite  labels.txt  manifest.json
    2/  ...
    LATEST            the number of the newest complete version

A version is complete when its manifest exists and every file it lists has
the SHA-256 the manifest gives (`files`); `LATEST` only ever names a
complete version. How each kind of destination keeps that:

- **Local disk:** the version is written in a hidden staging folder,
  flushed to disk, and renamed into place; only then is `LATEST` replaced
  (atomically, by rename); both through `components.common.local_disk`, under a
  lock file so two pushers on one machine take turns.
- **Object store** (no rename, no lock): each file is uploaded, read back
  and checked against its SHA-256; the manifest is uploaded last and read
  back; then `LATEST`. A pusher killed mid-upload leaves a numbered prefix
  with no manifest, which no reader accepts and no later push reuses, and
  `LATEST` on the previous complete version. Two pushers must not write
  one bucket destination at once; the pipeline's run lock (one run at a
  time per pipeline, across machines with a shared metadata store) keeps
  that.

A device polling the destination therefore never sees a half-written
model, and a crash at any point leaves `LATEST` naming a complete version.
"""

import dataclasses
import json
import re
from typing import Any, Dict, List, Optional, Tuple

from components.common import local_disk
from components.common import storage
from components.ondevice.manifest import Manifest

LATEST_FILE = 'LATEST'
MANIFEST_FILE = 'manifest.json'
MODEL_FILE = 'model.tflite'
LABELS_FILE = 'labels.txt'
# The waveform model: one window of samples in, the classes out.
WAVEFORM_FILE = 'waveform.tflite'
_VERSION_RE = re.compile(r'^[0-9]+$')


class PushError(RuntimeError):
  """Raised when a version cannot be written; the destination is unchanged."""


def _numbers(destination: str) -> List[int]:
  """Every numbered folder (or prefix), complete or not."""
  return [int(name) for name in storage.listdir(destination)
          if _VERSION_RE.match(name)]


def versions(destination: str) -> List[int]:
  """Numbers of the versions under `destination` that have a manifest,
  ascending (see :func:`check_version` for the full check)."""
  return sorted(
      number for number in _numbers(destination)
      if storage.isfile(storage.join(destination, str(number), MANIFEST_FILE)))


def latest_version(destination: str) -> Optional[int]:
  """The version `LATEST` names, or None before the first push."""
  path = storage.join(destination, LATEST_FILE)
  if not storage.isfile(path):
    return None
  text = storage.read_text(path).strip()
  return int(text) if _VERSION_RE.match(text) else None


def read_manifest(version_dir: str) -> Manifest:
  """The manifest of one version folder.

  Raises:
    OSError: when it cannot be read.
    ValueError: when it is not JSON, or a field a device relies on is
      missing or of the wrong type (a :class:`ManifestError`).
  """
  return Manifest.from_json(json.loads(storage.read_text(
      storage.join(version_dir, MANIFEST_FILE))))


def check_version(version_dir: str) -> Manifest:
  """Reads a version's manifest and checks each file it lists.

  Returns:
    The manifest.

  Raises:
    PushError: when the manifest is missing or unreadable, or a listed
      file is missing or differs from its SHA-256 (corrupt or replaced).
  """
  try:
    manifest = read_manifest(version_dir)
  except (OSError, ValueError) as e:
    raise PushError(f'{version_dir} is not a complete pushed version: no '
                    f'readable {MANIFEST_FILE} ({e})') from e
  for name, digest in manifest.digests().items():
    if digest is None:
      continue  # old manifests recorded no digest for the labels
    path = storage.join(version_dir, name)
    try:
      data = storage.read_bytes(path)
    except OSError as e:
      raise PushError(f'incomplete pushed version {version_dir}: {e}') from e
    if storage.sha256(data) != digest:
      raise PushError(f'{path} does not match the SHA-256 in its manifest; '
                      'the file is corrupt or was replaced.')
  return manifest


def resolve_model_dir(path: str) -> str:
  """A version folder from a destination (its LATEST) or a version folder.

  Raises:
    PushError: if `path` holds neither a manifest nor a LATEST pointer.
  """
  if storage.isfile(storage.join(path, MANIFEST_FILE)):
    return path
  version = latest_version(path)
  if version is None:
    raise PushError(f'{path} is neither a pushed model folder (no '
                    f'{MANIFEST_FILE}) nor a push destination (no '
                    f'{LATEST_FILE}).')
  return storage.join(path, str(version))


def _set_latest(destination: str, version: int) -> None:
  storage.write_bytes(storage.join(destination, LATEST_FILE), f'{version}\n')


def _manifest_bytes(manifest: Manifest, version: int) -> bytes:
  return json.dumps(dataclasses.replace(manifest, version=version).to_json(),
                    indent=2).encode('utf-8')


def _write_local(destination: str, files: Dict[str, bytes],
                 manifest: Manifest) -> Tuple[int, str]:
  with local_disk.locked(storage.join(destination, '.push.lock')):
    version = max(versions(destination) + [latest_version(destination) or 0,
                                           0]) + 1
    final = storage.join(destination, str(version))
    with local_disk.staged_folder(final) as staging:
      for name, data in files.items():
        local_disk.write_file(storage.join(staging, name), data)
      local_disk.write_file(storage.join(staging, MANIFEST_FILE),
                            _manifest_bytes(manifest, version))
    _set_latest(destination, version)
    return version, final


def _upload_checked(path: str, data: bytes) -> None:
  """Uploads one object and reads it back; OSError if it differs."""
  storage.write_bytes(path, data)
  if storage.sha256(storage.read_bytes(path)) != storage.sha256(data):
    raise OSError(f'{path} read back differs from what was uploaded')


def _write_object_store(destination: str, files: Dict[str, bytes],
                        manifest: Manifest) -> Tuple[int, str]:
  # Past every numbered prefix, complete or not: a killed upload's
  # leftovers are never mixed into a new version.
  version = max(_numbers(destination) + [latest_version(destination) or 0,
                                         0]) + 1
  final = storage.join(destination, str(version))
  storage.makedirs(final)  # A folder marker where the store keeps them.
  for name, data in files.items():
    _upload_checked(storage.join(final, name), data)
  _upload_checked(storage.join(final, MANIFEST_FILE),
                  _manifest_bytes(manifest, version))
  _set_latest(destination, version)
  return version, final


def write_version(destination: str, files: Dict[str, bytes],
                  manifest: Manifest) -> Tuple[int, str]:
  """Writes the next version and then points `LATEST` at it.

  Args:
    destination: the push destination, a folder or a `gs://`/`s3://` URI
      (created if needed).
    files: file name -> bytes, e.g. `model.tflite` and `labels.txt`.
    manifest: the version's manifest; its `version`, and `files` (each
      file's SHA-256), are filled in here.

  Returns:
    (version number, version folder).

  Raises:
    PushError: when the destination cannot be written (permissions, full
      disk, an unreachable bucket); `LATEST` is unchanged and no reader
      accepts what was partly written.
  """
  manifest = dataclasses.replace(manifest, files={
      name: storage.sha256(data) for name, data in files.items()})
  try:
    storage.makedirs(destination)
  except OSError as e:
    raise PushError(f'cannot create push destination {destination}: {e}') from e
  write = _write_object_store if storage.is_uri(destination) else _write_local
  try:
    return write(destination, files, manifest)
  except OSError as e:
    raise PushError(f'push to {destination} failed, nothing was pushed and '
                    f'{LATEST_FILE} is unchanged: {e}') from e


def find_identical(destination: str, converted_sha256: str,
                   decisions: Optional[Dict[str, Any]] = None
                   ) -> Optional[int]:
  """The latest version if it came from the same converted model and makes
  the same decisions on a device, else None.

  Args:
    destination: the push destination.
    converted_sha256: SHA-256 of the converter's output, before metadata was
      embedded (embedding stamps the time, the conversion is deterministic).
    decisions: what the new manifest tells a device to decide by
      (`Manifest.decisions()`: its threshold and pairing key); a version
      holding the same model with other decisions is not identical.
  """
  version = latest_version(destination)
  if version is None:
    return None
  try:
    manifest = read_manifest(storage.join(destination, str(version)))
  except (OSError, ValueError):
    return None
  if manifest.converted_sha256 != converted_sha256:
    return None
  if decisions is not None and manifest.decisions() != decisions:
    return None
  return version
