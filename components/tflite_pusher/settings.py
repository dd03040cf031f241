"""The TFLite converter's and pusher's settings as one typed value: what
their executors read of their execution properties, checked once (the
converter takes all but `push_destination`, the pusher only that).

The components take their settings as separate execution properties (TFX
records each in ML Metadata, and the cache key covers each);
:meth:`PushSettings.from_exec_properties` turns them into this value, so no
stage reads a property by name and the device budget is built once.
"""

import dataclasses
import json
from typing import Any, Dict, Tuple

from components.tflite import budget as budget_lib
from components.tflite import QUANTIZATION_MODES

_COUNTS = ('representative_examples', 'validation_examples', 'latency_runs',
           'micro_examples')


@dataclasses.dataclass(frozen=True)
class PushSettings:
  """How the converter converts and proves, and where the pusher pushes
  (see the components' arguments for each).

  Raises:
    ValueError: for an unknown quantization mode or a negative count.
  """
  push_destination: str
  class_names: Tuple[str, ...]
  quantization: str
  image_size: int
  channels: int
  max_accuracy_drop: float
  representative_examples: int
  validation_examples: int
  latency_runs: int
  micro_examples: int = 50
  budget: budget_lib.Budget = budget_lib.Budget()
  # The recall phase one's threshold is chosen to hold, proved at 95%
  # confidence on the eval split (components/tflite/threshold.py).
  phase_one_recall: float = 0.95

  def __post_init__(self):
    if self.quantization not in QUANTIZATION_MODES:
      raise ValueError(f'unknown quantization mode {self.quantization!r}; '
                       f'expected one of {", ".join(QUANTIZATION_MODES)}')
    if not 0.0 < self.phase_one_recall < 1.0:
      raise ValueError(f'phase_one_recall must be in (0, 1), got '
                       f'{self.phase_one_recall}')
    for name in _COUNTS:
      if getattr(self, name) < 0:
        raise ValueError(f'{name} must not be negative, got '
                         f'{getattr(self, name)}')

  def sample_size(self, split: str) -> int:
    """Examples taken from a split (0: all): `representative_examples`
    of `train` (calibration), `validation_examples` of `eval` (proofs)."""
    return (self.representative_examples if split == 'train' else
            self.validation_examples)

  def to_exec_properties(self) -> Dict[str, Any]:
    """The component's execution properties."""
    return dict(push_destination=self.push_destination,
                class_names=json.dumps(list(self.class_names)),
                quantization=self.quantization, image_size=self.image_size,
                channels=self.channels,
                max_accuracy_drop=float(self.max_accuracy_drop),
                phase_one_recall=float(self.phase_one_recall),
                **{name: int(getattr(self, name)) for name in _COUNTS},
                max_tflite_bytes=int(self.budget.max_tflite_bytes),
                max_latency_ms=float(self.budget.max_latency_ms),
                max_arena_bytes=int(self.budget.max_arena_bytes))

  @classmethod
  def from_exec_properties(cls, values: Dict[str, Any]) -> 'PushSettings':
    """The settings an execution was given."""
    return cls(push_destination=str(values.get('push_destination', '')),
               class_names=tuple(json.loads(values['class_names'])),
               quantization=str(values['quantization']),
               image_size=int(values['image_size']),
               channels=int(values['channels']),
               max_accuracy_drop=float(values['max_accuracy_drop']),
               phase_one_recall=float(values.get('phase_one_recall', 0.95)),
               **{name: int(values[name]) for name in _COUNTS
                  if name in values},
               budget=budget_lib.Budget.from_dict(values))
