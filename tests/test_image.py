"""The container image's recipe, tested without Docker (no base image can
be pulled here): the project installed as the `Dockerfile` installs it,
into a fresh folder, then used from a folder outside the repository as a
Kubeflow / Vertex AI task would use it.

- Every executor class path of the compiled pipeline imports from the
  installed copy.
- The custom components run through TFX's `kubeflow_v2_run_executor`, the
  command of every compiled task, on a hand-made executor input (the
  format of TFX's own `kubeflow_v2_run_executor_test`) over small real
  artifacts, with the compiled task's parameters.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from components.modules import trainer
from components.ondevice import push
from pipeline.settings import config as config_lib
from pipeline import pipeline_def
from pipeline.runners import vertex
import test_data_gate
import test_tflite_pusher

RUN_EXECUTOR = 'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor'
DOCKERFILE = os.path.join(config_lib.REPO_ROOT, 'Dockerfile')
# The artifact names Vertex AI's ML Metadata gives.
_NAME = 'projects/1/locations/europe-west4/metadataStores/default/artifacts/'


def _copies():
  """(source, destination) of each COPY line of the Dockerfile's final
  stage."""
  with open(DOCKERFILE, encoding='utf-8') as recipe:
    text = recipe.read()
  final = text[text.rindex('\nFROM '):]
  return [(m.group(1), m.group(2)) for m in re.finditer(
      r'^COPY (?!--from)(\S+) (\S+)$', final, re.MULTILINE)]


@pytest.fixture(scope='module')
def image(tmp_path_factory):
  """The project as the Dockerfile installs it: its sources copied to a
  folder outside the repository, pip-installed (not editable) into a fresh
  target; the working folder of tasks is another empty folder."""
  root = tmp_path_factory.mktemp('image')
  source = root / 'src'
  source.mkdir()
  for name, destination in _copies():
    if destination.startswith('/tmp/src/'):
      target = source / destination[len('/tmp/src/'):]
      copy = shutil.copytree if os.path.isdir(name) else shutil.copyfile
      copy(os.path.join(config_lib.REPO_ROOT, name), target,
           **({'ignore': shutil.ignore_patterns('__pycache__')}
              if copy is shutil.copytree else {}))
  subprocess.run(
      [sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
       '--no-build-isolation', '--target', str(root / 'site'), str(source)],
      check=True, capture_output=True, cwd=root, timeout=600)
  shutil.rmtree(source)
  work = root / 'work'
  work.mkdir()
  # `python` is the image's Python, with the locked packages: this venv's.
  env = dict(os.environ, PYTHONPATH=str(root / 'site'),
             PATH=os.path.dirname(sys.executable) + os.pathsep +
             os.environ.get('PATH', ''))
  return {'site': str(root / 'site'), 'work': str(work), 'env': env,
          'root': root}


def test_the_image_holds_the_schema_where_the_compiled_pipeline_reads_it():
  copies = dict(_copies())
  assert copies['schema'] == vertex.IMAGE_SCHEMA_DIR
  assert {'pipeline', 'components', 'setup.py'} <= set(copies)


@pytest.fixture(scope='module')
def job(tmp_path_factory):
  config = config_lib.PipelineConfig(
      workspace=str(tmp_path_factory.mktemp('ws')), image='odc:1',
      pipeline_root='gs://b/tfx', data_root='gs://b/data',
      push_destination='gs://b/pushed', serving_destination='gs://b/served',
      tune=True)
  return vertex.compile_pipeline(config)


def test_every_executor_of_the_compiled_pipeline_imports_from_the_image(
    image, job):
  paths = sorted({
      arg for executor in job['pipelineSpec']['deploymentSpec'][
          'executors'].values() if 'container' in executor
      for flag, arg in zip(executor['container']['args'],
                           executor['container']['args'][1:])
      if flag == '--executor_class_path'})
  # With the model search's, phase two's serving check and pusher, the
  # cascade's evaluator, and the TFLite converter beside its pusher.
  assert len(paths) == 16
  code = ('import importlib, json, sys\n'
          'found = {}\n'
          'for path in sys.argv[1:]:\n'
          '  module, _, name = path.rpartition(".")\n'
          '  loaded = importlib.import_module(module)\n'
          '  getattr(loaded, name)\n'
          '  found[path] = loaded.__file__\n'
          'print(json.dumps(found))')
  done = subprocess.run(
      [sys.executable, '-c', code] + paths + [
          pipeline_def.TRANSFORM_FN, pipeline_def.TRAINER_FN,
          pipeline_def.PHASE_TWO_FN, pipeline_def.SEARCH_FN],
      cwd=image['work'], env=image['env'], capture_output=True, text=True,
      timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  found = json.loads(done.stdout.strip().splitlines()[-1])
  ours = {path: file for path, file in found.items()
          if path.startswith(('components.', 'pipeline.'))}
  assert len(ours) == 13
  for path, file in ours.items():
    assert file.startswith(image['site'] + os.sep), (path, file)


def _task_parameters(job, task):
  """The compiled task's constant parameters, as the executor input's
  `parameters`."""
  parameters = job['pipelineSpec']['root']['dag']['tasks'][task]['inputs'].get(
      'parameters', {})
  return {key: value['runtimeValue']['constantValue']
          for key, value in parameters.items()}


def _instance_schema(job, task, direction, key):
  definitions = job['pipelineSpec']['components'][task][
      f'{direction}Definitions']['artifacts']
  return definitions[key]['artifactType']['instanceSchema']


def _runtime_artifact(artifact, schema, number, metadata=None):
  return {'uri': artifact.uri if hasattr(artifact, 'uri') else artifact,
          'name': _NAME + str(number), 'type': {'instanceSchema': schema},
          'metadata': metadata or {}}


def _run_task(image, job, task, inputs, outputs, folder):
  """Runs the compiled task's executor in the image, as a task would;
  returns its executor output."""
  executors = job['pipelineSpec']['deploymentSpec']['executors']
  container = executors[f'{task}_executor']['container']
  args = container['args']
  class_path = args[args.index('--executor_class_path') + 1]
  output_file = os.path.join(folder, 'executor_output.json')
  invocation = {
      'inputs': {
          'artifacts': {
              key: {'artifacts': [_runtime_artifact(
                  value, _instance_schema(job, task, 'input', key), i,
                  metadata)]}
              for i, (key, (value, metadata)) in enumerate(inputs.items())},
          'parameters': _task_parameters(job, task)},
      'outputs': {
          'artifacts': {
              key: {'artifacts': [_runtime_artifact(
                  uri, _instance_schema(job, task, 'output', key), 100 + i)]}
              for i, (key, uri) in enumerate(outputs.items())},
          'outputFile': output_file}}
  done = subprocess.run(
      container['command'] + ['--executor_class_path', class_path,
                              '--json_serialized_invocation_args',
                              json.dumps(invocation)],
      cwd=image['work'], env=image['env'], capture_output=True, text=True,
      timeout=600, check=False)
  assert done.returncode == 0, done.stderr[-4000:]
  with open(output_file, encoding='utf-8') as written:
    return json.load(written)


def _output_metadata(output, key):
  return output['artifacts'][key]['artifacts'][0].get('metadata', {})


def test_the_data_gate_and_accept_span_run_as_tasks_of_the_image(
    image, job, tmp_path):
  first = test_data_gate._statistics_artifact(tmp_path, 'first', seed=1)  # pylint: disable=protected-access
  accepted = str(tmp_path / 'accepted')
  output = _run_task(image, job, 'AcceptSpan', {
      'examples': (str(tmp_path / 'examples1'), {'span': 1.0}),
      'statistics': (first, {'split_names': '["all"]'}),
  }, {'accepted': accepted}, str(tmp_path / 'accept'))
  baseline = _output_metadata(output, 'accepted')
  assert baseline['span'] == 1

  # Span 2 drifted (darkened): the gate stops it, naming the feature.
  dark = test_data_gate._statistics_artifact(tmp_path, 'dark', seed=2,  # pylint: disable=protected-access
                                             gain=0.5)
  anomalies = test_data_gate._anomalies_artifact(tmp_path / 'a', {})  # pylint: disable=protected-access
  schema = test_data_gate._schema_artifact(tmp_path / 's')  # pylint: disable=protected-access
  inputs = {
      'examples': (str(tmp_path / 'examples2'), {'span': 2.0}),
      'statistics': (dark, {'split_names': '["all"]'}),
      'anomalies': (anomalies, {'split_names': '["train", "eval"]'}),
      'schema': (schema, {}),
      'baseline': (accepted, baseline),
  }
  with pytest.raises(AssertionError, match="feature 'pixel_mean': drift "
                     'from span 1'):
    _run_task(image, job, 'DataGate', inputs, {'report': str(
        tmp_path / 'report')}, str(tmp_path / 'gate'))

  # The same span from the same source as the baseline passes.
  same = test_data_gate._statistics_artifact(tmp_path, 'same', seed=3)  # pylint: disable=protected-access
  inputs['statistics'] = (same, {'split_names': '["all"]'})
  output = _run_task(image, job, 'DataGate', inputs, {'report': str(
      tmp_path / 'report2')}, str(tmp_path / 'gate2'))
  drift = json.loads(_output_metadata(output, 'report')['drift'])
  assert drift['baseline_span'] == 1


def test_the_tflite_pusher_runs_as_a_task_of_the_image(image, job, tmp_path):
  # The model the compiled task expects: the default image size.
  size = config_lib.PipelineConfig.image_size
  assert _task_parameters(job, 'TFLiteConverter')['image_size'] == {
      'intValue': str(size)}
  model = trainer.build_model(image_size=size, channels=3, width=0.25)
  model_uri = str(tmp_path / 'model')
  trainer.export_model(model, os.path.join(model_uri, 'Format-Serving'),
                       size, 3)
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 24)
  images = rng.integers(0, 255, (24, size, size, 3)).astype('uint8')
  examples_uri = str(tmp_path / 'examples')
  for split in ('train', 'eval'):
    test_tflite_pusher._write_split(  # pylint: disable=protected-access
        os.path.join(examples_uri, f'Split-{split}'), images, labels)
  blessing = test_tflite_pusher._blessing(tmp_path, True)  # pylint: disable=protected-access
  destination = str(tmp_path / 'pushed')
  assert _task_parameters(job, 'TFLitePusher')['push_destination'] == {
      'stringValue': 'gs://b/pushed'}
  # A local destination for the test; any other parameter as compiled.
  job = json.loads(json.dumps(job))
  tasks = job['pipelineSpec']['root']['dag']['tasks']
  tasks['TFLitePusher']['inputs']['parameters']['push_destination'][
      'runtimeValue']['constantValue'] = {'stringValue': destination}
  tasks['TFLiteConverter']['inputs']['parameters']['max_accuracy_drop'][
      'runtimeValue']['constantValue'] = {'doubleValue': 1.0}
  candidate = str(tmp_path / 'candidate')
  converted = _run_task(image, job, 'TFLiteConverter', {
      'model': (model_uri, {}),
      'model_blessing': (blessing, {'blessed': 1.0}),
      'examples': (examples_uri, {'split_names': '["train", "eval"]'}),
  }, {'candidate': candidate}, str(tmp_path / 'converter'))
  assert _output_metadata(converted, 'candidate')['ready'] == 1
  output = _run_task(image, job, 'TFLitePusher', {
      'candidate': (candidate, _output_metadata(converted, 'candidate')),
  }, {'pushed_model': str(tmp_path / 'pushed_model')},
      str(tmp_path / 'pusher'))
  assert _output_metadata(output, 'pushed_model')['pushed'] == 1
  assert push.latest_version(destination) == 1
  assert tf.io.gfile.exists(os.path.join(destination, '1', 'model.tflite'))
