"""The cloud phase's library (components/cloud/): phase two's serving
model, its check against the SavedModel, and its numbered versions in the
layout model servers read."""

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components import frontend
from components.cloud import push as cloud_push
from components.cloud import serving_model
from components.frontend import graph
from components.frontend import melscale
from components.modules import features
from components.modules import phase_two
from components.modules import trainer

SIZE = 32
CLASSES = ['not_instrument', 'bass', 'piano']


def _phase_two_model(path, bias):
  tf.keras.utils.set_random_seed(0)
  model = trainer.build_model(SIZE, 3, width=0.25, classes=len(CLASSES))
  model.get_layer(trainer.LOGIT_LAYER).bias.assign(bias)
  phase_two.export_model(model, str(path), CLASSES, SIZE, 3)
  return str(path)


@pytest.fixture(name='models', scope='module')
def _models(tmp_path_factory):
  root = tmp_path_factory.mktemp('cloud')
  # Untrained: the other model's bias alone makes it answer otherwise.
  return {'one': _phase_two_model(root / 'one', [0.0, 0.5, -0.5]),
          'other': _phase_two_model(root / 'other', [4.0, -2.0, -2.0])}


def _windows(front_end):
  rng = np.random.default_rng(3)
  return [melscale.pcm16_bytes(samples) for samples in
          graph.probe_windows(front_end)] + [
              melscale.pcm16_bytes(rng.uniform(-0.5, 0.5, n))
              # A short window is padded, a long one cut.
              for n in (front_end.window_samples // 3,
                        front_end.window_samples * 2)]


def test_a_window_of_pcm_is_answered_with_the_front_end_inside(models,
                                                              tmp_path):
  front_end = frontend.FrontEnd(image_size=SIZE)
  out = str(tmp_path / 'serving')
  labels = serving_model.build(models['one'], out, front_end, SIZE, 3)
  assert labels == CLASSES
  requests = _windows(front_end)
  served = tf.saved_model.load(out).signatures[
      features.SERVING_EXAMPLES_SIGNATURE](
          audio_pcm=tf.constant(requests))
  scores = served[features.SCORES_NAME].numpy()
  assert scores.shape == (len(requests), 3)
  assert served['classes'].numpy()[0].tolist() == [c.encode()
                                                   for c in CLASSES]
  assert [label.decode() for label in served['label'].numpy()] == [
      CLASSES[i] for i in np.argmax(scores, axis=1)]
  with open(os.path.join(out, 'assets.extra', 'labels.txt'),
            encoding='utf-8') as f:
    assert f.read().split() == CLASSES
  with open(os.path.join(out, 'assets.extra', 'front_end.json'),
            encoding='utf-8') as f:
    assert json.load(f) == front_end.to_record()
  # As phase two's SavedModel answers the NumPy front end's picture.
  proof = serving_model.check(out, models['one'], requests, front_end,
                              SIZE, 3)
  assert proof['requests'] == len(requests) and proof['problem'] is None
  assert proof['max_score_difference'] <= serving_model.MAX_SCORE_DIFFERENCE
  # Against another model's answers the check fails, and says why.
  other = serving_model.check(out, models['other'], requests, front_end,
                              SIZE, 3)
  assert other['problem'].startswith('the serving model answers '
                                     'differently')


