"""Turn a folder of class subfolders into the next span of `tf.Example`s.

`python -m pipeline ingest SRC_DIR` reads `SRC_DIR/<class name>/...` (images
of any size, PNG or JPEG, grayscale, RGB or RGBA; or WAV clips, rendered with
the project's spectrogram function) and writes gzipped TFRecord files of
`tf.Example` (`image`: encoded image bytes, `label`: class index, `filename`:
path relative to SRC_DIR) into `<data root>/span-N/`, where ImportExampleGen
finds them.

* The format of a file is read from its bytes, not its name.
* A file that cannot be read is skipped and listed with the reason, on the
  console and in the span's `ingest.json`; it never stops the others.
* Images other than PNG or JPEG, in unusual modes, with an EXIF rotation, or
  larger than `max_side` are re-encoded as PNG (and shrunk), so Transform
  decodes every example the same way and no example is huge.
* The span is written in a staging folder and renamed into place when
  complete; a source identical to the latest span's is not ingested again.
"""

import dataclasses
import fcntl
import hashlib
import io
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from PIL import Image
from PIL import ImageOps
from PIL import UnidentifiedImageError

from components.modules import features
from pipeline import spectrogram

SPAN_DIR_RE = re.compile(r'^span-(\d+)$')
REPORT_NAME = 'ingest.json'
EXAMPLES_PER_SHARD = 1000
DEFAULT_MAX_SIDE = 1024
_KEEP_AS_IS = {'PNG': ('L', 'LA', 'RGB', 'RGBA', 'P', 'I;16'),
               'JPEG': ('L', 'RGB')}


class IngestError(ValueError):
  """Raised when a source folder cannot be ingested at all."""


class UnreadableFile(ValueError):
  """Raised for one file that is not a usable image or WAV clip."""


@dataclasses.dataclass
class IngestResult:
  """What one call of :func:`ingest` did.

  Attributes:
    span: number of the span written, or of the identical span found.
    span_dir: its folder.
    created: False when the source matched the latest span and nothing was
      written.
    counts: examples written per class name.
    skipped: (relative path, reason) for every file that was not ingested.
    reencoded: number of files re-encoded as PNG.
  """
  span: int
  span_dir: str
  created: bool
  counts: Dict[str, int]
  skipped: List[Tuple[str, str]]
  reencoded: int = 0


def list_spans(data_root: str) -> List[int]:
  """Span numbers of the complete `span-N` folders under `data_root`, sorted."""
  if not os.path.isdir(data_root):
    return []
  spans = []
  for name in os.listdir(data_root):
    match = SPAN_DIR_RE.match(name)
    if match and os.path.isfile(os.path.join(data_root, name, REPORT_NAME)):
      spans.append(int(match.group(1)))
  return sorted(spans)


def read_report(span_dir: str) -> Dict[str, Any]:
  """A span's `ingest.json` (source, counts, skipped files), or {} if absent."""
  try:
    with open(os.path.join(span_dir, REPORT_NAME), encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def encode_image(data: bytes, name: str,
                 max_side: int = DEFAULT_MAX_SIDE) -> Tuple[bytes, bool]:
  """Checks an image's bytes and returns what to store for it.

  Args:
    data: the file's bytes.
    name: the file's path, for error messages.
    max_side: images with a larger side are shrunk to it.

  Returns:
    (encoded image bytes, whether they were re-encoded as PNG).

  Raises:
    UnreadableFile: if the bytes are not a complete, decodable image.
  """
  if not data:
    raise UnreadableFile('empty file (0 bytes)')
  try:
    with Image.open(io.BytesIO(data)) as probe:
      probe.verify()
    image = Image.open(io.BytesIO(data))
    image.load()
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
    raise UnreadableFile(f'not a readable image ({e})') from e
  if image.width < 1 or image.height < 1:
    raise UnreadableFile(f'image has no pixels ({image.width}x{image.height})')
  if is_blank(image):
    raise UnreadableFile('blank image: every pixel has the same value')
  rotated = image.getexif().get(0x0112, 1) not in (0, 1)
  keep = (image.format in _KEEP_AS_IS and image.mode in
          _KEEP_AS_IS[image.format] and not rotated and
          max(image.size) <= max_side and getattr(image, 'n_frames', 1) == 1)
  if keep:
    return data, False
  image = ImageOps.exif_transpose(image)
  if image.mode not in ('L', 'RGB'):
    image = image.convert('RGBA' if 'A' in image.mode else 'RGB')
    if image.mode == 'RGBA':
      background = Image.new('RGB', image.size, (0, 0, 0))
      background.paste(image, mask=image.getchannel('A'))
      image = background
  if max(image.size) > max_side:
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
  buffer = io.BytesIO()
  image.save(buffer, format='PNG')
  return buffer.getvalue(), True


def is_blank(image: Image.Image) -> bool:
  """True when every pixel of every band has one value (nothing to learn)."""
  extrema = image.getextrema()
  if not isinstance(extrema[0], tuple):
    extrema = (extrema,)
  return all(low == high for low, high in extrema)


def encode_wav(data: bytes, name: str, image_size: int) -> bytes:
  """Renders a WAV clip as a spectrogram PNG.

  Args:
    data: the WAV file's bytes.
    name: the file's path, for error messages.
    image_size: side of the spectrogram image.

  Returns:
    PNG bytes of the spectrogram image.

  Raises:
    UnreadableFile: if the clip cannot be read or rendered.
  """
  try:
    audio, rate = spectrogram.read_wav(data, name)
    image = spectrogram.spectrogram_image(audio, rate, image_size)
  except spectrogram.AudioError as e:
    raise UnreadableFile(str(e).replace(f'{name}: ', '')) from e
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='PNG')
  return buffer.getvalue()


