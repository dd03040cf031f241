"""The device side of the cascade (`predict --cascade URL`,
pipeline/serving/cascade.py): phase one here, flagged windows to a stand-in
of phase two's server that speaks TF Serving's REST shape, stopped and
started to prove the queue, the backoff and the late answers."""

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import audio_files
import device_fuzz
from components.common import pairing
from components.frontend import melscale
from pipeline.serving import cascade
from pipeline.serving import predict

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.path.join(
    REPO_ROOT, 'tests'))
KEY = 'a1b2c3d4e5f60718'
CLASSES = ['not_instrument', 'bass', 'piano']
RATE = 16000  # the default front end's rate; windows of one second


class FakePhaseTwo:
  """A stand-in of `python -m pipeline serve`: names `bass` a window whose
  mean sample is over 0.2, `piano` one under -0.2, else the reject class;
  refuses another pairing key with 409, as the real server does."""

  def __init__(self, key=KEY):
    self.key, self.batches, self.keys = key, [], []
    self.port = None
    self._server = None

  def start(self):
    fake = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def do_POST(self):  # pylint: disable=invalid-name
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        fake.keys.append(body.get(pairing.FIELD))
        if body.get(pairing.FIELD) != fake.key:
          return self._send(409, {'error': f'this server pairs with key '
                                           f'{fake.key}; the request has '
                                           f'{body.get(pairing.FIELD)}'})
        fake.batches.append(len(body['instances']))
        rows = []
        for row in body['instances']:
          mean = float(np.mean(melscale.pcm16_samples(
              base64.b64decode(row[pairing.PCM_INPUT]['b64']))))
          best = 1 if mean > 0.2 else 2 if mean < -0.2 else 0
          scores = [0.1, 0.1, 0.1]
          scores[best] = 0.8
          rows.append({'scores': scores, 'classes': CLASSES,
                       'label': CLASSES[best]})
        return self._send(200, {'predictions': rows, 'model_version': '3',
                                pairing.FIELD: fake.key})

      def _send(self, status, answer):
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

      def log_message(self, *args):  # pylint: disable=arguments-differ
        pass

    self._server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', self.port or 0), Handler)
    self.port = self._server.server_address[1]
    threading.Thread(target=self._server.serve_forever, daemon=True).start()
    return self

  def stop(self):
    self._server.shutdown()
    self._server.server_close()

  @property
  def url(self):
    return f'http://127.0.0.1:{self.port}'


@pytest.fixture(name='phase_one', scope='module')
def _phase_one(tmp_path_factory):
  """Phase one flags a window by its mean sample (over about 0.1), at 0.7."""
  return device_fuzz.write_version(
      str(tmp_path_factory.mktemp('cascade') / 'pushed'),
      labels=('not_instrument', 'instrument'), threshold=0.7, dc_gain=20.0,
      families={'given': True, 'names': CLASSES[1:], 'pairing_key': KEY})


@pytest.fixture(name='fake')
def _fake():
  server = FakePhaseTwo().start()
  yield server
  server.stop()


def _offsets(*levels):
  """One second of noise around each offset: > 0.2 is flagged and is
  `bass`, 0 is not flagged."""
  rng = np.random.default_rng(0)
  return np.concatenate([level + rng.uniform(-0.05, 0.05, RATE)
                         for level in levels]).astype(np.float32)


def _wav(tmp_path, name, samples):
  path = tmp_path / name
  path.write_bytes(audio_files.wav_bytes(samples, RATE))
  return str(path)


