"""PhaseTwoPusher's executor over artifacts made by hand, as TFX's own
pusher tests do: a blessing decides, the serving model is checked, and a
version lands where a model server loads it."""

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
from components.phase_two_pusher import component
from components.phase_two_pusher import executor

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


def _run(testdata, destination, blessed):
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
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(testdata['root'] / 'pushed' / str(int(blessed)))
  os.makedirs(pushed.uri, exist_ok=True)
  executor.Executor().Do(
      {'model': [model], 'model_blessing': [blessing],
       'span_examples': [window]}, {'pushed_model': [pushed]},
      {'serving_destination': str(destination), 'model_name': 'instruments',
       'image_size': SIZE, 'channels': 3, 'check_requests': 64})
  return pushed


def test_a_model_its_evaluator_did_not_bless_is_not_pushed(testdata,
                                                           tmp_path):
  pushed = _run(testdata, tmp_path / 'served', blessed=False)
  assert pushed.get_int_custom_property('pushed') == 0
  assert 'not blessed' in pushed.get_string_custom_property('reason')
  assert not (tmp_path / 'served').exists()


def test_a_blessed_model_is_checked_and_pushed_for_a_server(testdata,
                                                            tmp_path):
  pushed = _run(testdata, tmp_path / 'served', blessed=True)
  assert pushed.get_int_custom_property('pushed') == 1
  version_dir = str(tmp_path / 'served' / 'instruments' / '1')
  assert pushed.get_string_custom_property('pushed_destination') == (
      version_dir)
  assert pushed.get_int_custom_property('check_requests') == 6
  assert pushed.get_float_custom_property('check_max_score_difference') < (
      1e-4)
  manifest = cloud_push.read_manifest(version_dir)
  assert manifest.classes == CLASSES and manifest.families == CLASSES[1:]
  assert manifest.request == 'image_bytes' and manifest.front_end is None
  assert manifest.figures['check_requests'] == 6


def test_the_component_refuses_no_check_requests():
  channel = standard_artifacts.Model
  from tfx import types  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match='check_requests must be at least 1'):
    component.PhaseTwoPusher(
        model=types.Channel(type=channel),
        model_blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        span_examples=types.Channel(type=standard_artifacts.Examples),
        serving_destination='/x', model_name='m', image_size=SIZE,
        channels=3, check_requests=0)
