"""Hostile recordings and model folders through the device side: the child
process that runs `predict` and `predict --stream` as the command line does.

`recording_mutants(count, seed)` derives hostile WAV, FLAC, Ogg and MP3
files from valid ones (bits flipped, truncated, spliced, bytes inserted,
WAV header fields rewritten); `folder_mutants(base, out, count, seed)`
derives damaged copies of one pushed version (files truncated or changed,
with and without their digests rewritten to match, labels, manifest fields
and file names altered). Every mutant is a pure function of (seed, index).

Run as a script (`python tests/device_fuzz.py WORK_DIR OUT_JSON`) it pushes
a tiny image model and a tiny waveform model, writes the mutants, runs the
command line's `main` on each (in this process, its output captured) and
writes each exit code and what was printed to OUT_JSON. A crash kills the
child, which the test sees; the last case it started is on stderr.
"""

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import sys
from typing import Dict, List, Tuple

import numpy as np

import fuzz

IMAGE_SIZE = 32


def seed_recordings() -> Dict[str, Tuple[str, bytes]]:
  """Valid recordings to mutate: name -> (format, bytes)."""
  import soundfile  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  t = np.arange(24000) / 16000
  tone = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.02 * rng.standard_normal(
      t.size)
  # Every one mutated as a WAV: in the others the header rewrites land on
  # header bytes too (FLAC's STREAMINFO, Ogg's page header, MP3's frame).
  seeds = {'mono16.wav': ('wav', fuzz._wav(tone[:, None], 16000, 2))}  # pylint: disable=protected-access
  for name, fmt, subtype in (('clip.flac', 'FLAC', 'PCM_16'),
                             ('clip.ogg', 'OGG', 'VORBIS'),
                             ('clip.mp3', 'MP3', 'MPEG_LAYER_III')):
    buffer = io.BytesIO()
    soundfile.write(buffer, np.stack([tone, -tone], axis=1), 16000,
                    format=fmt, subtype=subtype)
    seeds[name] = ('wav', buffer.getvalue())
  return seeds


def recording_mutants(count: int, seed: int = 0
                      ) -> List[Tuple[str, bytes, str]]:
  """`count` mutants of :func:`seed_recordings`: (file name, bytes,
  description with the case id)."""
  return fuzz.mutants(count, seed, seed_recordings(), tag='device-')


