"""Run a pushed TFLite model on image files or recordings, as an app would.

`python -m pipeline predict [--model MODEL_DIR] FILE...` needs only the
pushed model folder (a version folder, or a push destination whose `LATEST`
names one; local, `gs://` or `s3://`): its `manifest.json`, `labels.txt`
and `model.tflite`, each checked against the manifest's SHA-256. Files are
read through the same function as `ingest`
(:func:`pipeline.data.decode.read_sources`, with the same limits), then
decoded and resized exactly as in training.

A recording is drawn with the audio front end the manifest records (the
one its training spans were drawn with; the default front end for models
trained on images) and cut into its windows: each window is classified,
with its start and end; consecutive windows whose positive-class score is
at least the threshold merge into segments; the recording is labelled by
its most positive window. :func:`stream` does the same over a WAV file or
raw 16-bit PCM as it arrives, in bounded memory: the loop a device runs.
"""

import dataclasses
from typing import BinaryIO, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from components.common import storage
from components.modules import features
from components.tflite_pusher import conversion
from components.tflite_pusher import push
from pipeline.data import decode
from pipeline.data import frontend
from pipeline.data import spectrogram
from components.common import errors


class ModelFolderError(errors.PipelineError, ValueError):
  """Raised when a pushed model folder is incomplete or corrupt."""


@dataclasses.dataclass
class Prediction:
  """The outcome for one file.

  Attributes:
    path: the file.
    label: the predicted class name (None on error).
    probability: its probability.
    scores: every class's probability, by class name (for a recording: its
      most positive window's).
    error: why the file could not be classified, else None.
    windows: for a recording, every window: start and end (seconds), label,
      probability and scores.
    segments: for a recording, the runs of consecutive windows whose
      positive-class score reaches the threshold: start, end, peak score.
    model: the file that answered: the waveform model for a recording when
      the version has one, else the image model.
  """
  path: str
  label: Optional[str] = None
  probability: float = 0.0
  scores: Optional[dict] = None
  error: Optional[str] = None
  windows: Optional[List[dict]] = None
  segments: Optional[List[dict]] = None
  model: Optional[str] = None


def segments(windows: Sequence[dict], positive: str,
             threshold: float) -> List[dict]:
  """Consecutive windows whose `positive` score is at least `threshold`,
  merged: [{start, end, peak}] in seconds."""
  merged: List[dict] = []
  inside = False
  for window in windows:
    score = window['scores'][positive]
    if score >= threshold:
      if inside:
        merged[-1]['end'] = window['end']
        merged[-1]['peak'] = max(merged[-1]['peak'], score)
      else:
        merged.append({'start': window['start'], 'end': window['end'],
                       'peak': score})
      inside = True
    else:
      inside = False
  return merged


