"""TFMA's evaluation files, read without TensorFlow.

The Evaluator writes its metrics and plots as TFRecord files of
`MetricsForSlice` and `PlotsForSlice` protos (`metrics-*.tfrecord`,
`plots-*.tfrecord` under the evaluation's URI). TFMA's own readers
(`tfma.load_metrics`) import TensorFlow, 5 to 7 s and about 700 MB for
what `inspect` reads in a fraction of a second. This module reads the same
records with the standard library (the TFRecord framing, each length and
record checked against its CRC-32C) and TFMA's generated proto module,
which imports protobuf alone.

The proto module is loaded from TFMA's installed files under its own name,
so a process that imports TFMA afterwards gets the same module (and the
same message classes), never a second copy of its descriptors.
"""

import importlib.util
import os
import struct
import sys
from typing import Iterator, List

import google_crc32c

from components.common import errors
from components.common import storage

PROTO_MODULE = 'tensorflow_model_analysis.proto.metrics_for_slice_pb2'
_MASK_DELTA = 0xa282ead8


class TfmaFileError(errors.PipelineError, ValueError):
  """Raised for an evaluation file that is not whole TFRecords; names it."""


def protos():
  """TFMA's `metrics_for_slice_pb2` module, loaded without TFMA's package
  (whose `__init__` imports TensorFlow) when that is not loaded yet."""
  if PROTO_MODULE in sys.modules:
    return sys.modules[PROTO_MODULE]
  package = importlib.util.find_spec('tensorflow_model_analysis')
  if package is None or not package.submodule_search_locations:
    raise TfmaFileError('TensorFlow Model Analysis is not installed: its '
                        'proto module reads the Evaluator\'s files')
  path = os.path.join(list(package.submodule_search_locations)[0], 'proto',
                      'metrics_for_slice_pb2.py')
  spec = importlib.util.spec_from_file_location(PROTO_MODULE, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[PROTO_MODULE] = module
  try:
    spec.loader.exec_module(module)
  except BaseException:
    del sys.modules[PROTO_MODULE]
    raise
  return module


def _masked_crc(data: bytes) -> int:
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xffffffff


def records(path: str) -> Iterator[bytes]:
  """The records of one uncompressed TFRecord file, each checked.

  Raises:
    TfmaFileError: for a truncated file or a record whose CRC does not
      match, naming the file and the byte.
  """
  data = storage.read_bytes(path)
  offset = 0
  while offset < len(data):
    if offset + 12 > len(data):
      raise TfmaFileError(f'{path}: cut off in the record header at byte '
                          f'{offset}')
    header = data[offset:offset + 8]
    length, = struct.unpack('<Q', header)
    length_crc, = struct.unpack('<I', data[offset + 8:offset + 12])
    if _masked_crc(header) != length_crc:
      raise TfmaFileError(f'{path}: the record length at byte {offset} '
                          'fails its CRC (not a TFRecord file, or damaged)')
    start = offset + 12
    end = start + length
    if end + 4 > len(data):
      raise TfmaFileError(f'{path}: the record at byte {offset} is cut off '
                          f'({length} bytes announced)')
    payload = data[start:end]
    if _masked_crc(payload) != struct.unpack('<I', data[end:end + 4])[0]:
      raise TfmaFileError(f'{path}: the record at byte {offset} fails its '
                          'CRC')
    yield payload
    offset = end + 4


def _files(uri: str, prefix: str) -> List[str]:
  """TFMA's files of one kind under `uri`, as its readers find them: the
  `.tfrecord` shards, else any file starting with `prefix`."""
  base = storage.join(uri, prefix)
  return storage.glob(base + '*.tfrecord') or storage.glob(base + '*')


def metrics(uri: str) -> Iterator:
  """The `MetricsForSlice` protos an Evaluator wrote under `uri`."""
  message = protos().MetricsForSlice
  for path in _files(uri, 'metrics'):
    for record in records(path):
      yield message.FromString(record)


def plots(uri: str) -> Iterator:
  """The `PlotsForSlice` protos an Evaluator wrote under `uri`."""
  message = protos().PlotsForSlice
  for path in _files(uri, 'plots'):
    for record in records(path):
      yield message.FromString(record)