def test_flagged_windows_go_to_the_cloud_in_batches_and_come_back_merged(
    phase_one, fake, tmp_path):
  clip = _wav(tmp_path, 'clip.wav', _offsets(0, 0.3, 0.3, 0.3, 0, 0.3, 0))
  model = predict.PushedModel(phase_one, keep_input=True)
  router = predict.open_cascade(model, fake.url, 'instruments', batch=2,
                                wait=None, block=True)
  [result], summary = predict.cascade_files(model, [clip], router)
  assert result.error is None
  by = [(w['label'], w['family'], w['decided_by']) for w in result.windows]
  assert by == [('not_instrument', None, 'device'),
                ('bass', 'bass', 'cloud'), ('bass', 'bass', 'cloud'),
                ('bass', 'bass', 'cloud'), ('not_instrument', None, 'device'),
                ('bass', 'bass', 'cloud'), ('not_instrument', None, 'device')]
  assert [(s['start'], s['end'], s['family']) for s in result.segments] == [
      (1.0, 4.0, 'bass'), (5.0, 6.0, 'bass')]
  assert (result.label, result.family, result.decided_by) == (
      'bass', 'bass', 'cloud')
  assert summary['sent'] == 4 and summary['windows'] == 7
  assert summary['cloud_share'] == pytest.approx(4 / 7, abs=1e-4)
  assert summary['answered'] == 4 and summary['unknown'] == 0
  assert max(fake.batches) <= 2 and sum(fake.batches) == 4
  assert set(fake.keys) == {KEY}
  assert result.windows[1]['cloud']['model_version'] == '3'


def test_the_reject_class_and_an_all_quiet_file_are_answered_right(
    phase_one, fake, tmp_path):
  # Flagged by phase one (0.15 > its 0.1), rejected by phase two (< 0.2).
  rejected = _wav(tmp_path, 'rejected.wav', _offsets(0.15))
  quiet = _wav(tmp_path, 'quiet.wav', _offsets(0, 0))
  model = predict.PushedModel(phase_one, keep_input=True)
  router = predict.open_cascade(model, fake.url, 'instruments', wait=None,
                                block=True)
  results, summary = predict.cascade_files(model, [rejected, quiet], router)
  assert [(r.label, r.family, r.decided_by) for r in results] == [
      ('not_instrument', None, 'cloud'), ('not_instrument', None, 'device')]
  assert summary['sent'] == 1 and fake.batches == [1]


def test_a_server_that_does_not_pair_is_refused_in_one_line(phase_one,
                                                            tmp_path):
  other = FakePhaseTwo(key='ffffffffffffffff').start()
  try:
    clip = _wav(tmp_path, 'clip.wav', _offsets(0.3))
    done = subprocess.run(
        [sys.executable, '-m', 'pipeline', 'predict', '--model', phase_one,
         '--cascade', other.url, clip], env=ENV, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=120, check=False)
  finally:
    other.stop()
  lines = [line for line in done.stderr.splitlines() if line.strip()]
  assert done.returncode == 2, done.stderr
  assert len(lines) == 1 and 'Traceback' not in done.stderr, done.stderr
  assert '409' in lines[0] and KEY in lines[0] and 'ffffffffffffffff' in lines[0]


