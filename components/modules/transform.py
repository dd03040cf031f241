"""Transform module: decode, resize and compactly store the training images.

TFX calls :func:`preprocessing_fn` by its dotted name (``preprocessing_fn=``).
Each raw image (any size, PNG or JPEG) is decoded and resized to the model's
square input once, here, and stored as a lossless PNG: under half the bytes
of raw pixels on the default data (about 0.4), and a tenth of float32
pixels, while the Trainer decodes it
in a parallel `tf.data` map. Scaling to [0, 1] happens inside the model, so
the same model accepts 0..255 pixels on a device and in the TFLite converter.
"""

from typing import Any, Dict, Optional

import tensorflow as tf
import tensorflow_transform as tft

from components.modules import features


def preprocessing_fn(inputs: Dict[str, tf.Tensor],
                     custom_config: Optional[Dict[str, Any]] = None
                     ) -> Dict[str, tf.Tensor]:
  """Maps a batch of raw examples to transformed features.

  Args:
    inputs: batch of raw features; `image` is a [batch, 1] string tensor of
      encoded images and `label` a [batch, 1] int64 tensor.
    custom_config: optional `image_size` and `channels`; defaults come from
      `features`.

  Returns:
    `image_png` ([batch] string, resized PNGs), `label` ([batch] int64),
    `family` ([batch] string, '' for an example of no family) and, where
    the schema has it, `audio_pcm` ([batch] string: the window's 16-bit
    PCM as ingest kept it, '' where it kept none), the raw window phase two
    computes its own features from. The
    families found are also written as the vocabulary `family`
    (`features.FAMILY_VOCABULARY`), so phase two's Trainer knows its
    classes from the transform graph.
  """
  config = custom_config or {}
  image_size = int(config.get('image_size', features.DEFAULT_IMAGE_SIZE))
  channels = int(config.get('channels', features.DEFAULT_CHANNELS))
  images = features.decode_batch(inputs[features.IMAGE_KEY], image_size,
                                 channels)
  pngs = tf.map_fn(tf.io.encode_png, images,
                   fn_output_signature=tf.TensorSpec([], tf.string))
  family = inputs.get(features.FAMILY_KEY)
  if family is None:  # a schema from before families were recorded
    families = tf.fill(tf.shape(pngs), '')
  else:
    tft.vocabulary(family, vocab_filename=features.FAMILY_VOCABULARY)
    families = tf.reshape(tft.sparse_tensor_to_dense_with_shape(
        family, [None, 1], default_value=''), [-1])
  found = {
      features.IMAGE_PNG_KEY: pngs,
      features.LABEL_KEY: tf.reshape(inputs[features.LABEL_KEY], [-1]),
      features.FAMILY_KEY: families,
  }
  pcm = inputs.get(features.AUDIO_PCM_KEY)
  if pcm is not None:
    found[features.AUDIO_PCM_KEY] = tf.reshape(
        tft.sparse_tensor_to_dense_with_shape(pcm, [None, 1],
                                              default_value=''), [-1])
  return found