def test_a_phase_two_that_hears_samples_is_served_them(tmp_path):
  from components.modules import phase_two_audio  # pylint: disable=import-outside-toplevel
  from components.music import musicnn  # pylint: disable=import-outside-toplevel
  tf.keras.utils.set_random_seed(0)
  encoder = musicnn.SequenceEncoder(['MTT_musicnn'])
  rng = np.random.default_rng(1)
  head = phase_two_audio.build_head(
      encoder.size, len(CLASSES), rng.normal(size=encoder.size),
      rng.uniform(0.5, 2.0, size=encoder.size))
  front_end = frontend.FrontEnd(image_size=SIZE)
  heard = str(tmp_path / 'heard')
  phase_two.export_heard(phase_two_audio.Heard(encoder, head), heard,
                         CLASSES, front_end.window_samples)
  out = str(tmp_path / 'serving')
  assert serving_model.build(heard, out, front_end, SIZE, 3) == CLASSES
  requests = _windows(front_end)
  served = tf.saved_model.load(out)
  assert set(served.signatures) == {features.SERVING_EXAMPLES_SIGNATURE,
                                    features.SERVING_WAVEFORM_SIGNATURE}
  scores = served.signatures[features.SERVING_EXAMPLES_SIGNATURE](
      audio_pcm=tf.constant(requests))[features.SCORES_NAME].numpy()
  assert scores.shape == (len(requests), 3)
  proof = serving_model.check(out, heard, requests, front_end, SIZE, 3)
  assert proof['problem'] is None and proof['max_score_difference'] < 1e-5
  with pytest.raises(serving_model.ServingModelError, match='hears windows'):
    serving_model.build(heard, str(tmp_path / 'images'), None, SIZE, 3)


def test_spans_of_images_are_served_an_encoded_image(models, tmp_path):
  out = str(tmp_path / 'serving')
  serving_model.build(models['one'], out, None, SIZE, 3)
  rng = np.random.default_rng(0)
  requests = []
  for _ in range(3):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(
        buffer, format='PNG')
    requests.append(buffer.getvalue())
  served = tf.saved_model.load(out).signatures[
      features.SERVING_EXAMPLES_SIGNATURE](image_bytes=tf.constant(requests))
  assert served[features.SCORES_NAME].shape == (3, 3)
  proof = serving_model.check(out, models['one'], requests, None, SIZE, 3)
  assert proof['problem'] is None and proof['max_score_difference'] < 1e-4
  assert serving_model.check(out, models['one'], [], None, SIZE, 3)[
      'problem'] == 'no request to check the serving model on'


def test_recordings_drawn_at_another_size_or_a_model_without_labels_refused(
    models, tmp_path):
  with pytest.raises(serving_model.ServingModelError,
                     match='drawn as 64x64 pictures and the model takes '
                     '32x32'):
    serving_model.build(models['one'], str(tmp_path / 'a'),
                        frontend.FrontEnd(image_size=64), SIZE, 3)
  with pytest.raises(serving_model.ServingModelError,
                     match='has no labels file'):
    serving_model.build(str(tmp_path), str(tmp_path / 'b'), None, SIZE, 3)


def _manifest(**overrides):
  values = dict(model_name='instruments', classes=CLASSES,
                families=CLASSES[1:], request='audio_pcm')
  values.update(overrides)
  return cloud_push.CloudManifest(**values)


def test_versions_are_numbered_in_the_layout_servers_read(models, tmp_path):
  serving = str(tmp_path / 'serving')
  serving_model.build(models['one'], serving, None, SIZE, 3)
  destination = str(tmp_path / 'served')
  first = cloud_push.write_version(destination, serving, _manifest())
  second = cloud_push.write_version(destination, serving, _manifest())
  base = os.path.join(destination, 'instruments')
  assert first == (1, os.path.join(base, '1'))
  assert second == (2, os.path.join(base, '2'))
  assert cloud_push.versions(base) == [1, 2]
  # Only numbered folders beside each other: no staging folder is left.
  assert sorted(name for name in os.listdir(base)
                if not name.startswith('.')) == ['1', '2']
  read = cloud_push.read_manifest(second[1])
  assert read.version == 2 and read.classes == CLASSES
  assert set(read.files) >= {'saved_model.pb', os.path.join(
      'assets.extra', 'labels.txt')}
  # What was pushed loads as it was built.
  loaded = tf.saved_model.load(second[1])
  assert features.SERVING_EXAMPLES_SIGNATURE in loaded.signatures


def test_a_failed_push_leaves_no_version(models, tmp_path):
  serving = str(tmp_path / 'serving')
  serving_model.build(models['one'], serving, None, SIZE, 3)
  blocked = tmp_path / 'served'
  blocked.write_text('a file where the folder should be')
  with pytest.raises(cloud_push.CloudPushError, match='push to .* failed'):
    cloud_push.write_version(str(blocked), serving, _manifest())


