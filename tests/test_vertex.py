"""Tests of `python -m pipeline compile`: the pipeline for Vertex AI /
Kubeflow Pipelines v2."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from pipeline.cli import commands as cli
from pipeline.settings import config as config_lib
from pipeline import pipeline_def
from pipeline.runners import run
from pipeline.runners import vertex

IMAGE = 'europe-docker.pkg.dev/p/r/odc:1'
BUCKET_ROOTS = ['--pipeline-root', 'gs://b/tfx', '--data-root', 'gs://b/data',
                '--push-destination', 'gs://b/pushed',
                '--serving-destination', 'gs://b/served']


def _network_off() -> list:
  """A command prefix that runs a program with no network (a new, empty
  network namespace), where this machine allows it."""
  probe = shutil.which('unshare') and subprocess.run(
      ['unshare', '-rn', 'true'], capture_output=True, check=False)
  return ['unshare', '-rn'] if probe and probe.returncode == 0 else []


@pytest.fixture(scope='module')
def compiled(tmp_path_factory):
  """The issue's compile command, run as a user would, offline where
  possible, from a folder outside the repository."""
  folder = tmp_path_factory.mktemp('compile')
  env = dict(os.environ, PYTHONPATH=config_lib.REPO_ROOT)
  done = subprocess.run(
      _network_off() + [sys.executable, '-m', 'pipeline', 'compile',
                        '--target', 'vertex', '--image', IMAGE,
                        '--workspace', str(folder / 'ws')] + BUCKET_ROOTS +
      ['--out', 'pipeline.json'],
      cwd=folder, env=env, capture_output=True, text=True, timeout=300,
      check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  text = (folder / 'pipeline.json').read_text()
  return {'stdout': done.stdout, 'text': text, 'job': json.loads(text),
          'folder': str(folder)}


def _executors(job):
  return job['pipelineSpec']['deploymentSpec']['executors']


def _parameter(job, task, name):
  value = job['pipelineSpec']['root']['dag']['tasks'][task]['inputs'][
      'parameters'][name]['runtimeValue']['constantValue']
  return next(iter(value.values()))


def test_compile_writes_every_component_as_a_task_in_the_image(compiled):
  job = compiled['job']
  pipeline = run.build_pipeline(config_lib.PipelineConfig(
      pipeline_name='x', beam='local'))
  tasks = set(vertex.tasks(job))
  components = {node.id for node in pipeline.components}
  # TFX compiles each latest-blessed-model resolver into two tasks.
  resolvers = {'latest_blessed_model_resolver',
               'latest_blessed_phase_two_resolver'}
  assert tasks - components == {
      f'{resolver}-{part}' for resolver in resolvers
      for part in ('model-resolver', 'model-blessing-resolver')}
  assert components - tasks == resolvers
  containers = [e['container'] for e in _executors(job).values()
                if 'container' in e]
  assert len(containers) == len(components) - 3
  assert {c['image'] for c in containers} == {IMAGE}
  assert job['pipelineSpec']['pipelineInfo']['name'] == 'on-device-classifier'
  assert 'on-device-classifier' in compiled['stdout']
  assert job['runtimeConfig']['gcsOutputDirectory'] == 'gs://b/tfx'


def test_no_path_of_the_compiling_machine_is_in_the_job(compiled):
  text = compiled['text']
  for path in {config_lib.REPO_ROOT, compiled['folder'], sys.prefix,
               os.path.expanduser('~'), '/tmp/'}:
    assert path not in text
  assert '_wheels' not in text


def test_transform_and_trainer_run_the_installed_functions(compiled):
  job = compiled['job']
  assert _parameter(job, 'Transform', 'preprocessing_fn') == (
      pipeline_def.TRANSFORM_FN)
  assert _parameter(job, 'Trainer', 'run_fn') == pipeline_def.TRAINER_FN
  assert _parameter(job, 'ImportSchemaGen', 'schema_file') == (
      vertex.IMAGE_SCHEMA_DIR + '/schema.pbtxt')
  assert _parameter(job, 'SpanWindow', 'input_base') == 'gs://b/data'
  assert _parameter(job, 'TFLitePusher', 'push_destination') == (
      'gs://b/pushed')


def test_the_drift_baseline_is_found_there_by_a_type_nothing_else_makes(
    compiled):
  queries = {name: executor['resolver']['outputArtifactQueries']
             for name, executor in _executors(compiled['job']).items()
             if 'resolver' in executor}
  baseline = queries['latest_data_baseline_resolver_executor']['baseline']
  assert baseline['filter'].startswith('schema_title="tfx.Statistics"')
  pipeline = run.build_pipeline(config_lib.PipelineConfig(pipeline_name='x'))
  made = [node.id for node in pipeline.components
          for channel in node.outputs.values()
          if channel.type_name == 'Statistics'
          and not node.id.endswith('_resolver')]
  assert made == ['AcceptSpan']


def test_the_dataflow_profile_gives_every_beam_task_the_image(tmp_path):
  config = config_lib.PipelineConfig(
      workspace=str(tmp_path), image=IMAGE, beam='dataflow',
      gcp_project='p', region='europe-west4',
      temp_location='gs://b/tmp', pipeline_root='gs://b/tfx',
      data_root='gs://b/data', push_destination='gs://b/pushed',
      serving_destination='gs://b/served')
  job = vertex.compile_pipeline(config)
  args = [a for e in _executors(job).values() if 'container' in e
          for a in e['container'].get('args', [])]
  assert f'--sdk_container_image={IMAGE}' in args
  assert '--runner=DataflowRunner' in args
  assert '--temp_location=gs://b/tmp' in args


def test_a_tuned_pipeline_compiles_its_search_before_the_trainer(tmp_path):
  config = config_lib.PipelineConfig(
      workspace=str(tmp_path), image=IMAGE, tune=True, tune_trials=4,
      max_tflite_bytes=250_000, pipeline_root='gs://b/tfx',
      data_root='gs://b/data', push_destination='gs://b/pushed',
      serving_destination='gs://b/served')
  job = vertex.compile_pipeline(config)
  assert _parameter(job, 'ModelSearch', 'tuner_fn') == pipeline_def.SEARCH_FN
  settings = json.loads(_parameter(job, 'ModelSearch', 'custom_config'))
  assert settings['max_tflite_bytes'] == 250_000
  assert settings['tune_trials'] == 4
  assert int(_parameter(job, 'TFLiteConverter', 'max_tflite_bytes')) == 250_000
  trainer_inputs = job['pipelineSpec']['root']['dag']['tasks']['Trainer'][
      'inputs']['artifacts']
  assert trainer_inputs['hyperparameters']['taskOutputArtifact'] == {
      'producerTask': 'ModelSearch', 'outputArtifactKey':
      'best_hyperparameters'}


def test_phase_two_is_deployed_to_a_vertex_endpoint_when_one_is_named(
    tmp_path):
  config = config_lib.PipelineConfig(
      workspace=str(tmp_path), image=IMAGE, gcp_project='p',
      region='europe-west4', vertex_endpoint='instruments',
      pipeline_root='gs://b/tfx', data_root='gs://b/data',
      push_destination='gs://b/pushed', serving_destination='gs://b/served')
  job = vertex.compile_pipeline(config)
  target = json.loads(_parameter(job, 'PhaseTwoPusher', 'vertex_target'))
  assert target == {'project': 'p', 'region': 'europe-west4',
                    'endpoint': 'instruments', 'image': IMAGE,
                    'machine_type': 'n1-standard-2'}
  # Without one, nothing is deployed.
  config = dataclasses.replace(config, vertex_endpoint='')
  assert _parameter(vertex.compile_pipeline(config), 'PhaseTwoPusher',
                    'vertex_target') == ''


@pytest.mark.parametrize('flags, message', [
    (['--image', IMAGE, '--vertex-endpoint', 'e'] + BUCKET_ROOTS,
     "vertex_endpoint 'e' needs --gcp-project and --region"),
    (['--image', IMAGE, '--pipeline-root', 'gs://b/r', '--data-root',
      'gs://b/d'], 'push_destination must be a bucket URI'),
    (['--image', IMAGE, '--pipeline-root', 'gs://b/r', '--data-root',
      'gs://b/d', '--push-destination', 'gs://b/p'],
     'serving_destination must be a bucket URI'),
    (BUCKET_ROOTS, 'compile needs --image'),
    (['--image', IMAGE, '--beam', 'portable'] + BUCKET_ROOTS,
     'beam portable starts a worker pool on this machine'),
    (['--image', IMAGE, '--beam', 'dataflow'] + BUCKET_ROOTS,
     'beam dataflow needs gcp_project, region, temp_location'),
    (['--image', IMAGE, '--pipeline-name', '__'] + BUCKET_ROOTS,
     "pipeline_name '__' has no letter or digit"),
])
def test_compile_refuses_settings_a_container_cannot_use(
    tmp_path, capsys, flags, message):
  code = cli.main(['compile', '--workspace', str(tmp_path), '--out',
                   str(tmp_path / 'p.json')] + flags)
  assert code == 2
  assert message in capsys.readouterr().err
  assert not (tmp_path / 'p.json').exists()


def test_compile_refuses_a_schema_folder_the_image_does_not_hold(tmp_path):
  schema_dir = tmp_path / 'schema'
  schema_dir.mkdir()
  config = config_lib.PipelineConfig(
      workspace=str(tmp_path), image=IMAGE, schema_dir=str(schema_dir),
      pipeline_root='gs://b/tfx', data_root='gs://b/data',
      push_destination='gs://b/pushed',
      serving_destination='gs://b/served')
  with pytest.raises(vertex.CompileError, match='rebuild the image'):
    vertex.compile_pipeline(config)
