"""Run a pushed TFLite model on image files or recordings, as an app would.

`python -m pipeline predict [--model MODEL_DIR] FILE...` needs only the
pushed model folder (a version folder, or a push destination whose `LATEST`
names one; local, `gs://` or `s3://`), opened and verified by
:func:`components.ondevice.model_folder.open_version` and run with LiteRT's
interpreter: neither TensorFlow nor TFX is imported. Images are read
through the same function as `ingest`
(:func:`pipeline.data.decode.read_sources`, with the same limits), then
decoded and resized as in training (:mod:`components.ondevice.pixels`).
Recordings are read a block at a time, as :func:`stream` reads them, so
memory is bounded whatever their length and rate; a recording over
`--max-clip-seconds`, or with NaN or infinite samples, is refused by name.

A recording is drawn with the audio front end the manifest records (the
one its training spans were drawn with; the default front end for models
trained on images) and cut into its windows: each window is classified,
with its start and end; a window is positive when its positive-class score
is at least the threshold (the version's own, chosen by its pusher for a
recall target and recorded in its manifest; 0.5 for versions pushed before
that, or `--threshold`); consecutive positive windows merge into segments;
the recording is answered by the version's rule over its windows
(`threshold.recording_rule`: the mean of their scores; its most positive
window for versions that name none). :func:`stream` does the same over a WAV file or
raw 16-bit PCM as it arrives, in bounded memory: the loop a device runs.
"""

import dataclasses
import errno
import io
import math
import os
import stat
from typing import BinaryIO, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from components.common import errors
from components.common import pairing
from components.common import storage
from components.ondevice import manifest as manifest_lib
from components.ondevice import model_folder
from components.ondevice import pixels as pixels_lib
from pipeline.data import decode
from components import frontend
from components.frontend import melscale
from components.frontend import windowing
from pipeline.data import spectrogram
from pipeline.serving import cascade

ModelFolderError = model_folder.ModelFolderError


class StreamError(errors.PipelineError, ValueError):
  """Raised when a source cannot be read as audio; names the source."""

# Interleaved channels a raw PCM stream may declare (`--input-channels`);
# WAV files may hold up to 65535, which blocks bound
# (:func:`spectrogram.block_frames`).
MAX_INPUT_CHANNELS = 64
# How much of a pipe is kept for its header to be read (a WAV's header is
# 44 bytes from arecord, a few kilobytes with metadata).
PIPE_HEAD_BYTES = 1 << 16
# Where a pipe's end is taken to be: it is not known.
PIPE_END = 1 << 62


@dataclasses.dataclass
class Prediction:
  """The outcome for one file.

  Attributes:
    path: the file.
    label: the predicted class name (None on error).
    probability: its probability.
    scores: every class's probability, by class name (for a recording: by
      the version's recording rule, see :meth:`PushedModel.recording_scores`).
    error: why the file could not be classified, else None.
    windows: for a recording, every window: start and end (seconds), label,
      probability and scores.
    segments: for a recording, the runs of consecutive windows whose
      positive-class score reaches the threshold: start, end, peak score.
    model: the file that answered: the waveform model for a recording when
      the version has one, else the image model.
    threshold: the positive class's score from which a window counted as
      positive.
    family: with `--cascade`, the family phase two named (None when the
      answer is the negative class; `unknown` when the cloud gave none).
    decided_by: with `--cascade`, `device` or `cloud`.
    cascade: with `--cascade`, the file's windows, those sent to phase two,
      and the phase-two version that gave the file's answer.
  """
  path: str
  label: Optional[str] = None
  probability: float = 0.0
  scores: Optional[dict] = None
  error: Optional[str] = None
  windows: Optional[List[dict]] = None
  segments: Optional[List[dict]] = None
  model: Optional[str] = None
  threshold: Optional[float] = None
  family: Optional[str] = None
  decided_by: Optional[str] = None
  cascade: Optional[dict] = None


def segments(windows: Sequence[dict], positive: str,
             threshold: float) -> List[dict]:
  """Consecutive windows whose `positive` score is at least `threshold`,
  merged: [{start, end, peak}] in seconds."""
  return [{'start': run[0]['start'], 'end': run[-1]['end'],
           'peak': max(window['scores'][positive] for window in run)}
          for run in cascade.runs(
              windows, lambda window: window['scores'][positive] >= threshold)]


