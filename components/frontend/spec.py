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
from typing import Any, Dict, List

from components.common import errors

# Bump when the meaning of a field changes, so recorded front ends compare
# unequal to the new ones.
VERSION = 1
COLORMAPS = ('magma', 'gray')
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384_000


class FrontEndError(errors.AudioError):
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
    """The front end a :meth:`to_record` describes (all windows taken).

    Reads what spans and manifests hold today and held since the front end
    was a setting: the record's fields are only ever added to.

    Raises:
      FrontEndError: for a record of another version, or unusable values.
    """
    if not isinstance(record, dict):
      raise FrontEndError(f'a recorded front end is a JSON object, got '
                          f'{type(record).__name__}')
    if record.get('version') != VERSION:
      raise FrontEndError(f"front end version {record.get('version')} is "
                          f'not {VERSION}, the one this code draws')
    fields = (('sample_rate', int), ('window_seconds', float),
              ('hop_seconds', float), ('fft_size', int),
              ('mel_min_hz', float), ('mel_max_hz', float),
              ('top_db', float), ('colormap', str), ('frames', int))
    values = {}
    for name, kind in fields:
      value = record.get(name)
      if (isinstance(value, bool) or value is None or
          (kind is str) != isinstance(value, str) or
          (kind is int and isinstance(value, float) and
           not value.is_integer())):
        raise FrontEndError(f'the recorded front end\'s {name} is '
                            f'{value!r}, not a{"n" if kind is int else ""} '
                            f'{kind.__name__}')
      try:
        values[name] = kind(value)
      except (OverflowError, ValueError) as e:
        raise FrontEndError(f'the recorded front end\'s {name} is '
                            f'{value!r}: {e}') from e
    values['image_size'] = values.pop('frames')
    return cls(max_windows=0, **values)

  def to_record(self) -> Dict[str, Any]:
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
