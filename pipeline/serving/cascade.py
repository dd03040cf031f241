"""The device side of the cascade: phase one on the device, phase two in the
cloud (`python -m pipeline predict --cascade URL`).

Phase one (the pushed TFLite model, run as `predict` runs it) decides each
window on the device at its version's threshold. A window it does not flag
is answered there: its negative class, `decided_by` the device. A flagged
window is sent to phase two, the model server `python -m pipeline serve`
runs (KServe, in TF Serving's REST shape; docs/cascade.md):

  POST URL/v1/models/NAME:predict
  {"instances": [{"audio_pcm": {"b64": "<one window, 16-bit PCM>"}}, ...],
   "pairing_key": "<the phase-one manifest's families.pairing_key>"}

and answered by what phase two names (a family, or its reject class),
`decided_by` the cloud.

The device's loop never waits on the network. Flagged windows go into a
bounded queue that a sender thread empties in batches. While the server
cannot be reached (refused, timed out, or answering 5xx or 429) the
sender retries with exponential backoff, and a flagged window with no
answer after `wait` seconds is answered on the device: `instrument,
family unknown`. When the server answers again the queue catches up and
each such window's family comes as a late answer. A full queue drops its
oldest window, which stays `family unknown` (counted).

Whatever phase two answers, phase one's answers stand. A server that
refuses the device (409: its phase two does not pair with this phase one;
400; 404: no such model) or answers what the device cannot read (not TF
Serving's shape, a label not among its classes, the wrong number of
answers, scores that are not probabilities, more than
:data:`MAX_ANSWER_BYTES`) is a fault: said once, with the server's reason,
and phase two is not asked again in the run; its windows stay `family
unknown`, so wrong labels are never given. A request has a deadline for its
whole answer, and the end of a run waits at most its drain time.
"""

import base64
import collections
import email.utils
import http.client
import itertools
import json
import logging
import math
import random
import socket
import threading
import time
import urllib.parse
from typing import (Callable, Dict, Iterable, Iterator, List, Optional,
                    Sequence, Tuple)

import numpy as np

from components.common import errors
from components.common import pairing

DEFAULT_BATCH = 16
# The server takes at most this many windows a request
# (`components.cloud.server.MAX_INSTANCES`).
MAX_BATCH = 32
DEFAULT_WAIT_SECONDS = 2.0
DEFAULT_QUEUE = 256
DEFAULT_TIMEOUT_SECONDS = 10.0
FIRST_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 8.0
# How long the end of a run waits, at most, for answers still to come.
DEFAULT_DRAIN_SECONDS = 10.0
# The longest `Retry-After` honoured (the drain ends a run sooner anyway).
MAX_RETRY_AFTER_SECONDS = 60.0
# An answer for 32 windows is a few kilobytes; a bigger one is not read.
MAX_ANSWER_BYTES = 1 << 20
# How much of what a server said goes into a line.
REASON_CHARS = 200
# Probabilities may be off by rounding, by no more than this.
SCORE_SLACK = 1e-4
# `predict`'s exit code when phase two refused the device or answered
# badly (its answers on phase one's windows are printed all the same).
FAULT_EXIT = 3
# How long closing waits for the sender once its request is cut off.
CLOSE_SECONDS = 2.0
UNKNOWN_FAMILY = 'unknown'
DEVICE = 'device'
CLOUD = 'cloud'
LOG = logging.getLogger(__name__)


class CascadeError(errors.PipelineError, ValueError):
  """The cascade cannot run (a URL or a version that cannot pair), or
  phase two refused this device or answered what it cannot read; the
  message names which and why."""


class Unreachable(Exception):
  """The server gave no answer (refused, timed out, 5xx or 429): retried.

  Attributes:
    retry_after: seconds the server asked the client to wait
      (`Retry-After`), or None.
  """

  def __init__(self, reason: str, retry_after: Optional[float] = None):
    super().__init__(reason)
    self.retry_after = retry_after


