"""Deterministic synthesis of the embedded default data set.

No data set can be downloaded where this project runs, so it makes its own:
short mono clips of instrument-like sounds (plucked, bowed, blown and struck
tones, chords and short melodies, with varied timbre, envelope, pitch and
vibrato) and of non-instrument sounds (coloured noise, speech-like formant
sequences, clicks, rain, wind, engines, beeps, sirens and mains hum), spoiled
by realistic nuisances (background noise, gain, silence padding, clipping).
Each clip is rendered by :func:`components.frontend.melscale.spectrogram_image` and
saved as PNG (or kept as WAV) in one folder per class, the layout Keras'
``flow_from_directory`` reads, in a local folder (`ingest` then writes it
as a span wherever the data root is).

Every clip is a pure function of (seed, class, index), so the data set is the
same whatever the number of worker processes.
"""

import json
import multiprocessing
import os
import shutil
import sys
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from components.common import local_disk
from components.frontend import melscale
from pipeline.data import spectrogram
from components.common import errors

SAMPLE_RATE = spectrogram.DEFAULT_SAMPLE_RATE
CLIP_SECONDS = 1.0
MANIFEST_NAME = 'synth.json'
# Bump when the generator changes, so an old data set is not taken as current.
GENERATOR_VERSION = 2
# Where the clips come from: the procedural generator below, or sampled
# instruments and real speech (:mod:`pipeline.data.sampled`).
SOURCES = ('procedural', 'sampled')
# 2: a third sample set (csound's General MIDI bank).
SAMPLED_VERSION = 2
# Clips per class of the default data: 200 of each of the 14 families
# phase two learns. Phase two's mean family recall was 0.58 on the earlier
# 1,000 clips per class of two sample sets and 0.67 on these; it grows by
# about 0.08 each time the clips per family double.
DEFAULT_PER_CLASS = 2800
# Procedural clips per job (each is a pure function of its arguments; a
# sampled job is one chunk of pipeline/data/sampled.py).
_PROCEDURAL_CHUNK = 50

_N = int(SAMPLE_RATE * CLIP_SECONDS)
_T = np.arange(_N) / SAMPLE_RATE


def _envelope(rng: np.random.Generator, kind: str, n: int = _N) -> np.ndarray:
  t = np.arange(n) / SAMPLE_RATE
  if kind == 'pluck':
    return np.exp(-t * rng.uniform(3.0, 9.0)) * np.minimum(1.0, t / 0.003)
  if kind == 'strike':
    return np.exp(-t * rng.uniform(2.0, 6.0)) * np.minimum(1.0, t / 0.001)
  attack = rng.uniform(0.03, 0.25)
  release = rng.uniform(0.05, 0.3)
  env = np.minimum(1.0, t / attack)
  return env * np.clip((t[-1] - t) / release, 0.0, 1.0)


def _note_hz(rng: np.random.Generator, low: int = 33, high: int = 84) -> float:
  """An equal-tempered MIDI note between `low` and `high`, slightly detuned."""
  midi = rng.integers(low, high) + rng.normal(0.0, 0.08)
  return float(440.0 * 2.0 ** ((midi - 69) / 12.0))