def write_version(destination: str, labels=('quiet', 'loud'),
                  families=None, threshold=None, dc_gain=None,
                  recording_rule=None) -> str:
  """Pushes a tiny untrained image model and a tiny waveform model (one
  window of the default front end's samples in, two scores out).

  Args:
    destination: the push destination.
    labels: the two class names.
    families: the manifest's `families`, as JSON (None: not recorded).
    threshold: the manifest's `threshold.value` (None: not recorded).
    recording_rule: the manifest's `threshold.recording_rule` (None: not
      recorded).
    dc_gain: when given, the waveform model's positive score is
      sigmoid(2 * dc_gain * the window's mean sample), so tests choose which
      windows phase one flags by their offset; else it is untrained.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components import frontend  # pylint: disable=g-import-not-at-top
  from components.ondevice import push  # pylint: disable=g-import-not-at-top
  from components.ondevice import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  front_end = frontend.FrontEnd(image_size=IMAGE_SIZE)
  image_model = fuzz.tiny_image_model(IMAGE_SIZE)
  samples = front_end.window_samples
  waveform = tf.keras.Sequential([
      tf.keras.layers.Input((samples,), batch_size=1),
      tf.keras.layers.Dense(2, activation='softmax')])
  if dc_gain is not None:
    weight = dc_gain / samples
    waveform.layers[-1].set_weights([
        np.tile(np.array([[-weight, weight]], np.float32), (samples, 1)),
        np.zeros(2, np.float32)])
  waveform_model = tf.lite.TFLiteConverter.from_keras_model(
      waveform).convert()
  _, folder = push.write_version(
      destination,
      {push.MODEL_FILE: image_model,
       push.LABELS_FILE: ''.join(f'{name}\n' for name in labels).encode(),
       push.WAVEFORM_FILE: waveform_model},
      manifest_lib.Manifest(
          model_file=push.MODEL_FILE, labels_file=push.LABELS_FILE,
          class_names=list(labels),
          sha256=hashlib.sha256(image_model).hexdigest(),
          image_size=IMAGE_SIZE, channels=3,
          audio_front_end=manifest_lib.AudioFrontEnd.of(front_end),
          waveform=manifest_lib.WaveformEntry(
              file=push.WAVEFORM_FILE,
              sha256=hashlib.sha256(waveform_model).hexdigest()),
          families=(None if families is None
                    else manifest_lib.Families.from_json(families)),
          threshold=(None if threshold is None else
                     manifest_lib.DecisionThreshold(threshold,
                                                    recording_rule))))
  return folder


def _digest(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


_JUNK = (None, -1, 0, 3, 1e309, 'x', '../model.tflite', '/etc/passwd', [],
         {}, True, 'labels.txt', 'waveform.tflite')
_FIELDS = (('model_file',), ('labels_file',), ('input',),
           ('input', 'image_size'), ('input', 'channels'),
           ('input', 'audio_front_end'),
           ('input', 'audio_front_end', 'window_samples'),
           ('input', 'audio_front_end', 'sample_rate'),
           ('input', 'audio_front_end', 'fft_size'), ('waveform',),
           ('waveform', 'file'), ('waveform', 'sha256'), ('files',),
           ('sha256',), ('class_names',))


def _mutate_folder(folder: str, rng: random.Random) -> str:
  """Damages one copy of a version folder in place; says how."""
  path = lambda name: os.path.join(folder, name)  # pylint: disable=unnecessary-lambda-assignment
  with open(path('manifest.json'), encoding='utf-8') as f:
    manifest = json.load(f)
  kind = rng.choice(['model', 'model', 'labels', 'manifest', 'manifest',
                     'manifest', 'text', 'swap', 'missing'])
  rehash = rng.random() < 0.6
  if kind == 'model':
    name = rng.choice(['model.tflite', 'waveform.tflite'])
    with open(path(name), 'rb') as f:
      data = bytearray(f.read())
    if rng.random() < 0.5:
      data = data[:rng.randrange(len(data))]
    else:
      for _ in range(rng.randint(1, 16)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    with open(path(name), 'wb') as f:
      f.write(bytes(data))
    how = f'{name} damaged'
    if rehash:
      manifest['files'][name] = _digest(bytes(data))
      if name == 'model.tflite':
        manifest['sha256'] = _digest(bytes(data))
      else:
        manifest['waveform']['sha256'] = _digest(bytes(data))
  elif kind == 'labels':
    data = rng.choice([b'', b'one\n', b'a\nb\nc\n', b'same\nsame\n',
                       b'\xff\xfe\x00', b'loud\nquiet\n'])
    with open(path('labels.txt'), 'wb') as f:
      f.write(data)
    how = f'labels.txt = {data!r}'
    if rehash:
      manifest['files']['labels.txt'] = _digest(data)
  elif kind == 'manifest':
    keys = rng.choice(_FIELDS)
    value = rng.choice(_JUNK + ('delete',))
    target = manifest
    for key in keys[:-1]:
      target = target.get(key) if isinstance(target, dict) else None
    how = f'manifest {".".join(keys)} = {value!r}'
    if isinstance(target, dict):
      if value == 'delete':
        target.pop(keys[-1], None)
      else:
        target[keys[-1]] = value
  elif kind == 'swap':
    manifest['model_file'], manifest['waveform']['file'] = (
        'waveform.tflite', 'model.tflite')
    how = 'the two models swapped in the manifest'
  elif kind == 'missing':
    name = rng.choice(['model.tflite', 'waveform.tflite', 'labels.txt'])
    os.remove(path(name))
    how = f'{name} removed'
  else:
    text = rng.choice(['', '[]', '{', 'null', '"manifest"', '\xff'])
    with open(path('manifest.json'), 'w', encoding='utf-8') as f:
      f.write(text)
    return f'manifest.json = {text!r}'
  with open(path('manifest.json'), 'w', encoding='utf-8') as f:
    json.dump(manifest, f)
  return how + (' (digest rewritten)' if rehash and kind in (
      'model', 'labels') else '')


def folder_mutants(base: str, out: str, count: int, seed: int = 0
                   ) -> List[Tuple[str, str]]:
  """`count` damaged copies of the version folder `base` under `out`:
  (folder, description with the case id)."""
  cases = []
  for index in range(count):
    rng = random.Random(f'folder-{seed}-{index}')
    folder = os.path.join(out, f'folder{index:04d}')
    shutil.copytree(base, folder)
    how = _mutate_folder(folder, rng)
    cases.append((folder, f'seed {seed}, case {index}: {how}'))
  return cases


def _main(argv: List[str]) -> Tuple[int, str, str]:
  from pipeline.cli import commands  # pylint: disable=g-import-not-at-top
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = commands.main(argv)
  return code, out.getvalue(), err.getvalue()


def run_child(work: str, out_json: str, recordings: int = 0,
              folders: int = 0) -> None:
  """Runs predict and --stream on every mutant; writes the outcomes."""
  folder = write_version(os.path.join(work, 'pushed'))
  clips = os.path.join(work, 'clips')
  os.makedirs(clips, exist_ok=True)
  outcomes = {'recordings': {}, 'folders': {}}
  for name, data, description in recording_mutants(recordings):
    path = os.path.join(clips, name)
    with open(path, 'wb') as f:
      f.write(data)
    for mode in ('files', 'stream'):
      print(f'{mode} {description}', file=sys.stderr, flush=True)
      argv = ['predict', '--model', folder, path] + (
          ['--stream'] if mode == 'stream' else [])
      outcomes['recordings'][f'{mode} {description}'] = _main(argv)
  good = os.path.join(clips, 'valid.wav')
  with open(good, 'wb') as f:
    f.write(seed_recordings()['mono16.wav'][1])
  for damaged, description in folder_mutants(
      folder, os.path.join(work, 'folders'), folders):
    print(description, file=sys.stderr, flush=True)
    outcomes['folders'][description] = _main(
        ['predict', '--model', damaged, good])
  with open(out_json, 'w', encoding='utf-8') as f:
    json.dump(outcomes, f, indent=1)


if __name__ == '__main__':
  run_child(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
