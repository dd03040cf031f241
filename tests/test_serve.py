"""`python -m pipeline serve`: KServe's model server, started and stopped
here, on phase two's pushed versions (components/cloud/server.py)."""

import base64
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

import audio_files
import device_fuzz
from components import frontend
from components.cloud import launch
from components.cloud import push as cloud_push
from components.cloud import server as cloud_server
from components.cloud import serving_model
from components.common import pairing
from components.frontend import graph
from components.frontend import melscale
from components.modules import features
from components.modules import phase_two
from components.modules import trainer

pytestmark = pytest.mark.kserve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 32
CLASSES = ['not_instrument', 'bass', 'piano']
NAME = 'instruments'
FRONT_END = frontend.FrontEnd(image_size=SIZE)
PAIRING_KEY = pairing.key(CLASSES[0], CLASSES[1:], FRONT_END.to_record())


def _serving(root, name, bias):
  tf.keras.utils.set_random_seed(0)
  model = trainer.build_model(SIZE, 3, width=0.25, classes=len(CLASSES))
  model.get_layer(trainer.LOGIT_LAYER).bias.assign(bias)
  phase_two.export_model(model, str(root / f'{name}-model'), CLASSES, SIZE, 3)
  out = str(root / f'{name}-serving')
  serving_model.build(str(root / f'{name}-model'), out, FRONT_END, SIZE, 3)
  return out


def _push(base_destination, folder):
  return cloud_push.write_version(base_destination, folder,
                                  cloud_push.CloudManifest(
                                      model_name=NAME, classes=CLASSES,
                                      families=CLASSES[1:],
                                      request=serving_model.PCM_INPUT,
                                      front_end=FRONT_END,
                                      figures={}, source={}, created='now',
                                      pairing_key=PAIRING_KEY))


def _windows():
  rng = np.random.default_rng(7)
  return [melscale.pcm16_bytes(samples)
          for samples in graph.probe_windows(FRONT_END)] + [
              melscale.pcm16_bytes(rng.uniform(-0.5, 0.5,
                                               FRONT_END.window_samples))
              for _ in range(3)]


def _in_process(folder, windows):
  answer = tf.saved_model.load(folder).signatures[
      features.SERVING_EXAMPLES_SIGNATURE](audio_pcm=tf.constant(windows))
  return answer[features.SCORES_NAME].numpy()


def _b64(data):
  return base64.b64encode(data).decode()


@pytest.fixture(name='served', scope='module')
def _served(tmp_path_factory):
  """`python -m pipeline serve` on a destination holding version 1."""
  launch.kserve_python()
  root = tmp_path_factory.mktemp('serve')
  models = {'one': _serving(root, 'one', [0.0, 0.5, -0.5]),
            # Untrained: its bias alone makes it answer otherwise.
            'other': _serving(root, 'other', [4.0, -2.0, -2.0])}
  destination = str(root / 'served')
  _push(destination, models['one'])
  port = launch.free_port()
  log = open(root / 'serve.log', 'w+', encoding='utf-8')
  process = subprocess.Popen(
      [sys.executable, '-m', 'pipeline', 'serve', '--serving-destination',
       destination, '--served-model-name', NAME, '--port', str(port),
       '--workspace', str(root / 'workspace')],
      cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
      # Ctrl-C as a terminal delivers it, even where the test runner was
      # started in the background, which leaves SIGINT ignored.
      preexec_fn=_ctrl_c_reaches)
  url = f'http://127.0.0.1:{port}'
  try:
    launch.wait_ready(url, NAME, process)
    # What each version number the server may answer with holds: tests
    # that push add theirs, so no test depends on running before them.
    yield {'url': url, 'models': models, 'destination': destination,
           'process': process, 'log': log, 'port': port,
           'pushed': {'1': models['one']}}
  finally:
    if process.poll() is None:
      process.send_signal(signal.SIGINT)
      process.wait(30)
    log.close()


def _ctrl_c_reaches():
  signal.signal(signal.SIGINT, signal.SIG_DFL)


def _predict(served, body, version='v1'):
  path = (f'/v1/models/{NAME}:predict' if version == 'v1'
          else f'/v2/models/{NAME}/infer')
  return launch.post(served['url'] + path, body)


