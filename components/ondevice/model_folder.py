"""One verified way to open a pushed model folder, before any interpreter
touches it.

`predict`, `predict --stream` and the coming cascade client open a version
through :func:`open_version`, which checks, in order, and stops at the
first fault with one :class:`ModelFolderError` naming the folder, the file
and what is wrong:

1. **The manifest** is JSON, an object, with the fields a device reads
   (`model_file`, `labels_file`, `input.image_size`, `input.channels`, and
   `waveform.file` when there is one), each of the right type; file names
   are plain names inside the folder (no `/`, no `..`).
2. **Every file against its SHA-256**: the model, the labels, the waveform
   model and every other file the manifest's `files` lists. The rule for
   manifests written before `files` existed: the model and the waveform
   model carry their own `sha256` and are checked against it; `labels.txt`
   had none, so it is checked by the consistency below; a model file with
   no recorded digest at all is refused. Files larger than
   :data:`MAX_FILE_BYTES` are refused before they are read.
3. **The models load**: LiteRT verifies each flatbuffer before it builds an
   interpreter (truncated or changed bytes whose digest was rewritten are
   refused there), then allocates its tensors.
4. **The files agree**: one label per line, unique, as many as each
   model's outputs (and the manifest's `class_names` when it lists them);
   the image model takes `[1, image_size, image_size, channels]`, which the
   recorded front end draws; the waveform model takes `[1, window_samples]`
   of the recorded front end, which must itself be a valid front end.

Nothing here imports TensorFlow.
"""

import dataclasses
import json
import os
import re
from typing import Any, Dict, List, Optional

from components.common import errors
from components.common import storage
from components.ondevice import push
from components.ondevice import runtime

# A version's files are small (a model of a few MB, a manifest, labels,
# firmware source); anything larger is not ours, and is not read.
MAX_FILE_BYTES = 256 * 1024 * 1024
_PLAIN_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')


class ModelFolderError(errors.PipelineError, ValueError):
  """Raised when a pushed model folder is incomplete, corrupt or
  inconsistent; the message names the folder and the file."""


@dataclasses.dataclass
class OpenedVersion:
  """A verified version folder.

  Attributes:
    folder: the version folder.
    manifest: its manifest, checked.
    labels: the class names, in output order.
    image_model: the image model, loaded.
    image_file: its file name.
    image_size: its input's side.
    channels: its input's channels.
    front_end_record: the audio front end the manifest records (with
      `recorded`), or None.
    front_end: that record as the caller's front end (see
      :func:`open_version`), or None.
    waveform: the waveform model, loaded, or None.
    waveform_file: its file name, or None.
  """
  folder: str
  manifest: Dict[str, Any]
  labels: List[str]
  image_model: runtime.Classifier
  image_file: str
  image_size: int
  channels: int
  front_end_record: Optional[Dict[str, Any]] = None
  front_end: Any = None
  waveform: Optional[runtime.Classifier] = None
  waveform_file: Optional[str] = None


def _fault(folder: str, name: str, what: str) -> ModelFolderError:
  return ModelFolderError(f'model folder {folder}: {name}: {what}')


def _field(manifest: Dict[str, Any], folder: str, path: str, kind):
  """manifest[a][b]... for `path` 'a.b', of type `kind`."""
  value: Any = manifest
  for key in path.split('.'):
    if not isinstance(value, dict) or key not in value:
      raise _fault(folder, push.MANIFEST_FILE, f'has no {path!r}')
    value = value[key]
  if not isinstance(value, kind) or isinstance(value, bool):
    raise _fault(folder, push.MANIFEST_FILE,
                 f'{path!r} is {value!r}, not a {kind.__name__}')
  return value


def _inside(folder: str, name: str, where: str) -> str:
  """`name` if it is a plain file name inside the folder, else the fault
  (`where` says which field of the manifest gave it)."""
  if not _PLAIN_NAME.match(name) or '..' in name:
    raise _fault(folder, push.MANIFEST_FILE,
                 f'{where} {name!r}, not a file name inside the folder')
  return name


