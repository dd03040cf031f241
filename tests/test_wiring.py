"""Tests of the pipeline's wiring."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from pipeline.settings import config as config_lib
from pipeline import pipeline_def
from pipeline.runners import run


def _ids(nodes):
  return {node.id for node in nodes}


def test_pipeline_has_the_components_in_order(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  pipeline = run.build_pipeline(config)
  nodes = {node.id: node for node in pipeline.components}
  assert set(nodes) == {
      'ImportExampleGen', 'StatisticsGen', 'ImportSchemaGen',
      'ExampleValidator', 'latest_data_baseline_resolver', 'DataGate',
      'AcceptSpan',
      'SpanWindow', 'Transform', 'Trainer', 'latest_blessed_model_resolver',
      'Evaluator', 'TFLiteConverter', 'TFLitePusher',
      'latest_blessed_phase_two_resolver',
      'PhaseTwoTrainer', 'PhaseTwoEvaluator', 'PhaseTwoServingCheck',
      'PhaseTwoPusher', 'CascadeEvaluator'}
  # Phase two trains on the same transformed examples, is judged against
  # its own baseline, proved in a model server and pushed from both
  # blessings.
  assert _ids(nodes['PhaseTwoTrainer'].upstream_nodes) >= {'Transform'}
  assert _ids(nodes['PhaseTwoEvaluator'].upstream_nodes) >= {
      'PhaseTwoTrainer', 'latest_blessed_phase_two_resolver', 'SpanWindow'}
  assert _ids(nodes['PhaseTwoServingCheck'].upstream_nodes) == {
      'PhaseTwoTrainer', 'PhaseTwoEvaluator', 'SpanWindow'}
  assert _ids(nodes['PhaseTwoPusher'].upstream_nodes) == {
      'PhaseTwoTrainer', 'PhaseTwoEvaluator', 'PhaseTwoServingCheck',
      'SpanWindow', 'CascadeEvaluator'}
  assert nodes['PhaseTwoServingCheck'].exec_properties['server'] == 'kserve'
  # The pair is judged on phase one's candidate and phase two's model
  # before either is pushed; both pushers obey its blessing.
  assert _ids(nodes['CascadeEvaluator'].upstream_nodes) == {
      'TFLiteConverter', 'PhaseTwoTrainer', 'SpanWindow'}
  assert _ids(nodes['TFLitePusher'].upstream_nodes) == {
      'TFLiteConverter', 'CascadeEvaluator'}
  assert _ids(nodes['TFLiteConverter'].upstream_nodes) == {
      'Trainer', 'Evaluator', 'Transform', 'SpanWindow'}
  assert nodes['CascadeEvaluator'].exec_properties[
      'max_cloud_share'] == config.cascade_max_cloud_share
  assert nodes['PhaseTwoTrainer'].exec_properties['run_fn'] == (
      pipeline_def.PHASE_TWO_FN)
  # Statistics and validation see the new span; training sees the window,
  # made only once the gate passed.
  assert _ids(nodes['StatisticsGen'].upstream_nodes) >= {'ImportExampleGen'}
  assert _ids(nodes['DataGate'].upstream_nodes) >= {
      'ExampleValidator', 'StatisticsGen', 'latest_data_baseline_resolver'}
  assert _ids(nodes['AcceptSpan'].upstream_nodes) == {
      'ImportExampleGen', 'StatisticsGen', 'DataGate'}
  assert _ids(nodes['SpanWindow'].upstream_nodes) == {'ImportExampleGen',
                                                      'DataGate'}
  assert _ids(nodes['Transform'].upstream_nodes) >= {'SpanWindow'}
  assert 'ImportExampleGen' not in _ids(nodes['Transform'].upstream_nodes)
  assert nodes['Transform'].exec_properties['disable_statistics'] in (True, 1)
  assert _ids(nodes['Trainer'].upstream_nodes) >= {'Transform',
                                                    'ImportSchemaGen'}
  assert _ids(nodes['Evaluator'].upstream_nodes) >= {
      'Trainer', 'latest_blessed_model_resolver', 'SpanWindow'}
  assert nodes['SpanWindow'].exec_properties['num_spans'] == 3
  assert nodes['SpanWindow'].exec_properties['input_base'] == config.data_root
  assert pipeline.enable_cache
  assert pipeline.pipeline_info.pipeline_root == config.pipeline_root


def test_settings_reach_the_components(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path), train_steps=9,
                                     image_size=64, min_auc=0.7,
                                     max_tflite_bytes=50_000,
                                     max_latency_ms=2.5)
  nodes = {n.id: n for n in run.build_pipeline(config).components}
  converter_props = nodes['TFLiteConverter'].exec_properties
  assert converter_props['max_tflite_bytes'] == 50_000
  assert converter_props['max_latency_ms'] == 2.5
  assert nodes['TFLitePusher'].exec_properties['push_destination'] == (
      config.push_destination)
  trainer_props = nodes['Trainer'].exec_properties
  assert '"num_steps": 9' in trainer_props['train_args']
  assert '"image_size": 64' in trainer_props['custom_config']
  assert '0.7' in nodes['Evaluator'].exec_properties['eval_config']
  assert nodes['Transform'].exec_properties['preprocessing_fn'] == (
      pipeline_def.TRANSFORM_FN)
  assert nodes['Trainer'].exec_properties['run_fn'] == pipeline_def.TRAINER_FN
  versions = pipeline_def.UserCode.of_modules(config.schema_path).versions
  for node in ('Transform', 'Trainer'):
    assert json.loads(nodes[node].exec_properties['custom_config'])[
        pipeline_def.CODE_VERSION_KEY] == versions[node]


def test_module_folder_holds_only_module_code():
  # Every .py file of the module folder is part of the cache key.
  files = sorted(os.listdir(config_lib.MODULES_DIR))
  assert [f for f in files if f.endswith('.py')] == [
      '__init__.py', 'features.py', 'model_defaults.py', 'phase_two.py',
      'phase_two_audio.py', 'search.py', 'search_settings.py', 'settings.py', 'trainer.py',
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


@pytest.mark.parametrize('node', sorted(pipeline_def.ENTRY_MODULES))
def test_editing_any_file_the_module_code_imports_changes_its_cache_key(
    tmp_path, node):
  module = pipeline_def.ENTRY_MODULES[node]
  found = pipeline_def.project_files(module)
  # Every project file that importing the module really loads is found.
  assert set(_project_files_imported_by(module)) <= set(found)
  root = tmp_path / 'copy'
  shutil.copytree(os.path.join(config_lib.REPO_ROOT, 'components'),
                  root / 'components',
                  ignore=shutil.ignore_patterns('__pycache__'))

  def versions():
    return pipeline_def.UserCode.of_modules('schema', str(root)).versions

  original = versions()
  assert original == pipeline_def.UserCode.of_modules('schema').versions
  for path in found:
    edited = root / os.path.relpath(path, config_lib.REPO_ROOT)
    text = edited.read_text()
    edited.write_text(text + '\n# edited\n')
    assert versions()[node] != original[node], path
    edited.write_text(text)
  assert versions() == original


def _copied_components(tmp_path):
  """A copy of components/ (the root holding it) and its code versions."""
  root = tmp_path / 'copy'
  shutil.copytree(os.path.join(config_lib.REPO_ROOT, 'components'),
                  root / 'components',
                  ignore=shutil.ignore_patterns('__pycache__'))
  return root, pipeline_def.UserCode.of_modules('schema', str(root)).versions


def test_editing_the_budget_check_retrains_nothing(tmp_path):
  root, before = _copied_components(tmp_path)
  budget = root / 'components' / 'tflite' / 'budget.py'
  budget.write_text(budget.read_text() + '\n# edited\n')
  after = pipeline_def.UserCode.of_modules('schema', str(root)).versions
  assert after['Transform'] == before['Transform']
  assert after['Trainer'] == before['Trainer']
  assert after['ModelSearch'] != before['ModelSearch']  # the search uses it


def test_editing_any_file_of_the_pusher_leaves_the_search_cached(tmp_path):
  root, before = _copied_components(tmp_path)
  pusher = sorted((root / 'components' / 'tflite_pusher').glob('*.py'))
  assert len(pusher) >= 4
  for path in pusher:
    path.write_text(path.read_text() + '\n# edited\n')
  assert pipeline_def.UserCode.of_modules('schema', str(root)).versions == (
      before)


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


def test_a_run_pins_import_example_gen_to_the_span_it_checked(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  unpinned = {n.id: n for n in run.build_pipeline(config).components}
  assert not unpinned['ImportExampleGen'].exec_properties['range_config']
  pinned = {n.id: n for n in run.build_pipeline(config, 7).components}
  range_config = json.loads(
      pinned['ImportExampleGen'].exec_properties['range_config'])
  assert range_config == {'static_range': {'start_span_number': 7,
                                           'end_span_number': 7}}


def test_each_phases_baseline_resolver_reads_its_own_models_only(tmp_path):
  """Phase two's Trainer and Evaluator publish a blessed model newer than
  phase one's: phase one's baseline resolver still resolves phase one's,
  and phase two's its own, through TFX's own input resolution on the
  compiled pipeline."""
  from tfx.dsl.compiler import compiler  # pylint: disable=g-import-not-at-top
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.portable import execution_publish_utils  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.portable import inputs_utils  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.portable import runtime_parameter_utils  # pylint: disable=g-import-not-at-top
  from tfx.dsl.compiler import constants  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.portable.mlmd import context_lib  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from components import contracts  # pylint: disable=g-import-not-at-top

  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  built = run.build_pipeline(config)
  ir = compiler.Compiler().compile(built)
  runtime_parameter_utils.substitute_runtime_parameter(
      ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: 'run-1'})
  compiled = {node.pipeline_node.node_info.id: node.pipeline_node
              for node in ir.nodes}
  connection = metadata.sqlite_metadata_connection_config(
      str(tmp_path / 'metadata.sqlite'))
  with metadata.Metadata(connection) as handle:

    def publish(node_id, key, artifact):
      node = compiled[node_id]
      contexts = context_lib.prepare_contexts(handle, node.contexts)
      execution = execution_publish_utils.register_execution(
          handle, node.node_info.type, contexts)
      artifact.uri = str(tmp_path / node_id / str(execution.id))
      published, _ = execution_publish_utils.publish_succeeded_execution(
          handle, execution.id, contexts, {key: [artifact]})
      return published[key][0]

    # A window with families, so phase two's Cond holds.
    window = standard_artifacts.Examples()
    window.set_string_custom_property('families', '["bass", "piano"]')
    publish('SpanWindow', 'examples', window)
    models = {}
    for trainer, evaluator in ((contracts.PHASE_ONE_TRAINER,
                                contracts.PHASE_ONE_EVALUATOR),
                               ('PhaseTwoTrainer', 'PhaseTwoEvaluator')):
      models[trainer] = publish(trainer, 'model', standard_artifacts.Model())
      blessing = standard_artifacts.ModelBlessing()
      blessing.set_int_custom_property('blessed', 1)
      blessing.set_int_custom_property('current_model_id',
                                       models[trainer].id)
      publish(evaluator, 'blessing', blessing)
    assert models['PhaseTwoTrainer'].id > models['Trainer'].id
    resolved = {
        node: inputs_utils.resolve_input_artifacts(
            pipeline_node=compiled[node], metadata_handle=handle)
        for node in (contracts.LATEST_BLESSED_MODEL_RESOLVER,
                     contracts.LATEST_BLESSED_PHASE_TWO_RESOLVER)}
  # Each phase's baseline is its own latest blessed model.
  assert [[a.id for a in inputs['model']] for inputs in resolved[
      contracts.LATEST_BLESSED_MODEL_RESOLVER]] == [[models['Trainer'].id]]
  assert [[a.id for a in inputs['model']] for inputs in resolved[
      contracts.LATEST_BLESSED_PHASE_TWO_RESOLVER]] == [
          [models['PhaseTwoTrainer'].id]]


def test_phase_one_is_gated_on_the_overall_slice_and_sliced_by_family_and_kind():
  import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel
  from components.modules import features  # pylint: disable=import-outside-toplevel
  config = pipeline_def.eval_config(config_lib.PipelineConfig())
  assert [list(spec.feature_keys) for spec in config.slicing_specs] == [
      [], [features.FAMILY_KEY], [features.KIND_KEY]]
  gated = {}
  for metric in config.metrics_specs[0].metrics:
    # A threshold on every slice would hold a model back for a family or a
    # kind (a slice of one class has no AUC): only the overall one gates.
    assert not metric.HasField('threshold'), metric.class_name
    for each in metric.per_slice_thresholds:
      assert list(each.slicing_specs) == [tfma.SlicingSpec()]
      gated[metric.class_name] = each.threshold
  assert set(gated) == {'AUC', 'BinaryAccuracy'}
  assert gated['AUC'].value_threshold.lower_bound.value == 0.9
