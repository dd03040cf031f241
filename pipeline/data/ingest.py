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
import json
import os
import random
import sys
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from components.common import local_disk
from components.frontend import melscale
from components.common import span_layout
from components.common import storage
from components.modules import features
from pipeline.data import decode
from components import frontend
from components.frontend import windowing
from components.common import errors

SPAN_DIR_RE = span_layout.SPAN_DIR_RE
REPORT_NAME = span_layout.REPORT_NAME
EXAMPLES_PER_SHARD = 1000
PROOF_WINDOWS = windowing.PROOF_WINDOWS


class IngestError(errors.PipelineError, ValueError):
  """Raised when a source folder cannot be ingested at all."""


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
    reencoded: number of image files re-encoded as PNG.
    recordings: number of recordings, each drawn into its windows.
  """
  span: int
  span_dir: str
  created: bool
  counts: Dict[str, int]
  skipped: List[Tuple[str, str]]
  reencoded: int = 0
  recordings: int = 0


# One definition, shared with the window (it reads URIs too).
list_spans = span_layout.list_spans


def read_report(span_dir: str) -> Dict[str, Any]:
  """A span's `ingest.json` (source, counts, skipped files), or {} if absent."""
  try:
    return json.loads(storage.read_text(storage.join(span_dir, REPORT_NAME)))
  except (OSError, ValueError):
    return {}


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


