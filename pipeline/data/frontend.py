"""The audio front end: how a recording becomes the model's input images.

One :class:`FrontEnd` says everything a device needs to turn microphone
audio into what the model takes, and it is recorded with every span
(`ingest.json`, the Examples artifact) and in every pushed manifest:

1. **Mono.** Channels are averaged.
2. **One rate.** The clip is resampled to `sample_rate` with SciPy's
   polyphase resampler (`scipy.signal.resample_poly`: an anti-aliasing
   Kaiser-windowed FIR, applied at the exact rational ratio, e.g. 160/441
   from 44.1 kHz to 16 kHz). SciPy is already in the lock, so nothing new
   is installed, and the same call runs at ingest and in `predict`.
3. **Windows.** The clip is cut into windows of `window_seconds`, one every
   `hop_seconds`; the last window, and a clip shorter than one window, are
   padded with zeros at the end, so every sample is in some window. At
   ingest at most `max_windows` windows are taken from one file, evenly
   spaced over it.
4. **A picture per window.** `image_size` frames, one every
   `window_samples // image_size` samples, each of `fft_size` samples
   (zeros added `fft_size // 2` before the window and after it), Hann
   window, power spectrum, `image_size` triangular mel bands (HTK scale,
   area-normalised) from `mel_min_hz` to `mel_max_hz`, decibels relative
   to the window's own peak, floored at `-top_db`, scaled to 0..1 and
   coloured with `colormap`; low frequencies in the bottom row.

The default (16 kHz, 1 s windows, 2048-point FFT, 20 Hz to 8 kHz, 80 dB,
magma) draws the synthesized clips exactly as before the front end was a
setting.
"""

import dataclasses
import math
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from components.common import melscale
from pipeline.data import spectrogram

# Bump when the meaning of a field changes, so recorded front ends compare
# unequal to the new ones.
VERSION = 1
COLORMAPS = ('magma', 'gray')
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384_000


class FrontEndError(spectrogram.AudioError):
  """Raised for front end settings no window can be rendered with."""


