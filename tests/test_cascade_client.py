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
  assert done.returncode == cascade.FAULT_EXIT, done.stderr
  assert len(lines) == 1 and 'Traceback' not in done.stderr, done.stderr
  assert '409' in lines[0] and KEY in lines[0] and 'ffffffffffffffff' in lines[0]
  # Phase one's answer stands; no wrong label is given.
  assert f'{clip}: instrument, family unknown (device, ' in done.stdout
  assert '1 family unknown; phase two failed: ' in done.stdout


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
  done = subprocess.run(command + ['--cascade-drain', '0.5'], env=ENV,
                        cwd=REPO_ROOT, capture_output=True, text=True,
                        timeout=120, check=False)
  # Nothing listens there: the flagged window stays "family unknown" once
  # the 0.5 s drain is over, and the summary says why (the drain's own
  # time is measured in process, by the test after the fault tests).
  assert done.returncode == 0, done.stderr
  assert '1.00-2.00 s  instrument, family unknown' in done.stdout, done.stdout
  assert ('1 family unknown, 1 with no answer within the 0.5 s drain; '
          'phase two could not be reached') in done.stdout, done.stdout
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
  late = router.finish(drain_seconds=5.0)
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
  out += router.finish(drain_seconds=5.0)
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
  late = router.finish(drain_seconds=5.0)
  # Only the two the queue still held come back late.
  assert sorted(r['start'] for r in late) == [8.0, 9.0]
  summary = router.summary()
  assert (summary['dropped'], summary['late'], summary['unknown']) == (
      8, 2, 8)


