"""How a cascade of the two phases is judged, from both phases' scores on
the same eval examples.

Let pi be the share of instruments in the traffic; at phase one's
threshold t, TPR1 and FPR1 are its rates on the pushed TFLite model; A2 is
phase two's family accuracy on the instruments phase one routes to it, R2
its rejection rate (answering the reject class) on the non-instruments it
routes:

- share sent to the cloud: s = pi*TPR1 + (1-pi)*FPR1;
- end-to-end accuracy over the families plus the reject class:
  pi*TPR1*A2 + (1-pi)*((1-FPR1) + FPR1*R2);
- the device alone names no family: (1-pi)*(1-FPR1);
- the cloud alone sees every window (s = 1): pi*A2' + (1-pi)*R2', with A2'
  and R2' over all instruments and non-instruments.

Instruments of no family phase two knows are left out of A2 (phase two
cannot name them), as its Evaluator leaves them out.
"""

import dataclasses
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

PIS = (0.05, 0.2, 0.5)
# The thresholds of the curve of accuracy against cloud share.
GRID = tuple(round(x, 2) for x in np.arange(0.05, 1.0, 0.05))


@dataclasses.dataclass(frozen=True)
class Scored:
  """Both phases' answers on the same eval examples.

  Attributes:
    labels: phase one's 0/1 label of each example.
    families: each example's family ('' for none and for class 0).
    phase_one: phase one's positive score of each.
    phase_two: phase two's class (index into `classes`) of each.
    classes: phase two's classes, the reject class first.
  """
  labels: np.ndarray
  families: List[str]
  phase_one: np.ndarray
  phase_two: np.ndarray
  classes: List[str]

  def family_index(self) -> np.ndarray:
    """Each example's class index in phase two (-1: no family it knows)."""
    index = {name: i for i, name in enumerate(self.classes)}
    return np.array([index.get(f, -1) if y == 1 else 0
                     for y, f in zip(self.labels, self.families)])


def _mean(mask: np.ndarray) -> Optional[float]:
  return float(np.mean(mask)) if mask.size else None


def rates(scored: Scored, threshold: float,
          truth: Optional[np.ndarray] = None) -> Dict[str, Optional[float]]:
  """TPR1, FPR1, A2 and R2 at `threshold` (`truth`: `scored.family_index()`
  when the caller has it)."""
  flagged = scored.phase_one >= threshold
  positive, negative = scored.labels == 1, scored.labels == 0
  truth = scored.family_index() if truth is None else truth
  right = scored.phase_two == truth
  known = positive & (truth > 0)
  return {
      'tpr1': _mean(flagged[positive]), 'fpr1': _mean(flagged[negative]),
      'a2': _mean(right[known & flagged]),
      'r2': _mean(right[negative & flagged])}


def accuracy(pi: float, r: Dict[str, Optional[float]]) -> Optional[float]:
  """The end-to-end accuracy of rates `r` at instrument share `pi`."""
  if r['tpr1'] is None or r['fpr1'] is None:
    return None
  a2 = r['a2'] or 0.0  # nothing routed: nothing named
  r2 = r['r2'] if r['r2'] is not None else 1.0
  return pi * r['tpr1'] * a2 + (1 - pi) * ((1 - r['fpr1']) + r['fpr1'] * r2)


def share(pi: float, r: Dict[str, Optional[float]]) -> Optional[float]:
  if r['tpr1'] is None or r['fpr1'] is None:
    return None
  return pi * r['tpr1'] + (1 - pi) * r['fpr1']


def judge(scored: Scored, threshold: float,
          pis: Sequence[float] = PIS) -> Dict[str, Any]:
  """The cascade's figures at phase one's threshold: rates, end-to-end
  accuracy and cloud share at each pi, the two baselines, each family's
  end-to-end recall (capped by phase one's recall on that family), and the
  curve of accuracy against cloud share at pi = 0.2 as the threshold
  moves."""
  truth = scored.family_index()
  r = rates(scored, threshold, truth)
  everything = rates(scored, -1.0, truth)  # the cloud alone: all sent
  flagged = scored.phase_one >= threshold
  per_family = {}
  for index, name in enumerate(scored.classes[1:], start=1):
    mask = truth == index
    if mask.any():
      per_family[name] = {
          'examples': int(mask.sum()),
          'phase_one_recall': float(np.mean(flagged[mask])),
          'end_to_end_recall': float(np.mean(
              flagged[mask] & (scored.phase_two[mask] == index)))}
  found: Dict[str, Any] = {
      'threshold': float(threshold), 'examples': int(scored.labels.size),
      **{k: (round(v, 6) if v is not None else None) for k, v in r.items()},
      'by_pi': {}, 'families': per_family}
  for pi in pis:
    found['by_pi'][str(pi)] = {
        'accuracy': accuracy(pi, r), 'cloud_share': share(pi, r),
        'device_alone': (1 - pi) * (1 - r['fpr1'])
        if r['fpr1'] is not None else None,
        'cloud_alone': accuracy(pi, everything)}
  found['curve'] = []
  for t in GRID:
    at = rates(scored, t, truth)
    found['curve'].append({'threshold': t, 'accuracy': accuracy(0.2, at),
                           'cloud_share': share(0.2, at)})
  return found


# The instrument share the gate judges at.
GATE_PI = '0.2'


@dataclasses.dataclass(frozen=True)
class Gate:
  """The bars a pair must pass, at 20% instruments, to be pushed.

  Attributes:
    max_loss_vs_cloud: its end-to-end accuracy may be at most this below
      sending every window to the cloud (what the cascade saves must not
      cost more accuracy than this).
    max_cloud_share: it may send at most this share of windows to the
      cloud (the cost the threshold buys).
    max_accuracy_drop: its end-to-end accuracy may be at most this below
      the last pushed pair's, judged on the same eval examples.
  """
  max_loss_vs_cloud: float = 0.05
  max_cloud_share: float = 0.5
  max_accuracy_drop: float = 0.01


def verdict(found: Dict[str, Any], gate: Gate,
            baseline: Optional[Dict[str, Any]] = None) -> Optional[str]:
  """Why the pair judged in `found` (:func:`judge`) is held back, or None
  when it passes `gate`; `baseline` is the last pushed pair judged on the
  same examples (None: no pair to compare with)."""
  at = found['by_pi'][GATE_PI]
  if at['accuracy'] is None:
    return ('the eval split lacks instruments or non-instruments, so the '
            'cascade cannot be judged')
  if (at['cloud_alone'] is not None and
      at['accuracy'] < at['cloud_alone'] - gate.max_loss_vs_cloud):
    return (f"its end-to-end accuracy at 20% instruments, "
            f"{at['accuracy']:.4f}, is more than cascade_max_loss_vs_cloud "
            f"({gate.max_loss_vs_cloud:g}) below sending every window to the "
            f"cloud ({at['cloud_alone']:.4f})")
  if at['cloud_share'] > gate.max_cloud_share:
    return (f"it sends {at['cloud_share']:.3f} of windows to the cloud at "
            f"20% instruments; cascade_max_cloud_share is "
            f"{gate.max_cloud_share:g}")
  if baseline is not None:
    before = baseline['by_pi'][GATE_PI]['accuracy']
    if before is not None and at['accuracy'] < before - gate.max_accuracy_drop:
      return (f"its end-to-end accuracy at 20% instruments, "
              f"{at['accuracy']:.4f}, is below the last pushed pair's "
              f"{before:.4f} on the same eval examples by more than "
              f"cascade_max_accuracy_drop ({gate.max_accuracy_drop:g})")
  return None
