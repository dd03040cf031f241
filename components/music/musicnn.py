"""musicnn in TensorFlow 2: its log-mel front end and its network as Keras
layers, loaded from the wheel's TensorFlow 1 checkpoints.

The original (`musicnn` 0.1.0, Pons and Serra, ISMIR 2019 LBD) computes
its input with librosa and its network with `tf.compat.v1.layers`; this
module computes both as TensorFlow ops, so a SavedModel that takes a
window of PCM holds the whole graph:

1. **Log-mel** (:class:`LogMel`): a centred STFT (the window reflected at
   both ends, as librosa's `stft(center=True)` pads), a periodic Hann
   window of 512 points, hop 256, power spectrum, 96 mel bands of
   librosa's Slaney scale and area normalisation, then the original's
   float16 rounding and `log10(1 + 10000 x)`. At 16 kHz a 1 s window is 63
   frames.
2. **Front end of the network**: batch normalisation, then five
   musically motivated convolutions over the whole window, two timbral
   (7 frames by 38 and 67 mel bands) and three temporal (128, 64 and 32
   frames by one band), each max-pooled over frequency: 561 features a
   frame.
3. **Mid end**: three 7-frame convolutions of 64 filters, the second and
   third residual; the frame's features and the three are concatenated
   (753 a frame).
4. **Back end**: max and mean over time (`max_pool`, `mean_pool`, 753
   each), a dense layer of 200 (`penultimate`) and the 50 tags' logits.
   The 753 features of every frame (`frames`) are an output too: what
   :class:`SequenceEncoder` gives phase two, which hears how a sound
   evolves inside its window, not only its pools.

Layers are named as the checkpoint names the original's variables
(`conv2d_3`, `batch_normalization_7`, ...), so :func:`load_weights` reads
each by name and refuses a checkpoint that lacks one or has a different
shape. The proof that this equals the original is `tests/
test_music_encoder.py`, which runs the wheel's own extractor in a process
of its own.

Example:

    encoder = musicnn.Encoder(['MSD_musicnn'])
    embedding = encoder(pcm_float32_at_16khz)   # [batch, 1506]
    steps = musicnn.SequenceEncoder(['MSD_musicnn'])(pcm)  # [batch, 21, 753]
"""

import functools
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf

from components.music import weights

SAMPLE_RATE = 16000
FFT_SIZE = 512
HOP = 256
MEL_BANDS = 96
# The tag model's own sizes (models.build_musicnn: 1.6 x 128 timbral and
# 1.6 x 32 temporal filters, 64 mid-end filters, 200 back-end units).
TIMBRAL_FILTERS = int(1.6 * 128)
TEMPORAL_FILTERS = int(1.6 * 32)
MIDEND_FILTERS = 64
BACKEND_UNITS = 200
# Batch normalisation as `tf.compat.v1.layers.batch_normalization` made it.
BN_EPSILON = 1e-3
# What :class:`Encoder` outputs for each model, in this order.
POOLED = ('max_pool', 'mean_pool')
# Frames averaged into one step of :class:`SequenceEncoder` (63 frames, a
# 1 s window, are 21 steps of 48 ms).
STEP_FRAMES = 3
FEATURES_PER_FRAME = (2 * TIMBRAL_FILTERS + 3 * TEMPORAL_FILTERS
                      + 3 * MIDEND_FILTERS)


def _hz_to_mel_slaney(hz: np.ndarray) -> np.ndarray:
  """librosa's `hz_to_mel(htk=False)`: linear below 1 kHz, log above."""
  hz = np.asarray(hz, dtype=np.float64)
  mel = hz / (200.0 / 3)
  log_step = np.log(6.4) / 27.0
  above = hz >= 1000.0
  mel[above] = 15.0 + np.log(hz[above] / 1000.0) / log_step
  return mel


def _mel_to_hz_slaney(mel: np.ndarray) -> np.ndarray:
  """The inverse of :func:`_hz_to_mel_slaney`."""
  mel = np.asarray(mel, dtype=np.float64)
  hz = mel * (200.0 / 3)
  log_step = np.log(6.4) / 27.0
  above = mel >= 15.0
  hz[above] = 1000.0 * np.exp(log_step * (mel[above] - 15.0))
  return hz


