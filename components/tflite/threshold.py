"""Phase one's decision threshold, chosen for the cascade on the model that
ships.

In the Two-Phase Predictions pattern an instrument phase one misses never
reaches the cloud: phase one's recall caps the whole system's, and each
false positive is a request the cloud pays for. So the threshold is not
0.5 but the highest score whose recall on the eval split, measured with
the pushed TFLite model, meets a target with confidence: the one-sided
Wilson lower bound of the recall, not its point estimate, must reach
`target_recall`. The highest such threshold sends the cloud the fewest
false positives.

With few positive eval examples no threshold may prove the target (the
bound of a perfect recall on n examples is below 1); then the threshold
that flags every positive eval example is taken, and the choice says why
the target is not proved.

A recording longer than one window is answered by a rule over its
windows, recorded with the threshold (`recording_rule`): `mean`, the mean
of its windows' scores at the threshold. `bench/window_rule.py` measured it
against the most positive window (`max`, the rule before) and the first
window on held-out recordings of 1.25 to 2.5 s: `max` calls a recording an
instrument when any one window looks like one, so its false positives grow
with the recording's length (0.087 to 0.14 of the others), where `mean`'s
stay at 0.013 to 0.067 with no more instruments missed. Padding the last
window with silence was not what caused them there: a last window aligned
to the recording's end did no better.
"""

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np

from components.ondevice import manifest

DEFAULT_CONFIDENCE = 0.95
# How a recording's windows become its answer (see the module's docstring;
# the rules a manifest may name are the device's, `manifest.RECORDING_RULES`).
RECORDING_RULE = manifest.MEAN_RULE
# The decimal places a threshold and its figures are recorded with.
PLACES = 6
# One-sided standard normal quantiles of the confidences offered.
_Z = {0.9: 1.2815516, 0.95: 1.6448536, 0.99: 2.3263479}


def wilson_lower_bound(successes: int, n: int,
                       confidence: float = DEFAULT_CONFIDENCE) -> float:
  """The one-sided Wilson score lower bound of a proportion."""
  if n <= 0:
    return 0.0
  z = _Z[confidence]
  p = successes / n
  centre = p + z * z / (2 * n)
  spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
  return max(0.0, (centre - spread) / (1 + z * z / n))


@dataclasses.dataclass(frozen=True)
class Threshold:
  """A chosen threshold and what it holds on the eval split.

  Attributes:
    value: the positive class's score from which a window is flagged.
    target_recall: the recall it was chosen to hold.
    confidence: the one-sided confidence of the bound.
    recall: the eval split's recall at `value`.
    recall_lower_bound: its Wilson lower bound at `confidence`.
    false_positive_rate: the eval split's share of negatives flagged.
    positives: positive eval examples.
    negatives: negative eval examples.
    met: whether the bound reaches the target.
    reason: why it does not, else None.
    recording_rule: how a recording's windows become its answer.
  """
  value: float
  target_recall: float
  confidence: float
  recall: float
  recall_lower_bound: float
  false_positive_rate: float
  positives: int
  negatives: int
  met: bool
  reason: Optional[str] = None
  recording_rule: str = RECORDING_RULE

  def to_json(self):
    return {k: (round(v, PLACES) if isinstance(v, float) else v)
            for k, v in dataclasses.asdict(self).items()}

  def describe(self) -> str:
    line = (f'threshold {self.value:.4g}: recall {self.recall:.4f} '
            f'(at least {self.recall_lower_bound:.4f} at '
            f'{self.confidence:.0%} confidence; target {self.target_recall}),'
            f' false-positive rate {self.false_positive_rate:.4f}, on '
            f'{self.positives} positive and {self.negatives} negative eval '
            'examples')
    return line if self.met else f'{line}; {self.reason}'


def choose(labels: Sequence[int], scores: Sequence[float],
           target_recall: float,
           confidence: float = DEFAULT_CONFIDENCE) -> Threshold:
  """The highest threshold whose recall's lower bound meets the target.

  Args:
    labels: 0/1 labels of the eval examples.
    scores: the positive class's score of each, from the pushed model.
    target_recall: the recall to hold, in (0, 1).
    confidence: one of 0.9, 0.95, 0.99.

  Returns:
    The :class:`Threshold`.
  """
  if not 0.0 < target_recall < 1.0:
    raise ValueError(f'target recall must be in (0, 1), got {target_recall}')
  if confidence not in _Z:
    raise ValueError(f'confidence must be one of {sorted(_Z)}, got '
                     f'{confidence}')
  labels = np.asarray(labels).astype(int).reshape(-1)
  scores = np.asarray(scores, np.float64).reshape(-1)
  positive, negative = scores[labels == 1], scores[labels == 0]
  if positive.size == 0:
    return Threshold(0.5, target_recall, confidence, 0.0, 0.0,
                     float(np.mean(negative >= 0.5)) if negative.size else
                     0.0, 0, int(negative.size), False,
                     'no positive eval example: 0.5 kept')

  def at(value: float, met: bool, reason: Optional[str]) -> Threshold:
    # Recorded to 6 decimals (the manifest's, the metadata's), rounded
    # down so every positive the choice counted stays flagged.
    value = math.floor(value * 10**PLACES) / 10**PLACES
    found = int(np.sum(positive >= value))
    return Threshold(
        float(value), target_recall, confidence, found / positive.size,
        wilson_lower_bound(found, positive.size, confidence),
        float(np.mean(negative >= value)) if negative.size else 0.0,
        int(positive.size), int(negative.size), met, reason)

  # Candidate thresholds: each positive's score, highest first; a lower
  # one flags at least as many positives, so the bound only grows.
  for value in np.unique(positive)[::-1]:
    found = int(np.sum(positive >= value))
    if wilson_lower_bound(found, positive.size, confidence) >= target_recall:
      return at(value, True, None)
  best = wilson_lower_bound(positive.size, positive.size, confidence)
  return at(float(positive.min()), False, (
      f'not proved: with {positive.size} positive eval examples the recall '
      f'bound reaches at most {best:.4f}; the threshold flags every one '
      '(more eval examples, or a lower --phase-one-recall)'))
