"""KServe's model server on phase two's newest pushed version.

Runs in KServe's own environment (`.venv-kserve`, made by
scripts/ensure_kserve.sh; `python -m pipeline serve` starts it):

  python -m components.cloud.server --base DIR --name NAME \\
      [--host 127.0.0.1] [--port 8080] [--poll-seconds 2] [--log-level info]

`--base` is a model's base path as `components.cloud.push` writes it
(`<destination>/<name>/`, numbered versions inside). The server loads the
newest complete version, then looks for a newer one every `--poll-seconds`:
it loads and warms the new version beside the old, then swaps them, so a
request is answered whole by one version and none is dropped. Every file
of a version is checked against its manifest's SHA-256 before it loads,
as the device checks phase one: a damaged or tampered version is refused
in one line, the one being served stays (at start, the newest version that
loads is served), and it is not tried again until its files change.

One process serves both of KServe's REST protocols on one port:

- V1, TensorFlow Serving's REST API: `GET /v1/models/<name>`,
  `POST /v1/models/<name>:predict` with `{"instances": [...]}` (each
  `{"audio_pcm": {"b64": ...}}`, or `{"b64": ...}`; `image_bytes` for a
  model of images) or `{"inputs": {"audio_pcm": [...]}}`; it answers
  `{"predictions": [{"scores", "classes", "label"}...], "model_version"}`.
- V2, the Open Inference Protocol: `POST /v2/models/<name>/infer` with one
  BYTES input (`audio_pcm` or `image_bytes`) of base64 text; it answers
  `scores` (FP32), `classes` and `label` (BYTES) and the model version.

A request the model cannot take gets 400 and one sentence saying why (not
base64, a window of another length, which is what a recording at another
rate gives, too many instances); a body over `MAX_BODY_BYTES` gets 413.
A request may name the phase one it comes from (`pairing_key`: V1's body,
V2's parameters; `components.common.pairing`): one this version does not
pair with gets 409 and says so, never labels the device does not know.
Every answer names its version and its pairing key.
Each request is logged in one line at debug level only. KServe's
Prometheus metrics are at `/metrics`. The server binds 127.0.0.1 unless
`--host` says otherwise (KServe itself binds every address) and serves no
gRPC.

The model KServe serves is `components.cloud.kserve_model.PhaseTwoModel`
(preprocess, predict, postprocess); this module holds what it is built of
and needs no KServe (the versions and their loader, request decoding, the
batcher), and starts KServe's server. It imports only the cloud package,
KServe and TensorFlow, so it runs where TFX is absent.
"""

import argparse
import asyncio
import base64
import binascii
import collections
import dataclasses
import json
import logging
import os
import sys
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from components.common import pairing

# KServe's settings are read from the command line when it is imported;
# ours are parsed first and KServe's are left at their defaults.
DEFAULT_HOST = '127.0.0.1'
DEFAULT_PORT = 8080
DEFAULT_POLL_SECONDS = 2.0
# At most this many windows per request, and a body of at most this many
# bytes (Vertex AI's online prediction limit, 1.5 MB): 32 windows of one
# second at 16 kHz are about 1.4 MB as base64 JSON.
MAX_INSTANCES = 32
MAX_BODY_BYTES = 1_500_000
# A pairing key is a short digest (components/common/pairing.py); what is
# longer is not one, and is never echoed back.
MAX_PAIRING_KEY = 128
# At most this many windows a model call, from requests that arrived
# together (Batcher).
DEFAULT_BATCH_WINDOWS = 64
LOG = logging.getLogger('phase_two_server')


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='components.cloud.server', description=__doc__.split('\n')[0])
  parser.add_argument('--base', required=True,
                      help='the model base path: numbered versions inside')
  parser.add_argument('--name', required=True,
                      help='the model name requests use (/v1/models/NAME)')
  parser.add_argument('--host', default=DEFAULT_HOST)
  parser.add_argument('--port', type=int, default=DEFAULT_PORT)
  parser.add_argument('--poll-seconds', type=float,
                      default=DEFAULT_POLL_SECONDS)
  parser.add_argument('--log-level', default='info',
                      choices=('debug', 'info', 'warning', 'error'))
  parser.add_argument('--batch-windows', type=int,
                      default=DEFAULT_BATCH_WINDOWS)
  parser.add_argument('--batch-wait-ms', type=float, default=0.0)
  return parser.parse_args(argv)


