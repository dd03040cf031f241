"""The cascade's figures (components/cascade/figures.py), on answers made
by hand so every figure can be worked out on paper."""

import numpy as np
import pytest

from components.cascade import figures

CLASSES = ['not_instrument', 'bass', 'piano']


def _scored():
  # Four instruments (bass, bass, piano, piano) and four others.
  return figures.Scored(
      labels=np.array([1, 1, 1, 1, 0, 0, 0, 0]),
      families=['bass', 'bass', 'piano', 'piano', '', '', '', ''],
      phase_one=np.array([0.9, 0.8, 0.6, 0.2, 0.7, 0.3, 0.1, 0.1]),
      # Phase two names: bass right, bass wrong (piano), piano right,
      # piano right; rejects the first other, calls the second bass.
      phase_two=np.array([1, 2, 2, 2, 0, 1, 0, 0]),
      classes=CLASSES)


def test_rates_at_a_threshold():
  r = figures.rates(_scored(), 0.5)
  # Flagged: instruments 0, 1, 2 (3 of 4); others: 4 (1 of 4).
  assert r['tpr1'] == 0.75 and r['fpr1'] == 0.25
  # Of the routed instruments, 0 and 2 named right: A2 = 2/3; the routed
  # other (4) rejected: R2 = 1.
  assert r['a2'] == pytest.approx(2 / 3) and r['r2'] == 1.0


def test_the_pair_is_judged_with_both_baselines_and_per_family():
  found = figures.judge(_scored(), 0.5)
  at = found['by_pi']['0.2']
  # pi*TPR1*A2 + (1-pi)*((1-FPR1) + FPR1*R2)
  assert at['accuracy'] == pytest.approx(0.2 * 0.75 * 2 / 3 + 0.8 * 1.0)
  assert at['cloud_share'] == pytest.approx(0.2 * 0.75 + 0.8 * 0.25)
  # The device alone names no family; the cloud alone sees everything:
  # A2' = 3/4 (bass right, piano right twice), R2' = 3/4 (one other
  # called bass).
  assert at['device_alone'] == pytest.approx(0.8 * 0.75)
  assert at['cloud_alone'] == pytest.approx(0.2 * 0.75 + 0.8 * 0.75)
  # A family's end-to-end recall is capped by phase one's recall on it.
  assert found['families']['piano'] == {
      'examples': 2, 'phase_one_recall': 0.5, 'end_to_end_recall': 0.5}
  assert found['families']['bass']['end_to_end_recall'] == 0.5
  assert set(found['by_pi']) == {'0.05', '0.2', '0.5'}
  # The curve: a lower threshold sends the cloud more.
  shares = [point['cloud_share'] for point in found['curve']]
  assert shares == sorted(shares, reverse=True)
  assert len(found['curve']) == len(figures.GRID)


def test_a_family_phase_two_does_not_know_is_left_out_of_its_accuracy():
  scored = figures.Scored(
      labels=np.array([1, 1, 0]), families=['bass', 'organ', ''],
      phase_one=np.array([0.9, 0.9, 0.1]), phase_two=np.array([1, 1, 0]),
      classes=CLASSES)
  r = figures.rates(scored, 0.5)
  assert r['a2'] == 1.0 and r['tpr1'] == 1.0 and r['r2'] is None
  # Nothing routed among the others: R2 counts as rejecting, A2 as naming
  # nothing.
  assert figures.accuracy(0.5, r) == pytest.approx(0.5 * 1.0 + 0.5 * 1.0)


def _at(accuracy, cloud_alone, share):
  return {'by_pi': {figures.GATE_PI: {'accuracy': accuracy,
                                      'cloud_alone': cloud_alone,
                                      'cloud_share': share}}}


@pytest.mark.parametrize('found,baseline,words', [
    (_at(0.82, 0.80, 0.24), None, None),
    (_at(0.82, 0.80, 0.24), _at(0.825, 0.8, 0.2), None),
    (_at(0.74, 0.80, 0.24), None, 'cascade_max_loss_vs_cloud (0.05)'),
    (_at(0.82, 0.80, 0.61), None, 'sends 0.610 of windows'),
    (_at(0.80, 0.80, 0.24), _at(0.83, 0.8, 0.2),
     "below the last pushed pair's 0.8300"),
    (_at(None, None, None), None, 'cannot be judged'),
])
def test_the_gate_holds_a_pair_back_and_says_why(found, baseline, words):
  reason = figures.verdict(found, figures.Gate(), baseline)
  if words is None:
    assert reason is None
  else:
    assert words in reason