def predict_url(url: str, model_name: str) -> str:
  """The V1 predict URL of `--cascade URL`: a server's address
  (`http://host:8080`), to which `/v1/models/NAME:predict` is added, or a
  whole predict URL, taken as it is.

  Raises:
    CascadeError: for a URL that is not http or https, or has no host.
  """
  parsed = urllib.parse.urlsplit(url)
  if (parsed.scheme not in ('http', 'https') or not parsed.netloc or
      not parsed.hostname):
    raise CascadeError(f'--cascade {shown_url(url)}: expected the model '
                       'server\'s http:// or https:// address, e.g. '
                       'http://127.0.0.1:8080')
  try:
    parsed.port  # pylint: disable=pointless-statement
  except ValueError:
    raise CascadeError(f'--cascade {shown_url(url)}: the port is not a '
                       'number from 0 to 65535') from None
  if parsed.path.endswith(':predict'):
    return url
  return f'{url.rstrip("/")}/v1/models/{model_name}:predict'


def shown_url(url: str) -> str:
  """`url` as printed: a password in it replaced by `***` (it is sent as
  HTTP Basic credentials, never shown)."""
  parsed = urllib.parse.urlsplit(url)
  if parsed.password is None:
    return url
  host = parsed.netloc.rsplit('@', 1)[1]
  return urllib.parse.urlunsplit(parsed._replace(
      netloc=f'{parsed.username}:***@{host}'))


def _retry_after(value: Optional[str]) -> Optional[float]:
  """`Retry-After`'s seconds (a number, or an HTTP date), or None."""
  if not value:
    return None
  try:
    seconds = float(value)
  except ValueError:
    try:
      when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
      return None
    if when is None:
      return None
    seconds = when.timestamp() - time.time()
  return max(0.0, seconds) if math.isfinite(seconds) else None


def _reason(status: int, text: bytes) -> str:
  """The server's reason for an error status: KServe answers
  `{"error": "..."}`; shortened to a line."""
  said = text.decode('utf-8', 'replace')
  try:
    said = str(json.loads(said).get('error', said))
  except (ValueError, AttributeError):
    pass
  said = ' '.join(said.split())
  if len(said) > REASON_CHARS:
    said = said[:REASON_CHARS] + '...'
  return f'{status} {said}' if said else str(status)