class RequestError(ValueError):
  """A request the model cannot take; answered with 400 and this text."""


class PairingMismatch(Exception):
  """A request from a phase one this version does not pair with; answered
  with 409 and this text."""


# Where a request names the phase one it comes from: V1's body, V2's
# parameters (optional: a client that does not say is answered).
PAIRING_FIELD = pairing.FIELD


@dataclasses.dataclass(frozen=True)
class Version:
  """One loaded version: its number, serving function, input and labels."""
  number: int
  folder: str
  serve: Any
  input_name: str
  classes: List[str]
  window_bytes: Optional[int]
  rate: Optional[int]
  pairing_key: Optional[str] = None
  families: Optional[List[str]] = None

  def check_pairing(self, said: Any) -> None:
    """Refuses a request whose phase one is not this version's pair; a
    key that is no key (not text, or longer than any key is) is a bad
    request, and is not echoed."""
    if said is None or said == self.pairing_key:
      return
    if not isinstance(said, str) or len(said) > MAX_PAIRING_KEY:
      raise RequestError(f'pairing_key must be a text of at most '
                         f'{MAX_PAIRING_KEY} characters, as a phase-one '
                         'manifest gives it')
    raise PairingMismatch(
        f'this server\'s phase two (version {self.number}) pairs with phase-'
        f'one versions of key {self.pairing_key} (classes '
        f'{", ".join(self.classes)}); the request\'s phase one has key '
        f'{said}: push and serve the phase two trained beside it, or update '
        'the device\'s model')

  def window_text(self) -> str:
    samples = self.window_bytes // 2
    return (f'windows of {samples} samples ({samples / self.rate:.3f} s at '
            f'{self.rate} Hz, {self.window_bytes} bytes of little-endian '
            f'16-bit mono PCM)')


