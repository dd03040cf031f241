"""What phase two is for, as TFMA metrics its Evaluator gates on.

Phase two's eval split is half the reject class, so its overall accuracy
can be high while it names few families. Its Evaluator therefore blesses
it on two figures, each read from the multi-class confusion matrix of its
top class (weighted: a positive example of no known family weighs
nothing):

- :class:`MeanFamilyRecall` (`mean_family_recall`): the mean, over the
  families with an example, of the share of each family's examples named
  that family (class 0 is the reject class and is left out);
- :class:`RejectRecall` (`reject_recall`): the share of the reject class's
  examples (what phase one wrongly flags) that phase two rejects.

Usage, as the pipeline's eval config names them:

    tfma.MetricConfig(class_name='MeanFamilyRecall',
                      module='components.phase_two_evaluator.metrics',
                      threshold=...)
"""

from typing import Dict, Optional

import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.metrics import metric_util
from tensorflow_model_analysis.metrics import \
    multi_class_confusion_matrix_metrics as matrices_lib

from components import contracts

MEAN_FAMILY_RECALL_NAME = contracts.PhaseTwoEvaluator.MEAN_FAMILY_RECALL
REJECT_RECALL_NAME = contracts.PhaseTwoEvaluator.REJECT_RECALL
# The class phase two answers for what is not an instrument.
REJECT_CLASS = 0


def recalls(counts: Dict[int, Dict[int, float]]) -> Dict[int, float]:
  """Each actual class's recall from {actual: {predicted: weight}}, for the
  classes with weight."""
  found = {}
  for actual, row in counts.items():
    total = sum(row.values())
    if total > 0:
      found[actual] = row.get(actual, 0.0) / total
  return found


def mean_family_recall(counts: Dict[int, Dict[int, float]]) -> float:
  """The mean recall of the classes other than the reject class (NaN when
  none has an example)."""
  found = [value for actual, value in recalls(counts).items()
           if actual != REJECT_CLASS]
  return float(np.mean(found)) if found else float('nan')


def reject_recall(counts: Dict[int, Dict[int, float]]) -> float:
  """The reject class's recall (NaN when it has no example)."""
  return float(recalls(counts).get(REJECT_CLASS, float('nan')))


def _counts(matrices: matrices_lib.Matrices) -> Dict[int, Dict[int, float]]:
  """The confusion matrix at TFMA's threshold 0 (the top class always)."""
  counts: Dict[int, Dict[int, float]] = {}
  for threshold in sorted(matrices)[:1]:
    for key, weight in matrices[threshold].items():
      row = counts.setdefault(key.actual_class_id, {})
      row[key.predicted_class_id] = row.get(key.predicted_class_id, 0.0) + (
          weight)
  return counts


def _computations(of, name: str, eval_config=None, model_name: str = '',
                  output_name: str = '', example_weighted: bool = False
                  ) -> metric_types.MetricComputations:
  key = metric_types.MetricKey(name=name, model_name=model_name,
                               output_name=output_name,
                               example_weighted=example_weighted)
  computations = matrices_lib.multi_class_confusion_matrices(
      thresholds=[0.0], eval_config=eval_config, model_name=model_name,
      output_name=output_name, example_weighted=example_weighted)
  matrices_key = computations[-1].keys[-1]

  def result(metrics):
    return {key: of(_counts(metrics[matrices_key]))}

  computations.append(metric_types.DerivedMetricComputation(
      keys=[key], result=result))
  return computations


def _mean_family_recall(name: str = MEAN_FAMILY_RECALL_NAME,
                        eval_config=None, model_name: str = '',
                        output_name: str = '',
                        example_weighted: bool = False):
  return _computations(mean_family_recall, name, eval_config, model_name,
                       output_name, example_weighted)


def _reject_recall(name: str = REJECT_RECALL_NAME, eval_config=None,
                   model_name: str = '', output_name: str = '',
                   example_weighted: bool = False):
  return _computations(reject_recall, name, eval_config, model_name,
                       output_name, example_weighted)


class MeanFamilyRecall(metric_types.Metric):
  """The mean recall over the families (see the module's docstring)."""

  def __init__(self, name: Optional[str] = MEAN_FAMILY_RECALL_NAME):
    super().__init__(metric_util.merge_per_key_computations(
        _mean_family_recall), name=name)


class RejectRecall(metric_types.Metric):
  """The reject class's recall (see the module's docstring)."""

  def __init__(self, name: Optional[str] = REJECT_RECALL_NAME):
    super().__init__(metric_util.merge_per_key_computations(_reject_recall),
                     name=name)


metric_types.register_metric(MeanFamilyRecall)
metric_types.register_metric(RejectRecall)
