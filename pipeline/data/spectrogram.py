"""Audio clips to log-mel spectrogram images.

One function, :func:`spectrogram_image`, renders every clip in the project:
the synthesizer's, the WAV folders given to `ingest`, and the WAV files given
to `predict`. Any clip length becomes a square image whose columns are time
frames (left to right) and whose rows are mel bands (low frequencies at the
bottom), coloured with a perceptual colour map as spectrogram pictures usually
are. Pure NumPy, so it runs wherever the pipeline does.
"""

import dataclasses
import functools
import io
import struct
import warnings
import wave
from typing import BinaryIO, Optional, Union

import numpy as np
from components.common import errors

DEFAULT_SAMPLE_RATE = 16000
_N_FFT = 2048
_TOP_DB = 80.0
# A file clip needs at least half an analysis window of samples; with fewer,
# every column of the image would show nearly the same zero-padded frame.
MIN_CLIP_SAMPLES = _N_FFT // 2
# Sample rates accepted from a file header; anything outside is a corrupt
# header rather than audio (telephone audio is 8 kHz, studio gear 384 kHz).
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 1_000_000

# Anchor colours of a magma-like map, dark (quiet) to bright (loud).
_COLORMAP_ANCHORS = np.array([
    [0, 0, 4], [28, 16, 68], [79, 18, 123], [129, 37, 129], [181, 54, 122],
    [229, 80, 100], [251, 135, 97], [254, 194, 135], [252, 253, 191],
], dtype=np.float64)


_WAV_MAGIC = (b'RIFF', b'RIFX', b'RF64')


class AudioError(errors.PipelineError, ValueError):
  """Raised when a clip cannot be read or rendered."""


def is_wav(data: bytes) -> bool:
  """True when the bytes start like a WAV file (RIFF, RIFX or RF64 holding
  WAVE; a WebP image is RIFF too, holding WEBP)."""
  return data[:4] in _WAV_MAGIC and data[8:12] == b'WAVE'


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


@dataclasses.dataclass(frozen=True)
class WavHeader:
  """What a WAV file's header declares, checked against the bytes present.

  Attributes:
    sample_rate: samples per second and channel.
    frames: sample frames actually present: the declared data size, capped
      by the bytes the file holds.
  """
  sample_rate: int
  frames: int


def _read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
  data = stream.read(size)
  if len(data) != size:
    raise AudioError(f'the file ends inside the {what}')
  return data


