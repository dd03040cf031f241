"""What the report reads from the artifacts' files: statistics, anomalies
and the Evaluator's results, each as plain data or its proto."""

import json
import logging
from typing import Any, Dict, List

from ml_metadata.proto import metadata_store_pb2

from components import data_gate
from components.common import storage
from components.modules import features
from pipeline.metadata import mlmd


def _read_proto(path: str, message):
  message.ParseFromString(storage.read_bytes(path))
  return message


def _splits(uri: str) -> List[str]:
  try:
    return sorted(name[len('Split-'):] for name in storage.listdir(uri)
                  if name.startswith('Split-'))
  except OSError:
    return []


def read_statistics(artifact: metadata_store_pb2.Artifact) -> Dict[str, Any]:
  """Split name -> DatasetFeatureStatistics, from an ExampleStatistics
  artifact, read with TFX's own reader (as the data gate reads it)."""
  from tfx.components.statistics_gen import stats_artifact_utils  # pylint: disable=g-import-not-at-top
  from tfx.types import artifact_utils  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  statistics = standard_artifacts.ExampleStatistics()
  statistics.set_mlmd_artifact(artifact)
  result = {}
  for split in artifact_utils.decode_split_names(statistics.split_names):
    try:
      view = stats_artifact_utils.load_statistics(statistics, split)
    except (OSError, ValueError) as e:
      logging.warning('report: no statistics of split %s in %s (%s)', split,
                      artifact.uri, e)
      continue
    if view.proto().datasets:
      result[split] = view.proto().datasets[0]
  return result


def read_anomalies(uri: str) -> Dict[str, Any]:
  """Split name -> Anomalies proto, from an anomalies artifact."""
  from tensorflow_metadata.proto.v0 import anomalies_pb2  # pylint: disable=g-import-not-at-top
  result = {}
  for split in _splits(uri):
    path = storage.join(uri, f'Split-{split}', data_gate.ANOMALIES_FILE_NAME)
    if storage.isfile(path):
      result[split] = _read_proto(path, anomalies_pb2.Anomalies())
  return result


def read_evaluation(uri: str) -> Dict[str, Any]:
  """Metrics (overall and by the recorded kind or family), thresholds,
  validation outcome and confusion matrices."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  result: Dict[str, Any] = {'metrics': mlmd.evaluation_metrics(uri),
                            'thresholds': {}, 'matrices': [], 'failures': [],
                            'slices': mlmd.slice_metrics(
                                uri, (features.KIND_KEY,
                                      features.FAMILY_KEY))}
  try:
    config = json.loads(storage.read_text(storage.join(
        uri, 'eval_config.json'))).get('evalConfig', {})
  except (OSError, ValueError):
    config = {}
  for spec in config.get('metricsSpecs', []):
    for metric in spec.get('metrics', []):
      # One threshold on every slice, or one on the overall slice alone.
      threshold = metric.get('threshold') or next(
          (each.get('threshold') for each in metric.get(
              'perSliceThresholds', [])
           if each.get('slicingSpecs') in ([{}], None)), None)
      if threshold:
        result['thresholds'][metric['className']] = threshold
  try:
    validation = tfma.load_validation_result(uri)
    result['validation_ok'] = validation.validation_ok
    for per_slice in validation.metric_validations_per_slice:
      for failure in per_slice.failures:
        result['failures'].append(
            f'{failure.metric_key.name}: {failure.message}'.strip())
  except (OSError, IOError, ValueError, IndexError):
    pass
  for plots in tfma.load_plots(uri):
    if plots.slice_key.single_slice_keys:
      continue
    for item in plots.plot_keys_and_values:
      if item.key.model_name not in ('', 'candidate'):
        continue
      matrices = item.value.confusion_matrix_at_thresholds.matrices
      result['matrices'] = [
          {'threshold': m.threshold, 'true_positives': m.true_positives,
           'false_positives': m.false_positives,
           'true_negatives': m.true_negatives,
           'false_negatives': m.false_negatives} for m in matrices]
  return result