class Endpoint:
  """Phase two's predict URL and what this device sends it.

  A request has `timeout` seconds for its whole answer, not for each read
  of it (a server that trickles its answer is cut off), and an answer of
  more than :data:`MAX_ANSWER_BYTES` is not read. User and password in the
  URL are sent as HTTP Basic credentials.

  Args:
    url: the V1 predict URL (:func:`predict_url`).
    input_name: the request's input (`pairing.request_input`).
    pairing_key: this phase one's key; the server refuses another.
    timeout: seconds one request may take, answer included.
  """

  def __init__(self, url: str, input_name: str, pairing_key: str,
               timeout: float = DEFAULT_TIMEOUT_SECONDS):
    self.url, self.input_name = url, input_name
    self.pairing_key, self.timeout = pairing_key, timeout
    self.shown = shown_url(url)
    self._lock = threading.Lock()
    self._live: Optional[http.client.HTTPConnection] = None

  def send(self, payloads: Sequence[bytes]) -> List[dict]:
    """Phase two's answers for `payloads`, in order: each `label`,
    `scores`, `classes` and `model_version`.

    Raises:
      Unreachable: when the server gives no answer in time; worth
        retrying.
      CascadeError: when it refuses the request or answers what this
        device cannot read.
    """
    body = json.dumps({
        'instances': [{self.input_name: {
            'b64': base64.b64encode(data).decode('ascii')}}
                      for data in payloads],
        pairing.FIELD: self.pairing_key}).encode('utf-8')
    status, headers, text = self._post(body)
    if status >= 500 or status in (408, 429):
      raise Unreachable(_reason(status, text),
                        _retry_after(headers.get('Retry-After')))
    if status >= 300:
      raise CascadeError(f'{self.shown} refused the request '
                         f'({_reason(status, text)})')
    return self._answers(text, len(payloads))

  def cancel(self) -> None:
    """Cuts off the request in flight, if any (the end of a run)."""
    with self._lock:
      live = self._live
    if live is not None and live.sock is not None:
      try:
        live.sock.shutdown(socket.SHUT_RDWR)
      except OSError:
        pass

  def _post(self, body: bytes) -> Tuple[int, Dict[str, str], bytes]:
    """(status, headers, at most MAX_ANSWER_BYTES + 1 bytes of the body)
    of one POST, within `timeout` seconds all told."""
    parsed = urllib.parse.urlsplit(self.url)
    kind = (http.client.HTTPSConnection if parsed.scheme == 'https'
            else http.client.HTTPConnection)
    connection = kind(parsed.hostname, parsed.port, timeout=self.timeout)
    headers = {'Content-Type': 'application/json'}
    if parsed.username is not None:
      pair = (f'{urllib.parse.unquote(parsed.username)}:'
              f'{urllib.parse.unquote(parsed.password or "")}')
      headers['Authorization'] = 'Basic ' + base64.b64encode(
          pair.encode('utf-8')).decode('ascii')
    path = urllib.parse.urlunsplit(('', '', parsed.path or '/',
                                    parsed.query, ''))
    with self._lock:
      self._live = connection
    expired = threading.Event()

    def expire():
      expired.set()
      self.cancel()

    timer = threading.Timer(self.timeout, expire)
    timer.daemon = True
    timer.start()
    try:
      connection.request('POST', path, body=body, headers=headers)
      response = connection.getresponse()
      status, found = response.status, dict(response.getheaders())
      length = found.get('Content-Length', '')
      text = (b'' if status < 300 and length.isdigit() and
              int(length) > MAX_ANSWER_BYTES
              else response.read(MAX_ANSWER_BYTES + 1))
    except (OSError, http.client.HTTPException, ValueError) as e:
      if expired.is_set():
        raise Unreachable(f'no whole answer within {self.timeout:g} s'
                          ) from None
      raise Unreachable(str(getattr(e, 'strerror', None) or e) or
                        type(e).__name__) from None
    finally:
      timer.cancel()
      with self._lock:
        self._live = None
      connection.close()
    if expired.is_set():
      raise Unreachable(f'no whole answer within {self.timeout:g} s')
    length = found.get('Content-Length', '')
    if status < 300 and (len(text) > MAX_ANSWER_BYTES or (
        length.isdigit() and int(length) > MAX_ANSWER_BYTES)):
      raise CascadeError(f'{self.shown} answered more than the '
                         f'{MAX_ANSWER_BYTES} bytes an answer may have')
    if length.isdigit() and len(text) < min(int(length), MAX_ANSWER_BYTES):
      raise Unreachable(f'the answer was cut short ({len(text)} of '
                        f'{length} bytes)')
    return status, found, text

  def _answers(self, text: bytes, count: int) -> List[dict]:
    try:
      answer = json.loads(text)
      rows = answer['predictions']
      version = str(answer.get('model_version', ''))
      said = answer.get(pairing.FIELD)
      found = [{'label': str(row['label']),
                'scores': [float(score) for score in row['scores']],
                'classes': [str(name) for name in row['classes']],
                'model_version': version} for row in rows]
    except (ValueError, KeyError, TypeError, RecursionError) as e:
      raise CascadeError(f'{self.shown} answered what is not TF Serving\'s '
                         f'predict answer ({type(e).__name__}: '
                         f'{str(e)[:REASON_CHARS]}): is it phase two\'s '
                         'model server?') from None
    if len(found) != count:
      raise CascadeError(f'{self.shown} answered {len(found)} predictions '
                         f'for {count} windows')
    for row in found:
      if row['label'] not in row['classes'] or len(row['scores']) != len(
          row['classes']):
        raise CascadeError(f"{self.shown} answered label "
                           f"{row['label'][:REASON_CHARS]!r} with "
                           f"{len(row['scores'])} scores for "
                           f"{len(row['classes'])} classes: not one of its "
                           'predictions')
      if not all(math.isfinite(s) and -SCORE_SLACK <= s <= 1 + SCORE_SLACK
                 for s in row['scores']):
        raise CascadeError(f'{self.shown} answered scores that are not '
                           f"probabilities ({row['scores'][:4]}...)")
    if said is not None and said != self.pairing_key:
      raise CascadeError(
          f'{self.shown} serves a phase two of pairing key '
          f'{str(said)[:REASON_CHARS]}; this phase one has key '
          f'{self.pairing_key}: serve the phase two trained beside it, or '
          'update the device\'s model')
    return found


