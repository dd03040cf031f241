"""The audio front end inside the model: raw samples in, the image out.

:class:`FrontEnd` builds, from a recorded front end (the record
`pipeline/data/frontend.py` writes with every span and the manifest), the
TensorFlow graph that draws exactly what the NumPy front end draws for one
window, with TFLite builtin ops only: PAD, STRIDED_SLICE (the frames), MUL
(the Hann window), RFFT2D with REAL and IMAG (four frames per transform,
see :meth:`FrontEnd._power`), SQUARE, the mel bands, LOG, REDUCE_MAX,
clipping, the colour map and ROUND. The frames are cut from rows of one
hop of samples (slices and a concatenation), so no index table of frames x
fft_size entries is stored.

The mel filterbank is 128 x 1025 floats (525 KB) as one matrix, nearly all
zeros: each FFT bin feeds at most two neighbouring bands. The graph keeps it
as groups of a few bands, each a small matrix over only the bins it reads
(33 KB in all at the default settings; the float TFLite front end is
64 KB), which is the same sum with the zeros left out. Each matrix has
fewer than 1024 weights, so dynamic-range quantization leaves them float
and the front end exact. Float16 constants do not keep it (measured on the
default front end: loud windows within 2 of 255, but noise at 1e-3 and
1e-5 of full scale drawn 91 and 240 off, with or without XNNPACK), and
neither would int8 (a mean error of about 60). In `int8` mode every node in the front end's name scope is kept
out of quantization by name, so only the classifier is int8; `float16`
has no such choice and gets no waveform model.

The waveform model's input is one window of mono float32 samples at the
front end's rate; a shorter clip is padded with zeros at the end by the
caller, as the front end pads it (MediaPipe's AudioClassifier does).
"""

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from components.common import melscale
from components.tflite import conversion
from components.tflite import Quantization

# The most mel bands per matrix of the banded filterbank.
MEL_GROUP = 8
# Frames per RFFT2D call (see FrontEnd._power).
FFT_GROUP = 4
# Dynamic-range quantization (`tf.lite.Optimize.DEFAULT`) turns the weights
# of matrices with at least 1024 elements into int8, which ruins the front
# end (a mean error of about 60 on 0..255); smaller ones stay float32.
FLOAT_WEIGHTS_BELOW = 1024


def mel_groups(record: Dict[str, Any]) -> List[Tuple[int, int, np.ndarray]]:
  """The filterbank as (first bin, last bin + 1, [bins, bands]) groups of
  consecutive bands covering only the bins they read: at most
  :data:`MEL_GROUP` bands, and fewer than :data:`FLOAT_WEIGHTS_BELOW`
  weights where a band allows it, so dynamic-range quantization leaves them
  in float."""
  bank = melscale.mel_filterbank(int(record['sample_rate']),
                                 int(record['fft_size']),
                                 int(record['mel_bands']),
                                 float(record['mel_min_hz']),
                                 float(record['mel_max_hz']))
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


def constant_bytes(record: Dict[str, Any]) -> int:
  """Bytes of the banded filterbank's weights."""
  return sum(weights.nbytes for _, _, weights in mel_groups(record))


