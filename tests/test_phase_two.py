"""Phase two's module code: its labels, its training on families, and the
SavedModel it exports (the signatures TFMA and a model server read)."""

import io
import json
import os
import types
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.modules import features
from components.modules import phase_two
from components.modules import trainer
from components.modules.settings import TrainingSettings

SIZE = 16
FAMILIES = ('bass', 'piano')
# (label, family) of the canned examples; the last kind is a positive
# example in no family folder.
ROWS = [(0, ''), (1, 'bass'), (1, 'piano'), (1, '')]


def _pixels(label, family, rng):
  """A class-0 image is dark; a family lights its own quarter."""
  pixels = rng.integers(0, 60, (SIZE, SIZE, 3)).astype(np.uint8)
  if label:
    row = {'bass': 0, 'piano': 8, '': 4}[family]
    pixels[row:row + 8, 4:12] += np.uint8(180)
  return pixels


def _feature(value):
  if isinstance(value, bytes):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _write_transformed(path, count, seed=0):
  rng = np.random.default_rng(seed)
  with tf.io.TFRecordWriter(path, 'GZIP') as writer:
    for index in range(count):
      label, family = ROWS[index % len(ROWS)]
      png = tf.io.encode_png(_pixels(label, family, rng)).numpy()
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.IMAGE_PNG_KEY: _feature(png),
          features.LABEL_KEY: _feature(label),
          features.FAMILY_KEY: _feature(family.encode()),
      })).SerializeToString())


def _raw_example(label, family, rng):
  buffer = io.BytesIO()
  Image.fromarray(_pixels(label, family, rng)).save(buffer, format='PNG')
  feature = {features.IMAGE_KEY: _feature(buffer.getvalue()),
             features.LABEL_KEY: _feature(label)}
  if family:
    feature[features.FAMILY_KEY] = _feature(family.encode())
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


class _TransformOutput:
  """Transform's output as phase two reads it: the feature spec and the
  families' vocabulary."""

  def __init__(self, vocabulary):
    self._vocabulary = vocabulary

  def transformed_feature_spec(self):
    return {features.IMAGE_PNG_KEY: tf.io.FixedLenFeature([], tf.string),
            features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
            features.FAMILY_KEY: tf.io.FixedLenFeature([], tf.string)}

  def vocabulary_by_name(self, name):
    assert name == features.FAMILY_VOCABULARY
    return list(self._vocabulary)


def test_the_labels_are_the_reject_class_then_each_family():
  labels = trainer.phase_two_labels(FAMILIES)
  found = labels({features.LABEL_KEY: tf.constant([0, 0, 1, 1, 1, 1],
                                                  tf.int64),
                  features.FAMILY_KEY: tf.constant(
                      ['', 'bass', 'bass', 'piano', '', 'organ'])})
  assert found.numpy().tolist() == [0, 0, 1, 2, -1, -1]
  assert phase_two.class_names('not_instrument', FAMILIES) == [
      'not_instrument', 'bass', 'piano']


def test_the_families_are_the_vocabulary_without_tfts_placeholder():
  assert phase_two.families_of(_TransformOutput([b'piano', b'bass'])) == [
      'bass', 'piano']
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  _, placeholder = tft.analyzers.get_empy_vocabulary_dummy_value(tf.string)
  assert phase_two.families_of(_TransformOutput([placeholder])) == []


def test_a_positive_example_of_no_family_is_left_out_of_the_data(tmp_path):
  path = str(tmp_path / 'part.gz')
  _write_transformed(path, 8)
  batches = list(trainer.make_dataset(
      [path], _TransformOutput([]), 4, SIZE, 3, training=False,
      families=FAMILIES))
  labels = np.concatenate([labels.numpy() for _, labels in batches])
  assert labels.dtype == np.int32
  assert labels.tolist() == [0, 1, 2, 0, 1, 2]


def _fn_args(tmp_path, vocabulary, steps=100):
  for split, count, seed in (('train', 96, 0), ('eval', 32, 1)):
    os.makedirs(tmp_path / split, exist_ok=True)
    _write_transformed(str(tmp_path / split / 'part.gz'), count, seed)
  settings = TrainingSettings(
      image_size=SIZE, channels=3, batch_size=16, learning_rate=3e-3,
      width=0.25, seed=0, augment=False, warm_start=False,
      class_names=('not_instrument', 'instrument'))
  return types.SimpleNamespace(
      custom_config=settings.to_custom_config(),
      transform_output=_TransformOutput(vocabulary),
      train_files=[str(tmp_path / 'train' / '*.gz')],
      eval_files=[str(tmp_path / 'eval' / '*.gz')],
      train_steps=steps, eval_steps=0,
      model_run_dir=str(tmp_path / 'run'),
      serving_model_dir=str(tmp_path / 'serving'))