class Sender:
  """Sends queued windows to phase two in batches from a thread of its
  own, retrying with backoff while the server gives no answer.

  While the server cannot be reached, the sender waits before each retry:
  `first_backoff` seconds, doubled each failure up to `max_backoff`, each
  wait drawn between half and all of that (jitter, so that many devices do
  not retry in step), and never less than the server's `Retry-After`. New
  windows do not wake it early. When the server refuses the device or
  answers what it cannot read, the sender stops for good (:attr:`fault`
  says why, once): the windows it holds and every later one stay
  `family unknown`, and no wrong label is given.

  Args:
    send: sends a batch of payloads, returns their answers in order
      (:meth:`Endpoint.send`).
    batch: at most this many windows a request.
    queue_size: at most this many windows wait; when full, :meth:`put`
      drops the oldest, unless `block` holds it until there is room while
      the server answers.
    first_backoff: seconds before the first retry; each failure doubles
      them up to `max_backoff`.
    where: what is sent to, for the warning when it cannot be reached.
    cancel: cuts off the request in flight (:meth:`Endpoint.cancel`), for
      :meth:`close`.
  """

  def __init__(self, send: Callable[[List[bytes]], List[dict]],
               batch: int = DEFAULT_BATCH, queue_size: int = DEFAULT_QUEUE,
               first_backoff: float = FIRST_BACKOFF_SECONDS,
               max_backoff: float = MAX_BACKOFF_SECONDS,
               where: str = 'phase two',
               cancel: Optional[Callable[[], None]] = None):
    self._send, self._batch, self._size = send, batch, queue_size
    self._where, self._cancel = where, cancel
    self._first, self._max = first_backoff, max_backoff
    self._queue: 'collections.OrderedDict[int, bytes]' = (
        collections.OrderedDict())
    self._answers: Dict[int, dict] = {}
    self._cond = threading.Condition()
    self._closed = False
    self._jitter = random.Random()
    self.fault: Optional[str] = None  # why phase two is not asked again
    self.requests = 0
    self.failures = 0
    self.dropped = 0
    self.problem: Optional[str] = None  # why the server is unreachable now
    self._thread = threading.Thread(target=self._run, name='cascade-sender',
                                    daemon=True)
    self._thread.start()

  def put(self, key: int, payload: bytes, block: bool = False
          ) -> Optional[int]:
    """Queues one window; returns the key of the window dropped to make
    room, if any. With `block`, waits for room while the server answers
    (files, which have no live source to keep up with). After a fault
    nothing is queued: the key itself is returned, as dropped."""
    with self._cond:
      if self.fault is not None:
        return key
      while (block and len(self._queue) >= self._size and
             self.problem is None and self.fault is None):
        self._cond.wait(0.1)
      dropped = None
      if len(self._queue) >= self._size:
        dropped, _ = self._queue.popitem(last=False)
        self.dropped += 1
      self._queue[key] = payload
      self._cond.notify_all()
      return dropped

  def take_answers(self) -> Dict[int, dict]:
    """The answers that came since the last call, by key."""
    with self._cond:
      found, self._answers = self._answers, {}
      return found

  def drain(self, seconds: float) -> None:
    """Waits until the queue is empty, the sender has a fault, or
    `seconds` have passed."""
    deadline = time.monotonic() + seconds
    with self._cond:
      while self._queue and self.fault is None:
        left = deadline - time.monotonic()
        if left <= 0:
          return
        self._cond.wait(min(left, 0.1))

  def close(self) -> None:
    """Stops the thread, cutting off a request in flight; what is still
    queued stays unanswered."""
    with self._cond:
      self._closed = True
      self._cond.notify_all()
    if self._cancel is not None:
      self._cancel()
    self._thread.join(timeout=CLOSE_SECONDS)

  def _run(self) -> None:
    backoff = self._first
    while True:
      with self._cond:
        while not self._queue and not self._closed:
          self._cond.wait()
        if self._closed:
          return
        batch = list(itertools.islice(self._queue.items(), self._batch))
      try:
        answers = self._send([payload for _, payload in batch])
      except Unreachable as e:
        wait = max(backoff * self._jitter.uniform(0.5, 1.0),
                   min(e.retry_after or 0.0, MAX_RETRY_AFTER_SECONDS))
        with self._cond:
          self.failures += 1
          if self.problem is None and not self._closed:
            LOG.warning('%s cannot be reached (%s); flagged windows wait in '
                        'the queue and are sent again', self._where, e)
          self.problem = str(e)
          self._cond.notify_all()
          # Only the end of the run cuts the wait short.
          until = time.monotonic() + wait
          while not self._closed and time.monotonic() < until:
            self._cond.wait(until - time.monotonic())
        backoff = min(2 * backoff, self._max)
        continue
      except CascadeError as e:
        self._stop(str(e))
        return
      except Exception as e:  # pylint: disable=broad-except
        LOG.exception('the cascade\'s sender failed')
        self._stop(f'the cascade\'s sender failed: {e!r}')
        return
      backoff = self._first
      with self._cond:
        self.requests += 1
        self.problem = None
        for (key, _), answer in zip(batch, answers):
          # A window dropped while its request was out keeps no answer.
          if self._queue.pop(key, None) is not None:
            self._answers[key] = answer
        self._cond.notify_all()

  def _stop(self, fault: str) -> None:
    with self._cond:
      if self._closed:
        return
      self.fault = fault
      self._closed = True
      self._cond.notify_all()
    LOG.error('%s; phase two is not asked again in this run, and its '
              'flagged windows stay "family unknown"', fault)