@pytest.mark.parametrize('data, said', [
    ([], 'is not a JSON object'),
    ({'model_name': 'x', 'classes': 'ab', 'families': [], 'request': 'r'},
     "'classes' is 'ab'"),
])
def test_a_damaged_manifest_is_named(data, said):
  with pytest.raises(cloud_push.CloudPushError, match=said):
    cloud_push.CloudManifest.from_json(data)


# On a bucket (moto's S3 server, tests/s3_server.py), in a child process:
# tensorflow-io's S3 client aborts the interpreter that used it at exit.
_PUSH_TO_S3 = '''
import os, sys
from components.cloud import push
source, destination = sys.argv[1], sys.argv[2]
manifest = push.CloudManifest(model_name='instruments', classes=['a', 'b'],
                              families=['b'], request='image_bytes')
for _ in range(2):
  version, folder = push.write_version(destination, source, manifest)
print('pushed', version, push.versions(push.model_base(destination,
                                                      'instruments')),
      push.read_manifest(folder).version, flush=True)
# What `serve` (and a Vertex AI container, from $AIP_STORAGE_URI) copies
# down from a bucket: the newest version of a base, or the version named.
from pipeline.cli import commands
for named in (push.model_base(destination, 'instruments'), folder):
  local = commands._copied_down(named, 'instruments')
  print('copied', sorted(os.listdir(local)), os.path.isfile(
      os.path.join(local, '2', 'saved_model.pb')), push.versions(local))
sys.stdout.flush()
os._exit(0)
'''


def test_versions_land_on_a_bucket_numbered_with_their_manifest(
    models, tmp_path, s3):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import s3_server  # pylint: disable=g-import-not-at-top
  serving = str(tmp_path / 'serving')
  serving_model.build(models['one'], serving, None, SIZE, 3)
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  done = subprocess.run(
      [sys.executable, '-c', _PUSH_TO_S3, serving,
       f's3://{s3_server.BUCKET}/served'], cwd=root,
      env=dict(s3.environ(), PYTHONPATH=root), capture_output=True,
      text=True, timeout=600, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  assert 'pushed 2 [1, 2] 2' in done.stdout
  assert done.stdout.count("copied ['2'] True [2]") == 2, done.stdout
  keys = s3.keys('served/instruments/2/')
  assert 'served/instruments/2/saved_model.pb' in keys
  assert 'served/instruments/2/assets.extra/manifest.json' in keys
  assert any(key.startswith('served/instruments/2/variables/')
             for key in keys)


def test_serve_warns_when_it_listens_beyond_this_machine():
  from components.cloud import launch  # pylint: disable=import-outside-toplevel
  port = launch.free_port()
  assert launch.check_address('127.0.0.1', port) is None
  warning = launch.check_address('0.0.0.0', port)
  assert warning.startswith('serve: listening on 0.0.0.0, not only on this '
                            'machine')
  with pytest.raises(launch.LaunchError, match='not a TCP port'):
    launch.check_address('127.0.0.1', 0)


def test_the_documented_inference_service_serves_the_pushed_folder():
  # docs/inferenceservice.yaml: KServe's TensorFlow runtime on the folder
  # of numbered versions the phase-two pusher writes, named as the model,
  # so a device calls the path `serve` answers on.
  import yaml  # pylint: disable=import-outside-toplevel
  from pipeline.settings import config as config_lib  # pylint: disable=import-outside-toplevel
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  with open(os.path.join(root, 'docs', 'inferenceservice.yaml'),
            encoding='utf-8') as f:
    service = yaml.safe_load(f)
  name = config_lib.PipelineConfig().served_model_name
  assert (service['apiVersion'], service['kind']) == (
      'serving.kserve.io/v1beta1', 'InferenceService')
  assert service['metadata']['name'] == name
  model = service['spec']['predictor']['model']
  assert model['modelFormat']['name'] == 'tensorflow'
  # The pusher's layout: <destination>/<name>, versions inside.
  assert model['storageUri'] == cloud_push.model_base(
      'gs://YOUR_BUCKET/served', name)
  with open(os.path.join(root, 'docs', 'phase-two.md'),
            encoding='utf-8') as f:
    assert '(inferenceservice.yaml)' in f.read()