def _run_fn(args):
  # The canned output stands in for the transform graph's folder.
  with mock.patch.object(phase_two.tft, 'TFTransformOutput',
                         side_effect=lambda out: out):
    phase_two.run_fn(args)


def test_run_fn_learns_the_families_and_exports_what_tfma_reads(tmp_path):
  _run_fn(_fn_args(tmp_path, [b'piano', b'bass']))
  with open(tmp_path / 'run' / 'history.json', encoding='utf-8') as f:
    history = json.load(f)
  assert history['classes'] == ['not_instrument', 'bass', 'piano']
  # The three classes are easy to tell apart; the no-family examples are
  # left out of the 32 eval examples.
  assert history['eval']['examples'] == 24
  assert history['eval']['accuracy'] > 0.9
  assert (tmp_path / 'serving' / 'assets.extra' / 'labels.txt').read_text(
  ).split() == history['classes']

  loaded = tf.saved_model.load(str(tmp_path / 'serving'))
  assert set(loaded.signatures) == {
      features.SERVING_EXAMPLES_SIGNATURE, features.SERVING_IMAGE_SIGNATURE,
      phase_two.TRANSFORM_FEATURES_SIGNATURE}
  rng = np.random.default_rng(5)
  rows = ROWS * 6
  raw = tf.constant([_raw_example(label, family, rng)
                     for label, family in rows])
  answer = loaded.signatures[features.SERVING_EXAMPLES_SIGNATURE](
      examples=raw)
  scores = answer[features.SCORES_NAME].numpy()
  assert scores.shape == (len(rows), 3)
  np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
  assert answer[features.CLASSES_NAME].numpy()[0].tolist() == [
      b'not_instrument', b'bass', b'piano']
  known = [index for index, (_, family) in enumerate(rows)
           if family or not rows[index][0]]
  expected = [('', 'bass', 'piano').index(rows[i][1]) for i in known]
  assert np.mean(np.argmax(scores[known], axis=1) == expected) > 0.8
  truth = loaded.signatures[phase_two.TRANSFORM_FEATURES_SIGNATURE](
      examples=raw)
  assert truth[phase_two.LABEL_KEY].numpy().tolist() == [0, 1, 2, 0] * 6
  assert truth[phase_two.WEIGHT_KEY].numpy().tolist() == [1, 1, 1, 0] * 6


def test_run_fn_refuses_examples_without_families(tmp_path):
  with pytest.raises(phase_two.NoFamiliesError, match='no family to learn'):
    _run_fn(_fn_args(tmp_path, [], steps=1))


# Phase two on recordings: half-second windows of 16 kHz PCM.
WINDOW = 8000


def _samples(label, family, rng):
  """Noise for class 0; a low hum for bass, a bright tone for piano."""
  t = np.arange(WINDOW) / 16000.0
  if not label:
    return 0.3 * rng.standard_normal(WINDOW)
  f0 = {'bass': 70.0, 'piano': 880.0, '': 300.0}[family] * rng.uniform(
      0.9, 1.1)
  tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
  return 0.2 * tone * np.exp(-t * rng.uniform(1, 4))


def _pcm(samples):
  return np.clip(np.round(samples * 32768), -32768, 32767).astype(
      '<i2').tobytes()


class _AudioTransformOutput(_TransformOutput):

  def transformed_feature_spec(self):
    return dict(super().transformed_feature_spec(), **{
        features.AUDIO_PCM_KEY: tf.io.FixedLenFeature([], tf.string)})


def _audio_fn_args(tmp_path, encoder=('MSD_musicnn',)):
  windows = {}
  for split, count, seed in (('train', 48, 0), ('eval', 16, 1)):
    rng = np.random.default_rng(seed)
    os.makedirs(tmp_path / split, exist_ok=True)
    with tf.io.TFRecordWriter(str(tmp_path / split / 'part.gz'),
                              'GZIP') as writer:
      for index in range(count):
        label, family = ROWS[index % len(ROWS)]
        samples = _samples(label, family, rng)
        windows.setdefault(split, []).append((label, family, samples))
        png = tf.io.encode_png(_pixels(label, family, rng)).numpy()
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            features.IMAGE_PNG_KEY: _feature(png),
            features.LABEL_KEY: _feature(label),
            features.FAMILY_KEY: _feature(family.encode()),
            features.AUDIO_PCM_KEY: _feature(_pcm(samples)),
        })).SerializeToString())
  settings = TrainingSettings(
      image_size=SIZE, channels=3, batch_size=16, learning_rate=3e-3,
      width=0.25, seed=0, augment=False, warm_start=False,
      class_names=('not_instrument', 'instrument'), encoder=encoder)
  return types.SimpleNamespace(
      custom_config=settings.to_custom_config(),
      transform_output=_AudioTransformOutput([b'piano', b'bass']),
      train_files=[str(tmp_path / 'train' / '*.gz')],
      eval_files=[str(tmp_path / 'eval' / '*.gz')],
      train_steps=60, eval_steps=0,
      model_run_dir=str(tmp_path / 'run'),
      serving_model_dir=str(tmp_path / 'serving')), windows