def cloud_answer(window: dict, answer: dict, reject: str) -> dict:
  """A flagged window answered by phase two."""
  best = answer['classes'].index(answer['label'])
  return dict(window, label=answer['label'],
              family=None if answer['label'] == reject else answer['label'],
              probability=round(answer['scores'][best], 6),
              decided_by=CLOUD,
              cloud={'scores': dict(zip(answer['classes'],
                                        (round(s, 6) for s in
                                         answer['scores']))),
                     'model_version': answer['model_version']})


def merge_segment(windows: Sequence[dict], reject: str, positive: str
                  ) -> dict:
  """One segment's answer from its windows' (consecutive flagged windows):
  the class of the highest mean phase-two score over the windows the cloud
  answered; `positive, family unknown` when it answered none."""
  answered = [w['cloud'] for w in windows if w.get('cloud')]
  segment = {'start': windows[0]['start'], 'end': windows[-1]['end'],
             'peak': max(w['phase_one']['score'] for w in windows),
             'windows': len(windows)}
  if not answered:
    return dict(segment, label=positive, family=UNKNOWN_FAMILY,
                probability=round(segment['peak'], 6), decided_by=DEVICE)
  names = list(answered[0]['scores'])
  mean = np.mean([[cloud['scores'][n] for n in names] for cloud in answered],
                 axis=0)
  best = int(np.argmax(mean))
  return dict(segment, label=names[best],
              family=None if names[best] == reject else names[best],
              probability=round(float(mean[best]), 6), decided_by=CLOUD,
              cloud={'scores': dict(zip(names, (round(float(m), 6)
                                                for m in mean))),
                     'model_version': answered[-1]['model_version'],
                     'windows': len(answered)})


