"""Tests of the versioned, all-or-nothing push folder."""

import json
import os
from unittest import mock

import pytest

from components.common import local_disk
from components.common import storage
from components.common import versions
from components.ondevice import push
from components.ondevice.manifest import Manifest


def _push(destination, payload=b'model'):
  return push.write_version(str(destination),
                            {push.MODEL_FILE: payload,
                             push.LABELS_FILE: b'a\nb\n'},
                            Manifest(model_file=push.MODEL_FILE,
                                     labels_file=push.LABELS_FILE,
                                     image_size=8, channels=3,
                                     converted_sha256=payload.hex()))


def test_versions_are_numbered_and_latest_moves(tmp_path):
  assert push.latest_version(str(tmp_path)) is None
  assert _push(tmp_path)[0] == 1
  version, folder = _push(tmp_path, b'other')
  assert version == 2 and folder == str(tmp_path / '2')
  assert push.versions(str(tmp_path)) == [1, 2]
  assert push.latest_version(str(tmp_path)) == 2
  manifest = push.read_manifest(folder)
  assert manifest.version == 2
  assert push.resolve_model_dir(str(tmp_path)) == folder
  assert push.resolve_model_dir(folder) == folder


def test_a_failure_mid_write_leaves_no_partial_version(tmp_path):
  _push(tmp_path)
  real_write = local_disk.write_file
  calls = []

  def failing_write(path, data):
    calls.append(path)
    if len(calls) == 2:
      raise OSError(28, 'No space left on device')
    real_write(path, data)

  with mock.patch.object(local_disk, 'write_file', side_effect=failing_write):
    with pytest.raises(push.PushError, match='No space left'):
      _push(tmp_path, b'new')
  assert push.latest_version(str(tmp_path)) == 1
  assert push.versions(str(tmp_path)) == [1]
  assert sorted(os.listdir(tmp_path)) == ['.push.lock', '1', 'LATEST']


def test_a_crash_before_the_pointer_moves_keeps_the_old_latest(tmp_path):
  _push(tmp_path)
  with mock.patch.object(push, '_set_latest',
                         side_effect=OSError(5, 'I/O error')):
    with pytest.raises(push.PushError):
      _push(tmp_path, b'new')
  # The new version folder is complete, but devices still get version 1.
  assert push.latest_version(str(tmp_path)) == 1
  assert push.read_manifest(str(tmp_path / '2')).version == 2
  # The next push goes past it, never reusing its number.
  assert _push(tmp_path, b'third')[0] == 3


def test_unwritable_destination_fails_clearly(tmp_path):
  _push(tmp_path)
  # Root writes through file modes, so the refusal is simulated where it
  # happens: creating the staging folder.
  with mock.patch.object(local_disk.tempfile, 'mkdtemp',
                         side_effect=PermissionError(13, 'Permission denied')):
    with pytest.raises(push.PushError, match='LATEST is unchanged'):
      _push(tmp_path, b'new')
  assert push.latest_version(str(tmp_path)) == 1
  assert push.versions(str(tmp_path)) == [1]


