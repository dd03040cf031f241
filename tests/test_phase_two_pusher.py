"""PhaseTwoServingCheck's and PhaseTwoPusher's executors over artifacts
made by hand, as TFX's own tests do: the Evaluator's blessing decides, the
serving model is proved (in process, and in KServe's model server) into an
InfraBlessing, and what was proved lands where a model server loads it."""

import dataclasses
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tfx.types import standard_artifacts

from components.cloud import push as cloud_push
from components.modules import features
from components.modules import phase_two
from components.modules import trainer
from components.phase_two_pusher import executor
from components.serving_check import component as check_component
from components.serving_check import executor as check_executor

SIZE = 32
CLASSES = ['not_instrument', 'bass', 'piano']


@pytest.fixture(name='testdata', scope='module')
def _testdata(tmp_path_factory):
  root = tmp_path_factory.mktemp('phase_two_pusher')
  tf.keras.utils.set_random_seed(0)
  model = trainer.build_model(SIZE, 3, width=0.25, classes=len(CLASSES))
  model_uri = root / 'PhaseTwoTrainer' / 'model' / '1'
  phase_two.export_model(model, str(model_uri / 'Format-Serving'), CLASSES,
                         SIZE, 3)
  window_uri = root / 'SpanWindow' / 'examples' / '2'
  rng = np.random.default_rng(0)
  os.makedirs(window_uri / 'Split-eval')
  with tf.io.TFRecordWriter(str(window_uri / 'Split-eval' / 'data.gz'),
                            'GZIP') as writer:
    for _ in range(6):
      buffer = io.BytesIO()
      Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
          buffer, format='PNG')
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[buffer.getvalue()]))})).SerializeToString())
  return {'root': root, 'model_uri': str(model_uri),
          'window_uri': str(window_uri)}


def _artifacts(testdata, blessed):
  model = standard_artifacts.Model()
  model.uri = testdata['model_uri']
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(testdata['root'] / 'blessing' / str(int(blessed)))
  os.makedirs(blessing.uri, exist_ok=True)
  open(os.path.join(blessing.uri, 'BLESSED' if blessed else 'NOT_BLESSED'),
       'w').close()
  blessing.set_int_custom_property('blessed', int(blessed))
  window = standard_artifacts.Examples()
  window.uri = testdata['window_uri']
  window.split_names = '["eval"]'
  window.set_string_custom_property('families', json.dumps(CLASSES[1:]))
  return {'model': [model], 'model_blessing': [blessing],
          'span_examples': [window]}


def _check(testdata, tmp_path, blessed=True, server='in-process'):
  """PhaseTwoServingCheck's executor: the InfraBlessing it writes."""
  inputs = _artifacts(testdata, blessed)
  infra = standard_artifacts.InfraBlessing()
  infra.uri = str(tmp_path / 'infra_blessing')
  os.makedirs(infra.uri)
  check_executor.Executor().Do(
      inputs, {'blessing': [infra]},
      {'model_name': 'instruments', 'image_size': SIZE, 'channels': 3,
       'check_requests': 64, 'server': server, 'ready_seconds': 120.0})
  return inputs, infra


def _push(inputs, infra, tmp_path, destination=None):
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pushed')
  os.makedirs(pushed.uri)
  executor.Executor().Do(
      dict(inputs, infra_blessing=[infra]), {'pushed_model': [pushed]},
      {'serving_destination': destination or str(tmp_path / 'served'),
       'model_name': 'instruments'})
  return pushed


def test_a_model_its_evaluator_did_not_bless_is_not_checked_or_pushed(
    testdata, tmp_path):
  inputs, infra = _check(testdata, tmp_path, blessed=False)
  assert infra.get_int_custom_property('blessed') == 0
  assert os.path.exists(os.path.join(infra.uri, 'INFRA_NOT_BLESSED'))
  assert 'not checked' in infra.get_string_custom_property('reason')
  pushed = _push(inputs, infra, tmp_path)
  assert pushed.get_int_custom_property('pushed') == 0
  assert 'not blessed' in pushed.get_string_custom_property('reason')
  assert not (tmp_path / 'served').exists()


