"""The manifest of a pushed version (`manifest.json`), as one typed class
the pusher writes and every reader (the model folder's loader, `predict`,
the tests) reads.

Layout, by schema version:

- **2** (today): the fields below, and `schema_version`.
- **1**: every manifest written before `schema_version` existed. It reads
  as version 2 without the fields added since: `files` (then the model and
  the waveform model are checked against their own `sha256`, see
  :meth:`Manifest.digests`), `class_names`, `waveform`, `firmware`.

Fields are only ever added, so a reader of version N reads version N + 1
too; a field it does not know is kept (:attr:`Manifest.extra`) and written
back as it was.

What a device relies on is checked when a manifest is read
(:meth:`Manifest.from_json`), or :class:`ManifestError` names the field:
the file names (plain names inside the folder), the image input's size and
channels, the class names and the digests; and it is typed to the leaves:
the audio front end is the :class:`FrontEnd` itself (its record must read
as one, and its derived fields agree with it), the decision threshold a
:class:`DecisionThreshold` and the families a :class:`Families`, each
compared by value. The figures a pusher records (`validation`, the waveform
model's proof, the threshold's figures) are kept as written: readers show
them, nothing on a device decides by them.

Example:

    manifest = Manifest.from_json(json.loads(text))
    manifest.model_file, manifest.image_size, manifest.front_end
"""

import dataclasses
import re
from typing import Any, Dict, List, Optional, Tuple

from components.common import errors
from components.frontend.spec import FrontEnd
from components.frontend.spec import FrontEndError

SCHEMA_VERSION = 2
# What the manifests written before `schema_version` existed count as.
FIRST_SCHEMA_VERSION = 1
_PLAIN_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')
_DIGEST = re.compile(r'^[0-9a-f]{64}$')


# How a recording's windows become its answer (`threshold.recording_rule`):
# the mean of its windows' scores, or its most positive window's (versions
# whose manifest names no rule; components/tflite/threshold.py says why the
# mean was chosen).
MEAN_RULE = 'mean'
MAX_RULE = 'max'
RECORDING_RULES = (MEAN_RULE, MAX_RULE)
# The threshold of versions pushed before their pusher chose one.
LEGACY_THRESHOLD = 0.5


class ManifestError(errors.PipelineError, ValueError):
  """Raised for a manifest a device cannot rely on; names the field."""


def _get(data: Dict[str, Any], path: str, kind, required: bool = True):
  """data[a][b]... for `path` 'a.b', of type `kind` (None when absent and
  not `required`)."""
  value: Any = data
  for key in path.split('.'):
    if not isinstance(value, dict) or key not in value:
      if required:
        raise ManifestError(f'has no {path!r}')
      return None
    value = value[key]
  if value is None and not required:
    return None
  if not isinstance(value, kind) or isinstance(value, bool) and kind is not \
      bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    raise ManifestError(f'{path!r} is {value!r}, not a '
                        f'{" or ".join(k.__name__ for k in kinds)}')
  return value


def _with_set(data: Dict[str, Any], **fields: Any) -> Dict[str, Any]:
  """`data` with each of `fields` that is set (not None) added, in order."""
  data.update((key, value) for key, value in fields.items()
              if value is not None)
  return data


def check_file_name(name: str, where: str) -> str:
  """`name` if it is a plain file name inside a version folder (no `/`, no
  `..`), else :class:`ManifestError` saying `where` it came from."""
  if not isinstance(name, str) or not _PLAIN_NAME.match(name) or '..' in name:
    raise ManifestError(f'{where} {name!r}, not a file name inside the '
                        'folder')
  return name


def _digest(value: Any, path: str) -> Optional[str]:
  if value is not None and not (isinstance(value, str) and
                                _DIGEST.match(value)):
    raise ManifestError(f'{path!r} is {value!r}, not a SHA-256 digest')
  return value