@dataclasses.dataclass(frozen=True)
class FrontEnd:
  """The audio front end's settings (see the module's docstring).

  Attributes:
    sample_rate: rate every clip is resampled to, in Hz.
    window_seconds: length of one window (one image).
    hop_seconds: time between the starts of consecutive windows.
    fft_size: samples per analysis frame (a power of two).
    mel_min_hz: lowest frequency of the mel bands.
    mel_max_hz: highest frequency of the mel bands (0: half the rate).
    top_db: dynamic range shown, in dB below the window's peak.
    colormap: `magma` (dark to bright) or `gray`.
    image_size: frames (columns) and mel bands (rows) per image.
    max_windows: most windows taken from one file at ingest (0: all).
  """
  sample_rate: int = 16000
  window_seconds: float = 1.0
  hop_seconds: float = 1.0
  fft_size: int = 2048
  mel_min_hz: float = 20.0
  mel_max_hz: float = 0.0
  top_db: float = 80.0
  colormap: str = 'magma'
  image_size: int = 128
  max_windows: int = 60

  def __post_init__(self):
    problems = self.problems()
    if problems:
      raise FrontEndError('; '.join(problems))

  def problems(self) -> List[str]:
    """What makes these settings unusable, as sentences naming them."""
    found = []
    if not MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE:
      found.append(f'sample_rate {self.sample_rate} Hz is outside '
                   f'{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}')
    if not self.window_seconds > 0 or not self.hop_seconds > 0:
      found.append('window_seconds and hop_seconds must be positive, got '
                   f'{self.window_seconds} and {self.hop_seconds}')
    if self.fft_size < 64 or self.fft_size & (self.fft_size - 1):
      found.append(f'fft_size must be a power of two of at least 64, got '
                   f'{self.fft_size}')
    if self.image_size < 8:
      found.append(f'image_size must be at least 8, got {self.image_size}')
    if found:
      return found
    nyquist = self.sample_rate / 2.0
    top = self.mel_max_hz or nyquist
    if not 0 <= self.mel_min_hz < top <= nyquist:
      found.append(f'the mel bands must lie in 0..{nyquist:g} Hz (half the '
                   f'sample rate), low below high; got {self.mel_min_hz:g} '
                   f'to {top:g} Hz')
    if self.window_samples < self.image_size:
      found.append(f'window_seconds {self.window_seconds:g} holds '
                   f'{self.window_samples} samples, fewer than the '
                   f'{self.image_size} frames of an image')
    if self.hop_samples < 1:
      found.append(f'hop_seconds {self.hop_seconds:g} is under one sample')
    if not self.top_db > 0:
      found.append(f'top_db must be positive, got {self.top_db}')
    if self.colormap not in COLORMAPS:
      found.append(f'colormap must be one of {", ".join(COLORMAPS)}, got '
                   f'{self.colormap!r}')
    if self.max_windows < 0:
      found.append(f'max_windows must not be negative, got {self.max_windows}')
    return found

  @property
  def window_samples(self) -> int:
    return int(round(self.window_seconds * self.sample_rate))

  @property
  def hop_samples(self) -> int:
    return int(round(self.hop_seconds * self.sample_rate))

  @property
  def frame_hop(self) -> int:
    """Samples between the image's columns."""
    return self.window_samples // self.image_size

  @property
  def mel_top_hz(self) -> float:
    return float(self.mel_max_hz or self.sample_rate / 2.0)

  @classmethod
  def from_record(cls, record: Dict[str, Any]) -> 'FrontEnd':
    """The front end a :meth:`record` describes (all windows taken).

    Raises:
      FrontEndError: for a record of another version, or unusable values.
    """
    if record.get('version') != VERSION:
      raise FrontEndError(f"front end version {record.get('version')} is "
                          f'not {VERSION}, the one this code draws')
    return cls(sample_rate=int(record['sample_rate']),
               window_seconds=float(record['window_seconds']),
               hop_seconds=float(record['hop_seconds']),
               fft_size=int(record['fft_size']),
               mel_min_hz=float(record['mel_min_hz']),
               mel_max_hz=float(record['mel_max_hz']),
               top_db=float(record['top_db']),
               colormap=str(record['colormap']),
               image_size=int(record['frames']), max_windows=0)

  def record(self) -> Dict[str, Any]:
    """The machine-readable contract a span and a manifest carry: the
    settings that change the picture (not `max_windows`, which only bounds
    how many are taken), resolved, and the steps between them."""
    return {
        'version': VERSION,
        'sample_rate': self.sample_rate,
        'channels': 1,
        'downmix': 'mean of the channels',
        'resampler': 'scipy.signal.resample_poly (Kaiser-windowed FIR, '
                     'exact rational ratio)',
        'window_seconds': self.window_seconds,
        'window_samples': self.window_samples,
        'hop_seconds': self.hop_seconds,
        'hop_samples': self.hop_samples,
        'padding': 'zeros at the end, to a whole window',
        'fft_size': self.fft_size,
        'frame_window': 'hann',
        'frame_hop_samples': self.frame_hop,
        'frame_padding': f'{self.fft_size // 2} zeros before the window and '
                         f'{self.fft_size // 2 + self.frame_hop * self.image_size}'
                         ' after it; frame i starts at i * frame_hop_samples',
        'frames': self.image_size,
        'mel_bands': self.image_size,
        'mel_scale': 'htk, triangular, area-normalised',
        'mel_min_hz': float(self.mel_min_hz),
        'mel_max_hz': self.mel_top_hz,
        'power': 2,
        'db_reference': "the window's peak",
        'top_db': float(self.top_db),
        'scaling': '(clip(dB, -top_db, 0) / top_db + 1) * 255',
        'colormap': self.colormap,
        'image': f'{self.image_size}x{self.image_size} RGB uint8, low '
                 'frequencies in the bottom row, time left to right',
    }


def describe(record: Dict[str, Any]) -> str:
  """A short line naming a recorded front end's settings."""
  return (f"{record.get('sample_rate')} Hz, {record.get('window_seconds')} s "
          f"windows every {record.get('hop_seconds')} s, FFT "
          f"{record.get('fft_size')}, {record.get('mel_bands')} mel bands "
          f"{record.get('mel_min_hz'):g}-{record.get('mel_max_hz'):g} Hz, "
          f"{record.get('top_db'):g} dB, {record.get('colormap')}")


