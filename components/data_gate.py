"""DataGate: stop the pipeline before Transform when the data is wrong.

TFX's ExampleValidator records anomalies but lets the pipeline go on. Our
pipeline places this small component after it and makes Transform depend on
it, so a span that breaks the curated schema, whose label distribution is
far from a balanced one, or that drifted from the last accepted span, never
reaches training; the run fails with one message that lists every problem
by split and feature, with the distance and the threshold of a drift.

Drift is TFDV's: the schema's `drift_comparator`s (L-infinity distance for
the label, approximate Jensen-Shannon divergence for the numeric image
summaries) compare the new span's statistics with those of the last span
the gate accepted. After the gate passes, :func:`AcceptSpan` copies the
span's statistics into a `DataBaseline` artifact, which a latest-artifact
resolver brings to the next run as the baseline. So a span the gate stopped
never becomes the baseline (running again does not let it through), and
running an accepted span again compares it with itself. AcceptSpan reads
only the statistics, so it is cached and makes no new artifact when a span
runs again.

Usage::

  baseline = Resolver(strategy_class=LatestArtifactStrategy,
                      baseline=Channel(type=DataBaseline))
  gate = DataGate(examples=example_gen.outputs['examples'],
                  anomalies=example_validator.outputs['anomalies'],
                  statistics=statistics_gen.outputs['statistics'],
                  schema=schema_gen.outputs['schema'],
                  baseline=baseline.outputs['baseline'],
                  min_class_share=0.05,
                  drift_thresholds='{"pixel_mean": 0.6}')
  accept = AcceptSpan(examples=example_gen.outputs['examples'],
                      statistics=statistics_gen.outputs['statistics'])
  accept.add_upstream_node(gate)
  transform.add_upstream_node(gate)
"""

import json
import os
from typing import Any, Dict, List, Optional

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types.experimental import simple_artifacts
from tfx.utils import io_utils

from components import contracts
from components.common import span_layout
from components.common import storage
from components.common.drift import apply_thresholds
from components.modules import features
from components.common import errors

ANOMALIES_FILE_NAME = 'SchemaDiff.pb'
# Custom property of the gate's DriftReport: what it measured, as JSON.
DRIFT_PROPERTY = contracts.DataGate.DRIFT
_STATISTICS_FILE = '{split}.pb'


# The drift baseline and the gate's report use generic TFX artifact types
# that nothing else in the pipeline makes: a latest-artifact resolver on
# Kubeflow Pipelines v2 / Vertex AI finds artifacts by type alone, and only
# TFX's own types are known there by name.
DataBaseline = simple_artifacts.Statistics
DriftReport = simple_artifacts.Metrics


class DataAnomaliesError(errors.PipelineError, RuntimeError):
  """Raised when a span has schema anomalies, a rare class or drift."""


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
    proto.ParseFromString(storage.read_bytes(path))
    lines.extend(f'[{split}] {line}' for line in describe_anomalies(proto))
  return lines


def positive_share(statistics, label_key: str = features.LABEL_KEY
                   ) -> Optional[float]:
  """Share of label-1 examples in one split's DatasetFeatureStatistics.

  Labels are 0 or 1 (the schema's domain, checked before this). The schema
  marks the label categorical, so its statistics are value counts; a
  statistics made without the schema has the label's mean instead.
  """
  for feature in statistics.features:
    if list(feature.path.step) != [label_key]:
      continue
    if feature.HasField('num_stats'):
      return float(feature.num_stats.mean)
    if feature.HasField('string_stats'):
      counts = {bucket.label: bucket.sample_count
                for bucket in feature.string_stats.rank_histogram.buckets}
      total = sum(counts.values())
      return counts.get('1', 0.0) / total if total else None
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


def measure_drift(statistics: statistics_pb2.DatasetFeatureStatisticsList,
                  baseline: statistics_pb2.DatasetFeatureStatisticsList,
                  schema: schema_pb2.Schema) -> List[Dict[str, Any]]:
  """Distances between a span's statistics and the baseline's.

  Returns:
    One `{'feature', 'measure', 'value', 'threshold'}` per feature with a
    drift comparator present in both; `measure` is `L-infinity` or
    `Jensen-Shannon`.
  """
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  result = tfdv.validate_statistics(statistics, schema,
                                    previous_statistics=baseline)
  names = {anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: 'L-infinity',
           anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE:
               'Jensen-Shannon'}
  return [{'feature': '.'.join(info.path.step),
           'measure': names.get(measurement.type, str(measurement.type)),
           'value': float(measurement.value),
           'threshold': float(measurement.threshold)}
          for info in result.drift_skew_info
          for measurement in info.drift_measurements]


def describe_drift(split: str, measurements: List[Dict[str, Any]],
                   baseline_span: int) -> List[str]:
  """One line per feature whose distance exceeds its threshold."""
  return [f"[{split}] feature '{m['feature']}': drift from span "
          f"{baseline_span}: {m['measure']} distance {m['value']:.3f} is "
          f"over its threshold {m['threshold']:g} (schema/ drift_comparator; "
          '--drift-thresholds)'
          for m in measurements if m['value'] > m['threshold']]


