"""Classification metrics shared by the Trainer and the TFLite pusher.

Plain NumPy, so the pusher can compare a TFLite model with its SavedModel
without TFMA (which cannot evaluate both in one run).
"""

from typing import Dict

import numpy as np


def binary_auc(labels, scores) -> float:
  """Area under the ROC curve (scikit-learn's `roc_auc_score`, ties
  averaged), or NaN where it is undefined.

  Args:
    labels: 0/1 labels.
    scores: predicted probabilities of class 1.

  Returns:
    The AUC, or NaN when only one class is present (where scikit-learn
    raises).
  """
  from sklearn import metrics as sklearn_metrics  # pylint: disable=g-import-not-at-top
  labels = np.asarray(labels).reshape(-1).astype(bool)
  scores = np.asarray(scores, dtype=np.float64).reshape(-1)
  if labels.all() or not labels.any():
    return float('nan')
  return float(sklearn_metrics.roc_auc_score(labels, scores))


def binary_metrics(labels, scores, threshold: float = 0.5) -> Dict[str, float]:
  """Accuracy and AUC of class-1 probabilities.

  Args:
    labels: 0/1 labels.
    scores: predicted probabilities of class 1.
    threshold: scores at or above it predict class 1.

  Returns:
    `accuracy`, `auc` and `examples`.
  """
  labels = np.asarray(labels).reshape(-1)
  scores = np.asarray(scores, dtype=np.float64).reshape(-1)
  return {
      'accuracy': float(np.mean((scores >= threshold) == (labels >= 0.5))),
      'auc': binary_auc(labels, scores),
      'examples': int(labels.size),
  }