def load_version(base: str, number: int) -> Version:
  """Loads version `number` under `base` and answers one request with it,
  so its first real request is not slowed by TensorFlow's tracing."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.cloud import push  # pylint: disable=g-import-not-at-top
  from components.cloud import serving_model  # pylint: disable=g-import-not-at-top
  folder = os.path.join(base, str(number))
  manifest = push.read_manifest(folder)
  push.verify_local(folder, manifest)
  serve = tf.saved_model.load(folder).signatures['serving_default']
  input_name = manifest.request
  window_bytes = rate = None
  if input_name == serving_model.PCM_INPUT:
    front_end = manifest.front_end
    rate, window_bytes = front_end.sample_rate, 2 * front_end.window_samples
    serve(**{input_name: tf.constant([bytes(window_bytes)])})
  return Version(number, folder, serve, input_name, list(manifest.classes),
                 window_bytes, rate, manifest.pairing_key,
                 list(manifest.families))


def versions(base: str) -> List[int]:
  """The complete versions under `base`, ascending."""
  from components.cloud import push  # pylint: disable=g-import-not-at-top
  return push.versions(base)


def fingerprint(folder: str) -> Tuple[Tuple[str, int, int], ...]:
  """Each file under a version's folder with its size and modification
  time: what must change before a refused version is tried again."""
  found = []
  for root, _, names in os.walk(folder):
    for name in names:
      path = os.path.join(root, name)
      try:
        status = os.stat(path)
      except OSError:
        continue
      found.append((os.path.relpath(path, folder), status.st_size,
                    status.st_mtime_ns))
  return tuple(sorted(found))


class Loader:
  """Loads versions under `base`, each checked against its manifest's
  digests; a version refused is said once, in one line, and not tried
  again until its files change (so an idle server does no work)."""

  def __init__(self, base: str):
    self.base = base
    self._refused: Dict[int, Tuple] = {}

  def load(self, number: int) -> Optional[Version]:
    """Version `number`, or None when it is refused (now or before, with
    the same files)."""
    folder = os.path.join(self.base, str(number))
    files = fingerprint(folder)
    if self._refused.get(number) == files:
      return None
    try:
      return load_version(self.base, number)
    except Exception as e:  # pylint: disable=broad-except
      self._refused[number] = files
      LOG.warning('version %d is not served (tried again when its files '
                  'change): %s', number, _first_line(e))
      return None


def _first_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return text[0][:300] if text else type(error).__name__


def decode(value: Any, where: str, version: Version) -> bytes:
  """One instance's bytes from base64 text (`{"b64": ...}` in V1)."""
  if isinstance(value, dict) and set(value) == {'b64'}:
    value = value['b64']
  if isinstance(value, bytes):
    value = value.decode('ascii', 'replace')
  if not isinstance(value, str):
    raise RequestError(f'{where}: {version.input_name} must be base64 text '
                       f'(in V1, {{"b64": "..."}}), not '
                       f'{type(value).__name__}')
  try:
    data = base64.b64decode(value, validate=True)
  except (binascii.Error, ValueError):
    raise RequestError(f'{where}: {version.input_name} is not base64') from None
  if version.window_bytes is not None and len(data) != version.window_bytes:
    raise RequestError(
        f'{where}: {version.input_name} holds {len(data)} bytes; this model '
        f'takes {version.window_text()}: a recording at another rate must be '
        f'resampled to {version.rate} Hz and cut into such windows')
  return data


def v1_body(payload: Any) -> Dict[str, Any]:
  """A V1 body as a JSON object."""
  if isinstance(payload, (bytes, str)):
    # A body sent without `content-type: application/json` (`curl -d`
    # sends a form's type), which TF Serving reads as JSON too.
    try:
      payload = json.loads(payload)
    except ValueError:
      raise RequestError('the body is not JSON') from None
    except RecursionError:
      raise RequestError('the body nests JSON too deeply') from None
  if not isinstance(payload, dict):
    raise RequestError('the body must be a JSON object with "instances"')
  return payload


def v1_instances(payload: Any, version: Version) -> List[bytes]:
  """The request bytes of a V1 body, in order."""
  payload = v1_body(payload)
  if 'instances' in payload:
    rows = payload['instances']
    if not isinstance(rows, list):
      raise RequestError('"instances" must be a list')
    values = [row[version.input_name] if isinstance(row, dict) and
              version.input_name in row else row for row in rows]
  elif 'inputs' in payload:
    columns = payload['inputs']
    values = (columns.get(version.input_name)
              if isinstance(columns, dict) else columns)
    if not isinstance(values, list):
      raise RequestError(f'"inputs" must hold a list of '
                         f'{version.input_name} values')
  else:
    raise RequestError('the body has neither "instances" nor "inputs"')
  return checked([decode(value, f'instance {i}', version)
                   for i, value in enumerate(values)])


def checked(found: List[bytes]) -> List[bytes]:
  if not found:
    raise RequestError('the request holds no instance')
  if len(found) > MAX_INSTANCES:
    raise RequestError(f'the request holds {len(found)} instances; at most '
                       f'{MAX_INSTANCES} are taken in one request')
  return found