@dataclasses.dataclass(frozen=True)
class WaveformEntry:
  """The manifest's `waveform`: the waveform model's file, or why there is
  none, and its proof as the pusher recorded it.

  Attributes:
    file: the model's file name, or None when none was pushed.
    sha256: its digest.
    reason: why there is none (or why it was held back).
    proof: every other field as written (figures, `input`, `output`).
  """
  file: Optional[str] = None
  sha256: Optional[str] = None
  reason: Optional[str] = None
  proof: Dict[str, Any] = dataclasses.field(default_factory=dict)

  def to_json(self) -> Dict[str, Any]:
    """The entry as JSON: the proof's fields, then `file`, `reason` and
    `sha256` (the last two only when set)."""
    return _with_set(dict(self.proof, file=self.file), reason=self.reason,
                     sha256=self.sha256)

  @classmethod
  def from_json(cls, data: Any) -> 'WaveformEntry':
    """Reads an entry; :class:`ManifestError` names a bad field."""
    if not isinstance(data, dict):
      raise ManifestError("'waveform' is not an object")
    name = data.get('file')
    if name is not None:
      check_file_name(name, "'waveform.file' is")
    reason = data.get('reason')
    return cls(file=name,
               sha256=_digest(data.get('sha256'), 'waveform.sha256'),
               reason=None if reason is None else str(reason),
               proof={key: value for key, value in data.items()
                      if key not in ('file', 'sha256', 'reason')})


@dataclasses.dataclass(frozen=True)
class AudioFrontEnd:
  """The manifest's `input.audio_front_end`: the front end a version's
  windows are drawn with, or why none is recorded.

  Attributes:
    front_end: the recorded front end, or None.
    reason: why there is none.
    record: the JSON as written (`recorded` and the record's fields), kept
      so that a manifest reads back unchanged; not compared.
  """
  front_end: Optional[FrontEnd] = None
  reason: Optional[str] = None
  record: Dict[str, Any] = dataclasses.field(default_factory=dict,
                                             compare=False, repr=False)

  @classmethod
  def of(cls, front_end: Optional[FrontEnd],
         reason: Optional[str] = None) -> 'AudioFrontEnd':
    """The entry of `front_end`, or of why there is none."""
    if front_end is not None:
      # As a record reads back (every window taken, the top band resolved),
      # so that the entry equals the one read from what it writes.
      record = dict(front_end.to_record(), recorded=True)
      return cls(FrontEnd.from_record(record), None, record)
    return cls(None, reason, {'recorded': False, 'reason': reason})

  def to_json(self) -> Dict[str, Any]:
    return dict(self.record) if self.record else AudioFrontEnd.of(
        self.front_end, self.reason).record

  @classmethod
  def from_json(cls, data: Any) -> 'AudioFrontEnd':
    """Reads the entry; :class:`ManifestError` names what is wrong."""
    where = 'input.audio_front_end'
    if not isinstance(data, dict):
      raise ManifestError(f"'{where}' is not an object")
    if not data.get('recorded'):
      reason = data.get('reason')
      return cls(None, None if reason is None else str(reason), dict(data))
    try:
      front_end = FrontEnd.from_record(data)
    except FrontEndError as e:
      raise ManifestError(f"'{where}': {e}") from None
    # What the record derives from its settings must agree with them: a
    # record edited by hand, or damaged, draws other pictures than it says.
    derived = front_end.to_record()
    for name in ('window_samples', 'hop_samples', 'frame_hop_samples',
                 'mel_bands'):
      if name in data and data[name] != derived[name]:
        raise ManifestError(
            f"'{where}.{name}' is {data[name]!r}; its settings give "
            f'{derived[name]!r} ({front_end.image_size} frames of '
            f'{front_end.window_samples} samples)')
    return cls(front_end, None, dict(data))


