"""The typed results of the proofs a model passes before a device gets it.

Each stage of the pusher (and the bench, and the coming second model's
pusher) returns one of these instead of adding keys to a shared dict:

- :class:`ImageProof`: the image model against its SavedModel.
- :class:`Packaging`: the file a device downloads (metadata embedded).
- :class:`MicroProof`: the model run in TensorFlow Lite Micro.
- :class:`BudgetVerdict`: the device budget's limits it broke.
- :class:`WaveformProof`: the waveform model, or why there is none.

A result's fields are its figures. :meth:`Figures.names` lists the ones
readers show, in the order they show them, so `components.contracts` and
the readers of ML Metadata take the property names from here, never from a
hand-kept list; :meth:`Figures.to_properties` is what the PushedModel
artifact records of it, and :meth:`Figures.to_figures` what the manifest
does. Plain Python: readers import it without TensorFlow.
"""

import dataclasses
import math
from typing import Any, ClassVar, Dict, Optional, Tuple, Union

from components.tflite import budget as budget_lib

Scalar = Union[bool, int, float, str]


def _hidden(default: Any = None, figure: bool = True) -> Any:
  """A field readers do not list (`figure` False: not a figure at all)."""
  return dataclasses.field(default=default,
                           metadata={'shown': False, 'figure': figure})


class Figures:
  """What every result shares: its figures by name."""

  # Prepended to each field's name in the artifact's properties.
  PREFIX: ClassVar[str] = ''

  @classmethod
  def names(cls) -> Tuple[str, ...]:
    """The property names readers show, in order."""
    return tuple(cls.PREFIX + field.name for field in dataclasses.fields(cls)
                 if field.metadata.get('shown', True))

  def to_figures(self) -> Dict[str, Any]:
    """Every figure that was measured (None left out), by field name."""
    return {field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.metadata.get('figure', True) and
            getattr(self, field.name) is not None}

  def to_properties(self) -> Dict[str, Scalar]:
    """The scalar figures as artifact properties (with :attr:`PREFIX`)."""
    return {self.PREFIX + name: value
            for name, value in self.to_figures().items()
            if isinstance(value, (bool, int, float, str))}


@dataclasses.dataclass(frozen=True)
class ImageProof(Figures):
  """The image model against its SavedModel on the eval split.

  Attributes:
    mode: the quantization mode.
    float_bytes: the float32 TFLite model's size.
    tflite_bytes: this model's size.
    size_ratio: tflite_bytes / float_bytes.
    savedmodel_accuracy, tflite_accuracy: accuracy of each.
    accuracy_drop: SavedModel minus TFLite.
    savedmodel_auc, tflite_auc: AUC of each.
    agreement: share of examples both give the same class.
    latency_ms_median: median single-image invoke, one thread.
    auc_drop: SavedModel minus TFLite AUC.
    examples: eval examples compared.
  """
  mode: str
  float_bytes: int
  tflite_bytes: int
  size_ratio: float
  savedmodel_accuracy: float
  tflite_accuracy: float
  accuracy_drop: float
  savedmodel_auc: float
  tflite_auc: float
  agreement: float
  latency_ms_median: float
  auc_drop: float = _hidden()
  examples: int = _hidden()

  def parity_problem(self, max_accuracy_drop: float) -> Optional[str]:
    """Why the model must not be pushed (its accuracy drop over
    `max_accuracy_drop`, a fraction: 0.01 is one point), or None."""
    if self.accuracy_drop > max_accuracy_drop:
      return (f'accuracy drop {self.accuracy_drop * 100:.2f} points '
              f'(SavedModel {self.savedmodel_accuracy:.4f}, TFLite '
              f'{self.tflite_accuracy:.4f}) exceeds the tolerance of '
              f'{max_accuracy_drop * 100:.2f} points')
    return None

  def describe(self) -> str:
    """One line of every figure, as the pusher prints it."""
    return ', '.join(f'{k} {v:.4g}' if isinstance(v, float) else f'{k} {v}'
                     for k, v in self.to_figures().items())


@dataclasses.dataclass(frozen=True)
class Packaging(Figures):
  """The image model as a device downloads it.

  Attributes:
    sha256: its digest.
    metadata_embedded: whether TFLite metadata is in it.
    pushed_bytes: its size, metadata included (the budget's size).
    metadata_problem: why no metadata is embedded.
  """
  sha256: str
  metadata_embedded: bool
  pushed_bytes: int
  metadata_problem: Optional[str] = _hidden(figure=False)


@dataclasses.dataclass(frozen=True)
class MicroProof(Figures):
  """The model run in TensorFlow Lite Micro (see `micro.py`), or why not.

  Attributes:
    arena_bytes: the smallest arena it runs in.
    micro_arena_reported: the arena TFLM reported using.
    micro_latency_ms_median: its median invoke in TFLM.
    micro_examples: eval images run.
    micro_identical: share whose output equals LiteRT's builtin kernels'
      bit for bit.
    micro_max_difference_xnnpack: largest difference from LiteRT with
      XNNPACK, in units of the output's scale.
    micro_error: why TFLM could not run it.
    micro_missing_ops: the operators TFLM has no kernel for.
  """
  arena_bytes: Optional[int] = None
  micro_arena_reported: Optional[int] = None
  micro_latency_ms_median: Optional[float] = None
  micro_examples: Optional[int] = None
  micro_identical: Optional[float] = None
  micro_max_difference_xnnpack: Optional[int] = None
  micro_error: Optional[str] = None
  micro_missing_ops: Optional[str] = None

  @property
  def ran(self) -> bool:
    """Whether TFLM ran the model (and measured its arena)."""
    return self.arena_bytes is not None

  def describe(self) -> str:
    """One line, as the pusher prints it."""
    if not self.ran:
      return str(self.micro_error)
    return (f'arena {self.arena_bytes:,} bytes, '
            f'{self.micro_latency_ms_median:.3g} ms, outputs identical to '
            f"LiteRT's on {self.micro_identical:.0%} of "
            f'{self.micro_examples} images')


