"""The audio front end as TensorFlow ops: raw samples in, the image out.

:class:`FrontEndGraph` builds, from a :class:`spec.FrontEnd`, the graph
that draws exactly what the NumPy front end (:func:`melscale.render`) draws
for one window, with TFLite builtin ops only: PAD, STRIDED_SLICE (the
frames), MUL (the Hann window), RFFT2D with REAL and IMAG (four frames per
transform, see :meth:`FrontEndGraph._power`), SQUARE, the mel bands, LOG,
REDUCE_MAX, clipping, the colour map and ROUND. The frames are cut from rows
of one hop of samples (slices and a concatenation), so no index table of
frames x fft_size entries is stored. Any exported model may put it in front
of its classifier: the TFLite pusher's waveform model does, and a cloud
model taking raw audio would.

The mel filterbank is 128 x 1025 floats (525 KB) as one matrix, nearly all
zeros: each FFT bin feeds at most two neighbouring bands. The graph keeps it
as groups of a few bands, each a small matrix over only the bins it reads
(33 KB in all at the default settings; the float TFLite front end is
64 KB), which is the same sum with the zeros left out. Each matrix has
fewer than 1024 weights, so dynamic-range quantization leaves them float
and the front end exact. Float16 constants do not keep it (measured on the
default front end: loud windows within 2 of 255, but noise at 1e-3 and
1e-5 of full scale drawn 91 and 240 off, with or without XNNPACK), and
neither would int8 (a mean error of about 60).

The pixel check (:func:`pixel_error`) holds the graph to the NumPy front
end on any windows, such as the test signals of :func:`probe_windows`.
"""

from typing import List, Tuple

import numpy as np
import tensorflow as tf

from components.frontend import melscale
from components.frontend.spec import FrontEnd

# The largest difference allowed between the in-graph front end's pixels
# and the NumPy front end's, on 0..255.
MAX_PIXEL_ERROR = 2.0

# The most mel bands per matrix of the banded filterbank.
MEL_GROUP = 8
# Frames per RFFT2D call (see FrontEndGraph._power).
FFT_GROUP = 4
# Dynamic-range quantization (`tf.lite.Optimize.DEFAULT`) turns the weights
# of matrices with at least 1024 elements into int8, which ruins the front
# end (a mean error of about 60 on 0..255); smaller ones stay float32.
FLOAT_WEIGHTS_BELOW = 1024


def mel_groups(front_end: FrontEnd) -> List[Tuple[int, int, np.ndarray]]:
  """The filterbank as (first bin, last bin + 1, [bins, bands]) groups of
  consecutive bands covering only the bins they read: at most
  :data:`MEL_GROUP` bands, and fewer than :data:`FLOAT_WEIGHTS_BELOW`
  weights where a band allows it, so dynamic-range quantization leaves them
  in float."""
  bank = melscale.mel_filterbank(front_end.sample_rate, front_end.fft_size,
                                 front_end.image_size, front_end.mel_min_hz,
                                 front_end.mel_top_hz)
  spans = []
  for row in bank:
    used = np.nonzero(row)[0]
    spans.append((int(used[0]), int(used[-1]) + 1) if used.size else None)
  groups, start = [], 0
  while start < len(spans):
    end = start + 1
    while end < len(spans) and end - start < MEL_GROUP:
      known = [span for span in spans[start:end + 1] if span]
      low = min(span[0] for span in known) if known else 0
      high = max(span[1] for span in known) if known else 1
      if (high - low) * (end + 1 - start) >= FLOAT_WEIGHTS_BELOW:
        break
      end += 1
    known = [span for span in spans[start:end] if span]
    low = min(span[0] for span in known) if known else 0
    high = max(span[1] for span in known) if known else 1
    groups.append((low, high, bank[start:end, low:high].T.astype(np.float32)))
    start = end
  return groups


def constant_bytes(front_end: FrontEnd) -> int:
  """Bytes of the banded filterbank's weights."""
  return sum(weights.nbytes for _, _, weights in mel_groups(front_end))