class Cascade:
  """Routes phase one's windows: answers them on the device, or sends them
  to phase two and merges its answers back, in order. Not thread-safe:
  :func:`route` calls it from two threads under one lock.

  Args:
    labels: phase one's classes (negative first, positive last).
    threshold: phase one's decision threshold on the positive score.
    sender: the :class:`Sender` flagged windows go through.
    reject: phase two's reject class (phase one's negative class).
    wait: seconds a flagged window waits for its answer before it is
      answered `family unknown` (None: until :meth:`finish`).
    block: hold the caller while the queue is full and the server answers
      (for files; a live stream must never wait).
    clock: monotonic seconds (tests pass their own).
  """

  def __init__(self, labels: Sequence[str], threshold: float, sender: Sender,
               reject: str, wait: Optional[float] = DEFAULT_WAIT_SECONDS,
               block: bool = False,
               clock: Callable[[], float] = time.monotonic):
    self.negative, self.positive = labels[0], labels[-1]
    self.threshold, self.sender, self.reject = threshold, sender, reject
    self.wait, self.block, self.clock = wait, block, clock
    self._keys = itertools.count()
    self._held: 'collections.deque[dict]' = collections.deque()
    self._answers: Dict[int, dict] = {}
    self._unknown: Dict[int, dict] = {}  # answered unknown, still queued
    self._dropped: set = set()
    self.counts = collections.Counter()
    self.drain_seconds: Optional[float] = None

  def feed(self, window: dict, payload: bytes) -> List[dict]:
    """Takes one window phase one decided (see `predict.PushedModel.
    window_prediction`) with the request bytes phase two would take;
    returns the window answers now ready, in order, and any late ones."""
    score = window['scores'][self.positive]
    record = {key: window[key] for key in ('start', 'end') if key in window}
    record['phase_one'] = {'label': window['label'], 'score': score,
                           'threshold': self.threshold}
    self.counts['windows'] += 1
    if score >= self.threshold:
      self.counts['flagged'] += 1
      key = next(self._keys)
      record['_key'] = key
      record['_due'] = (None if self.wait is None
                        else self.clock() + self.wait)
      dropped = self.sender.put(key, payload, block=self.block)
      if dropped is not None:
        # Answered `family unknown` already, or when its turn comes; either
        # way no answer will come for it.
        if self._unknown.pop(dropped, None) is None:
          self._dropped.add(dropped)
    else:
      record.update(label=self.negative, family=None,
                    probability=round(1.0 - score, 6), decided_by=DEVICE)
    self._held.append(record)
    return self._ready(final=False)

  def poll(self) -> List[dict]:
    """The answers ready now (as :meth:`feed` returns them), for a loop
    that waits on its source between windows."""
    return self._ready(final=False)

  def finish(self, drain_seconds: float = DEFAULT_DRAIN_SECONDS
             ) -> List[dict]:
    """Waits at most `drain_seconds` for the queue, stops the sender
    (cutting off a request in flight) and returns every answer still to
    give: the held windows, then late answers."""
    self.sender.drain(drain_seconds)
    self.drain_seconds = drain_seconds
    self.sender.close()
    return self._ready(final=True)

  def summary(self) -> dict:
    """Windows, those sent to the cloud (and their share), answered by it,
    answered `family unknown` and late, and windows dropped unsent."""
    counts = self.counts
    return {'windows': counts['windows'], 'sent': counts['flagged'],
            'cloud_share': round(counts['flagged'] / counts['windows'], 4)
                           if counts['windows'] else 0.0,
            'answered': counts['answered'] + counts['late'],
            'unknown': counts['unknown'] - counts['late'],
            'late': counts['late'], 'dropped': self.sender.dropped,
            'requests': self.sender.requests,
            'failed_requests': self.sender.failures,
            'unreachable': self.sender.problem,
            'fault': self.sender.fault,
            'cut_off': counts['cut_off'],
            'drain_seconds': self.drain_seconds}

  def _ready(self, final: bool) -> List[dict]:
    # The fault first: every answer that came before it is then taken.
    fault = self.sender.fault
    out = []
    for key, answer in self.sender.take_answers().items():
      earlier = self._unknown.pop(key, None)
      if earlier is None:
        self._answers[key] = answer
      else:
        self.counts['late'] += 1
        late = cloud_answer(earlier, answer, self.reject)
        out.append(dict(late, late=True))
    now = self.clock()
    done = []
    while self._held:
      record = self._held[0]
      key = record.get('_key')
      if key is None:
        pass
      elif key in self._answers:
        record = cloud_answer(record, self._answers.pop(key), self.reject)
        self.counts['answered'] += 1
      elif final or key in self._dropped or fault is not None or (
          record['_due'] is not None and now >= record['_due']):
        record = dict(record, label=self.positive, family=UNKNOWN_FAMILY,
                      probability=round(record['phase_one']['score'], 6),
                      decided_by=DEVICE)
        self.counts['unknown'] += 1
        if key in self._dropped:
          self._dropped.discard(key)
        elif final and fault is None:
          self.counts['cut_off'] += 1
        elif not final and fault is None:
          self._unknown[key] = record
      else:
        break
      self._held.popleft()
      done.append({k: v for k, v in record.items() if not k.startswith('_')})
    return done + out


