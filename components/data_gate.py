"""DataGate: stop the pipeline before Transform when the data is wrong.

TFX's ExampleValidator records anomalies but lets the pipeline go on. Our
pipeline places this small component after it and makes Transform depend on
it, so a span that breaks the curated schema, or whose label distribution
drifts far from a balanced one, never reaches training; the run fails with
one message that lists every problem by split and feature.

Usage::

  gate = DataGate(anomalies=example_validator.outputs['anomalies'],
                  statistics=statistics_gen.outputs['statistics'],
                  min_class_share=0.05)
  transform.add_upstream_node(gate)
"""

import os
from typing import List, Optional

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.modules import features

ANOMALIES_FILE_NAME = 'SchemaDiff.pb'


class DataAnomaliesError(RuntimeError):
  """Raised when ExampleValidator found anomalies in the examples."""


def describe_anomalies(anomalies: anomalies_pb2.Anomalies) -> List[str]:
  """Turns an Anomalies proto into one readable line per anomaly.

  Args:
    anomalies: the proto ExampleValidator wrote for one split.

  Returns:
    Lines such as "feature 'label': Out-of-range values (...)"; empty when
    there is no anomaly.
  """
  lines = []
  for feature, info in sorted(anomalies.anomaly_info.items()):
    detail = info.description or info.short_description
    lines.append(f"feature '{feature}': {info.short_description}"
                 + (f' ({detail})' if detail != info.short_description else ''))
  if anomalies.HasField('dataset_anomaly_info'):
    info = anomalies.dataset_anomaly_info
    lines.append(f'data set: {info.short_description} ({info.description})')
  return lines


def collect_anomalies(anomalies_artifact: types.Artifact) -> List[str]:
  """Reads every split's anomalies from an ExampleAnomalies artifact.

  Args:
    anomalies_artifact: ExampleValidator's output.

  Returns:
    One line per anomaly, each prefixed with its split.
  """
  lines = []
  for split in artifact_utils.decode_split_names(
      anomalies_artifact.split_names):
    path = os.path.join(
        artifact_utils.get_split_uri([anomalies_artifact], split),
        ANOMALIES_FILE_NAME)
    proto = anomalies_pb2.Anomalies()
    with open(path, 'rb') as f:
      proto.ParseFromString(f.read())
    lines.extend(f'[{split}] {line}' for line in describe_anomalies(proto))
  return lines


def positive_share(statistics, label_key: str = features.LABEL_KEY
                   ) -> Optional[float]:
  """Share of label-1 examples in one split's DatasetFeatureStatistics.

  Labels are 0 or 1 (the schema's domain, checked before this), so the share
  of class 1 is the label's mean.
  """
  for feature in statistics.features:
    if list(feature.path.step) == [label_key] and feature.HasField(
        'num_stats'):
      return float(feature.num_stats.mean)
  return None


def check_label_shares(statistics_artifact: types.Artifact,
                       min_class_share: float) -> List[str]:
  """One line per split in which a class is rarer than `min_class_share`."""
  lines = []
  for split in artifact_utils.decode_split_names(
      statistics_artifact.split_names):
    stats = stats_artifact_utils.load_statistics(statistics_artifact,
                                                 split).proto()
    share = positive_share(stats.datasets[0])
    if share is None:
      continue
    rarest = min(share, 1.0 - share)
    if rarest < min_class_share:
      lines.append(
          f"[{split}] feature 'label': label distribution drift: class "
          f'{int(share < 0.5)} is {rarest:.1%} of the examples (expected at '
          f'least {min_class_share:.1%}; --min-class-share)')
  return lines


@component
def DataGate(  # pylint: disable=invalid-name
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    min_class_share: Parameter[float] = 0.05):
  """Fails the run on schema anomalies or a drifted label distribution.

  Args:
    anomalies: ExampleValidator's `anomalies` output.
    statistics: StatisticsGen's `statistics` output.
    min_class_share: each class must be at least this share of every split
      (0 turns the check off).

  Raises:
    DataAnomaliesError: listing every problem, by split and feature.
  """
  lines = collect_anomalies(anomalies)
  if not lines:
    lines = check_label_shares(statistics, min_class_share)
  if lines:
    span = anomalies.span
    raise DataAnomaliesError(
        f'The examples of span {span} failed validation against schema/; '
        'training was not started. Anomalies:\n  ' + '\n  '.join(lines))