@dataclasses.dataclass(frozen=True)
class DecisionThreshold:
  """The manifest's `threshold`: what a device decides by, typed, and the
  figures the pusher chose it by, as written.

  Attributes:
    value: the positive class's score from which a window is flagged.
    recording_rule: how a recording's windows become its answer (one of
      :data:`RECORDING_RULES`), or None for versions that name none
      (:data:`MAX_RULE` then).
    figures: every other field (`recall`, `target_recall`, ...).
  """
  value: float
  recording_rule: Optional[str] = None
  figures: Dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def rule(self) -> str:
    """The recording rule a device applies."""
    return self.recording_rule or MAX_RULE

  def to_json(self) -> Dict[str, Any]:
    data = dict({'value': self.value}, **self.figures)
    if self.recording_rule is not None:
      data['recording_rule'] = self.recording_rule
    return data

  @classmethod
  def from_json(cls, data: Any) -> 'DecisionThreshold':
    """Reads the entry; :class:`ManifestError` names what is wrong."""
    if not isinstance(data, dict):
      raise ManifestError(f"'threshold' is {data!r}, not a dict")
    value = _get({'threshold': data}, 'threshold.value', (int, float))
    if not 0.0 <= value <= 1.0:
      raise ManifestError(f"'threshold.value' is {value}, not a score "
                          'from 0 to 1')
    rule = data.get('recording_rule')
    if rule is not None and rule not in RECORDING_RULES:
      raise ManifestError(f"'threshold.recording_rule' is {rule!r}, not "
                          f"one of {', '.join(RECORDING_RULES)}")
    return cls(float(value), rule, {
        key: item for key, item in data.items()
        if key not in ('value', 'recording_rule')})


@dataclasses.dataclass(frozen=True)
class Families:
  """The manifest's `families`: the families of the positive class the
  version's spans gave (the labels of the cloud phase it pairs with) and
  that phase's pairing key, or why none were given.

  Attributes:
    given: whether the spans gave families.
    names: their names, sorted.
    reason: why none were given, else None.
    pairing_key: the key of the phase-two versions this one pairs with
      (`components.common.pairing`), or None.
  """
  given: bool
  names: Tuple[str, ...] = ()
  reason: Optional[str] = None
  pairing_key: Optional[str] = None

  def to_json(self) -> Dict[str, Any]:
    return _with_set({'given': self.given, 'names': list(self.names)},
                     reason=self.reason, pairing_key=self.pairing_key)

  @classmethod
  def from_json(cls, data: Any) -> 'Families':
    """Reads the entry; :class:`ManifestError` names what is wrong."""
    if not isinstance(data, dict):
      raise ManifestError(f"'families' is {data!r}, not a dict")
    names = data.get('names')
    if not (isinstance(names, list) and all(isinstance(name, str)
                                            for name in names)):
      raise ManifestError("'families.names' is not a list of names")
    given = data.get('given', bool(names))
    if not isinstance(given, bool) or given != bool(names):
      raise ManifestError(f"'families.given' is {given!r} beside "
                          f'{len(names)} names')
    reason, key = data.get('reason'), data.get('pairing_key')
    if key is not None and not (isinstance(key, str) and key):
      raise ManifestError(f"'families.pairing_key' is {key!r}, not a key")
    return cls(given, tuple(names), None if reason is None else str(reason),
               key)


_KNOWN = ('model_file', 'labels_file', 'sha256', 'converted_sha256', 'bytes',
          'quantization', 'input', 'output', 'class_names',
          'metadata_embedded', 'metadata_problem', 'validation', 'waveform',
          'firmware', 'source', 'created', 'files', 'version',
          'schema_version', 'families', 'threshold')