def test_uncreatable_destination_is_named(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('x')
  with pytest.raises(push.PushError, match='cannot create push destination'):
    _push(blocker / 'models')


def test_find_identical_only_matches_the_latest(tmp_path):
  _push(tmp_path, b'one')
  _push(tmp_path, b'two')
  assert push.find_identical(str(tmp_path), b'two'.hex()) == 2
  assert push.find_identical(str(tmp_path), b'one'.hex()) is None
  # The same model with another threshold, recording rule or pairing is a
  # new version: a device decides by them.
  same = {'threshold': None, 'recording_rule': 'max', 'pairing_key': None}
  assert push.find_identical(str(tmp_path), b'two'.hex(), same) == 2
  for other in ({'threshold': 0.43}, {'recording_rule': 'mean'},
                {'pairing_key': 'abc'}):
    assert push.find_identical(str(tmp_path), b'two'.hex(),
                               dict(same, **other)) is None


def test_resolve_model_dir_names_a_wrong_folder(tmp_path):
  with pytest.raises(push.PushError, match='neither a pushed model folder'):
    push.resolve_model_dir(str(tmp_path))


def test_manifest_is_valid_json_with_the_files(tmp_path):
  _, folder = _push(tmp_path)
  with open(os.path.join(folder, push.MANIFEST_FILE)) as f:
    assert json.load(f)['converted_sha256'] == b'model'.hex()
  assert open(os.path.join(folder, push.MODEL_FILE), 'rb').read() == b'model'


# A destination on an object store takes the path with no rename and no
# lock. TensorFlow's in-memory `ram://` filesystem goes through the same
# tf.io.gfile calls as gs:// and s3:// (tests/test_tflite_pusher.py runs
# a real S3 server).


@pytest.fixture(autouse=True)
def _replacing_ram_files(monkeypatch):
  """ram:// appends when a file is written again, where gs:// and s3://
  replace the object; so here a rewrite removes the old file first."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  real_write = storage.write_bytes

  def write(path, data):
    if path.startswith('ram://') and tf.io.gfile.exists(path):
      tf.io.gfile.remove(path)
    real_write(path, data)

  monkeypatch.setattr(storage, 'write_bytes', write)


def _ram(tmp_path):
  return f'ram://{tmp_path.name}/models'


def test_an_object_store_push_lists_its_files_and_moves_latest_last(tmp_path):
  destination = _ram(tmp_path)
  assert _push(destination)[0] == 1
  version, folder = _push(destination, b'other')
  assert (version, folder) == (2, destination + '/2')
  assert push.versions(destination) == [1, 2]
  assert push.latest_version(destination) == 2
  manifest = push.check_version(folder)
  assert manifest.files == {push.MODEL_FILE: storage.sha256(b'other'),
                               push.LABELS_FILE: storage.sha256(b'a\nb\n')}
  assert push.resolve_model_dir(destination) == folder


def test_an_upload_that_fails_midway_leaves_latest_and_no_readable_version(
    tmp_path):
  destination = _ram(tmp_path)
  _push(destination)
  real_write = storage.write_bytes
  written = []

  def failing_write(path, data):
    written.append(path)
    if path.endswith(push.MANIFEST_FILE):
      raise storage.StorageError(f'{path}: connection reset')
    real_write(path, data)

  with mock.patch.object(storage, 'write_bytes', side_effect=failing_write):
    with pytest.raises(push.PushError, match='LATEST is unchanged'):
      _push(destination, b'new')
  assert [p.rsplit('/', 1)[1] for p in written] == [
      push.MODEL_FILE, push.LABELS_FILE, push.MANIFEST_FILE]
  assert push.latest_version(destination) == 1
  assert push.versions(destination) == [1]
  with pytest.raises(push.PushError, match='not a complete pushed version'):
    push.check_version(destination + '/2')
  # The leftover's number is never reused.
  assert _push(destination, b'third')[0] == 3


def test_a_replaced_object_fails_the_check_naming_it(tmp_path):
  destination = _ram(tmp_path)
  _, folder = _push(destination)
  storage.write_bytes(folder + '/' + push.LABELS_FILE, b'b\na\n')
  with pytest.raises(push.PushError,
                     match='labels.txt does not match the SHA-256'):
    push.check_version(folder)


def test_a_local_push_lists_its_files_too(tmp_path):
  _, folder = _push(tmp_path)
  assert push.check_version(folder).files[push.MODEL_FILE] == \
      storage.sha256(b'model')
  with open(os.path.join(folder, push.MODEL_FILE), 'ab') as f:
    f.write(b'!')
  with pytest.raises(push.PushError, match='model.tflite does not match'):
    push.check_version(folder)


class _Bucket:
  """An in-memory object store for `components.common.versions`: the
  order of uploads, and a read-back that can be made to differ."""

  def __init__(self):
    self.objects, self.order, self.corrupt = {}, [], None

  def patches(self):
    return [mock.patch.object(storage, 'is_uri', return_value=True),
            mock.patch.object(storage, 'makedirs'),
            mock.patch.object(storage, 'listdir', side_effect=self.listdir),
            mock.patch.object(storage, 'write_bytes', side_effect=self.write),
            mock.patch.object(storage, 'read_bytes', side_effect=self.read)]

  def listdir(self, prefix):
    found = {key[len(prefix) + 1:].split('/')[0] for key in self.objects
             if key.startswith(prefix + '/')}
    return sorted(found)

  def write(self, key, data):
    self.order.append(key)
    self.objects[key] = data

  def read(self, key):
    data = self.objects[key]
    return b'not as uploaded' if key == self.corrupt else data


def test_both_phases_push_through_one_path_in_a_servers_order():
  bucket = _Bucket()
  bucket.objects['s3://b/m/4/partial'] = b'a killed upload'
  for patch in bucket.patches():
    patch.start()
  try:
    version, folder = versions.write(
        's3://b/m', {'variables/v': b'v', 'saved_model.pb': b'graph',
                     'assets.extra/x': b'x'},
        'assets.extra/manifest.json', lambda n: f'version {n}'.encode(),
        last=('saved_model.pb',))
    # Past the killed upload's number; the manifest after every file but
    # the one a server loads by, which goes last.
    assert (version, folder) == (5, 's3://b/m/5')
    assert bucket.order == ['s3://b/m/5/variables/v',
                            's3://b/m/5/assets.extra/x',
                            's3://b/m/5/assets.extra/manifest.json',
                            's3://b/m/5/saved_model.pb']
    assert bucket.objects['s3://b/m/5/assets.extra/manifest.json'] == (
        b'version 5')
    bucket.corrupt = 's3://b/m/6/model'
    with pytest.raises(OSError, match='read back differs'):
      versions.write('s3://b/m', {'model': b'm'}, 'manifest.json',
                     lambda n: b'{}')
    # The failed version never got its manifest.
    assert 's3://b/m/6/manifest.json' not in bucket.objects
  finally:
    mock.patch.stopall()


def test_a_versions_files_are_checked_against_their_digests(tmp_path):
  (tmp_path / 'sub').mkdir()
  (tmp_path / 'sub' / 'a').write_bytes(b'a' * 3_000_000)
  (tmp_path / 'b').write_bytes(b'b')
  digests = versions.digests({'sub/a': versions.LocalFile(
      str(tmp_path / 'sub' / 'a')), 'b': b'b'})
  assert versions.first_mismatch(str(tmp_path), digests) is None
  (tmp_path / 'b').write_bytes(b'B')
  assert versions.first_mismatch(str(tmp_path), digests) == ('b', None)
  assert versions.first_mismatch(str(tmp_path), dict(digests, b=None)) is None
  (tmp_path / 'b').write_bytes(b'b')
  os.remove(tmp_path / 'sub' / 'a')
  name, unreadable = versions.first_mismatch(str(tmp_path), digests)
  assert name == 'sub/a' and 'No such file' in unreadable