def _harmonic_tone(rng: np.random.Generator, f0: float, style: str,
                   n: int = _N) -> np.ndarray:
  t = np.arange(n) / SAMPLE_RATE
  vibrato_depth = rng.uniform(0.0, 0.01) if style in ('bow', 'blow') else 0.0
  vibrato = 1.0 + vibrato_depth * np.sin(
      2 * np.pi * rng.uniform(4.5, 7.0) * t + rng.uniform(0, 2 * np.pi))
  phase = 2 * np.pi * f0 * np.cumsum(vibrato) / SAMPLE_RATE
  max_harmonic = int(min(24, (SAMPLE_RATE / 2 - 200) // f0))
  signal = np.zeros(n)
  tilt = rng.uniform(0.6, 1.6)
  inharmonic = rng.uniform(0.0, 0.0004) if style == 'pluck' else 0.0
  for k in range(1, max(2, max_harmonic + 1)):
    if style == 'blow' and k % 2 == 0 and rng.random() < 0.8:
      continue
    amplitude = k ** -tilt * rng.uniform(0.5, 1.0)
    stretch = k * np.sqrt(1.0 + inharmonic * k * k)
    partial = amplitude * np.sin(stretch * phase + rng.uniform(0, 2 * np.pi))
    if style in ('pluck', 'strike'):
      partial *= np.exp(-t * k * rng.uniform(0.2, 1.5))
    signal += partial
  if style == 'blow':
    signal += rng.uniform(0.0, 0.05) * rng.normal(size=n)
  return signal


def _bell(rng: np.random.Generator, n: int = _N) -> np.ndarray:
  t = np.arange(n) / SAMPLE_RATE
  f0 = _note_hz(rng, 60, 90)
  ratios = [0.5, 1.0, 1.2, 1.5, 2.0, 2.5, 2.67, 3.0, 4.0]
  signal = np.zeros(n)
  for i, ratio in enumerate(ratios):
    if f0 * ratio < SAMPLE_RATE / 2 - 200:
      signal += rng.uniform(0.3, 1.0) * np.exp(-t * (1.0 + i)) * np.sin(
          2 * np.pi * f0 * ratio * t)
  return signal


def _instrument_note(rng: np.random.Generator) -> np.ndarray:
  style = rng.choice(['pluck', 'bow', 'blow', 'strike', 'strike_bell'])
  if style == 'strike_bell':
    return _bell(rng) * _envelope(rng, 'strike')
  tone = _harmonic_tone(rng, _note_hz(rng), style)
  return tone * _envelope(rng, style)


def _chord(rng: np.random.Generator) -> np.ndarray:
  style = rng.choice(['pluck', 'bow', 'blow', 'strike'])
  root = rng.integers(40, 72)
  intervals = [0, int(rng.choice([3, 4])), 7] + ([12] if rng.random() < .4
                                                   else [])
  signal = sum(_harmonic_tone(rng, 440.0 * 2 ** ((root + i - 69) / 12.0),
                              style) for i in intervals)
  return signal * _envelope(rng, style)


def _melody(rng: np.random.Generator) -> np.ndarray:
  style = rng.choice(['pluck', 'bow', 'blow', 'strike'])
  count = int(rng.integers(2, 5))
  bounds = np.linspace(0, _N, count + 1).astype(int)
  signal = np.zeros(_N)
  midi = int(rng.integers(45, 76))
  for start, end in zip(bounds[:-1], bounds[1:]):
    midi += int(rng.choice([-5, -3, -2, 2, 3, 4, 5, 7]))
    f0 = 440.0 * 2 ** ((midi - 69) / 12.0)
    note = _harmonic_tone(rng, f0, style, end - start)
    signal[start:end] = note * _envelope(rng, style, end - start)
  return signal


def _colored_noise(rng: np.random.Generator, exponent: float,
                   n: int = _N) -> np.ndarray:
  spectrum = np.fft.rfft(rng.normal(size=n))
  freqs = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 1.0)
  return np.fft.irfft(spectrum / freqs ** (exponent / 2), n)


def _bandpass_noise(rng: np.random.Generator, low: float, high: float,
                    n: int = _N) -> np.ndarray:
  spectrum = np.fft.rfft(rng.normal(size=n))
  freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
  spectrum[(freqs < low) | (freqs > high)] = 0
  return np.fft.irfft(spectrum, n)


def _noise(rng: np.random.Generator) -> np.ndarray:
  signal = _colored_noise(rng, rng.choice([0.0, 1.0, 2.0]))
  return signal * _envelope(rng, 'sustain')


def _speech(rng: np.random.Generator) -> np.ndarray:
  """Voiced syllables with gliding pitch and moving formants, plus fricatives."""
  t = _T
  f0 = rng.uniform(90, 250) * (1 + 0.15 * np.sin(
      2 * np.pi * rng.uniform(0.5, 2.0) * t + rng.uniform(0, 6.28)))
  f0 *= np.exp(np.cumsum(rng.normal(0, 0.002, _N)))
  phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
  source = np.zeros(_N)
  for k in range(1, 30):
    source += np.sin(k * phase) / k
  formants = [rng.uniform(300, 900), rng.uniform(900, 2400),
              rng.uniform(2400, 3400)]
  spectrum = np.fft.rfft(source)
  freqs = np.fft.rfftfreq(_N, 1 / SAMPLE_RATE)
  shape = sum(np.exp(-((freqs - f) / rng.uniform(60, 160)) ** 2)
              for f in formants)
  voiced = np.fft.irfft(spectrum * (shape + 0.02), _N)
  syllable_rate = rng.uniform(3.0, 6.0)
  syllables = np.clip(np.sin(2 * np.pi * syllable_rate * t +
                             rng.uniform(0, 6.28)), 0, None) ** 0.7
  fricative = _bandpass_noise(rng, 3000, 7500) * (1 - syllables) ** 4
  return voiced * syllables + rng.uniform(0.05, 0.3) * fricative


def _clicks(rng: np.random.Generator) -> np.ndarray:
  signal = np.zeros(_N)
  for position in rng.integers(0, _N - 200, int(rng.integers(3, 40))):
    length = int(rng.integers(5, 150))
    signal[position:position + length] += rng.normal(size=length) * np.exp(
        -np.arange(length) / rng.uniform(3, 40)) * rng.uniform(0.2, 1.0)
  return signal


def _rain(rng: np.random.Generator) -> np.ndarray:
  return _clicks(rng) * 0.5 + _colored_noise(rng, 1.0) * rng.uniform(0.05, .3)


def _wind(rng: np.random.Generator) -> np.ndarray:
  gust = 1 + 0.8 * np.sin(2 * np.pi * rng.uniform(0.2, 1.5) * _T +
                          rng.uniform(0, 6.28))
  return _bandpass_noise(rng, 20, rng.uniform(300, 1500)) * gust


def _engine(rng: np.random.Generator) -> np.ndarray:
  rpm = rng.uniform(15, 60) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 1)
                                                 * _T))
  phase = 2 * np.pi * np.cumsum(rpm) / SAMPLE_RATE
  pulses = np.maximum(0, np.sin(phase)) ** rng.uniform(4, 20)
  return pulses * _colored_noise(rng, 1.0) * 3 + _colored_noise(rng, 2.0) * .2