def test_the_cli_prints_families_who_decided_and_the_cloud_share(
    phase_one, fake, tmp_path):
  clip = _wav(tmp_path, 'clip.wav', _offsets(0, 0.3, -0.0, 0.3))
  done = subprocess.run(
      [sys.executable, '-m', 'pipeline', 'predict', '--model', phase_one,
       '--cascade', fake.url, clip], env=ENV, cwd=REPO_ROOT,
      capture_output=True, text=True, timeout=120, check=False)
  assert done.returncode == 0, done.stderr
  assert f'{clip}: bass (cloud v3, 0.800)' in done.stdout
  assert '0.00-1.00 s  not_instrument (device, ' in done.stdout
  assert '1.00-2.00 s  bass (cloud v3, 0.800)' in done.stdout
  assert ('cascade: 2 of 4 windows sent to the cloud (share 0.500): 2 '
          'answered by phase two (0 late), 0 family unknown') in done.stdout
  streamed = subprocess.run(
      [sys.executable, '-m', 'pipeline', 'predict', '--model', phase_one,
       '--cascade', fake.url, '--stream', '--json', clip], env=ENV,
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
  assert streamed.returncode == 0, streamed.stderr
  rows = [json.loads(line) for line in streamed.stdout.splitlines()]
  windows = [row for row in rows if 'start' in row]
  assert [w['decided_by'] for w in windows] == ['device', 'cloud', 'device',
                                                'cloud']
  assert [row['segment']['family'] for row in rows if 'segment' in row] == [
      'bass', 'bass']
  assert rows[-1]['cascade']['cloud_share'] == 0.5


def test_the_end_of_a_run_waits_for_a_down_server_only_as_long_as_told(
    phase_one, tmp_path):
  clip = _wav(tmp_path, 'clip.wav', _offsets(0, 0.3))
  command = [sys.executable, '-m', 'pipeline', 'predict', '--model',
             phase_one, '--cascade', 'http://127.0.0.1:9', clip]
  started = time.monotonic()
  done = subprocess.run(command + ['--cascade-drain', '0.5'], env=ENV,
                        cwd=REPO_ROOT, capture_output=True, text=True,
                        timeout=120, check=False)
  # Nothing listens there: the flagged window stays "family unknown", and
  # the run ends well before the default 10 s of waiting.
  assert done.returncode == 0, done.stderr
  assert time.monotonic() - started < cascade.DEFAULT_DRAIN_SECONDS - 1
  assert '1.00-2.00 s  instrument, family unknown' in done.stdout, done.stdout
  assert '1 family unknown' in done.stdout
  refused = subprocess.run(command + ['--cascade-drain', '-1'], env=ENV,
                           cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=120, check=False)
  assert refused.returncode == 2
  assert '--cascade-drain -1: expected seconds' in refused.stderr


def _until(condition, seconds=10.0):
  deadline = time.monotonic() + seconds
  while not condition():
    assert time.monotonic() < deadline, 'timed out'
    time.sleep(0.01)


class _Clock:

  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


class _Switch:
  """A phase two that is down until switched on; counts attempts."""

  def __init__(self):
    self.up, self.attempts = False, 0
    self.lock = threading.Lock()

  def send(self, payloads):
    with self.lock:
      self.attempts += 1
      if not self.up:
        raise cascade.Unreachable('connection refused')
    return [{'label': 'bass', 'scores': [0.1, 0.9], 'classes':
             ['not_instrument', 'bass'], 'model_version': '1'}
            for _ in payloads]


def _router(queue_size, wait, max_backoff=0.05):
  """A cascade over a phase two that is down until switched on, on a clock
  the test moves: (switch, clock, sender, router)."""
  switch, clock = _Switch(), _Clock()
  sender = cascade.Sender(switch.send, batch=4, queue_size=queue_size,
                          first_backoff=0.01, max_backoff=max_backoff)
  router = cascade.Cascade(['not_instrument', 'instrument'], 0.5, sender,
                           'not_instrument', wait=wait, clock=clock)
  return switch, clock, sender, router


def _window(start, score):
  return {'start': float(start), 'end': start + 1.0, 'label': 'x',
          'scores': {'not_instrument': 1 - score, 'instrument': score}}


def test_the_stream_goes_on_while_the_server_is_down_and_catches_up():
  switch, clock, sender, router = _router(queue_size=64, wait=1.0)
  out = []
  for second in range(6):
    clock.now = float(second)
    out += router.feed(_window(second, 0.9 if second % 2 else 0.1), b'pcm')
  clock.now = 10.0
  out += router.feed(_window(6, 0.1), b'pcm')
  # Down: every window was answered in order, flagged ones on the device.
  assert [r['start'] for r in out] == [0, 1, 2, 3, 4, 5, 6]
  assert [r.get('family') for r in out] == [None, 'unknown'] * 3 + [None]
  _until(lambda: sender.failures >= 2)
  assert sender.problem == 'connection refused'
  switch.up = True
  late = router.finish(idle_seconds=5.0)
  assert sorted((r['start'], r['family'], r['decided_by'], r.get('late'))
                for r in late) == [(1, 'bass', 'cloud', True),
                                   (3, 'bass', 'cloud', True),
                                   (5, 'bass', 'cloud', True)]
  summary = router.summary()
  assert (summary['answered'], summary['late'], summary['unknown']) == (3, 3,
                                                                        0)


def test_a_full_queue_drops_its_oldest_window_and_says_so():
  switch, _, _, router = _router(queue_size=2, wait=1.0, max_backoff=0.02)
  out = []
  for second in range(5):
    out += router.feed(_window(second, 0.9), b'pcm')
  switch.up = True
  out += router.finish(idle_seconds=5.0)
  summary = router.summary()
  assert summary['dropped'] == 3 and summary['unknown'] == 3
  assert summary['answered'] == 2
  final = {r['start']: r['family'] for r in out if r.get('family') == 'bass'}
  assert sorted(final) == [3.0, 4.0]
  assert 'dropped from a full queue' in cascade.summary_line(summary)


@pytest.mark.parametrize('url,batch,queue,wait,words', [
    ('ftp://host', 16, 8, 1.0, 'http:// or https://'),
    ('http://', 16, 8, 1.0, 'http:// or https://'),
    ('http://h', 0, 8, 1.0, '--cascade-batch 0'),
    ('http://h', 33, 8, 1.0, '--cascade-batch 33'),
    ('http://h', 4, 0, 1.0, '--cascade-queue 0'),
    ('http://h', 4, 8, -1.0, '--cascade-wait -1'),
])
def test_bad_cascade_settings_are_refused_by_name(phase_one, url, batch,
                                                  queue, wait, words):
  model = predict.PushedModel(phase_one, keep_input=True)
  with pytest.raises(cascade.CascadeError, match=words):
    predict.open_cascade(model, url, 'instruments', batch, wait, queue)


def test_a_version_without_a_pair_and_an_image_are_refused(phase_one,
                                                           tmp_path):
  alone = device_fuzz.write_version(
      str(tmp_path / 'alone'), families={'given': False, 'names': [],
                                         'reason': 'the spans are two classes'})
  with pytest.raises(cascade.CascadeError,
                     match='pairs with no phase two .the spans are two'):
    predict.open_cascade(predict.PushedModel(alone, keep_input=True),
                         'http://127.0.0.1:9', 'instruments')
  image = tmp_path / 'photo.png'
  from conftest import write_image  # pylint: disable=g-import-not-at-top
  write_image(image)
  model = predict.PushedModel(phase_one, keep_input=True)
  router = predict.open_cascade(model, 'http://127.0.0.1:9', 'instruments',
                                wait=None, block=True)
  [result], _ = predict.cascade_files(model, [str(image)], router, 0.1)
  assert 'takes windows of audio' in result.error


def test_an_answer_that_is_not_tf_serving_s_is_refused():
  answers = [b'{"a": 1}', json.dumps({'predictions': [
      {'label': 'organ', 'scores': [0.5, 0.5], 'classes': ['x', 'bass']}]
  }).encode()]

  class Garbage(http.server.BaseHTTPRequestHandler):

    def do_POST(self):  # pylint: disable=invalid-name
      self.rfile.read(int(self.headers['Content-Length']))
      body = answers.pop(0)
      self.send_response(200)
      self.send_header('Content-Length', str(len(body)))
      self.end_headers()
      self.wfile.write(body)

    def log_message(self, *args):  # pylint: disable=arguments-differ
      pass

  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Garbage)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    endpoint = cascade.Endpoint(
        cascade.predict_url(f'http://127.0.0.1:{server.server_address[1]}',
                            'm'), pairing.PCM_INPUT, KEY)
    with pytest.raises(cascade.CascadeError, match="not TF Serving's"):
      endpoint.send([b'\0\0'])
    with pytest.raises(cascade.CascadeError, match="label 'organ'"):
      endpoint.send([b'\0\0'])
  finally:
    server.shutdown()
    server.server_close()
  with pytest.raises(cascade.Unreachable):
    cascade.Endpoint('http://127.0.0.1:9/v1/models/m:predict',
                     pairing.PCM_INPUT, KEY, timeout=2).send([b'\0\0'])


def test_a_long_outage_holds_no_more_than_the_queue():
  switch, clock, _, router = _router(queue_size=2, wait=0.0, max_backoff=0.02)
  out = []
  for second in range(10):
    clock.now = float(second)
    out += router.feed(_window(second, 0.9), b'pcm')
  # Every window was answered at once, on the device.
  assert [r['family'] for r in out] == ['unknown'] * 10
  switch.up = True
  late = router.finish(idle_seconds=5.0)
  # Only the two the queue still held come back late.
  assert sorted(r['start'] for r in late) == [8.0, 9.0]
  summary = router.summary()
  assert (summary['dropped'], summary['late'], summary['unknown']) == (
      8, 2, 8)
