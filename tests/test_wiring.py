"""Tests of the pipeline's wiring and the data gate."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from tfx.components.util import udf_utils
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import standard_artifacts

from components import data_gate
from pipeline import config as config_lib
from pipeline import run


def _ids(nodes):
  return {node.id for node in nodes}


def test_pipeline_has_the_components_in_order(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  pipeline = run.build_pipeline(config)
  nodes = {node.id: node for node in pipeline.components}
  assert set(nodes) == {
      'ImportExampleGen', 'StatisticsGen', 'ImportSchemaGen',
      'ExampleValidator', 'DataGate', 'Transform', 'Trainer',
      'latest_blessed_model_resolver', 'Evaluator', 'TFLitePusher'}
  assert 'DataGate' in _ids(nodes['Transform'].upstream_nodes)
  assert nodes['Transform'].exec_properties['disable_statistics'] in (True, 1)
  assert 'ExampleValidator' in _ids(nodes['DataGate'].upstream_nodes)
  assert _ids(nodes['Trainer'].upstream_nodes) >= {'Transform',
                                                    'ImportSchemaGen'}
  assert _ids(nodes['Evaluator'].upstream_nodes) >= {
      'Trainer', 'latest_blessed_model_resolver', 'ImportExampleGen'}
  assert pipeline.enable_cache
  assert pipeline.pipeline_info.pipeline_root == config.pipeline_root


def test_settings_reach_the_components(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path), train_steps=9,
                                     image_size=64, min_auc=0.7)
  nodes = {n.id: n for n in run.build_pipeline(config).components}
  trainer_props = nodes['Trainer'].exec_properties
  assert '"num_steps": 9' in trainer_props['train_args']
  assert '"image_size": 64' in trainer_props['custom_config']
  assert '0.7' in nodes['Evaluator'].exec_properties['eval_config']
  assert nodes['Transform'].exec_properties['module_file'] == (
      config_lib.TRANSFORM_MODULE_FILE)


def test_module_folder_holds_only_module_code():
  # TFX hashes every .py file of the module folder into the cache key.
  files = sorted(os.listdir(config_lib.MODULES_DIR))
  assert [f for f in files if f.endswith('.py')] == [
      '__init__.py', 'features.py', 'metrics.py', 'trainer.py',
      'transform.py']


def _project_files_imported_by(*modules):
  """The project's own .py files that importing `modules` loads."""
  code = ('import json, sys\n' +
          ''.join(f'import {m}\n' for m in modules) +
          'print(json.dumps([getattr(m, "__file__", None) or "" '
          'for m in list(sys.modules.values())]))')
  out = subprocess.run([sys.executable, '-c', code], cwd=config_lib.REPO_ROOT,
                       capture_output=True, text=True, check=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')).stdout
  packages = tuple(os.path.join(config_lib.REPO_ROOT, name) + os.sep
                   for name in ('components', 'pipeline'))
  return sorted({os.path.abspath(f) for f in json.loads(out.splitlines()[-1])
                 if f.startswith(packages) and f.endswith('.py')})


def test_editing_any_file_the_trainer_or_transform_imports_changes_the_cache_key(
    tmp_path):
  imported = _project_files_imported_by('components.modules.trainer',
                                        'components.modules.transform')
  module_dir = config_lib.MODULES_DIR + os.sep
  assert os.path.join(module_dir, 'metrics.py') in imported
  # Code outside the folder TFX hashes would change without a retrain.
  assert [f for f in imported if not f.startswith(module_dir)
          and not f.endswith('__init__.py')] == []
  copy = tmp_path / 'modules'
  shutil.copytree(config_lib.MODULES_DIR, copy,
                  ignore=shutil.ignore_patterns('__pycache__'))
  sources = [f for f in os.listdir(copy) if f.endswith('.py')]
  original = udf_utils._get_version_hash(str(copy), sources)  # pylint: disable=protected-access
  for path in imported:
    if not path.startswith(module_dir):
      continue
    edited = copy / os.path.basename(path)
    text = edited.read_text()
    edited.write_text(text + '\n# edited\n')
    assert udf_utils._get_version_hash(str(copy), sources) != original, path  # pylint: disable=protected-access
    edited.write_text(text)
  assert udf_utils._get_version_hash(str(copy), sources) == original  # pylint: disable=protected-access


def _anomalies_artifact(tmp_path, per_split):
  artifact = standard_artifacts.ExampleAnomalies()
  artifact.uri = str(tmp_path)
  artifact.split_names = '["train", "eval"]'
  artifact.span = 4
  for split in ('train', 'eval'):
    folder = tmp_path / f'Split-{split}'
    folder.mkdir()
    (folder / data_gate.ANOMALIES_FILE_NAME).write_bytes(
        per_split.get(split, anomalies_pb2.Anomalies()).SerializeToString())
  return artifact


def _label_anomaly():
  proto = anomalies_pb2.Anomalies()
  info = proto.anomaly_info['label']
  info.short_description = 'Out-of-range values'
  info.description = 'Unexpectedly large value: 2.'
  return proto


def test_gate_lists_anomalies_by_split_and_feature(tmp_path):
  artifact = _anomalies_artifact(tmp_path, {'eval': _label_anomaly()})
  lines = data_gate.collect_anomalies(artifact)
  assert lines == ["[eval] feature 'label': Out-of-range values "
                   '(Unexpectedly large value: 2.)']


def test_gate_passes_clean_data(tmp_path):
  assert data_gate.collect_anomalies(_anomalies_artifact(tmp_path, {})) == []


def test_gate_component_raises_with_the_span(tmp_path):
  artifact = _anomalies_artifact(tmp_path, {'train': _label_anomaly()})
  with pytest.raises(data_gate.DataAnomaliesError, match='span 4'):
    data_gate.DataGate.test_call(anomalies=artifact, statistics=None)


def test_warm_start_feeds_the_latest_blessed_model_to_the_trainer(tmp_path):
  cold = {n.id: n for n in run.build_pipeline(config_lib.PipelineConfig(
      workspace=str(tmp_path))).components}
  warm = {n.id: n for n in run.build_pipeline(config_lib.PipelineConfig(
      workspace=str(tmp_path), warm_start=True)).components}
  assert 'base_model' not in cold['Trainer'].inputs
  assert 'latest_blessed_model_resolver' in _ids(
      warm['Trainer'].upstream_nodes)
  assert '"warm_start": true' in warm['Trainer'].exec_properties[
      'custom_config']
