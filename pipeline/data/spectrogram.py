"""Reading recordings: WAV by our own parser, FLAC, Ogg and MP3 through
libsndfile, a block at a time in bounded memory, with every header and
sample checked (a bad file is an :class:`AudioError` naming it).

Ingest and `predict` read every recording through :func:`recording_blocks`;
what a recording becomes after that (mono, one rate, windows, pictures) is
the audio front end's (:mod:`components.frontend`). Pure NumPy, so it runs
wherever the pipeline and the device side do.
"""

import dataclasses
import io
import struct
import warnings
import wave
from typing import BinaryIO, Iterator, Optional, Tuple, Union

import numpy as np

from components.common import errors
from components.frontend import melscale

DEFAULT_SAMPLE_RATE = 16000
_N_FFT = melscale.N_FFT
# A file clip needs at least half an analysis window of samples; with fewer,
# every column of the image would show nearly the same zero-padded frame.
MIN_CLIP_SAMPLES = _N_FFT // 2
# Sample rates accepted from a file header; anything outside is a corrupt
# header rather than audio (telephone audio is 8 kHz, studio gear 384 kHz).
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 1_000_000

# The most samples (frames times channels) one recording may decode to:
# the longest recording promised (10 min at 192 kHz, stereo), 1.8 GB at the
# float64 the front end works in. Checked from the header before anything
# is decoded; a length the header leaves unknown is counted while decoding.
MAX_DECODED_SAMPLES = 600 * 192_000 * 2
# libsndfile reports a length it does not know as a huge frame count.
_UNKNOWN_FRAMES = 1 << 40

_WAV_MAGIC = (b'RIFF', b'RIFX', b'RF64')


AudioError = errors.AudioError


def is_wav(data: bytes) -> bool:
  """True when the bytes start like a WAV file (RIFF, RIFX or RF64 holding
  WAVE; a WebP image is RIFF too, holding WEBP)."""
  return data[:4] in _WAV_MAGIC and data[8:12] == b'WAVE'


# Compressed recordings read with libsndfile (the `soundfile` package),
# told apart by their first bytes.
_LIBSNDFILE_MAGIC = {b'fLaC': 'FLAC', b'OggS': 'OGG'}


def audio_kind(data: bytes) -> Optional[str]:
  """'WAV', 'FLAC', 'OGG' (Vorbis or Opus) or 'MP3' when the bytes start
  like such a recording, else None."""
  if is_wav(data):
    return 'WAV'
  if data[:4] in _LIBSNDFILE_MAGIC:
    return _LIBSNDFILE_MAGIC[data[:4]]
  # An ID3 tag, or an MPEG audio frame's sync bits (a JPEG's 0xFFD8 is not).
  if data[:3] == b'ID3' or (len(data) > 1 and data[0] == 0xFF and
                            data[1] & 0xE0 == 0xE0):
    return 'MP3'
  return None


def read_audio(stream: BinaryIO, name: str = '<bytes>',
               max_seconds: Optional[float] = None) -> tuple:
  """Any recording :func:`audio_kind` knows to mono float samples, whole
  (:func:`recording_blocks`, concatenated: its limits and checks apply).

  Returns:
    (float64 samples in [-1, 1], sample rate in Hz, kind).

  Raises:
    AudioError: naming the file, for anything that is not a readable
      recording within the limits.
  """
  rate, kind, blocks = recording_blocks(stream, name, max_seconds)
  samples = np.concatenate([block.mean(axis=1) for block in blocks] or
                           [np.zeros(0)])
  check_length(samples.shape[0], rate, name, max_seconds)
  return samples, rate, kind


# Samples (frames times channels) decoded at once: a block of a recording,
# whatever its rate and channels (8 MB at float64).
BLOCK_SAMPLES = 1 << 20
_BLOCK_SECONDS = 0.25


