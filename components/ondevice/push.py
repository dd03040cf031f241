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
  (atomically, by rename), under a lock file so two pushers on one machine
  take turns.
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
The versions are written, and checked, by `components.common.versions`,
the push path phase two's pusher shares.
"""

import dataclasses
import json
from typing import Any, Dict, List, Optional, Tuple

from components.common import storage
from components.common import versions as versions_lib
from components.ondevice.manifest import Manifest

LATEST_FILE = 'LATEST'
MANIFEST_FILE = 'manifest.json'
MODEL_FILE = 'model.tflite'
LABELS_FILE = 'labels.txt'
# The waveform model: one window of samples in, the classes out.
WAVEFORM_FILE = 'waveform.tflite'


class PushError(RuntimeError):
  """Raised when a version cannot be written; the destination is unchanged."""


def versions(destination: str) -> List[int]:
  """Numbers of the versions under `destination` that have a manifest,
  ascending (see :func:`check_version` for the full check)."""
  return versions_lib.complete(destination, MANIFEST_FILE)


def latest_version(destination: str) -> Optional[int]:
  """The version `LATEST` names, or None before the first push."""
  path = storage.join(destination, LATEST_FILE)
  if not storage.isfile(path):
    return None
  text = storage.read_text(path).strip()
  return int(text) if versions_lib.is_version_name(text) else None


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
  wrong = versions_lib.first_mismatch(version_dir, manifest.digests())
  if wrong is not None:
    name, unreadable = wrong
    path = storage.join(version_dir, name)
    if unreadable:
      raise PushError(f'incomplete pushed version {version_dir}: {path} '
                      f'cannot be read ({unreadable})')
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
  manifest = dataclasses.replace(manifest,
                                 files=versions_lib.digests(files))
  try:
    storage.makedirs(destination)
  except OSError as e:
    raise PushError(f'cannot create push destination {destination}: {e}') from e
  try:
    return versions_lib.write(
        destination, files, MANIFEST_FILE,
        lambda version: _manifest_bytes(manifest, version),
        floor=latest_version(destination) or 0,
        then=lambda version: _set_latest(destination, version))
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
