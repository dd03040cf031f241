"""The typed manifest (components/ondevice/manifest.py): what the pusher
writes reads back the same; a manifest written before `schema_version`
existed (tests/testdata/manifest_before_schema_version.json, pushed by the
code of the stop before the typed manifest) reads as schema 1 and writes
back unchanged; a field a device relies on, damaged, is named."""

import dataclasses
import json
import os
import re

import pytest

from components import frontend
from components.common import storage
from components.ondevice import push
from components.ondevice.manifest import AudioFrontEnd
from components.ondevice.manifest import DecisionThreshold
from components.ondevice.manifest import Families
from components.ondevice.manifest import FIRST_SCHEMA_VERSION
from components.ondevice.manifest import Manifest
from components.ondevice.manifest import ManifestError
from components.ondevice.manifest import SCHEMA_VERSION
from components.ondevice.manifest import WaveformEntry

OLD = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'testdata',
                   'manifest_before_schema_version.json')


def _old():
  with open(OLD, encoding='utf-8') as f:
    return json.load(f)


def test_a_manifest_written_before_the_schema_version_reads_as_schema_one():
  data = _old()
  manifest = Manifest.from_json(data)
  assert manifest.schema_version == FIRST_SCHEMA_VERSION < SCHEMA_VERSION
  assert (manifest.model_file, manifest.labels_file) == (
      push.MODEL_FILE, push.LABELS_FILE)
  assert (manifest.image_size, manifest.channels) == (32, 3)
  assert manifest.class_names == ['not_instrument', 'instrument']
  assert manifest.quantization == 'int8'
  assert manifest.input_tensor['dtype'] == 'uint8'
  assert manifest.validation['arena_bytes'] == manifest.firmware[
      'arena_bytes'] == 19712
  assert manifest.waveform_file == push.WAVEFORM_FILE
  assert manifest.waveform.proof['eval_windows'] == 3
  assert manifest.digests() == data['files']
  drawn_with = manifest.front_end
  assert drawn_with == frontend.FrontEnd.from_record(
      data['input']['audio_front_end'])
  assert drawn_with.window_samples == 16000 and drawn_with.image_size == 32
  # Written back, it is what it was, with its schema said.
  assert manifest.to_json() == dict(data, schema_version=1)


def test_older_manifests_without_files_check_each_model_by_its_own_digest():
  data = _old()
  data.pop('files')
  manifest = Manifest.from_json(data)
  assert manifest.digests() == {push.MODEL_FILE: data['sha256'],
                                push.WAVEFORM_FILE: data['waveform']['sha256']}
  data['waveform'] = {'file': None, 'recordings': False, 'reason': 'images'}
  assert Manifest.from_json(data).digests() == {
      push.MODEL_FILE: data['sha256']}
  data.pop('sha256')
  assert Manifest.from_json(data).digests() == {push.MODEL_FILE: None}


def test_fields_this_code_does_not_know_are_kept():
  data = dict(_old(), schema_version=SCHEMA_VERSION + 1,
              cascade={'threshold': 0.3})
  manifest = Manifest.from_json(data)
  assert manifest.extra == {'cascade': {'threshold': 0.3}}
  assert manifest.to_json() == data


def test_what_the_pusher_writes_reads_back_the_same(tmp_path):
  written = Manifest(
      model_file=push.MODEL_FILE, labels_file=push.LABELS_FILE,
      image_size=16, channels=1, class_names=['a', 'b'], sha256='0' * 64,
      quantization='dynamic', input_tensor={'dtype': 'float32'},
      audio_front_end=AudioFrontEnd.of(frontend.FrontEnd(image_size=16)),
      validation={'accuracy_drop': 0.0},
      waveform=WaveformEntry(file=push.WAVEFORM_FILE, sha256='1' * 64,
                             proof={'bytes': 3}),
      families=Families(True, ('bass', 'piano')),
      threshold=DecisionThreshold(0.31, 'mean', {'target_recall': 0.95,
                                                 'met': True}))
  files = {push.MODEL_FILE: b'm', push.LABELS_FILE: b'a\nb\n',
           push.WAVEFORM_FILE: b'w'}
  version, folder = push.write_version(str(tmp_path), files, written)
  with open(os.path.join(folder, push.MANIFEST_FILE), encoding='utf-8') as f:
    raw = json.load(f)
  assert raw['schema_version'] == SCHEMA_VERSION
  assert raw['waveform'] == {'bytes': 3, 'file': push.WAVEFORM_FILE,
                             'sha256': '1' * 64}
  read = push.read_manifest(folder)
  assert read.decision_threshold == 0.31
  assert read == dataclasses.replace(
      written, version=version,
      files={name: storage.sha256(data) for name, data in files.items()})


