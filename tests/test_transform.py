"""Transform module run by tft_beam on canned examples."""

import functools
import io

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from apache_beam.testing import util as beam_util
from PIL import Image
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import schema_utils

from components.modules import features
from components.modules import transform


def _encoded(size, mode, fmt, seed):
  rng = np.random.default_rng(seed)
  channels = {'L': 1, 'RGB': 3, 'RGBA': 4}[mode]
  pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
  image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode)
  buffer = io.BytesIO()
  image.save(buffer, format=fmt)
  return buffer.getvalue()


RAW = [
    {'image': [_encoded((200, 90), 'RGB', 'PNG', 0)], 'label': [1]},
    {'image': [_encoded((33, 47), 'L', 'PNG', 1)], 'label': [0]},
    {'image': [_encoded((128, 128), 'RGBA', 'PNG', 2)], 'label': [1]},
    {'image': [_encoded((300, 300), 'RGB', 'JPEG', 3)], 'label': [0]},
]
RAW_METADATA = dataset_metadata.DatasetMetadata(
    schema_utils.schema_from_feature_spec({
        features.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
        features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
    }))


def _expected(size, channels):
  return [
      (features.decode_and_resize(tf.constant(row['image'][0]), size,
                                  channels).numpy(), row['label'][0])
      for row in RAW]


def _check(size, channels):
  expected = _expected(size, channels)

  def matches(rows):
    assert len(rows) == len(expected)
    got = sorted(((tf.io.decode_png(row[features.IMAGE_PNG_KEY],
                                    channels=channels).numpy(),
                   int(row[features.LABEL_KEY])) for row in rows),
                 key=lambda pair: pair[0].tobytes())
    want = sorted(expected, key=lambda pair: pair[0].tobytes())
    for (got_image, got_label), (want_image, want_label) in zip(got, want):
      assert got_image.shape == (size, size, channels)
      np.testing.assert_array_equal(got_image, want_image)
      assert got_label == want_label

  return matches


def _run(tmp_path, custom_config, size, channels):
  preprocessing_fn = functools.partial(transform.preprocessing_fn,
                                       custom_config=custom_config)
  with beam.Pipeline() as p:
    with tft_beam.Context(temp_dir=str(tmp_path)):
      raw = p | beam.Create(RAW)
      (transformed, _), _ = (
          (raw, RAW_METADATA)
          | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn))
      beam_util.assert_that(transformed, _check(size, channels))


def test_transform_stores_resized_pngs_equal_to_serving_decode(tmp_path):
  _run(tmp_path, None, features.DEFAULT_IMAGE_SIZE, features.DEFAULT_CHANNELS)


def test_transform_follows_image_size_and_channels_settings(tmp_path):
  _run(tmp_path, {'image_size': 32, 'channels': 1}, 32, 1)


def test_stored_png_is_smaller_than_raw_pixels():
  images = tf.constant([row['image'][0] for row in RAW])
  out = transform.preprocessing_fn(
      {features.IMAGE_KEY: tf.reshape(images, [-1, 1]),
       features.LABEL_KEY: tf.constant([[1], [0], [1], [0]], tf.int64)})
  assert out[features.IMAGE_PNG_KEY].shape == (4,)
  assert out[features.LABEL_KEY].shape == (4,)
  # A real spectrogram compresses well; even random noise stays below raw
  # float32 pixels, which the Trainer would otherwise read.
  assert all(len(png) < 128 * 128 * 3 * 4
             for png in out[features.IMAGE_PNG_KEY].numpy())


def test_the_family_passes_through_and_the_families_are_a_vocabulary(
    tmp_path):
  rows = [dict(row, family=[], kind=[]) for row in RAW]
  rows[0]['family'] = ['strings']
  rows[2]['family'] = ['brass']
  rows[3]['kind'] = ['speech']
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec({
          features.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
          features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
          features.FAMILY_KEY: tf.io.VarLenFeature(tf.string),
          features.KIND_KEY: tf.io.VarLenFeature(tf.string),
      }))
  preprocessing_fn = functools.partial(transform.preprocessing_fn,
                                       custom_config={'image_size': 16})
  output = str(tmp_path / 'out')

  def families(transformed):
    assert sorted((int(row[features.LABEL_KEY]), row[features.FAMILY_KEY])
                  for row in transformed) == [
                      (0, b''), (0, b''), (1, b'brass'), (1, b'strings')]

  with beam.Pipeline() as p:
    with tft_beam.Context(temp_dir=str(tmp_path / 'tmp')):
      raw = p | beam.Create(rows)
      (transformed, _), transform_fn = (
          (raw, metadata)
          | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn))
      beam_util.assert_that(transformed, families)
      _ = transform_fn | tft_beam.WriteTransformFn(output)
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  vocabulary = tft.TFTransformOutput(output).vocabulary_by_name(
      features.FAMILY_VOCABULARY)
  assert sorted(vocabulary) == [b'brass', b'strings']


def test_the_window_pcm_passes_through_where_ingest_kept_it(tmp_path):
  rows = [dict(row, audio_pcm=[]) for row in RAW]
  rows[0]['audio_pcm'] = [b'\x01\x00\xff\x7f']
  rows[3]['audio_pcm'] = [b'\x00\x80']
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec({
          features.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
          features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
          features.AUDIO_PCM_KEY: tf.io.VarLenFeature(tf.string),
      }))
  preprocessing_fn = functools.partial(transform.preprocessing_fn,
                                       custom_config={'image_size': 16})

  def kept(transformed):
    assert sorted(row[features.AUDIO_PCM_KEY] for row in transformed) == [
        b'', b'', b'\x00\x80', b'\x01\x00\xff\x7f']

  with beam.Pipeline() as p:
    with tft_beam.Context(temp_dir=str(tmp_path / 'tmp')):
      raw = p | beam.Create(rows)
      (transformed, _), _ = (
          (raw, metadata)
          | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn))
      beam_util.assert_that(transformed, kept)
