"""TFMA's evaluation files read without TensorFlow
(`pipeline/metadata/tfma_files.py`), against TFMA's own reader."""

import os
import subprocess
import sys

import pytest

from pipeline.metadata import mlmd
from pipeline.metadata import tfma_files

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _metrics(tfma_protos, auc, column=None, value=None):
  sliced = tfma_protos.MetricsForSlice()
  if column:
    key = sliced.slice_key.single_slice_keys.add()
    key.column, key.bytes_value = column, value.encode()
  entry = sliced.metric_keys_and_values.add()
  entry.key.name = 'auc'
  entry.value.double_value.value = auc
  return sliced


def _write(path, messages):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.io.TFRecordWriter(path) as writer:
    for message in messages:
      writer.write(message.SerializeToString())


def test_the_evaluators_records_read_as_tfma_reads_them(tmp_path):
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  protos = tfma_files.protos()
  written = [_metrics(protos, 0.9), _metrics(protos, 0.8, 'family', 'piano'),
             _metrics(protos, 0.7, 'kind', 'speech')]
  _write(str(tmp_path / 'metrics-00000-of-00001.tfrecord'), written)
  read = list(tfma_files.metrics(str(tmp_path)))
  assert read == written
  assert [m.SerializeToString() for m in tfma.load_metrics(str(tmp_path))] == [
      m.SerializeToString() for m in read]
  assert mlmd.evaluation_metrics(str(tmp_path)) == {'auc': 0.9}
  assert mlmd.slice_metrics(str(tmp_path), ('family',)) == {
      'family': {'piano': {'auc': 0.8}}}
  # TFMA's module and ours are one: its messages are our messages.
  assert type(read[0]) is type(tfma.load_metrics(str(tmp_path)).__next__())
  assert list(tfma_files.plots(str(tmp_path))) == []


def test_a_damaged_or_cut_file_is_named_not_misread(tmp_path):
  protos = tfma_files.protos()
  path = tmp_path / 'metrics-00000-of-00001.tfrecord'
  _write(str(path), [_metrics(protos, 0.9), _metrics(protos, 0.8)])
  whole = path.read_bytes()
  path.write_bytes(whole[:-3])
  with pytest.raises(tfma_files.TfmaFileError, match='cut off') as cut:
    list(tfma_files.metrics(str(tmp_path)))
  assert str(path) in str(cut.value)
  damaged = bytearray(whole)
  damaged[20] ^= 0xff  # inside the first record
  path.write_bytes(bytes(damaged))
  with pytest.raises(tfma_files.TfmaFileError, match='fails its CRC'):
    list(tfma_files.metrics(str(tmp_path)))
  path.write_bytes(b'not a tfrecord file at all')
  with pytest.raises(tfma_files.TfmaFileError, match='not a TFRecord'):
    list(tfma_files.metrics(str(tmp_path)))


def test_reading_the_metrics_imports_no_tensorflow(tmp_path):
  protos = tfma_files.protos()
  _write(str(tmp_path / 'metrics-00000-of-00001.tfrecord'),
         [_metrics(protos, 0.9)])
  code = ('import sys\n'
          'from pipeline.metadata import mlmd\n'
          f'print(mlmd.evaluation_metrics({str(tmp_path)!r}))\n'
          'print(sorted(m for m in sys.modules if m.split(".")[0] in '
          '("tensorflow", "tensorflow_model_analysis")))\n'
          # TFMA imported afterwards takes the loaded module as its own.
          'import tensorflow_model_analysis as tfma\n'
          f'print(list(tfma.load_metrics({str(tmp_path)!r}))[0].'
          'metric_keys_and_values[0].value.double_value.value)\n')
  done = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                        capture_output=True, text=True, timeout=300,
                        check=True)
  assert done.stdout.splitlines() == [
      "{'auc': 0.9}", f"['{tfma_files.PROTO_MODULE}']", '0.9'], done.stderr