def _file_name(manifest: Dict[str, Any], folder: str, path: str) -> str:
  return _inside(folder, _field(manifest, folder, path, str),
                 f'{path!r} is')


def _read(folder: str, name: str) -> bytes:
  path = storage.join(folder, name)
  try:
    if not storage.is_uri(path):
      if not os.path.isfile(path):
        raise _fault(folder, name, 'missing (or not a regular file)')
      size = os.path.getsize(path)
      if size > MAX_FILE_BYTES:
        raise _fault(folder, name, f'{size:,} bytes, over the '
                     f'{MAX_FILE_BYTES:,} a version file may hold; not read')
    return storage.read_bytes(path)
  except OSError as e:
    raise _fault(folder, name,
                 f'cannot be read ({e.strerror or e})') from e


def _digests(manifest: Dict[str, Any], folder: str, model_files: List[str]
             ) -> Dict[str, Optional[str]]:
  """The recorded SHA-256 of every file to check (None: none recorded)."""
  files = manifest.get('files')
  if files is not None:
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
      raise _fault(folder, push.MANIFEST_FILE,
                   "'files' is not a map of file names to SHA-256 digests")
    digests: Dict[str, Optional[str]] = dict(files)
  else:
    legacy = [manifest.get('sha256'),
              (manifest.get('waveform') or {}).get('sha256')]
    digests = dict(zip(model_files, legacy))
  for name in model_files:
    digests.setdefault(name, None)
  for name in digests:
    _inside(folder, name, 'lists')
  return digests


def _load(folder: str, name: str, data: bytes) -> runtime.Classifier:
  try:
    classifier = runtime.Classifier(data)
  except (ValueError, RuntimeError) as e:
    raise _fault(folder, name, 'not a model LiteRT can run '
                 f'({str(e).strip().splitlines()[0] if str(e) else e})'
                 ) from e
  if (len(classifier.interpreter.get_input_details()) != 1 or
      len(classifier.interpreter.get_output_details()) != 1):
    raise _fault(folder, name, 'has more than one input or output; a '
                 'classifier has one of each')
  return classifier


def _check_shapes(folder: str, name: str, classifier: runtime.Classifier,
                  expected: Dict[str, List[int]], source: str) -> None:
  """The model's `input` and `output` shapes against `expected`, which
  `source` (the files that say so) gives."""
  for role, shape in expected.items():
    detail = classifier.input if role == 'input' else classifier.output
    found = [int(d) for d in detail['shape']]
    if found != shape:
      raise _fault(folder, name, f'its {role} is {found}; {source} say '
                   f'{shape}')


def _front_end(manifest: Dict[str, Any], folder: str
               ) -> Optional[Dict[str, Any]]:
  record = manifest['input'].get('audio_front_end')
  if record is None:
    return None
  if not isinstance(record, dict):
    raise _fault(folder, push.MANIFEST_FILE,
                 "'input.audio_front_end' is not an object")
  return record if record.get('recorded') else None


def _front_end_use(folder: str, use):
  """`use()` of the manifest's front-end record, its failure the fault."""
  try:
    return use()
  except (KeyError, TypeError, ValueError) as e:
    raise _fault(folder, push.MANIFEST_FILE,
                 f'its audio front end cannot be used ({e})') from e