def test_phase_two_hears_the_windows_samples_through_musicnn(tmp_path):
  args, windows = _audio_fn_args(tmp_path)
  _run_fn(args)
  with open(tmp_path / 'run' / 'history.json', encoding='utf-8') as f:
    history = json.load(f)
  assert history['hears'] == ['MSD_musicnn']
  assert history['window_samples'] == WINDOW
  assert history['train_windows'] == 36  # the no-family windows left out
  assert history['eval']['examples'] == 12
  assert history['eval']['accuracy'] > 0.9

  loaded = tf.saved_model.load(str(tmp_path / 'serving'))
  assert set(loaded.signatures) == {
      features.SERVING_EXAMPLES_SIGNATURE,
      features.SERVING_WAVEFORM_SIGNATURE,
      phase_two.TRANSFORM_FEATURES_SIGNATURE}
  rows = windows['eval']
  raw = tf.constant([tf.train.Example(features=tf.train.Features(feature={
      features.AUDIO_PCM_KEY: _feature(_pcm(samples)),
      features.LABEL_KEY: _feature(label)})).SerializeToString()
                     for label, _, samples in rows])
  by_example = loaded.signatures[features.SERVING_EXAMPLES_SIGNATURE](
      examples=raw)[features.SCORES_NAME].numpy()
  pcm = np.stack([np.frombuffer(_pcm(samples), '<i2') / 32768.0
                  for _, _, samples in rows]).astype(np.float32)
  by_samples = loaded.signatures[features.SERVING_WAVEFORM_SIGNATURE](
      **{features.WAVEFORM_INPUT_NAME: tf.constant(pcm)})
  np.testing.assert_allclose(by_example, by_samples[features.SCORES_NAME],
                             atol=1e-5)
  assert by_samples[features.CLASSES_NAME].numpy()[0].tolist() == [
      b'not_instrument', b'bass', b'piano']
  known = [i for i, (label, family, _) in enumerate(rows)
           if family or not label]
  expected = [('', 'bass', 'piano').index(rows[i][1]) for i in known]
  assert np.mean(np.argmax(by_example[known], axis=1) == expected) > 0.9
  # An example without samples is silence, not an error.
  silent = loaded.signatures[features.SERVING_EXAMPLES_SIGNATURE](
      examples=tf.constant([b'']))[features.SCORES_NAME].numpy()
  assert silent.shape == (1, 3)


def test_phase_two_learns_from_pictures_when_told_to(tmp_path):
  args, _ = _audio_fn_args(tmp_path, encoder=())
  args.train_steps = 5
  _run_fn(args)
  with open(tmp_path / 'run' / 'history.json', encoding='utf-8') as f:
    assert json.load(f)['hears'] == 'pictures'
  assert features.SERVING_IMAGE_SIGNATURE in tf.saved_model.load(
      str(tmp_path / 'serving')).signatures


def test_windows_without_samples_are_left_out_and_counted(capsys):
  from components.modules import phase_two_audio  # pylint: disable=import-outside-toplevel

  class _Encoder:
    size = 2

    def __call__(self, samples):
      return tf.stack([tf.reduce_mean(samples, axis=1),
                       tf.reduce_max(samples, axis=1)], axis=1)

  samples = tf.constant([[0.1, 0.3], [0.0, 0.0], [0.5, 0.5]])
  dataset = tf.data.Dataset.from_tensors(
      (samples, tf.constant([0, 1, 2]), tf.constant([True, False, True])))
  embedded, labels = phase_two_audio.embed(_Encoder(), dataset, 'train')
  # Kept as float16: a split of sequences is large.
  assert embedded.dtype == np.float16
  np.testing.assert_allclose(embedded, [[0.2, 0.3], [0.5, 0.5]], atol=1e-3)
  assert labels.tolist() == [0, 2]
  assert ('phase two: train: 1 windows kept no samples'
          in capsys.readouterr().out)