def run(version: Version, data: List[bytes]) -> Dict[str, Any]:
  """The serving signature's answers as NumPy arrays."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    answer = version.serve(**{version.input_name: tf.constant(data)})
  except tf.errors.InvalidArgumentError as e:
    first = (e.message or str(e)).strip().splitlines()[0]
    raise RequestError(f'the model cannot take the request: {first}') from None
  return {name: tensor.numpy() for name, tensor in answer.items()}


class Batcher:
  """Answers the windows of requests that arrive together with one model
  call, as TensorFlow Serving's batching does: a model call costs less a
  window the more windows it takes.

  While the model is busy, requests wait; when it is free, the next call
  takes every waiting request of the same version, in order, up to
  `max_windows` windows (a request is never split). A request that finds
  the model free runs at once, unless `max_wait` asks it to wait that long
  for company; none waits longer than that before its call starts. The
  answers are split back to their requests. When a batch fails on one
  request's windows, each of its requests is answered alone, so one bad
  request never fails another.

  Args:
    max_windows: at most this many windows a model call.
    max_wait: seconds a request may wait for company while the model is
      free (0: none).
    call: runs one model call (:func:`run`).
  """

  def __init__(self, max_windows: int = DEFAULT_BATCH_WINDOWS,
               max_wait: float = 0.0,
               call: Callable[[Version, List[bytes]], Dict[str, Any]] = None):
    self.max_windows, self.max_wait = max_windows, max_wait
    self._call = call or run
    self._waiting: 'collections.deque' = collections.deque()
    self._wake: Optional[asyncio.Event] = None
    self._worker: Optional[asyncio.Task] = None

  async def answer(self, version: Version, data: List[bytes]
                   ) -> Dict[str, Any]:
    """The model's answers for one request's windows (as :func:`run`)."""
    loop = asyncio.get_running_loop()
    if self._worker is None:
      self._wake = asyncio.Event()
      self._worker = loop.create_task(self._work())
    future = loop.create_future()
    self._waiting.append((version, data, future, loop.time()))
    self._wake.set()
    return await future

  async def _work(self) -> None:
    loop = asyncio.get_running_loop()
    while True:
      await self._wake.wait()
      self._wake.clear()
      while self._waiting:
        version, _, _, since = self._waiting[0]
        # Company may come until the bound, or until the call is full.
        left = self.max_wait - (loop.time() - since)
        while left > 0 and self._windows_of(version) < self.max_windows:
          try:
            await asyncio.wait_for(self._wake.wait(), left)
          except asyncio.TimeoutError:
            break
          self._wake.clear()
          left = self.max_wait - (loop.time() - since)
        await self._run(self._take())

  def _windows_of(self, version: Version) -> int:
    return sum(len(data) for v, data, _, _ in self._waiting if v is version)

  def _take(self) -> list:
    """The next call's requests: the first waiting, then those after it of
    its version while the windows fit."""
    batch = [self._waiting.popleft()]
    windows = len(batch[0][1])
    while self._waiting and self._waiting[0][0] is batch[0][0] and (
        windows + len(self._waiting[0][1]) <= self.max_windows):
      batch.append(self._waiting.popleft())
      windows += len(batch[-1][1])
    return [item for item in batch if not item[2].done()]

  async def _run(self, batch: list) -> None:
    if not batch:
      return
    loop = asyncio.get_running_loop()
    version = batch[0][0]
    data = [window for _, windows, _, _ in batch for window in windows]
    try:
      answer = await loop.run_in_executor(None, self._call, version, data)
    except RequestError as e:
      if len(batch) == 1:
        _settle(batch[0][2], error=e)
      else:
        for item in batch:
          await self._run([item])
      return
    except Exception as e:  # pylint: disable=broad-except
      for item in batch:
        _settle(item[2], error=e)
      return
    at = 0
    for _, windows, future, _ in batch:
      count = len(windows)
      _settle(future, result={
          name: values[at:at + count] if len(values) == len(data) else values
          for name, values in answer.items()})
      at += count


def _settle(future: 'asyncio.Future', result: Any = None,
            error: Optional[BaseException] = None) -> None:
  """Answers a request's future, unless its client has gone."""
  if future.done():
    return
  if error is not None:
    future.set_exception(error)
  else:
    future.set_result(result)