def test_a_blessed_model_is_proved_then_what_was_proved_is_pushed(
    testdata, tmp_path):
  inputs, infra = _check(testdata, tmp_path)
  assert infra.get_int_custom_property('blessed') == 1
  assert os.path.exists(os.path.join(infra.uri, 'INFRA_BLESSED'))
  assert infra.get_string_custom_property('server') == 'in-process'
  assert infra.get_int_custom_property('check_requests') == 6
  assert infra.get_float_custom_property('check_max_score_difference') < 1e-4
  kept = os.path.join(infra.uri, 'serving')
  assert os.path.isfile(os.path.join(kept, 'saved_model.pb'))
  pushed = _push(inputs, infra, tmp_path)
  assert pushed.get_int_custom_property('pushed') == 1
  version_dir = str(tmp_path / 'served' / 'instruments' / '1')
  assert pushed.get_string_custom_property('pushed_destination') == (
      version_dir)
  assert pushed.get_int_custom_property('check_requests') == 6
  manifest = cloud_push.read_manifest(version_dir)
  assert manifest.classes == CLASSES and manifest.families == CLASSES[1:]
  assert manifest.request == 'image_bytes' and manifest.front_end is None
  assert manifest.figures['check_requests'] == 6
  assert manifest.source['infra_blessing'] == infra.uri
  with open(os.path.join(kept, 'saved_model.pb'), 'rb') as f, open(
      os.path.join(version_dir, 'saved_model.pb'), 'rb') as g:
    assert f.read() == g.read()
  # The same model again (a rerun that changed phase one only): the
  # newest version already holds it, and nothing new is pushed.
  again = _push(inputs, infra, tmp_path / 'again',
                str(tmp_path / 'served'))
  assert again.get_int_custom_property('pushed') == 1
  assert again.get_string_custom_property('pushed_version') == '1'
  assert cloud_push.versions(str(tmp_path / 'served' / 'instruments')) == [1]


@pytest.mark.parametrize('python, said', [
    ('/nonexistent/bin/python', 'no KServe environment at '
     '/nonexistent/bin/python'),
    ('/bin/false', 'the model server exited (1) before it was ready'),
])
def test_a_server_that_cannot_start_blesses_nothing_and_says_why(
    testdata, tmp_path, monkeypatch, python, said):
  monkeypatch.setenv('PIPELINE_KSERVE_PYTHON', python)
  inputs, infra = _check(testdata, tmp_path, server='kserve')
  assert infra.get_int_custom_property('blessed') == 0
  assert said in infra.get_string_custom_property('reason')
  pushed = _push(inputs, infra, tmp_path)
  assert pushed.get_int_custom_property('pushed') == 0
  assert said in pushed.get_string_custom_property('reason')


@pytest.mark.kserve
def test_kserve_answers_as_the_serving_model_before_the_push(testdata,
                                                             tmp_path):
  _, infra = _check(testdata, tmp_path, server='kserve')
  reason = (infra.get_string_custom_property('reason')
            if infra.has_custom_property('reason') else None)
  assert infra.get_int_custom_property('blessed') == 1, reason
  assert infra.get_string_custom_property('server') == 'kserve'
  assert infra.get_int_custom_property('server_requests') == 6
  assert infra.get_float_custom_property('server_max_score_difference') < 1e-4
  assert infra.get_float_custom_property('server_ready_seconds') > 0
  assert os.path.getsize(os.path.join(infra.uri, 'server.log')) > 0


def test_the_components_refuse_bad_settings():
  from tfx import types  # pylint: disable=g-import-not-at-top
  channels = dict(
      model=types.Channel(type=standard_artifacts.Model),
      model_blessing=types.Channel(type=standard_artifacts.ModelBlessing),
      span_examples=types.Channel(type=standard_artifacts.Examples),
      model_name='m', image_size=SIZE, channels=3)
  with pytest.raises(ValueError, match='check_requests must be at least 1'):
    check_component.PhaseTwoServingCheck(check_requests=0, **channels)
  with pytest.raises(ValueError, match='server must be one of kserve, '
                     'in-process'):
    check_component.PhaseTwoServingCheck(server='docker', **channels)


class _FakeVertex:
  """Records what the pusher asks of `google.cloud.aiplatform`."""

  def __init__(self, refuse=None, endpoints=()):
    self.calls, self.refuse, self.endpoints = [], refuse, list(endpoints)
    vertex = self

    class Endpoint:
      resource_name = 'projects/p/locations/r/endpoints/7'

      @staticmethod
      def list(filter):  # pylint: disable=redefined-builtin
        vertex.calls.append(('list', filter))
        return vertex.endpoints

      @staticmethod
      def create(display_name):
        vertex.calls.append(('create', display_name))
        return Endpoint()

      def deploy(self, **kwargs):
        vertex.calls.append(('deploy', kwargs))
        if vertex.refuse:
          raise RuntimeError(vertex.refuse)

    class Model:
      resource_name = 'projects/p/locations/r/models/9'

      @staticmethod
      def upload(**kwargs):
        vertex.calls.append(('upload', kwargs))
        return Model()

    self.Endpoint, self.Model = Endpoint, Model

  def init(self, **kwargs):
    self.calls.append(('init', kwargs))