def read_wav_header(stream: BinaryIO) -> WavHeader:
  """Reads and checks a WAV header without reading the samples.

  Walks the RIFF chunks (RIFF, RIFX or RF64) up to the `data` chunk, seeking
  over everything else, so memory stays small whatever the file declares.

  Args:
    stream: a seekable binary file positioned anywhere.

  Returns:
    The :class:`WavHeader`.

  Raises:
    AudioError: for a missing or malformed `fmt ` or `data` chunk, or
      declared values no decoder can use (no channels, a sample rate outside
      MIN_SAMPLE_RATE..MAX_SAMPLE_RATE, a zero block size).
  """
  stream.seek(0, io.SEEK_END)
  length = stream.tell()
  stream.seek(0)
  riff = _read_exact(stream, 12, 'RIFF header')
  if riff[:4] not in _WAV_MAGIC or riff[8:12] != b'WAVE':
    raise AudioError('not a RIFF/WAVE file')
  order = '>' if riff[:4] == b'RIFX' else '<'
  fmt = None
  rf64_data_size = None
  while True:
    head = stream.read(8)
    if len(head) < 8:
      raise AudioError('no data chunk' if fmt else 'no fmt chunk')
    chunk_id, size = head[:4], struct.unpack(order + 'I', head[4:])[0]
    if chunk_id == b'ds64' and size >= 16:
      rf64_data_size = struct.unpack(
          order + 'Q', _read_exact(stream, 16, 'ds64 chunk')[8:16])[0]
      stream.seek(size - 16 + (size & 1), io.SEEK_CUR)
    elif chunk_id == b'fmt ':
      if size < 16:
        raise AudioError(f'fmt chunk of {size} bytes; at least 16 expected')
      fmt = struct.unpack(order + 'HHIIHH',
                          _read_exact(stream, 16, 'fmt chunk'))
      stream.seek(size - 16 + (size & 1), io.SEEK_CUR)
    elif chunk_id == b'data':
      if fmt is None:
        raise AudioError('data chunk before the fmt chunk')
      if size == 0xFFFFFFFF and rf64_data_size is not None:
        size = rf64_data_size
      break
    else:
      stream.seek(size + (size & 1), io.SEEK_CUR)
  _, channels, rate, _, block_align, bits = fmt
  if channels < 1:
    raise AudioError('the fmt chunk declares 0 channels')
  if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
    raise AudioError(f'sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}..'
                     f'{MAX_SAMPLE_RATE} Hz')
  if block_align < 1 or bits < 1:
    raise AudioError(f'the fmt chunk declares {bits}-bit samples in '
                     f'{block_align}-byte blocks')
  present = max(0, length - stream.tell())
  return WavHeader(rate, min(size, present) // block_align)


def read_wav(source: Union[bytes, BinaryIO], name: str = '<bytes>',
             max_seconds: Optional[float] = None) -> tuple:
  """Reads PCM or float WAV bytes into mono float samples.

  The header is checked first (:func:`read_wav_header`), so a clip that is
  too short or too long is refused before its samples are read.

  Args:
    source: the file's bytes, or the open file (seekable, binary).
    name: the file's name, for error messages.
    max_seconds: refuse longer clips (None: no limit).

  Returns:
    (float64 samples in [-1, 1], sample rate in Hz); multi-channel clips are
    averaged to mono.

  Raises:
    AudioError: if the bytes are not a readable WAV file, or the clip is
      shorter than MIN_CLIP_SAMPLES or longer than `max_seconds`.
  """
  from scipy.io import wavfile  # pylint: disable=g-import-not-at-top
  stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) \
      else source
  try:
    header = read_wav_header(stream)
  except AudioError as e:
    raise AudioError(f'{name}: not a readable WAV file ({e})') from e
  _check_length(header.frames, header.sample_rate, name, max_seconds)
  stream.seek(0)
  try:
    with warnings.catch_warnings():
      # Unknown chunks and odd sizes are warned about; the header is checked.
      warnings.simplefilter('ignore', wavfile.WavFileWarning)
      rate, samples = wavfile.read(stream)
  # SciPy's reader fails in many ways on malformed files (ValueError,
  # struct.error, ZeroDivisionError, UnboundLocalError, ...): all of them
  # mean the same thing here.
  except Exception as e:  # pylint: disable=broad-except
    raise AudioError(f'{name}: not a readable WAV file '
                     f'({type(e).__name__}: {e})') from e
  samples = np.asarray(samples)
  if samples.dtype.kind not in 'iuf' or samples.ndim not in (1, 2):
    raise AudioError(f'{name}: unsupported WAV samples ({samples.dtype}, '
                     f'{samples.ndim} dimensions)')
  _check_length(samples.shape[0], rate, name, max_seconds)
  if samples.dtype.kind in 'iu':
    info = np.iinfo(samples.dtype)
    samples = (samples.astype(np.float64) - (info.max + info.min + 1) / 2.0) / (
        (info.max - info.min + 1) / 2.0)
  samples = samples.astype(np.float64)
  if samples.ndim == 2:
    samples = samples.mean(axis=1)
  return samples, int(rate)


def _check_length(frames: int, rate: int, name: str,
                  max_seconds: Optional[float]) -> None:
  if frames < MIN_CLIP_SAMPLES:
    raise AudioError(
        f'{name}: clip too short for a spectrogram: {frames} samples '
        f'({1000 * frames / rate:.1f} ms at {rate} Hz); at least '
        f'{MIN_CLIP_SAMPLES} are needed (half an analysis window)')
  if max_seconds is not None and frames / rate > max_seconds:
    raise AudioError(
        f'{name}: clip is {frames / rate:.1f} s long, over the limit of '
        f'{max_seconds:g} s (--max-clip-seconds); split long recordings '
        'into clips')


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
