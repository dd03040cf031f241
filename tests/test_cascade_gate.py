"""CascadeEvaluator's executor over artifacts made by hand: the pair is
judged before either push, against the last pushed pair on the same eval
examples, and its blessing holds both pushes back when it is worse."""

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tfx.types import standard_artifacts

import fuzz
from components import contracts
from components.cascade import executor
from components.cascade import figures
from components.cloud import push as cloud_push
from components.modules import features
from components.modules import phase_two
from components.modules import trainer
from components.ondevice import candidate as candidate_lib
from components.ondevice import push
from components.ondevice.manifest import DecisionThreshold
from components.ondevice.manifest import Families
from components.ondevice.manifest import Manifest

SIZE = 32
CLASSES = ['not_instrument', 'bass', 'piano']
KEY = '0123456789abcdef'
C = contracts.CascadeEvaluator


@pytest.fixture(name='testdata', scope='module')
def _testdata(tmp_path_factory):
  """Phase two always answers `bass`; four bass instruments and four
  other sounds in the eval split; an untrained phase one."""
  root = tmp_path_factory.mktemp('cascade_gate')
  tf.keras.utils.set_random_seed(0)
  model = trainer.build_model(SIZE, 3, width=0.25, classes=len(CLASSES))
  model.get_layer(trainer.LOGIT_LAYER).bias.assign([-8.0, 8.0, -8.0])
  model_uri = root / 'PhaseTwoTrainer' / 'model' / '1'
  phase_two.export_model(model, str(model_uri / 'Format-Serving'), CLASSES,
                         SIZE, 3)
  window_uri = root / 'SpanWindow' / 'examples' / '1'
  os.makedirs(window_uri / 'Split-eval')
  rng = np.random.default_rng(0)
  with tf.io.TFRecordWriter(str(window_uri / 'Split-eval' / 'data.gz'),
                            'GZIP') as writer:
    for label in (1, 1, 1, 1, 0, 0, 0, 0):
      buffer = io.BytesIO()
      Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3),
                                   dtype=np.uint8)).save(buffer, format='PNG')
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[buffer.getvalue()])),
          features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(
              value=[label])),
          features.FAMILY_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[b'bass' if label else b'']))})).SerializeToString())
  return {'root': root, 'model_uri': str(model_uri),
          'window_uri': str(window_uri),
          'tflite': fuzz.tiny_image_model(SIZE)}


def _manifest(tflite, threshold, key=KEY):
  return Manifest(model_file=push.MODEL_FILE, labels_file=push.LABELS_FILE,
                  class_names=['not_instrument', 'instrument'],
                  converted_sha256='x' * 64, image_size=SIZE, channels=3,
                  families=Families(True, tuple(CLASSES[1:]),
                                    pairing_key=key),
                  threshold=DecisionThreshold(threshold))


def _files(tflite):
  return {push.MODEL_FILE: tflite,
          push.LABELS_FILE: b'not_instrument\ninstrument\n'}


def _judge(testdata, folder, threshold, ready=True, gate=None):
  """Runs the executor on a candidate of `threshold`; (evaluation,
  blessing) artifacts."""
  candidate = standard_artifacts.Model()
  candidate.uri = str(folder / 'candidate')
  os.makedirs(candidate.uri)
  candidate_lib.write(candidate.uri, _files(testdata['tflite']),
                      _manifest(testdata['tflite'], threshold))
  candidate.set_int_custom_property(contracts.TFLiteConverter.READY,
                                    int(ready))
  model = standard_artifacts.Model()
  model.uri = testdata['model_uri']
  window = standard_artifacts.Examples()
  window.uri = testdata['window_uri']
  window.split_names = '["eval"]'
  outputs = {}
  for key, kind in ((C.EVALUATION, standard_artifacts.ModelEvaluation),
                    (C.BLESSING, standard_artifacts.ModelBlessing)):
    outputs[key] = kind()
    outputs[key].uri = str(folder / key)
    os.makedirs(outputs[key].uri)
  gate = gate or figures.Gate(max_loss_vs_cloud=1.0, max_cloud_share=1.0,
                              max_accuracy_drop=0.01)
  executor.Executor().Do(
      {C.CANDIDATE: [candidate], C.MODEL: [model],
       C.SPAN_EXAMPLES: [window]},
      {key: [artifact] for key, artifact in outputs.items()},
      {executor.IMAGE_SIZE_KEY: SIZE, executor.CHANNELS_KEY: 3,
       executor.PUSH_DESTINATION_KEY: str(folder.parent / 'pushed'),
       executor.SERVING_DESTINATION_KEY: str(folder.parent / 'served'),
       executor.NAME_KEY: 'instruments',
       **{name: getattr(gate, name) for name in executor.GATE_KEYS}})
  return outputs[C.EVALUATION], outputs[C.BLESSING]