def _push_to_vertex(testdata, tmp_path, fake):
  from components.cloud import vertex_endpoint  # pylint: disable=g-import-not-at-top
  inputs, infra = _check(testdata, tmp_path)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pushed')
  os.makedirs(pushed.uri)
  target = vertex_endpoint.Target(project='p', region='europe-west4',
                                  endpoint='instruments-endpoint',
                                  image='europe-docker.pkg.dev/p/r/img:1')
  pusher = executor.Executor()
  pusher.aiplatform = fake
  pusher.Do(dict(inputs, infra_blessing=[infra]), {'pushed_model': [pushed]},
            {'serving_destination': str(tmp_path / 'served'),
             'model_name': 'instruments',
             'vertex_target': json.dumps(dataclasses.asdict(target))})
  return pushed


def test_a_pushed_version_is_deployed_to_its_vertex_endpoint_with_routes(
    testdata, tmp_path):
  fake = _FakeVertex()
  pushed = _push_to_vertex(testdata, tmp_path, fake)
  version_dir = str(tmp_path / 'served' / 'instruments' / '1')
  assert pushed.get_int_custom_property('pushed') == 1
  assert pushed.get_int_custom_property('vertex_deployed') == 1
  assert pushed.get_string_custom_property('vertex_endpoint') == (
      'projects/p/locations/r/endpoints/7')
  calls = dict(fake.calls)
  assert calls['init'] == {'project': 'p', 'location': 'europe-west4'}
  assert calls['list'] == 'display_name="instruments-endpoint"'
  assert calls['create'] == 'instruments-endpoint'  # none was there
  upload = calls['upload']
  assert upload['artifact_uri'] == version_dir
  assert upload['serving_container_image_uri'] == (
      'europe-docker.pkg.dev/p/r/img:1')
  # The routes `serve` answers, on the version Vertex AI copied.
  assert upload['serving_container_predict_route'] == (
      '/v1/models/instruments:predict')
  assert upload['serving_container_health_route'] == '/v1/models/instruments'
  assert upload['serving_container_command'] == ['python', '-m', 'pipeline',
                                                 'serve']
  assert upload['serving_container_args'][:2] == ['--model',
                                                   '$(AIP_STORAGE_URI)']
  assert '0.0.0.0' in upload['serving_container_args']
  assert calls['deploy']['traffic_percentage'] == 100


def test_a_refused_deployment_leaves_the_version_pushed_and_says_why(
    testdata, tmp_path):
  fake = _FakeVertex(refuse='403 Permission denied on endpoint',
                     endpoints=[None])
  fake.endpoints = [fake.Endpoint()]
  pushed = _push_to_vertex(testdata, tmp_path, fake)
  assert pushed.get_int_custom_property('pushed') == 1
  assert pushed.get_int_custom_property('vertex_deployed') == 0
  assert 'create' not in dict(fake.calls)  # the endpoint was there
  assert pushed.get_string_custom_property('vertex_reason') == (
      "Vertex AI refused the deployment of instruments version 1 to the "
      "endpoint 'instruments-endpoint': 403 Permission denied on endpoint")


def test_a_pair_the_cascade_held_back_is_not_pushed(testdata, tmp_path):
  from components.common import pair_blessing  # pylint: disable=g-import-not-at-top
  inputs, infra = _check(testdata, tmp_path)
  held = standard_artifacts.ModelBlessing()
  held.uri = str(tmp_path / 'cascade')
  os.makedirs(held.uri)
  pair_blessing.write(held, 'it sends 0.700 of windows to the cloud')
  pushed = _push(dict(inputs, cascade=[held]), infra, tmp_path)
  assert pushed.get_int_custom_property('pushed') == 0
  assert pushed.get_string_custom_property('reason') == (
      'the cascade held the pair back: it sends 0.700 of windows to the '
      'cloud')
  assert not (tmp_path / 'served').exists()
