"""Audio clips to log-mel spectrogram images.

One function, :func:`spectrogram_image`, renders every clip in the project:
the synthesizer's, the WAV folders given to `ingest`, and the WAV files given
to `predict`. Any clip length becomes a square image whose columns are time
frames (left to right) and whose rows are mel bands (low frequencies at the
bottom), coloured with a perceptual colour map as spectrogram pictures usually
are. Pure NumPy, so it runs wherever the pipeline does.
"""

import functools
import io
import wave

import numpy as np

DEFAULT_SAMPLE_RATE = 16000
_N_FFT = 2048
_TOP_DB = 80.0

# Anchor colours of a magma-like map, dark (quiet) to bright (loud).
_COLORMAP_ANCHORS = np.array([
    [0, 0, 4], [28, 16, 68], [79, 18, 123], [129, 37, 129], [181, 54, 122],
    [229, 80, 100], [251, 135, 97], [254, 194, 135], [252, 253, 191],
], dtype=np.float64)


_WAV_MAGIC = (b'RIFF', b'RIFX', b'RF64')


class AudioError(ValueError):
  """Raised when a clip cannot be read or rendered."""


def is_wav(data: bytes) -> bool:
  """True when the bytes start like a WAV file (RIFF, RIFX or RF64)."""
  return data[:4] in _WAV_MAGIC


def _hz_to_mel(hz):
  return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
  return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int,
                   fmin: float = 20.0) -> np.ndarray:
  """Triangular mel filters (HTK mel scale), area-normalised.

  Args:
    sample_rate: sampling rate of the audio in Hz.
    n_fft: FFT length; the filters cover its n_fft // 2 + 1 bins.
    n_mels: number of mel bands.
    fmin: lowest frequency covered, in Hz.

  Returns:
    float32 array [n_mels, n_fft // 2 + 1].
  """
  fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
  mel_points = np.linspace(_hz_to_mel(fmin), _hz_to_mel(sample_rate / 2.0),
                           n_mels + 2)
  hz_points = _mel_to_hz(mel_points)
  lower, center, upper = hz_points[:-2], hz_points[1:-1], hz_points[2:]
  rising = (fft_freqs[None, :] - lower[:, None]) / (center - lower)[:, None]
  falling = (upper[:, None] - fft_freqs[None, :]) / (upper - center)[:, None]
  weights = np.maximum(0.0, np.minimum(rising, falling))
  weights *= (2.0 / (upper - lower))[:, None]
  return weights.astype(np.float32)


def log_mel(audio: np.ndarray, sample_rate: int, size: int) -> np.ndarray:
  """Log-mel power spectrogram scaled to [0, 1] (0 = 80 dB below the peak).

  Args:
    audio: mono samples, any length of at least one sample.
    sample_rate: sampling rate in Hz.
    size: number of mel bands and of time frames.

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
  hop = max(1, audio.size // size)
  padded = np.pad(audio, (_N_FFT // 2, _N_FFT // 2 + hop * size),
                  mode='constant')
  starts = np.arange(size) * hop
  frames = padded[starts[:, None] + np.arange(_N_FFT)[None, :]]
  frames = frames * np.hanning(_N_FFT)[None, :]
  power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
  mel = mel_filterbank(sample_rate, _N_FFT, size) @ power.T
  db = 10.0 * np.log10(np.maximum(mel, 1e-12))
  db -= db.max()
  return (np.clip(db, -_TOP_DB, 0.0) / _TOP_DB + 1.0).astype(np.float32)


def colorize(values: np.ndarray) -> np.ndarray:
  """Maps [0, 1] values to RGB through the magma-like colour map.

  Args:
    values: float array of any shape with values in [0, 1].

  Returns:
    uint8 array of shape values.shape + (3,).
  """
  positions = np.linspace(0.0, 1.0, len(_COLORMAP_ANCHORS))
  flat = np.clip(values, 0.0, 1.0).reshape(-1)
  rgb = np.stack([np.interp(flat, positions, _COLORMAP_ANCHORS[:, c])
                  for c in range(3)], axis=-1)
  return np.round(rgb).astype(np.uint8).reshape(values.shape + (3,))


def spectrogram_image(audio: np.ndarray, sample_rate: int,
                      size: int = 128) -> np.ndarray:
  """Renders a clip as a square RGB spectrogram image.

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


def read_wav(data: bytes, name: str = '<bytes>') -> tuple:
  """Reads PCM or float WAV bytes into mono float samples.

  Args:
    data: the file's bytes.
    name: the file's name, for error messages.

  Returns:
    (float64 samples in [-1, 1], sample rate in Hz); multi-channel clips are
    averaged to mono.

  Raises:
    AudioError: if the bytes are not a readable WAV file.
  """
  from scipy.io import wavfile  # pylint: disable=g-import-not-at-top
  try:
    rate, samples = wavfile.read(io.BytesIO(data))
  except (ValueError, EOFError, wave.Error) as e:
    raise AudioError(f'{name}: not a readable WAV file ({e})') from e
  samples = np.asarray(samples)
  if samples.dtype.kind in 'iu':
    info = np.iinfo(samples.dtype)
    samples = (samples.astype(np.float64) - (info.max + info.min + 1) / 2.0) / (
        (info.max - info.min + 1) / 2.0)
  samples = samples.astype(np.float64)
  if samples.ndim == 2:
    samples = samples.mean(axis=1)
  if samples.size == 0:
    raise AudioError(f'{name}: the WAV file has no samples')
  return samples, int(rate)


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
  """Encodes float samples in [-1, 1] as 16-bit PCM mono WAV bytes.

  Args:
    audio: mono samples.
    sample_rate: sampling rate in Hz.

  Returns:
    The WAV file's bytes.
  """
  pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype('<i2')
  buffer = io.BytesIO()
  with wave.open(buffer, 'wb') as out:
    out.setnchannels(1)
    out.setsampwidth(2)
    out.setframerate(sample_rate)
    out.writeframes(pcm.tobytes())
  return buffer.getvalue()
