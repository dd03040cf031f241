"""Shared fixtures: small data sets made on the fly."""

import json
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


# The golden workspace's settings: the wiring, the cache and what is
# recorded, not the model. A 4-step model on 48 clips is near chance and
# its eval split holds a few examples, so neither the blessing nor the
# parity gate may depend on its luck (the gates have their own tests in
# test_tflite_pusher.py and test_retraining.py).
GOLDEN_SETTINGS = dict(image_size=64, train_steps=4, phase_two_steps=4,
                       phase_two_head_steps=4,
                       batch_size=8,
                       min_auc=0.0, min_accuracy=0.0, max_auc_drop=1.0,
                       max_accuracy_drop=1.0, latency_runs=2,
                       phase_two_min_accuracy=0.0,
                       phase_two_max_accuracy_drop=1.0,
                       phase_two_min_family_recall=0.0,
                       phase_two_min_reject_recall=0.0,
                       phase_two_max_recall_drop=1.0,
                       cascade_max_loss_vs_cloud=1.0,
                       cascade_max_cloud_share=1.0,
                       cascade_max_accuracy_drop=1.0)


def golden_flags():
  """GOLDEN_SETTINGS as `run` flags."""
  return [f'--{name.replace("_", "-")}={value}'
          for name, value in GOLDEN_SETTINGS.items()]


def run_cli(*args):
  """Runs a command in this process; returns its code, stdout, stderr."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  from pipeline.cli import commands  # pylint: disable=g-import-not-at-top
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = commands.main(list(args))
  return code, out.getvalue(), err.getvalue()


class Golden:
  """The session's golden workspace (see the `golden` fixture).

  Attributes:
    workspace: its folder.
    config: the settings of its runs.
    ingests: (code, stdout, stderr) of its two ingestions.
    runs: each run's summary, cold, warm, cached.
    consoles: each run's stderr.
    artifacts: the store's artifact count after each run.
  """

  def __init__(self, workspace, config):
    self.workspace = workspace
    self.config = config
    self.ingests, self.runs, self.consoles, self.artifacts = [], [], [], []


@pytest.fixture(scope='session')
def golden(tmp_path_factory, small_spectrograms):
  """One workspace for the session, made once: `small_spectrograms`
  ingested twice (one span), then the pipeline run three times from the
  command line: cold (every component runs), warm (the Evaluator and the
  pusher run again against the model the first run blessed, as in TFX's
  penguin example) and cached. Tests that only read a run's results share
  it; none may change it."""
  import json  # pylint: disable=g-import-not-at-top
  from pipeline.metadata import mlmd  # pylint: disable=g-import-not-at-top
  from pipeline.settings import config as config_lib  # pylint: disable=g-import-not-at-top
  workspace = str(tmp_path_factory.mktemp('golden') / 'workspace')
  result = Golden(workspace, config_lib.PipelineConfig(workspace=workspace,
                                                       **GOLDEN_SETTINGS))
  for _ in range(2):
    result.ingests.append(run_cli('ingest', '--workspace', workspace,
                                  small_spectrograms))
  for _ in range(3):
    code, out, err = run_cli('run', '--workspace', workspace, '--json',
                             *golden_flags())
    assert code == 0, err
    result.runs.append(json.loads(out[out.index('{\n'):]))
    result.consoles.append(err)
    store = mlmd.open_store(result.config.metadata_url(), read_only=True)
    result.artifacts.append(len(store.get_artifacts()))
  return result


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


# Seconds each test file took in a whole suite (`make test`'s own run, both
# workers busy), by file name: the order the files are handed out in. With
# two workers, each taking the next file when it is done, handing out the
# longest first leaves neither running alone at the end (measured on
# 2026-12-06: the slower worker ran 1,546 s where the other was done at
# 1,267 s, the longest files last). Refresh with
# `pytest -n 2 --dist loadgroup --record-file-seconds tests/file_seconds.json`;
# a file not in it counts as FILE_SECONDS_UNKNOWN.
FILE_SECONDS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            'file_seconds.json')
FILE_SECONDS_UNKNOWN = 10.0


def pytest_addoption(parser):
  parser.addoption('--record-file-seconds', metavar='PATH',
                   help='write the seconds each test file took, for the '
                   'order make test hands files out in (tests/conftest.py)')


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items):
  """Marks the tests that start servers by the fixtures they use, so
  `make test-fast` can leave them out; groups the tests for pytest-xdist
  (`make test`: `--dist loadgroup`): each file is one group, run in order
  on one worker (files share module fixtures), and the files that read the
  golden workspace are one group, so it is made once; then puts the groups
  that took longest (FILE_SECONDS) first, so that the longest start first
  and none is left running alone at the end (`make test` keeps this order:
  `--no-loadscope-reorder`). Within a file the order stays."""
  golden_files = set()
  for item in items:
    fixtures = set(getattr(item, 'fixturenames', ()))
    if fixtures & {'mariadb', 'postgresql'}:
      item.add_marker(pytest.mark.server)
    if 's3' in fixtures:
      item.add_marker(pytest.mark.s3)
    if 'golden' in fixtures:
      golden_files.add(item.fspath)
  group = {}
  for item in items:
    group[item.fspath] = ('golden' if item.fspath in golden_files
                          else item.fspath.basename)
    item.add_marker(pytest.mark.xdist_group(group[item.fspath]))
  with open(FILE_SECONDS, encoding='utf-8') as f:
    seconds = json.load(f)
  weight = {}
  for path, name in group.items():
    weight[name] = weight.get(name, 0.0) + seconds.get(
        path.basename, FILE_SECONDS_UNKNOWN)
  order = {id(item): index for index, item in enumerate(items)}
  items.sort(key=lambda item: (-weight[group[item.fspath]],
                               order[id(item)]))


_recorded = {}


def pytest_runtest_logreport(report):
  """Adds each phase's seconds to its file's, for --record-file-seconds
  (under pytest-xdist the reports of both workers come here)."""
  name = os.path.basename(report.nodeid.split('::')[0])
  _recorded[name] = _recorded.get(name, 0.0) + report.duration


def pytest_sessionfinish(session):
  path = session.config.getoption('--record-file-seconds')
  if path and not hasattr(session.config, 'workerinput'):
    with open(path, 'w', encoding='utf-8') as f:
      json.dump({name: round(value, 1) for name, value in sorted(
          _recorded.items(), key=lambda kv: -kv[1])}, f, indent=1)
      f.write('\n')


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
