"""The run record over a small ML Metadata store built here, laid out as
TFX's local runner records a run (pipeline, pipeline-run and node contexts,
executions with states, output events)."""

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.settings import config as config_lib
from pipeline.metadata import inspection
from pipeline.metadata import mlmd
from pipeline.settings import metadata_url

PIPELINE = 'demo_pipeline'
Execution = metadata_store_pb2.Execution


class _StoreBuilder:
  """Writes pipelines, runs, executions and artifacts like TFX does."""

  def __init__(self, path):
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
    self.store = metadata_store.MetadataStore(config)
    self._types = {}
    self._nodes = {}
    self.pipeline = self._context('pipeline', PIPELINE)

  def _type(self, kind, name):
    if (kind, name) not in self._types:
      proto = {'context': metadata_store_pb2.ContextType,
               'execution': metadata_store_pb2.ExecutionType,
               'artifact': metadata_store_pb2.ArtifactType}[kind](name=name)
      put = getattr(self.store, f'put_{kind}_type')
      self._types[(kind, name)] = put(proto)
    return self._types[(kind, name)]

  def _context(self, type_name, name, parent=None):
    context = metadata_store_pb2.Context(
        type_id=self._type('context', type_name), name=name)
    [context.id] = self.store.put_contexts([context])
    if parent is not None:
      self.store.put_parent_contexts([metadata_store_pb2.ParentContext(
          child_id=context.id, parent_id=parent.id)])
    return context

  def run(self, run_id, steps):
    """A run: steps are (node, state, {output key: artifact type})."""
    run = self._context(mlmd.PIPELINE_RUN_CONTEXT, run_id, self.pipeline)
    for node, state, outputs in steps:
      node_context = self._node(node)
      execution = Execution(type_id=self._type('execution', node),
                            last_known_state=state)
      pairs = []
      for key, type_name in outputs.items():
        artifact = metadata_store_pb2.Artifact(
            type_id=self._type('artifact', type_name),
            uri=f'/artifacts/{run_id}/{node}/{key}')
        artifact.custom_properties['pushed'].int_value = 1
        artifact.custom_properties['pushed_version'].string_value = run_id[-1]
        event = metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT)
        event.path.steps.add().key = key
        pairs.append((artifact, event))
      self.store.put_execution(execution, pairs, [run, node_context])
    return run

  def _node(self, node):
    if node not in self._nodes:
      self._nodes[node] = self._context(
          mlmd.NODE_CONTEXT, f'{PIPELINE}.{node}', self.pipeline)
    return self._nodes[node]


@pytest.fixture
def store(tmp_path):
  builder = _StoreBuilder(tmp_path / 'metadata.sqlite')
  builder.run('run-1', [
      ('ImportExampleGen', Execution.COMPLETE, {'examples': 'Examples'}),
      ('Trainer', Execution.COMPLETE, {'model': 'Model'}),
      ('TFLitePusher', Execution.COMPLETE, {'pushed_model': 'PushedModel'}),
  ])
  builder.run('run-2', [
      ('ImportExampleGen', Execution.CACHED, {'examples': 'Examples'}),
      ('Trainer', Execution.FAILED, {}),
  ])
  other = builder._context('pipeline', 'another_pipeline')
  builder._context(mlmd.PIPELINE_RUN_CONTEXT, 'run-of-another', other)
  return builder.store


def test_runs_of_the_pipeline_only_newest_first(store):
  records = mlmd.run_records(store, PIPELINE)
  assert [r.run_id for r in records] == ['run-2', 'run-1']
  newest, oldest = records
  assert newest.nodes('cached') == ['ImportExampleGen']
  assert newest.nodes('failed') == ['Trainer']
  assert oldest.nodes('ran') == ['ImportExampleGen', 'Trainer', 'TFLitePusher']
  assert oldest.started_ms <= oldest.ended_ms


def test_outputs_are_found_by_node_and_key(store):
  record = mlmd.find_run(store, PIPELINE, 'run-1')
  assert record.output('Trainer', 'model').uri == '/artifacts/run-1/Trainer/model'
  assert record.output('Trainer', 'nothing') is None
  assert record.output('Evaluator', 'blessing') is None
  assert record.execution('Evaluator') is None
  assert mlmd.pushed_summary(record.output('TFLitePusher', 'pushed_model')
                             ) == {'pushed': 1, 'pushed_version': '1'}


def test_find_run_takes_a_prefix_and_names_what_is_wrong(store):
  assert mlmd.find_run(store, PIPELINE).run_id == 'run-2'
  assert mlmd.find_run(store, PIPELINE, 'run-1').run_id == 'run-1'
  with pytest.raises(mlmd.MetadataError, match="More than one run matches 'run'"):
    mlmd.find_run(store, PIPELINE, 'run')
  with pytest.raises(mlmd.MetadataError, match="No run matches 'x'"):
    mlmd.find_run(store, PIPELINE, 'x')
  with pytest.raises(mlmd.MetadataError, match='No run of nobody'):
    mlmd.find_run(store, 'nobody')


def test_recorded_settings_are_read_back_by_every_reader(store, tmp_path):
  settings = config_lib.PipelineConfig(workspace=str(tmp_path),
                                       train_steps=7).to_dict()
  mlmd.record_settings(store, mlmd.find_run(store, PIPELINE, 'run-1'),
                       settings)
  assert mlmd.find_run(store, PIPELINE, 'run-1').settings == settings
  assert mlmd.find_run(store, PIPELINE, 'run-2').settings is None
  rows = inspection.runs(store, PIPELINE)
  assert [r['settings'] for r in rows] == [None, settings]
  assert rows[1]['pushed_version'] == '1' and rows[0]['pushed_version'] is None
  text = inspection.format_settings(
      inspection.settings(store, PIPELINE, 'run-1'))
  assert 'train_steps = 7' in text
  with pytest.raises(mlmd.MetadataError, match='recorded no settings'):
    inspection.settings(store, PIPELINE, 'run-2')


def test_a_missing_store_is_named(tmp_path):
  with pytest.raises(mlmd.MetadataError, match='No ML Metadata store at'):
    mlmd.open_store(metadata_url.parse(str(tmp_path / 'absent.sqlite')),
                    read_only=True)


def test_a_resolver_that_found_nothing_is_empty_not_failed(tmp_path):
  builder = _StoreBuilder(tmp_path / 'metadata.sqlite')
  builder.run('run-1', [
      ('tfx.dsl.components.common.resolver.Resolver', Execution.FAILED, {}),
      ('Trainer', Execution.FAILED, {}),
  ])
  record = mlmd.find_run(builder.store, PIPELINE)
  assert [e.state for e in record.executions] == ['empty', 'failed']
  assert record.nodes('failed') == ['Trainer']
