"""Tests for pipeline.window."""

import os

import pytest

from conftest import write_image
from pipeline import ingest
from pipeline import window


def _add_span(src, data, seed):
  for label, name in enumerate(('not_instrument', 'instrument')):
    write_image(os.path.join(src, name, f's{seed}.png'), seed=seed * 2 + label)
  return ingest.ingest(src, data, progress=False).span


def test_window_links_the_latest_spans(tmp_path):
  src, data = str(tmp_path / 'src'), str(tmp_path / 'data')
  root = window.window_root(str(tmp_path), 2)
  assert root == str(tmp_path / 'windows' / 'last-2')
  _add_span(src, data, 1)
  assert window.prepare(data, root, 2) == [1]
  _add_span(src, data, 2)
  _add_span(src, data, 3)
  assert window.prepare(data, root, 2) == [2, 3]
  folder = os.path.join(root, 'span-3')
  assert window.read_window(folder) == [2, 3]
  links = sorted(f for f in os.listdir(folder) if f.endswith('.tfrecord.gz'))
  assert links == ['span00002-examples-00000.tfrecord.gz',
                   'span00003-examples-00000.tfrecord.gz']
  for link in links:
    target = os.readlink(os.path.join(folder, link))
    assert os.path.isfile(target)
    assert os.path.dirname(target) == os.path.join(
        data, 'span-' + str(int(link[4:9])))


def test_unchanged_window_is_left_alone(tmp_path):
  src, data = str(tmp_path / 'src'), str(tmp_path / 'data')
  root = window.window_root(str(tmp_path), 3)
  _add_span(src, data, 1)
  window.prepare(data, root, 3)
  stamp = os.stat(os.path.join(root, 'span-1')).st_mtime_ns
  window.prepare(data, root, 3)
  assert os.stat(os.path.join(root, 'span-1')).st_mtime_ns == stamp


def test_no_span_is_named(tmp_path):
  with pytest.raises(window.WindowError, match='ingest'):
    window.prepare(str(tmp_path / 'data'), str(tmp_path / 'w'), 3)
