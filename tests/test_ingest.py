"""Tests for pipeline.data.ingest."""

import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import bomb_png
from conftest import write_image
from pipeline.data import decode
from pipeline.data import ingest
from components.frontend import melscale
from pipeline.data import spectrogram
from pipeline.data import synth

CLASSES = ('not_instrument', 'instrument')


def _read_span(span_dir):
  examples = []
  files = sorted(f for f in os.listdir(span_dir) if f.endswith('.tfrecord.gz'))
  dataset = tf.data.TFRecordDataset(
      [os.path.join(span_dir, f) for f in files], compression_type='GZIP')
  for record in dataset:
    example = tf.train.Example.FromString(record.numpy())
    feature = example.features.feature
    examples.append({
        name: (value.bytes_list.value or value.int64_list.value or
               value.float_list.value)[0]
        for name, value in feature.items()})
    examples[-1]['filename'] = examples[-1]['filename'].decode('utf-8')
  return examples


def _two_class_folder(root, per_class=2):
  for label, name in enumerate(CLASSES):
    for index in range(per_class):
      write_image(os.path.join(root, name, f'img{index}.png'),
                  seed=label * 10 + index)
  return root


def test_writes_labelled_examples_into_span_1(tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  result = ingest.ingest(src, str(tmp_path / 'data'), progress=False)
  assert result.created and result.span == 1
  assert result.span_dir == str(tmp_path / 'data' / 'span-1')
  examples = _read_span(result.span_dir)
  assert sorted((e['filename'], e['label']) for e in examples) == [
      ('instrument/img0.png', 1), ('instrument/img1.png', 1),
      ('not_instrument/img0.png', 0), ('not_instrument/img1.png', 0)]
  with open(os.path.join(src, 'instrument', 'img0.png'), 'rb') as f:
    original = f.read()
  stored = next(e for e in examples if e['filename'] == 'instrument/img0.png')
  assert stored['image'] == original
  report = json.loads((tmp_path / 'data' / 'span-1' / 'ingest.json')
                      .read_text())
  assert report['counts'] == {'not_instrument': 2, 'instrument': 2}
  # No sub-folders: every example in the class folder itself.
  assert report['groups'] == {'not_instrument': {'': 2}, 'instrument': {'': 2}}


def test_sub_folders_of_a_class_are_counted_as_its_families(tmp_path):
  src = tmp_path / 'src'
  for relpath, seed in (('instrument/piano/a.png', 1),
                        ('instrument/piano/deep/b.png', 2),
                        ('instrument/bass/c.png', 3),
                        ('instrument/d.png', 4),
                        ('not_instrument/speech/e.png', 5)):
    write_image(str(src / relpath), seed=seed)
  result = ingest.ingest(str(src), str(tmp_path / 'data'), progress=False)
  report = json.loads((tmp_path / 'data' / 'span-1' / 'ingest.json')
                      .read_text())
  assert report['counts'] == {'not_instrument': 1, 'instrument': 4}
  assert report['groups'] == {'not_instrument': {'speech': 1},
                              'instrument': {'': 1, 'bass': 1, 'piano': 2}}
  assert result.created
  assert ingest.sub_folder(os.path.join('instrument', 'd.png')) == ''
  # Each example carries its family (positive class) or kind (class 0).
  labels = {e['filename']: (e.get('family'), e.get('kind'))
            for e in _read_span(result.span_dir)}
  assert labels == {'instrument/piano/a.png': (b'piano', None),
                    'instrument/piano/deep/b.png': (b'piano', None),
                    'instrument/bass/c.png': (b'bass', None),
                    'instrument/d.png': (None, None),
                    'not_instrument/speech/e.png': (None, b'speech')}
  assert report['families'] == ['bass', 'piano']
  assert any('1 example(s) lie directly in instrument/' in warning
             for warning in report['warnings'])


def test_a_flat_class_folder_gives_no_families(tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  ingest.ingest(src, str(tmp_path / 'data'), progress=False)
  report = json.loads((tmp_path / 'data' / 'span-1' / 'ingest.json')
                      .read_text())
  assert report['families'] == []
  assert not report['warnings']
  assert all('family' not in e and 'kind' not in e
             for e in _read_span(str(tmp_path / 'data' / 'span-1')))


@pytest.mark.parametrize('name, reason', [
    ('bad\nname', 'control characters'),
    (' piano', 'spaces at its ends'),
    ('x' * 65, 'longer than 64'),
    ('not_instrument', 'is a class name')])
def test_a_sub_folder_that_cannot_name_a_family_is_skipped_by_name(
    tmp_path, name, reason):
  src = _two_class_folder(str(tmp_path / 'src'))
  write_image(os.path.join(src, 'instrument', name, 'a.png'), seed=7)
  result = ingest.ingest(src, str(tmp_path / 'data'), progress=False)
  assert [(path, why) for path, why in result.skipped
          if reason in why] == [(os.path.join('instrument', name, 'a.png'),
                                 result.skipped[0][1])]
  report = json.loads((tmp_path / 'data' / 'span-1' / 'ingest.json')
                      .read_text())
  assert report['families'] == []


def test_unchanged_source_adds_no_span_and_changed_source_adds_next(
    tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  data = str(tmp_path / 'data')
  ingest.ingest(src, data, progress=False)
  again = ingest.ingest(src, data, progress=False)
  assert not again.created and again.span == 1
  assert ingest.list_spans(data) == [1]
  write_image(os.path.join(src, 'instrument', 'new.png'), seed=99)
  changed = ingest.ingest(src, data, progress=False)
  assert changed.created and changed.span == 2
  forced = ingest.ingest(src, data, force=True, progress=False)
  assert forced.span == 3
  assert ingest.list_spans(data) == [1, 2, 3]


def test_a_source_identical_to_an_earlier_span_adds_nothing(tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  data = str(tmp_path / 'data')
  ingest.ingest(src, data, progress=False)
  added = os.path.join(src, 'instrument', 'new.png')
  write_image(added, seed=99)
  ingest.ingest(src, data, progress=False)
  os.remove(added)  # back to what span 1 holds
  again = ingest.ingest(src, data, progress=False)
  assert not again.created and again.span == 1
  assert ingest.list_spans(data) == [1, 2]


def test_unreadable_files_are_skipped_and_listed_with_reason(tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  good = io.BytesIO()
  Image.new('RGB', (64, 64), (10, 20, 30)).save(good, format='PNG')
  folder = os.path.join(src, 'instrument')
  with open(os.path.join(folder, 'truncated.png'), 'wb') as f:
    f.write(good.getvalue()[:60])
  with open(os.path.join(folder, 'notes.txt'), 'w') as f:
    f.write('not an image')
  open(os.path.join(folder, 'empty.png'), 'wb').close()
  result = ingest.ingest(src, str(tmp_path / 'data'), progress=False)
  reasons = dict(result.skipped)
  assert set(reasons) == {'instrument/truncated.png', 'instrument/notes.txt',
                          'instrument/empty.png'}
  assert 'empty file' in reasons['instrument/empty.png']
  assert 'not a readable image' in reasons['instrument/notes.txt']
  assert result.counts == {'not_instrument': 2, 'instrument': 2}
  report = json.loads(open(os.path.join(result.span_dir, 'ingest.json'))
                      .read())
  assert {s['file'] for s in report['skipped']} == set(reasons)


def test_formats_modes_and_sizes_are_normalised(tmp_path):
  src = str(tmp_path / 'src')
  write_image(os.path.join(src, 'instrument', 'gray.png'), mode='L')
  write_image(os.path.join(src, 'instrument', 'alpha.png'), mode='RGBA')
  write_image(os.path.join(src, 'instrument', 'photo.jpg'), fmt='JPEG')
  write_image(os.path.join(src, 'not_instrument', 'jpeg_named.png'),
              fmt='JPEG')
  write_image(os.path.join(src, 'not_instrument', 'huge.png'),
              size=(2000, 1500))
  write_image(os.path.join(src, 'not_instrument', 'pic.bmp'), fmt='BMP')
  write_image(os.path.join(src, 'not_instrument', 'riff.webp'), fmt='WEBP')
  result = ingest.ingest(src, str(tmp_path / 'data'),
                         limits=decode.FileLimits(max_side=512),
                         progress=False)
  assert not result.skipped
  assert result.reencoded == 3  # the huge PNG, the BMP and the WebP
  for example in _read_span(result.span_dir):
    decoded = tf.io.decode_image(example['image'], channels=3).numpy()
    assert max(decoded.shape[:2]) <= 512
    image = Image.open(io.BytesIO(example['image']))
    assert image.format in ('PNG', 'JPEG')


def test_wav_clips_are_rendered_with_the_project_spectrogram(tmp_path):
  src = tmp_path / 'src'
  synth.synthesize(str(src), per_class=2, file_format='wav', workers=1,
                   progress=False)
  result = ingest.ingest(str(src), str(tmp_path / 'data'), image_size=64,
                         progress=False)
  assert result.counts == {'not_instrument': 2, 'instrument': 2}
  # Recordings are drawn into windows, not counted as images re-encoded.
  assert (result.recordings, result.reencoded) == (4, 0)
  example = next(e for e in _read_span(result.span_dir)
                 if e['filename'].startswith('instrument/'))
  with open(src / example['filename'], 'rb') as f:
    audio, rate = spectrogram.read_wav(f.read())
  expected = melscale.spectrogram_image(audio, rate, 64)
  stored = tf.io.decode_png(example['image']).numpy()
  assert (stored == expected).all()


def test_missing_class_folder_is_named(tmp_path):
  src = tmp_path / 'src'
  write_image(str(src / 'instrument' / 'a.png'))
  with pytest.raises(ingest.IngestError, match='no class folder not_instrument'):
    ingest.ingest(str(src), str(tmp_path / 'data'), progress=False)
  assert ingest.list_spans(str(tmp_path / 'data')) == []


def test_class_folder_without_readable_files_is_refused(tmp_path):
  src = tmp_path / 'src'
  write_image(str(src / 'instrument' / 'a.png'))
  (src / 'not_instrument').mkdir()
  with pytest.raises(ingest.IngestError, match='has no files'):
    ingest.ingest(str(src), str(tmp_path / 'data'), progress=False)
  (src / 'not_instrument' / 'x.txt').write_text('text')
  with pytest.raises(ingest.IngestError, match='no readable file'):
    ingest.ingest(str(src), str(tmp_path / 'data'), progress=False)
  # Nothing half-written is left behind.
  assert os.listdir(tmp_path / 'data') == ['.ingest.lock']


def test_custom_class_names_set_the_label_order(tmp_path):
  src = tmp_path / 'src'
  write_image(str(src / 'cat' / 'a.png'))
  write_image(str(src / 'dog' / 'b.png'))
  write_image(str(src / 'bird' / 'c.png'))
  result = ingest.ingest(str(src), str(tmp_path / 'data'),
                         class_names=('dog', 'cat'), progress=False)
  labels = {e['filename']: e['label'] for e in _read_span(result.span_dir)}
  assert labels == {'dog/b.png': 0, 'cat/a.png': 1}
  report = json.loads(open(os.path.join(result.span_dir, 'ingest.json'))
                      .read())
  assert any('bird' in w for w in report['warnings'])


def test_symlinks_outside_the_source_are_skipped(tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  outside = write_image(str(tmp_path / 'elsewhere' / 'secret.png'))
  os.symlink(outside, os.path.join(src, 'instrument', 'link.png'))
  os.symlink(os.path.join(src, 'instrument', 'img0.png'),
             os.path.join(src, 'instrument', 'inside_link.png'))
  result = ingest.ingest(src, str(tmp_path / 'data'), progress=False)
  assert 'outside the data folder' in dict(result.skipped)[
      'instrument/link.png']
  assert result.counts['instrument'] == 3


def test_non_ascii_and_spaces_in_file_names(tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  write_image(os.path.join(src, 'instrument', 'violín solo ♪.png'))
  result = ingest.ingest(src, str(tmp_path / 'data'), progress=False)
  names = {e['filename'] for e in _read_span(result.span_dir)}
  assert 'instrument/violín solo ♪.png' in names


def test_a_4000x3000_photo_is_shrunk_not_refused(tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  gradient = np.linspace(0, 255, 4000, dtype=np.uint8)[None, :, None]
  Image.fromarray(np.broadcast_to(gradient, (3000, 4000, 3)).copy()).save(
      os.path.join(src, 'instrument', 'camera.jpg'), quality=90)
  result = ingest.ingest(src, str(tmp_path / 'data'), progress=False)
  stored = next(e for e in _read_span(result.span_dir)
                if e['filename'] == 'instrument/camera.jpg')
  image = Image.open(io.BytesIO(stored['image']))
  assert image.size == (1024, 768)
  assert result.reencoded == 1


def test_blank_images_are_skipped_with_the_reason(tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  Image.new('RGB', (50, 50), (0, 0, 0)).save(
      os.path.join(src, 'instrument', 'black.png'))
  result = ingest.ingest(src, str(tmp_path / 'data'), progress=False)
  assert dict(result.skipped) == {
      'instrument/black.png': 'blank image: every pixel has the same value'}


def test_missing_source_folder_is_named(tmp_path):
  with pytest.raises(ingest.IngestError, match='nowhere is not a folder'):
    ingest.ingest(str(tmp_path / 'nowhere'), str(tmp_path / 'data'),
                  progress=False)


def test_a_decompression_bomb_and_a_broken_wav_are_skipped_and_the_rest_ingested(
    tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  with open(os.path.join(src, 'instrument', 'bomb.png'), 'wb') as f:
    f.write(bomb_png(40000, 40000))
  wav = spectrogram.wav_bytes(np.zeros(8000), 16000)
  # A RIFF size that ends the file inside the fmt chunk: SciPy fails with
  # an UnboundLocalError of its own.
  broken = wav[:4] + struct.pack('<I', 16) + wav[8:]
  with open(os.path.join(src, 'not_instrument', 'broken.wav'), 'wb') as f:
    f.write(broken)
  result = ingest.ingest(src, str(tmp_path / 'data'), progress=False)
  reasons = dict(result.skipped)
  assert reasons['instrument/bomb.png'].startswith(
      'image declares 40000x40000 pixels (1600.0 megapixels), over the limit '
      'of 50 megapixels (--max-image-pixels)')
  assert reasons['not_instrument/broken.wav'].startswith(
      'not a readable WAV file (the RIFF size (16 bytes) ends before the data '
      'chunk)')
  assert result.counts == {'not_instrument': 2, 'instrument': 2}


def test_the_pixel_limit_is_a_setting_checked_before_decoding(tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  write_image(os.path.join(src, 'instrument', 'big.png'), size=(3000, 2000))
  small = ingest.ingest(src, str(tmp_path / 'small'), progress=False,
                        limits=decode.FileLimits(max_pixels=5_000_000))
  assert 'over the limit of 5 megapixels' in dict(small.skipped)[
      'instrument/big.png']
  default = ingest.ingest(src, str(tmp_path / 'default'), progress=False)
  assert default.counts['instrument'] == 3 and not default.skipped


def test_clips_too_short_or_too_long_are_skipped_with_the_reason(tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  folder = os.path.join(src, 'instrument')
  with open(os.path.join(folder, 'click.wav'), 'wb') as f:
    f.write(spectrogram.wav_bytes(np.ones(80) * 0.5, 16000))  # 5 ms
  with open(os.path.join(folder, 'lecture.wav'), 'wb') as f:
    f.write(spectrogram.wav_bytes(np.zeros(8000 * 40), 8000))  # 40 s
  result = ingest.ingest(src, str(tmp_path / 'data'), progress=False,
                         limits=decode.FileLimits(max_clip_seconds=30))
  reasons = dict(result.skipped)
  assert reasons['instrument/click.wav'].startswith(
      'clip too short for a spectrogram: 80 samples (5.0 ms at 16000 Hz)')
  assert reasons['instrument/lecture.wav'].startswith(
      'clip is 40.0 s long, over the limit of 30 s (--max-clip-seconds)')
  assert result.counts == {'not_instrument': 2, 'instrument': 2}



def test_a_png_pillow_decodes_but_tensorflow_refuses_is_skipped(tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  path = write_image(os.path.join(src, 'instrument', 'tall.png'),
                     size=(48, 40))
  data = bytearray(open(path, 'rb').read())
  # Declare 256 rows where the image data holds 40; fix the IHDR checksum.
  data[20:24] = struct.pack('>I', 256)
  data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
  with open(path, 'wb') as f:
    f.write(data)
  result = ingest.ingest(src, str(tmp_path / 'data'), progress=False)
  assert dict(result.skipped)['instrument/tall.png'].startswith(
      'damaged image data that TensorFlow cannot decode (')
  assert result.counts == {'not_instrument': 2, 'instrument': 2}


def test_each_example_records_the_image_summary_the_schema_bounds(tmp_path):
  src = _two_class_folder(str(tmp_path / 'src'))
  halves = np.zeros((20, 40), dtype=np.uint8)
  halves[:, 20:] = 255
  Image.fromarray(halves).save(os.path.join(src, 'instrument', 'halves.png'))
  with open(os.path.join(src, 'not_instrument', 'tone.wav'), 'wb') as f:
    f.write(spectrogram.wav_bytes(
        0.5 * np.sin(np.arange(8000) / 16000 * 2 * np.pi * 440), 16000))
  result = ingest.ingest(src, str(tmp_path / 'data'), image_size=32,
                         progress=False)
  examples = {e['filename']: e for e in _read_span(result.span_dir)}
  halves_example = examples['instrument/halves.png']
  assert (halves_example['image_width'], halves_example['image_height']) == (
      40, 20)
  assert halves_example['pixel_mean'] == pytest.approx(127.5)
  assert halves_example['pixel_std'] == pytest.approx(127.5)
  assert halves_example['saturated_share'] == pytest.approx(1.0)
  assert halves_example['source_format'] == b'PNG'
  tone = examples['not_instrument/tone.wav']
  assert tone['source_format'] == b'WAV'
  assert (tone['image_width'], tone['image_height']) == (32, 32)
  assert 0 < tone['pixel_mean'] < 255 and tone['pixel_std'] > 0
  noise = examples['instrument/img0.png']
  assert noise['saturated_share'] < 0.1


def test_a_bucket_source_is_refused_naming_the_local_folder_it_needs(tmp_path):
  with pytest.raises(ingest.IngestError, match='ingest reads a local folder'):
    ingest.ingest('gs://team-bucket/recordings', str(tmp_path / 'data'),
                  progress=False)
  assert not (tmp_path / 'data').exists()


def test_the_lineage_lists_a_spans_families():
  from pipeline.metadata import lineage  # pylint: disable=g-import-not-at-top
  text = lineage.format_model_lineage({
      'pushed_model': {'id': 9, 'pushed_version': '1'},
      'examples': [{'id': 4, 'uri': '/w', 'spans': [1], 'sources': {1: {
          'counts': {'not_instrument': 3, 'instrument': 3},
          'groups': {'not_instrument': {'': 3},
                     'instrument': {'bass': 1, 'piano': 2}},
          'ingested': 'today', 'source': '/data'}}}]})
  assert '      instrument: bass 1 (33%), piano 2 (67%)' in text
  assert 'not_instrument:' not in text  # no sub-folders, nothing to list
