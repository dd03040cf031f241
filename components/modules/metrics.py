"""Classification metrics shared by the Trainer and the TFLite pusher.

Plain NumPy, so the pusher can compare a TFLite model with its SavedModel
without TFMA (which cannot evaluate both in one run).
"""

from typing import Dict

import numpy as np


def binary_auc(labels, scores) -> float:
  """Area under the ROC curve by the rank-sum formula (ties averaged).

  Args:
    labels: 0/1 labels.
    scores: predicted probabilities of class 1.

  Returns:
    The AUC, or NaN when only one class is present.
  """
  labels = np.asarray(labels).reshape(-1).astype(bool)
  scores = np.asarray(scores, dtype=np.float64).reshape(-1)
  positives, negatives = labels.sum(), (~labels).sum()
  if positives == 0 or negatives == 0:
    return float('nan')
  order = np.argsort(scores, kind='mergesort')
  ranks = np.empty(len(scores))
  sorted_scores = scores[order]
  ranks[order] = np.arange(1, len(scores) + 1)
  # Average the ranks of tied scores.
  unique, inverse, counts = np.unique(sorted_scores, return_inverse=True,
                                      return_counts=True)
  if len(unique) < len(scores):
    sums = np.bincount(inverse, weights=np.arange(1, len(scores) + 1))
    ranks[order] = (sums / counts)[inverse]
  return float((ranks[labels].sum() - positives * (positives + 1) / 2) /
               (positives * negatives))


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
