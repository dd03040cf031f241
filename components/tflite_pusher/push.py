"""Versioned, all-or-nothing pushes of TFLite models to a folder.

Layout of a destination::

  <destination>/
    1/  model.tflite  labels.txt  manifest.json
    2/  ...
    LATEST            the number of the newest complete version

A version is written in a hidden staging folder, flushed to disk, and renamed
into place; only then is `LATEST` replaced (atomically, by rename); both
through `components.local_disk`. A device
polling the destination therefore never sees a half-written model, and a
crash at any point leaves `LATEST` naming a complete version.
"""

import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from components import local_disk

LATEST_FILE = 'LATEST'
MANIFEST_FILE = 'manifest.json'
MODEL_FILE = 'model.tflite'
LABELS_FILE = 'labels.txt'
_VERSION_RE = re.compile(r'^[0-9]+$')


class PushError(RuntimeError):
  """Raised when a version cannot be written; the destination is unchanged."""


def versions(destination: str) -> List[int]:
  """Numbers of the complete versions under `destination`, ascending."""
  if not os.path.isdir(destination):
    return []
  return sorted(
      int(name) for name in os.listdir(destination)
      if _VERSION_RE.match(name) and
      os.path.isfile(os.path.join(destination, name, MANIFEST_FILE)))


def latest_version(destination: str) -> Optional[int]:
  """The version `LATEST` names, or None before the first push."""
  path = os.path.join(destination, LATEST_FILE)
  if not os.path.isfile(path):
    return None
  with open(path, encoding='utf-8') as f:
    text = f.read().strip()
  return int(text) if _VERSION_RE.match(text) else None


def read_manifest(version_dir: str) -> Dict[str, Any]:
  """The manifest of one version folder."""
  with open(os.path.join(version_dir, MANIFEST_FILE), encoding='utf-8') as f:
    return json.load(f)


def resolve_model_dir(path: str) -> str:
  """A version folder from a destination (its LATEST) or a version folder.

  Raises:
    PushError: if `path` holds neither a manifest nor a LATEST pointer.
  """
  if os.path.isfile(os.path.join(path, MANIFEST_FILE)):
    return path
  version = latest_version(path)
  if version is None:
    raise PushError(f'{path} is neither a pushed model folder (no '
                    f'{MANIFEST_FILE}) nor a push destination (no '
                    f'{LATEST_FILE}).')
  return os.path.join(path, str(version))


def _set_latest(destination: str, version: int) -> None:
  local_disk.write_file(os.path.join(destination, LATEST_FILE),
                        f'{version}\n')


def write_version(destination: str, files: Dict[str, bytes],
                  manifest: Dict[str, Any]) -> Tuple[int, str]:
  """Writes the next version and then points `LATEST` at it.

  Args:
    destination: the push destination folder (created if needed).
    files: file name -> bytes, e.g. `model.tflite` and `labels.txt`.
    manifest: JSON-able description; `version` is filled in here.

  Returns:
    (version number, version folder).

  Raises:
    PushError: when the destination cannot be written (permissions, full
      disk); no partial version stays and `LATEST` is unchanged.
  """
  try:
    os.makedirs(destination, exist_ok=True)
  except OSError as e:
    raise PushError(f'cannot create push destination {destination}: {e}') from e
  try:
    with local_disk.locked(os.path.join(destination, '.push.lock')):
      version = max(versions(destination) + [latest_version(destination) or 0,
                                             0]) + 1
      final = os.path.join(destination, str(version))
      with local_disk.staged_folder(final) as staging:
        for name, data in files.items():
          local_disk.write_file(os.path.join(staging, name), data)
        local_disk.write_file(
            os.path.join(staging, MANIFEST_FILE),
            json.dumps(dict(manifest, version=version), indent=2))
      _set_latest(destination, version)
      return version, final
  except OSError as e:
    raise PushError(f'push to {destination} failed, nothing was pushed and '
                    f'{LATEST_FILE} is unchanged: {e}') from e


def find_identical(destination: str, converted_sha256: str) -> Optional[int]:
  """The latest version if it came from the same converted model, else None.

  Args:
    destination: the push destination.
    converted_sha256: SHA-256 of the converter's output, before metadata was
      embedded (embedding stamps the time, the conversion is deterministic).
  """
  version = latest_version(destination)
  if version is None:
    return None
  try:
    manifest = read_manifest(os.path.join(destination, str(version)))
  except (OSError, ValueError):
    return None
  return version if manifest.get('converted_sha256') == converted_sha256 \
      else None
