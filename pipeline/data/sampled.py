"""Default data that sound like the world: sampled instruments in General
MIDI families, real speech, sound effects and mixtures.

Instruments are rendered through FluidSynth (PyPI's `pyfluidsynth` over
Debian's `libfluidsynth3`) from the General MIDI soundfonts Debian ships
(:data:`SOUNDFONTS`: TimGM6mb, MuseScore General and csound's public-domain
General MIDI bank, three sample sets; each clip from one, chosen at random),
across every General MIDI family but synth effects and sound effects:
single notes, chords, arpeggios and melodies, at varied velocities,
registers, reverb and chorus, drums on channel 10 in `percussive`. Each
goes into `instrument/<family>/`, the family names General MIDI's
(:data:`INSTRUMENT_FAMILIES`).

`not_instrument/<kind>/` holds speech spoken by Debian's `flite` (every
English voice, varied rate and pitch, sentences made from a word list),
the soundfonts' sound-effect programs, the procedural noises of
:mod:`pipeline.data.synth`, and mixtures: speech over noise and speech over
quiet music at a spread of signal-to-noise ratios, and two speakers. Both
classes get the synthesizer's noise floor, gain and padding nuisances.

FluidR3 and espeak are never used: the team checks models on recordings
made with them. :func:`unavailable` says what is missing where the
packages are not installed (`scripts/ensure_sounds.sh` installs them).

**Deterministic for a seed.** FluidSynth is not a pure function of a
clip: a clip's output depends on what the synthesizer rendered before it
(its chorus keeps running, and events fall where its 64-frame blocks do).
So the clips are rendered in fixed chunks (:data:`CHUNK`), each by a fresh
synthesizer (:func:`fresh`) in index order: the data set is the same
whatever the number of worker processes and whichever worker takes a
chunk. flite is deterministic.
"""

import os
import shutil
import subprocess
import tempfile
import wave
from typing import Dict, List, Optional, Tuple

import numpy as np

# General MIDI's sixteen families of eight programs, in program order.
GM_FAMILIES = ('piano', 'chromatic_percussion', 'organ', 'guitar', 'bass',
               'strings', 'ensemble', 'brass', 'reed', 'pipe', 'synth_lead',
               'synth_pad', 'synth_effects', 'ethnic', 'percussive',
               'sound_effects')
INSTRUMENT_FAMILIES = tuple(f for f in GM_FAMILIES
                            if f not in ('synth_effects', 'sound_effects'))
NOT_INSTRUMENT_KINDS = ('speech', 'sound_effects', 'noise',
                        'speech_over_noise', 'speech_over_music',
                        'two_speakers')
# The soundfonts used, by file (never a `default-GM` link, which may name
# FluidR3), and the Debian packages that hold them.
SOUNDFONTS = ('/usr/share/sounds/sf2/TimGM6mb.sf2',
              '/usr/share/sounds/sf3/MuseScore_General.sf3',
              '/usr/share/sounds/sf2/sf_GMbank.sf2')
DEBIAN_PACKAGES = ('libfluidsynth3', 'timgm6mb-soundfont',
                   'musescore-general-soundfont-small', 'csound-soundfont',
                   'flite')
VOICES = ('kal', 'kal16', 'awb', 'rms', 'slt')
# Utterances a data set's speech windows are cut from.
UTTERANCES = 400
# Clips one fresh synthesizer renders, in index order.
CHUNK = 250
SAMPLE_RATE = 16000
_N = SAMPLE_RATE
# MIDI notes each family plays in, low to high.
_REGISTERS = {'piano': (33, 96), 'chromatic_percussion': (60, 96),
              'organ': (36, 84), 'guitar': (40, 84), 'bass': (28, 55),
              'strings': (40, 96), 'ensemble': (40, 84), 'brass': (40, 82),
              'reed': (45, 84), 'pipe': (60, 96), 'synth_lead': (48, 88),
              'synth_pad': (40, 80), 'ethnic': (48, 84),
              'percussive': (40, 80)}