class PushedModel:
  """A pushed model folder, loaded and checked against its manifest.

  Args:
    path: a version folder or a push destination.
    limits: the limits every classified file is read within.
    threshold: the positive class's score from which a window counts as
      positive (the positive class is the last of labels.txt).

  Raises:
    ModelFolderError: for a missing file or a checksum mismatch.
  """

  def __init__(self, path: str,
               limits: decode.FileLimits = decode.FileLimits(),
               threshold: float = 0.5):
    self.limits = limits
    self.threshold = threshold
    try:
      self.folder = push.resolve_model_dir(path)
      self.manifest = push.check_version(self.folder)
      model_path = storage.join(self.folder, self.manifest['model_file'])
      model = storage.read_bytes(model_path)
      labels = storage.read_text(storage.join(self.folder,
                                              self.manifest['labels_file']))
    except push.PushError as e:
      raise ModelFolderError(str(e)) from e
    except (OSError, ValueError, KeyError) as e:
      raise ModelFolderError(f'incomplete model folder {path}: {e}') from e
    self.labels = [line.strip() for line in labels.splitlines()
                   if line.strip()]
    self.image_size = int(self.manifest['input']['image_size'])
    self.channels = int(self.manifest['input']['channels'])
    self.front_end = model_front_end(self.manifest)
    self.classifier = conversion.TFLiteClassifier(model)
    self.model_file = self.manifest['model_file']
    # The waveform model, when the version has one, answers for recordings:
    # it holds the front end, as the device runs it.
    self.waveform = None
    entry = self.manifest.get('waveform') or {}
    if entry.get('file'):
      try:
        self.waveform = conversion.TFLiteClassifier(storage.read_bytes(
            storage.join(self.folder, entry['file'])))
      except (OSError, ValueError) as e:
        raise ModelFolderError(f'incomplete model folder {path}: {e}') from e
      self.waveform_file = entry['file']

  @property
  def positive(self) -> str:
    return self.labels[-1]

  def pixels_of(self, data: bytes) -> np.ndarray:
    """Stored image bytes to model-sized float pixels, as in training."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    image = features.decode_and_resize(tf.constant(data), self.image_size,
                                       self.channels)
    return image.numpy().astype(np.float32)

  def pixels(self, stream: BinaryIO, name: str) -> np.ndarray:
    """Reads an image (or a clip's first window) into model-sized float
    pixels.

    Raises:
      decode.UnreadableFile: naming why the file cannot be used.
    """
    source = decode.read_source(stream, name, self.front_end, self.limits,
                                allow_blank=True)
    return self.pixels_of(source.data)

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
        data = decode.png_bytes(frontend.render(samples, self.front_end))
      scores = self.classifier.scores(self.pixels_of(data))
      answered = self.model_file
    best = int(np.argmax(scores))
    return {'start': start, 'end': end, 'label': self.labels[best],
            'probability': round(float(scores[best]), 6),
            'scores': {name: round(float(score), 6)
                       for name, score in zip(self.labels, scores)},
            'model': answered}

  def predict(self, path: str) -> Prediction:
    """Classifies one file; errors are returned, not raised."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    try:
      with storage.open_binary(path) as f:
        windows = self._windows(f, path)
    except OSError as e:
      return Prediction(path, error=f'cannot read the file '
                        f'({e.strerror or e})')
    except decode.UnreadableFile as e:
      return Prediction(path, error=str(e))
    except tf.errors.InvalidArgumentError as e:
      return Prediction(path, error=f'not a readable image ({e.message})')
    best = max(windows, key=lambda w: w['scores'][self.positive])
    result = Prediction(path, best['label'], best['probability'],
                        best['scores'], model=best['model'])
    if windows[0]['start'] is not None:
      result.windows = windows
      result.segments = segments(windows, self.positive, self.threshold)
    return result

  def _windows(self, f: BinaryIO, path: str) -> List[dict]:
    """Every window's prediction of a file (one, with no times, for an
    image)."""
    head = f.read(12)
    f.seek(0)
    if self.waveform is not None and spectrogram.audio_kind(head):
      audio, rate, _ = decode.read_recording(f, path, self.front_end,
                                             self.limits.max_clip_seconds)
      return [self.window_prediction(start, end, samples)
              for start, end, samples in frontend.sample_windows(
                  audio, rate, self.front_end, max_windows=0)]
    sources = decode.read_sources(f, path, self.front_end, self.limits,
                                  allow_blank=True, max_windows=0)
    return [self.window_prediction(source.start, source.end,
                                   data=source.data) for source in sources]


def model_front_end(manifest: dict) -> frontend.FrontEnd:
  """The audio front end a pushed model's manifest records, or the default
  one at the model's image size (models trained on images, or pushed
  before the front end was recorded)."""
  image_size = int(manifest['input']['image_size'])
  record = manifest['input'].get('audio_front_end') or {}
  if not record.get('recorded'):
    return frontend.FrontEnd(image_size=image_size)
  try:
    return frontend.FrontEnd.from_record(record)
  except (KeyError, TypeError, ValueError) as e:
    raise ModelFolderError(f'the manifest\'s audio front end cannot be '
                           f'used: {e}') from e


def predict_files(model_dir: str, paths: Sequence[str],
                  limits: decode.FileLimits = decode.FileLimits(),
                  threshold: float = 0.5) -> List[Prediction]:
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


class StreamError(errors.PipelineError, ValueError):
  """Raised when a stream cannot be read as audio."""


_STREAM_BLOCK_SECONDS = 0.25


def _file_blocks(stream: BinaryIO, name: str) -> Tuple[int, Iterator]:
  """(rate, iterator of [frames, channels] float blocks) of a recording
  file, read a block at a time: WAV by its header, FLAC, Ogg and MP3 by
  libsndfile."""
  head = stream.read(12)
  stream.seek(0)
  kind = spectrogram.audio_kind(head)
  if kind is None:
    raise StreamError(f'{name}: not a recording (WAV, FLAC, Ogg or MP3)')
  if kind != 'WAV':
    import soundfile  # pylint: disable=g-import-not-at-top
    try:
      opened = soundfile.SoundFile(stream)
    except Exception as e:  # pylint: disable=broad-except
      raise StreamError(f'{name}: not a readable {kind} file ({e})') from e
    per_block = max(1, int(opened.samplerate * _STREAM_BLOCK_SECONDS))

    def decoded():
      with opened:
        yield from opened.blocks(per_block, dtype='float64', always_2d=True)

    return int(opened.samplerate), decoded()
  try:
    header = spectrogram.read_wav_header(stream)
    header.dtype()
  except spectrogram.AudioError as e:
    raise StreamError(f'{name}: not a readable WAV file ({e})') from e

  def blocks():
    stream.seek(header.data_offset)
    left = header.frames
    per_block = max(1, int(header.sample_rate * _STREAM_BLOCK_SECONDS))
    while left > 0:
      data = stream.read(min(left, per_block) * header.block_align)
      if not data:
        return
      frames = len(data) // header.block_align
      left -= frames
      yield spectrogram.pcm_to_float(data, header)

  return header.sample_rate, blocks()


def _pcm_blocks(stream: BinaryIO, rate: int, channels: int) -> Iterator:
  """[frames, channels] float blocks of raw 16-bit little-endian PCM."""
  size = 2 * channels * max(1, int(rate * _STREAM_BLOCK_SECONDS))
  header = spectrogram.WavHeader(rate, 0, channels, 16, 1, 0, False,
                                 2 * channels)
  carry = b''
  while True:
    data = stream.read(size)
    if not data:
      return
    data = carry + data
    whole = len(data) - len(data) % header.block_align
    carry = data[whole:]
    if whole:
      yield spectrogram.pcm_to_float(data[:whole], header)


def stream(model: PushedModel, source: BinaryIO, name: str,
           raw_rate: Optional[int] = None,
           raw_channels: int = 1) -> Iterator[dict]:
  """Classifies a recording window by window as it is read.

  Args:
    model: the pushed model.
    source: an open recording (WAV, FLAC, Ogg, MP3), or raw 16-bit
      little-endian PCM when `raw_rate` is given (e.g. standard input).
    name: the source's name, for messages.
    raw_rate: the raw PCM's sample rate (None: `source` is a file).
    raw_channels: the raw PCM's interleaved channels.

  Yields:
    Each window's prediction (see :meth:`PushedModel.window_prediction`)
    as soon as it is complete, then, once the stream ends, the windows its
    end completes. Memory holds one window and one block, whatever the
    length of the recording.

  Raises:
    StreamError: for a source that is not a readable recording.
  """
  if raw_rate is None:
    rate, blocks = _file_blocks(source, name)
  else:
    rate, blocks = raw_rate, _pcm_blocks(source, raw_rate, raw_channels)
  cutter = frontend.StreamWindows(model.front_end, rate)

  def decided(windows):
    for start, end, samples in windows:
      yield model.window_prediction(start, end, samples)

  for block in blocks:
    yield from decided(cutter.push(block))
  yield from decided(cutter.finish())

