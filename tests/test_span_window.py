"""Tests of the SpanWindow component: the spans it chooses, the artifact it
writes, and why the window is not a resolver of ML Metadata."""

import json
import os

import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from conftest import write_image
from components.common import span_layout
from components.modules import features
from components.span_window import component
from components.span_window import executor
from pipeline.data import ingest

INPUT_CONFIG = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(
    name='all', pattern=span_layout.SPAN_PATTERN)])
OUTPUT_CONFIG = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
    splits=[example_gen_pb2.SplitConfig.Split(name='train', hash_buckets=3),
            example_gen_pb2.SplitConfig.Split(name='eval', hash_buckets=1)],
    partition_feature_name=features.FILENAME_KEY))
CLASSES = ('quiet', 'loud')


def _source(root, name, per_class, seed):
  for label, class_name in enumerate(CLASSES):
    for i in range(per_class):
      write_image(os.path.join(root, name, class_name, f'{name}-{i}.png'),
                  size=(24, 24), seed=seed * 100 + label * 10 + i)
  return os.path.join(root, name)


@pytest.fixture(name='data_root')
def _data_root(tmp_path):
  """Spans 1-3 from sources a (4 per class), b (5) and c (6)."""
  root = str(tmp_path / 'data')
  for seed, (name, per_class) in enumerate((('a', 4), ('b', 5), ('c', 6))):
    ingest.ingest(_source(str(tmp_path), name, per_class, seed), root,
                  CLASSES, 32, progress=False)
  return root


def _props(data_root, num_spans):
  return {'input_base': data_root,
          'input_config': proto_utils.proto_to_json(INPUT_CONFIG),
          'output_config': proto_utils.proto_to_json(OUTPUT_CONFIG),
          'output_data_format': example_gen_pb2.FORMAT_TF_EXAMPLE,
          executor.NUM_SPANS_KEY: num_spans}


def _filenames(split_uri):
  files = tf.io.gfile.glob(os.path.join(split_uri, '*'))
  return sorted(
      tf.train.Example.FromString(record.numpy()).features.feature[
          features.FILENAME_KEY].bytes_list.value[0].decode()
      for record in tf.data.TFRecordDataset(files, compression_type='GZIP'))


def _run_window(tmp_path, data_root, newest, num_spans):
  newest_span = standard_artifacts.Examples()
  newest_span.set_int_custom_property('span', newest)  # as ExampleGen does
  output = standard_artifacts.Examples()
  output.uri = str(tmp_path / 'window' / str(newest))
  executor.Executor().Do({executor.NEWEST_SPAN_KEY: [newest_span]},
                         {executor.EXAMPLES_KEY: [output]},
                         _props(data_root, num_spans))
  return output


def test_the_window_holds_the_latest_spans_and_records_them(tmp_path,
                                                            data_root):
  output = _run_window(tmp_path, data_root, newest=3, num_spans=2)
  assert span_layout.artifact_span(output) == 3
  assert output.get_string_custom_property('window_spans') == '2,3'
  sources = json.loads(output.get_string_custom_property('span_sources'))
  assert sorted(sources) == ['2', '3']
  assert sources['2']['source'] == str(tmp_path / 'b')
  assert sources['3']['counts'] == {'quiet': 6, 'loud': 6}
  train = _filenames(os.path.join(output.uri, 'Split-train'))
  evaluation = _filenames(os.path.join(output.uri, 'Split-eval'))
  assert len(train) + len(evaluation) == 10 + 12
  assert train and evaluation and not set(train) & set(evaluation)
  assert {name.split('/')[-1].split('-')[0]
          for name in train + evaluation} == {'b', 'c'}


def test_a_span_lands_in_the_split_import_example_gen_gives_it(tmp_path,
                                                               data_root):
  window = _run_window(tmp_path, data_root, newest=3, num_spans=3)
  alone = standard_artifacts.Examples()
  alone.uri = str(tmp_path / 'alone')
  import_executor.Executor().Do({}, {'examples': [alone]}, {
      **_props(data_root, 1),
      'input_config': proto_utils.proto_to_json(example_gen_pb2.Input(
          splits=[example_gen_pb2.Input.Split(
              name='all', pattern='span-3/*.tfrecord.gz')]))})
  for split in ('train', 'eval'):
    span3 = [name for name in _filenames(
        os.path.join(window.uri, f'Split-{split}'))
            if name.split('/')[-1].startswith('c-')]
    assert span3 == _filenames(os.path.join(alone.uri, f'Split-{split}'))