def _load_schema(schema_artifact: types.Artifact) -> schema_pb2.Schema:
  return io_utils.SchemaReader().read(
      io_utils.get_only_uri_in_dir(schema_artifact.uri))


def save_baseline(statistics_artifact: types.Artifact,
                  baseline: types.Artifact, span: int) -> None:
  """Copies every split's statistics of accepted span `span` into
  `baseline`."""
  splits = artifact_utils.decode_split_names(statistics_artifact.split_names)
  tf.io.gfile.makedirs(baseline.uri)
  for split in splits:
    stats = stats_artifact_utils.load_statistics(statistics_artifact,
                                                 split).proto()
    with tf.io.gfile.GFile(os.path.join(
        baseline.uri, _STATISTICS_FILE.format(split=split)), 'wb') as f:
      f.write(stats.SerializeToString())
  baseline.set_int_custom_property('span', span)
  baseline.set_string_custom_property(
      'split_names', artifact_utils.encode_split_names(splits))


def load_baseline(baseline: types.Artifact, split: str
                  ) -> Optional[statistics_pb2.DatasetFeatureStatisticsList]:
  """The baseline's statistics of one split, or None if it has none."""
  path = os.path.join(baseline.uri, _STATISTICS_FILE.format(split=split))
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, 'rb') as f:
    return statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())


def check_drift(statistics_artifact: types.Artifact,
                baseline: Optional[types.Artifact],
                schema: schema_pb2.Schema) -> Dict[str, Any]:
  """Drift of every split against the baseline's same split.

  Returns:
    `{'baseline_span': N or None, 'measurements': {split: [...]},
    'problems': [line, ...]}`.
  """
  result: Dict[str, Any] = {'baseline_span': None, 'measurements': {},
                            'problems': []}
  if baseline is None:
    return result
  result['baseline_span'] = span_layout.artifact_span(baseline)
  for split in artifact_utils.decode_split_names(
      statistics_artifact.split_names):
    previous = load_baseline(baseline, split)
    if previous is None:
      continue
    current = stats_artifact_utils.load_statistics(statistics_artifact,
                                                   split).proto()
    measurements = measure_drift(current, previous, schema)
    result['measurements'][split] = measurements
    result['problems'].extend(
        describe_drift(split, measurements, result['baseline_span']))
  return result


@component
def DataGate(  # pylint: disable=invalid-name
    examples: InputArtifact[standard_artifacts.Examples],
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    report: OutputArtifact[DriftReport],
    baseline: InputArtifact[DataBaseline] = None,
    min_class_share: Parameter[float] = 0.05,
    drift_thresholds: Parameter[str] = '{}'):
  """Fails the run on schema anomalies, a rare class or drift.

  Args:
    examples: ImportExampleGen's `examples` (the new span; its number).
    anomalies: ExampleValidator's `anomalies` output.
    statistics: StatisticsGen's `statistics` output (the new span).
    schema: the curated schema, with the drift comparators.
    report: output; the drift measured, when the span passes.
    baseline: the last accepted span's statistics (none on the first run:
      no drift is measured).
    min_class_share: each class must be at least this share of every split
      (0 turns the check off).
    drift_thresholds: JSON object {feature or "*": threshold} overriding the
      schema's drift thresholds.

  Raises:
    DataAnomaliesError: listing every problem, by split and feature.
  """
  lines = collect_anomalies(anomalies)
  if not lines:
    lines = check_label_shares(statistics, min_class_share)
  drift = {'baseline_span': None, 'measurements': {}, 'problems': []}
  if not lines:
    drift = check_drift(statistics, baseline, apply_thresholds(
        _load_schema(schema), json.loads(drift_thresholds)))
    lines = drift['problems']
  if lines:
    raise DataAnomaliesError(
        f'The examples of span {span_layout.artifact_span(examples)} failed '
        'validation against '
        'schema/; training was not started. Anomalies:\n  '
        + '\n  '.join(lines))
  report.set_int_custom_property('span', span_layout.artifact_span(examples))
  report.set_string_custom_property(DRIFT_PROPERTY, json.dumps(
      {'baseline_span': drift['baseline_span'],
       'measurements': drift['measurements']}, sort_keys=True))


@component
def AcceptSpan(  # pylint: disable=invalid-name
    examples: InputArtifact[standard_artifacts.Examples],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    accepted: OutputArtifact[DataBaseline]):
  """Records a span the DataGate passed as the next runs' drift baseline.

  Args:
    examples: ImportExampleGen's `examples` (the new span; its number).
    statistics: StatisticsGen's `statistics` output (the new span).
    accepted: output; a copy of every split's statistics.
  """
  save_baseline(statistics, accepted, span_layout.artifact_span(examples))