def _walk_class_folder(src_dir: str, class_dir: str,
                       skipped: List[Tuple[str, str]]) -> Iterator[str]:
  """Yields regular files under `class_dir`, sorted, staying inside src_dir."""
  real_root = os.path.realpath(src_dir)
  for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=False):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
    for dirname in list(dirnames):
      path = os.path.join(dirpath, dirname)
      if os.path.islink(path):
        dirnames.remove(dirname)
        skipped.append((os.path.relpath(path, src_dir),
                        'symlinked folder; not followed'))
    for filename in sorted(filenames):
      if filename.startswith('.'):
        continue
      path = os.path.join(dirpath, filename)
      real = os.path.realpath(path)
      if os.path.commonpath([real, real_root]) != real_root:
        skipped.append((os.path.relpath(path, src_dir),
                        f'symlink to {real}, outside the data folder'))
        continue
      if not os.path.isfile(real):
        skipped.append((os.path.relpath(path, src_dir), 'not a regular file'))
        continue
      yield path


def _example_bytes(image: bytes, label: int, filename: str) -> bytes:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[image])),
      features.LABEL_KEY: tf.train.Feature(
          int64_list=tf.train.Int64List(value=[label])),
      features.FILENAME_KEY: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[filename.encode('utf-8')])),
  })).SerializeToString()


class _ShardWriter:
  """Writes examples into numbered gzipped TFRecord shards."""

  def __init__(self, out_dir: str):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self._tf = tf
    self._out_dir = out_dir
    self._writer = None
    self._in_shard = 0
    self.shards = 0

  def write(self, record: bytes) -> None:
    if self._writer is None or self._in_shard >= EXAMPLES_PER_SHARD:
      self.close()
      path = os.path.join(self._out_dir,
                          f'examples-{self.shards:05d}.tfrecord.gz')
      self._writer = self._tf.io.TFRecordWriter(
          path, options=self._tf.io.TFRecordOptions(compression_type='GZIP'))
      self.shards += 1
      self._in_shard = 0
    self._writer.write(record)
    self._in_shard += 1

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None


def _check_classes(src_dir: str, class_names: Sequence[str]) -> List[str]:
  """Checks the class folders; returns warnings about extra folders."""
  if not os.path.isdir(src_dir):
    raise IngestError(f'{src_dir} is not a folder.')
  present = sorted(name for name in os.listdir(src_dir)
                   if os.path.isdir(os.path.join(src_dir, name))
                   and not name.startswith('.'))
  missing = [name for name in class_names if name not in present]
  if missing:
    raise IngestError(
        f'{src_dir} has no class folder {", ".join(missing)}; expected one '
        f'folder per class: {", ".join(class_names)} (found: '
        f'{", ".join(present) or "none"}). Set --class-names to match your '
        'folders.')
  return [f'folder {name}/ is not one of the classes '
          f'({", ".join(class_names)}); ignored'
          for name in present if name not in class_names]


def _lock(data_root: str):
  os.makedirs(data_root, exist_ok=True)
  handle = open(os.path.join(data_root, '.ingest.lock'), 'w')
  fcntl.flock(handle, fcntl.LOCK_EX)
  return handle