class PushedModel:
  """A pushed model folder, loaded and checked against its manifest.

  Args:
    path: a version folder or a push destination.
    limits: the limits every classified file is read within.
    threshold: the positive class's score from which a window counts as
      positive (the positive class is the last of labels.txt); None: the
      version's own (`threshold.value` in its manifest), else 0.5.
    keep_input: each window keeps what was classified (`input`: its
      samples, or its picture's bytes), to be sent on (`--cascade`).

  Raises:
    ModelFolderError: for a missing file or a checksum mismatch.
  """

  def __init__(self, path: str,
               limits: decode.FileLimits = decode.FileLimits(),
               threshold: Optional[float] = None, keep_input: bool = False):
    self.limits, self.keep_input = limits, keep_input
    opened = model_folder.open_version(path)
    self.folder, self.manifest = opened.folder, opened.manifest
    self.threshold = (threshold if threshold is not None else
                      self.manifest.threshold_value)
    self.labels = opened.labels
    self.image_size, self.channels = opened.image_size, opened.channels
    # The recorded front end (the one its training spans were drawn with),
    # or the default one at the model's size for models trained on images
    # or pushed before the front end was recorded.
    self.front_end = opened.front_end or frontend.FrontEnd(
        image_size=self.image_size)
    self.classifier, self.model_file = opened.image_model, opened.image_file
    # The waveform model, when the version has one, answers for recordings:
    # it holds the front end, as the device runs it.
    self.waveform = opened.waveform
    self.waveform_file = opened.waveform_file

  @property
  def positive(self) -> str:
    return self.labels[-1]

  @property
  def request_input(self) -> str:
    """What this version's phase two takes for a window."""
    return pairing.request_input(self.manifest.front_end)

  def request_bytes(self, window: dict) -> bytes:
    """Phase two's request for a window kept with `keep_input`: its
    samples as 16-bit PCM, or its picture's bytes; taken off the window.

    Raises:
      cascade.CascadeError: for a picture when phase two takes recordings.
    """
    kept = window.pop('input')
    if self.request_input == pairing.PCM_INPUT:
      if isinstance(kept, bytes):
        raise cascade.CascadeError(
            "an image; this version's phase two takes windows of audio, "
            'so --cascade classifies recordings')
      return melscale.pcm16_bytes(kept)
    if isinstance(kept, bytes):
      return kept
    return decode.png_bytes(windowing.render(kept, self.front_end))

  def decide(self, scores: np.ndarray) -> int:
    """The class of a window's scores: for two classes, the positive one
    when its score reaches the threshold; else the most probable."""
    if len(self.labels) == 2:
      return int(float(scores[-1]) >= self.threshold)
    return int(np.argmax(scores))

  @property
  def recording_rule(self) -> str:
    """How a recording's windows become its answer: the version's
    (`threshold.recording_rule`), `max` for versions that name none."""
    return self.manifest.recording_rule

  def recording_scores(self, windows: Sequence[dict]) -> dict:
    """A recording's scores from its windows', by :attr:`recording_rule`:
    each class's mean (`mean`), or its most positive window's (`max`)."""
    if self.recording_rule == manifest_lib.MEAN_RULE:
      return {name: round(float(np.mean([w['scores'][name]
                                          for w in windows])), 6)
              for name in self.labels}
    return max(windows, key=lambda w: w['scores'][self.positive])['scores']

  def pixels_of(self, data: bytes) -> np.ndarray:
    """Stored image bytes to model-sized float pixels, as in training.

    Raises:
      decode.UnreadableFile: when the bytes cannot be decoded.
    """
    try:
      return pixels_lib.model_pixels(data, self.image_size, self.channels)
    except ValueError as e:
      raise decode.UnreadableFile(str(e)) from e

  def window_prediction(self, start: float, end: float,
                        samples: np.ndarray = None,
                        data: Optional[bytes] = None) -> dict:
    """One window's scores, with its times: from its samples by the
    waveform model when there is one, else from its stored picture (`data`,
    or drawn from `samples`) by the image model."""
    if self.waveform is not None and samples is not None:
      scores = self.waveform.scores(np.asarray(samples, np.float32))
      answered = self.waveform_file
    else:
      if data is None:
        data = decode.png_bytes(windowing.render(samples, self.front_end))
      scores = self.classifier.scores(self.pixels_of(data))
      answered = self.model_file
    best = self.decide(scores)
    window = {'start': start, 'end': end, 'label': self.labels[best],
              'probability': round(float(scores[best]), 6),
              'scores': {name: round(float(score), 6)
                         for name, score in zip(self.labels, scores)},
              'model': answered}
    if self.keep_input:
      window['input'] = samples if samples is not None else data
    return window

  def predict(self, path: str) -> Prediction:
    """Classifies one file; errors are returned, not raised."""
    try:
      check_source(path)
      with storage.open_binary(path) as f:
        windows = list(self.windows(f, path))
    except UNREADABLE as e:
      return unreadable(path, e)
    scores = self.recording_scores(windows)
    best = self.decide(np.array([scores[name] for name in self.labels]))
    result = Prediction(path, self.labels[best],
                        scores[self.labels[best]], scores,
                        model=windows[0]['model'], threshold=self.threshold)
    if windows[0]['start'] is not None:
      result.windows = windows
      result.segments = segments(windows, self.positive, self.threshold)
    return result

  def windows(self, f: BinaryIO, path: str) -> Iterator[dict]:
    """Each window's prediction of an open file as it is decided (one,
    with no times, for an image)."""
    head = f.read(12)
    f.seek(0)
    if spectrogram.audio_kind(head):
      yield from stream(self, f, path, limits=self.limits)
      return
    sources = decode.read_sources(f, path, self.front_end, self.limits,
                                  allow_blank=True, max_windows=0,
                                  tensorflow_check=False)
    for source in sources:
      yield self.window_prediction(source.start, source.end,
                                   data=source.data)