@functools.lru_cache(maxsize=2)
def mel_matrix(sample_rate: int = SAMPLE_RATE, fft_size: int = FFT_SIZE,
               bands: int = MEL_BANDS) -> np.ndarray:
  """librosa's `filters.mel(sr, n_fft, n_mels)` (Slaney scale, 0 Hz to
  Nyquist, each band's area normalised), transposed: float32
  [fft_size // 2 + 1, bands]."""
  fft_hz = np.linspace(0.0, sample_rate / 2.0, fft_size // 2 + 1)
  edges = _mel_to_hz_slaney(np.linspace(
      0.0, _hz_to_mel_slaney(np.array([sample_rate / 2.0]))[0], bands + 2))
  widths = np.diff(edges)
  ramps = edges[:, None] - fft_hz[None, :]
  rising = -ramps[:-2] / widths[:-1, None]
  falling = ramps[2:] / widths[1:, None]
  filters = np.maximum(0.0, np.minimum(rising, falling))
  filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
  return filters.T.astype(np.float32)


class LogMel(tf.keras.layers.Layer):
  """PCM windows [batch, samples] (float, -1..1, 16 kHz) to musicnn's input
  [batch, frames, 96] (see the module's docstring, step 1)."""

  def call(self, pcm):
    pcm = tf.cast(pcm, tf.float32)
    padded = tf.pad(pcm, [[0, 0], [FFT_SIZE // 2, FFT_SIZE // 2]],
                    mode='REFLECT')
    frames = tf.signal.frame(padded, FFT_SIZE, HOP)
    spectrum = tf.signal.rfft(
        frames * tf.signal.hann_window(FFT_SIZE, periodic=True))
    power = tf.math.square(tf.math.abs(spectrum))
    mel = tf.tensordot(power, tf.constant(mel_matrix()), axes=1)
    # The original stores its spectrograms in float16 before the log.
    mel = tf.cast(tf.cast(mel, tf.float16), tf.float32)
    return tf.math.log(10000.0 * mel + 1.0) / tf.math.log(10.0)


def frames_of(samples: int) -> int:
  """How many log-mel frames a window of `samples` samples gives."""
  return 1 + samples // HOP


def _bn(name):
  return tf.keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=name)


def _pool_frequency(x):
  """Max over the frequency axis ([b, t, f, c] -> [b, t, c])."""
  return tf.reduce_max(x, axis=2)


def _pad_time(x, before, after):
  return tf.pad(x, [[0, 0], [before, after], [0, 0], [0, 0]])


def build_network(prefix: str) -> tf.keras.Model:
  """musicnn's network (steps 2-4 of the module's docstring), weights not
  yet loaded.

  Args:
    prefix: the name of the Keras model (the checkpoint's name), so two
      models of one architecture live side by side in one graph.

  Returns:
    A Keras model from log-mel [batch, frames, 96] to a dict of
    `max_pool`, `mean_pool` ([batch, 753]), `penultimate` ([batch, 200])
    and `logits` ([batch, 50]), and `frames` ([batch, frames, 753]: what
    the pools are taken over).
  """
  layers = tf.keras.layers
  mel = layers.Input([None, MEL_BANDS], name=f'{prefix}_mel')
  x = _bn('batch_normalization')(mel[..., None])
  padded = layers.Lambda(lambda t: _pad_time(t, 3, 3))(x)
  branches = []
  index = 0
  for width in (int(0.4 * MEL_BANDS), int(0.7 * MEL_BANDS)):
    conv = layers.Conv2D(TIMBRAL_FILTERS, (7, width), activation='relu',
                         name=f'conv2d{"_%d" % index if index else ""}')
    index += 1
    norm = _bn(f'batch_normalization_{index}')
    branches.append(layers.Lambda(_pool_frequency)(norm(conv(padded))))
  for length in (128, 64, 32):
    conv = layers.Conv2D(TEMPORAL_FILTERS, (length, 1), padding='same',
                         activation='relu', name=f'conv2d_{index}')
    index += 1
    norm = _bn(f'batch_normalization_{index}')
    branches.append(layers.Lambda(_pool_frequency)(norm(conv(x))))
  front = layers.Concatenate(axis=2)(branches)
  mid = [front[..., None]]
  current = mid[0]
  for level in range(3):
    conv = layers.Conv2D(MIDEND_FILTERS, (7, current.shape[2]),
                         activation='relu', name=f'conv2d_{index}')
    index += 1
    norm = _bn(f'batch_normalization_{index}')
    out = layers.Lambda(lambda t: tf.transpose(t, [0, 1, 3, 2]))(
        norm(conv(layers.Lambda(lambda t: _pad_time(t, 3, 3))(current))))
    current = out if level == 0 else layers.Add()([out, current])
    mid.append(current)
  stacked = layers.Concatenate(axis=2)(mid)[..., 0]
  max_pool = layers.Lambda(lambda t: tf.reduce_max(t, axis=1))(stacked)
  mean_pool = layers.Lambda(lambda t: tf.reduce_mean(t, axis=1))(stacked)
  # The original flattens [features, (max, mean)]: the two interleave.
  flat = layers.Lambda(lambda t: tf.reshape(
      tf.stack(t, axis=2), [-1, 2 * FEATURES_PER_FRAME]))([max_pool,
                                                          mean_pool])
  flat = _bn(f'batch_normalization_{index + 1}')(flat)
  dense = layers.Dense(BACKEND_UNITS, activation='relu', name='dense')(flat)
  penultimate = _bn(f'batch_normalization_{index + 2}')(dense)
  logits = layers.Dense(weights.CHECKPOINTS[prefix].tags
                        if prefix in weights.CHECKPOINTS else 50,
                        name='dense_1')(penultimate)
  return tf.keras.Model(mel, {'max_pool': max_pool, 'mean_pool': mean_pool,
                              'penultimate': penultimate, 'logits': logits,
                              'frames': stacked},
                        name=prefix)


# The checkpoint's name for each Keras weight, by the weight's position in
# its layer.
_WEIGHT_NAMES = {
    'Conv2D': ('kernel', 'bias'),
    'Dense': ('kernel', 'bias'),
    'BatchNormalization': ('gamma', 'beta', 'moving_mean',
                           'moving_variance'),
}


def load_weights(network: tf.keras.Model, prefix: str) -> int:
  """Loads every weight of `network` from the TensorFlow 1 checkpoint at
  `prefix` (the original's variable names: `<layer>/<weight>`).

  Returns:
    How many values were loaded.

  Raises:
    weights.WeightsError: when the checkpoint lacks a weight or holds it
      in another shape.
  """
  reader = tf.compat.v1.train.NewCheckpointReader(prefix)
  shapes = reader.get_variable_to_shape_map()
  loaded = 0
  for layer in network.layers:
    names = _WEIGHT_NAMES.get(type(layer).__name__)
    if not names:
      continue
    values = []
    for variable, weight in zip(names, layer.weights):
      key = f'{layer.name}/{variable}'
      if key not in shapes or tuple(shapes[key]) != tuple(weight.shape):
        raise weights.WeightsError(
            f'{prefix}: the checkpoint has no {key} of shape '
            f'{tuple(weight.shape)} (found {shapes.get(key)}); not a '
            'musicnn checkpoint of this architecture')
      values.append(reader.get_tensor(key))
      loaded += int(np.prod(weight.shape))
    layer.set_weights(values)
  return loaded


def load_network(name: str, folder: str = None) -> tf.keras.Model:
  """The wheel's model `name` (`MSD_musicnn`, `MTT_musicnn`), loaded and
  frozen (see :func:`weights.checkpoint_prefix` for `folder`)."""
  network = build_network(name)
  load_weights(network, weights.checkpoint_prefix(name, folder))
  network.trainable = False
  return network


class Encoder(tf.keras.layers.Layer):
  """PCM windows to the pooled embedding of one or more musicnn models:
  for each model in order, its `max_pool` then its `mean_pool` (753 each).

  Args:
    models: checkpoint names (keys of `weights.CHECKPOINTS`).
    folder: the folder holding them (default `weights.home()`).
  """

  def __init__(self, models: Sequence[str] = ('MSD_musicnn',),
               folder: str = None, **kwargs):
    super().__init__(trainable=False, **kwargs)
    self.models = list(models)
    self.log_mel = LogMel()
    self.networks = [load_network(name, folder) for name in self.models]

  @property
  def size(self) -> int:
    """The embedding's width."""
    return len(self.models) * len(POOLED) * FEATURES_PER_FRAME

  def call(self, pcm):
    mel = self.log_mel(pcm)
    parts: List[tf.Tensor] = []
    for network in self.networks:
      found: Dict[str, tf.Tensor] = network(mel, training=False)
      parts += [found[key] for key in POOLED]
    return tf.concat(parts, axis=-1)


class SequenceEncoder(Encoder):
  """PCM windows to the sequence of every model's frame features, each
  step the mean of :data:`STEP_FRAMES` frames (the last step of fewer when
  they do not divide): [batch, steps, models x 753], the models in order.

  Where :class:`Encoder`'s pools keep what a window holds, its steps keep
  when: the attack, the decay and the vibrato that tell a piano from an
  organ on the same note.
  """

  @property
  def size(self) -> int:
    """The width of one step."""
    return len(self.models) * FEATURES_PER_FRAME

  @staticmethod
  def steps_of(samples: int) -> int:
    """How many steps a window of `samples` samples gives."""
    return -(-frames_of(samples) // STEP_FRAMES)

  def call(self, pcm):
    mel = self.log_mel(pcm)
    frames = tf.concat([network(mel, training=False)['frames']
                        for network in self.networks], axis=-1)
    # Average pooling leaves the padding out of the last step's mean.
    return tf.nn.avg_pool1d(frames, STEP_FRAMES, STEP_FRAMES, 'SAME')
