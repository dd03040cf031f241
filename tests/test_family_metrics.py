"""Phase two's gate metrics: mean recall over the families and reject
recall, from the confusion matrix, as TFMA computes them in a pipeline."""

import math

import apache_beam as beam
import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from apache_beam.testing import util as beam_util
from tensorflow_model_analysis.metrics import metric_types

from components.phase_two_evaluator import metrics as family_metrics


def test_recalls_leave_out_classes_with_no_weight():
  counts = {0: {0: 8.0, 1: 2.0}, 1: {1: 3.0, 2: 1.0}, 2: {2: 1.0, 0: 1.0},
            3: {3: 0.0}}
  assert family_metrics.recalls(counts) == {0: 0.8, 1: 0.75, 2: 0.5}
  assert family_metrics.mean_family_recall(counts) == pytest.approx(0.625)
  assert family_metrics.reject_recall(counts) == pytest.approx(0.8)
  assert math.isnan(family_metrics.reject_recall({1: {1: 1.0}}))
  assert math.isnan(family_metrics.mean_family_recall({0: {0: 1.0}}))


def _inputs(rows):
  """StandardMetricInputs of (label, top class, weight) rows over three
  classes."""
  found = []
  for label, top, weight in rows:
    scores = np.full(3, 0.1, np.float32)
    scores[top] = 0.8
    found.append(metric_types.StandardMetricInputs(
        label=np.array([label]), prediction=scores,
        example_weight=np.array([weight], np.float32)))
  return found


@pytest.mark.parametrize('metric, expected', [
    (family_metrics.MeanFamilyRecall(), (0.5 + 1.0) / 2),
    (family_metrics.RejectRecall(), 2 / 3),
])
def test_tfma_computes_them_weighted(metric, expected):
  rows = [(0, 0, 1.0), (0, 0, 1.0), (0, 2, 1.0),
          (1, 1, 1.0), (1, 2, 1.0), (2, 2, 1.0),
          (2, 1, 0.0)]  # a positive of no known family weighs nothing
  computations = metric.computations(example_weighted=True)
  matrices, derived = computations[0], computations[1]
  key = derived.keys[0]

  with beam.Pipeline() as p:
    result = (p | beam.Create(_inputs(rows))
              | beam.Map(lambda x: ((), x))
              | beam.CombinePerKey(matrices.combiner)
              | beam.Map(lambda kv: (kv[0], derived.result(kv[1]))))

    def check(found):
      assert len(found) == 1
      assert found[0][1][key] == pytest.approx(expected)

    beam_util.assert_that(result, check)


def test_the_pipeline_config_names_them_so_tfma_finds_them():
  config = tfma.MetricConfig(class_name='MeanFamilyRecall',
                             module=family_metrics.__name__)
  from tensorflow_model_analysis.metrics import metric_specs  # pylint: disable=import-outside-toplevel
  instance = metric_specs.metric_instance(
      config, metric_types.registered_metrics())
  assert instance.name == family_metrics.MEAN_FAMILY_RECALL_NAME
