"""Tests for the Trainer module: model, input, training loop and export."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.modules import features
from components.modules import trainer


def test_model_maps_pixels_to_one_probability():
  model = trainer.build_model(image_size=64, channels=3)
  out = model(np.random.uniform(0, 255, (5, 64, 64, 3)).astype('float32'))
  assert out.shape == (5, 1)
  assert np.all((out.numpy() >= 0) & (out.numpy() <= 1))


def test_model_is_small_enough_for_a_device():
  model = trainer.build_model()
  # About 2 MB of float32 weights; dynamic-range quantization makes it
  # about a quarter of that.
  assert 100_000 < model.count_params() < 600_000


def test_width_scales_the_model():
  assert (trainer.build_model(width=0.5).count_params() <
          trainer.build_model(width=1.0).count_params())


def test_augmentation_keeps_shape_and_pixel_range():
  images = tf.cast(tf.random.uniform([2, 32, 32, 3], 0, 255), tf.uint8)
  out = trainer.augment_batch(images)
  assert out.shape == (2, 32, 32, 3)
  assert float(tf.reduce_min(out)) >= 0 and float(tf.reduce_max(out)) <= 255


def test_augmentation_draws_a_shift_and_bands_per_image():
  tf.random.set_seed(3)
  ramp = tf.tile(tf.range(32, dtype=tf.float32)[None, :, None], [32, 1, 3])
  batch = tf.cast(tf.stack([ramp * 8] * 4), tf.uint8)
  out = trainer.augment_batch(batch).numpy()
  assert out.shape == (4, 32, 32, 3) and out.dtype == np.float32
  # Each image has its own circular shift: the first columns differ.
  assert len({tuple(image[0, :, 0]) for image in out}) == 4
  # Pixels are shifted originals or, in the masked bands, the image's mean
  # (a circular shift keeps it: the ramp 0, 8, .., 248 averages 124).
  originals = set((np.arange(32) * 8).astype(np.float32))
  for image in out:
    assert set(np.unique(image)) <= originals | {124.0}
  assert any(124.0 in image for image in out)


def test_training_learns_a_separable_problem():
  tf.keras.utils.set_random_seed(1)
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 2, 256).astype('float32')
  images = rng.uniform(0, 60, (256, 32, 32, 3)).astype('float32')
  images[labels == 1, 8:24, 8:24, :] += 180
  dataset = tf.data.Dataset.from_tensor_slices(
      (images, labels[:, None])).shuffle(256).repeat().batch(32)
  model = trainer.build_model(image_size=32, channels=3, width=0.5)
  history = trainer.train(model, dataset, steps=60, learning_rate=3e-3,
                          log_every=20)
  assert [h['step'] for h in history] == [20, 40, 60]
  assert history[-1]['loss'] < history[0]['loss']
  metrics = trainer.evaluate(
      model, tf.data.Dataset.from_tensor_slices(
          (images, labels[:, None])).batch(64))
  assert metrics['auc'] > 0.95
  assert metrics['examples'] == 256


def _serialized_example(image_bytes):
  return tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[image_bytes])),
  })).SerializeToString()


def test_export_has_both_signatures_that_agree(tmp_path):
  model = trainer.build_model(image_size=48, channels=3, width=0.5)
  export_dir = str(tmp_path / 'export')
  trainer.export_model(model, export_dir, 48, 3)
  loaded = tf.saved_model.load(export_dir)
  assert set(loaded.signatures) == {features.SERVING_EXAMPLES_SIGNATURE,
                                    features.SERVING_IMAGE_SIGNATURE}
  rng = np.random.default_rng(0)
  encoded = []
  for seed in range(3):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(
        buffer, format='PNG')
    encoded.append(buffer.getvalue())
  by_example = loaded.signatures[features.SERVING_EXAMPLES_SIGNATURE](
      examples=tf.constant([_serialized_example(e) for e in encoded]))
  pixels = features.decode_batch(tf.constant(encoded), 48, 3)
  by_image = loaded.signatures[features.SERVING_IMAGE_SIGNATURE](
      image=tf.cast(pixels, tf.float32))
  probability = by_example[features.OUTPUT_NAME].numpy()
  scores = by_image[features.SCORES_NAME].numpy()
  assert probability.shape == (3, 1) and scores.shape == (3, 2)
  np.testing.assert_allclose(scores[:, 1:], probability, rtol=1e-5)
  np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)
  image_spec = loaded.signatures[
      features.SERVING_IMAGE_SIGNATURE].structured_input_signature[1]
  assert image_spec[features.IMAGE_INPUT_NAME].shape.as_list() == [
      None, 48, 48, 3]


class _FakeTransformOutput:
  """Transform's output as make_dataset reads it: the feature spec."""


  def transformed_feature_spec(self):
    return {features.IMAGE_PNG_KEY: tf.io.FixedLenFeature([], tf.string),
            features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}