def test_answers_equal_the_saved_model_in_process_in_v1_and_v2(served):
  windows = _windows()
  status, answer = _predict(served, {'instances': [
      {'audio_pcm': {'b64': _b64(w)}} for w in windows]})
  assert status == 200, answer
  version = answer['model_version']
  expected = _in_process(served['pushed'][version], windows)
  scores = np.array([row['scores'] for row in answer['predictions']])
  np.testing.assert_allclose(scores, expected, atol=1e-5)
  assert [row['label'] for row in answer['predictions']] == [
      CLASSES[i] for i in np.argmax(expected, axis=1)]
  assert answer['predictions'][0]['classes'] == CLASSES
  # TF Serving's columnar form too.
  status, columns = _predict(served, {'inputs': {
      'audio_pcm': [{'b64': _b64(w)} for w in windows[:2]]}})
  assert status == 200 and len(columns['predictions']) == 2
  # V2: one BYTES input of base64 text.
  status, answer = _predict(served, {'inputs': [{
      'name': 'audio_pcm', 'shape': [len(windows)], 'datatype': 'BYTES',
      'data': [_b64(w) for w in windows]}]}, 'v2')
  assert status == 200, answer
  outputs = {o['name']: o for o in answer['outputs']}
  np.testing.assert_allclose(
      np.array(outputs['scores']['data']).reshape(expected.shape), expected,
      atol=1e-5)
  assert outputs['label']['data'] == [CLASSES[i] for i in
                                      np.argmax(expected, axis=1)]
  assert answer['model_version'] == version


def _raw_post(served, body_chunks, headers):
  """POSTs to V1 predict by hand (chunked when `body_chunks` is a list);
  returns (status, answer)."""
  import http.client  # pylint: disable=import-outside-toplevel
  connection = http.client.HTTPConnection('127.0.0.1', served['port'],
                                          timeout=60)
  try:
    connection.putrequest('POST', f'/v1/models/{NAME}:predict')
    for key, value in headers.items():
      connection.putheader(key, value)
    connection.endheaders()
    for chunk in body_chunks:
      connection.send(b'%x\r\n%s\r\n' % (len(chunk), chunk))
    connection.send(b'0\r\n\r\n')
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b'{}')
  finally:
    connection.close()


def test_a_chunked_body_is_bounded_as_it_streams(served):
  chunk = b'[' * 65536
  status, answer = _raw_post(served, [chunk] * 40, {
      'Transfer-Encoding': 'chunked', 'Content-Type': 'application/json'})
  assert status == 413, answer
  assert 'at most 1500000 are taken' in answer['error']
  # A chunked body within the limit is answered as any other.
  window = _b64(bytes(FRONT_END.window_samples * 2))
  body = json.dumps({'instances': [window]}).encode()
  status, answer = _raw_post(served, [body[:100], body[100:]], {
      'Transfer-Encoding': 'chunked', 'Content-Type': 'application/json'})
  assert status == 200, answer
  assert len(answer['predictions']) == 1


def test_json_nested_too_deeply_is_a_400_not_a_500(served):
  for content_type in ('text/plain', 'application/json; charset=utf-8'):
    status, answer = _raw_post(served, [b'[' * 100_000 + b']' * 100_000], {
        'Transfer-Encoding': 'chunked', 'Content-Type': content_type})
    assert status == 400, (content_type, answer)
    assert 'nests JSON too deeply' in answer['error'] or (
        'not JSON' in answer['error']), answer


