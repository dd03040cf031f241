"""The spectrogram's numbers that the NumPy front end (pipeline/data/
frontend.py) and the in-graph one of the waveform model
(components/tflite_pusher/waveform.py) share: the mel filterbank and the
colour map's anchors. NumPy only."""

import functools
from typing import Optional

import numpy as np

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