# What reading one file may raise by design; :func:`unreadable` says it.
UNREADABLE = (OSError, decode.UnreadableFile, StreamError,
              spectrogram.AudioError)


def unreadable(path: str, error: Exception) -> Prediction:
  """A file that could not be classified, with why (one of
  :data:`UNREADABLE`)."""
  if isinstance(error, OSError):
    return Prediction(path, error=f'cannot read the file '
                      f'({error.strerror or error})')
  return Prediction(path, error=str(error).replace(f'{path}: ', ''))


def check_source(path: str) -> None:
  """Refuses a local path that is not a regular file (a directory, a FIFO,
  a device, a socket, a dangling link or a link loop) before it is opened,
  so nothing waits on a FIFO with no writer.

  Raises:
    StreamError: naming the path and what it is.
  """
  if storage.is_uri(path):
    return
  try:
    mode = os.stat(path).st_mode
  except OSError as e:
    if e.errno == errno.ELOOP:
      raise StreamError(f'{path}: a loop of symbolic links') from e
    if os.path.islink(path):
      raise StreamError(f'{path}: a link that leads nowhere '
                        f'({e.strerror or e})') from e
    raise StreamError(f'{path}: cannot read the file '
                      f'({e.strerror or e})') from e
  if stat.S_ISREG(mode):
    return
  kinds = ((stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a FIFO'),
           (stat.S_ISCHR, 'a character device'),
           (stat.S_ISBLK, 'a block device'), (stat.S_ISSOCK, 'a socket'))
  kind = next((name for test, name in kinds if test(mode)), 'not a file')
  raise StreamError(f'{path}: {kind}, not a recording or image file (for '
                    'raw PCM on standard input use - with --stream)')


def predict_files(model_dir: str, paths: Sequence[str],
                  limits: decode.FileLimits = decode.FileLimits(),
                  threshold: Optional[float] = None) -> List[Prediction]:
  """Classifies every file with the model in `model_dir`.

  Args:
    model_dir: a pushed version folder or a push destination.
    paths: the image files or recordings.
    limits: the limits every file is read within.
    threshold: see :class:`PushedModel`.

  Returns:
    One :class:`Prediction` per path, in order; unreadable files carry
    their reason in `error`.

  Raises:
    ModelFolderError: for an incomplete or corrupt model folder.
  """
  model = PushedModel(model_dir, limits, threshold)
  return [model.predict(path) for path in paths]


def _file_blocks(source: BinaryIO, name: str,
                 limits: Optional[decode.FileLimits] = None
                 ) -> Tuple[int, Iterator]:
  """(rate, iterator of [frames, channels] float blocks) of a recording
  file (see :func:`spectrogram.recording_blocks`), within `limits` and
  ingest's bound on decoded samples, or of any length without `limits`;
  a file that is no readable recording is a :class:`StreamError`."""
  try:
    rate, _, blocks = spectrogram.recording_blocks(
        source, name, limits.max_clip_seconds if limits else None,
        spectrogram.MAX_DECODED_SAMPLES if limits else None)
  except spectrogram.AudioError as e:
    raise StreamError(str(e)) from e
  return rate, blocks


class _Piped(io.RawIOBase):
  """A pipe read as a file, for a recording's header: reads pass through,
  the first :data:`PIPE_HEAD_BYTES` are kept so that a reader may seek back
  into them, a seek forward reads and drops, and the end is unknown (its
  offset is taken as very far)."""

  def __init__(self, source: BinaryIO):
    super().__init__()
    self._source, self._head, self._at = source, bytearray(), 0

  def readable(self) -> bool:
    return True

  def seekable(self) -> bool:
    return True

  def peek(self, size: int) -> bytes:
    """The first `size` bytes (fewer at the end), without moving."""
    at = self._at
    self.seek(0)
    data = self.read(size)
    self.seek(at)
    return data

  def read(self, size: int = -1) -> bytes:
    if size is None or size < 0:
      raise StreamError('standard input cannot be read whole; it is read a '
                        'block at a time')
    out = bytes(self._head[self._at:self._at + size])
    if len(out) < size:
      more = self._source.read(size - len(out))
      if len(self._head) == self._at + len(out) and (
          len(self._head) < PIPE_HEAD_BYTES):
        self._head += more[:PIPE_HEAD_BYTES - len(self._head)]
      out += more
    self._at += len(out)
    return out

  def tell(self) -> int:
    return self._at

  def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
    if whence == io.SEEK_END:
      self._at = PIPE_END
      return self._at
    target = offset + (self._at if whence == io.SEEK_CUR else 0)
    if target < self._at and target > len(self._head):
      raise StreamError(f'standard input: a recording\'s header over '
                        f'{PIPE_HEAD_BYTES} bytes cannot be read from a pipe')
    if target <= len(self._head):
      self._at = target
    while self._at < target:
      dropped = self.read(min(target - self._at, 1 << 16))
      if not dropped:
        break
    return self._at


def _stdin_kind(source: '_Piped') -> Optional[str]:
  """The container standard input holds ('WAV', 'FLAC', 'OGG', 'MP3'), or
  None for raw PCM. Only signatures raw samples cannot plausibly start
  with count: a bare MPEG frame sync (0xFFE0) is also a quiet sample."""
  head = source.peek(12)
  kind = spectrogram.audio_kind(head)
  if kind == 'MP3' and head[:3] != b'ID3':
    return None
  return kind


def _pcm_blocks(source: BinaryIO, rate: int, channels: int) -> Iterator:
  """[frames, channels] float blocks of raw 16-bit little-endian PCM."""
  size = 2 * channels * spectrogram.block_frames(rate, channels)
  header = spectrogram.WavHeader(rate, 0, channels, 16, 1, 0, False,
                                 2 * channels)
  carry = b''
  while True:
    data = source.read(size)
    if not data:
      return
    data = carry + data
    whole = len(data) - len(data) % header.block_align
    carry = data[whole:]
    if whole:
      yield spectrogram.pcm_to_float(data[:whole], header)


def check_raw_settings(rate: Optional[int], channels: int) -> None:
  """Refuses raw PCM settings no microphone produces (`rate` None: the
  front end's, checked with it).

  Raises:
    StreamError: naming `--input-rate` or `--input-channels`.
  """
  if rate is not None and not (
      spectrogram.MIN_SAMPLE_RATE <= rate <= spectrogram.MAX_SAMPLE_RATE):
    raise StreamError(f'--input-rate {rate}: expected '
                      f'{spectrogram.MIN_SAMPLE_RATE}..'
                      f'{spectrogram.MAX_SAMPLE_RATE} Hz')
  if not 1 <= channels <= MAX_INPUT_CHANNELS:
    raise StreamError(f'--input-channels {channels}: expected 1..'
                      f'{MAX_INPUT_CHANNELS}')


def stream(model: PushedModel, source: BinaryIO, name: str,
           raw_rate: Optional[int] = None, raw_channels: int = 1,
           limits: Optional[decode.FileLimits] = None) -> Iterator[dict]:
  """Classifies a recording window by window as it is read.

  Args:
    model: the pushed model.
    source: an open recording (WAV, FLAC, Ogg, MP3), or a pipe when
      `raw_rate` is given (e.g. standard input): raw 16-bit little-endian
      PCM, or a WAV stream read by its header (`arecord`'s default); a
      pipe holding FLAC, Ogg or MP3 is refused.
    name: the source's name, for messages.
    raw_rate: the raw PCM's sample rate (None: `source` is a file).
    raw_channels: the raw PCM's interleaved channels.
    limits: for a file, refuse one longer than `max_clip_seconds` or over
      ingest's bound on decoded samples, as ingest does (None: any length,
      as a live stream has; memory is bounded either way).

  Yields:
    Each window's prediction (see :meth:`PushedModel.window_prediction`)
    as soon as it is complete, then, once the stream ends, the windows its
    end completes. Memory holds one window and one block, whatever the
    length, rate and channels of the recording.

  Raises:
    StreamError: for a source that is not a readable recording (damaged
      midway, or with NaN or infinite samples: naming where), over
      `limits`, or raw settings out of range.
    decode.UnreadableFile: for a recording too short for one analysis
      frame.
  """
  kind = None
  if raw_rate is not None:
    source = _Piped(source)
    kind = _stdin_kind(source)
    if kind not in (None, 'WAV'):
      raise StreamError(
          f'{name} holds {kind}, not raw PCM: --stream - reads raw 16-bit '
          'PCM or a WAV stream; decode it first, e.g. ffmpeg -i IN -f s16le '
          '-ac 1 -ar 16000 -')
  if raw_rate is None or kind == 'WAV':
    rate, blocks = _file_blocks(source, name, limits)
  else:
    check_raw_settings(raw_rate, raw_channels)
    rate, blocks = raw_rate, _pcm_blocks(source, raw_rate, raw_channels)
  cutter = windowing.StreamWindows(model.front_end, rate)
  frames = 0

  def decided(windows):
    for start, end, samples in windows:
      yield model.window_prediction(start, end, samples)

  try:
    for block in blocks:
      frames += len(block)
      yield from decided(cutter.push(block))
  except spectrogram.AudioError as e:
    raise StreamError(str(e)) from e
  if not frames:
    raise StreamError(f'{name}: no samples (the input is empty)')
  try:
    decode.check_long_enough(frames, rate, model.front_end)
  except spectrogram.AudioError as e:
    raise decode.UnreadableFile(f'{name}: {e}') from e
  yield from decided(cutter.finish())


def open_cascade(model: PushedModel, url: str, model_name: str,
                 batch: int = cascade.DEFAULT_BATCH,
                 wait: Optional[float] = cascade.DEFAULT_WAIT_SECONDS,
                 queue_size: int = cascade.DEFAULT_QUEUE,
                 block: bool = False,
                 timeout: float = cascade.DEFAULT_TIMEOUT_SECONDS
                 ) -> cascade.Cascade:
  """The cascade of `model` (phase one, on this device) and the phase two
  served at `url` (see :mod:`pipeline.serving.cascade`).

  Args:
    model: the pushed phase one, opened with `keep_input`.
    url: the model server's address, or its whole V1 predict URL.
    model_name: the served model's name (`served_model_name`).
    batch, wait, queue_size, block, timeout: see :class:`cascade.Sender`,
      :class:`cascade.Cascade` and :class:`cascade.Endpoint`.

  Raises:
    cascade.CascadeError: for a bad URL, or a version that pairs with no
      phase two (trained on spans without families, or pushed before
      versions recorded their pair).
  """
  if not 1 <= batch <= cascade.MAX_BATCH:
    raise cascade.CascadeError(f'--cascade-batch {batch}: expected 1..'
                               f'{cascade.MAX_BATCH} windows (the server '
                               'takes at most that many a request)')
  if queue_size < 1:
    raise cascade.CascadeError(f'--cascade-queue {queue_size}: expected at '
                               'least 1 window')
  if wait is not None and not (math.isfinite(wait) and wait >= 0):
    raise cascade.CascadeError(f'--cascade-wait {wait:g}: expected seconds '
                               '(0 or more)')
  families = model.manifest.families
  key = model.manifest.pairing_key
  if not key:
    why = (families.reason or 'its spans gave no families'
           if families else 'it was pushed before versions named their pair')
    raise cascade.CascadeError(
        f'{model.folder}: version {model.manifest.version} pairs with no '
        f'phase two ({why}); --cascade needs a version trained on spans '
        'that give families')
  endpoint = cascade.Endpoint(cascade.predict_url(url, model_name),
                              model.request_input, key, timeout)
  sender = cascade.Sender(endpoint.send, batch, queue_size,
                          where=f'phase two at {endpoint.shown}',
                          cancel=endpoint.cancel)
  return cascade.Cascade(model.labels, model.threshold, sender,
                         reject=model.labels[0], wait=wait, block=block)


def cascade_files(model: PushedModel, paths: Sequence[str],
                  router: cascade.Cascade,
                  drain_seconds: float = cascade.DEFAULT_DRAIN_SECONDS
                  ) -> Tuple[List[Prediction], dict]:
  """Classifies every file through the cascade: phase one here, its
  flagged windows by phase two.

  Args:
    model: the pushed phase one, opened with `keep_input`.
    paths: image files or recordings.
    router: from :func:`open_cascade` (files: `wait` None, `block`).
    drain_seconds: how long to wait, at most, at the end for answers
      still to come.

  Returns:
    One :class:`Prediction` a path, in order (each window's and segment's
    `family` and `decided_by`; the file's answer is the negative class when
    the version's recording rule says so, else that of the segment holding
    its most positive window), and the cascade's summary
    (:meth:`cascade.Cascade.summary`; phase two's fault, if any, in its
    `fault`): every file keeps phase one's answer whatever phase two does.
  """
  fed: List[Tuple[Prediction, List[dict]]] = []
  answers: List[dict] = []
  for path in paths:
    windows: List[dict] = []
    try:
      check_source(path)
      with storage.open_binary(path) as f:
        for window in model.windows(f, path):
          request = model.request_bytes(window)
          windows.append(window)
          answers.extend(router.feed(window, request))
      result = Prediction(path, threshold=model.threshold)
    except cascade.CascadeError as e:
      result = Prediction(path, error=str(e))
    except UNREADABLE as e:
      result = unreadable(path, e)
    fed.append((result, windows))
  answers.extend(router.finish(drain_seconds))
  at = 0
  for result, windows in fed:
    records, at = answers[at:at + len(windows)], at + len(windows)
    if result.error is None:
      _merge_file(model, result, windows, records, router.reject)
  return [result for result, _ in fed], router.summary()


def _merge_file(model: PushedModel, result: Prediction,
                windows: List[dict], records: List[dict],
                reject: str) -> None:
  """Fills one file's answer from its windows' cascade records: by the
  version's recording rule a negative recording is the device's answer; a
  positive one takes the answer of the segment holding its most positive
  window."""
  best = max(range(len(windows)),
             key=lambda i: windows[i]['scores'][model.positive])
  result.scores, result.model = (model.recording_scores(windows),
                                 windows[best]['model'])
  answer = records[best]
  if windows[0]['start'] is not None:
    result.windows = records
    result.segments = cascade.segments_of(records, reject, model.positive)
    holding = [s for s in result.segments
               if s['start'] <= records[best]['start'] < s['end']]
    answer = holding[0] if holding else answer
  if result.scores[model.positive] < model.threshold:
    answer = {'label': model.labels[0], 'family': None,
              'probability': result.scores[model.labels[0]],
              'decided_by': cascade.DEVICE}
  result.label, result.family = answer['label'], answer['family']
  result.probability, result.decided_by = (answer.get('probability', 0.0),
                                           answer['decided_by'])
  result.cascade = {'windows': len(records),
                    'sent': sum(map(cascade.flagged, records)),
                    'model_version': answer.get('cloud', {}).get(
                        'model_version')}