_WORDS = (
    'a about after again air all along also always an and another any '
    'around as ask at away back be because been before began being below '
    'between big both boy but by call came can car carry change children '
    'city close come could country cut day did different do does dog door '
    'down each early earth eat end enough even every example eye face far '
    'father feet few find first follow food for form found four from get '
    'girl give go good got great group grow hand hard has have he head '
    'hear help her here high him his home house how idea if important in '
    'into is it just keep kind know land large last late learn leave left '
    'let life light like line list little live long look made make man '
    'many may me mean men might mile miss more morning most mother move '
    'much must my name near need never new next night no not now number '
    'of off often old on once one only open or other our out over own '
    'page paper part people picture place plant play point put question '
    'quick quite read really right river road run said same saw say school '
    'sea second see seem sentence set she should show side small so some '
    'something sometimes song soon sound spell stand start state still '
    'stop story study such sun take talk tell than that the their them '
    'then there these they thing think this those thought three through '
    'time to together too took tree try turn two under until up us use '
    'very walk want was watch water way we well went were what when where '
    'which while white who why will with without word work world would '
    'write year you young your').split()


def unavailable() -> Optional[str]:
  """What is missing for sampled data (a sentence naming the packages to
  install), or None when everything is there."""
  missing = []
  try:
    import fluidsynth  # pylint: disable=g-import-not-at-top,import-outside-toplevel,unused-import
  except (ImportError, OSError):
    missing.append('FluidSynth (Debian libfluidsynth3, PyPI pyfluidsynth)')
  fonts = [path for path in SOUNDFONTS if os.path.isfile(path)]
  if not fonts:
    missing.append('a General MIDI soundfont (Debian timgm6mb-soundfont, '
                   'musescore-general-soundfont-small)')
  if not shutil.which('flite'):
    missing.append('flite (Debian flite)')
  if not missing:
    return None
  return ('no ' + ', no '.join(missing) + '; install Debian\'s ' +
          ' '.join(DEBIAN_PACKAGES))


