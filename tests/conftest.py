"""Shared fixtures: small data sets made on the fly."""

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

# Select tf-keras before any test imports TensorFlow (see pipeline/__init__).
import pipeline  # noqa: F401  pylint: disable=unused-import


def write_image(path, size=(40, 30), mode='RGB', fmt=None, seed=0):
  """Writes a random image and returns its path."""
  rng = np.random.default_rng(seed)
  channels = {'L': 1, 'RGB': 3, 'RGBA': 4}[mode]
  pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
  image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image.save(path, format=fmt)
  return path


@pytest.fixture(scope='session')
def small_spectrograms(tmp_path_factory):
  """A synthesized PNG data set with 24 clips per class."""
  from pipeline.data import synth  # pylint: disable=g-import-not-at-top
  out = str(tmp_path_factory.mktemp('data') / 'spectrograms')
  synth.synthesize(out, per_class=24, seed=7, workers=1, progress=False)
  return out


def _require(found, what):
  if found:
    return
  if os.environ.get('CI'):
    pytest.fail(f'{what} is missing on CI (make test installs it)')
  pytest.skip(f'no {what} here; scripts/ensure_databases.sh installs it')


@pytest.fixture(scope='session')
def mariadb():
  """A private MariaDB server (tests/db_servers.py), for the session."""
  import db_servers  # pylint: disable=g-import-not-at-top
  _require(db_servers.mariadb_binaries(), 'MariaDB server')
  server = db_servers.start_mariadb()
  yield server
  server.stop()


@pytest.fixture(scope='session')
def postgresql():
  """A private PostgreSQL server (tests/db_servers.py), for the session."""
  import db_servers  # pylint: disable=g-import-not-at-top
  _require(db_servers.postgresql_bin(), 'PostgreSQL server')
  server = db_servers.start_postgresql()
  yield server
  server.stop()


@pytest.fixture
def s3():
  """moto's S3 server, a stand-in for a bucket (tests/s3_server.py)."""
  import s3_server  # pylint: disable=g-import-not-at-top
  server = s3_server.start()
  yield server
  server.stop()


def bomb_png(width, height):
  """A small grayscale PNG declaring width x height pixels: a decompression
  bomb (a few rows of real, highly compressed data; decoding it in full
  would need width * height bytes)."""
  def chunk(kind, body):
    return (struct.pack('>I', len(body)) + kind + body +
            struct.pack('>I', zlib.crc32(kind + body)))
  rows = zlib.compress(b'\0' * (width + 1) * 64, 9)
  return (b'\x89PNG\r\n\x1a\n' +
          chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0,
                                     0)) +
          chunk(b'IDAT', rows) + chunk(b'IEND', b''))
