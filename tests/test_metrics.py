"""Tests for components.modules.metrics."""

import numpy as np
import pytest

from components.common import metrics


@pytest.mark.parametrize('labels, scores, expected', [
    ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),
    ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),
    ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5),
    ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
    ([1, 0, 1, 0, 1], [0.3, 0.3, 0.9, 0.1, 0.3], 0.8333333),
])
def test_binary_auc(labels, scores, expected):
  assert metrics.binary_auc(labels, scores) == pytest.approx(expected)


def test_binary_auc_matches_the_pairwise_definition():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 200)
  scores = np.round(rng.random(200), 1)  # many ties
  pos, neg = scores[labels == 1], scores[labels == 0]
  pairwise = ((pos[:, None] > neg[None, :]).mean() +
              0.5 * (pos[:, None] == neg[None, :]).mean())
  assert metrics.binary_auc(labels, scores) == pytest.approx(pairwise)


def test_binary_auc_is_nan_for_one_class():
  assert np.isnan(metrics.binary_auc([1, 1], [0.2, 0.3]))


def test_binary_metrics_threshold():
  result = metrics.binary_metrics([0, 1, 1, 0], [0.2, 0.5, 0.4, 0.7])
  assert result['accuracy'] == 0.5
  assert result['examples'] == 4