@dataclasses.dataclass(frozen=True)
class BudgetVerdict(Figures):
  """The limits of the device budget a model broke (none: it fits).

  Attributes:
    budget_exceeded: the limits broken, comma-separated.
    over_max_tflite_bytes: bytes over the size limit.
    over_max_latency_ms: ms over the latency limit.
    over_max_arena_bytes: bytes over the arena limit (-1: TFLM could not
      run it, so no arena fits).
    reasons: one sentence per limit broken.
  """
  budget_exceeded: Optional[str] = None
  over_max_tflite_bytes: Optional[int] = None
  over_max_latency_ms: Optional[float] = None
  over_max_arena_bytes: Optional[int] = None
  reasons: Tuple[str, ...] = _hidden((), figure=False)

  @classmethod
  def of(cls, breaches) -> 'BudgetVerdict':
    """The verdict on a model breaking `breaches` (`budget.Breach`)."""
    if not breaches:
      return cls()
    over = {}
    for breach in breaches:
      excess = breach.excess
      if breach.limit_name == budget_lib.MAX_LATENCY_MS:
        over[f'over_{breach.limit_name}'] = float(excess)
      else:
        over[f'over_{breach.limit_name}'] = (
            -1 if math.isinf(excess) else int(excess))
    return cls(budget_exceeded=','.join(b.limit_name for b in breaches),
               reasons=tuple(b.describe() for b in breaches), **over)

  @property
  def fits(self) -> bool:
    """Whether the model is within every limit."""
    return not self.reasons

  def describe(self) -> str:
    """Why a model over the budget is not pushed."""
    return 'over the device budget: ' + '; '.join(self.reasons)


@dataclasses.dataclass(frozen=True)
class WaveformProof(Figures):
  """The waveform model's figures, or why there is none; its manifest
  entry is :meth:`to_figures` (with `file`).

  Attributes:
    bytes: its size, metadata included.
    latency_ms_median: its median invoke, one thread.
    front_end_max_pixel_error: its front end against NumPy's on the probe
      windows, on 0..255.
    agreement: share of the decisive probe windows it gives the image
      model's class.
    eval_windows: the eval split's kept windows it was proved on.
    eval_front_end_max_pixel_error: the front end on those windows.
    eval_agreement: share of them given the SavedModel's class.
    eval_savedmodel_accuracy, eval_accuracy: accuracy there of the
      SavedModel (on the pictures) and of this model (on the samples).
    eval_accuracy_drop: SavedModel minus waveform model.
    eval_proof: why no eval window proved it, when none did.
    threshold: phase one's threshold, which it decides at too (embedded in
      its metadata as score calibration); None for versions without one.
    eval_threshold_agreement: share of the eval windows it decides as the
      image model does at `threshold`.
    eval_threshold_decisive_windows, eval_threshold_decisive_agreement:
      those the image model scores 0.1 or more from `threshold`, and the
      share of them decided alike (the proof's measure).
    eval_threshold_accuracy, eval_image_threshold_accuracy: accuracy at
      `threshold` there of this model (on the samples) and of the image
      model (on the pictures).
    eval_threshold_recall: this model's recall there at `threshold` (None
      without positive windows).
    sha256: its digest, when pushed.
    recordings: whether the spans held recordings.
    reason: why there is no waveform model.
    file: its file name in the version, when pushed.
    max_score_difference, decisive_windows, windows: the probe windows'
      largest score difference from the image model, how many were
      decisive, and how many there were.
    metadata_embedded, metadata_problem: its TFLite metadata.
    input, output: what it takes and gives, for an app.
  """
  PREFIX: ClassVar[str] = 'waveform_'
  bytes: Optional[int] = None
  latency_ms_median: Optional[float] = None
  front_end_max_pixel_error: Optional[float] = None
  agreement: Optional[float] = None
  eval_windows: Optional[int] = None
  eval_front_end_max_pixel_error: Optional[float] = None
  eval_agreement: Optional[float] = None
  eval_savedmodel_accuracy: Optional[float] = None
  eval_accuracy: Optional[float] = None
  eval_accuracy_drop: Optional[float] = None
  eval_proof: Optional[str] = None
  threshold: Optional[float] = None
  eval_threshold_agreement: Optional[float] = None
  eval_threshold_decisive_windows: Optional[int] = None
  eval_threshold_decisive_agreement: Optional[float] = None
  eval_threshold_accuracy: Optional[float] = None
  eval_image_threshold_accuracy: Optional[float] = None
  eval_threshold_recall: Optional[float] = None
  sha256: Optional[str] = None
  recordings: bool = False
  reason: Optional[str] = None
  file: Optional[str] = _hidden()
  max_score_difference: Optional[float] = _hidden()
  decisive_windows: Optional[int] = _hidden()
  windows: Optional[int] = _hidden()
  metadata_embedded: Optional[bool] = _hidden()
  metadata_problem: Optional[str] = _hidden()
  input: Optional[Dict[str, Any]] = _hidden()
  output: Optional[Dict[str, Any]] = _hidden()

  def to_properties(self) -> Dict[str, Scalar]:
    """The scalar figures, prefixed, without the file's name."""
    found = super().to_properties()
    found.pop(self.PREFIX + 'file', None)
    return found