class FrontEnd(tf.Module):
  """The recorded front end as TensorFlow ops: [batch, window_samples]
  float32 samples to [batch, size, size, 3] float32 pixels in 0..255
  (rounded), rows high frequencies first, as the images trained on.

  Args:
    record: a recorded front end (`manifest['input']['audio_front_end']`).
  """

  def __init__(self, record: Dict[str, Any]):
    super().__init__(name='audio_front_end')
    self.window = int(record['window_samples'])
    self.fft_size = int(record['fft_size'])
    self.hop = int(record['frame_hop_samples'])
    self.frames = int(record['frames'])
    self.top_db = float(record['top_db'])
    self.colormap = str(record['colormap'])
    half = self.fft_size // 2
    self.padding = (half, half + self.hop * self.frames)
    # Frame i is samples [i * hop, i * hop + fft_size) of the padded
    # window: `pieces` consecutive rows of hop samples, cut to fft_size.
    self.pieces = -(-self.fft_size // self.hop)
    # np.hanning: the symmetric Hann window the NumPy front end uses.
    self.hann = tf.constant(np.hanning(self.fft_size).astype(np.float32))
    self.groups = [(low, high, tf.constant(weights))
                   for low, high, weights in mel_groups(record)]
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


# The quantization modes whose waveform model keeps the front end exact:
# `none`; `dynamic` (its matrices stay float, see mel_groups); and `int8`,
# whose calibration keeps every node of the front end's name scope out of
# quantization by name (the converter's selective quantization). Float16
# turns every float constant into float16, and the converter has no
# per-node choice for it.
WAVEFORM_MODES = (Quantization.NONE.value, Quantization.DYNAMIC.value,
                  Quantization.INT8.value)
# The name scope of the front end's nodes in the waveform graph.
FRONT_END_SCOPE = 'audio_front_end'


class WaveformError(RuntimeError):
  """Raised when a waveform model cannot be built; says why."""


def convert(saved_model_dir: str, record: Dict[str, Any], mode: str,
            channels: int = 3,
            representative: Optional[np.ndarray] = None) -> bytes:
  """The waveform model as TFLite: one window of mono float32 samples at
  the front end's rate in ([1, window_samples], named `samples`), the
  classes' probabilities out ([1, classes], float32), the front end inside
  in float and the classifier (the SavedModel's `serving_image`) quantized
  as `mode` says.

  Args:
    saved_model_dir: the trained SavedModel.
    record: the recorded front end.
    mode: one of :data:`WAVEFORM_MODES`.
    channels: the classifier's image channels (1: grey).
    representative: for `int8`, windows of samples ([n, window_samples])
      the classifier's ranges are calibrated on (default: the probe
      windows, a poorer calibration).

  Raises:
    WaveformError: for a mode in which the front end would not survive
      quantization, or a failed conversion.
  """
  from components.modules import features  # pylint: disable=g-import-not-at-top
  if mode not in WAVEFORM_MODES:
    raise WaveformError(
        f'no waveform model in {mode} mode: quantizing the front end with '
        f'the classifier would ruin it; modes with one: '
        f'{", ".join(WAVEFORM_MODES)}')
  loaded = tf.saved_model.load(saved_model_dir)
  classify = loaded.signatures[features.SERVING_IMAGE_SIGNATURE]
  front_end = FrontEnd(record)

  class Waveform(tf.Module):
    """Samples to scores."""

    def __init__(self):
      super().__init__(name='waveform')
      self.front_end = front_end
      self.classify = classify

    @tf.function(input_signature=[tf.TensorSpec(
        [1, front_end.window], tf.float32, name='samples')])
    def __call__(self, samples):
      with tf.name_scope(FRONT_END_SCOPE):
        image = self.front_end(samples)
        if channels == 1:
          image = tf.round(tf.image.rgb_to_grayscale(image))
      return {features.SCORES_NAME: self.classify(
          **{features.IMAGE_INPUT_NAME: image})[features.SCORES_NAME]}

  module = Waveform()

  def converter():
    return tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module)

  try:
    if mode == Quantization.INT8:
      return _selective_int8(converter, front_end, record, representative)
    chosen = converter()
    if mode == Quantization.DYNAMIC:
      chosen.optimizations = [tf.lite.Optimize.DEFAULT]
    return chosen.convert()
  except Exception as e:  # pylint: disable=broad-except
    raise WaveformError(f'waveform conversion ({mode}) of {saved_model_dir} '
                        f'failed: {e}') from e