def describe(record: dict) -> str:
  """One window's (or segment's) answer as a line's words: `strings
  (cloud v1, 0.812)`, `not_instrument (device, 0.968)` or `instrument,
  family unknown (device, 0.731)`."""
  by = record['decided_by']
  if by == CLOUD and record.get('cloud', {}).get('model_version'):
    by = f"{by} v{record['cloud']['model_version']}"
  name = record['label']
  if record.get('family') == UNKNOWN_FAMILY:
    name = f'{name}, family unknown'
  probability = record.get('probability')
  return (f'{name} ({by}, {probability:.3f})' if probability is not None
          else f'{name} ({by})')


def summary_line(summary: dict) -> str:
  """The cascade's one-line summary: the cloud share and what came of it."""
  line = (f"cascade: {summary['sent']} of {summary['windows']} windows sent "
          f"to the cloud (share {summary['cloud_share']:.3f}): "
          f"{summary['answered']} answered by phase two "
          f"({summary['late']} late), {summary['unknown']} family unknown")
  if summary['dropped']:
    line += f", {summary['dropped']} dropped from a full queue"
  if summary.get('cut_off'):
    line += (f", {summary['cut_off']} with no answer within the "
             f"{summary['drain_seconds']:g} s drain")
  if summary.get('fault'):
    line += f"; phase two failed: {summary['fault']}"
  elif summary.get('unreachable'):
    line += f"; phase two could not be reached ({summary['unreachable']})"
  return line


def flagged(record: dict) -> bool:
  """Whether phase one flagged a window's record (sent it to the cloud)."""
  return record['phase_one']['score'] >= record['phase_one']['threshold']


def runs(items: Iterable[dict], is_flagged: Callable[[dict], bool]
         ) -> Iterator[List[dict]]:
  """The runs of consecutive flagged items, in order: a recording's
  segments."""
  run: List[dict] = []
  for item in items:
    if is_flagged(item):
      run.append(item)
    elif run:
      yield run
      run = []
  if run:
    yield run


def segments_of(records: Iterable[dict], reject: str, positive: str
                ) -> List[dict]:
  """The segments of a recording's answered windows, in order."""
  return [merge_segment(run, reject, positive)
          for run in runs(records, flagged)]


def route(router: Cascade, windows: Iterator[Tuple[dict, bytes]],
          emit: Callable[[List[dict]], None],
          tick_seconds: float = 0.05,
          drain_seconds: float = DEFAULT_DRAIN_SECONDS) -> dict:
  """Runs a stream through the cascade: feeds each (window, request) as
  its source yields it and emits answers as soon as they are ready, from a
  second thread while the source waits (a live microphone gives a window a
  hop), so a cloud answer or a `family unknown` is never held back until
  the next window; then finishes and returns the summary.

  Args:
    router: the cascade.
    windows: phase one's windows with phase two's request bytes.
    emit: called with answers in order, never from two threads at once.
    tick_seconds: how often the second thread looks for answers.
    drain_seconds: see :meth:`Cascade.finish`.
  """
  lock, stop = threading.Lock(), threading.Event()
  failed: List[BaseException] = []

  def pump():
    while not stop.wait(tick_seconds):
      with lock:
        try:
          emit(router.poll())
        except BaseException as e:  # pylint: disable=broad-except
          # Raised again in the caller's thread (a refusal, a closed pipe).
          failed.append(e)
          return

  thread = threading.Thread(target=pump, name='cascade-answers', daemon=True)
  thread.start()
  try:
    for window, request in windows:
      with lock:
        if failed:
          raise failed[0]
        emit(router.feed(window, request))
  finally:
    stop.set()
    thread.join()
  if failed:
    raise failed[0]
  emit(router.finish(drain_seconds))
  return router.summary()
