"""Phase one's threshold, chosen for a recall target with a lower
confidence bound (components/tflite/threshold.py)."""

import numpy as np
import pytest

from components.tflite import threshold


def test_the_wilson_bound_is_below_the_rate_and_tightens_with_examples():
  # 95 of 100 at one-sided 95% (the low end of the two-sided 90% Wilson
  # interval), computed by hand: 0.9008.
  assert threshold.wilson_lower_bound(95, 100) == pytest.approx(0.9008,
                                                                abs=1e-4)
  assert threshold.wilson_lower_bound(950, 1000) > threshold.wilson_lower_bound(
      95, 100)
  assert threshold.wilson_lower_bound(10, 10) < 1.0
  assert threshold.wilson_lower_bound(0, 0) == 0.0
  assert threshold.wilson_lower_bound(9, 10, 0.99) < (
      threshold.wilson_lower_bound(9, 10, 0.9))


def test_the_highest_threshold_whose_recall_is_proved_is_chosen():
  rng = np.random.default_rng(0)
  positive = rng.beta(5, 2, 400)
  negative = rng.beta(2, 5, 400)
  labels = np.r_[np.ones(400), np.zeros(400)]
  scores = np.r_[positive, negative]
  chosen = threshold.choose(labels, scores, 0.9)
  assert chosen.met and chosen.reason is None
  assert chosen.recall_lower_bound >= 0.9
  assert chosen.recall == np.mean(positive >= chosen.value)
  assert chosen.false_positive_rate == np.mean(negative >= chosen.value)
  assert (chosen.positives, chosen.negatives) == (400, 400)
  # It is the positive score it stopped at, rounded down to the 6 places
  # it is recorded with, so that positive stays flagged.
  at = positive[positive >= chosen.value].min()
  assert round(chosen.value, 6) == chosen.value
  assert 0 <= at - chosen.value < 1e-6
  # The next positive score above it would not prove the target.
  above = positive[positive > at].min()
  assert threshold.wilson_lower_bound(
      int(np.sum(positive >= above)), 400) < 0.9
  # A higher target costs a lower threshold and more false positives.
  higher = threshold.choose(labels, scores, 0.97)
  assert higher.value < chosen.value
  assert higher.false_positive_rate >= chosen.false_positive_rate
  assert 'threshold' in chosen.describe() and 'false-positive rate' in (
      chosen.describe())


def test_too_few_positives_flag_every_one_and_say_the_target_is_not_proved():
  labels = [1] * 10 + [0] * 10
  scores = list(np.linspace(0.6, 0.99, 10)) + list(np.linspace(0.0, 0.7, 10))
  chosen = threshold.choose(labels, scores, 0.95)
  assert not chosen.met and chosen.recall == 1.0
  assert chosen.value == pytest.approx(0.6)
  assert 'not proved: with 10 positive eval examples' in chosen.reason
  assert chosen.reason in chosen.describe()
  none = threshold.choose([0, 0], [0.2, 0.7], 0.95)
  assert (none.value, none.met, none.false_positive_rate) == (0.5, False, 0.5)


@pytest.mark.parametrize('target, confidence, message', [
    (1.0, 0.95, 'target recall must be in'),
    (0.9, 0.8, 'confidence must be one of'),
])
def test_bad_targets_are_refused(target, confidence, message):
  with pytest.raises(ValueError, match=message):
    threshold.choose([1, 0], [0.9, 0.1], target, confidence)