def to_mono(samples: np.ndarray) -> np.ndarray:
  """[frames] or [frames, channels] samples to mono float64."""
  samples = np.asarray(samples, dtype=np.float64)
  return samples.mean(axis=1) if samples.ndim == 2 else samples.reshape(-1)


def _ratio(from_rate: int, to_rate: int) -> Tuple[int, int]:
  divisor = math.gcd(int(from_rate), int(to_rate))
  return int(to_rate) // divisor, int(from_rate) // divisor


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
  """Mono samples from `from_rate` to `to_rate` (anti-aliased)."""
  samples = np.asarray(samples, dtype=np.float64)
  if int(from_rate) == int(to_rate):
    return samples
  from scipy import signal  # pylint: disable=g-import-not-at-top
  up, down = _ratio(from_rate, to_rate)
  return signal.resample_poly(samples, up, down)


def window_starts(samples: int, front_end: FrontEnd,
                  max_windows: Optional[int] = None) -> List[int]:
  """Start sample of every window of a clip of `samples` samples.

  A clip of at most one window has one window; a longer one has a window
  every hop until the clip's end is covered (the last window may run past
  it and is padded). With `max_windows` (default: the front end's; 0: no
  bound) that many are taken, evenly spaced, first and last included.
  """
  window, hop = front_end.window_samples, front_end.hop_samples
  count = 1 + max(0, math.ceil((samples - window) / hop))
  starts = [index * hop for index in range(count)]
  bound = front_end.max_windows if max_windows is None else max_windows
  if bound and count > bound:
    picks = np.linspace(0, count - 1, bound).round().astype(int)
    starts = [starts[index] for index in sorted(set(picks.tolist()))]
  return starts


def window_at(samples: np.ndarray, start: int,
              front_end: FrontEnd) -> np.ndarray:
  """The window starting at `start`, zero-padded at the end."""
  window = samples[start:start + front_end.window_samples]
  if window.size < front_end.window_samples:
    window = np.pad(window, (0, front_end.window_samples - window.size))
  return window


def render(window: np.ndarray, front_end: FrontEnd) -> np.ndarray:
  """One window of samples at the front end's rate to its uint8 RGB image.

  Raises:
    spectrogram.AudioError: for non-finite samples.
  """
  return melscale.render(window, front_end.record())


# Recordings per span whose first window keeps its samples (`audio_pcm`)
# for the pusher's proof of the waveform model: 32 KB each at 16 kHz.
PROOF_WINDOWS = 256


@dataclasses.dataclass(frozen=True)
class Window:
  """One rendered window: its place in the source clip, its image and the
  mono samples at the front end's rate (zero-padded) it was drawn from."""
  start: float
  end: float
  image: np.ndarray
  samples: Optional[np.ndarray] = None


def sample_windows(samples: np.ndarray, rate: int, front_end: FrontEnd,
                   max_windows: Optional[int] = None
                   ) -> Iterator[Tuple[float, float, np.ndarray]]:
  """Every window of a clip (any channels, any rate) as (start, end,
  samples at the front end's rate, zero-padded); `end` is the window's end
  in the source, capped at the clip's length."""
  audio = resample(to_mono(samples), rate, front_end.sample_rate)
  seconds = audio.size / front_end.sample_rate
  for start in window_starts(audio.size, front_end, max_windows):
    begin = start / front_end.sample_rate
    yield (round(begin, 6),
           round(min(seconds, begin + front_end.window_seconds), 6),
           window_at(audio, start, front_end))


def clip_windows(samples: np.ndarray, rate: int, front_end: FrontEnd,
                 max_windows: Optional[int] = None) -> Iterator[Window]:
  """Every window of a clip (any channels, any rate), rendered."""
  for start, end, window in sample_windows(samples, rate, front_end,
                                           max_windows):
    yield Window(start, end, render(window, front_end), window)