def test_make_dataset_streams_transformed_pngs(tmp_path):
  path = str(tmp_path / 'part.gz')
  with tf.io.TFRecordWriter(path, 'GZIP') as writer:
    for label in (0, 1, 1):
      png = tf.io.encode_png(tf.fill([16, 16, 3], tf.constant(label * 200,
                                                               tf.uint8)))
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.IMAGE_PNG_KEY: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[png.numpy()])),
          features.LABEL_KEY: tf.train.Feature(
              int64_list=tf.train.Int64List(value=[label])),
      })).SerializeToString())

  batches = list(trainer.make_dataset([path], _FakeTransformOutput(), 2, 16, 3,
                                      training=False))
  images = np.concatenate([b[0].numpy() for b in batches])
  labels = np.concatenate([b[1].numpy() for b in batches])
  assert images.shape == (3, 16, 16, 3) and images.dtype == np.float32
  np.testing.assert_array_equal(labels[:, 0], [0, 1, 1])
  np.testing.assert_array_equal(images[:, 0, 0, 0], [0, 200, 200])
  cache = tmp_path / 'cache'
  cache.mkdir()
  cached = trainer.make_dataset([path], _FakeTransformOutput(), 3, 16, 3,
                                training=True, cache_dir=str(cache))
  first = next(iter(cached))
  assert first[0].shape == (3, 16, 16, 3) and first[1].shape == (3, 1)
  assert sorted(first[1].numpy()[:, 0]) == [0, 1, 1]
  assert any(name.startswith('decoded') for name in os.listdir(cache))
  with pytest.raises(ValueError, match='No transformed examples'):
    trainer.make_dataset([os.path.join(str(tmp_path), 'none-*')],
                         _FakeTransformOutput(), 2, 16, 3, training=False)


def test_warm_start_loads_the_base_models_weights(tmp_path):
  base = trainer.build_model(image_size=32, channels=3, width=0.25)
  base_dir = str(tmp_path / 'base')
  trainer.export_model(base, base_dir, 32, 3)
  fresh = trainer.build_model(image_size=32, channels=3, width=0.25)
  assert trainer._warm_start_weights(fresh, base_dir)  # pylint: disable=protected-access
  for got, want in zip(fresh.get_weights(), base.get_weights()):
    np.testing.assert_array_equal(got, want)


def test_warm_start_skips_another_architecture_or_no_base(tmp_path):
  base_dir = str(tmp_path / 'base')
  trainer.export_model(trainer.build_model(image_size=32, width=0.25),
                       base_dir, 32, 3)
  wider = trainer.build_model(image_size=32, width=0.5)
  before = [w.copy() for w in wider.get_weights()]
  assert not trainer._warm_start_weights(wider, base_dir)  # pylint: disable=protected-access
  assert not trainer._warm_start_weights(wider, None)  # pylint: disable=protected-access
  for got, want in zip(wider.get_weights(), before):
    np.testing.assert_array_equal(got, want)


def test_batch_norm_recalibration_sets_the_average_of_the_batches():
  model = trainer.build_model(image_size=16, channels=3, width=0.25)
  stem = model.get_layer('stem_bn')
  momentum = stem.momentum
  batches = [tf.random.uniform([8, 16, 16, 3], 0, 255, seed=i)
             for i in range(3)]
  expected = []
  for images in batches:
    # The stem BN's input: the rescaled pixels through the stem conv.
    x = model.get_layer('stem_conv')(model.get_layer('rescale')(images))
    expected.append(tf.reduce_mean(x, axis=[0, 1, 2]).numpy())
  used = trainer.recalibrate_batch_norm(
      model, iter([(b, None) for b in batches]), count=5)
  assert used == 3
  np.testing.assert_allclose(stem.moving_mean.numpy(),
                             np.mean(expected, axis=0), rtol=1e-4, atol=1e-5)
  assert stem.momentum == momentum


def _transformed_examples(path, count, size=16):
  rng = np.random.default_rng(0)
  with tf.io.TFRecordWriter(path, 'GZIP') as writer:
    for index in range(count):
      label = index % 2
      pixels = rng.integers(0, 120, (size, size, 3)).astype(np.uint8)
      pixels[4:12, 4:12] += np.uint8(120 * label)
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.IMAGE_PNG_KEY: tf.train.Feature(
              bytes_list=tf.train.BytesList(
                  value=[tf.io.encode_png(pixels).numpy()])),
          features.LABEL_KEY: tf.train.Feature(
              int64_list=tf.train.Int64List(value=[label])),
      })).SerializeToString())


def test_a_training_run_repeats_for_a_seed(tmp_path):
  # Two files read in parallel, a parallel decode and augmentation, a
  # shuffle and dropout: the batches and the trained weights are the same
  # for the same seed, and the batches differ for another.
  for name in ('a.gz', 'b.gz'):
    _transformed_examples(str(tmp_path / name), 48)
  pattern = [str(tmp_path / '*.gz')]

  def batches(seed):
    dataset = trainer.make_dataset(pattern, _FakeTransformOutput(), 8, 16, 3,
                                   training=True, seed=seed, augment=True)
    return [images.numpy() for images, _ in dataset.take(6)]

  first, again, other = batches(3), batches(3), batches(4)
  assert all(np.array_equal(a, b) for a, b in zip(first, again))
  assert not all(np.array_equal(a, b) for a, b in zip(first, other))

  def weights():
    tf.keras.utils.set_random_seed(5)
    model = trainer.build_model(16, 3, width=0.25)
    dataset = trainer.make_dataset(pattern, _FakeTransformOutput(), 8, 16, 3,
                                   training=True, seed=5, augment=True)
    trainer.train(model, dataset, steps=12, learning_rate=3e-3,
                  log_every=12)
    return model.get_weights()

  assert all(np.array_equal(a, b) for a, b in zip(weights(), weights()))