class FrontEndGraph(tf.Module):
  """The front end as TensorFlow ops: [batch, window_samples]
  float32 samples to [batch, size, size, 3] float32 pixels in 0..255
  (rounded), rows high frequencies first, as the images trained on.

  Args:
    front_end: the front end to draw (a recorded one through
      :meth:`FrontEnd.from_record`).
  """

  def __init__(self, front_end: FrontEnd):
    super().__init__(name='audio_front_end')
    self.window = front_end.window_samples
    self.fft_size = front_end.fft_size
    self.hop = front_end.frame_hop
    self.frames = front_end.image_size
    self.top_db = float(front_end.top_db)
    self.colormap = front_end.colormap
    half = self.fft_size // 2
    self.padding = (half, half + self.hop * self.frames)
    # Frame i is samples [i * hop, i * hop + fft_size) of the padded
    # window: `pieces` consecutive rows of hop samples, cut to fft_size.
    self.pieces = -(-self.fft_size // self.hop)
    # np.hanning: the symmetric Hann window the NumPy front end uses.
    self.hann = tf.constant(np.hanning(self.fft_size).astype(np.float32))
    self.groups = [(low, high, tf.constant(weights))
                   for low, high, weights in mel_groups(front_end)]
    self.anchors = tf.constant(melscale.COLORMAP_ANCHORS.astype(np.float32))

  def __call__(self, samples: tf.Tensor) -> tf.Tensor:
    padded = tf.pad(samples, [[0, 0], list(self.padding)])
    rows = self.frames + self.pieces
    padded = tf.pad(padded, [[0, 0], [0, max(
        0, rows * self.hop - (self.window + sum(self.padding)))]])
    chunks = tf.reshape(padded[:, :rows * self.hop], [-1, rows, self.hop])
    frames = tf.concat([chunks[:, j:j + self.frames]
                        for j in range(self.pieces)], axis=-1)
    frames = frames[:, :, :self.fft_size] * self.hann
    power = self._power(frames)  # [batch, frames, bins]
    mel = tf.concat([tf.matmul(power[:, :, low:high], weights)
                     for low, high, weights in self.groups], axis=-1)
    db = (10.0 / np.log(10.0)) * tf.math.log(tf.maximum(mel, 1e-12))
    db -= tf.reduce_max(db, axis=[1, 2], keepdims=True)
    values = tf.clip_by_value(db, -self.top_db, 0.0) / self.top_db + 1.0
    # [batch, frames, bands] -> rows are bands, high first; columns frames.
    values = tf.reverse(tf.transpose(values, [0, 2, 1]), axis=[1])
    return tf.round(self._colour(values))

  def _power(self, frames: tf.Tensor) -> tf.Tensor:
    """|rfft(frame)|^2 of every frame, [batch, frames, bins].

    TFLite's RFFT2D pays a fixed cost per transform, so frames go four at
    a time through one 4 x fft_size real 2-D FFT; a 4-point inverse DFT
    across the four rows, whose twiddles are 1, i, -1 and -i (sums and
    differences only), gives each frame's own spectrum back exactly.
    """
    if self.frames % FFT_GROUP:
      spectrum = tf.signal.rfft(frames, fft_length=[self.fft_size])
      return tf.square(tf.abs(spectrum))
    grouped = tf.reshape(frames, [-1, self.frames // FFT_GROUP, FFT_GROUP,
                                  self.fft_size])
    spectrum = tf.signal.rfft2d(grouped, fft_length=[FFT_GROUP,
                                                     self.fft_size])
    a, b = tf.math.real(spectrum), tf.math.imag(spectrum)
    a0, a1, a2, a3 = (a[:, :, k] for k in range(FFT_GROUP))
    b0, b1, b2, b3 = (b[:, :, k] for k in range(FFT_GROUP))
    even_a, odd_a = a0 + a2, a0 - a2
    even_b, odd_b = b0 + b2, b0 - b2
    parts = [(even_a + (a1 + a3), even_b + (b1 + b3)),   # frame 4j
             (odd_a - (b1 - b3), odd_b + (a1 - a3)),     # frame 4j + 1
             (even_a - (a1 + a3), even_b - (b1 + b3)),   # frame 4j + 2
             (odd_a + (b1 - b3), odd_b - (a1 - a3))]     # frame 4j + 3
    power = tf.stack([tf.square(re) + tf.square(im) for re, im in parts],
                     axis=2) * (1.0 / FFT_GROUP ** 2)
    return tf.reshape(power, [-1, self.frames, self.fft_size // 2 + 1])

  def _colour(self, values: tf.Tensor) -> tf.Tensor:
    if self.colormap == 'gray':
      grey = values[..., None] * 255.0
      return tf.concat([grey, grey, grey], axis=-1)
    # Linear interpolation between the anchors, as np.interp does: a hat
    # function per anchor, weighted by its colour.
    steps = self.anchors.shape[0] - 1
    position = values[..., None] * float(steps)
    hats = tf.maximum(0.0, 1.0 - tf.abs(
        position - tf.range(steps + 1, dtype=tf.float32)))
    shape = tf.shape(values)
    colours = tf.matmul(tf.reshape(hats, [-1, steps + 1]), self.anchors)
    return tf.reshape(colours, tf.concat([shape, [3]], axis=0))


def probe_windows(front_end: FrontEnd) -> List[np.ndarray]:
  """Test signals at the front end's rate, one window each: a harmonic
  tone, a quiet band of noise, a click train, a tone that stops halfway
  (the padding case) and silence."""
  rate, size = front_end.sample_rate, front_end.window_samples
  t = np.arange(size) / rate
  rng = np.random.default_rng(0)
  tone = sum(np.sin(2 * np.pi * 220.0 * k * t) / k for k in range(1, 8)
             if 220.0 * k < rate / 2)
  noise = rng.standard_normal(size) * 1e-3
  clicks = np.zeros(size)
  clicks[::max(1, rate // 20)] = 0.8
  half = np.where(t < t[-1] / 2, 0.5 * np.sin(2 * np.pi * 440.0 * t), 0.0)
  return [0.3 * tone / np.abs(tone).max(), noise, clicks, half,
          np.zeros(size)]


def pixel_error(front_end: FrontEnd, windows: np.ndarray,
                batch: int = 32) -> float:
  """The largest difference, on 0..255, between the in-graph front end's
  pixels and the NumPy front end's on `windows` ([n, window_samples]),
  drawn `batch` windows at a time. The pixels are those of the front end's
  graph before conversion; a converted model answers for itself through
  its scores."""
  drawing = FrontEndGraph(front_end)
  graph = tf.function(drawing.__call__, input_signature=[
      tf.TensorSpec([None, drawing.window], tf.float32)])
  windows = np.asarray(windows, np.float32)
  error = 0.0
  for start in range(0, len(windows), batch):
    part = windows[start:start + batch]
    drawn = graph(tf.constant(part)).numpy()
    expected = np.stack([melscale.render(window, front_end)
                         for window in part])
    error = max(error, float(np.abs(drawn - expected.astype(np.float32))
                             .max()))
  return error
