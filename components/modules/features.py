"""Feature names, defaults and the image decoding shared by every stage.

This is the single source of truth for the raw `tf.Example` layout written by
ingestion, the transformed layout written by Transform, and the decode-and-
resize step. Transform, Trainer (training input and serving signatures), the
TFLite pusher and `predict` all call :func:`decode_and_resize`, so an image
is turned into pixels the same way at training and at serving time.

This file lives in the module folder: the pipeline fingerprints every
``.py`` file there into the Transform, Trainer and model search cache keys
(`pipeline.pipeline_def.UserCode`), so keep the folder minimal.

TensorFlow is imported inside the functions: the command line reads the
names and defaults here without the seconds that loading it takes.
"""

from __future__ import annotations

from typing import Sequence

# Raw tf.Example features written by `python -m pipeline ingest`.
IMAGE_KEY = 'image'
LABEL_KEY = 'label'
FILENAME_KEY = 'filename'
# A window of a recording: its start in the source file, in seconds.
WINDOW_START_KEY = 'window_start'
# On every window of a recording (`keep_window_samples`; else a bounded
# sample, `proof_windows`): the window's mono samples at the front end's
# rate, zero-padded, as little-endian int16 PCM (what a device's microphone
# hands over). Phase two hears them; the pusher proves the waveform model
# on the eval split's.
AUDIO_PCM_KEY = 'audio_pcm'
# The sub-folder of its class folder an example's file lies in: for the
# positive class (label 1), its family (`instrument/piano/...`: `piano`),
# the label phase two learns; for class 0, its kind of sound
# (`not_instrument/speech/...`), recorded but never a label. Absent for a
# file directly in its class folder.
FAMILY_KEY = 'family'
KIND_KEY = 'kind'
# The vocabulary file of the families Transform found (phase two's classes
# are the reject class, then these, sorted).
FAMILY_VOCABULARY = 'family'
# Phase two's SavedModels answer `scores` and the class names in score
# order (`classes`), and carry those names, one a line, in a labels file
# under TF Serving's folder for extra files.
CLASSES_NAME = 'classes'
ASSETS_EXTRA = 'assets.extra'
LABELS_FILE = 'labels.txt'
# Longest family or kind name: it becomes a line of a labels file.
MAX_GROUP_NAME = 64

# Numeric summaries of each source image, recorded by ingestion so that the
# schema can bound them and spans can be compared; the model does not read
# them. Width and height are the source's own; the pixel figures are over
# the luminance of the stored image, 0..255.
IMAGE_WIDTH_KEY = 'image_width'
IMAGE_HEIGHT_KEY = 'image_height'
PIXEL_MEAN_KEY = 'pixel_mean'
PIXEL_STD_KEY = 'pixel_std'
SATURATED_SHARE_KEY = 'saturated_share'  # share of pixels at 0 or 255
SOURCE_FORMAT_KEY = 'source_format'  # PNG, JPEG, BMP, WEBP, ..., WAV

# Transformed features written by Transform and read by the Trainer.
IMAGE_PNG_KEY = 'image_png'

DEFAULT_CLASS_NAMES = ('not_instrument', 'instrument')
DEFAULT_IMAGE_SIZE = 128
DEFAULT_CHANNELS = 3

# Names of the exported SavedModel signatures.
SERVING_EXAMPLES_SIGNATURE = 'serving_default'
SERVING_IMAGE_SIGNATURE = 'serving_image'
IMAGE_INPUT_NAME = 'image'
# Phase two on recordings: a window of float samples in, at the front
# end's rate.
SERVING_WAVEFORM_SIGNATURE = 'serving_waveform'
WAVEFORM_INPUT_NAME = 'samples'
# serving_default returns the probability of class 1, shape [batch, 1]
# (what TFMA reads); serving_image returns both classes' probabilities,
# shape [batch, 2] in class-name order (what image classifiers on a device,
# and the TFLite Task Library, expect).
OUTPUT_NAME = 'probability'
SCORES_NAME = 'scores'


def decode_and_resize(encoded: tf.Tensor, image_size: int,
                      channels: int) -> tf.Tensor:
  """Decodes one PNG or JPEG and resizes it to the model's square input.

  The format is detected from the bytes, not the file name; JPEG is decoded
  with the accurate integer DCT. `components.ondevice.pixels` does the same
  without TensorFlow. Grayscale images
  are repeated into RGB and alpha is dropped when `channels` is 3. Resizing is
  bilinear with antialiasing, so large images are averaged rather than
  aliased, and the result is rounded back to 8-bit pixels.

  Args:
    encoded: scalar `tf.string` with the encoded image.
    image_size: side of the square output in pixels.
    channels: 1 (grayscale) or 3 (RGB).

  Returns:
    A `tf.uint8` tensor of shape [image_size, image_size, channels].
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # JPEG with libjpeg's accurate integer DCT, not TensorFlow's default fast
  # one: the one a device's decoder (Pillow, Android's) uses, so a device
  # decodes a JPEG to the pixels trained on.
  image = tf.cond(
      tf.io.is_jpeg(encoded),
      lambda: tf.io.decode_jpeg(encoded, channels=channels,
                                dct_method='INTEGER_ACCURATE'),
      lambda: tf.io.decode_image(encoded, channels=channels,
                                 expand_animations=False, dtype=tf.uint8))
  image.set_shape([None, None, channels])
  image = tf.image.resize(image, [image_size, image_size],
                          method=tf.image.ResizeMethod.BILINEAR,
                          antialias=True)
  image = tf.clip_by_value(tf.round(image), 0.0, 255.0)
  image = tf.cast(image, tf.uint8)
  image.set_shape([image_size, image_size, channels])
  return image


def decode_batch(encoded: tf.Tensor, image_size: int,
                 channels: int) -> tf.Tensor:
  """Applies :func:`decode_and_resize` to a batch of encoded images.

  Args:
    encoded: `tf.string` tensor of shape [batch] or [batch, 1].
    image_size: side of the square output in pixels.
    channels: 1 or 3.

  Returns:
    A `tf.uint8` tensor of shape [batch, image_size, image_size, channels].
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  encoded = tf.reshape(encoded, [-1])
  return tf.map_fn(
      lambda e: decode_and_resize(e, image_size, channels), encoded,
      fn_output_signature=tf.TensorSpec([image_size, image_size, channels],
                                        tf.uint8))


def named_scores(names: Sequence[str]):
  """A function of [batch, classes] scores to what every signature of a
  multi-class model (phase two) answers: the `scores` and each row's class
  names (`classes`, in score order)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  classes = tf.constant(list(names), tf.string)

  def answer(scores):
    batch = tf.shape(scores)[0]
    return {SCORES_NAME: scores,
            CLASSES_NAME: tf.tile(classes[None, :], [batch, 1])}

  return answer


def decode_pcm(data: tf.Tensor, window_samples: int) -> tf.Tensor:
  """[batch] strings of 16-bit little-endian PCM (`AUDIO_PCM_KEY`) to
  float32 [batch, window_samples] in -1..1, each cut or zero-padded to the
  window (an empty string is silence)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  values = tf.io.decode_raw(data, tf.int16, little_endian=True,
                            fixed_length=2 * window_samples)
  return tf.cast(values, tf.float32) / 32768.0
