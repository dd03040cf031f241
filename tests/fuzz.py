"""Seeded mutations of valid PNG, JPEG, BMP and WAV files, and the child
process that reads every mutant through `ingest` and `predict`.

`mutants(count, seed)` derives `count` hostile files from a few valid ones by
flipping bits, truncating, splicing two files, inserting bytes and rewriting
header fields (image dimensions, bit depths, colour types, WAV chunk sizes,
sample widths, channel counts, sample rates). Every mutant is a pure function
of (seed, index), so a failure names the case that reproduces it.

Run as a script (`python tests/fuzz.py CASES_DIR MODEL_DIR OUT_JSON`) it
pushes a tiny model to MODEL_DIR, reads every file under CASES_DIR/<class>/
with `decode.read_source`, checks
that what ingest would store decodes in TensorFlow the way Transform decodes
it, classifies the file with `predict`, ingests the whole folder as a span,
and writes the outcomes and its own peak memory to OUT_JSON. A separate
process, so its peak memory is its own.
"""

import io
import json
import os
import random
import resource
import struct
import sys
import traceback
import wave
import zlib
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

INTERESTING = (0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 24, 32, 63, 64, 127, 128,
               255, 256, 1000, 4095, 40000, 65535, 65536, 1 << 20,
               (1 << 31) - 1, 1 << 31, (1 << 32) - 1)
# Limits the child reads within: small enough that a decoder ignoring them
# would show in its peak memory.
MAX_PIXELS = 4_000_000
MAX_CLIP_SECONDS = 30.0
CLASS_NAMES = ('quiet', 'loud')


def _image(rng: np.random.Generator, mode: str) -> Image.Image:
  y, x = np.mgrid[0:40, 0:48]
  base = ((x * 5 + y * 3) % 256).astype(np.uint8)
  noise = rng.integers(0, 40, (40, 48, 3), dtype=np.uint8)
  rgb = np.stack([base, base[::-1], 255 - base], axis=-1) // 2 + noise
  return Image.fromarray(rgb.astype(np.uint8), 'RGB').convert(mode)


def _encoded(image: Image.Image, fmt: str) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, format=fmt)
  return buffer.getvalue()


def _wav(samples: np.ndarray, rate: int, width: int) -> bytes:
  buffer = io.BytesIO()
  with wave.open(buffer, 'wb') as out:
    out.setnchannels(samples.shape[1])
    out.setsampwidth(width)
    out.setframerate(rate)
    if width == 1:
      pcm = np.round(samples * 127 + 128).astype(np.uint8)
    else:
      pcm = np.round(samples * 32767).astype('<i2')
    out.writeframes(pcm.tobytes())
  return buffer.getvalue()


def seed_files() -> Dict[str, Tuple[str, bytes]]:
  """Valid files to mutate: name -> (format, bytes)."""
  rng = np.random.default_rng(0)
  t = np.arange(4000) / 16000
  tone = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(4000)
  return {
      'rgb.png': ('png', _encoded(_image(rng, 'RGB'), 'PNG')),
      'palette.png': ('png', _encoded(_image(rng, 'P'), 'PNG')),
      'photo.jpg': ('jpeg', _encoded(_image(rng, 'RGB'), 'JPEG')),
      'gray.jpg': ('jpeg', _encoded(_image(rng, 'L'), 'JPEG')),
      'picture.bmp': ('bmp', _encoded(_image(rng, 'RGB'), 'BMP')),
      'mono16.wav': ('wav', _wav(tone[:, None], 16000, 2)),
      'stereo8.wav': ('wav', _wav(np.stack([tone, -tone], axis=1), 8000, 1)),
  }


def _set(data: bytearray, offset: int, fmt: str, value: int) -> None:
  size = struct.calcsize(fmt)
  if offset + size <= len(data):
    data[offset:offset + size] = struct.pack(fmt, value % (1 << (8 * size)))