def block_frames(rate: int, channels: int) -> int:
  """Frames per block: a quarter second, at most :data:`BLOCK_SAMPLES`
  samples whatever the rate and channels."""
  return max(1, min(int(rate * _BLOCK_SECONDS),
                    BLOCK_SAMPLES // max(1, channels)))


def _check_rate(rate: int, name: str) -> None:
  if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
    raise AudioError(f'{name}: sample rate {rate} Hz is outside '
                     f'{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz')


def recording_blocks(stream: BinaryIO, name: str,
                     max_seconds: Optional[float] = None,
                     max_samples: Optional[int] = MAX_DECODED_SAMPLES
                     ) -> Tuple[int, str, Iterator[np.ndarray]]:
  """A recording read a block at a time, in memory bounded whatever its
  length, rate and channels (:func:`block_frames`).

  WAV by its header, FLAC, Ogg and MP3 by libsndfile. A length the header
  gives over `max_seconds` (or over `max_samples`; None: any, for a reader
  that keeps only a block) is refused
  before any sample is read; a length it leaves unknown is counted as the
  blocks are decoded, and refused once it passes either. Damaged data met
  midway, and NaN or infinite samples, end the blocks with an AudioError
  naming the file (and the time).

  Returns:
    (sample rate, kind, iterator of float64 [frames, channels] blocks).

  Raises:
    AudioError: naming the file, for anything that is not a readable
      recording within the limits.
  """
  head = stream.read(12)
  stream.seek(0)
  kind = audio_kind(head)
  if kind is None:
    raise AudioError(f'{name}: not a recording (WAV, FLAC, Ogg or MP3)')
  if kind == 'WAV':
    try:
      header = read_wav_header(stream)
      pcm_to_float(b'', header)  # The sample format and frames.
    except AudioError as e:
      raise AudioError(f'{name}: not a readable WAV file ({e})') from e
    rate, frames, channels = (header.sample_rate, header.frames,
                              header.channels)

    def wav_blocks():
      stream.seek(header.data_offset)
      left = header.frames
      per_block = block_frames(header.sample_rate, header.channels)
      while left > 0:
        data = stream.read(min(left, per_block) * header.block_align)
        whole = len(data) - len(data) % header.block_align
        if not whole:
          return
        left -= whole // header.block_align
        yield pcm_to_float(data[:whole], header)

    blocks = wav_blocks()
  else:
    import soundfile  # pylint: disable=g-import-not-at-top
    try:
      opened = soundfile.SoundFile(stream)
      rate, frames, channels = (int(opened.samplerate), int(opened.frames),
                                int(opened.channels))
    except Exception as e:  # pylint: disable=broad-except
      raise AudioError(f'{name}: not a readable {kind} file '
                       f'({type(e).__name__}: {e})') from e

    def sound_blocks():
      with opened:
        yield from sound_file_blocks(opened, block_frames(rate, channels))

    blocks = sound_blocks()
  _check_rate(rate, name)
  if 0 < frames < _UNKNOWN_FRAMES:
    check_length(frames, rate, name, max_seconds, channels, max_samples)
  return rate, kind, _checked_blocks(blocks, name, kind, rate, max_seconds,
                                     max_samples)


def _checked_blocks(blocks: Iterator[np.ndarray], name: str, kind: str,
                    rate: int, max_seconds: Optional[float],
                    max_samples: Optional[int]) -> Iterator[np.ndarray]:
  """`blocks`, counted against the limits and checked for NaN or infinite
  samples; a decoder's failure midway is an AudioError naming the file
  (libsndfile raises several types for damaged data)."""
  frames = 0
  try:
    for block in blocks:
      if not np.all(np.isfinite(block)):
        raise AudioError(f'{name}: NaN or infinite samples at '
                         f'{frames / rate:.2f} s')
      frames += block.shape[0]
      check_limits(frames, rate, name, max_seconds, block.shape[1],
                   max_samples)
      yield block
  except AudioError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise AudioError(f'{name}: damaged {kind} data ({type(e).__name__}: '
                     f'{e})') from e


def sound_file_blocks(opened, frames: int):
  """[frames, channels] float64 blocks of an open `soundfile.SoundFile`
  until its end, whether or not its header gives the length (see
  :func:`_unknown_length_blocks`)."""
  if opened.frames >= _UNKNOWN_FRAMES:
    yield from _unknown_length_blocks(opened, frames)
    return
  while True:
    block = opened.read(frames, dtype='float64', always_2d=True)
    if not len(block):
      return
    yield block


def _unknown_length_blocks(opened, frames: int):
  """A shim for soundfile 0.14.0: after every read `SoundFile.read` seeks
  to where the read ended, and libsndfile refuses that seek at the end of
  a file whose header leaves the length unknown ("Internal psf_fseek()
  failed"), losing the last block. libsndfile's own `sf_readf_double`
  reads without seeking; a failure is still raised, with libsndfile's
  message (tests/test_device_side.py shows the bug without it)."""
  import soundfile  # pylint: disable=g-import-not-at-top
  if soundfile.__version__ != '0.14.0':
    raise AudioError(f'the unknown-length reader was written for soundfile '
                     f'0.14.0, not {soundfile.__version__}')
  lib, ffi = soundfile._snd, soundfile._ffi  # pylint: disable=protected-access
  handle = opened._file  # pylint: disable=protected-access
  while True:
    out = np.empty((frames, opened.channels), np.float64)
    count = lib.sf_readf_double(handle, ffi.cast('double *',
                                                 out.ctypes.data), frames)
    if lib.sf_error(handle):
      raise RuntimeError(ffi.string(lib.sf_strerror(handle)).decode(
          'utf-8', 'replace'))
    if count <= 0:
      return
    yield out[:count]


@dataclasses.dataclass(frozen=True)
class WavHeader:
  """What a WAV file's header declares, checked against the bytes present.

  Attributes:
    sample_rate: samples per second and channel.
    frames: sample frames actually present: the declared data size, capped
      by the bytes the file holds.
    channels: interleaved channels.
    bits: bits per sample.
    format_tag: 1 (integer PCM) or 3 (IEEE float), resolved through
      WAVE_FORMAT_EXTENSIBLE's sub-format; other codecs keep their tag.
    data_offset: where the samples start in the file.
    big_endian: True for RIFX files.
    block_align: bytes per frame.
  """
  sample_rate: int
  frames: int
  channels: int = 1
  bits: int = 16
  format_tag: int = 1
  data_offset: int = 0
  big_endian: bool = False
  block_align: int = 2

  def dtype(self) -> np.dtype:
    """The NumPy type of one sample, for the formats read here (8-bit
    unsigned, 16- and 32-bit signed, 32- and 64-bit float); 24-bit is
    widened by :func:`pcm_to_float`.

    Raises:
      AudioError: for compressed or unusual sample formats.
    """
    order = '>' if self.big_endian else '<'
    if self.format_tag == 1 and self.bits in (8, 16, 24, 32):
      return np.dtype({8: 'u1', 16: order + 'i2', 24: 'V3',
                       32: order + 'i4'}[self.bits])
    if self.format_tag == 3 and self.bits in (32, 64):
      return np.dtype(order + ('f4' if self.bits == 32 else 'f8'))
    raise AudioError(f'unsupported WAV sample format (format tag '
                     f'{self.format_tag}, {self.bits} bits); integer PCM '
                     '(8, 16, 24, 32 bits) and float (32, 64 bits) are read')


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
  riff_end = struct.unpack(order + 'I', riff[4:8])[0] + 8
  fmt = None
  extensible_tag = None
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
      rest = size - 16
      if fmt[0] == 0xFFFE and size >= 40:
        # WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the tag.
        extra = _read_exact(stream, 24, 'fmt chunk')
        extensible_tag = struct.unpack(order + 'H', extra[8:10])[0]
        rest -= 24
      stream.seek(rest + (size & 1), io.SEEK_CUR)
    elif chunk_id == b'data':
      if fmt is None:
        raise AudioError('data chunk before the fmt chunk')
      if riff[:4] != b'RF64' and stream.tell() > riff_end:
        # SciPy, and so every reader before the block reader, stops there.
        raise AudioError(f'the RIFF size ({riff_end - 8} bytes) ends before '
                         'the data chunk')
      if size == 0xFFFFFFFF and rf64_data_size is not None:
        size = rf64_data_size
      break
    else:
      stream.seek(size + (size & 1), io.SEEK_CUR)
  tag, channels, rate, byte_rate, block_align, bits = fmt
  if byte_rate != rate * block_align:
    # SciPy refuses such a header too; every reader here always has.
    raise AudioError(f'the fmt chunk declares {byte_rate} bytes a second, '
                     f'not {rate} Hz times {block_align}-byte blocks')
  if channels < 1:
    raise AudioError('the fmt chunk declares 0 channels')
  if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
    raise AudioError(f'sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}..'
                     f'{MAX_SAMPLE_RATE} Hz')
  if block_align < 1 or bits < 1:
    raise AudioError(f'the fmt chunk declares {bits}-bit samples in '
                     f'{block_align}-byte blocks')
  offset = stream.tell()
  present = max(0, length - offset)
  return WavHeader(rate, min(size, present) // block_align, channels, bits,
                   extensible_tag if tag == 0xFFFE and extensible_tag else tag,
                   offset, order == '>', block_align)


def pcm_to_float(data: bytes, header: WavHeader) -> np.ndarray:
  """Whole frames of raw WAV sample bytes to float64 [frames, channels] in
  [-1, 1].

  Raises:
    AudioError: for a sample format :meth:`WavHeader.dtype` refuses.
  """
  dtype = header.dtype()
  frames = len(data) // header.block_align
  if header.block_align != header.channels * dtype.itemsize:
    raise AudioError(f'{header.block_align}-byte frames do not hold '
                     f'{header.channels} samples of {header.bits} bits')
  data = data[:frames * header.block_align]
  if header.bits == 24:
    raw = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
    if header.big_endian:
      raw = raw[:, ::-1]
    values = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
    values = np.where(values >= 1 << 23, values - (1 << 24), values)
    samples = values / float(1 << 23)
  elif dtype.kind == 'u':
    samples = (np.frombuffer(data, dtype).astype(np.float64) - 128.0) / 128.0
  elif dtype.kind == 'i':
    info = np.iinfo(dtype)
    samples = np.frombuffer(data, dtype).astype(np.float64) / -float(info.min)
  else:
    samples = np.frombuffer(data, dtype).astype(np.float64)
  return samples.reshape(frames, header.channels)


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
  check_length(header.frames, header.sample_rate, name, max_seconds,
                header.channels)
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
  check_length(samples.shape[0], rate, name, max_seconds)
  if samples.dtype.kind in 'iu':
    info = np.iinfo(samples.dtype)
    samples = (samples.astype(np.float64) - (info.max + info.min + 1) / 2.0) / (
        (info.max - info.min + 1) / 2.0)
  samples = samples.astype(np.float64)
  if samples.ndim == 2:
    samples = samples.mean(axis=1)
  return samples, int(rate)


def check_length(frames: int, rate: int, name: str,
                 max_seconds: Optional[float], channels: int = 1,
                 max_samples: Optional[int] = MAX_DECODED_SAMPLES) -> None:
  """Refuses (AudioError, naming `name`) a clip of `frames` at `rate`
  shorter than :data:`MIN_CLIP_SAMPLES`, or over :func:`check_limits`."""
  if frames < MIN_CLIP_SAMPLES:
    raise AudioError(
        f'{name}: clip too short for a spectrogram: {frames} samples '
        f'({1000 * frames / rate:.1f} ms at {rate} Hz); at least '
        f'{MIN_CLIP_SAMPLES} are needed (half an analysis window)')
  check_limits(frames, rate, name, max_seconds, channels, max_samples)


def check_limits(frames: int, rate: int, name: str,
                 max_seconds: Optional[float], channels: int = 1,
                 max_samples: Optional[int] = MAX_DECODED_SAMPLES) -> None:
  """Refuses (AudioError, naming `name`) a clip of `frames` at `rate`
  longer than `max_seconds`, or over `max_samples` samples with
  `channels` (None: no bound); also what is decoded so far of one whose
  length is unknown."""
  if max_seconds is not None and frames / rate > max_seconds:
    raise AudioError(
        f'{name}: clip is {frames / rate:.1f} s long, over the limit of '
        f'{max_seconds:g} s (--max-clip-seconds); split long recordings '
        'into clips')
  if max_samples is not None and frames * channels > max_samples:
    raise AudioError(
        f'{name}: clip holds {frames * channels:,} samples ({frames / rate:.1f}'
        f' s at {rate} Hz, {channels} channels), over the '
        f'{max_samples:,} one recording may decode to (10 min at '
        '192 kHz stereo); not decoded')


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
  """Encodes float samples in [-1, 1] as 16-bit PCM mono WAV bytes.

  Args:
    audio: mono samples.
    sample_rate: sampling rate in Hz.

  Returns:
    The WAV file's bytes.
  """
  pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype('<i2')
  return pcm_wav_bytes(pcm.tobytes(), sample_rate)


def pcm_wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
  """Mono 16-bit little-endian PCM as WAV file bytes (an odd last byte is
  left out)."""
  buffer = io.BytesIO()
  with wave.open(buffer, 'wb') as out:
    out.setnchannels(1)
    out.setsampwidth(2)
    out.setframerate(int(sample_rate))
    out.writeframes(pcm[:len(pcm) // 2 * 2])
  return buffer.getvalue()
