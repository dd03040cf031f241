"""The device budget: how large and how slow an on-device model may be.

Plain Python, shared by the model search (which keeps only trials within
the budget) and the TFLite pusher (which refuses a model over it), so both
judge a model by the same rule.

A limit of 0 is off. Latency is the median wall time of one single-image
invoke with one interpreter thread, measured on the machine that runs the
pipeline: a proxy for the device, not the device itself. The arena is the
smallest tensor arena TensorFlow Lite Micro runs the model in (see
`micro.py`): the RAM a microcontroller must set aside, measured exactly.
"""

import dataclasses
from typing import Any, Dict, List, Optional

from components.common import errors
from components.tflite import Quantization

# The limits by setting name, as the command line spells them with dashes.
MAX_TFLITE_BYTES = 'max_tflite_bytes'
MAX_LATENCY_MS = 'max_latency_ms'
MAX_ARENA_BYTES = 'max_arena_bytes'
# The figure each limit applies to, as the pusher and the search record it.
MEASURED_FIGURE = {MAX_TFLITE_BYTES: 'tflite_bytes',
                   MAX_LATENCY_MS: 'latency_ms_median',
                   MAX_ARENA_BYTES: 'arena_bytes'}
LIMITS = (MAX_TFLITE_BYTES, MAX_LATENCY_MS, MAX_ARENA_BYTES)


class BudgetError(errors.PipelineError, ValueError):
  """Raised for a negative limit; names the setting."""


@dataclasses.dataclass(frozen=True)
class Breach:
  """One limit a model broke.

  Attributes:
    limit_name: the setting: `max_tflite_bytes`, `max_latency_ms` or
      `max_arena_bytes`.
    limit: its value.
    measured: the model's figure.
  """
  limit_name: str
  limit: float
  measured: float

  @property
  def excess(self) -> float:
    """How far over the limit the model is, in the limit's unit."""
    return self.measured - self.limit

  def describe(self) -> str:
    """One line, e.g. 'TFLite model 320,864 bytes, 70,864 over
    max_tflite_bytes 250,000'."""
    if self.limit_name == MAX_TFLITE_BYTES:
      return (f'TFLite model {self.measured:,.0f} bytes, {self.excess:,.0f} '
              f'over {MAX_TFLITE_BYTES} {self.limit:,.0f}')
    if self.limit_name == MAX_ARENA_BYTES:
      if self.measured == float('inf'):
        return (f'TensorFlow Lite Micro did not run it, so no arena fits '
                f'{MAX_ARENA_BYTES} {self.limit:,.0f}')
      return (f'TFLM arena {self.measured:,.0f} bytes, {self.excess:,.0f} '
              f'over {MAX_ARENA_BYTES} {self.limit:,.0f}')
    return (f'median latency {self.measured:.3f} ms, {self.excess:.3f} ms '
            f'over {MAX_LATENCY_MS} {self.limit:g}')


@dataclasses.dataclass(frozen=True)
class Budget:
  """The device's limits; 0 turns a limit off.

  Attributes:
    max_tflite_bytes: largest TFLite file, in bytes.
    max_latency_ms: largest median single-image latency, one thread, in ms.
    max_arena_bytes: largest TensorFlow Lite Micro tensor arena, in bytes.
  """
  max_tflite_bytes: int = 0
  max_latency_ms: float = 0.0
  max_arena_bytes: int = 0

  def __post_init__(self):
    for name in LIMITS:
      if getattr(self, name) < 0:
        raise BudgetError(f'{name} must be 0 (no limit) or more, got '
                          f'{getattr(self, name)}')

  @classmethod
  def from_dict(cls, values: Dict[str, Any]) -> 'Budget':
    """The budget from settings by name (missing ones are off)."""
    return cls(max_tflite_bytes=int(values.get(MAX_TFLITE_BYTES) or 0),
               max_latency_ms=float(values.get(MAX_LATENCY_MS) or 0.0),
               max_arena_bytes=int(values.get(MAX_ARENA_BYTES) or 0))

  def to_dict(self) -> Dict[str, Any]:
    """The limits by setting name."""
    return {MAX_TFLITE_BYTES: self.max_tflite_bytes,
            MAX_LATENCY_MS: self.max_latency_ms,
            MAX_ARENA_BYTES: self.max_arena_bytes}

  def runs_micro(self, mode: str) -> bool:
    """Whether a model in quantization `mode` is run in TensorFlow Lite
    Micro: every int8 model (a microcontroller's kind), and any model under
    an arena limit (the arena is measured there)."""
    return mode == Quantization.INT8 or bool(self.max_arena_bytes)

  @property
  def active(self) -> bool:
    """True when any limit is on."""
    return bool(self.max_tflite_bytes or self.max_latency_ms or
                self.max_arena_bytes)

  def breaches(self, tflite_bytes: float, latency_ms: Optional[float],
               arena_bytes: Optional[float] = None) -> List[Breach]:
    """The limits a model breaks, size first; empty when it fits.

    Args:
      tflite_bytes: the TFLite file's size.
      latency_ms: its median single-image latency (None: not measured,
        which breaks an active latency limit as infinitely slow).
      arena_bytes: its TensorFlow Lite Micro arena (None: not measured or
        not runnable, which breaks an active arena limit).
    """
    found = []
    if self.max_tflite_bytes and tflite_bytes > self.max_tflite_bytes:
      found.append(Breach(MAX_TFLITE_BYTES, self.max_tflite_bytes,
                          tflite_bytes))
    if self.max_latency_ms:
      measured = float('inf') if latency_ms is None else latency_ms
      if measured > self.max_latency_ms:
        found.append(Breach(MAX_LATENCY_MS, self.max_latency_ms, measured))
    if self.max_arena_bytes:
      measured = float('inf') if arena_bytes is None else arena_bytes
      if measured > self.max_arena_bytes:
        found.append(Breach(MAX_ARENA_BYTES, self.max_arena_bytes, measured))
    return found

  def for_phone(self) -> 'Budget':
    """This budget without the arena limit: for the waveform model, which
    TensorFlow Lite Micro cannot run (no RFFT2D kernel) and no board
    receives."""
    return dataclasses.replace(self, max_arena_bytes=0)

  def describe(self) -> str:
    """The active limits, e.g. 'max_tflite_bytes 250,000' (or 'none')."""
    parts = []
    if self.max_tflite_bytes:
      parts.append(f'{MAX_TFLITE_BYTES} {self.max_tflite_bytes:,}')
    if self.max_latency_ms:
      parts.append(f'{MAX_LATENCY_MS} {self.max_latency_ms:g}')
    if self.max_arena_bytes:
      parts.append(f'{MAX_ARENA_BYTES} {self.max_arena_bytes:,}')
    return ', '.join(parts) or 'none'