def _png_fields(data: bytearray, rng: random.Random) -> None:
  # IHDR starts at 16: width, height (>I), bit depth, colour type,
  # compression, filter, interlace (B each); the CRC is mostly fixed up so
  # the decoder looks further than the checksum.
  field = rng.choice([(16, '>I'), (20, '>I'), (24, 'B'), (25, 'B'),
                      (26, 'B'), (27, 'B'), (28, 'B'), (8, '>I')])
  _set(data, field[0], field[1], rng.choice(INTERESTING))
  if rng.random() < 0.8 and len(data) >= 33:
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))


def _jpeg_fields(data: bytearray, rng: random.Random) -> None:
  sof = max(data.find(b'\xff\xc0'), data.find(b'\xff\xc2'))
  if sof < 0:
    return
  # SOF: length (>H), precision (B), height, width (>H), components (B).
  offset, fmt = rng.choice([(2, '>H'), (4, 'B'), (5, '>H'), (7, '>H'),
                            (9, 'B')])
  _set(data, sof + offset, fmt, rng.choice(INTERESTING))


def _bmp_fields(data: bytearray, rng: random.Random) -> None:
  # File header: size (10: pixel offset); info header: width, height (<i),
  # planes, bits per pixel (<H), compression, image size, colours used.
  offset, fmt = rng.choice([(2, '<I'), (10, '<I'), (14, '<I'), (18, '<I'),
                            (22, '<I'), (26, '<H'), (28, '<H'), (30, '<I'),
                            (34, '<I'), (46, '<I')])
  _set(data, offset, fmt, rng.choice(INTERESTING))


def _wav_fields(data: bytearray, rng: random.Random) -> None:
  fmt_chunk = data.find(b'fmt ')
  data_chunk = data.find(b'data')
  fields = [(4, '<I')]  # RIFF size
  if fmt_chunk >= 0:
    # fmt: chunk size, format tag, channels, rate, byte rate, block align,
    # bits per sample.
    fields += [(fmt_chunk + 4, '<I'), (fmt_chunk + 8, '<H'),
               (fmt_chunk + 10, '<H'), (fmt_chunk + 12, '<I'),
               (fmt_chunk + 16, '<I'), (fmt_chunk + 20, '<H'),
               (fmt_chunk + 22, '<H')]
  if data_chunk >= 0:
    fields.append((data_chunk + 4, '<I'))
  offset, fmt = rng.choice(fields)
  _set(data, offset, fmt, rng.choice(INTERESTING))


_FIELDS: Dict[str, Callable[[bytearray, random.Random], None]] = {
    'png': _png_fields, 'jpeg': _jpeg_fields, 'bmp': _bmp_fields,
    'wav': _wav_fields}


def mutate(data: bytes, fmt: str, other: bytes,
           rng: random.Random) -> Tuple[bytes, str]:
  """One random mutation of `data`; returns (mutant, what was done)."""
  out = bytearray(data)
  kind = rng.choice(['flip', 'truncate', 'splice', 'insert', 'fields',
                     'fields', 'fields+flip'])
  if kind == 'truncate':
    return bytes(out[:rng.randrange(len(out))]), kind
  if kind == 'splice':
    cut = rng.randrange(len(out))
    return bytes(out[:cut]) + other[rng.randrange(len(other)):], kind
  if kind == 'insert':
    at = rng.randrange(len(out))
    blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    return bytes(out[:at]) + blob + bytes(out[at:]), kind
  if kind.startswith('fields'):
    for _ in range(rng.randint(1, 3)):
      _FIELDS[fmt](out, rng)
  if kind != 'fields':
    for _ in range(rng.randint(1, 8)):
      out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
  return bytes(out), kind


def mutants(count: int, seed: int = 0,
            seeds: Optional[Dict[str, Tuple[str, bytes]]] = None,
            tag: str = '') -> List[Tuple[str, bytes, str]]:
  """`count` mutants of `seeds` (default :func:`seed_files`; name ->
  (format, bytes)): (file name, bytes, description with the case id).
  `tag` starts each case's random seed, so two sets of seeds draw apart."""
  seeds = seeds or seed_files()
  names = sorted(seeds)
  cases = []
  for index in range(count):
    rng = random.Random(f'{tag}{seed}-{index}')
    name = names[index % len(names)]
    fmt, data = seeds[name]
    other = seeds[rng.choice(names)][1]
    mutant, kind = mutate(data, fmt, other, rng)
    stem, ext = os.path.splitext(name)
    cases.append((f'case{index:04d}-{stem}{ext}', mutant,
                  f'seed {seed}, case {index}: {kind} of {name}'))
  return cases