def _push_pair(testdata, root, threshold, key=KEY):
  push.write_version(str(root / 'pushed'), _files(testdata['tflite']),
                     _manifest(testdata['tflite'], threshold, key))
  cloud_push.write_version(
      str(root / 'served'), testdata['model_uri'], cloud_push.CloudManifest(
          model_name='instruments', classes=CLASSES, families=CLASSES[1:],
          request='image_bytes', source={'model': os.path.join(
              testdata['model_uri'], 'Format-Serving')},
          created='now', pairing_key=key))


def _blessed(blessing):
  return blessing.get_int_custom_property(C.BLESSED)


def test_with_nothing_pushed_the_pair_is_judged_and_blessed(testdata,
                                                            tmp_path):
  evaluation, blessing = _judge(testdata, tmp_path / 'run', threshold=1.0)
  assert _blessed(blessing) == 1
  assert os.path.exists(os.path.join(blessing.uri, 'BLESSED'))
  found = json.loads(open(os.path.join(evaluation.uri, C.FILE)).read())
  # Flags nothing: the other sounds are right on the device, the
  # instruments never reach the cloud.
  assert found['by_pi']['0.2']['accuracy'] == pytest.approx(0.8)
  assert found['baseline'] == {'pair': None,
                               'reason': 'no phase one was pushed before'}
  assert evaluation.get_string_custom_property(C.PHASE_ONE) == (
      "this run's candidate")


def test_a_pair_worse_than_the_last_pushed_one_is_held_back(testdata,
                                                            tmp_path):
  # The last pushed pair flags nothing (0.8 at 20% instruments); this
  # candidate flags everything, and phase two calls every other sound
  # `bass` (0.2).
  _push_pair(testdata, tmp_path, threshold=1.0)
  evaluation, blessing = _judge(testdata, tmp_path / 'run', threshold=0.0)
  assert _blessed(blessing) == 0
  assert os.path.exists(os.path.join(blessing.uri, 'NOT_BLESSED'))
  reason = blessing.get_string_custom_property(C.REASON)
  assert "below the last pushed pair's 0.8000" in reason, reason
  assert evaluation.get_float_custom_property(C.BASELINE_ACCURACY) == (
      pytest.approx(0.8))
  assert evaluation.get_string_custom_property(C.BASELINE) == (
      'pushed version 1 with phase two version 1')
  # The same candidate passes when the last pair pairs otherwise: it is
  # not compared with a pair of other classes.
  other = tmp_path / 'other'
  _push_pair(testdata, other, threshold=1.0, key='f' * 16)
  _, blessing = _judge(testdata, other / 'run', threshold=0.0)
  assert _blessed(blessing) == 1


def test_the_gate_s_own_bars_hold_a_pair_back(testdata, tmp_path):
  _, blessing = _judge(testdata, tmp_path / 'run', threshold=0.0,
                       gate=figures.Gate())
  assert _blessed(blessing) == 0
  assert 'sends 1.000 of windows to the cloud' in (
      blessing.get_string_custom_property(C.REASON))


def test_without_a_ready_candidate_the_pushed_phase_one_is_judged(
    testdata, tmp_path):
  _, blessing = _judge(testdata, tmp_path / 'nothing', threshold=0.0,
                       ready=False)
  assert _blessed(blessing) == 0
  assert 'no ready candidate and no pushed version' in (
      blessing.get_string_custom_property(C.REASON))
  _push_pair(testdata, tmp_path, threshold=1.0)
  evaluation, blessing = _judge(testdata, tmp_path / 'run', threshold=0.0,
                                ready=False)
  assert evaluation.get_string_custom_property(C.PHASE_ONE) == (
      'pushed version 1')
  assert _blessed(blessing) == 1