def _selective_int8(converter, front_end: 'FrontEnd', record: Dict[str, Any],
                    representative: Optional[np.ndarray]) -> bytes:
  """Full-integer quantization of the classifier only: every node of
  :data:`FRONT_END_SCOPE` (found in the float model) is denylisted, so the
  front end stays float32 and the model's input and output stay float32,
  as MediaPipe's AudioClassifier requires."""
  windows = (np.asarray(representative, np.float32)
             if representative is not None and len(representative) else
             np.stack(probe_windows(record)).astype(np.float32))
  windows = windows.reshape(-1, front_end.window)

  def dataset():
    for window in windows:
      yield [window[None]]

  interpreter = tf.lite.Interpreter(model_content=converter().convert())
  denied = [detail['name'] for detail in interpreter.get_tensor_details()
            if detail['name'].startswith(FRONT_END_SCOPE + '/')]
  calibrated = converter()
  calibrated.optimizations = [tf.lite.Optimize.DEFAULT]
  calibrated.representative_dataset = dataset
  debugger = tf.lite.experimental.QuantizationDebugger(
      converter=calibrated, debug_dataset=dataset,
      debug_options=tf.lite.experimental.QuantizationDebugOptions(
          denylisted_nodes=denied))
  return debugger.get_nondebug_quantized_model()


WAVEFORM_FILE = 'waveform.tflite'
# The largest difference allowed between the in-graph front end's pixels
# and the NumPy front end's, on 0..255.
MAX_PIXEL_ERROR = 2.0
# A probe window's top class is compared only where the image model's top
# score leads the next by at least this: two quantized models (calibrated
# apart in int8) may split a near tie either way.
DECISIVE_MARGIN = 0.2


def probe_problem(proof: Dict[str, Any], mode: str) -> Optional[str]:
  """What keeps a waveform model back on the probe windows' classes
  (:func:`check`), or None.

  The rule: in `none` and `dynamic` modes the waveform model holds the image
  model's classifier quantized the same way and its pictures differ by at
  most :data:`MAX_PIXEL_ERROR`, so one decisive probe window given another
  class is a wiring fault, not chance, and refuses it. In `int8` the two
  are calibrated apart (the waveform model on the train split's windows
  through its own front end), and test signals such as silence fall outside
  what either was calibrated on: there a probe window decides nothing, the
  agreement is recorded, and the classes are judged on the eval split's
  windows by `max_accuracy_drop`, as the image model is.

  Args:
    proof: what :func:`check` returned.
    mode: the quantization mode, as the pusher's setting spells it.

  Returns:
    One sentence naming the disagreement, or None.
  """
  if mode == Quantization.INT8 or proof['agreement'] >= 1.0:
    return None
  return (f"it agrees with the image model on {proof['agreement']:.0%} of "
          f"the {proof['decisive_windows']} probe windows the image model "
          f'decides clearly (in {mode} mode both hold the same classifier, '
          'so any disagreement is a fault)')


def probe_windows(record: Dict[str, Any]) -> List[np.ndarray]:
  """Test signals at the front end's rate, one window each: a harmonic
  tone, a quiet band of noise, a click train, a tone that stops halfway
  (the padding case) and silence."""
  rate, size = int(record['sample_rate']), int(record['window_samples'])
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


