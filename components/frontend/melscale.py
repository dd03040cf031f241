"""The spectrogram in NumPy: the mel filterbank, the log-mel picture, the
colour map, and one window drawn as a front end (:class:`spec.FrontEnd`)
says.

Ingest and `predict` draw every image with :func:`render`; the pusher draws
probe windows with it to prove the in-graph front end
(:mod:`components.frontend.graph`), which holds the same filterbank and
colour anchors.
"""

import functools
from typing import Optional

import numpy as np

from components.common import errors
from components.frontend import spec

N_FFT = 2048
TOP_DB = 80.0


AudioError = errors.AudioError

def pcm16_bytes(samples: np.ndarray) -> bytes:
  """Float samples in [-1, 1] as little-endian 16-bit PCM (x 32768,
  rounded, clipped), as a device's microphone hands them over."""
  values = np.clip(np.round(np.asarray(samples, np.float64) * 32768.0),
                   -32768, 32767)
  return values.astype('<i2').tobytes()


def pcm16_samples(data: bytes) -> np.ndarray:
  """Little-endian 16-bit PCM to float32 samples (/ 32768), the inverse
  of :func:`pcm16_bytes` up to its rounding."""
  return (np.frombuffer(data, '<i2').astype(np.float32) / 32768.0)


# Anchor colours of a magma-like map, dark (quiet) to bright (loud).
COLORMAP_ANCHORS = np.array([
    [0, 0, 4], [28, 16, 68], [79, 18, 123], [129, 37, 129], [181, 54, 122],
    [229, 80, 100], [251, 135, 97], [254, 194, 135], [252, 253, 191],
], dtype=np.float64)


def _hz_to_mel(hz):
  return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
  return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int,
                   fmin: float = 20.0,
                   fmax: Optional[float] = None) -> np.ndarray:
  """Triangular mel filters (HTK mel scale), area-normalised.

  Args:
    sample_rate: sampling rate of the audio in Hz.
    n_fft: FFT length; the filters cover its n_fft // 2 + 1 bins.
    n_mels: number of mel bands.
    fmin: lowest frequency covered, in Hz.
    fmax: highest frequency covered (None: half the sample rate).

  Returns:
    float32 array [n_mels, n_fft // 2 + 1].
  """
  fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
  top = sample_rate / 2.0 if fmax is None else fmax
  mel_points = np.linspace(_hz_to_mel(fmin), _hz_to_mel(top), n_mels + 2)
  hz_points = _mel_to_hz(mel_points)
  lower, center, upper = hz_points[:-2], hz_points[1:-1], hz_points[2:]
  rising = (fft_freqs[None, :] - lower[:, None]) / (center - lower)[:, None]
  falling = (upper[:, None] - fft_freqs[None, :]) / (upper - center)[:, None]
  weights = np.maximum(0.0, np.minimum(rising, falling))
  weights *= (2.0 / (upper - lower))[:, None]
  return weights.astype(np.float32)


def log_mel(audio: np.ndarray, sample_rate: int, size: int,
            n_fft: int = N_FFT, top_db: float = TOP_DB, fmin: float = 20.0,
            fmax: Optional[float] = None,
            hop: Optional[int] = None) -> np.ndarray:
  """Log-mel power spectrogram scaled to [0, 1] (0 = `top_db` below the peak).

  Args:
    audio: mono samples, any length of at least one sample.
    sample_rate: sampling rate in Hz.
    size: number of mel bands and of time frames.
    n_fft: samples per frame (Hann window).
    top_db: dynamic range kept below the peak.
    fmin: lowest mel frequency.
    fmax: highest mel frequency (None: half the sample rate).
    hop: samples between frames (None: the clip's length over `size`, so
      the frames span the clip whatever its length).

  Returns:
    float32 array [size (mel, low first), size (time)].

  Raises:
    AudioError: for empty or non-finite audio.
  """
  audio = np.asarray(audio, dtype=np.float64).reshape(-1)
  if audio.size == 0:
    raise AudioError('the clip has no samples')
  if not np.all(np.isfinite(audio)):
    raise AudioError('the clip has NaN or infinite samples')
  hop = max(1, audio.size // size) if hop is None else hop
  padded = np.pad(audio, (n_fft // 2, n_fft // 2 + hop * size),
                  mode='constant')
  starts = np.arange(size) * hop
  frames = padded[starts[:, None] + np.arange(n_fft)[None, :]]
  frames = frames * np.hanning(n_fft)[None, :]
  power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
  mel = mel_filterbank(sample_rate, n_fft, size, fmin, fmax) @ power.T
  db = 10.0 * np.log10(np.maximum(mel, 1e-12))
  db -= db.max()
  return (np.clip(db, -top_db, 0.0) / top_db + 1.0).astype(np.float32)


def colorize(values: np.ndarray, colormap: str = 'magma') -> np.ndarray:
  """Maps [0, 1] values to RGB through a colour map.

  Args:
    values: float array of any shape with values in [0, 1].
    colormap: `magma` (the magma-like anchors) or `gray` (value * 255 in
      every channel).

  Returns:
    uint8 array of shape values.shape + (3,).
  """
  flat = np.clip(values, 0.0, 1.0).reshape(-1)
  if colormap == 'gray':
    grey = np.round(flat * 255.0).astype(np.uint8)
    return np.repeat(grey[:, None], 3, axis=1).reshape(values.shape + (3,))
  positions = np.linspace(0.0, 1.0, len(COLORMAP_ANCHORS))
  rgb = np.stack([np.interp(flat, positions, COLORMAP_ANCHORS[:, c])
                  for c in range(3)], axis=-1)
  return np.round(rgb).astype(np.uint8).reshape(values.shape + (3,))


def spectrogram_image(audio: np.ndarray, sample_rate: int,
                      size: int = 128) -> np.ndarray:
  """Renders a whole clip as one square RGB picture: `size` frames spread
  over the clip (the synthesized default data are drawn so).

  Args:
    audio: mono samples (float in [-1, 1] or integer PCM).
    sample_rate: sampling rate in Hz.
    size: side of the image in pixels.

  Returns:
    uint8 array [size, size, 3], low frequencies in the bottom rows.

  Raises:
    AudioError: for empty or non-finite audio.
  """
  return colorize(np.flipud(log_mel(audio, sample_rate, size)))


def render(window: np.ndarray, front_end: spec.FrontEnd) -> np.ndarray:
  """One window of samples at the front end's rate to its uint8 RGB image:
  zero-padded to the window, frames, Hann, power, mel bands, dB relative to
  the peak, colour map, low frequencies at the bottom.

  Raises:
    AudioError: for non-finite samples.
  """
  window = np.asarray(window, dtype=np.float64).reshape(-1)
  size = front_end.window_samples
  if window.size < size:
    window = np.pad(window, (0, size - window.size))
  values = log_mel(window[:size], front_end.sample_rate,
                   front_end.image_size, n_fft=front_end.fft_size,
                   top_db=front_end.top_db, fmin=front_end.mel_min_hz,
                   fmax=front_end.mel_top_hz, hop=front_end.frame_hop)
  return colorize(np.flipud(values), front_end.colormap)