def test_bad_requests_are_refused_with_one_clear_message(served):
  window = FRONT_END.window_samples * 2
  at_44k = melscale.pcm16_bytes(np.zeros(44100, np.float32))
  cases = [
      ({'instance': []}, 400, 'neither "instances" nor "inputs"'),
      ({'instances': []}, 400, 'no instance'),
      ({'instances': ['not base64!']}, 400, 'instance 0: audio_pcm is not '
       'base64'),
      ({'instances': [{'b64': _b64(at_44k)}]}, 400,
       f'holds 88200 bytes; this model takes windows of '
       f'{FRONT_END.window_samples} samples'),
      ({'instances': [{'b64': _b64(bytes(window))}] * 33}, 400,
       'at most 32'),
      ({'instances': [{'b64': _b64(bytes(window))}] * 40}, 413,
       'at most 1500000'),
  ]
  for body, status, said in cases:
    found, answer = _predict(served, body)
    assert (found, said in answer.get('error', '')) == (status, True), (
        body if len(str(body)) < 200 else said, answer)
  assert _predict(served, {'inputs': [{
      'name': 'image_bytes', 'shape': [1], 'datatype': 'BYTES',
      'data': ['AAAA']}]}, 'v2')[0] == 400
  # The server still answers; a refused request is one short line at most.
  assert _predict(served, {'instances': [_b64(bytes(window))]})[0] == 200
  served['log'].flush()
  with open(served['log'].name, encoding='utf-8') as f:
    logged = f.read()
  assert 'Traceback' not in logged and 'POST /v1' not in logged, logged
  # KServe's Prometheus metrics.
  with launch.urllib.request.urlopen(served['url'] + '/metrics') as answer:
    assert b'request_predict_seconds' in answer.read()


def test_a_device_whose_phase_one_does_not_pair_is_refused_by_name(served):
  window = _b64(_windows()[0])
  status, answer = _predict(served, {'instances': [window],
                                     'pairing_key': PAIRING_KEY})
  assert status == 200 and answer['pairing_key'] == PAIRING_KEY
  other = pairing.key(CLASSES[0], ['bass', 'organ'], FRONT_END.to_record())
  status, answer = _predict(served, {'instances': [window],
                                     'pairing_key': other})
  assert status == 409, answer
  assert (f'pairs with phase-one versions of key {PAIRING_KEY} (classes '
          f'not_instrument, bass, piano); the request\'s phase one has key '
          f'{other}') in answer['error']
  status, answer = _predict(served, {
      'inputs': [{'name': 'audio_pcm', 'shape': [1], 'datatype': 'BYTES',
                  'data': [window]}],
      'parameters': {'pairing_key': other}}, 'v2')
  assert status == 409 and other in answer['error']
  # What is no key is a bad request, never echoed back.
  for said in ('k' * 1_000_000, ['a list']):
    status, answer = _predict(served, {'instances': [window],
                                       'pairing_key': said})
    assert status == 400, answer
    assert len(answer['error']) < 200, len(answer['error'])
    assert 'pairing_key must be a text of at most 128' in answer['error']


def test_the_server_listens_on_the_loopback_address_only(served):
  listening = []
  with open('/proc/net/tcp', encoding='ascii') as f:
    for line in f.readlines()[1:]:
      local, state = line.split()[1], line.split()[3]
      address, port = local.split(':')
      if int(port, 16) == served['port'] and state == '0A':  # LISTEN
        listening.append(address)
  assert listening == ['0100007F']  # 127.0.0.1


