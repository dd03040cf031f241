"""Tests of the DataGate: schema anomalies, class shares and drift."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import standard_artifacts

from components import data_gate
from components.common import span_layout
from pipeline.settings import config as config_lib


def _anomalies_artifact(tmp_path, per_split):
  artifact = standard_artifacts.ExampleAnomalies()
  artifact.uri = str(tmp_path / 'anomalies')
  artifact.split_names = '["train", "eval"]'
  for split in ('train', 'eval'):
    folder = tmp_path / 'anomalies' / f'Split-{split}'
    folder.mkdir(parents=True)
    (folder / data_gate.ANOMALIES_FILE_NAME).write_bytes(
        per_split.get(split, anomalies_pb2.Anomalies()).SerializeToString())
  return artifact


def _label_anomaly():
  proto = anomalies_pb2.Anomalies()
  info = proto.anomaly_info['label']
  info.short_description = 'Out-of-range values'
  info.description = 'Unexpectedly large value: 2.'
  return proto


def _schema():
  return tfdv.load_schema_text(os.path.join(config_lib.SCHEMA_DIR,
                                            'schema.pbtxt'))


def _statistics_artifact(tmp_path, name, seed, gain=1.0, ones=0.5,
                         count=200):
  """Statistics of a span of `count` images whose pixels are scaled by
  `gain`, with a share `ones` of label 1, laid out as StatisticsGen does."""
  rng = np.random.default_rng(seed)
  frame = pd.DataFrame({
      'label': (rng.random(count) < ones).astype(np.int64),
      'pixel_mean': np.clip(rng.normal(90, 20, count), 0, 255) * gain,
      'pixel_std': np.clip(rng.normal(40, 8, count), 0, 128) * gain,
      'saturated_share': rng.uniform(0, 0.02, count)})
  stats = tfdv.generate_statistics_from_dataframe(
      frame, stats_options=tfdv.StatsOptions(schema=_schema()))
  artifact = standard_artifacts.ExampleStatistics()
  artifact.uri = str(tmp_path / name)
  artifact.split_names = '["all"]'
  os.makedirs(os.path.join(artifact.uri, 'Split-all'))
  with open(os.path.join(artifact.uri, 'Split-all', 'FeatureStats.pb'),
            'wb') as f:
    f.write(stats.SerializeToString())
  return artifact


def _examples(span):
  artifact = standard_artifacts.Examples()
  artifact.set_int_custom_property('span', span)  # as ImportExampleGen does
  return artifact


def _schema_artifact(tmp_path):
  artifact = standard_artifacts.Schema()
  artifact.uri = str(tmp_path / 'schema')
  os.makedirs(artifact.uri)
  tfdv.write_schema_text(_schema(), os.path.join(artifact.uri, 'schema.pbtxt'))
  return artifact


def _baseline(tmp_path, name, statistics, span=1):
  baseline = data_gate.DataBaseline()
  baseline.uri = str(tmp_path / name)
  data_gate.save_baseline(statistics, baseline, span)
  return baseline


def test_gate_lists_anomalies_by_split_and_feature(tmp_path):
  artifact = _anomalies_artifact(tmp_path, {'eval': _label_anomaly()})
  lines = data_gate.collect_anomalies(artifact)
  assert lines == ["[eval] feature 'label': Out-of-range values "
                   '(Unexpectedly large value: 2.)']


def test_gate_passes_clean_data(tmp_path):
  assert data_gate.collect_anomalies(_anomalies_artifact(tmp_path, {})) == []


def test_gate_component_raises_with_the_span(tmp_path):
  with pytest.raises(data_gate.DataAnomaliesError, match='span 4'):
    data_gate.DataGate.test_call(
        examples=_examples(4),
        anomalies=_anomalies_artifact(tmp_path, {'train': _label_anomaly()}),
        statistics=_statistics_artifact(tmp_path, 'stats', seed=0),
        schema=_schema_artifact(tmp_path),
        report=data_gate.DriftReport())


def test_the_label_share_is_read_from_categorical_statistics(tmp_path):
  artifact = _statistics_artifact(tmp_path, 'stats', seed=0, ones=0.03)
  [line] = data_gate.check_label_shares(artifact, 0.05)
  assert "[all] feature 'label'" in line and 'class 1 is' in line


def test_a_span_from_the_same_source_passes_the_drift_check(tmp_path):
  first = _statistics_artifact(tmp_path, 'first', seed=1)
  second = _statistics_artifact(tmp_path, 'second', seed=2)
  drift = data_gate.check_drift(second, _baseline(tmp_path, 'b', first),
                                _schema())
  assert drift['baseline_span'] == 1 and drift['problems'] == []
  measured = {m['feature']: m for m in drift['measurements']['all']}
  assert set(measured) == {'label', 'pixel_mean', 'pixel_std',
                           'saturated_share'}
  assert measured['label']['measure'] == 'L-infinity'
  assert measured['pixel_mean']['measure'] == 'Jensen-Shannon'


def test_a_darkened_span_is_stopped_naming_the_feature_and_distance(tmp_path):
  first = _statistics_artifact(tmp_path, 'first', seed=1)
  dark = _statistics_artifact(tmp_path, 'dark', seed=2, gain=0.5)
  drift = data_gate.check_drift(dark, _baseline(tmp_path, 'b', first),
                                _schema())
  features = {line.split("'")[1] for line in drift['problems']}
  assert {'pixel_mean', 'pixel_std'} <= features
  line = next(l for l in drift['problems'] if "'pixel_mean'" in l)
  assert 'drift from span 1: Jensen-Shannon distance' in line
  assert 'over its threshold 0.3' in line


def test_relaxed_thresholds_let_the_darkened_span_through(tmp_path):
  first = _statistics_artifact(tmp_path, 'first', seed=1)
  dark = _statistics_artifact(tmp_path, 'dark', seed=2, gain=0.5)
  relaxed = data_gate.apply_thresholds(_schema(), {'*': 1.0})
  assert data_gate.check_drift(dark, _baseline(tmp_path, 'b', first),
                               relaxed)['problems'] == []
  one = data_gate.apply_thresholds(_schema(), {'pixel_std': 1.0})
  problems = data_gate.check_drift(dark, _baseline(tmp_path, 'c', first),
                                   one)['problems']
  assert problems and not any("'pixel_std'" in line for line in problems)


def test_a_threshold_for_a_feature_without_a_comparator_is_refused():
  with pytest.raises(ValueError, match='image_width'):
    data_gate.apply_thresholds(_schema(), {'image_width': 0.5})


def _run_gate(tmp_path, name, statistics, span, **kwargs):
  report = data_gate.DriftReport()
  report.uri = str(tmp_path / name)
  data_gate.DataGate.test_call(
      examples=_examples(span),
      anomalies=_anomalies_artifact(tmp_path / name, {}),
      statistics=statistics, schema=_schema_artifact(tmp_path / name),
      report=report, **kwargs)
  return report


def test_the_gate_reports_drift_against_the_accepted_baseline(tmp_path):
  first = _statistics_artifact(tmp_path, 'first', seed=1)
  report = _run_gate(tmp_path, 'gate1', first, 1)
  assert span_layout.artifact_span(report) == 1
  assert json.loads(report.get_string_custom_property('drift')) == {
      'baseline_span': None, 'measurements': {}}
  accepted = data_gate.DataBaseline()
  accepted.uri = str(tmp_path / 'accepted1')
  data_gate.AcceptSpan.test_call(examples=_examples(1), statistics=first,
                                 accepted=accepted)
  assert span_layout.artifact_span(accepted) == 1
  dark = _statistics_artifact(tmp_path, 'dark', seed=2, gain=0.5)
  with pytest.raises(data_gate.DataAnomaliesError, match='span 2 failed'):
    _run_gate(tmp_path, 'gate2', dark, 2, baseline=accepted)
  report = _run_gate(tmp_path, 'gate3', dark, 2, baseline=accepted,
                     drift_thresholds='{"*": 1.0}')
  drift = json.loads(report.get_string_custom_property('drift'))
  assert drift['baseline_span'] == 1
  assert {m['feature'] for m in drift['measurements']['all']} >= {
      'label', 'pixel_mean'}