class _Instruments:
  """One FluidSynth per process, every soundfont loaded once."""

  def __init__(self, fonts: Tuple[str, ...]):
    import fluidsynth  # pylint: disable=g-import-not-at-top,import-outside-toplevel
    self.synth = fluidsynth.Synth(samplerate=float(SAMPLE_RATE), gain=0.6)
    self.fonts = [self.synth.sfload(path) for path in fonts
                  if os.path.isfile(path)]

  def render(self, rng: np.random.Generator, program: int,
             notes: List[Tuple[float, float, int, int]],
             drums: bool = False) -> np.ndarray:
    """One second of `notes` (start s, end s, key, velocity) on `program`
    of a randomly chosen soundfont; mono float in [-1, 1]."""
    synth = self.synth
    # A reset and a flush between clips: no voice or reverb tail leaks.
    synth.system_reset()
    synth.get_samples(SAMPLE_RATE // 2)
    synth.set_reverb(roomsize=float(rng.uniform(0.0, 0.9)),
                     damping=float(rng.uniform(0.1, 0.9)),
                     width=float(rng.uniform(0.2, 1.0)),
                     level=float(rng.uniform(0.0, 0.8)))
    synth.set_chorus(nr=3, level=float(rng.uniform(0.0, 2.0)),
                     speed=float(rng.uniform(0.3, 1.5)),
                     depth=float(rng.uniform(2.0, 10.0)), type=0)
    font = self.fonts[int(rng.integers(len(self.fonts)))]
    channel = 9 if drums else 0
    synth.program_select(channel, font, 128 if drums else 0,
                         0 if drums else program)
    events = sorted([(start, 1, key, velocity)
                     for start, _, key, velocity in notes] +
                    [(end, 0, key, 0) for _, end, key, _ in notes])
    pieces, at = [], 0
    for time_s, on, key, velocity in events:
      frame = min(_N, int(time_s * SAMPLE_RATE))
      if frame > at:
        pieces.append(synth.get_samples(frame - at))
        at = frame
      if on:
        synth.noteon(channel, key, velocity)
      else:
        synth.noteoff(channel, key)
    if at < _N:
      pieces.append(synth.get_samples(_N - at))
    stereo = np.concatenate(pieces).astype(np.float64).reshape(-1, 2)
    return stereo.mean(axis=1)[:_N] / 32768.0


_STATE: Dict[str, object] = {}


def _instruments() -> _Instruments:
  if 'instruments' not in _STATE:
    _STATE['instruments'] = _Instruments(_STATE.get('fonts', SOUNDFONTS))
  return _STATE['instruments']


def fresh(fonts: Tuple[str, ...] = SOUNDFONTS,
          voices: Tuple[str, ...] = VOICES) -> None:
  """Drops this process's synthesizer: the next clip starts a new one, in
  the state every chunk starts from, with `fonts` and speaking with
  `voices` (subsets keep sample sets apart, as the bench's transfer part
  does)."""
  instruments = _STATE.pop('instruments', None)
  if instruments is not None:
    instruments.synth.delete()
  _STATE['fonts'], _STATE['voices'] = tuple(fonts), tuple(voices)


def _notes(rng: np.random.Generator, family: str
           ) -> List[Tuple[float, float, int, int]]:
  """A note, a chord, an arpeggio or a melody in the family's register."""
  low, high = _REGISTERS[family]
  velocity = lambda: int(rng.integers(35, 128))  # pylint: disable=unnecessary-lambda-assignment
  root = int(rng.integers(low, max(low + 1, high - 12)))
  shape = rng.choice(['note', 'chord', 'arpeggio', 'melody'])
  release = float(rng.uniform(0.5, 0.95))
  if shape == 'note':
    return [(float(rng.uniform(0, 0.15)), release, root, velocity())]
  chord = [root + step for step in ([0, 4, 7], [0, 3, 7], [0, 4, 7, 11],
                                     [0, 5, 7], [0, 7, 12])[
                                         int(rng.integers(5))]]
  if shape == 'chord':
    start = float(rng.uniform(0, 0.1))
    return [(start, release, key, velocity()) for key in chord]
  keys = (chord if shape == 'arpeggio' else
          [root + int(step) for step in np.cumsum(
              rng.choice([-5, -3, -2, -1, 1, 2, 3, 4, 5],
                         int(rng.integers(3, 7))))])
  step = 0.95 / len(keys)
  return [(i * step, min(0.99, (i + rng.uniform(0.6, 1.6)) * step),
           int(np.clip(key, 21, 108)), velocity())
          for i, key in enumerate(keys)]


def instrument(rng: np.random.Generator, family: str) -> np.ndarray:
  """One second of an instrument of `family`."""
  base = GM_FAMILIES.index(family) * 8
  if family == 'percussive' and rng.random() < 0.5:
    hits = [(float(t), float(t) + 0.1, int(rng.integers(35, 82)),
             int(rng.integers(50, 128)))
            for t in np.sort(rng.uniform(0, 0.85, int(rng.integers(2, 9))))]
    return _instruments().render(rng, 0, hits, drums=True)
  return _instruments().render(rng, base + int(rng.integers(8)),
                               _notes(rng, family))


def sound_effect(rng: np.random.Generator) -> np.ndarray:
  """One second of a soundfont's sound-effect program (seashore, bird,
  telephone, helicopter, applause, gunshot, breath, fret noise)."""
  base = GM_FAMILIES.index('sound_effects') * 8
  key = int(rng.integers(40, 80))
  return _instruments().render(
      rng, base + int(rng.integers(8)),
      [(float(rng.uniform(0, 0.2)), float(rng.uniform(0.6, 1.0)), key,
        int(rng.integers(60, 128)))])


def _sentence(rng: np.random.Generator) -> str:
  words = rng.choice(_WORDS, int(rng.integers(5, 12)))
  return ' '.join(words).capitalize() + rng.choice(['.', '?', '!'])


def utterance(seed: int, number: int) -> np.ndarray:
  """Utterance `number` of a data set: a sentence spoken by flite, its
  voice, rate and pitch drawn from (seed, number); mono at SAMPLE_RATE."""
  voices = _STATE.get('voices', VOICES)
  voice = voices[number % len(voices)]
  key = f'utterance-{seed}-{number}-{voice}'
  if key in _STATE:
    return _STATE[key]
  rng = np.random.default_rng([seed, 7, number])
  with tempfile.TemporaryDirectory(prefix='flite-') as folder:
    path = os.path.join(folder, 'speech.wav')
    subprocess.run(
        ['flite', '-voice', voice, '--setf',
         f'duration_stretch={rng.uniform(0.75, 1.35):.3f}', '--setf',
         f'int_f0_target_mean={rng.uniform(80, 220):.1f}', '-t',
         _sentence(rng), '-o', path],
        check=True, capture_output=True, timeout=60)
    with wave.open(path, 'rb') as f:
      rate = f.getframerate()
      samples = np.frombuffer(f.readframes(f.getnframes()), '<i2')
  audio = samples.astype(np.float64) / 32768.0
  if rate != SAMPLE_RATE:
    from scipy import signal  # pylint: disable=g-import-not-at-top,import-outside-toplevel
    audio = signal.resample_poly(audio, SAMPLE_RATE, rate)
  _STATE[key] = audio
  return audio


def speech(rng: np.random.Generator, seed: int) -> np.ndarray:
  """One second of speech cut from one of the data set's utterances, where
  it is loud (not a pause)."""
  audio = utterance(seed, int(rng.integers(UTTERANCES)))
  if audio.size <= _N:
    return np.pad(audio, (0, _N - audio.size))
  hop = SAMPLE_RATE // 10
  starts = np.arange(0, audio.size - _N + 1, hop)
  energy = np.array([np.sqrt(np.mean(audio[s:s + _N] ** 2)) for s in starts])
  loud = starts[energy >= 0.5 * energy.max()]
  start = int(rng.choice(loud))
  return audio[start:start + _N]


def _at_snr(signal: np.ndarray, other: np.ndarray,
            snr_db: float) -> np.ndarray:
  """`signal` plus `other` scaled to `snr_db` below it."""
  power = np.sqrt(np.mean(signal ** 2)) + 1e-9
  scale = power / (np.sqrt(np.mean(other ** 2)) + 1e-9) / 10 ** (snr_db / 20)
  return signal + other * scale


def not_instrument(rng: np.random.Generator, seed: int, kind: str,
                   noises) -> np.ndarray:
  """One second of a not-instrument `kind`; `noises` are the procedural
  generator's noise makers (name -> function of rng)."""
  if kind == 'speech':
    return speech(rng, seed)
  if kind == 'sound_effects':
    return sound_effect(rng)
  noise_names = sorted(noises)
  noise = lambda: noises[noise_names[int(rng.integers(len(noise_names)))]](rng)  # pylint: disable=unnecessary-lambda-assignment
  if kind == 'noise':
    return noise()
  if kind == 'speech_over_noise':
    return _at_snr(speech(rng, seed), noise(), float(rng.uniform(-5, 20)))
  if kind == 'speech_over_music':
    family = INSTRUMENT_FAMILIES[int(rng.integers(len(INSTRUMENT_FAMILIES)))]
    return _at_snr(speech(rng, seed), instrument(rng, family),
                   float(rng.uniform(10, 25)))
  if kind == 'two_speakers':
    return _at_snr(speech(rng, seed), speech(rng, seed),
                   float(rng.uniform(0, 6)))
  raise ValueError(f'unknown not-instrument kind {kind!r}')