def v1_answer(version: Version, answer: Dict[str, Any]) -> Dict[str, Any]:
  rows = []
  for scores, label in zip(answer['scores'], answer['label']):
    rows.append({'scores': [float(s) for s in scores],
                 'classes': version.classes,
                 'label': label.decode('utf-8')})
  return {'predictions': rows, 'model_version': str(version.number),
          PAIRING_FIELD: version.pairing_key}


class _BodyLimit:
  """ASGI middleware: a body over MAX_BODY_BYTES gets 413, whether its
  length was declared or it streams in chunks (`Transfer-Encoding:
  chunked` declares none). The body is gathered here as it arrives, at most
  MAX_BODY_BYTES of it; past that the rest is read and dropped, never
  kept (a client still sending would otherwise meet a closed connection
  instead of the answer), and the app never sees it. A body within the
  limit reaches the app as one message."""

  def __init__(self, app):
    self.app = app

  @staticmethod
  async def _drain(receive) -> bool:
    """Reads the rest of a body and drops it; False if the client left."""
    while True:
      message = await receive()
      if message['type'] == 'http.disconnect':
        return False
      if not message.get('more_body'):
        return True

  @staticmethod
  async def _refuse(send, size: str) -> None:
    text = (f'{{"error": "the request body is {size} bytes; at most '
            f'{MAX_BODY_BYTES} are taken (send fewer windows per '
            f'request)"}}').encode()
    await send({'type': 'http.response.start', 'status': 413,
                'headers': [(b'content-type', b'application/json'),
                            (b'content-length', str(len(text)).encode())]})
    await send({'type': 'http.response.body', 'body': text})

  async def __call__(self, scope, receive, send):
    if scope['type'] != 'http':
      await self.app(scope, receive, send)
      return
    length = dict(scope.get('headers') or []).get(b'content-length')
    if length is not None and length.isdigit() and \
        int(length) > MAX_BODY_BYTES:
      if await self._drain(receive):
        await self._refuse(send, str(int(length)))
      return
    body = bytearray()
    more = True
    while more:
      message = await receive()
      if message['type'] == 'http.disconnect':
        return
      body += message.get('body', b'')
      more = message.get('more_body', False)
      if len(body) > MAX_BODY_BYTES:
        if not more or await self._drain(receive):
          await self._refuse(send, f'over {MAX_BODY_BYTES}')
        return
    handed = False

    async def replay():
      nonlocal handed
      if handed:
        return await receive()
      handed = True
      return {'type': 'http.request', 'body': bytes(body),
              'more_body': False}

    await self.app(scope, replay, send)


def _quiet(level: int) -> None:
  """Our level for our logger; uvicorn's access line, one per request, at
  debug only; KServe's own chatter (its timings, two lines per request)
  at warnings."""
  logging.getLogger().setLevel(max(level, logging.INFO))
  LOG.setLevel(level)
  logging.getLogger('uvicorn.access').setLevel(
      logging.INFO if level == logging.DEBUG else logging.WARNING)
  for name in ('kserve', 'kserve.trace', 'uvicorn.error'):
    logging.getLogger(name).setLevel(max(level, logging.WARNING))
  # FastAPI's notice about the response class KServe 0.15 uses, once per
  # route, says nothing to the one who serves.
  warnings.filterwarnings('ignore', message='ORJSONResponse is deprecated')