def _example_bytes(source: decode.SourceImage, label: int, filename: str,
                   keep_samples: bool = False, group: str = '') -> bytes:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  feature = {features.IMAGE_KEY: _feature(source.data),
             features.LABEL_KEY: _feature(label),
             features.FILENAME_KEY: _feature(filename)}
  if group:
    feature[features.FAMILY_KEY if label == 1 else features.KIND_KEY] = (
        _feature(group))
  if source.start is not None:
    feature[features.WINDOW_START_KEY] = _feature(float(source.start))
  if keep_samples and source.samples is not None:
    feature[features.AUDIO_PCM_KEY] = _feature(
        melscale.pcm16_bytes(source.samples))
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
           limits: decode.FileLimits = decode.FileLimits(),
           force: bool = False,
           progress: bool = True,
           front_end: Optional[frontend.FrontEnd] = None,
           proof_windows: int = PROOF_WINDOWS,
           keep_samples: bool = True) -> IngestResult:
  """Ingests `src_dir` as the next span under `data_root`.

  A WAV clip becomes one example per window of the front end (see
  :mod:`components.frontend`), each recording its source file (the
  `filename` feature, which the split hashes, so all windows of one
  recording land in the same split) and its start (`window_start`, in
  seconds). The span's `ingest.json` records the front end when it holds
  audio. With `keep_samples` (the default) every window also keeps its
  samples as 16-bit PCM (`audio_pcm`, 32 KB a window at 16 kHz): phase two
  computes its own features from them in its graph, and the pusher proves
  the waveform model on the eval split's. Without it, only the first window
  of up to `proof_windows` recordings, chosen by a hash of their paths (so
  from both splits alike), keeps them, for the pusher's proof.

  Args:
    src_dir: folder with one subfolder per class.
    data_root: folder of the `span-N` folders.
    class_names: class folder names, label 0 first.
    image_size: side of the spectrogram images rendered from WAV clips,
      when `front_end` is not given.
    limits: the :class:`decode.FileLimits` every file is read within.
    force: ingest even when an earlier span came from identical files.
    progress: print progress and skipped files to stderr.
    front_end: how WAV clips are rendered (default: the default front end
      at `image_size`).
    proof_windows: without `keep_samples`, recordings whose first window
      keeps its samples (0: none).
    keep_samples: every window of a recording keeps its samples.

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
  front_end = front_end or frontend.FrontEnd(image_size=image_size)
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
    for path in class_files:
      relpath = os.path.relpath(path, src_dir)
      problem = group_name_problem(sub_folder(relpath), class_names)
      if sub_folder(relpath) and problem:
        skipped.append((relpath, problem))
      else:
        files.append((path, label))

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
                           class_names, front_end, limits, skipped,
                           folder_warnings, log, proof_windows,
                           keep_samples)
    # Past every span prefix, complete or not: an upload killed midway is
    # never mixed into a new span.
    span = max(spans + _span_prefixes(data_root) + [0]) + 1
    span_dir = storage.join(data_root, f'span-{span}')
    with tempfile.TemporaryDirectory(prefix='ingest-') as staging:
      result = _write_span(src_dir, staging, span, span_dir, digest, files,
                           class_names, front_end, limits, skipped,
                           folder_warnings, log, proof_windows,
                           keep_samples)
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


def sub_folder(relpath: str) -> str:
  """The sub-folder of its class folder a file lies in (its family or
  kind: `instrument/piano/a.wav` is in `piano`), '' for a file directly in
  the class folder."""
  parts = relpath.replace(os.sep, '/').split('/')
  return parts[1] if len(parts) > 2 else ''


def group_name_problem(name: str, class_names: Sequence[str]) -> str:
  """Why sub-folder `name` cannot name a family or kind ('' when it can).

  A family becomes a label of phase two and a line of its labels file, so
  its name must be printable, without spaces at its ends, at most
  `features.MAX_GROUP_NAME` characters and not a class name.
  """
  if not name.isprintable() or name != name.strip():
    return (f'sub-folder name {name!r} has control characters or spaces at '
            'its ends; rename it to use it as a family or kind')
  if len(name) > features.MAX_GROUP_NAME:
    return (f'sub-folder name {name[:20]!r}... is longer than '
            f'{features.MAX_GROUP_NAME} characters; rename it')
  if name in class_names:
    return (f'sub-folder name {name!r} is a class name, so it cannot name '
            'a family; rename it')
  return ''


def families(groups: Dict[str, Dict[str, int]],
             class_names: Sequence[str]) -> List[str]:
  """The families of a span: the named sub-folders of the positive class
  (label 1) that hold examples, sorted; [] when its files lie directly in
  the class folder (phase one alone)."""
  found = groups.get(class_names[1], {}) if len(class_names) > 1 else {}
  return sorted(name for name, count in found.items() if name and count)


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


def _proof_paths(files: Sequence[Tuple[str, int]], src_dir: str,
                 limit: int) -> set:
  """The relative paths of the first `limit` files in the order of a
  hash of their path: a sample independent of the split, which hashes the
  path another way, and stable as files are added."""
  paths = sorted((os.path.relpath(path, src_dir) for path, _ in files),
                 key=lambda p: hashlib.sha256(
                     p.encode('utf-8', 'surrogateescape')).digest())
  return set(paths[:max(0, limit)])


def _write_span(src_dir, staging, span, span_dir, digest, files,
                class_names, front_end, limits, skipped, folder_warnings,
                log, proof_windows=PROOF_WINDOWS,
                keep_samples=True) -> IngestResult:
  """Writes the examples and `ingest.json` of span `span` into `staging`.

  The examples are written in an order shuffled by the source's fingerprint,
  so every shard and every prefix of the span mixes the classes (readers
  with a bounded shuffle buffer, or a sample taken from the start, see both)
  and the same source always gives the same span.
  """
  files = list(files)
  proof_paths = _proof_paths(files, src_dir, proof_windows)
  kept_samples = kept_windows = 0
  random.Random(digest).shuffle(files)
  writer = _ShardWriter(staging)
  counts = {name: 0 for name in class_names}
  recordings = {name: 0 for name in class_names}
  # Examples per sub-folder of each class (families of instruments, kinds
  # of other sounds; '' for files directly in the class folder).
  groups: Dict[str, Dict[str, int]] = {name: {} for name in class_names}
  reencoded = 0
  started = time.time()
  step = max(1, len(files) // 10)
  try:
    for done, (path, label) in enumerate(files, start=1):
      relpath = os.path.relpath(path, src_dir)
      try:
        with open(path, 'rb') as f:
          sources = decode.read_sources(f, relpath, front_end, limits)
      except decode.UnreadableFile as e:
        skipped.append((relpath, str(e)))
        continue
      except OSError as e:
        skipped.append((relpath, f'cannot read the file ({e.strerror})'))
        continue
      except MemoryError:
        # Within every limit yet more than this machine holds: this file
        # is skipped, the others are kept.
        skipped.append((relpath, 'needs more memory than is free to '
                        'decode; lower --max-clip-seconds or '
                        '--max-image-pixels, or split the file'))
        continue
      if sources[0].start is None:
        # A recording's windows are drawn, not re-encoded.
        reencoded += sources[0].reencoded
      keep = relpath in proof_paths and sources[0].samples is not None
      kept_samples += keep
      group = sub_folder(relpath)
      for index, source in enumerate(sources):
        kept = source.samples is not None and (
            keep_samples or (keep and index == 0))
        kept_windows += kept
        writer.write(_example_bytes(source, label, relpath,
                                    keep_samples=kept, group=group))
      counts[class_names[label]] += len(sources)
      groups[class_names[label]][group] = (
          groups[class_names[label]].get(group, 0) + len(sources))
      if sources[0].start is not None:
        recordings[class_names[label]] += 1
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
  positive = groups.get(class_names[1], {}) if len(class_names) > 1 else {}
  if families(groups, class_names) and positive.get(''):
    folder_warnings = folder_warnings + [
        f'{positive[""]} example(s) lie directly in {class_names[1]}/, in no '
        'family folder: phase one learns from them, phase two leaves them '
        'out']
    log(f'ingest: {folder_warnings[-1]}')

  report = {
      'span': span, 'source': src_dir, 'fingerprint': digest,
      'class_names': list(class_names), 'counts': counts,
      'groups': {name: dict(sorted(found.items()))
                 for name, found in groups.items()},
      # The families of the positive class, each example's `family`
      # feature; [] when none was given. Spans ingested before families
      # were features lack the key.
      'families': families(groups, class_names),
      # Audio: the clips read, and the front end that drew their windows.
      'recordings': recordings if any(recordings.values()) else None,
      'front_end': (front_end.to_record() if any(recordings.values())
                    else None),
      # The recordings whose first window is in the pusher's sample of
      # proof windows, and every window that keeps its samples
      # (`audio_pcm`), with their cost.
      'proof_windows': ({'windows': kept_samples, 'limit': proof_windows,
                         'bytes': 2 * kept_samples * front_end.window_samples}
                        if any(recordings.values()) else None),
      'samples': ({'windows': kept_windows, 'every_window': keep_samples,
                   'bytes': 2 * kept_windows * front_end.window_samples}
                  if any(recordings.values()) else None),
      'shards': writer.shards, 'reencoded': reencoded,
      'skipped': [{'file': p, 'reason': r} for p, r in skipped],
      'warnings': folder_warnings,
      'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
      'seconds': round(time.time() - started, 2),
  }
  with open(os.path.join(staging, REPORT_NAME), 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=2, ensure_ascii=False)
  return IngestResult(span, span_dir, True, counts, skipped, reencoded,
                      sum(recordings.values()))
