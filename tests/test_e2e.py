"""End to end: the whole pipeline on a small data set, run three times.

The first run executes every component and pushes TFLite version 1. The
second finds the model blessed by the first as its baseline, so, as in TFX's
own penguin e2e test, only the Evaluator and the pusher run again (the
pusher sees the same model and pushes nothing new); the third is served
entirely from the cache, adding no artifact to ML Metadata.
"""

import os

import pytest

from components.tflite_pusher import push
from pipeline import __main__ as cli
from pipeline import config as config_lib
from pipeline import ingest
from pipeline import inspection
from pipeline import mlmd
from pipeline import run

pytestmark = pytest.mark.e2e

COMPONENTS = {'ImportExampleGen', 'ImportSchemaGen', 'StatisticsGen',
              'ExampleValidator', 'DataGate', 'Transform', 'Trainer',
              'Evaluator', 'TFLitePusher'}


@pytest.fixture(scope='module')
def workspace(tmp_path_factory, small_spectrograms):
  ws = str(tmp_path_factory.mktemp('e2e') / 'workspace')
  assert cli.main(['ingest', '--workspace', ws, small_spectrograms]) == 0
  assert cli.main(['ingest', '--workspace', ws, small_spectrograms]) == 0
  return ws


def _config(workspace):
  return config_lib.PipelineConfig(
      workspace=workspace, image_size=64, train_steps=12, batch_size=8,
      min_auc=0.0, min_accuracy=0.0, max_auc_drop=1.0)


def _states(summary):
  return {c['node']: c['state'] for c in summary['components']
          if c['node'] in COMPONENTS}


def test_ingesting_the_same_folder_twice_adds_one_span(workspace):
  assert ingest.list_spans(os.path.join(workspace, 'data')) == [1]


def test_pipeline_runs_then_is_served_from_the_cache(workspace):
  config = _config(workspace)
  first = run.run_pipeline(config)
  assert _states(first) == {node: 'ran' for node in COMPONENTS}
  assert first['blessed'] is True
  assert first['metrics']['example_count'] > 0
  assert 0.0 <= first['metrics']['auc'] <= 1.0
  assert os.path.isfile(os.path.join(first['model_path'], 'saved_model.pb'))
  assert 0 < first['transformed']['disk_bytes_per_example'] < 64 * 64 * 3
  assert first['pushed']['pushed'] == 1
  assert first['pushed']['pushed_version'] == '1'
  assert push.latest_version(config.push_destination) == 1
  manifest = push.read_manifest(os.path.join(config.push_destination, '1'))
  assert manifest['quantization'] == 'dynamic'
  assert manifest['input']['shape'] == [1, 64, 64, 3]

  store = mlmd.open_store(config.metadata_path, read_only=True)
  models = store.get_artifacts_by_type('Model')
  assert len(models) == 1

  second = run.run_pipeline(config)
  states = _states(second)
  assert states.pop('Evaluator') == 'ran'  # its baseline is now blessed
  assert states.pop('TFLitePusher') == 'ran'  # a new blessing as input
  assert set(states.values()) == {'cached'}
  assert second['model_path'] == first['model_path']
  assert second['pushed']['pushed_version'] == '1'
  assert push.versions(config.push_destination) == [1]

  artifacts_before = len(store.get_artifacts())
  third = run.run_pipeline(config)
  assert set(_states(third).values()) == {'cached'}
  assert len(store.get_artifacts()) == artifacts_before
  assert len(store.get_artifacts_by_type('Model')) == 1
  assert len(mlmd.pipeline_runs(store, config.pipeline_name)) == 3
  assert 'Trainer' in run.format_summary(third)

  # `inspect` answers from ML Metadata agree with the runs.
  rows = inspection.runs(store, config.pipeline_name)
  assert [r['run_id'] for r in rows] == [third['run_id'], second['run_id'],
                                         first['run_id']]
  assert set(rows[2]['ran']) >= COMPONENTS and not rows[2]['cached']
  assert set(rows[0]['cached']) >= COMPONENTS and not rows[0]['failed']
  assert set(rows[1]['ran']) >= {'Evaluator', 'TFLitePusher'}
  assert rows[2]['pushed_version'] == '1'
  pushed = inspection.artifacts(store, 'PushedModel')
  assert [p['properties']['pushed_version'] for p in pushed] == ['1', '1']
  assert {a['type'] for a in inspection.artifacts(store)} >= {
      'Examples', 'Model', 'ModelBlessing', 'PushedModel', 'Schema'}
  evaluated = inspection.metrics(store, config.pipeline_name, last=5)
  assert [r['run_id'] for r in evaluated] == [third['run_id'],
                                              second['run_id'],
                                              first['run_id']]
  for name in ('auc', 'binary_accuracy', 'example_count'):
    assert evaluated[-1]['metrics'][name] == first['metrics'][name]
  assert evaluated[-1]['tflite']['pushed_version'] == '1'
  assert 'auc' in inspection.format_metrics(evaluated)