@pytest.mark.parametrize('change, said', [
    (lambda m: m.update(model_file='../model.tflite'),
     "'model_file' is '../model.tflite', not a file name"),
    (lambda m: m.pop('labels_file'), "has no 'labels_file'"),
    (lambda m: m['input'].update(image_size='32'),
     "'input.image_size' is '32', not a int"),
    (lambda m: m['input'].update(channels=True), "'input.channels' is True"),
    (lambda m: m['input'].update(channels=2), 'expected a positive size'),
    (lambda m: m['input'].update(audio_front_end=[]),
     "'input.audio_front_end' is not an object"),
    (lambda m: m.update(class_names='ab'), "'class_names' is 'ab'"),
    (lambda m: m.update(files=['model.tflite']), "'files' is not a map"),
    (lambda m: m['files'].update({'/etc/passwd': '0' * 64}),
     "lists '/etc/passwd'"),
    (lambda m: m.update(sha256=1e309), "'sha256' is inf, not a SHA-256"),
    (lambda m: m.update(waveform=3), "'waveform' is not an object"),
    (lambda m: m['waveform'].update(file='a/b'), "'waveform.file' is 'a/b'"),
    (lambda m: m.update(validation=[]), "'validation' is []"),
    (lambda m: m.update(schema_version='2'), "'schema_version' is '2'"),
    (lambda m: m.update(families=['piano']), "'families' is ['piano']"),
    (lambda m: m.update(families={'names': 'piano'}),
     "'families.names' is not a list"),
    (lambda m: m.update(threshold={'recall': 0.9}), "has no 'threshold.value'"),
    (lambda m: m.update(threshold={'value': '0.3'}),
     "'threshold.value' is '0.3', not a int or float"),
    (lambda m: m.update(threshold={'value': 1.5}),
     "'threshold.value' is 1.5, not a score from 0 to 1"),
    (lambda m: m.update(families={'given': True, 'names': []}),
     "'families.given' is True beside 0 names"),
    (lambda m: m.update(families={'names': ['a'], 'pairing_key': 3}),
     "'families.pairing_key' is 3, not a key"),
    # The front end is read as the FrontEnd itself: the real fields of its
    # record, damaged, are refused by name, and what the record derives
    # from its settings must agree with them.
    (lambda m: m['input']['audio_front_end'].update(sample_rate='16k'),
     "'input.audio_front_end': the recorded front end's sample_rate is "
     "'16k', not an int"),
    (lambda m: m['input']['audio_front_end'].update(version=2),
     "'input.audio_front_end': front end version 2 is not 1"),
    (lambda m: m['input']['audio_front_end'].pop('frames'),
     "front end's frames is None"),
    (lambda m: m['input']['audio_front_end'].update(mel_bands=64),
     "'input.audio_front_end.mel_bands' is 64; its settings give 32"),
    (lambda m: m['input']['audio_front_end'].update(window_samples=22050),
     "'input.audio_front_end.window_samples' is 22050; its settings give "
     '16000'),
])
def test_a_damaged_field_is_named(change, said):
  data = _old()
  change(data)
  with pytest.raises(ManifestError, match=re.escape(said)):
    Manifest.from_json(data)


def test_a_manifest_that_is_not_an_object_is_refused():
  for data in (None, [], 'manifest', 3):
    with pytest.raises(ManifestError, match='not a JSON object'):
      Manifest.from_json(data)


def test_the_recording_rule_is_read_and_checked():
  from components.ondevice.manifest import Manifest  # pylint: disable=g-import-not-at-top
  from components.ondevice.manifest import ManifestError  # pylint: disable=g-import-not-at-top
  data = Manifest(model_file='model.tflite', labels_file='labels.txt',
                  image_size=32, channels=3,
                  threshold=DecisionThreshold(0.4)).to_json()
  assert Manifest.from_json(data).recording_rule == 'max'
  # The threshold a device decides at: the version's own, even at 0; 0.5
  # for versions that chose none.
  assert Manifest.from_json(data).threshold_value == 0.4
  assert Manifest.from_json(dict(data, threshold={'value': 0.0})
                            ).threshold_value == 0.0
  assert Manifest.from_json({k: v for k, v in data.items()
                             if k != 'threshold'}).threshold_value == 0.5
  data['threshold']['recording_rule'] = 'mean'
  assert Manifest.from_json(data).recording_rule == 'mean'
  assert Manifest.from_json(data).decisions()['recording_rule'] == 'mean'
  data['threshold']['recording_rule'] = 'median'
  with pytest.raises(ManifestError, match="'threshold.recording_rule' is "
                     "'median'"):
    Manifest.from_json(data)


def test_the_typed_leaves_compare_by_value_and_read_back_as_written():
  data = _old()
  one, two = Manifest.from_json(data), Manifest.from_json(_old())
  assert one == two and one.front_end == two.front_end
  # The same front end written in other words (a record of an older
  # wording) is the same front end, and is written back as it was.
  reworded = _old()
  reworded['input']['audio_front_end']['padding'] = 'zeros, at the end'
  other = Manifest.from_json(reworded)
  assert other.audio_front_end == one.audio_front_end
  assert other.to_json()['input']['audio_front_end']['padding'] == (
      'zeros, at the end')
  # A front end of other settings is another front end.
  changed = frontend.FrontEnd.from_record(data['input']['audio_front_end'])
  changed = dataclasses.replace(changed, top_db=60.0)
  assert AudioFrontEnd.of(changed) != one.audio_front_end
  assert DecisionThreshold(0.3, 'mean', {'recall': 0.9}) == (
      DecisionThreshold.from_json({'value': 0.3, 'recall': 0.9,
                                   'recording_rule': 'mean'}))
  assert DecisionThreshold(0.3).rule == 'max'
  assert Families.from_json({'given': True, 'names': ['a', 'b'],
                             'pairing_key': 'k'}) == Families(
                                 True, ('a', 'b'), pairing_key='k')
  assert AudioFrontEnd.of(None, 'images').to_json() == {
      'recorded': False, 'reason': 'images'}
