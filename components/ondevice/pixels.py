"""An image file's bytes to a model's pixels, as training makes them, in
NumPy and Pillow.

Training decodes a stored PNG or JPEG with TensorFlow (JPEG with the
accurate integer DCT) and resizes it to the model's square input, bilinear
with antialiasing, rounded back to 8-bit
(`components.modules.features.decode_and_resize`). A device has no
TensorFlow, so this module does the same with Pillow's decoders (libpng and
libjpeg-turbo, as TensorFlow's) and TensorFlow's resampling rule written
out: a triangle kernel widened by the scale when shrinking, sample centres
at half pixels, weights normalised, rounded half to even. Tested against
TensorFlow: the same pixels, bar a rare one level off where float sums land
on a half.
"""

import io

import numpy as np
from PIL import Image


def _decoded(data: bytes, channels: int) -> np.ndarray:
  """uint8 [height, width, channels] as TensorFlow's `decode_image` gives
  them: alpha dropped (not composited), palettes expanded, 16-bit samples
  shifted to 8, grey repeated into RGB or RGB reduced to grey."""
  image = Image.open(io.BytesIO(data))
  if channels == 1 and image.format == 'JPEG':
    image.draft('L', None)  # libjpeg's own grey, as TensorFlow asks it.
  image.load()
  if image.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
    grey = (np.asarray(image, np.uint32) >> 8).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(grey, 'L')
  if channels == 1:
    if image.mode in ('L', 'LA') or image.format == 'JPEG':
      return np.asarray(image.convert('L'), np.uint8)[..., None]
    # libpng's colour to grey, in its fixed point (the weights sum to 2^15).
    rgb = np.asarray(image.convert('RGB'), np.uint32)
    grey = (rgb[..., 0] * 9797 + rgb[..., 1] * 19234 + rgb[..., 2] * 3737
            ) >> 15
    return grey.astype(np.uint8)[..., None]
  return np.asarray(image.convert('RGB'), np.uint8)


def _weights(size_in: int, size_out: int) -> np.ndarray:
  """[size_out, size_in] resampling weights along one axis."""
  scale = size_out / size_in
  widen = max(1.0 / scale, 1.0)
  centres = (np.arange(size_out, dtype=np.float64) + 0.5) / scale
  sources = np.arange(size_in, dtype=np.float64) + 0.5
  weights = np.maximum(
      0.0, 1.0 - np.abs(sources[None, :] - centres[:, None]) / widen)
  totals = weights.sum(axis=1, keepdims=True)
  return (weights / np.where(totals > 0, totals, 1.0)).astype(np.float32)


def resize(image: np.ndarray, size: int) -> np.ndarray:
  """uint8 [h, w, c] to uint8 [size, size, c]: bilinear with antialiasing,
  rounded half to even and clipped, as training resizes."""
  rows = _weights(image.shape[0], size)
  cols = _weights(image.shape[1], size)
  values = image.astype(np.float32)
  values = np.einsum('ih,hwc->iwc', rows, values)
  values = np.einsum('jw,iwc->ijc', cols, values)
  return np.clip(np.round(values), 0, 255).astype(np.uint8)


def model_pixels(data: bytes, size: int, channels: int) -> np.ndarray:
  """A stored image's bytes (PNG or JPEG) to float32 [size, size, channels]
  pixels in 0..255, the model's input.

  Raises:
    ValueError: when the bytes cannot be decoded (Pillow's error named).
  """
  try:
    decoded = _decoded(data, channels)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'not a readable image ({type(e).__name__}: {e})') from e
  if decoded.shape[:2] != (size, size):
    decoded = resize(decoded, size)
  return decoded.astype(np.float32)
