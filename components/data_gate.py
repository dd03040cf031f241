"""DataGate: stop the pipeline before Transform when the data has anomalies.

TFX's ExampleValidator records anomalies but lets the pipeline go on. Our
pipeline places this small component after it and makes Transform depend on
it, so a span that breaks the curated schema never reaches training; the run
fails with one message that lists every anomaly by split and feature.

Usage::

  gate = DataGate(anomalies=example_validator.outputs['anomalies'])
  transform.add_upstream_node(gate)
"""

import os
from typing import List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

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


@component
def DataGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies]):  # pylint: disable=invalid-name
  """Fails the run when ExampleValidator reported any anomaly.

  Args:
    anomalies: ExampleValidator's `anomalies` output.

  Raises:
    DataAnomaliesError: listing every anomaly, by split and feature.
  """
  lines = collect_anomalies(anomalies)
  if lines:
    span = anomalies.span
    raise DataAnomaliesError(
        f'The examples of span {span} do not match the schema in schema/; '
        'training was not started. Anomalies:\n  ' + '\n  '.join(lines))