def _beeps(rng: np.random.Generator) -> np.ndarray:
  """Pure sine or DTMF beeps: tonal, but without a harmonic series."""
  signal = np.zeros(_N)
  count = int(rng.integers(1, 5))
  for _ in range(count):
    start = int(rng.integers(0, _N // 2))
    length = int(rng.integers(_N // 10, _N // 2))
    t = np.arange(min(length, _N - start)) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * rng.uniform(400, 3500) * t)
    if rng.random() < 0.5:
      tone += np.sin(2 * np.pi * rng.uniform(1200, 1700) * t)
    signal[start:start + t.size] += tone
  return signal


def _siren(rng: np.random.Generator) -> np.ndarray:
  centre, depth = rng.uniform(500, 1500), rng.uniform(100, 600)
  rate = rng.uniform(0.3, 4.0)
  freq = centre + depth * np.sin(2 * np.pi * rate * _T)
  return np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE)


def _hum(rng: np.random.Generator) -> np.ndarray:
  mains = rng.choice([50.0, 60.0])
  return sum(np.sin(2 * np.pi * mains * k * _T) * rng.uniform(0.1, 1) / k
             for k in (1, 3, 5, 7)) + 0.1 * _colored_noise(rng, 0.0)


def _drum_hit(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
  t = np.arange(n) / SAMPLE_RATE
  if kind == 'kick':
    pitch = rng.uniform(45, 70) * (1 + 2.5 * np.exp(-t * 30))
    body = np.sin(2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE)
    return body * np.exp(-t * rng.uniform(8, 20))
  if kind == 'snare':
    tone = np.sin(2 * np.pi * rng.uniform(160, 250) * t)
    noise = _bandpass_noise(rng, 1000, 8000, n)
    return (0.5 * tone + noise) * np.exp(-t * rng.uniform(15, 35))
  if kind == 'hat':
    return _bandpass_noise(rng, 6000, 8000, n) * np.exp(-t * rng.uniform(30,
                                                                         90))
  pitch = rng.uniform(90, 200)  # tom
  return np.sin(2 * np.pi * pitch * t) * np.exp(-t * rng.uniform(6, 14))


def _drums(rng: np.random.Generator) -> np.ndarray:
  """A drum-kit pattern on a steady beat: percussion is an instrument too."""
  signal = np.zeros(_N)
  beat = int(SAMPLE_RATE * 60 / rng.uniform(90, 180) / 2)
  pattern = rng.choice(['kick', 'snare', 'hat', 'tom'], size=16,
                       p=[0.3, 0.25, 0.35, 0.1])
  for index, position in enumerate(range(int(rng.integers(0, beat)), _N,
                                         beat)):
    if rng.random() < 0.85:
      length = _N - position
      signal[position:] += _drum_hit(rng, pattern[index % 16], length) * (
          rng.uniform(0.6, 1.0))
  return signal


def _buzzer(rng: np.random.Generator) -> np.ndarray:
  """An alarm buzzer: a rigid square or sawtooth wave switched on and off."""
  freq = rng.uniform(300, 3000)
  t = _T
  if rng.random() < 0.5:
    wave_ = np.sign(np.sin(2 * np.pi * freq * t))
  else:
    wave_ = 2 * (t * freq - np.floor(0.5 + t * freq))
  gate = (np.sin(2 * np.pi * rng.uniform(1.0, 8.0) * t) > rng.uniform(
      -0.5, 0.5)).astype(float)
  return _lowpass(wave_, SAMPLE_RATE / 2 - 500) * gate


def _lowpass(signal: np.ndarray, cutoff: float) -> np.ndarray:
  spectrum = np.fft.rfft(signal)
  spectrum[np.fft.rfftfreq(signal.size, 1 / SAMPLE_RATE) > cutoff] = 0
  return np.fft.irfft(spectrum, signal.size)


def _horn(rng: np.random.Generator) -> np.ndarray:
  """A car horn: two rich tones a dissonant interval apart, held."""
  base = rng.uniform(300, 520)
  signal = np.zeros(_N)
  for freq in (base, base * rng.uniform(1.18, 1.45)):
    phase = 2 * np.pi * freq * _T
    signal += sum(np.sin(k * phase) / k ** 0.8 for k in range(1, 12)
                  if freq * k < SAMPLE_RATE / 2 - 200)
  start = int(rng.integers(0, _N // 3))
  length = int(rng.integers(_N // 5, _N - start))
  gate = np.zeros(_N)
  gate[start:start + length] = 1
  return signal * gate


def _birdsong(rng: np.random.Generator) -> np.ndarray:
  """Fast chirps sweeping in pitch, with a few harmonics."""
  signal = np.zeros(_N)
  for _ in range(int(rng.integers(2, 9))):
    length = int(rng.uniform(0.03, 0.15) * SAMPLE_RATE)
    start = int(rng.integers(0, _N - length))
    t = np.arange(length) / SAMPLE_RATE
    f_start, f_end = rng.uniform(1500, 6000, size=2)
    freq = np.linspace(f_start, f_end, length)
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    chirp = np.sin(phase) + 0.3 * np.sin(2 * phase) * (freq < 3800)
    signal[start:start + length] += chirp * np.sin(np.pi * t / t[-1])
  return signal


def _knocks(rng: np.random.Generator) -> np.ndarray:
  """Knocking or footsteps: thuds at a loose, irregular pace."""
  signal = np.zeros(_N)
  position = int(rng.integers(0, _N // 4))
  while position < _N:
    length = _N - position
    t = np.arange(length) / SAMPLE_RATE
    thud = _bandpass_noise(rng, 60, rng.uniform(400, 2500), length)
    signal[position:] += thud * np.exp(-t * rng.uniform(25, 60))
    position += int(SAMPLE_RATE * rng.uniform(0.12, 0.5))
  return signal


INSTRUMENT_KINDS: Dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    'note': _instrument_note,
    'chord': _chord,
    'melody': _melody,
    'drums': _drums,
}
NOT_INSTRUMENT_KINDS: Dict[str, Callable[[np.random.Generator],
                                         np.ndarray]] = {
    'noise': _noise,
    'speech': _speech,
    'clicks': _clicks,
    'rain': _rain,
    'wind': _wind,
    'engine': _engine,
    'beeps': _beeps,
    'siren': _siren,
    'hum': _hum,
    'buzzer': _buzzer,
    'horn': _horn,
    'birdsong': _birdsong,
    'knocks': _knocks,
}


# The procedural noises sampled data mix in (flite speaks, so not the
# procedural formant speech).
_NOISES = {name: make for name, make in NOT_INSTRUMENT_KINDS.items()
           if name != 'speech'}


class SynthError(errors.PipelineError, ValueError):
  """Raised for a bad synthesis setting or an occupied destination."""


def _normalize(signal: np.ndarray) -> np.ndarray:
  peak = np.max(np.abs(signal))
  return signal / peak if peak > 0 else signal


def _apply_nuisances(rng: np.random.Generator,
                     signal: np.ndarray) -> np.ndarray:
  """Silence padding, gain, clipping and background noise."""
  signal = _normalize(signal)
  if rng.random() < 0.3:
    keep = int(rng.uniform(0.4, 0.9) * _N)
    offset = int(rng.integers(0, _N - keep))
    padded = np.zeros(_N)
    padded[offset:offset + keep] = signal[:keep]
    signal = padded
  signal = signal * 10 ** (rng.uniform(-20, 0) / 20)
  if rng.random() < 0.15:
    limit = np.max(np.abs(signal)) * rng.uniform(0.3, 0.8)
    signal = np.clip(signal * 1.5, -limit, limit)
  snr_db = rng.uniform(0, 35)
  rms = np.sqrt(np.mean(signal ** 2)) + 1e-9
  background = _normalize(_colored_noise(rng, rng.choice([0.0, 1.0, 2.0])))
  background *= rms / (np.sqrt(np.mean(background ** 2)) + 1e-12) / (
      10 ** (snr_db / 20))
  return np.clip(signal + background, -1.0, 1.0)


def make_clip(seed: int, label: int, index: int
              ) -> Tuple[str, np.ndarray]:
  """Synthesizes one procedural clip, a pure function of its arguments.

  Args:
    seed: the data set's seed.
    label: 1 for an instrument sound, 0 for any other sound.
    index: the clip's number within its class.

  Returns:
    (kind, float64 samples in [-1, 1] at SAMPLE_RATE).
  """
  rng = np.random.default_rng([seed, label, index])
  kinds = INSTRUMENT_KINDS if label == 1 else NOT_INSTRUMENT_KINDS
  names = sorted(kinds)
  kind = names[index % len(names)]
  return kind, _apply_nuisances(rng, kinds[kind](rng))


def make_sampled_clip(seed: int, label: int, index: int
                      ) -> Tuple[str, np.ndarray]:
  """One sampled clip (see :mod:`pipeline.data.sampled`): the same for the
  same arguments when rendered in the same place of its chunk.

  Returns:
    (`family/` or `kind/` sub-folder and name, float64 samples in [-1, 1]
    at SAMPLE_RATE).
  """
  from pipeline.data import sampled  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng([seed, 100 + label, index])
  if label == 1:
    kinds = sampled.INSTRUMENT_FAMILIES
    kind = kinds[index % len(kinds)]
    audio = sampled.instrument(rng, kind)
  else:
    kinds = sampled.NOT_INSTRUMENT_KINDS
    kind = kinds[index % len(kinds)]
    audio = sampled.not_instrument(rng, seed, kind, _NOISES)
  return f'{kind}/{kind}', _apply_nuisances(rng, audio)


def _render_chunk(job: Tuple[int, int, int, int, str, str, str, str,
                             Dict[str, Tuple[str, ...]]]) -> int:
  """Renders clips `start` to `stop` of one class, in order (a sampled
  chunk on a fresh synthesizer); returns how many."""
  (seed, label, start, stop, class_name, out_dir, file_format, source,
   subset) = job
  if source == 'sampled':
    from pipeline.data import sampled  # pylint: disable=g-import-not-at-top
    sampled.fresh(**subset)
  make = make_sampled_clip if source == 'sampled' else make_clip
  for index in range(start, stop):
    kind, audio = make(seed, label, index)
    stem = os.path.join(out_dir, class_name, f'{kind}_{index:05d}')
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    if file_format == 'wav':
      with open(stem + '.wav', 'wb') as f:
        f.write(spectrogram.wav_bytes(audio, SAMPLE_RATE))
    else:
      image = melscale.spectrogram_image(audio, SAMPLE_RATE)
      Image.fromarray(image).save(stem + '.png', optimize=False)
  return stop - start


def _manifest(seed: int, per_class: int, class_names: Sequence[str],
              file_format: str, source: str) -> Dict[str, object]:
  wanted: Dict[str, object] = {
      'generator_version': GENERATOR_VERSION, 'seed': seed,
      'per_class': per_class, 'class_names': list(class_names),
      'format': file_format, 'sample_rate': SAMPLE_RATE}
  if source == 'sampled':
    wanted.update(source=source, sampled_version=SAMPLED_VERSION)
  return wanted


def synthesize(out_dir: str, per_class: int = DEFAULT_PER_CLASS,
               seed: int = 0,
               class_names: Sequence[str] = ('not_instrument', 'instrument'),
               file_format: str = 'png', workers: int = 0,
               progress: bool = True, source: str = 'procedural',
               replace: bool = False,
               subset: Optional[Dict[str, Sequence[str]]] = None) -> bool:
  """Writes the data set to `out_dir` unless an identical one is there.

  The set is written to a temporary folder beside `out_dir` and renamed into
  place at the end, so an interrupted run leaves no half data set.

  Args:
    out_dir: destination; gets one subfolder per class.
    per_class: clips per class.
    seed: seed of the whole data set.
    class_names: (negative, positive) folder names, in label order.
    file_format: 'png' (spectrogram images) or 'wav' (the audio clips).
    workers: processes to use; 0 means one per core.
    progress: print progress to stderr.
    source: 'procedural' (this module's generator) or 'sampled' (sampled
      instruments in `instrument/<family>/`, real speech, sound effects
      and mixtures in `not_instrument/<kind>/`; see
      :mod:`pipeline.data.sampled`).
    replace: replace a data set this function wrote with other settings
      (the folder holds its manifest) instead of refusing.
    subset: for `sampled`, `fonts` (soundfont paths) and `voices` (flite
      voices) to draw from instead of all (the bench's transfer part keeps
      sample sets apart so).

  Returns:
    True if the data set was written, False if it was already there.

  Raises:
    SynthError: for a bad argument, or if `out_dir` exists and is not a data
      set written by this function with the same settings.
  """
  if per_class < 1:
    raise SynthError(f'per_class must be at least 1, got {per_class}')
  if file_format not in ('png', 'wav'):
    raise SynthError(f"file_format must be 'png' or 'wav', got {file_format!r}")
  if len(class_names) != 2:
    raise SynthError(f'exactly two class names are needed, got {class_names}')
  if source not in SOURCES:
    raise SynthError(f'source must be one of {", ".join(SOURCES)}, got '
                     f'{source!r}')
  chunk = _PROCEDURAL_CHUNK
  if source == 'sampled':
    from pipeline.data import sampled  # pylint: disable=g-import-not-at-top
    missing = sampled.unavailable()
    if missing:
      raise SynthError(f'sampled data need {missing}')
    chunk = sampled.CHUNK
  subset = {key: tuple(value) for key, value in (subset or {}).items()}
  wanted = _manifest(seed, per_class, class_names, file_format, source)
  if subset:
    wanted['subset'] = {key: list(value) for key, value in subset.items()}
  manifest_path = os.path.join(out_dir, MANIFEST_NAME)
  if os.path.exists(out_dir):
    if os.path.exists(manifest_path):
      with open(manifest_path, encoding='utf-8') as f:
        if json.load(f) == wanted:
          return False
      if replace:
        shutil.rmtree(out_dir)
        return synthesize(out_dir, per_class, seed, class_names, file_format,
                          workers, progress, source, subset=subset)
      raise SynthError(
          f'{out_dir} holds a synthesized data set with other settings; '
          'remove it or choose another --out.')
    raise SynthError(f'{out_dir} exists and is not a synthesized data set; '
                     'choose another --out.')

  # The data set can be made again: no need to flush every clip to disk.
  with local_disk.staged_folder(out_dir, durable=False) as staging:
    for name in class_names:
      os.makedirs(os.path.join(staging, name))
    jobs = [(seed, label, start, min(per_class, start + chunk),
             class_names[label], staging, file_format, source, subset)
            for start in range(0, per_class, chunk) for label in (0, 1)]
    workers = workers or os.cpu_count() or 1
    done, shown, total = 0, 0, 2 * per_class
    with multiprocessing.get_context('spawn').Pool(workers) as pool:
      for count in pool.imap_unordered(_render_chunk, jobs):
        done += count
        if progress and (done * 10 // total > shown or done == total):
          shown = done * 10 // total
          print(f'synth: {done}/{total} clips', file=sys.stderr)
    with open(os.path.join(staging, MANIFEST_NAME), 'w',
              encoding='utf-8') as f:
      json.dump(wanted, f, indent=2)
  return True