class _Faulty:
  """A phase two that answers every request the way `mode` says, on
  loopback: what a broken server, a proxy or an attacker may send."""

  def __init__(self, mode):
    self.mode, self.requests, self.auth = mode, [], []
    faulty = self

    class Handler(http.server.BaseHTTPRequestHandler):
      protocol_version = 'HTTP/1.1'

      def do_POST(self):  # pylint: disable=invalid-name
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        faulty.requests.append(time.monotonic())
        faulty.auth.append(self.headers.get('Authorization'))
        count = len(body['instances'])
        row = {'label': 'bass', 'scores': [0.2, 0.8],
               'classes': ['not_instrument', 'bass']}
        answers = {
            'garbage': b'<html>gateway</html>',
            'label': json.dumps({'predictions': [
                dict(row, label='organ')] * count}).encode(),
            'count': json.dumps({'predictions': [row] * (count + 1)}).encode(),
            'nan': json.dumps({'predictions': [
                dict(row, scores=[float('nan'), 0.8])] * count}).encode(),
            'range': json.dumps({'predictions': [
                dict(row, scores=[-3.0, 4.0])] * count}).encode(),
            'good': json.dumps({'predictions': [row] * count}).encode(),
        }
        if faulty.mode in answers:
          return self._send(200, answers[faulty.mode])
        if faulty.mode == 'huge':
          return self._send(200, b'{"predictions": [' + b' ' * (2 << 20) +
                            b']}')
        if faulty.mode == 'huge_chunked':
          self.send_response(200)
          self.send_header('Transfer-Encoding', 'chunked')
          self.end_headers()
          piece = b' ' * 65536
          try:
            for _ in range(64):
              self.wfile.write(b'%x\r\n%s\r\n' % (len(piece), piece))
            self.wfile.write(b'0\r\n\r\n')
          except OSError:
            pass
          return None
        if faulty.mode == 'busy':
          return self._send(503, b'{"error": "busy"}', {'Retry-After': '1'})
        if faulty.mode == 'trickle':
          # Headers, then a byte every 0.3 s: each read is quick, the
          # whole answer never comes.
          self.send_response(200)
          self.send_header('Content-Length', '100000')
          self.end_headers()
          try:
            for _ in range(200):
              self.wfile.write(b' ')
              self.wfile.flush()
              time.sleep(0.3)
          except OSError:
            pass
          return None
        raise AssertionError(faulty.mode)

      def _send(self, status, data, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
          self.send_header(name, value)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        try:
          self.wfile.write(data)
        except OSError:
          pass

      def log_message(self, *args):  # pylint: disable=arguments-differ
        pass

    self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    self._server.daemon_threads = True
    threading.Thread(target=self._server.serve_forever, daemon=True).start()

  def url(self, credentials=''):
    return f'http://{credentials}127.0.0.1:{self._server.server_address[1]}'

  def close(self):
    self._server.shutdown()
    self._server.server_close()


@pytest.fixture(name='faulty')
def _faulty_servers():
  made = []

  def make(mode):
    made.append(_Faulty(mode))
    return made[-1]

  yield make
  for server in made:
    server.close()


@pytest.mark.parametrize('mode,words', [
    ('garbage', "not TF Serving's predict answer"),
    ('label', "label 'organ'"),
    ('count', '2 predictions for 1 windows'),
    ('nan', 'not probabilities'),
    ('range', 'not probabilities'),
    ('huge', 'more than the 1048576 bytes'),
    ('huge_chunked', 'more than the 1048576 bytes'),
])
def test_a_bad_answer_is_a_fault_that_names_itself(faulty, mode, words):
  server = faulty(mode)
  endpoint = cascade.Endpoint(cascade.predict_url(server.url(), 'm'),
                              pairing.PCM_INPUT, KEY, timeout=5)
  with pytest.raises(cascade.CascadeError, match=words):
    endpoint.send([b'\0\0'])


@pytest.mark.parametrize('mode', ['garbage', 'nan'])
def test_a_bad_answer_keeps_every_answer_of_phase_one(phase_one, faulty,
                                                      tmp_path, mode):
  server = faulty(mode)
  clip = _wav(tmp_path, 'clip.wav', _offsets(0, 0.3, 0, 0.3))
  quiet = _wav(tmp_path, 'quiet.wav', _offsets(0, 0))
  for extra in ([], ['--json']):
    done = subprocess.run(
        [sys.executable, '-m', 'pipeline', 'predict', '--model', phase_one,
         '--cascade', server.url(), clip, quiet] + extra, env=ENV,
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        check=False)
    assert done.returncode == cascade.FAULT_EXIT, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and 'phase two is not asked again' in lines[0]
    if extra:
      assert 'NaN' not in done.stdout
      answer = json.loads(done.stdout)
      assert [p['label'] for p in answer['predictions']] == [
          'instrument', 'not_instrument']
      assert [w['family'] for w in answer['predictions'][0]['windows']] == [
          None, 'unknown', None, 'unknown']
      assert answer['cascade']['fault']
    else:
      assert f'{quiet}: not_instrument (device, ' in done.stdout
      assert f'{clip}: instrument, family unknown (device, ' in done.stdout
      assert '1.00-2.00 s  instrument, family unknown' in done.stdout
      assert '0.00-1.00 s  not_instrument (device, ' in done.stdout
      assert 'phase two failed: ' in done.stdout


def test_a_trickled_answer_meets_its_deadline(faulty):
  server = faulty('trickle')
  endpoint = cascade.Endpoint(cascade.predict_url(server.url(), 'm'),
                              pairing.PCM_INPUT, KEY, timeout=1.0)
  started = time.monotonic()
  with pytest.raises(cascade.Unreachable, match='no whole answer within 1 s'):
    endpoint.send([b'\0\0'])
  # Each byte came within 0.3 s; the whole answer had 1 s.
  assert time.monotonic() - started < 5.0


def test_the_drain_is_kept_with_a_request_in_flight(faulty):
  server = faulty('trickle')
  endpoint = cascade.Endpoint(cascade.predict_url(server.url(), 'm'),
                              pairing.PCM_INPUT, KEY, timeout=30.0)
  sender = cascade.Sender(endpoint.send, cancel=endpoint.cancel)
  router = cascade.Cascade(['not_instrument', 'instrument'], 0.5, sender,
                           'not_instrument', wait=None)
  router.feed(_window(0, 0.9), b'\0\0')
  _until(lambda: server.requests)
  started = time.monotonic()
  [record] = router.finish(0.5)
  # Its 30 s deadline is not waited for: the request is cut off.
  assert time.monotonic() - started < 0.5 + cascade.CLOSE_SECONDS
  assert record['family'] == cascade.UNKNOWN_FAMILY
  summary = router.summary()
  assert summary['cut_off'] == 1
  assert 'with no answer within the 0.5 s drain' in cascade.summary_line(
      summary)


def test_retries_back_off_and_honour_retry_after(faulty):
  server = faulty('busy')
  endpoint = cascade.Endpoint(cascade.predict_url(server.url(), 'm'),
                              pairing.PCM_INPUT, KEY, timeout=5)
  sender = cascade.Sender(endpoint.send, first_backoff=0.01,
                          max_backoff=0.02, cancel=endpoint.cancel)
  router = cascade.Cascade(['not_instrument', 'instrument'], 0.5, sender,
                           'not_instrument', wait=0.0)
  started = time.monotonic()
  # A window every 20 ms for 2.5 s: new windows do not wake the sender.
  while time.monotonic() - started < 2.5:
    router.feed(_window(0, 0.9), b'\0\0')
    time.sleep(0.02)
  router.finish(0.0)
  gaps = np.diff(server.requests)
  # The server asked for 1 s between tries; its own backoff was 20 ms.
  assert 2 <= len(server.requests) <= 3, server.requests
  assert gaps.min() >= 0.95, gaps
  assert sender.problem.startswith('503 busy')


def test_backoff_grows_and_is_not_woken_by_new_windows():
  attempts = []

  def down(payloads):
    attempts.append(time.monotonic())
    raise cascade.Unreachable('connection refused')

  sender = cascade.Sender(down, first_backoff=0.1, max_backoff=0.4)
  for key in range(60):
    sender.put(key, b'pcm')
    time.sleep(0.02)
  sender.close()
  # 1.2 s of windows: tries at about 0, 0.1, 0.3, 0.7 (with jitter, each
  # wait half to all of its backoff), not one per window.
  assert 3 <= len(attempts) <= 8, np.diff(attempts)
  assert np.all(np.diff(attempts) >= 0.04)


def test_credentials_in_the_url_are_sent_never_printed(phase_one, faulty,
                                                       tmp_path):
  assert cascade.shown_url('http://ann:s3cret@host:8080/v1') == (
      'http://ann:***@host:8080/v1')
  server = faulty('good')
  endpoint = cascade.Endpoint(
      cascade.predict_url(server.url('ann:s3cret@'), 'm'), pairing.PCM_INPUT,
      KEY)
  endpoint.send([b'\0\0'])
  assert server.auth == ['Basic ' + base64.b64encode(b'ann:s3cret').decode()]
  clip = _wav(tmp_path, 'clip.wav', _offsets(0.3))
  done = subprocess.run(
      [sys.executable, '-m', 'pipeline', 'predict', '--model', phase_one,
       '--cascade', 'http://ann:s3cret@127.0.0.1:9', '--cascade-drain', '0.3',
       clip], env=ENV, cwd=REPO_ROOT, capture_output=True, text=True,
      timeout=120, check=False)
  assert done.returncode == 0, done.stderr
  assert 'ann:***@127.0.0.1:9' in done.stderr
  assert 's3cret' not in done.stderr + done.stdout


@pytest.mark.parametrize('flag,value', [('--cascade-drain', 'inf'),
                                        ('--cascade-drain', 'nan'),
                                        ('--cascade-wait', 'nan'),
                                        ('--cascade-wait', 'inf')])
def test_settings_that_are_not_finite_are_refused(phase_one, tmp_path, flag,
                                                  value):
  clip = _wav(tmp_path, 'clip.wav', _offsets(0.3))
  done = subprocess.run(
      [sys.executable, '-m', 'pipeline', 'predict', '--model', phase_one,
       '--cascade', 'http://127.0.0.1:9', '--stream', flag, value, clip],
      env=ENV, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
      check=False)
  assert done.returncode == 2
  assert f'{flag} {value}: expected seconds' in done.stderr
