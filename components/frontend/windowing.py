"""The NumPy front end over time: a recording (any channels, any rate) to
mono at the front end's rate, cut into windows, each drawn by
:func:`melscale.render`, whole or as a stream in bounded memory. Ingest and
`predict` both cut with these functions, so a device's windows are the
windows trained on (the steps are listed in :mod:`components.frontend.spec`).
"""

import dataclasses
import math
from typing import Iterator, List, Optional, Tuple

import numpy as np

from components.frontend import melscale
from components.frontend.spec import FrontEnd

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
    AudioError: for non-finite samples.
  """
  return melscale.render(window, front_end)


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