@dataclasses.dataclass(frozen=True)
class Manifest:
  """One version's manifest.

  Attributes:
    model_file: the image model's file name.
    labels_file: the labels' file name (one class a line, output order).
    class_names: the classes, in output order (None in old manifests).
    image_size: the image model's input side.
    channels: its input channels (1 or 3).
    sha256: the image model's digest.
    converted_sha256: the converter's output's digest, before metadata
      (the pusher finds an identical model already pushed by it).
    bytes: the image model's size.
    quantization: the mode it was converted in.
    input_tensor: the rest of `input`: name, shape, dtype, quantization,
      normalization.
    audio_front_end: the recorded front end, or why there is none
      (:class:`AudioFrontEnd`; None in manifests that say neither).
    output: the output tensor's name, shape, dtype, quantization, meaning.
    metadata_embedded: whether TFLite metadata is in the model.
    metadata_problem: why it is not.
    validation: the image model's figures, as the pusher recorded them.
    waveform: the waveform model's entry, or None (old manifests).
    firmware: the firmware source's entry, or None.
    source: the model artifact and run it came from.
    created: when it was pushed.
    files: every file of the version and its SHA-256 (None in old ones).
    families: the families of the positive class its spans gave, the
      labels of the cloud phase this version pairs with, or why none were
      (:class:`Families`); None in manifests written before families were
      recorded.
    threshold: phase one's decision threshold on the positive class's score,
      chosen on the eval split with this version's image model for a recall
      target, with what it holds there (:class:`DecisionThreshold`); None
      in manifests written before it was chosen (0.5 then).
    version: the version number (set when pushed).
    schema_version: see the module's docstring.
    extra: fields this code does not know, kept as written.
  """
  model_file: str
  labels_file: str
  image_size: int
  channels: int
  class_names: Optional[List[str]] = None
  sha256: Optional[str] = None
  converted_sha256: Optional[str] = None
  bytes: Optional[int] = None
  quantization: Optional[str] = None
  input_tensor: Dict[str, Any] = dataclasses.field(default_factory=dict)
  audio_front_end: Optional[AudioFrontEnd] = None
  output: Dict[str, Any] = dataclasses.field(default_factory=dict)
  metadata_embedded: Optional[bool] = None
  metadata_problem: Optional[str] = None
  validation: Dict[str, Any] = dataclasses.field(default_factory=dict)
  waveform: Optional[WaveformEntry] = None
  firmware: Optional[Dict[str, Any]] = None
  source: Optional[Dict[str, Any]] = None
  created: Optional[str] = None
  files: Optional[Dict[str, str]] = None
  families: Optional[Families] = None
  threshold: Optional[DecisionThreshold] = None
  version: Optional[int] = None
  schema_version: int = SCHEMA_VERSION
  extra: Dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def front_end(self) -> Optional[FrontEnd]:
    """The recorded audio front end, or None."""
    return self.audio_front_end.front_end if self.audio_front_end else None

  @property
  def decision_threshold(self) -> Optional[float]:
    """The positive class's score from which a window is flagged, or None
    (an older version: decide at 0.5)."""
    return None if self.threshold is None else self.threshold.value

  @property
  def threshold_value(self) -> float:
    """The threshold a device decides at: the version's own, or
    :data:`LEGACY_THRESHOLD` for versions pushed before one was chosen."""
    chosen = self.decision_threshold
    return LEGACY_THRESHOLD if chosen is None else chosen

  @property
  def recording_rule(self) -> str:
    """How a recording's windows become its answer (`max` for versions
    that name no rule)."""
    return self.threshold.rule if self.threshold else MAX_RULE

  def decisions(self) -> Dict[str, Any]:
    """What a device decides by besides the model: its threshold, its
    recording rule and the key of the phase two it pairs with."""
    return {'threshold': self.decision_threshold,
            'recording_rule': self.recording_rule,
            'pairing_key': self.pairing_key}

  @property
  def pairing_key(self) -> Optional[str]:
    """The key of the phase-two versions this version pairs with, or
    None."""
    return self.families.pairing_key if self.families else None

  @property
  def waveform_file(self) -> Optional[str]:
    """The waveform model's file name, or None."""
    return self.waveform.file if self.waveform else None

  def model_files(self) -> List[str]:
    """The image model's file name, and the waveform model's if any."""
    return [self.model_file] + ([self.waveform_file] if self.waveform_file
                                else [])

  def digests(self) -> Dict[str, Optional[str]]:
    """The SHA-256 to check each file against (None: none recorded).

    `files` when the manifest lists them; in manifests written before it
    did, the model and the waveform model carry their own `sha256`, and
    the labels file none (readers check it by its consistency).
    """
    if self.files is not None:
      digests: Dict[str, Optional[str]] = dict(self.files)
    else:
      digests = {self.model_file: self.sha256}
      if self.waveform_file:
        digests[self.waveform_file] = self.waveform.sha256
    for name in self.model_files():
      digests.setdefault(name, None)
    return digests

  def to_json(self) -> Dict[str, Any]:
    """The manifest as the JSON object `manifest.json` holds."""
    data = {
        'model_file': self.model_file,
        'labels_file': self.labels_file,
        'sha256': self.sha256,
        'converted_sha256': self.converted_sha256,
        'bytes': self.bytes,
        'quantization': self.quantization,
        'input': dict(self.input_tensor, image_size=self.image_size,
                      channels=self.channels,
                      audio_front_end=(self.audio_front_end.to_json()
                                       if self.audio_front_end else None)),
        'output': self.output,
        'class_names': self.class_names,
        'metadata_embedded': self.metadata_embedded,
        'metadata_problem': self.metadata_problem,
        'validation': self.validation,
        'waveform': self.waveform.to_json() if self.waveform else None,
        'firmware': self.firmware,
        'source': self.source,
        'created': self.created,
    }
    if self.files is not None:
      data['files'] = self.files
    if self.families is not None:
      data['families'] = self.families.to_json()
    if self.threshold is not None:
      data['threshold'] = self.threshold.to_json()
    if self.version is not None:
      data['version'] = self.version
    data['schema_version'] = self.schema_version
    data.update(self.extra)
    return data

  @classmethod
  def from_json(cls, data: Any) -> 'Manifest':
    """Reads a manifest of any schema version (see the module's docstring).

    Raises:
      ManifestError: naming the field a device cannot rely on.
    """
    if not isinstance(data, dict):
      raise ManifestError('is not a JSON object')
    image_size = _get(data, 'input.image_size', int)
    channels = _get(data, 'input.channels', int)
    if image_size < 1 or channels not in (1, 3):
      raise ManifestError(f'input is {image_size}x{image_size}x{channels}; '
                          'expected a positive size and 1 or 3 channels')
    front_end = data['input'].get('audio_front_end')
    front_end = (None if front_end is None
                 else AudioFrontEnd.from_json(front_end))
    names = data.get('class_names')
    if names is not None and not (isinstance(names, list) and all(
        isinstance(name, str) for name in names)):
      raise ManifestError(f"'class_names' is {names!r}, not a list of names")
    files = data.get('files')
    if files is not None:
      if not isinstance(files, dict) or not all(
          isinstance(k, str) and isinstance(v, str)
          for k, v in files.items()):
        raise ManifestError("'files' is not a map of file names to SHA-256 "
                            'digests')
      for name in files:
        check_file_name(name, 'lists')
    waveform = data.get('waveform')
    families = _get(data, 'families', dict, required=False)
    threshold = _get(data, 'threshold', dict, required=False)
    schema = _get(data, 'schema_version', int, required=False)
    return cls(
        model_file=check_file_name(_get(data, 'model_file', str),
                                   "'model_file' is"),
        labels_file=check_file_name(_get(data, 'labels_file', str),
                                    "'labels_file' is"),
        image_size=image_size, channels=channels, class_names=names,
        sha256=_digest(data.get('sha256'), 'sha256'),
        converted_sha256=_get(data, 'converted_sha256', str, required=False),
        bytes=_get(data, 'bytes', int, required=False),
        quantization=_get(data, 'quantization', str, required=False),
        input_tensor={key: value for key, value in data['input'].items()
                      if key not in ('image_size', 'channels',
                                     'audio_front_end')},
        audio_front_end=front_end,
        output=_get(data, 'output', dict, required=False) or {},
        metadata_embedded=_get(data, 'metadata_embedded', bool,
                               required=False),
        metadata_problem=_get(data, 'metadata_problem', str, required=False),
        validation=_get(data, 'validation', dict, required=False) or {},
        waveform=None if waveform is None else WaveformEntry.from_json(
            waveform),
        firmware=_get(data, 'firmware', dict, required=False),
        source=_get(data, 'source', dict, required=False),
        created=_get(data, 'created', str, required=False),
        files=files,
        families=None if families is None else Families.from_json(families),
        threshold=(None if threshold is None
                   else DecisionThreshold.from_json(threshold)),
        version=_get(data, 'version', int, required=False),
        schema_version=FIRST_SCHEMA_VERSION if schema is None else schema,
        extra={key: value for key, value in data.items()
               if key not in _KNOWN})