def serve(options: argparse.Namespace) -> None:
  sys.argv = sys.argv[:1]  # KServe reads its own flags on import
  from kserve import model_server  # pylint: disable=g-import-not-at-top
  from kserve.constants import constants  # pylint: disable=g-import-not-at-top
  from kserve import errors  # pylint: disable=g-import-not-at-top
  from kserve.protocol.rest import server as rest  # pylint: disable=g-import-not-at-top
  from fastapi.exceptions import RequestValidationError  # pylint: disable=g-import-not-at-top
  from fastapi.responses import JSONResponse  # pylint: disable=g-import-not-at-top

  level = getattr(logging, options.log_level.upper())
  async def refused(_, exc):
    return JSONResponse(status_code=400, content={'error': str(exc)})

  async def unpaired(_, exc):
    return JSONResponse(status_code=409, content={'error': str(exc)})

  async def invalid_shape(_, exc):
    # FastAPI's own answer echoes the whole input (megabytes, for a body
    # near the limit): where and what, shortened, instead.
    found = exc.errors()
    said = '; '.join(
        f"{'.'.join(str(part) for part in error.get('loc', ()))[:80]}: "
        f"{str(error.get('msg', ''))[:120]}" for error in found[:3])
    return JSONResponse(status_code=422, content={
        'error': f'the request is not of the protocol\'s shape ({said}'
                 f'{"; ..." if len(found) > 3 else ""})'})

  def one_line(status: int):
    """A handler for a request the client got wrong, or a server not yet
    ready: one log line (no traceback, the client's text shortened) where
    KServe logs each with its traceback."""

    async def handler(request, exc):
      said = _first_line(exc)[:200]
      LOG.warning('%d %s %s: %s', status, request.method,
                  request.url.path[:100], said)
      return JSONResponse(status_code=status, content={'error': said})

    return handler

  class RESTServer(rest.RESTServer):
    """KServe's REST server on our address, with our error answers and
    body limit."""

    def __init__(self, *args, **kwargs):
      super().__init__(*args, **kwargs)
      self.config.host = options.host

    def _add_exception_handlers(self, app):
      super()._add_exception_handlers(app)
      app.add_exception_handler(errors.InvalidInput, refused)
      app.add_exception_handler(PairingMismatch, unpaired)
      app.add_exception_handler(RequestValidationError, invalid_shape)
      for kind, status in ((errors.ModelNotFound, 404),
                           (errors.ModelNotReady, 503),
                           (errors.ServerNotReady, 503),
                           (errors.ServerNotLive, 503),
                           (errors.UnsupportedProtocol, 501),
                           (NotImplementedError, 501)):
        app.add_exception_handler(kind, one_line(status))

    def create_application(self):
      super().create_application()
      import kserve.model_server as ks  # pylint: disable=g-import-not-at-top
      ks.app.add_middleware(_BodyLimit)

  from components.cloud import kserve_model  # pylint: disable=g-import-not-at-top
  model = kserve_model.PhaseTwoModel(
      options.name, options.base, options.poll_seconds,
      Batcher(options.batch_windows, options.batch_wait_ms / 1000.0))
  model.load()
  server = model_server.ModelServer(
      http_port=options.port, enable_grpc=False, enable_docs_url=False,
      enable_latency_logging=False)
  _quiet(level)  # after KServe's ModelServer has set up its logging
  server._register_and_check_atleast_one_model_is_ready([model])  # pylint: disable=protected-access
  rest_server = RESTServer(
      constants.FASTAPI_APP_IMPORT_STRING, server.dataplane,
      server.model_repository_extension, options.port, grace_period=5)
  server.servers.append(rest_server.start())
  server.setup_event_loop()
  print(f'serve: {options.name} version {model.current.number} at '
        f'http://{options.host}:{options.port}/v1/models/{options.name}'
        f':predict', flush=True)
  try:
    asyncio.run(server._serve())  # pylint: disable=protected-access
  except KeyboardInterrupt:
    pass  # uvicorn raises it again once it has shut down gracefully


def main(argv: Optional[Sequence[str]] = None) -> None:
  options = parse_args(sys.argv[1:] if argv is None else argv)
  logging.basicConfig(format='%(asctime)s %(levelname)s %(name)s: '
                      '%(message)s')
  serve(options)


if __name__ == '__main__':
  # Run as the module `components.cloud.server`, not as `__main__`, so that
  # kserve_model's import of it finds these very classes (PairingMismatch,
  # whose handler answers 409, would otherwise be two classes).
  from components.cloud import server as _module  # pylint: disable=g-import-not-at-top
  _module.main()
