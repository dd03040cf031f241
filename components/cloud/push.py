"""Numbered versions of the cloud model, in the layout model servers read.

TensorFlow Serving and KServe's TensorFlow runtime take a model's base path
and load its newest numbered sub-folder: `<base>/<model name>/<version>/`
holding `saved_model.pb`, `variables/` and `assets.extra/`. A version is
written whole or not at all:

- on a local disk, into a hidden staging folder renamed into place when
  complete (servers skip names that are not numbers);
- on a bucket, object by object under the next number past every numbered
  prefix, `saved_model.pb` last (a server loads a version once it has
  one), each read back and checked;

both by `components.common.versions`, the push path phase one's pusher
shares.

Each version carries `assets.extra/manifest.json` (:class:`CloudManifest`).
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from components.common import errors
from components.common import storage
from components.common import versions as versions_lib
from components.frontend import FrontEnd
from components.frontend import FrontEndError
from components.modules import features

MANIFEST_FILE = 'manifest.json'
# A version's manifest, relative to the version's folder.
MANIFEST_PATH = f'{features.ASSETS_EXTRA}/{MANIFEST_FILE}'
SAVED_MODEL_FILE = 'saved_model.pb'
SCHEMA_VERSION = 1


class CloudPushError(errors.PipelineError, RuntimeError):
  """Raised when a version cannot be written; what servers load is
  unchanged."""


@dataclasses.dataclass(frozen=True)
class CloudManifest:
  """A cloud model version's manifest.

  Attributes:
    model_name: the name servers serve it under (`/v1/models/<name>`).
    classes: the class names in score order (the reject class first).
    families: the families among them.
    request: what `serving_default` takes: `audio_pcm` (one window of
      mono 16-bit PCM at `front_end.sample_rate`) or `image_bytes`.
    front_end: the front end inside the model (its record in the JSON), or
      None (images).
    figures: the serving model's proof against phase two's SavedModel,
      and phase two's evaluation.
    source: the model artifact and run it came from.
    created: when it was pushed.
    files: every file of the version (relative path) and its SHA-256.
    version: the version number (set when pushed).
    schema_version: this manifest's layout.
    pairing_key: the key a phase-one version it pairs with carries in its
      manifest (`components.common.pairing`), or None.
  """
  model_name: str
  classes: List[str]
  families: List[str]
  request: str
  front_end: Optional[FrontEnd] = None
  figures: Dict[str, Any] = dataclasses.field(default_factory=dict)
  source: Optional[Dict[str, Any]] = None
  created: Optional[str] = None
  files: Optional[Dict[str, str]] = None
  version: Optional[int] = None
  schema_version: int = SCHEMA_VERSION
  pairing_key: Optional[str] = None

  def to_json(self) -> Dict[str, Any]:
    """The manifest as the JSON object `manifest.json` holds."""
    data = {field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)}
    if self.front_end is not None:
      data['front_end'] = self.front_end.to_record()
    return data

  @classmethod
  def from_json(cls, data: Any) -> 'CloudManifest':
    """Reads a manifest; :class:`CloudPushError` names a bad field."""
    if not isinstance(data, dict):
      raise CloudPushError('manifest is not a JSON object')
    for name, kind in (('model_name', str), ('classes', list),
                       ('families', list), ('request', str)):
      if not isinstance(data.get(name), kind):
        raise CloudPushError(f'manifest field {name!r} is '
                             f'{data.get(name)!r}, not a {kind.__name__}')
    known = {field.name for field in dataclasses.fields(cls)}
    found = {key: value for key, value in data.items() if key in known}
    if found.get('front_end') is not None:
      try:
        found['front_end'] = FrontEnd.from_record(found['front_end'])
      except FrontEndError as e:
        raise CloudPushError(f'manifest field \'front_end\': {e}') from None
    return cls(**found)


def model_base(destination: str, model_name: str) -> str:
  """The base path a server is given: `<destination>/<model name>`."""
  return storage.join(destination, model_name)


def versions(base: str) -> List[int]:
  """The complete versions under a model's base path, ascending."""
  return versions_lib.complete(base, MANIFEST_PATH)