def test_a_version_pushed_while_clients_send_is_picked_up_with_no_failure(
    served):
  windows = _windows()[:2]
  other = _in_process(served['models']['other'], windows)
  body = {'instances': [{'b64': _b64(w)} for w in windows]}
  seen, failures, stop = [], [], threading.Event()

  def client():
    while not stop.is_set():
      sent = time.monotonic()
      status, answer = _predict(served, body)
      if status != 200:
        failures.append((status, answer))
      else:
        seen.append((answer['model_version'],
                     [row['scores'] for row in answer['predictions']],
                     sent, time.monotonic()))

  clients = [threading.Thread(target=client) for _ in range(4)]
  for thread in clients:
    thread.start()
  try:
    time.sleep(1)
    version, _ = _push(served['destination'], served['models']['other'])
    served['pushed'][str(version)] = served['models']['other']
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        row[0] == str(version) for row in seen[-4:]):
      time.sleep(0.2)
    time.sleep(0.5)
  finally:
    stop.set()
    for thread in clients:
      thread.join()
  assert not failures, failures[:3]
  versions = [row[0] for row in seen]
  assert versions[0] == '1' and versions[-1] == str(version), versions[-5:]
  # Once a client has had an answer from the new version, no request sent
  # after it is answered by the old one; the new answers are the new
  # model's.
  swapped = min(received for v, _, _, received in seen if v == str(version))
  assert {v for v, _, sent, _ in seen if sent > swapped} == {str(version)}
  np.testing.assert_allclose(np.array(seen[-1][1]), other, atol=1e-5)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_serve_answers_what_is_in_flight_then_stops(served,
                                                                signum):
  import http.client  # pylint: disable=import-outside-toplevel
  import socket  # pylint: disable=import-outside-toplevel
  port = launch.free_port()
  process = subprocess.Popen(
      [sys.executable, '-m', 'pipeline', 'serve', '--serving-destination',
       served['destination'], '--served-model-name', NAME, '--port',
       str(port), '--workspace', os.path.dirname(served['destination'])],
      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  url = f'http://127.0.0.1:{port}'
  try:
    launch.wait_ready(url, NAME, process)
    # A request in flight: its body half sent when the signal comes.
    body = json.dumps({'instances': [_b64(_windows()[0])]}).encode()
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    connection.putrequest('POST', f'/v1/models/{NAME}:predict')
    connection.putheader('Content-Type', 'application/json')
    connection.putheader('Content-Length', str(len(body)))
    connection.endheaders()
    connection.send(body[:len(body) // 2])
    time.sleep(0.5)
    # As Kubernetes stops a container (SIGTERM), or a terminal closes
    # (SIGHUP): to the launcher alone.
    process.send_signal(signum)
    time.sleep(0.5)
    connection.send(body[len(body) // 2:])
    response = connection.getresponse()
    assert response.status == 200
    assert len(json.loads(response.read())['predictions']) == 1
    connection.close()
    assert process.wait(60) == 0
    with pytest.raises(OSError):
      socket.create_connection(('127.0.0.1', port), timeout=2).close()
  finally:
    if process.poll() is None:
      process.kill()


def test_serve_says_what_is_missing(served):
  one_version = os.path.join(served['destination'], NAME, '1')
  for args, said in [
      (['--model', '/nonexistent/served'], 'no such folder'),
      (['--model', one_version], 'is one version; serve takes the folder'),
      (['--model', served['destination']], 'holds no pushed version'),
      # Checked before anything starts, in one line.
      (['--port', '70000'], '--port 70000 is not a TCP port (1 to 65535)'),
      (['--port', '-1'], '--port -1 is not a TCP port'),
      (['--port', str(served['port'])],
       f"cannot listen on 127.0.0.1:{served['port']}: Address already in "
       'use (another server there?'),
  ]:
    if '--port' not in args:
      args = args + ['--port', str(launch.free_port())]
    found = subprocess.run([sys.executable, '-m', 'pipeline', 'serve'] + args,
                           cwd=ROOT, capture_output=True, text=True,
                           check=False)
    assert found.returncode == 2 and said in found.stderr, found.stderr
    assert len(found.stderr.strip().splitlines()) == 1, found.stderr
  assert cloud_server.MAX_INSTANCES * 2 * FRONT_END.window_samples * 4 / 3 < \
      cloud_server.MAX_BODY_BYTES


def _lines_of(stream):
  """A queue that receives each line of `stream` as it is written."""
  lines = queue.Queue()

  def read():
    for line in stream:
      lines.put(line)
    lines.put(None)

  threading.Thread(target=read, daemon=True).start()
  return lines


def _take(lines, count, until, seconds=90):
  """Takes lines until `count` of them satisfy `until`; returns them all."""
  taken, matched = [], 0
  deadline = time.monotonic() + seconds
  while matched < count:
    line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
    assert line is not None, f'the stream ended early: {taken}'
    row = json.loads(line)
    taken.append(row)
    matched += bool(until(row))
  return taken


def test_a_device_streams_through_the_cascade_and_survives_the_server_stopping(
    served, tmp_path):
  """The cascade's fault test: `predict --stream - --cascade URL` against
  `python -m pipeline serve`; the server stops mid-stream and comes back."""
  destination = str(tmp_path / 'served')
  _push(destination, served['models']['one'])
  base = cloud_push.model_base(destination, NAME)
  phase_one = device_fuzz.write_version(
      str(tmp_path / 'pushed'), labels=('not_instrument', 'instrument'),
      threshold=0.7, dc_gain=20.0,
      families={'given': True, 'names': CLASSES[1:],
                'pairing_key': PAIRING_KEY})
  rng = np.random.default_rng(3)

  def seconds(*levels):
    return melscale.pcm16_bytes(np.concatenate(
        [level + rng.uniform(-0.05, 0.05, FRONT_END.sample_rate)
         for level in levels]))

  server = launch.Server(base, NAME)
  server.wait_ready()
  device = subprocess.Popen(
      [sys.executable, '-m', 'pipeline', 'predict', '--model', phase_one,
       '--stream', '-', '--json', '--cascade', server.url,
       '--cascade-wait', '0.5'],
      cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=False)
  lines = _lines_of(device.stdout)
  try:
    device.stdin.write(seconds(0, 0.3, 0.3))
    device.stdin.flush()
    rows = _take(lines, 2, lambda r: r.get('decided_by') == 'cloud')
    server.stop()
    # Down: the stream goes on, flagged windows answered on the device.
    device.stdin.write(seconds(0.3, 0, 0.3))
    device.stdin.flush()
    rows += _take(lines, 2, lambda r: r.get('family') == 'unknown')
    server = launch.Server(base, NAME, port=server.port)
    server.wait_ready()
    device.stdin.write(seconds(0.3, 0))
    device.stdin.close()
    rows += _take(lines, 1, lambda r: 'cascade' in r)
    assert device.wait(60) == 0, device.stderr.read()
  finally:
    if device.poll() is None:
      device.kill()
    server.stop()
  windows = [r for r in rows if 'start' in r and not r.get('late')]
  assert [w['start'] for w in windows] == [float(s) for s in range(8)]
  flagged = [w['start'] for w in windows if w['phase_one']['score'] >= 0.7]
  assert flagged == [1.0, 2.0, 3.0, 5.0, 6.0]
  unknown = {w['start'] for w in windows if w['family'] == 'unknown'}
  assert unknown == {3.0, 5.0}
  late = {r['start']: r for r in rows if r.get('late')}
  assert set(late) == unknown
  answered = [w for w in windows if w['decided_by'] == 'cloud'] + list(
      late.values())
  assert sorted(w['start'] for w in answered) == flagged
  for row in answered:
    assert row['label'] in CLASSES and row['cloud']['model_version'] == '1'
  assert [w['label'] for w in windows if w['start'] in (0.0, 4.0, 7.0)] == [
      'not_instrument'] * 3
  summary = rows[-1]['cascade']
  assert (summary['sent'], summary['answered'], summary['late'],
          summary['unknown']) == (5, 5, 2, 0)
  assert summary['cloud_share'] == pytest.approx(5 / 8)


def _cpu_seconds(pid):
  with open(f'/proc/{pid}/stat', encoding='ascii') as f:
    fields = f.read().rsplit(')', 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def test_a_damaged_version_is_refused_once_and_never_served(served,
                                                             tmp_path):
  destination = str(tmp_path / 'served')
  _push(destination, served['models']['one'])
  _, damaged = _push(destination, served['models']['other'])
  graph_file = os.path.join(damaged, 'saved_model.pb')
  good = open(graph_file, 'rb').read()  # pylint: disable=consider-using-with
  # Version 2's graph is not the file pushed: at start, version 1 is served.
  with open(graph_file, 'wb') as f:
    f.write(good[:-1] + bytes([good[-1] ^ 1]))
  log_path = tmp_path / 'serve.log'
  with open(log_path, 'w+', encoding='utf-8') as log, launch.Server(
      os.path.join(destination, NAME), NAME, poll_seconds=0.2, log=log,
      log_level='info') as server:
    server.wait_ready()
    windows = _windows()[:1]
    body = {'instances': [{'b64': _b64(w)} for w in windows]}
    status, answer = launch.post(server.predict_url(), body)
    assert status == 200 and answer['model_version'] == '1'
    # Polled 25 times in 5 s: refused once, never tried again, no work.
    before = _cpu_seconds(server.process.pid)
    time.sleep(5)
    used = _cpu_seconds(server.process.pid) - before
    log.flush()
    said = [line for line in open(log_path, encoding='utf-8')  # pylint: disable=consider-using-with
            if 'version 2 is not served' in line]
    assert len(said) == 1, said
    assert 'saved_model.pb is not the file pushed' in said[0]
    assert used < 0.5, used
    # Mended (its files change): it is tried again, and served.
    with open(graph_file, 'wb') as f:
      f.write(good)
    deadline = time.monotonic() + 60
    while answer['model_version'] != '2':
      assert time.monotonic() < deadline, 'version 2 was never served'
      time.sleep(0.3)
      status, answer = launch.post(server.predict_url(), body)
      assert status == 200
    np.testing.assert_allclose(
        [row['scores'] for row in answer['predictions']],
        _in_process(served['models']['other'], windows), atol=1e-5)


def test_an_unknown_model_is_one_log_line_not_a_traceback(served):
  log = served['log']
  log.flush()
  before = open(log.name, encoding='utf-8').read()  # pylint: disable=consider-using-with
  for _ in range(3):
    status, answer = launch.post(
        served['url'] + '/v1/models/' + 'x' * 5000 + ':predict',
        {'instances': []})
    assert status == 404 and len(answer['error']) <= 200, answer
  time.sleep(0.5)
  after = open(log.name, encoding='utf-8').read()[len(before):]  # pylint: disable=consider-using-with
  lines = after.strip().splitlines()
  assert len(lines) == 3 and 'Traceback' not in after, after
  assert all('404 POST' in line and len(line) < 500 for line in lines), lines


def test_a_body_not_of_the_protocol_s_shape_is_not_echoed(served):
  status, answer = _predict(served, {'inputs': 'x' * 500_000}, version='v2')
  assert status == 422, (status, str(answer)[:300])
  assert 'inputs' in answer['error'] and len(json.dumps(answer)) < 1000


FUZZ_CASES = 300
# What the fuzz may add to the server's resident memory (its idle figure
# is about 600 MiB with TensorFlow loaded).
FUZZ_MEMORY_MIB = 100


def test_hostile_requests_get_a_4xx_or_an_answer_and_the_server_holds(
    served):
  import collections  # pylint: disable=import-outside-toplevel
  import server_fuzz  # pylint: disable=import-outside-toplevel
  window = bytes(FRONT_END.window_samples * 2)
  valid = {'instances': [_b64(window)]}
  assert _predict(served, valid)[0] == 200
  idle = server_fuzz.rss_mib(served['process'].pid)
  log = served['log']
  log.flush()
  logged_before = open(log.name, encoding='utf-8').read()  # pylint: disable=consider-using-with
  statuses = collections.Counter()
  peak = idle
  for number, (kind, request) in enumerate(server_fuzz.requests(
      FUZZ_CASES, window, NAME, seed=45)):
    status, data = server_fuzz.send(served['port'], request)
    statuses[status] += 1
    # KServe answers a versioned path 501 (one version is served).
    assert status < 500 or (status == 501 and b'versioning' in data), (
        kind, request[:3], data[:300])
    assert len(data) < 2000 or status == 200, (kind, len(data))
    if status == 200:
      answer = json.loads(data)
      assert 'predictions' in answer or 'outputs' in answer, (kind, answer)
    if number % 25 == 0:
      peak = max(peak, server_fuzz.rss_mib(served['process'].pid))
  assert served['process'].poll() is None
  assert _predict(served, valid)[0] == 200
  peak = max(peak, server_fuzz.rss_mib(served['process'].pid))
  assert peak - idle < FUZZ_MEMORY_MIB, (idle, peak)
  # Both answers and refusals were met: the fuzz reaches the model.
  assert statuses[200] > 10 and sum(
      n for s, n in statuses.items() if 400 <= s < 500) > 100, statuses
  time.sleep(0.5)
  logged = open(log.name, encoding='utf-8').read()[len(logged_before):]  # pylint: disable=consider-using-with
  assert 'Traceback' not in logged, logged[-3000:]
  assert len(logged.splitlines()) <= FUZZ_CASES, len(logged.splitlines())


def test_concurrent_requests_are_answered_as_each_would_be_alone(served):
  windows = _windows()
  alone = {}
  for index, window in enumerate(windows):
    status, answer = _predict(served, {'instances': [_b64(window)]})
    assert status == 200
    alone[index] = (answer['model_version'],
                    answer['predictions'][0]['scores'])
  together, failures = {}, []

  def client(index):
    for _ in range(5):
      status, answer = _predict(served, {'instances': [_b64(windows[index])]})
      if status != 200:
        failures.append(answer)
        return
      together.setdefault(index, []).append(
          (answer['model_version'], answer['predictions'][0]['scores']))

  threads = [threading.Thread(target=client, args=(i,))
             for i in range(len(windows))]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert not failures, failures[:2]
  for index, answers in together.items():
    for version, scores in answers:
      assert version == alone[index][0]
      np.testing.assert_allclose(scores, alone[index][1], atol=1e-6)


def test_v2_model_metadata_names_the_input_and_outputs(served):
  import urllib.request  # pylint: disable=import-outside-toplevel
  with urllib.request.urlopen(f"{served['url']}/v2/models/{NAME}",
                              timeout=30) as response:
    found = json.loads(response.read())
  assert found['name'] == NAME
  assert found['inputs'] == [{'name': 'audio_pcm', 'datatype': 'BYTES',
                              'shape': [-1]}]
  assert found['outputs'] == [
      {'name': 'scores', 'datatype': 'FP32', 'shape': [-1, len(CLASSES)]},
      {'name': 'classes', 'datatype': 'BYTES', 'shape': [-1, len(CLASSES)]},
      {'name': 'label', 'datatype': 'BYTES', 'shape': [-1]}]
  # What the metadata says is what an answer holds.
  status, answer = _predict(served, {'inputs': [{
      'name': 'audio_pcm', 'shape': [2], 'datatype': 'BYTES',
      'data': [_b64(w) for w in _windows()[:2]]}]}, 'v2')
  assert status == 200
  assert [(o['name'], o['datatype'], o['shape']) for o in answer['outputs']
          ] == [('scores', 'FP32', [2, 3]), ('classes', 'BYTES', [2, 3]),
                ('label', 'BYTES', [2])]


def test_request_makes_a_body_the_server_answers(served, tmp_path):
  rng = np.random.default_rng(11)
  seconds = 2.5
  clip = tmp_path / 'clip.wav'
  clip.write_bytes(audio_files.wav_bytes(
      rng.uniform(-0.3, 0.3, int(44100 * seconds)), 44100))
  base = os.path.join(served['destination'], NAME)
  for flag, version in (([], 'v1'), (['--v2'], 'v2')):
    made = subprocess.run(
        [sys.executable, '-m', 'pipeline', 'request', '--model', base,
         str(clip)] + flag, cwd=ROOT, capture_output=True, text=True,
        check=False)
    assert made.returncode == 0, made.stderr
    body = json.loads(made.stdout)
    # 2.5 s at 44.1 kHz: three one-second windows at the front end's rate.
    assert 'request: 3 windows of' in made.stderr, made.stderr
    assert f'/{NAME}' in made.stderr and 'curl -s -d @input.json' in (
        made.stderr)
    status, answer = _predict(served, body, version)
    assert status == 200, answer
    rows = (answer['predictions'] if version == 'v1'
            else answer['outputs'][0]['data'])
    assert len(rows) == (3 if version == 'v1' else 3 * len(CLASSES))
  missing = subprocess.run(
      [sys.executable, '-m', 'pipeline', 'request', '--model', base,
       str(tmp_path / 'none.wav')], cwd=ROOT, capture_output=True, text=True,
      check=False)
  assert missing.returncode == 2 and 'none.wav' in missing.stderr
  assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr


def test_ten_huge_chunked_bodies_at_once_leave_memory_bounded(served):
  import server_fuzz  # pylint: disable=import-outside-toplevel
  idle = server_fuzz.rss_mib(served['process'].pid)
  chunk = b'[' * (1 << 16)
  statuses, peak, done = [], [idle], threading.Event()

  def send():
    # 40 MiB each, 400 MiB in all, streamed as a client would.
    statuses.append(_raw_post(served, [chunk] * 640, {
        'Transfer-Encoding': 'chunked',
        'Content-Type': 'application/json'})[0])

  def watch():
    while not done.wait(0.1):
      peak.append(server_fuzz.rss_mib(served['process'].pid))

  watcher = threading.Thread(target=watch)
  watcher.start()
  senders = [threading.Thread(target=send) for _ in range(10)]
  for thread in senders:
    thread.start()
  for thread in senders:
    thread.join()
  done.set()
  watcher.join()
  assert statuses == [413] * 10, statuses
  assert max(peak) - idle < 100, (idle, max(peak))
  assert _predict(served, {'instances': [_b64(_windows()[0])]})[0] == 200
