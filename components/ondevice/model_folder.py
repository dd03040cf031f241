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
from typing import Dict, List, Optional

from components.common import errors
from components.common import storage
from components.ondevice import push
from components.ondevice import runtime
from components.frontend.spec import FrontEnd
from components.ondevice.manifest import Manifest
from components.ondevice.manifest import ManifestError

# A version's files are small (a model of a few MB, a manifest, labels,
# firmware source); anything larger is not ours, and is not read.
MAX_FILE_BYTES = 256 * 1024 * 1024


class ModelFolderError(errors.PipelineError, ValueError):
  """Raised when a pushed model folder is incomplete, corrupt or
  inconsistent; the message names the folder and the file."""


@dataclasses.dataclass
class OpenedVersion:
  """A verified version folder.

  Attributes:
    folder: the version folder.
    manifest: its manifest, checked (:class:`Manifest`).
    labels: the class names, in output order.
    image_model: the image model, loaded.
    image_file: its file name.
    image_size: its input's side.
    channels: its input's channels.
    front_end: the audio front end the manifest records, or None.
    waveform: the waveform model, loaded, or None.
    waveform_file: its file name, or None.
  """
  folder: str
  manifest: Manifest
  labels: List[str]
  image_model: runtime.Classifier
  image_file: str
  image_size: int
  channels: int
  front_end: Optional[FrontEnd] = None
  waveform: Optional[runtime.Classifier] = None
  waveform_file: Optional[str] = None


def _fault(folder: str, name: str, what: str) -> ModelFolderError:
  return ModelFolderError(f'model folder {folder}: {name}: {what}')


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


def open_version(path: str) -> OpenedVersion:
  """Opens a pushed version (see the module's docstring for the checks).

  Args:
    path: a version folder, or a push destination whose `LATEST` names one
      (local, `gs://` or `s3://`).

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
    manifest = Manifest.from_json(json.loads(
        _read(folder, push.MANIFEST_FILE).decode('utf-8')))
  except ManifestError as e:
    raise _fault(folder, push.MANIFEST_FILE, str(e)) from e
  except (UnicodeDecodeError, ValueError) as e:
    if isinstance(e, ModelFolderError):
      raise
    raise _fault(folder, push.MANIFEST_FILE, f'not JSON ({e})') from e
  contents: Dict[str, bytes] = {}
  for name, digest in manifest.digests().items():
    if digest is None:
      raise _fault(folder, name, 'the manifest records no SHA-256 for it, '
                   'so it cannot be trusted; push the model again')
    data = _read(folder, name)
    if storage.sha256(data) != digest:
      raise _fault(folder, name, 'does not match the SHA-256 in the '
                   'manifest: the file is corrupt or was replaced')
    contents[name] = data
  labels_file = manifest.labels_file
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
  names = manifest.class_names
  if names is not None and names != labels:
    raise _fault(folder, labels_file, f'holds {labels!r} but the manifest\'s '
                 f'class_names are {names!r}')
  image_file, image_size = manifest.model_file, manifest.image_size
  channels = manifest.channels
  image_model = _load(folder, image_file, contents[image_file])
  _check_shapes(folder, image_file, image_model,
                {'input': [1, image_size, image_size, channels],
                 'output': [1, len(labels)]},
                f'the manifest and {labels_file}')
  front_end = manifest.front_end
  if front_end is not None and front_end.image_size != image_size:
    raise _fault(folder, push.MANIFEST_FILE, 'its audio front end draws '
                 f'{front_end.image_size} frames of {front_end.image_size} '
                 f'mel bands, not the {image_size}x{image_size} pictures its '
                 'model takes')
  opened = OpenedVersion(folder, manifest, labels, image_model, image_file,
                         image_size, channels, front_end)
  waveform_file = manifest.waveform_file
  if waveform_file:
    if front_end is None:
      raise _fault(folder, push.MANIFEST_FILE, 'lists a waveform model but '
                   'records no audio front end for it')
    samples = front_end.window_samples
    waveform = _load(folder, waveform_file, contents[waveform_file])
    _check_shapes(folder, waveform_file, waveform,
                  {'input': [1, samples], 'output': [1, len(labels)]},
                  f'the front end and {labels_file}')
    opened.waveform, opened.waveform_file = waveform, waveform_file
  return opened