def open_version(path: str, parse_front_end=None) -> OpenedVersion:
  """Opens a pushed version (see the module's docstring for the checks).

  Args:
    path: a version folder, or a push destination whose `LATEST` names one
      (local, `gs://` or `s3://`).
    parse_front_end: makes the caller's front end of the manifest's
      recorded front end (with a `window_samples` attribute), raising
      KeyError, TypeError or ValueError for a record that is not one
      (None: the record is kept as it is, and its own `window_samples`
      trusted).

  Returns:
    The :class:`OpenedVersion`.

  Raises:
    ModelFolderError: naming the folder, the file and the fault.
  """
  try:
    folder = push.resolve_model_dir(path)
  except (push.PushError, OSError) as e:
    raise ModelFolderError(str(e)) from e
  try:
    manifest = json.loads(_read(folder, push.MANIFEST_FILE).decode('utf-8'))
  except (UnicodeDecodeError, ValueError) as e:
    if isinstance(e, ModelFolderError):
      raise
    raise _fault(folder, push.MANIFEST_FILE, f'not JSON ({e})') from e
  if not isinstance(manifest, dict):
    raise _fault(folder, push.MANIFEST_FILE, 'is not a JSON object')
  image_file = _file_name(manifest, folder, 'model_file')
  labels_file = _file_name(manifest, folder, 'labels_file')
  image_size = _field(manifest, folder, 'input.image_size', int)
  channels = _field(manifest, folder, 'input.channels', int)
  if image_size < 1 or channels not in (1, 3):
    raise _fault(folder, push.MANIFEST_FILE,
                 f'input is {image_size}x{image_size}x{channels}; expected '
                 'a positive size and 1 or 3 channels')
  waveform_entry = manifest.get('waveform')
  if waveform_entry is not None and not isinstance(waveform_entry, dict):
    raise _fault(folder, push.MANIFEST_FILE, "'waveform' is not an object")
  waveform_file = None
  if waveform_entry and waveform_entry.get('file') is not None:
    waveform_file = _file_name(manifest, folder, 'waveform.file')
  models = [image_file] + ([waveform_file] if waveform_file else [])
  contents: Dict[str, bytes] = {}
  for name, digest in _digests(manifest, folder, models).items():
    if digest is None:
      raise _fault(folder, name, 'the manifest records no SHA-256 for it, '
                   'so it cannot be trusted; push the model again')
    data = _read(folder, name)
    if storage.sha256(data) != digest:
      raise _fault(folder, name, 'does not match the SHA-256 in the '
                   'manifest: the file is corrupt or was replaced')
    contents[name] = data
  if labels_file not in contents:
    contents[labels_file] = _read(folder, labels_file)
  try:
    labels = [line.strip() for line in
              contents[labels_file].decode('utf-8').splitlines()
              if line.strip()]
  except UnicodeDecodeError as e:
    raise _fault(folder, labels_file, 'not UTF-8 text') from e
  if len(labels) < 2 or len(set(labels)) != len(labels):
    raise _fault(folder, labels_file, f'holds {labels!r}; expected two or '
                 'more distinct class names, one a line')
  names = manifest.get('class_names')
  if names is not None and names != labels:
    raise _fault(folder, labels_file, f'holds {labels!r} but the manifest\'s '
                 f'class_names are {names!r}')
  image_model = _load(folder, image_file, contents[image_file])
  _check_shapes(folder, image_file, image_model,
                {'input': [1, image_size, image_size, channels],
                 'output': [1, len(labels)]},
                f'the manifest and {labels_file}')
  record = _front_end(manifest, folder)
  if record is not None and record.get('image_size', image_size) != image_size:
    raise _fault(folder, push.MANIFEST_FILE, 'its audio front end draws '
                 f"{record.get('image_size')!r}-pixel pictures for a "
                 f'{image_size}-pixel model')
  front_end = (_front_end_use(folder, lambda: parse_front_end(record))
               if record is not None and parse_front_end else None)
  opened = OpenedVersion(folder, manifest, labels, image_model, image_file,
                         image_size, channels, record, front_end)
  if waveform_file:
    if record is None:
      raise _fault(folder, push.MANIFEST_FILE, 'lists a waveform model but '
                   'records no audio front end for it')
    samples = (front_end.window_samples if front_end else _front_end_use(
        folder, lambda: int(record['window_samples'])))
    waveform = _load(folder, waveform_file, contents[waveform_file])
    _check_shapes(folder, waveform_file, waveform,
                  {'input': [1, samples], 'output': [1, len(labels)]},
                  f'the front end and {labels_file}')
    opened.waveform, opened.waveform_file = waveform, waveform_file
  return opened
