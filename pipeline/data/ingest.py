"""Turn a folder of class subfolders into the next span of `tf.Example`s.

`python -m pipeline ingest SRC_DIR` reads `SRC_DIR/<class name>/...` (images
of any size, PNG or JPEG, grayscale, RGB or RGBA; or WAV clips, rendered with
the project's spectrogram function) and writes gzipped TFRecord files of
`tf.Example` (`image`: encoded image bytes, `label`: class index, `filename`:
path relative to SRC_DIR, and numeric summaries of the image for data
validation: source width and height, luminance mean, standard deviation and
saturated share, source format) into `<data root>/span-N/`, where
ImportExampleGen finds them.

* The format of a file is read from its bytes, not its name.
* A file that cannot be read is skipped and listed with the reason, on the
  console and in the span's `ingest.json`; it never stops the others. So
  are images declaring more than `--max-image-pixels` and clips longer than
  `--max-clip-seconds` (refused from their headers, so memory stays
  bounded) and clips too short for a spectrogram.
* Images other than PNG or JPEG, in unusual modes, with an EXIF rotation, or
  larger than `--max-side` are re-encoded as PNG (and shrunk), so Transform
  decodes every example the same way and no example is huge.
* The span is written in a staging folder, flushed to disk and renamed into
  place when complete (`components.common.local_disk`); a source identical to an
  earlier span's is not ingested again.
"""

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import random
import sys
import tempfile
import time
import warnings
from typing import (Any, BinaryIO, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import numpy as np
from PIL import Image
from PIL import ImageOps

from components.common import local_disk
from components import span_window
from components.common import storage
from components.modules import features
from pipeline.data import spectrogram
from components.common import errors

SPAN_DIR_RE = span_window.SPAN_DIR_RE
REPORT_NAME = span_window.REPORT_NAME
EXAMPLES_PER_SHARD = 1000
_KEEP_AS_IS = {'PNG': ('L', 'LA', 'RGB', 'RGBA', 'P', 'I;16'),
               'JPEG': ('L', 'RGB')}


class IngestError(errors.PipelineError, ValueError):
  """Raised when a source folder cannot be ingested at all."""


class UnreadableFile(errors.PipelineError, ValueError):
  """Raised for one file that is not a usable image or WAV clip."""


@dataclasses.dataclass
class IngestResult:
  """What one call of :func:`ingest` did.

  Attributes:
    span: number of the span written, or of the identical span found.
    span_dir: its folder.
    created: False when the source matched an earlier span and nothing was
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


# One definition, shared with the window (it reads URIs too).
list_spans = span_window.list_spans


def read_report(span_dir: str) -> Dict[str, Any]:
  """A span's `ingest.json` (source, counts, skipped files), or {} if absent."""
  try:
    return json.loads(storage.read_text(storage.join(span_dir, REPORT_NAME)))
  except (OSError, ValueError):
    return {}


@dataclasses.dataclass(frozen=True)
class FileLimits:
  """How much work one source file may cause; the settings' one home.

  Attributes:
    max_side: images with a larger side are shrunk to it before storing.
    max_pixels: images declaring more pixels (width x height) are refused
      from their header, before any pixel is decoded.
    max_clip_seconds: longer WAV clips are refused from their header,
      before their samples are read.
  """
  max_side: int = 1024
  max_pixels: int = 50_000_000
  max_clip_seconds: float = 600.0


@dataclasses.dataclass(frozen=True)
class SourceImage:
  """What one source file becomes.

  Attributes:
    data: the encoded image stored (PNG or JPEG).
    reencoded: whether `data` differs from the file's bytes.
    summary: the image summary features by name (`features.IMAGE_WIDTH_KEY`
      and the others), see :func:`image_summary`.
  """
  data: bytes
  reencoded: bool
  summary: Dict[str, Any]


def image_summary(image: Image.Image, source_format: str) -> Dict[str, Any]:
  """Width, height, and luminance mean, std and saturated share of `image`.

  The pixel figures are computed on a copy at most 256 pixels on a side:
  they describe the picture, not its resolution, and cost little.

  Args:
    image: a decoded image.
    source_format: the file's format (PNG, JPEG, ..., WAV).

  Returns:
    {feature name: value} for the summary features of `features`.
  """
  luminance = image.convert('L')
  luminance.thumbnail((256, 256))
  pixels = np.asarray(luminance, dtype=np.float64)
  return {
      features.IMAGE_WIDTH_KEY: int(image.width),
      features.IMAGE_HEIGHT_KEY: int(image.height),
      features.PIXEL_MEAN_KEY: float(pixels.mean()),
      features.PIXEL_STD_KEY: float(pixels.std()),
      features.SATURATED_SHARE_KEY: float(np.mean((pixels <= 0) |
                                                  (pixels >= 255))),
      features.SOURCE_FORMAT_KEY: source_format,
  }


@contextlib.contextmanager
def _pillow_pixel_limit(max_pixels: Optional[int]) -> Iterator[None]:
  """Pillow's own bomb checks (also run inside GIF, ICO and TIFF decoders)
  use `max_pixels` (None: off) inside the block, and its warning is an
  error; a module global is Pillow's only knob."""
  saved = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = max_pixels
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('error', Image.DecompressionBombWarning)
      yield
  finally:
    Image.MAX_IMAGE_PIXELS = saved


def _library_failure(e: Exception) -> str:
  return f'{type(e).__name__}: {e}' if str(e) else type(e).__name__


def encode_image(stream: BinaryIO, limits: FileLimits = FileLimits(),
                 allow_blank: bool = False) -> SourceImage:
  """Checks an image file and returns what to store for it.

  The one place images are decoded (Pillow). The header is read first: an
  image declaring more than `limits.max_pixels` pixels is refused before any
  pixel is decoded, so memory stays bounded whatever a file declares. Any
  failure of the decoder, of whatever exception type, is an
  :class:`UnreadableFile` with the decoder's message.

  Args:
    stream: the open file (seekable, binary).
    limits: the :class:`FileLimits`.
    allow_blank: accept an image whose pixels all have one value (`predict`
      classifies it; `ingest` skips it, there is nothing to learn).

  Returns:
    The :class:`SourceImage` to store.

  Raises:
    UnreadableFile: if the bytes are not a complete, decodable image within
      the limits.
  """
  try:
    # The header and the file's structure, no pixel decoded: our limit, with
    # its message, comes before Pillow's.
    with _pillow_pixel_limit(None):
      with Image.open(stream) as probe:
        _check_pixels(probe.size, limits.max_pixels)
        probe.verify()
    stream.seek(0)
    with _pillow_pixel_limit(limits.max_pixels):
      image = Image.open(stream)
      image.load()
      rotated = image.getexif().get(0x0112, 1) not in (0, 1)
      frames = getattr(image, 'n_frames', 1)
      summary = image_summary(image, image.format or 'unknown')
  except UnreadableFile:
    raise
  except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
    raise UnreadableFile(f'too many pixels ({e}); the limit is '
                         f'--max-image-pixels {limits.max_pixels}') from e
  # Pillow's decoders fail in many ways on malformed files (OSError,
  # SyntaxError, struct.error, ValueError, IndexError, ...).
  except Exception as e:  # pylint: disable=broad-except
    raise UnreadableFile(f'not a readable image ({_library_failure(e)})'
                         ) from e
  if image.width < 1 or image.height < 1:
    raise UnreadableFile(f'image has no pixels ({image.width}x{image.height})')
  if not allow_blank and is_blank(image):
    raise UnreadableFile('blank image: every pixel has the same value')
  keep = (image.format in _KEEP_AS_IS and image.mode in
          _KEEP_AS_IS[image.format] and not rotated and
          max(image.size) <= limits.max_side and frames == 1)
  if keep:
    stream.seek(0)
    data = stream.read()
    _check_tensorflow_decodes(data)
    return SourceImage(data, False, summary)
  try:
    return SourceImage(_as_png(image, limits.max_side), True, summary)
  except Exception as e:  # pylint: disable=broad-except
    raise UnreadableFile(f'image cannot be converted to PNG '
                         f'({_library_failure(e)})') from e


def _check_tensorflow_decodes(data: bytes) -> None:
  """Transform decodes stored images with TensorFlow, which refuses some
  damaged PNG and JPEG data that Pillow decodes; such a file would stop
  the run, so it is skipped here."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    tf.io.decode_image(data, expand_animations=False)
  except tf.errors.OpError as e:
    # The op's message starts with its function node in braces and ends
    # with the op name: keep the reason between them.
    reason = e.message.split('[Op:')[0].split('}} ')[-1].strip()
    raise UnreadableFile('damaged image data that TensorFlow cannot decode '
                         f'({reason})') from e


def _check_pixels(size: Tuple[int, int], max_pixels: int) -> None:
  width, height = size
  if width * height > max_pixels:
    raise UnreadableFile(
        f'image declares {width}x{height} pixels ({width * height / 1e6:.1f} '
        f'megapixels), over the limit of {max_pixels / 1e6:g} megapixels '
        '(--max-image-pixels); not decoded')


def _as_png(image: Image.Image, max_side: int) -> bytes:
  """Upright, RGB or grayscale, at most `max_side`, encoded as PNG."""
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
  return buffer.getvalue()


def is_blank(image: Image.Image) -> bool:
  """True when every pixel of every band has one value (nothing to learn)."""
  extrema = image.getextrema()
  if not isinstance(extrema[0], tuple):
    extrema = (extrema,)
  return all(low == high for low, high in extrema)


def encode_wav(stream: BinaryIO, name: str, image_size: int,
               max_seconds: Optional[float] = None) -> SourceImage:
  """Renders a WAV clip as a spectrogram PNG.

  Args:
    stream: the open WAV file (seekable, binary).
    name: the file's path, for error messages.
    image_size: side of the spectrogram image.
    max_seconds: refuse longer clips before reading their samples.

  Returns:
    The :class:`SourceImage` of the spectrogram (PNG).

  Raises:
    UnreadableFile: if the clip cannot be read or rendered, or is too short
      or too long.
  """
  try:
    audio, rate = spectrogram.read_wav(stream, name, max_seconds)
    pixels = spectrogram.spectrogram_image(audio, rate, image_size)
  except spectrogram.AudioError as e:
    raise UnreadableFile(str(e).replace(f'{name}: ', '')) from e
  image = Image.fromarray(pixels)
  buffer = io.BytesIO()
  image.save(buffer, format='PNG')
  return SourceImage(buffer.getvalue(), True, image_summary(image, 'WAV'))


def read_source(stream: BinaryIO, name: str, image_size: int,
                limits: FileLimits = FileLimits(),
                allow_blank: bool = False) -> SourceImage:
  """One source file, image or WAV clip, to the encoded image stored for it.

  The format is read from the bytes, not the name. `ingest` and `predict`
  both read files through here, so a file is accepted, refused or turned
  into pixels the same way at training and at serving time.

  Args:
    stream: the open file (seekable, binary).
    name: the file's path, for error messages.
    image_size: side of the spectrogram images rendered from WAV clips.
    limits: the :class:`FileLimits`.
    allow_blank: see :func:`encode_image`.

  Returns:
    The :class:`SourceImage`: PNG or JPEG bytes, whether they differ from
    the file's bytes, and the image's summary features.

  Raises:
    UnreadableFile: naming why the file is not used.
  """
  head = stream.read(12)
  stream.seek(0)
  if not head:
    raise UnreadableFile('empty file (0 bytes)')
  if spectrogram.is_wav(head):
    return encode_wav(stream, name, image_size, limits.max_clip_seconds)
  return encode_image(stream, limits, allow_blank)


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


def _feature(value: Any):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if isinstance(value, bytes):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
  if isinstance(value, str):
    return _feature(value.encode('utf-8'))
  if isinstance(value, int):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
  return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))


def _example_bytes(source: SourceImage, label: int, filename: str) -> bytes:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  feature = {features.IMAGE_KEY: _feature(source.data),
             features.LABEL_KEY: _feature(label),
             features.FILENAME_KEY: _feature(filename)}
  feature.update({name: _feature(value)
                  for name, value in source.summary.items()})
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


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


def ingest(src_dir: str, data_root: str,
           class_names: Sequence[str] = features.DEFAULT_CLASS_NAMES,
           image_size: int = features.DEFAULT_IMAGE_SIZE,
           limits: FileLimits = FileLimits(),
           force: bool = False,
           progress: bool = True) -> IngestResult:
  """Ingests `src_dir` as the next span under `data_root`.

  Args:
    src_dir: folder with one subfolder per class.
    data_root: folder of the `span-N` folders.
    class_names: class folder names, label 0 first.
    image_size: side of the spectrogram images rendered from WAV clips.
    limits: the :class:`FileLimits` every file is read within.
    force: ingest even when an earlier span came from identical files.
    progress: print progress and skipped files to stderr.

  Returns:
    An :class:`IngestResult`.

  Raises:
    IngestError: when a class folder is missing or empty, or nothing at all
      could be read.
  """
  if storage.is_uri(src_dir):
    raise IngestError(f'ingest reads a local folder, got {src_dir}; copy it '
                      'to this machine first (the data root, where spans '
                      'are written, may be a bucket).')
  src_dir = os.path.abspath(src_dir)
  folder_warnings = _check_classes(src_dir, class_names)
  log = (lambda msg: print(msg, file=sys.stderr)) if progress else (
      lambda msg: None)
  for warning in folder_warnings:
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

  remote = storage.is_uri(data_root)
  # A bucket has no locks: ingests into one must take turns by other means.
  with (contextlib.nullcontext() if remote else
        local_disk.locked(os.path.join(data_root, '.ingest.lock'))):
    spans = list_spans(data_root)
    digest = source_fingerprint(src_dir, files, class_names)
    for earlier in ([] if force else reversed(spans)):
      earlier_dir = storage.join(data_root, f'span-{earlier}')
      if read_report(earlier_dir).get('fingerprint') == digest:
        log(f'ingest: {src_dir} holds the same files as span {earlier}; '
            'nothing added (use --force to add it again; a window still '
            'counts identical spans once)')
        return IngestResult(earlier, earlier_dir, False, {}, skipped)
    if not remote:
      span = (spans[-1] + 1) if spans else 1
      span_dir = os.path.join(data_root, f'span-{span}')
      with local_disk.staged_folder(span_dir) as staging:
        return _write_span(src_dir, staging, span, span_dir, digest, files,
                           class_names, image_size, limits, skipped,
                           folder_warnings, log)
    # Past every span prefix, complete or not: an upload killed midway is
    # never mixed into a new span.
    span = max(spans + _span_prefixes(data_root) + [0]) + 1
    span_dir = storage.join(data_root, f'span-{span}')
    with tempfile.TemporaryDirectory(prefix='ingest-') as staging:
      result = _write_span(src_dir, staging, span, span_dir, digest, files,
                           class_names, image_size, limits, skipped,
                           folder_warnings, log)
      _upload_span(staging, span_dir, log)
    return result


def _span_prefixes(data_root: str) -> List[int]:
  """Every `span-N` name under `data_root`, with its record or not."""
  return [int(match.group(1)) for match in
          map(SPAN_DIR_RE.match, storage.listdir(data_root)) if match]


def _upload_span(staging: str, span_dir: str, log) -> None:
  """Uploads a span written in `staging`: the shards, then `ingest.json`,
  which makes it complete (:func:`list_spans`, the window and the run
  accept only spans that have it)."""
  names = sorted(os.listdir(staging))
  names.remove(REPORT_NAME)
  for number, name in enumerate(names + [REPORT_NAME], start=1):
    storage.upload(os.path.join(staging, name), storage.join(span_dir, name))
    log(f'ingest: uploaded {number}/{len(names) + 1} files to {span_dir}')


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
    content = hashlib.sha256()
    try:
      with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
          content.update(block)
    except OSError as e:
      content.update(f'unreadable: {e.strerror}'.encode())
    fingerprint.update(content.digest())
  return fingerprint.hexdigest()


def _write_span(src_dir, staging, span, span_dir, digest, files,
                class_names, image_size, limits, skipped, folder_warnings,
                log) -> IngestResult:
  """Writes the examples and `ingest.json` of span `span` into `staging`.

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
      try:
        with open(path, 'rb') as f:
          source = read_source(f, relpath, image_size, limits)
      except UnreadableFile as e:
        skipped.append((relpath, str(e)))
        continue
      except OSError as e:
        skipped.append((relpath, f'cannot read the file ({e.strerror})'))
        continue
      reencoded += source.reencoded
      writer.write(_example_bytes(source, label, relpath))
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

  report = {
      'span': span, 'source': src_dir, 'fingerprint': digest,
      'class_names': list(class_names), 'counts': counts,
      'shards': writer.shards, 'reencoded': reencoded,
      'skipped': [{'file': p, 'reason': r} for p, r in skipped],
      'warnings': folder_warnings,
      'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
      'seconds': round(time.time() - started, 2),
  }
  with open(os.path.join(staging, REPORT_NAME), 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=2, ensure_ascii=False)
  return IngestResult(span, span_dir, True, counts, skipped, reencoded)
