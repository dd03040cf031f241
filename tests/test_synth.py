"""Tests for pipeline.data.synth."""

import hashlib
import json
import os

import numpy as np
import pytest

from pipeline.data import synth


def _digest(folder):
  h = hashlib.sha256()
  for root, _, files in sorted(os.walk(folder)):
    for name in sorted(files):
      if name == synth.MANIFEST_NAME:
        continue
      h.update(name.encode())
      with open(os.path.join(root, name), 'rb') as f:
        h.update(f.read())
  return h.hexdigest()


def test_clips_are_a_pure_function_of_seed_label_and_index():
  kind_a, a = synth.make_clip(3, 1, 5)
  kind_b, b = synth.make_clip(3, 1, 5)
  assert kind_a == kind_b
  np.testing.assert_array_equal(a, b)
  _, c = synth.make_clip(4, 1, 5)
  assert not np.array_equal(a, c)


def test_every_kind_renders_finite_audio_in_range():
  count = len(synth.INSTRUMENT_KINDS) + len(synth.NOT_INSTRUMENT_KINDS)
  for label in (0, 1):
    for index in range(count):
      _, audio = synth.make_clip(0, label, index)
      assert audio.shape == (synth.SAMPLE_RATE,)
      assert np.all(np.isfinite(audio))
      assert np.abs(audio).max() <= 1.0


def test_data_set_is_identical_whatever_the_worker_count(tmp_path):
  one = str(tmp_path / 'one')
  two = str(tmp_path / 'two')
  synth.synthesize(one, per_class=6, seed=1, workers=1, progress=False)
  synth.synthesize(two, per_class=6, seed=1, workers=2, progress=False)
  assert _digest(one) == _digest(two)
  assert sorted(os.listdir(one)) == ['instrument', 'not_instrument',
                                     synth.MANIFEST_NAME]
  assert len(os.listdir(os.path.join(one, 'instrument'))) == 6


def test_second_call_with_same_settings_writes_nothing(tmp_path):
  out = str(tmp_path / 'data')
  assert synth.synthesize(out, per_class=2, workers=1, progress=False)
  assert not synth.synthesize(out, per_class=2, workers=1, progress=False)


def test_refuses_to_overwrite_other_data(tmp_path):
  out = tmp_path / 'data'
  synth.synthesize(str(out), per_class=2, workers=1, progress=False)
  with pytest.raises(synth.SynthError, match='other settings'):
    synth.synthesize(str(out), per_class=3, workers=1, progress=False)
  foreign = tmp_path / 'photos'
  foreign.mkdir()
  with pytest.raises(synth.SynthError, match='not a synthesized'):
    synth.synthesize(str(foreign), per_class=2, workers=1, progress=False)


def test_wav_format_writes_playable_clips(tmp_path):
  out = tmp_path / 'wavs'
  synth.synthesize(str(out), per_class=2, file_format='wav', workers=1,
                   progress=False)
  files = sorted((out / 'instrument').iterdir())
  assert [f.suffix for f in files] == ['.wav', '.wav']
  manifest = json.loads((out / synth.MANIFEST_NAME).read_text())
  assert manifest['format'] == 'wav'


@pytest.mark.parametrize('kwargs, message', [
    ({'per_class': 0}, 'per_class'),
    ({'file_format': 'gif'}, 'file_format'),
    ({'class_names': ('a', 'b', 'c')}, 'two class names'),
])
def test_bad_settings_are_refused(tmp_path, kwargs, message):
  with pytest.raises(synth.SynthError, match=message):
    synth.synthesize(str(tmp_path / 'x'), progress=False, **kwargs)