def ingest(src_dir: str, data_root: str,
           class_names: Sequence[str] = features.DEFAULT_CLASS_NAMES,
           image_size: int = features.DEFAULT_IMAGE_SIZE,
           max_side: int = DEFAULT_MAX_SIDE,
           force: bool = False,
           progress: bool = True) -> IngestResult:
  """Ingests `src_dir` as the next span under `data_root`.

  Args:
    src_dir: folder with one subfolder per class.
    data_root: folder of the `span-N` folders.
    class_names: class folder names, label 0 first.
    image_size: side of the spectrogram images rendered from WAV clips.
    max_side: larger images are shrunk to this side.
    force: ingest even when the latest span came from identical files.
    progress: print progress and skipped files to stderr.

  Returns:
    An :class:`IngestResult`.

  Raises:
    IngestError: when a class folder is missing or empty, or nothing at all
      could be read.
  """
  src_dir = os.path.abspath(src_dir)
  warnings = _check_classes(src_dir, class_names)
  log = (lambda msg: print(msg, file=sys.stderr)) if progress else (
      lambda msg: None)
  for warning in warnings:
    log(f'ingest: {warning}')

  skipped: List[Tuple[str, str]] = []
  files: List[Tuple[str, int]] = []
  for label, name in enumerate(class_names):
    class_files = list(_walk_class_folder(src_dir,
                                          os.path.join(src_dir, name),
                                          skipped))
    if not class_files:
      raise IngestError(f'class folder {os.path.join(src_dir, name)} has no '
                        'files; every class needs examples.')
    files.extend((path, label) for path in class_files)

  with _lock(data_root):
    spans = list_spans(data_root)
    digest = source_fingerprint(src_dir, files, class_names)
    if spans and not force:
      latest_dir = os.path.join(data_root, f'span-{spans[-1]}')
      if read_report(latest_dir).get('fingerprint') == digest:
        log(f'ingest: {src_dir} is unchanged since span {spans[-1]}; '
            'nothing added (use --force to add it again)')
        return IngestResult(spans[-1], latest_dir, False, {}, skipped)
    span = (spans[-1] + 1) if spans else 1
    staging = tempfile.mkdtemp(prefix='.staging-', dir=data_root)
    os.chmod(staging, 0o755)
    try:
      return _write_span(src_dir, data_root, staging, span, digest, files,
                         class_names, image_size, max_side, skipped,
                         warnings, log)
    except BaseException:
      shutil.rmtree(staging, ignore_errors=True)
      raise


def source_fingerprint(src_dir: str, files: Sequence[Tuple[str, int]],
                       class_names: Sequence[str]) -> str:
  """SHA-256 over the class names, relative paths, labels and file contents.

  Args:
    src_dir: the source folder.
    files: (path, label) of every candidate file.
    class_names: the class names, in label order.

  Returns:
    The hex digest; equal for an unchanged source folder.
  """
  fingerprint = hashlib.sha256(json.dumps(list(class_names)).encode())
  for path, label in files:
    relpath = os.path.relpath(path, src_dir)
    fingerprint.update(f'{label}:{relpath}'.encode('utf-8', 'surrogateescape'))
    with open(path, 'rb') as f:
      fingerprint.update(hashlib.sha256(f.read()).digest())
  return fingerprint.hexdigest()


def _write_span(src_dir, data_root, staging, span, digest, files,
                class_names, image_size, max_side, skipped, warnings, log
                ) -> IngestResult:
  """Writes the examples into `staging`, then renames it to span `span`.

  The examples are written in an order shuffled by the source's fingerprint,
  so every shard and every prefix of the span mixes the classes (readers
  with a bounded shuffle buffer, or a sample taken from the start, see both)
  and the same source always gives the same span.
  """
  files = list(files)
  random.Random(digest).shuffle(files)
  writer = _ShardWriter(staging)
  counts = {name: 0 for name in class_names}
  reencoded = 0
  started = time.time()
  step = max(1, len(files) // 10)
  try:
    for done, (path, label) in enumerate(files, start=1):
      relpath = os.path.relpath(path, src_dir)
      with open(path, 'rb') as f:
        data = f.read()
      try:
        if spectrogram.is_wav(data):
          encoded, changed = encode_wav(data, relpath, image_size), True
        else:
          encoded, changed = encode_image(data, relpath, max_side)
      except UnreadableFile as e:
        skipped.append((relpath, str(e)))
        continue
      reencoded += changed
      writer.write(_example_bytes(encoded, label, relpath))
      counts[class_names[label]] += 1
      if done % step == 0 or done == len(files):
        log(f'ingest: {done}/{len(files)} files read')
  finally:
    writer.close()

  for relpath, reason in skipped:
    log(f'ingest: skipped {relpath}: {reason}')
  empty = [name for name, count in counts.items() if count == 0]
  if empty:
    raise IngestError(
        f'no readable file in class folder(s) {", ".join(empty)} of '
        f'{src_dir}; {len(skipped)} file(s) skipped (listed above).')

  span_dir = os.path.join(data_root, f'span-{span}')
  report = {
      'span': span, 'source': src_dir, 'fingerprint': digest,
      'class_names': list(class_names), 'counts': counts,
      'shards': writer.shards, 'reencoded': reencoded,
      'skipped': [{'file': p, 'reason': r} for p, r in skipped],
      'warnings': warnings,
      'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
      'seconds': round(time.time() - started, 2),
  }
  with open(os.path.join(staging, REPORT_NAME), 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=2, ensure_ascii=False)
  os.rename(staging, span_dir)
  return IngestResult(span, span_dir, True, counts, skipped, reencoded)