def test_a_window_never_reaches_past_its_newest_span(tmp_path, data_root):
  output = _run_window(tmp_path, data_root, newest=2, num_spans=3)
  assert output.get_string_custom_property('window_spans') == '1,2'


def test_a_source_ingested_again_counts_once(tmp_path, data_root):
  ingest.ingest(str(tmp_path / 'a'), data_root, CLASSES, 32, force=True,
                progress=False)
  chosen = executor.choose_window(data_root, span_layout.SPAN_PATTERN, 4, 4)
  assert [entry.span for entry in chosen] == [2, 3, 4]


def _family_span(tmp_path, data_root, name, families):
  root = tmp_path / name
  for index, family in enumerate(families):
    write_image(str(root / 'loud' / family / f'{name}-{index}.png'),
                size=(24, 24), seed=50 + index)
  write_image(str(root / 'quiet' / f'{name}-q.png'), size=(24, 24), seed=49)
  return ingest.ingest(str(root), data_root, CLASSES, 32,
                       progress=False).span


def test_the_window_records_its_families(tmp_path, data_root):
  output = _run_window(tmp_path, data_root, newest=3, num_spans=3)
  assert json.loads(output.get_string_custom_property('families')) == []
  _family_span(tmp_path, data_root, 'd', ['strings', 'brass'])
  _family_span(tmp_path, data_root, 'e', ['brass', 'strings', 'brass'])
  output = _run_window(tmp_path, data_root, newest=5, num_spans=2)
  assert json.loads(output.get_string_custom_property('families')) == [
      'brass', 'strings']


def test_a_window_of_spans_with_other_families_is_refused_by_name(
    tmp_path, data_root):
  _family_span(tmp_path, data_root, 'd', ['strings', 'brass'])
  _family_span(tmp_path, data_root, 'e', ['strings', 'organ'])
  with pytest.raises(executor.SpanWindowError,
                     match='span 4 and span 5 differ .only span 4 has brass; '
                     'only span 5 has organ'):
    _run_window(tmp_path, data_root, newest=5, num_spans=2)
  # A span of no families (flat class folders) against one with families.
  with pytest.raises(executor.SpanWindowError,
                     match='span 3 and span 4 differ .only span 4 has brass, '
                     'strings'):
    _run_window(tmp_path, data_root, newest=4, num_spans=2)
  # The window of the newest span alone is whole.
  output = _run_window(tmp_path, data_root, newest=5, num_spans=1)
  assert json.loads(output.get_string_custom_property('families')) == [
      'organ', 'strings']


def test_a_missing_newest_span_is_named(tmp_path, data_root):
  with pytest.raises(executor.SpanWindowError, match='span 7 is not'):
    _run_window(tmp_path, data_root, newest=7, num_spans=3)


def test_a_span_without_examples_is_named(data_root):
  for name in os.listdir(os.path.join(data_root, 'span-2')):
    if name.endswith('.tfrecord.gz'):
      os.remove(os.path.join(data_root, 'span-2', name))
  with pytest.raises(executor.SpanWindowError, match='span-2 holds no file'):
    executor.choose_window(data_root, span_layout.SPAN_PATTERN, 3, 3)


def test_a_pattern_without_a_span_is_refused():
  channel = tfx.dsl.Channel(type=standard_artifacts.Examples)
  with pytest.raises(ValueError, match='{SPAN}'):
    component.SpanWindow(
        examples=channel, input_base='/data', num_spans=3,
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name='all', pattern='*.gz')]),
        output_config=OUTPUT_CONFIG)


def test_kubeflow_v2_cannot_resolve_the_latest_spans_from_metadata(tmp_path):
  """Why the window reads the data root: the Vertex AI / Kubeflow Pipelines
  v2 compiler of TFX 1.16 refuses a resolver of more than one artifact."""
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner  # pylint: disable=g-import-not-at-top
  example_gen = tfx.components.ImportExampleGen(input_base='/data')
  latest = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
      config={'desired_num_of_artifacts': 3},
      examples=tfx.dsl.Channel(
          type=standard_artifacts.Examples,
          producer_component_id=example_gen.id,
          output_key='examples')).with_id('latest_spans')
  statistics = tfx.components.StatisticsGen(
      examples=latest.outputs['examples'])
  pipeline = tfx.dsl.Pipeline(
      pipeline_name='window', pipeline_root=str(tmp_path),
      components=[example_gen, latest, statistics])
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(),
      output_dir=str(tmp_path), output_filename='pipeline.json')
  with pytest.raises(ValueError, match='desired_num_of_artifacts=1'):
    runner.run(pipeline)