class StreamResampler:
  """:func:`resample` over a stream, in bounded memory.

  The input is resampled in blocks of a multiple of the ratio's
  denominator, each with the same number of samples of context on both
  sides (more than the filter's half length), so the output equals that of
  resampling the whole stream at once up to rounding, whatever the sizes
  of the pieces pushed.
  """

  def __init__(self, from_rate: int, to_rate: int, block_seconds: float = 0.5):
    self.up, self.down = _ratio(from_rate, to_rate)
    self.identity = self.up == self.down
    # resample_poly's filter has 10 * max(up, down) taps on each side at
    # the upsampled rate: that many / up input samples.
    half = 10 * max(self.up, self.down) // self.up + 2
    self._context = self.down * math.ceil(half / self.down)
    self._block = self.down * max(1, int(block_seconds * from_rate) //
                                  self.down)
    self._buffer = np.zeros(self._context)  # silence before the start
    self._consumed = 0  # input samples resampled, past the context

  def push(self, samples: np.ndarray) -> np.ndarray:
    """Takes more mono input; returns the output it completes."""
    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    if self.identity:
      return samples
    self._buffer = np.concatenate([self._buffer, samples])
    pieces = []
    while self._buffer.size >= 2 * self._context + self._block:
      pieces.append(self._resample(self._block))
    return np.concatenate(pieces) if pieces else np.zeros(0)

  def flush(self) -> np.ndarray:
    """The output of the input left, as if silence followed it."""
    if self.identity:
      return np.zeros(0)
    left = self._buffer.size - self._context
    if left <= 0:
      return np.zeros(0)
    self._buffer = np.concatenate([self._buffer, np.zeros(self._context)])
    # Output samples the whole stream would have: ceil(n * up / down).
    total = math.ceil((self._consumed + left) * self.up / self.down)
    done = self._consumed * self.up // self.down
    rounded = self.down * math.ceil(left / self.down)
    self._buffer = np.concatenate([self._buffer,
                                   np.zeros(rounded - left)])
    return self._resample(rounded)[:total - done]

  def _resample(self, block: int) -> np.ndarray:
    from scipy import signal  # pylint: disable=g-import-not-at-top
    segment = self._buffer[:block + 2 * self._context]
    out = signal.resample_poly(segment, self.up, self.down)
    skip = self._context * self.up // self.down
    result = out[skip:skip + block * self.up // self.down]
    self._buffer = self._buffer[block:]
    self._consumed += block
    return result


class StreamWindows:
  """Cuts a stream of audio (any rate, any channels) into the front end's
  windows as it arrives, in bounded memory: the phase-one loop of a device.

  Push frames with :meth:`push`; it yields each window completed, as
  (start in seconds, end in seconds, samples at the front end's rate).
  :meth:`finish` yields the last, zero-padded window(s). The windows and
  their times are those :func:`clip_windows` gives for the whole clip.
  """

  def __init__(self, front_end: FrontEnd, rate: int):
    self.front_end = front_end
    self._resampler = StreamResampler(rate, front_end.sample_rate)
    self._buffer = np.zeros(0)
    self._offset = 0  # front-end samples dropped from the buffer's start
    self._next = 0  # start of the next window, in front-end samples
    self._total = 0  # front-end samples received
    self._emitted = 0

  def push(self, frames: np.ndarray) -> Iterator[Tuple[float, float,
                                                       np.ndarray]]:
    """Takes [frames] or [frames, channels] samples."""
    yield from self._take(self._resampler.push(to_mono(frames)), final=False)

  def finish(self) -> Iterator[Tuple[float, float, np.ndarray]]:
    """The windows covering what is left (padded with silence)."""
    yield from self._take(self._resampler.flush(), final=True)

  def _take(self, samples: np.ndarray, final: bool):
    fe = self.front_end
    self._buffer = np.concatenate([self._buffer, samples])
    self._total += samples.size
    # At the end the clip's length is known: its windows are those of
    # window_starts (no bound on their number).
    count = (1 + max(0, math.ceil((self._total - fe.window_samples) /
                                  fe.hop_samples))) if self._total else 0
    while (self._emitted < count if final else
           self._next + fe.window_samples <= self._total):
      window = window_at(self._buffer, self._next - self._offset, fe)
      start = self._next / fe.sample_rate
      end = min(self._total / fe.sample_rate, start + fe.window_seconds)
      yield round(start, 6), round(end, 6), window
      self._emitted += 1
      self._next += fe.hop_samples
      drop = min(self._next - self._offset, self._buffer.size)
      self._buffer = self._buffer[drop:]
      self._offset += drop
