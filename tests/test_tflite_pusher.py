"""Tests of the TFLite pusher: executor over hand-built artifacts, modes,
the parity gate, the push folder and `predict`.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tfx.types import standard_artifacts

from conftest import bomb_png
from components.common import errors
from components.common import run_guard
from components.modules import features
from components.modules import trainer
from components.tflite_pusher import component
from components.tflite import conversion
from components.tflite_pusher import convert_executor
from components.tflite_pusher import executor
from components.tflite_pusher import stages
from components.tflite_pusher.settings import PushSettings
from components.tflite import model_metadata
from components.tflite import threshold as threshold_lib
from components.ondevice import push
from pipeline.serving import predict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 32
CLASSES = ['quiet', 'loud']


def _images(rng, labels):
  """Label 1 images have a bright square in the middle; both are noisy."""
  images = rng.uniform(0, 60, (len(labels), SIZE, SIZE, 3))
  images[labels == 1, 8:24, 8:24, :] += 180
  return images.astype(np.uint8)


def _write_split(folder, images, labels):
  os.makedirs(folder)
  path = os.path.join(folder, 'transformed_examples-00000-of-00001.gz')
  with tf.io.TFRecordWriter(path, 'GZIP') as writer:
    for image, label in zip(images, labels):
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.IMAGE_PNG_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[tf.io.encode_png(image).numpy()])),
          features.LABEL_KEY: tf.train.Feature(
              int64_list=tf.train.Int64List(value=[int(label)])),
      })).SerializeToString())


@pytest.fixture(scope='module')
def testdata(tmp_path_factory):
  """A trained small SavedModel and transformed examples, as TFX lays them."""
  root = tmp_path_factory.mktemp('pusher_testdata')
  rng = np.random.default_rng(0)
  # Sorted by label on purpose: a sample taken from the start would hold one
  # class only.
  train_labels = np.sort(rng.integers(0, 2, 240))
  eval_labels = rng.integers(0, 2, 80)
  train_images = _images(rng, train_labels)
  eval_images = _images(rng, eval_labels)
  examples_uri = str(root / 'Transform' / 'transformed_examples' / '1')
  _write_split(os.path.join(examples_uri, 'Split-train'), train_images,
               train_labels)
  _write_split(os.path.join(examples_uri, 'Split-eval'), eval_images,
               eval_labels)

  tf.keras.utils.set_random_seed(0)
  model = trainer.build_model(image_size=SIZE, channels=3, width=0.25)
  dataset = tf.data.Dataset.from_tensor_slices(
      (train_images.astype(np.float32), train_labels[:, None].astype(
          np.float32))).shuffle(240, seed=0).repeat().batch(32)
  trainer.train(model, dataset, steps=80, learning_rate=3e-3, log_every=80)
  model_uri = str(root / 'Trainer' / 'model' / '2')
  trainer.export_model(model, os.path.join(model_uri, 'Format-Serving'),
                       SIZE, 3)
  for image_index, label in ((0, 'quiet'), (1, 'loud')):
    index = int(np.where(eval_labels == image_index)[0][0])
    Image.fromarray(eval_images[index]).resize((64, 64)).save(
        root / f'{label}.png')
  return {'root': root, 'examples_uri': examples_uri, 'model_uri': model_uri,
          'eval_images': eval_images, 'eval_labels': eval_labels}


def _blessing(root, blessed):
  artifact = standard_artifacts.ModelBlessing()
  artifact.uri = str(root / 'Evaluator' / 'blessing' / str(int(blessed)))
  os.makedirs(artifact.uri, exist_ok=True)
  open(os.path.join(artifact.uri, 'BLESSED' if blessed else 'NOT_BLESSED'),
       'w').close()
  artifact.set_int_custom_property('blessed', int(blessed))
  return artifact


def _run(testdata, destination, blessed=True, cascade=None, **overrides):
  """Runs the converter, then the pusher on its candidate (with the
  cascade's blessing, when given); returns the PushedModel."""
  model = standard_artifacts.Model()
  model.uri = testdata['model_uri']
  examples = standard_artifacts.Examples()
  examples.uri = testdata['examples_uri']
  examples.split_names = '["train", "eval"]'
  # Fresh output folders for each run, as TFX gives each execution.
  run_dir = tempfile.mkdtemp(prefix='run-', dir=testdata['root'])
  pushed = standard_artifacts.PushedModel()
  pushed.uri = os.path.join(run_dir, 'pushed_model')
  candidate = standard_artifacts.Model()
  candidate.uri = os.path.join(run_dir, 'candidate')
  for artifact in (pushed, candidate):
    os.makedirs(artifact.uri)
  properties = {
      'quantization': 'dynamic',
      'class_names': json.dumps(CLASSES),
      'image_size': SIZE,
      'channels': 3,
      'max_accuracy_drop': 0.01,
      'representative_examples': 100,
      'validation_examples': 0,
      'latency_runs': 5,
      'micro_examples': 10,
  }
  properties.update(overrides)
  convert_executor.Executor().Do(
      {'model': [model], 'model_blessing': [_blessing(testdata['root'],
                                                       blessed)],
       'examples': [examples]},
      {'candidate': [candidate]}, properties)
  executor.Executor().Do(
      {'candidate': [candidate], 'cascade': [cascade] if cascade else []},
      {'pushed_model': [pushed]}, {'push_destination': str(destination)})
  return pushed


def test_not_blessed_converts_and_pushes_nothing(testdata, tmp_path):
  with mock.patch.object(conversion, 'convert') as convert:
    pushed = _run(testdata, tmp_path / 'dest', blessed=False)
  convert.assert_not_called()
  assert pushed.get_int_custom_property('pushed') == 0
  assert 'not blessed' in pushed.get_string_custom_property('reason')
  assert not (tmp_path / 'dest').exists()


@pytest.mark.parametrize('mode', conversion.QUANTIZATION_MODES)
def test_every_mode_converts_validates_and_pushes(testdata, tmp_path, mode):
  destination = tmp_path / 'dest'
  pushed = _run(testdata, destination, quantization=mode)
  assert pushed.get_int_custom_property('pushed') == 1
  assert pushed.get_string_custom_property('pushed_version') == '1'
  assert push.latest_version(str(destination)) == 1
  folder = destination / '1'
  # An int8 model also comes as C++ source for firmware (TFLM ran it).
  assert sorted(os.listdir(folder)) == ['labels.txt', 'manifest.json'] + (
      ['model.tflite', 'model_data.cc', 'model_data.h'] if mode == 'int8'
      else ['model.tflite'])
  assert (folder / 'labels.txt').read_text().split() == CLASSES
  manifest = push.read_manifest(str(folder))
  model_bytes = (folder / 'model.tflite').read_bytes()
  assert manifest.sha256 == conversion.sha256(model_bytes)
  assert pushed.get_string_custom_property('sha256') == manifest.sha256
  assert manifest.quantization == mode
  assert manifest.class_names == CLASSES
  assert manifest.input_tensor['shape'] == [1, SIZE, SIZE, 3]
  # A device client reads the normalisation, it does not guess it.
  assert manifest.input_tensor['normalization_options'] == {
      'mean': [0.0, 0.0, 0.0], 'std': [1.0, 1.0, 1.0]}
  assert manifest.output['shape'] == [1, 2]
  # Not given the window's raw examples, it cannot say which families.
  assert manifest.families.given is False
  assert 'not given the window' in manifest.families.reason
  figures = manifest.validation
  assert figures['examples'] == len(testdata['eval_labels'])
  assert figures['accuracy_drop'] <= 0.01
  assert figures['savedmodel_accuracy'] > 0.9
  assert figures['agreement'] > 0.95
  assert figures['latency_ms_median'] > 0
  assert pushed.get_float_custom_property('tflite_accuracy') == (
      pytest.approx(figures['tflite_accuracy']))
  if mode == 'int8':
    assert manifest.input_tensor['dtype'] == 'uint8'
    assert manifest.input_tensor['quantization']['scale'] > 0
    assert manifest.output['dtype'] == 'uint8'
  else:
    assert manifest.input_tensor['dtype'] == 'float32'
  if mode in ('dynamic', 'int8'):
    assert figures['size_ratio'] < 0.5  # a tiny model; about 0.28 at full size
  if mode == 'float16':
    assert 0.45 < figures['size_ratio'] < 0.6
  # The archived copy in the artifact is the pushed file.
  with open(os.path.join(pushed.uri, 'model.tflite'), 'rb') as f:
    assert f.read() == model_bytes


def test_metadata_with_labels_is_embedded_when_writers_load(testdata,
                                                            tmp_path):
  pytest.importorskip(
      'tensorflow_lite_support.metadata.python.metadata_writers.'
      'image_classifier', exc_type=ImportError)
  _run(testdata, tmp_path / 'dest')
  model_bytes = (tmp_path / 'dest' / '1' / 'model.tflite').read_bytes()
  from tensorflow_lite_support.metadata.python import metadata  # pylint: disable=g-import-not-at-top
  displayer = metadata.MetadataDisplayer.with_model_buffer(model_bytes)
  assert displayer.get_packed_associated_file_list() == ['labels.txt']
  manifest = push.read_manifest(str(tmp_path / 'dest' / '1'))
  assert manifest.metadata_embedded is True
  # Phase one's threshold is the output's score threshold, which MediaPipe
  # and the Task Library read when the app sets none.
  described = json.loads(displayer.get_metadata_json())
  output = described['subgraph_metadata'][0]['output_tensor_metadata'][0]
  assert output['process_units'] == [{
      'options_type': 'ScoreThresholdingOptions',
      'options': {'global_score_threshold': pytest.approx(
          manifest.decision_threshold, abs=1e-6)}}]
  assert model_metadata.score_threshold(model_bytes) == pytest.approx(
      manifest.decision_threshold, abs=1e-6)


def test_the_score_threshold_is_set_once_and_only_to_a_score():
  pytest.importorskip(
      'tensorflow_lite_support.metadata.python.metadata_writers.'
      'image_classifier', exc_type=ImportError)
  model = tf.keras.Sequential([tf.keras.Input((8, 8, 3)),
                               tf.keras.layers.GlobalAveragePooling2D(),
                               tf.keras.layers.Dense(2, activation='softmax')])
  plain = tf.lite.TFLiteConverter.from_keras_model(model).convert()
  assert model_metadata.score_threshold(plain) is None
  first, problem = model_metadata.embed(plain, CLASSES, 0.25)
  assert problem is None
  assert model_metadata.score_threshold(first) == 0.25
  # Set again on a model that has one, it replaces it.
  again = model_metadata.with_score_threshold(plain, first, 0.75)
  assert model_metadata.score_threshold(again) == 0.75
  from tensorflow_lite_support.metadata.python import metadata  # pylint: disable=g-import-not-at-top
  units = json.loads(metadata.MetadataDisplayer.with_model_buffer(
      again).get_metadata_json())['subgraph_metadata'][0][
          'output_tensor_metadata'][0]['process_units']
  assert len(units) == 1
  with pytest.raises(ValueError, match='not a score'):
    model_metadata.with_score_threshold(plain, first, 1.5)
  # Without a threshold nothing is recorded, as for versions before.
  assert model_metadata.score_threshold(
      model_metadata.embed(plain, CLASSES)[0]) is None


def test_missing_metadata_writers_still_push_and_say_why(testdata, tmp_path):
  with mock.patch.object(model_metadata, '_writers',
                         side_effect=ImportError('libusb-1.0.so.0')):
    pushed = _run(testdata, tmp_path / 'dest')
  manifest = push.read_manifest(str(tmp_path / 'dest' / '1'))
  assert manifest.metadata_embedded is False
  assert 'libusb' in manifest.metadata_problem
  assert pushed.get_int_custom_property('metadata_embedded') == 0


def test_parity_gate_refuses_a_push_beyond_the_tolerance(testdata, tmp_path):
  destination = tmp_path / 'dest'
  _run(testdata, destination)
  pushed = _run(testdata, destination, quantization='float16',
                max_accuracy_drop=-1.0)
  assert pushed.get_int_custom_property('pushed') == 0
  assert 'exceeds the tolerance' in pushed.get_string_custom_property(
      'reason')
  assert pushed.get_float_custom_property('accuracy_drop') <= 0.01
  assert push.versions(str(destination)) == [1]
  assert push.latest_version(str(destination)) == 1


def test_a_model_over_the_size_budget_is_not_pushed_and_says_by_how_much(
    testdata, tmp_path):
  destination = tmp_path / 'dest'
  fits = _run(testdata, destination)
  size = fits.get_int_custom_property('pushed_bytes')
  assert fits.get_int_custom_property('pushed') == 1
  assert size == (destination / '1' / 'model.tflite').stat().st_size

  over = _run(testdata, destination, quantization='float16',
              max_tflite_bytes=size)
  assert over.get_int_custom_property('pushed') == 0
  float16_size = over.get_int_custom_property('pushed_bytes')
  assert float16_size > size
  assert over.get_string_custom_property('budget_exceeded') == (
      'max_tflite_bytes')
  assert over.get_int_custom_property('over_max_tflite_bytes') == (
      float16_size - size)
  reason = over.get_string_custom_property('reason')
  assert 'over the device budget' in reason
  assert f'{float16_size - size:,} over max_tflite_bytes {size:,}' in reason
  assert push.versions(str(destination)) == [1]

  # The same model within the limit is pushed: the limit is inclusive.
  same = _run(testdata, destination, max_tflite_bytes=size)
  assert same.get_int_custom_property('pushed') == 1


def test_a_model_over_the_latency_budget_is_not_pushed(testdata, tmp_path):
  pushed = _run(testdata, tmp_path / 'dest', max_latency_ms=1e-6,
                max_tflite_bytes=10**9)
  assert pushed.get_int_custom_property('pushed') == 0
  assert pushed.get_string_custom_property('budget_exceeded') == (
      'max_latency_ms')
  latency = pushed.get_float_custom_property('latency_ms_median')
  assert pushed.get_float_custom_property('over_max_latency_ms') == (
      pytest.approx(latency - 1e-6))
  assert 'over max_latency_ms 1e-06' in pushed.get_string_custom_property(
      'reason')
  assert not (tmp_path / 'dest').exists()


def test_the_same_model_is_not_pushed_twice(testdata, tmp_path):
  destination = tmp_path / 'dest'
  _run(testdata, destination)
  again = _run(testdata, destination)
  assert again.get_int_custom_property('pushed') == 1
  assert again.get_string_custom_property('pushed_version') == '1'
  manifest = push.read_manifest(str(destination / '1'))
  assert again.get_string_custom_property('sha256') == manifest.sha256
  assert push.versions(str(destination)) == [1]
  other = _run(testdata, destination, quantization='float16')
  assert other.get_string_custom_property('pushed_version') == '2'
  assert push.latest_version(str(destination)) == 2


class _Lost(errors.LockLostError):
  pass


def test_a_run_guard_that_refuses_stops_the_push_before_any_write(
    testdata, tmp_path):
  destination = tmp_path / 'dest'
  _run(testdata, destination)

  def refuse():
    raise _Lost('the run lock was lost')

  with run_guard.installed(refuse):
    # The same model again: the pusher writes nothing, so it needs no check.
    assert _run(testdata, destination).get_string_custom_property(
        'pushed_version') == '1'
    with pytest.raises(_Lost):
      _run(testdata, destination, quantization='float16')
  assert push.versions(str(destination)) == [1]
  assert push.latest_version(str(destination)) == 1
  assert _run(testdata, destination, quantization='float16'
              ).get_string_custom_property('pushed_version') == '2'


def test_the_manifest_names_the_families_or_says_none_was_given():
  assert stages.families_entry(['strings', 'bass']).to_json() == {
      'given': True, 'names': ['bass', 'strings']}
  assert stages.families_entry(['bass'], 'k').pairing_key == 'k'
  none = stages.families_entry([])
  assert none.given is False and none.names == ()
  assert none.reason.startswith('no family was given')


def test_component_refuses_unknown_mode_and_negative_counts():
  good = dict(push_destination='/tmp/x', class_names=tuple(CLASSES),
              quantization='dynamic', image_size=SIZE, channels=3,
              max_accuracy_drop=0.01, representative_examples=10,
              validation_examples=0, latency_runs=1)
  with pytest.raises(ValueError, match='unknown quantization mode'):
    component.TFLiteConverter(model=mock.Mock(), examples=mock.Mock(),
                              settings=PushSettings(**dict(
                                  good, quantization='int4')))
  with pytest.raises(ValueError, match='latency_runs must not be negative'):
    PushSettings(**dict(good, latency_runs=-1))
  settings = PushSettings(**good)
  assert PushSettings.from_exec_properties(
      settings.to_exec_properties()) == settings


def test_the_threshold_is_chosen_on_the_tflite_model_and_predict_uses_it(
    testdata, tmp_path):
  pushed = _run(testdata, tmp_path / 'dest', phase_one_recall=0.9)
  manifest = push.read_manifest(
      pushed.get_string_custom_property('pushed_destination'))
  chosen = manifest.threshold.to_json()
  assert chosen['target_recall'] == 0.9 and 0.0 <= chosen['value'] <= 1.0
  assert chosen['met'] == (chosen['recall_lower_bound'] >= 0.9)
  assert chosen['positives'] + chosen['negatives'] > 0
  # A recording is answered by the mean of its windows, and says so.
  assert chosen['recording_rule'] == 'mean'
  assert manifest.recording_rule == 'mean'
  assert pushed.get_float_custom_property('threshold') == pytest.approx(
      chosen['value'])
  assert pushed.get_float_custom_property('threshold_recall') == (
      pytest.approx(chosen['recall']))
  # The figures are what the pushed model's scores on the eval split give:
  # scored here as a device scores them (LiteRT's interpreter, whose
  # kernels differ from the converter's TensorFlow Lite by a few 1e-4), the
  # same choice is made. (On this small model the SavedModel's scores
  # choose within 1e-4 too, so the test cannot tell the two apart.)
  device = predict.PushedModel(str(tmp_path / 'dest'))
  scores = [float(device.classifier.scores(device.pixels_of(
      tf.io.encode_png(image).numpy()))[-1])
            for image in testdata['eval_images']]
  again = threshold_lib.choose(testdata['eval_labels'], scores, 0.9)
  assert chosen['value'] == pytest.approx(again.value, abs=1e-3)
  assert chosen['recall'] == pytest.approx(again.recall)
  assert chosen['false_positive_rate'] == pytest.approx(
      again.false_positive_rate)
  files = [str(testdata['root'] / 'quiet.png'),
           str(testdata['root'] / 'loud.png')]
  # predict decides by the version's threshold unless told another.
  found = predict.predict_files(str(tmp_path / 'dest'), files)
  assert {r.threshold for r in found} == {chosen['value']}
  for result in found:
    assert result.label == ('loud' if result.scores['loud'] >= chosen[
        'value'] else 'quiet')
  everything = predict.predict_files(str(tmp_path / 'dest'), files,
                                     threshold=0.0)
  assert [r.label for r in everything] == ['loud', 'loud']


def test_predict_agrees_with_the_saved_model(testdata, tmp_path):
  _run(testdata, tmp_path / 'dest', quantization='int8')
  files = [str(testdata['root'] / 'quiet.png'),
           str(testdata['root'] / 'loud.png')]
  results = predict.predict_files(str(tmp_path / 'dest'), files)
  assert [r.label for r in results] == ['quiet', 'loud']
  loaded = tf.saved_model.load(os.path.join(testdata['model_uri'],
                                            'Format-Serving'))
  for path, result in zip(files, results):
    with open(path, 'rb') as f:
      pixels = features.decode_and_resize(tf.constant(f.read()), SIZE, 3)
    reference = loaded.signatures[features.SERVING_IMAGE_SIGNATURE](
        image=tf.cast(pixels, tf.float32)[None])[features.SCORES_NAME]
    assert result.scores['loud'] == pytest.approx(
        float(reference[0, 1]), abs=0.05)


def test_predict_refuses_a_tampered_model(testdata, tmp_path):
  _run(testdata, tmp_path / 'dest')
  with open(tmp_path / 'dest' / '1' / 'model.tflite', 'ab') as f:
    f.write(b'\0')
  with pytest.raises(predict.ModelFolderError, match='SHA-256'):
    predict.PushedModel(str(tmp_path / 'dest'))


def test_predict_reports_unreadable_files_and_goes_on(testdata, tmp_path):
  _run(testdata, tmp_path / 'dest')
  text = tmp_path / 'notes.png'
  text.write_text('hello')
  results = predict.predict_files(
      str(tmp_path / 'dest'),
      [str(text), str(tmp_path / 'missing.png'),
       str(testdata['root'] / 'loud.png')])
  assert 'not a readable image' in results[0].error
  assert 'cannot read' in results[1].error
  assert results[2].label == 'loud'


def test_predict_refuses_a_decompression_bomb_from_its_header(testdata,
                                                             tmp_path):
  _run(testdata, tmp_path / 'dest')
  bomb = tmp_path / 'bomb.png'
  bomb.write_bytes(bomb_png(40000, 40000))
  results = predict.predict_files(
      str(tmp_path / 'dest'), [str(bomb), str(testdata['root'] / 'loud.png')])
  assert results[0].error.startswith('image declares 40000x40000 pixels')
  assert results[1].label == 'loud'


# Pushes to an object store: moto's S3 server stands in for one (see
# tests/s3_server.py). Everything that touches s3:// runs in a child
# process, as the command line does, since tensorflow-io's S3 client
# aborts the interpreter that used it at exit.

_PUSH_TO_S3 = '''
import dataclasses, os, sys
from components.common import storage
from components.ondevice import push
source, destination, padding = sys.argv[1], sys.argv[2], int(sys.argv[3])
manifest = push.read_manifest(source)
files = {name: storage.read_bytes(os.path.join(source, name))
         for name in manifest.files}
files[push.MODEL_FILE] += bytes(padding)  # Makes the upload long.
manifest = dataclasses.replace(
    manifest, sha256=storage.sha256(files[push.MODEL_FILE]), version=None,
    files=None)
print('pushing', flush=True)
version, _ = push.write_version(destination, files, manifest)
print('pushed', version, flush=True)
sys.stdout.flush()
os._exit(0)
'''


def _push_to_s3(s3, source, destination, padding=0):
  return subprocess.run(
      [sys.executable, '-c', _PUSH_TO_S3, source, destination, str(padding)],
      cwd=ROOT, env=dict(s3.environ(), PYTHONPATH=ROOT), capture_output=True,
      text=True, timeout=600, check=False)


def _predict(s3, model, *files):
  result = subprocess.run(
      [sys.executable, '-m', 'pipeline', 'predict', model, *files, '--json'],
      cwd=ROOT, env=s3.environ(), capture_output=True, text=True,
      timeout=600, check=False)
  return result.returncode, result.stdout, result.stderr


def test_a_model_pushed_to_s3_is_checked_and_a_killed_upload_leaves_latest(
    testdata, tmp_path, s3):
  import s3_server  # pylint: disable=g-import-not-at-top
  _run(testdata, tmp_path / 'dest')
  source = str(tmp_path / 'dest' / '1')
  destination = f's3://{s3_server.BUCKET}/models'
  pushed = _push_to_s3(s3, source, destination)
  assert pushed.returncode == 0, pushed.stderr[-3000:]
  assert 'pushed 1' in pushed.stdout
  assert s3.keys('models/') == ['models/1/labels.txt',
                                'models/1/manifest.json',
                                'models/1/model.tflite', 'models/LATEST']

  images = [str(testdata['root'] / 'quiet.png'),
            str(testdata['root'] / 'loud.png')]
  code, out, err = _predict(s3, destination, *images)
  assert code == 0, err[-3000:]
  answers = json.loads(out)
  assert [a['label'] for a in answers] == ['quiet', 'loud'], answers

  # A pusher killed mid-upload: version 2's model is in, its manifest not.
  upload = subprocess.Popen(
      [sys.executable, '-c', _PUSH_TO_S3, source, destination,
       str(64 * 2**20)], cwd=ROOT, env=dict(s3.environ(), PYTHONPATH=ROOT),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 300
  while 'models/2/model.tflite' not in s3.keys('models/2/'):
    assert upload.poll() is None, upload.stderr.read()[-3000:]
    assert time.time() < deadline, 'the upload never started'
    time.sleep(0.02)
  upload.send_signal(signal.SIGKILL)
  upload.wait()
  assert 'models/2/manifest.json' not in s3.keys('models/2/')
  assert s3.client().get_object(
      Bucket=s3_server.BUCKET, Key='models/LATEST')['Body'].read() == b'1\n'
  code, out, err = _predict(s3, destination, *images)
  assert code == 0, err[-3000:]
  assert [a['label'] for a in json.loads(out)] == ['quiet', 'loud']
  code, _, err = _predict(s3, destination + '/2', *images)
  assert code == 2 and 'neither a pushed model folder' in err, err[-3000:]

  # The next push goes past the leftover, never mixing into it.
  pushed = _push_to_s3(s3, source, destination)
  assert 'pushed 3' in pushed.stdout, pushed.stderr[-3000:]

  # A replaced object is refused, naming the file.
  s3.client().put_object(Bucket=s3_server.BUCKET,
                         Key='models/3/labels.txt', Body=b'loud\nquiet\n')
  code, _, err = _predict(s3, destination, *images)
  assert code == 2, err[-3000:]
  assert 'models/3: labels.txt: does not match the SHA-256' in err, err[
      -3000:]


def test_int8_is_proved_in_tflm_and_the_arena_is_in_the_budget(testdata,
                                                               tmp_path):
  destination = tmp_path / 'dest'
  pushed = _run(testdata, destination, quantization='int8')
  manifest = push.read_manifest(str(destination / '1'))
  figures = manifest.validation
  arena = figures['arena_bytes']
  assert arena > 0 and figures['micro_examples'] == 10
  assert figures['micro_identical'] == 1.0  # LiteRT's builtin kernels
  assert figures['micro_max_difference_xnnpack'] <= 2
  assert pushed.get_int_custom_property('arena_bytes') == arena
  assert manifest.firmware['arena_bytes'] == arena
  for name in ('model_data.cc', 'model_data.h'):
    assert manifest.files[name] == conversion.sha256(
        (destination / '1' / name).read_bytes())
  assert f'kTensorArenaSize = {arena};' in (
      destination / '1' / 'model_data.h').read_text()
  compiled = subprocess.run(
      ['c++', '-std=c++17', '-Wall', '-Werror', '-fsyntax-only',
       str(destination / '1' / 'model_data.cc')],
      capture_output=True, text=True, check=False)
  assert compiled.returncode == 0, compiled.stderr
  # A smaller arena budget keeps it back, saying by how much.
  over = _run(testdata, tmp_path / 'small', quantization='int8',
              max_arena_bytes=arena - 16)
  assert over.get_int_custom_property('pushed') == 0
  assert over.get_string_custom_property('budget_exceeded') == (
      'max_arena_bytes')
  assert over.get_int_custom_property('over_max_arena_bytes') == 16
  assert 'TFLM arena' in over.get_string_custom_property('reason')
  assert not (tmp_path / 'small').exists()


def test_an_arena_budget_on_a_model_tflm_cannot_run_pushes_nothing(
    testdata, tmp_path):
  # Dynamic-range models use hybrid kernels TFLM does not have.
  pushed = _run(testdata, tmp_path / 'dest', quantization='dynamic',
                max_arena_bytes=1 << 20)
  assert pushed.get_int_custom_property('pushed') == 0
  assert pushed.get_string_custom_property('micro_error')
  assert 'did not run it' in pushed.get_string_custom_property('reason')
  # Without the limit the same model is pushed, and not run in TFLM.
  pushed = _run(testdata, tmp_path / 'free', quantization='dynamic')
  assert pushed.get_int_custom_property('pushed') == 1
  manifest = push.read_manifest(str(tmp_path / 'free' / '1'))
  assert manifest.firmware['source'] is None


def test_tensorflow_lite_micro_runs_for_int8_or_under_an_arena_limit():
  from components.tflite import Quantization  # pylint: disable=g-import-not-at-top
  from components.tflite import budget as budget_lib  # pylint: disable=g-import-not-at-top
  free, tight = budget_lib.Budget(), budget_lib.Budget(max_arena_bytes=1)
  assert [mode for mode in Quantization if free.runs_micro(mode)] == [
      Quantization.INT8]
  assert free.runs_micro('int8') and not free.runs_micro('dynamic')
  assert all(tight.runs_micro(mode.value) for mode in Quantization)


def test_every_recorded_figure_is_named_by_a_stage_result(testdata,
                                                          tmp_path):
  import dataclasses  # pylint: disable=g-import-not-at-top
  from components import contracts  # pylint: disable=g-import-not-at-top
  from components.tflite import results  # pylint: disable=g-import-not-at-top
  pushed = _run(testdata, tmp_path / 'dest', quantization='int8')
  assert pushed.get_int_custom_property('pushed') == 1
  fields = {field.name for kind in (results.ImageProof, results.Packaging,
                                    results.MicroProof, results.BudgetVerdict)
            for field in dataclasses.fields(kind)}
  fields |= {'waveform_' + field.name
             for field in dataclasses.fields(results.WaveformProof)}
  shown = set(contracts.TFLitePusher.FIGURES +
              contracts.TFLitePusher.WAVEFORM_FIGURES)
  recorded = set(pushed.mlmd_artifact.custom_properties)
  assert recorded <= fields | shown, recorded - fields - shown
  # Each stage that ran is in the record under its result's names.
  for kind in (results.ImageProof, results.Packaging, results.MicroProof):
    assert set(kind.names()) - {'micro_error', 'micro_missing_ops'} <= (
        recorded), kind


def test_a_pair_the_cascade_did_not_bless_is_not_pushed(testdata, tmp_path):
  from components.common import pair_blessing  # pylint: disable=g-import-not-at-top
  verdicts = []
  for reason in ('its end-to-end accuracy fell', None):
    artifact = standard_artifacts.ModelBlessing()
    artifact.uri = str(tmp_path / 'cascade' / str(len(verdicts)))
    os.makedirs(artifact.uri)
    pair_blessing.write(artifact, reason)
    verdicts.append(_run(testdata, tmp_path / 'dest', cascade=artifact))
  held, passed = verdicts
  assert held.get_int_custom_property('pushed') == 0
  assert held.get_string_custom_property('reason') == (
      'the cascade held the pair back: its end-to-end accuracy fell')
  # The candidate's figures are on the PushedModel either way.
  assert held.get_float_custom_property('threshold') == (
      passed.get_float_custom_property('threshold'))
  assert passed.get_int_custom_property('pushed') == 1
  assert push.versions(str(tmp_path / 'dest')) == [1]
