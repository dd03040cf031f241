"""Bad data, bad settings and killed runs: each ends in one clear message,
nothing is pushed, and devices keep the last good model.

One workspace is shared in order: a good first span is trained and pushed as
version 1, then each bad case is added as a newer span (the window is one
span, so each run sees only the newest) and must leave `LATEST` at the last
good version.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.tflite import conversion
from components.ondevice import push
from pipeline.settings import config as config_lib
from pipeline.data import ingest
from pipeline.runners import run

pytestmark = pytest.mark.e2e

CLASSES = ('not_instrument', 'instrument')
# Thresholds are loose: these tests are about faults, not model quality.
SETTINGS = dict(image_size=64, train_steps=100, batch_size=32,
                model_width=0.25, min_auc=0.7, min_accuracy=0.5,
                max_auc_drop=0.3,
                max_accuracy_drop=0.1, window_spans=1, augment=False,
                representative_examples=50, latency_runs=5)


def _source(folder, seed, per_class=(60, 60), blank=False):
  rng = np.random.default_rng(seed)
  for label, count in enumerate(per_class):
    os.makedirs(os.path.join(folder, CLASSES[label]), exist_ok=True)
    for index in range(count):
      if blank:
        pixels = np.zeros((64, 64, 3))
      else:
        pixels = rng.uniform(0, 70, (64, 64, 3))
        if label:
          x, y = rng.integers(4, 28, 2)
          pixels[y:y + 32, x:x + 32] += 170
      Image.fromarray(pixels.astype(np.uint8)).save(
          os.path.join(folder, CLASSES[label], f'{seed}_{label}_{index}.png'))
  return folder


def _config(workspace, **overrides):
  return config_lib.PipelineConfig(workspace=workspace,
                                   **dict(SETTINGS, **overrides))


def _assert_devices_keep(config, version):
  assert push.latest_version(config.push_destination) == version
  for number in push.versions(config.push_destination):
    folder = os.path.join(config.push_destination, str(number))
    manifest = push.read_manifest(folder)
    with open(os.path.join(folder, push.MODEL_FILE), 'rb') as f:
      assert conversion.sha256(f.read()) == manifest.sha256


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
  root = tmp_path_factory.mktemp('faults')
  ws = str(root / 'ws')
  config = _config(ws)
  ingest.ingest(_source(str(root / 'good1'), 1), config.data_root,
                progress=False)
  summary = run.run_pipeline(config)
  assert summary['pushed']['pushed_version'] == '1', summary
  return {'root': root, 'ws': ws}


def _ingest(workspace, name, **kwargs):
  config = _config(workspace['ws'])
  return ingest.ingest(_source(str(workspace['root'] / name), **kwargs),
                       config.data_root, progress=False)


def test_label_distribution_drift_stops_before_training(workspace):
  config = _config(workspace['ws'])
  _ingest(workspace, 'drift', seed=2, per_class=(80, 2))
  with pytest.raises(run.RunError) as error:
    run.run_pipeline(config)
  message = str(error.value)
  assert 'label distribution drift' in message
  assert 'training was not started' in message
  _assert_devices_keep(config, 1)


def _hand_made_span(config, records=()):
  """Writes the next span folder as ingest would, but with `records`."""
  span = max(ingest.list_spans(config.data_root)) + 1
  folder = os.path.join(config.data_root, f'span-{span}')
  os.makedirs(folder)
  if records:
    with tf.io.TFRecordWriter(
        os.path.join(folder, 'examples-00000.tfrecord.gz'), 'GZIP') as writer:
      for record in records:
        writer.write(record)
  with open(os.path.join(folder, ingest.REPORT_NAME), 'w') as f:
    json.dump({'span': span}, f)
  return span, folder


def test_span_missing_a_feature_stops_with_the_anomaly_named(workspace):
  config = _config(workspace['ws'])
  _hand_made_span(config, [
      tf.train.Example(features=tf.train.Features(feature={
          'label': tf.train.Feature(int64_list=tf.train.Int64List(
              value=[index % 2])),
          'filename': tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[f'{index}.png'.encode()])),
      })).SerializeToString() for index in range(40)])
  with pytest.raises(run.RunError) as error:
    run.run_pipeline(config)
  assert "feature 'image'" in str(error.value)
  _assert_devices_keep(config, 1)


def test_span_folder_without_files_is_named(workspace):
  config = _config(workspace['ws'])
  span, folder = _hand_made_span(config)
  with pytest.raises(run.RunError, match=f'span-{span} holds no example'):
    run.run_pipeline(config)
  os.remove(os.path.join(folder, ingest.REPORT_NAME))  # out of the way
  _assert_devices_keep(config, 1)


def test_blank_and_empty_spans_are_refused_at_ingestion(workspace):
  with pytest.raises(ingest.IngestError, match='no readable file'):
    _ingest(workspace, 'blank', seed=3, blank=True)
  with pytest.raises(ingest.IngestError, match='has no files'):
    _ingest(workspace, 'empty', seed=4, per_class=(0, 0))
  _assert_devices_keep(_config(workspace['ws']), 1)


def test_unwritable_pipeline_root_is_named(workspace, tmp_path):
  blocker = tmp_path / 'not_a_folder'
  blocker.write_text('x')
  config = _config(workspace['ws'], pipeline_root=str(blocker / 'tfx'))
  with pytest.raises(run.RunError, match='--pipeline-root'):
    run.run_pipeline(config)


def _start_run(workspace, extra=()):
  args = [sys.executable, '-m', 'pipeline', 'run', '--workspace',
          workspace['ws']]
  for name, value in SETTINGS.items():
    value = str(value).lower() if isinstance(value, bool) else value
    args += [f'--{name.replace("_", "-")}', str(value)]
  return subprocess.Popen(list(args) + list(extra), stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True,
                          cwd=config_lib.REPO_ROOT)


def _kill_when(process, line_start, timeout=240):
  deadline = time.time() + timeout
  seen = []
  for line in process.stdout:
    seen.append(line)
    if line.startswith(line_start):
      process.send_signal(signal.SIGKILL)
      process.wait(30)
      return
    if time.time() > deadline:
      break
  process.kill()
  pytest.fail(f'never saw {line_start!r}; the run said:\n' +
              ''.join(seen[-15:]))


def _states(summary):
  return {c['node']: c['state'] for c in summary['components']}


# Killed mid-training, after the first progress line. (A kill in the
# pusher is test_push.py's crash before LATEST moves, and
# test_tflite_pusher.py's killed upload to S3.)
@pytest.mark.parametrize('victim, marker, cached_before', [
    ('Trainer', 'train: step', 'Transform'),
])
def test_a_killed_run_is_completed_by_the_next(workspace, victim, marker,
                                               cached_before):
  config = _config(workspace['ws'])
  before = push.latest_version(config.push_destination)
  _ingest(workspace, f'good_{victim}', seed=10 + len(victim))
  process = _start_run(workspace)
  _kill_when(process, marker)
  assert process.returncode == -signal.SIGKILL
  _assert_devices_keep(config, before)

  summary = run.run_pipeline(config)  # the lock died with the process
  states = _states(summary)
  assert states[cached_before] == 'cached'
  assert states[victim] == 'ran'
  assert summary['pushed']['pushed_version'] == str(before + 1)
  _assert_devices_keep(config, before + 1)