def span_windows(file_pattern: str, limit: int, channels: int
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The windows of a split that kept their samples (`audio_pcm`, a
  bounded sample per span, see `pipeline/data/ingest.py`): (float32
  [n, window_samples] samples, uint8 [n, size, size, channels] pictures the
  NumPy front end drew from the original audio, int64 [n] labels); at most
  `limit` (0: all), in file order. Empty arrays when none kept samples."""
  from components.modules import features  # pylint: disable=g-import-not-at-top
  samples, images, labels = [], [], []
  files = sorted(tf.io.gfile.glob(file_pattern))
  for record in (tf.data.TFRecordDataset(files, compression_type='GZIP')
                 if files else []):
    example = tf.train.Example.FromString(record.numpy())
    feature = example.features.feature
    pcm = feature[features.AUDIO_PCM_KEY].bytes_list.value if (
        features.AUDIO_PCM_KEY in feature) else []
    if not pcm:
      continue
    samples.append(melscale.pcm16_samples(pcm[0]))
    images.append(tf.io.decode_png(feature[features.IMAGE_KEY].bytes_list
                                   .value[0], channels=channels).numpy())
    labels.append(feature[features.LABEL_KEY].int64_list.value[0])
    if limit and len(samples) >= limit:
      break
  if not samples:
    return (np.zeros((0, 0), np.float32), np.zeros((0, 0, 0, channels),
                                                   np.uint8),
            np.zeros(0, np.int64))
  return np.stack(samples), np.stack(images), np.asarray(labels, np.int64)


def front_end_error(record: Dict[str, Any], windows: np.ndarray,
                    batch: int = 32) -> float:
  """The largest difference, on 0..255, between the in-graph front end's
  pixels and the NumPy front end's on `windows` ([n, window_samples]),
  drawn `batch` windows at a time. The pixels are those of the front end's
  graph before conversion; a converted model answers for itself through
  its scores."""
  front_end = FrontEnd(record)
  graph = tf.function(front_end.__call__, input_signature=[
      tf.TensorSpec([None, front_end.window], tf.float32)])
  windows = np.asarray(windows, np.float32)
  error = 0.0
  for start in range(0, len(windows), batch):
    part = windows[start:start + batch]
    drawn = graph(tf.constant(part)).numpy()
    expected = np.stack([melscale.render(window, record) for window in part])
    error = max(error, float(np.abs(drawn - expected.astype(np.float32))
                             .max()))
  return error


def check_span_windows(model: bytes, saved_model_dir: str,
                       record: Dict[str, Any], samples: np.ndarray,
                       images: np.ndarray, labels: np.ndarray
                       ) -> Dict[str, Any]:
  """Proves a waveform model on the span's own windows
  (:func:`span_windows`): the in-graph front end's pixels against the NumPy
  front end's on the same samples, and the waveform model's scores on the
  samples against the SavedModel's on the pictures trained with.

  Returns:
    `eval_windows`, `eval_front_end_max_pixel_error` (0..255),
    `eval_agreement` (share of windows given the same class),
    `eval_savedmodel_accuracy`, `eval_accuracy` (the waveform model's) and
    `eval_accuracy_drop` (SavedModel minus waveform model).
  """
  from components.modules import features  # pylint: disable=g-import-not-at-top
  pixel_error = front_end_error(record, samples)
  waveform = conversion.TFLiteClassifier(model)
  compared = conversion.compare(
      labels, conversion.saved_model_scores(
          saved_model_dir, features.SERVING_IMAGE_SIGNATURE, images),
      np.stack([waveform.scores(window) for window in samples]))
  return {'eval_windows': int(len(samples)),
          'eval_front_end_max_pixel_error': pixel_error,
          'eval_agreement': compared['agreement'],
          'eval_savedmodel_accuracy': compared['savedmodel_accuracy'],
          'eval_accuracy': compared['tflite_accuracy'],
          'eval_accuracy_drop': compared['accuracy_drop']}


def check(model: bytes, image_model: bytes, record: Dict[str, Any]
          ) -> Dict[str, Any]:
  """Proves a waveform model on :func:`probe_windows`: its front end's
  pixels against the NumPy front end's, and its scores against the image
  model's on the NumPy pictures.

  Returns:
    `front_end_max_pixel_error` (0..255), `max_score_difference`,
    `agreement` (share of the decisive windows, where the image model's
    top score leads by :data:`DECISIVE_MARGIN`, given the same top class;
    1 when none is decisive), `decisive_windows` and `windows` (see
    :func:`front_end_error` for the pixels).
  """
  waveform = conversion.TFLiteClassifier(model)
  images = conversion.TFLiteClassifier(image_model)
  score_difference, same, decisive = 0.0, 0, 0
  windows = np.stack(probe_windows(record)).astype(np.float32)
  pixel_error = front_end_error(record, windows)
  for samples in windows:
    scores = waveform.scores(samples)
    reference = images.scores(
        melscale.render(samples, record).astype(np.float32))
    score_difference = max(score_difference,
                           float(np.abs(scores - reference).max()))
    ranked = np.sort(reference)[::-1]
    if len(ranked) < 2 or ranked[0] - ranked[1] >= DECISIVE_MARGIN:
      decisive += 1
      same += int(np.argmax(scores) == np.argmax(reference))
  return {'front_end_max_pixel_error': pixel_error,
          'max_score_difference': round(score_difference, 6),
          'agreement': same / decisive if decisive else 1.0,
          'decisive_windows': decisive, 'windows': len(windows)}
