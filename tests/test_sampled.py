"""The sampled default data (pipeline/data/sampled.py): instruments in
General MIDI families from FluidSynth, speech from flite, sound effects,
noises and mixtures; each clip a pure function of its arguments whatever
was rendered before it; and the procedural fallback, said in one line."""

import contextlib
import io
import json
import os
from unittest import mock

import numpy as np
import pytest

from pipeline.cli import commands as cli
from pipeline.data import sampled
from pipeline.data import synth

MISSING = sampled.unavailable()
needs_sounds = pytest.mark.skipif(
    MISSING is not None, reason=f'sampled data unavailable: {MISSING}')


def test_what_is_missing_is_named_with_the_packages_to_install():
  with mock.patch.object(sampled.shutil, 'which', return_value=None), \
      mock.patch.object(sampled, 'SOUNDFONTS', ('/nowhere/x.sf2',)):
    missing = sampled.unavailable()
  assert 'no flite' in missing and 'soundfont' in missing
  assert all(package in missing for package in sampled.DEBIAN_PACKAGES)


def test_the_families_are_general_midis_but_the_effects():
  assert len(sampled.GM_FAMILIES) == 16
  assert len(sampled.INSTRUMENT_FAMILIES) == 14
  assert 'sound_effects' not in sampled.INSTRUMENT_FAMILIES
  assert not any('fluid' in path.lower() or 'default-gm' in path.lower()
                 for path in sampled.SOUNDFONTS)


@needs_sounds
def test_a_sampled_set_holds_every_family_and_kind(tmp_path):
  out = tmp_path / 'sounds'
  assert synth.synthesize(str(out), per_class=14, seed=3, file_format='wav',
                          workers=1, progress=False, source='sampled')
  families = sorted(os.listdir(out / 'instrument'))
  assert families == sorted(sampled.INSTRUMENT_FAMILIES)
  kinds = sorted(os.listdir(out / 'not_instrument'))
  assert kinds == sorted(sampled.NOT_INSTRUMENT_KINDS)
  manifest = json.loads((out / synth.MANIFEST_NAME).read_text())
  assert manifest['source'] == 'sampled'
  # A procedural set there is another data set: refused, or replaced.
  with pytest.raises(synth.SynthError, match='other settings'):
    synth.synthesize(str(out), per_class=14, seed=3, file_format='wav',
                     workers=1, progress=False)
  assert synth.synthesize(str(out), per_class=2, seed=3, file_format='wav',
                          workers=1, progress=False, replace=True)
  assert 'source' not in json.loads((out / synth.MANIFEST_NAME).read_text())


@needs_sounds
def test_a_chunk_is_the_same_whatever_was_rendered_before():
  def chunk():
    sampled.fresh()
    return {key: synth.make_sampled_clip(5, *key)[1]
            for key in ((1, 0), (1, 13), (0, 0), (0, 4), (0, 5))}

  first = chunk()
  # Other clips between, with long notes, reverb and chorus.
  for index in range(12):
    synth.make_sampled_clip(6, 1, index)
  again = chunk()
  for key, audio in first.items():
    assert np.array_equal(audio, again[key]), key
    assert np.sqrt(np.mean(audio ** 2)) > 1e-3, key  # not silence


@needs_sounds
def test_speech_is_spoken_and_cut_where_it_is_loud():
  audio = sampled.utterance(0, 1)
  assert audio.size > sampled.SAMPLE_RATE  # a sentence, over a second
  window = sampled.speech(np.random.default_rng(0), 0)
  assert window.size == sampled.SAMPLE_RATE
  assert np.sqrt(np.mean(window ** 2)) > 0.2 * np.sqrt(np.mean(audio ** 2))


def test_auto_falls_back_to_the_procedural_generator_in_one_line(tmp_path):
  err = io.StringIO()
  with mock.patch.object(sampled, 'unavailable',
                         return_value='no flite (Debian flite)'), \
      contextlib.redirect_stderr(err), \
      contextlib.redirect_stdout(io.StringIO()):
    code = cli.main(['synth', '--workspace', str(tmp_path), '--per-class',
                     '2', '--out', str(tmp_path / 'data')])
  assert code == 0
  notes = [line for line in err.getvalue().splitlines() if 'note' in line]
  assert notes == ['synth: note: no flite (Debian flite); fell back to the '
                   'procedural generator (tones and noises, no families)']
  manifest = json.loads((tmp_path / 'data' / synth.MANIFEST_NAME).read_text())
  assert 'source' not in manifest