def tiny_image_model(image_size: int = 32) -> bytes:
  """A tiny untrained TFLite image classifier (two classes), seeded."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.keras.utils.set_random_seed(0)
  model = tf.keras.Sequential([
      tf.keras.layers.Input((image_size, image_size, 3), batch_size=1),
      tf.keras.layers.Rescaling(1 / 255),
      tf.keras.layers.Conv2D(4, 3, strides=2, activation='relu'),
      tf.keras.layers.GlobalAveragePooling2D(),
      tf.keras.layers.Dense(2, activation='softmax')])
  return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def write_model(destination: str, image_size: int = 32) -> None:
  """Pushes a tiny untrained TFLite classifier, enough to run `predict`."""
  from components.tflite import conversion  # pylint: disable=g-import-not-at-top
  from components.ondevice import push  # pylint: disable=g-import-not-at-top
  from components.ondevice.manifest import Manifest  # pylint: disable=g-import-not-at-top
  tflite = tiny_image_model(image_size)
  push.write_version(
      destination,
      {push.MODEL_FILE: tflite, push.LABELS_FILE: b'quiet\nloud\n'},
      Manifest(model_file=push.MODEL_FILE, labels_file=push.LABELS_FILE,
               sha256=conversion.sha256(tflite), image_size=image_size,
               channels=3))


def _peak_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _outcome(call: Callable[[], object]) -> Tuple[str, str]:
  try:
    return 'ok', call()
  except Exception:  # pylint: disable=broad-except
    return 'raised', traceback.format_exc()


def run_child(cases_dir: str, model_dir: str, out_json: str) -> None:
  """Reads every case through ingest and predict; writes the outcomes."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  from pipeline.data import decode  # pylint: disable=g-import-not-at-top
  from pipeline.data import ingest  # pylint: disable=g-import-not-at-top
  from pipeline.serving import predict  # pylint: disable=g-import-not-at-top
  limits = decode.FileLimits(max_pixels=MAX_PIXELS,
                             max_clip_seconds=MAX_CLIP_SECONDS)
  write_model(model_dir)
  model = predict.PushedModel(model_dir, limits)

  def read(path):
    with open(path, 'rb') as f:
      try:
        encoded = decode.read_source(f, path, 64, limits).data
      except decode.UnreadableFile as e:
        return f'skipped: {e}'
    # What ingest stores must decode in Transform, or the run would fail.
    features.decode_and_resize(tf.constant(encoded), 64, 3)
    return 'ingested'

  def classify(path):
    result = model.predict(path)
    if (result.error is None) == (result.label is None):
      raise AssertionError(f'prediction has neither a label nor an error, '
                           f'or both: {result}')
    return result.error or result.label

  paths = sorted(os.path.join(root, name)
                 for root, _, names in os.walk(cases_dir) for name in names)
  for path in paths[:8]:  # warm up every decoder before the baseline
    _outcome(lambda: read(path))
    _outcome(lambda: classify(path))
  baseline = _peak_mib()
  outcomes = {}
  for path in paths:
    print(path, file=sys.stderr, flush=True)
    outcomes[os.path.relpath(path, cases_dir)] = {
        'ingest': _outcome(lambda: read(path)),
        'predict': _outcome(lambda: classify(path))}

  def ingest_folder():
    result = ingest.ingest(
        cases_dir, os.path.join(os.path.dirname(out_json), 'data'),
        class_names=CLASS_NAMES, image_size=64, limits=limits,
        progress=False)
    return {'created': result.created, 'counts': result.counts,
            'skipped': dict(result.skipped), 'span_dir': result.span_dir}

  span = _outcome(ingest_folder)
  with open(out_json, 'w', encoding='utf-8') as f:
    json.dump({'cases': outcomes, 'span': span, 'baseline_mib': baseline,
               'peak_mib': _peak_mib()}, f, indent=1)


if __name__ == '__main__':
  run_child(*sys.argv[1:4])