def read_manifest(version_dir: str) -> CloudManifest:
  """A version's manifest."""
  path = storage.join(version_dir, features.ASSETS_EXTRA, MANIFEST_FILE)
  try:
    return CloudManifest.from_json(json.loads(storage.read_text(path)))
  except (OSError, ValueError) as e:
    raise CloudPushError(f'cannot read {path}: {e}') from e


def verify_local(version_dir: str, manifest: CloudManifest) -> None:
  """Checks every file a local version's manifest lists against its
  SHA-256, as the device's loader checks a pushed phase one, so that a
  damaged or tampered version is never served.

  Raises:
    CloudPushError: naming the first file missing or not as pushed, or a
      manifest that lists no files (a version pushed before manifests
      recorded digests cannot be verified: push it again).
  """
  if not manifest.files:
    raise CloudPushError(f'{version_dir}: its manifest lists no file digests '
                         '(pushed before versions recorded them); push it '
                         'again')
  wrong = versions_lib.first_mismatch(version_dir, manifest.files)
  if wrong is None:
    return
  name, unreadable = wrong
  if unreadable:
    raise CloudPushError(f'{version_dir}: {name} cannot be read '
                         f'({unreadable}); the version is not as pushed')
  raise CloudPushError(f'{version_dir}: {name} is not the file pushed (its '
                       'SHA-256 differs from the manifest\'s)')


def find_identical(destination: str, manifest: CloudManifest
                   ) -> Optional[int]:
  """The newest version under `destination` when it came from the same
  Trainer model (`source.model`) and answers and pairs alike (a rerun that
  changed only phase one, or the cascade's verdict), else None; as
  `components.ondevice.push.find_identical` does for phase one."""
  base = model_base(destination, manifest.model_name)
  found = versions(base)
  if not found:
    return None
  newest = read_manifest(storage.join(base, str(found[-1])))
  same = ((newest.source or {}).get('model') == manifest.source['model'] and
          newest.pairing_key == manifest.pairing_key and
          newest.classes == manifest.classes)
  return found[-1] if same else None


def download(uri: str, local: str) -> str:
  """Copies the files under `uri` (a bucket prefix) into the local folder
  `local`; returns `local`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  uri = uri.rstrip('/')
  for folder, _, names in tf.io.gfile.walk(uri):
    for name in names:
      source = storage.join(folder, name)
      target = os.path.join(local, source[len(uri):].lstrip('/'))
      os.makedirs(os.path.dirname(target), exist_ok=True)
      with open(target, 'wb') as f:
        f.write(storage.read_bytes(source))
  return local


def _files(folder: str) -> List[str]:
  """Relative paths of the files under a local folder, sorted."""
  return sorted(os.path.relpath(os.path.join(root, name), folder)
                for root, _, names in os.walk(folder) for name in names)


def write_version(destination: str, saved_model_dir: str,
                  manifest: CloudManifest) -> Tuple[int, str]:
  """Pushes a local SavedModel folder as the model's next version.

  Args:
    destination: the serving destination (a folder, `gs://` or `s3://`).
    saved_model_dir: the serving SavedModel, on the local disk.
    manifest: its manifest; `files` and `version` are filled in here.

  Returns:
    (version number, version folder).

  Raises:
    CloudPushError: when the destination cannot be written; no server
      sees a partial version.
  """
  base = model_base(destination, manifest.model_name)
  files = {name.replace(os.sep, '/'): versions_lib.LocalFile(
      os.path.join(saved_model_dir, name))
           for name in _files(saved_model_dir)
           if name != os.path.join(features.ASSETS_EXTRA, MANIFEST_FILE)}
  digests = versions_lib.digests(files)
  try:
    return versions_lib.write(
        base, files, MANIFEST_PATH,
        lambda version: _manifest_bytes(manifest, version, digests),
        last=(SAVED_MODEL_FILE,))
  except OSError as e:
    raise CloudPushError(f'push to {base} failed; servers still load the '
                         f'previous version: {e}') from e


def _manifest_bytes(manifest: CloudManifest, version: int,
                    digests: Dict[str, str]) -> bytes:
  return json.dumps(dataclasses.replace(
      manifest, version=version, files=digests).to_json(),
                    indent=2).encode('utf-8')
