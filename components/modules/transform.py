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
    `image_png` ([batch] string, resized PNGs) and `label` ([batch] int64).
  """
  config = custom_config or {}
  image_size = int(config.get('image_size', features.DEFAULT_IMAGE_SIZE))
  channels = int(config.get('channels', features.DEFAULT_CHANNELS))
  images = features.decode_batch(inputs[features.IMAGE_KEY], image_size,
                                 channels)
  pngs = tf.map_fn(tf.io.encode_png, images,
                   fn_output_signature=tf.TensorSpec([], tf.string))
  return {
      features.IMAGE_PNG_KEY: pngs,
      features.LABEL_KEY: tf.reshape(inputs[features.LABEL_KEY], [-1]),
  }
