"""Bench part 11, audio: ingest throughput at 16 kHz and 44.1 kHz stereo
against a plain SciPy read and render loop; a model trained on 16 kHz
recordings scored on held-out clips at 16, 44.1 (stereo) and 48 kHz;
`predict --stream`'s real-time factor on one core and its memory over 6 and
60 minutes.
"""

import argparse
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Tuple

from bench.parts.common import Context
from bench.parts.common import ROOT
from bench.parts.common import pushed_figures
from bench.parts.common import cli
from bench.parts.common import log
from bench.parts.common import pipeline_run
from bench.parts.common import run_process

NUMBER = 11
# The part's figures in results.json.
KEY = 'audio'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = False
NEEDS_WORKSPACE = False


def _stereo_copies(src: str, dst: str, rate: int, channels: int) -> None:
  """Every WAV clip of `src` (class folders) resampled to `rate` and copied
  to `channels`, as a device recording the same sounds would give them."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from scipy.io import wavfile  # pylint: disable=g-import-not-at-top
  from components import frontend  # pylint: disable=g-import-not-at-top
  from components.frontend import windowing  # pylint: disable=g-import-not-at-top
  from pipeline.data import spectrogram  # pylint: disable=g-import-not-at-top
  for name in sorted(os.listdir(src)):
    if not os.path.isdir(os.path.join(src, name)):
      continue
    os.makedirs(os.path.join(dst, name), exist_ok=True)
    for clip in sorted(os.listdir(os.path.join(src, name))):
      with open(os.path.join(src, name, clip), 'rb') as f:
        audio, source_rate = spectrogram.read_wav(f.read())
      audio = windowing.resample(audio, source_rate, rate)
      pcm = np.round(np.clip(audio, -1, 1) * 32767).astype('<i2')
      wavfile.write(os.path.join(dst, name, clip), rate,
                    np.repeat(pcm[:, None], channels, axis=1))


def _plain_render_seconds(folder: str) -> Tuple[int, float]:
  """The loop a notebook writes: SciPy's read, our spectrogram at the
  file's own rate (no resampling, no windows), a PNG; (clips, seconds)."""
  from scipy.io import wavfile  # pylint: disable=g-import-not-at-top
  from pipeline.data import decode  # pylint: disable=g-import-not-at-top
  from pipeline.data import spectrogram  # pylint: disable=g-import-not-at-top
  from components.frontend import melscale  # pylint: disable=g-import-not-at-top
  paths = sorted(glob.glob(os.path.join(folder, '*', '*.wav')))
  started = time.perf_counter()
  for path in paths:
    rate, samples = wavfile.read(path)
    mono = samples.astype('float64') / 32768.0
    if mono.ndim == 2:
      mono = mono.mean(axis=1)
    decode.png_bytes(melscale.spectrogram_image(mono, rate))
  return len(paths), time.perf_counter() - started


def _stream_figures(model: str, seconds: int, logs: str,
                    tag: str) -> Dict[str, Any]:
  """`predict --stream -` on one core over `seconds` of raw PCM made as it
  is read: wall seconds, real-time factor, the reader's peak RSS."""
  import psutil  # pylint: disable=g-import-not-at-top
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1', TF_CPP_MIN_LOG_LEVEL='3',
             PYTHONPATH=ROOT)
  one_core = ['taskset', '-c', '0'] if shutil.which('taskset') else []
  source = subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'bench', 'pcm_source.py'),
       str(seconds)], stdout=subprocess.PIPE, cwd=ROOT, env=env)
  with open(os.path.join(logs, f'{tag}.log'), 'w', encoding='utf-8') as err:
    started = time.time()
    reader = subprocess.Popen(
        [*one_core, *cli('predict', '--model', model, '--stream', '-')],
        stdin=source.stdout, stdout=subprocess.PIPE, stderr=err, cwd=ROOT,
        env=env, text=True)
    source.stdout.close()
    watched = psutil.Process(reader.pid)
    peak, lines, first = 0, 0, None
    for _ in reader.stdout:
      lines += 1
      if first is None:
        first = time.time() - started
      if lines % 20 == 0:
        try:
          peak = max(peak, watched.memory_info().rss)
        except psutil.Error:
          pass
    reader.wait()
    wall = time.time() - started
  source.wait()
  if reader.returncode != 0:
    raise RuntimeError(f'predict --stream failed; see {tag}.log')
  # The start-up (TensorFlow, the model) is paid once: the rate is over the
  # windows after the first.
  steady = wall - (first or 0.0)
  return {'audio_seconds': seconds, 'windows': lines, 'wall_seconds': wall,
          'first_window_seconds': first,
          'real_time_factor': (seconds - 1) / steady if steady > 0 else None,
          'peak_rss_bytes': peak, 'one_core': bool(one_core)}


def _accuracy(labels: Dict[str, str]) -> float:
  """Share of files whose label is their class folder's name."""
  return sum(label == os.path.basename(os.path.dirname(path))
             for path, label in labels.items()) / len(labels)


def _client_accuracy(model: str, files: List[str]) -> Dict[str, float]:
  """Held-out accuracy of each way to run the pushed version: the image
  model on the NumPy pictures, and MediaPipe Tasks' AudioClassifier on
  `waveform.tflite` alone (its own environment, .venv-mediapipe), each clip
  labelled as `predict` labels it (held-out clips are one window long)."""
  from pipeline.serving import predict  # pylint: disable=g-import-not-at-top
  pushed = predict.PushedModel(model)
  found: Dict[str, float] = {}
  waveform = pushed.waveform
  ours = {f: pushed.predict(f) for f in files}  # the waveform model answers
  pushed.waveform = None  # the image model answers
  found['image model'] = _accuracy({f: pushed.predict(f).label for f in files})
  client = os.path.join(ROOT, '.venv-mediapipe', 'bin', 'python')
  if waveform is None or not os.path.exists(client):
    return found
  ran = subprocess.run(
      [client, os.path.join(ROOT, 'tests', 'mediapipe_client.py'),
       os.path.join(pushed.folder, pushed.waveform_file), 'clips', *files],
      capture_output=True, text=True, check=True, timeout=3600)
  # Each clip labelled from the windows that start within it, and, to show
  # what that rule is worth, from every window MediaPipe gives (its
  # resampler's flush adds a window at the end of a clip of whole windows).
  within, every, extra, differences = {}, {}, 0, []
  for answer in json.loads(ran.stdout.strip().splitlines()[-1]):
    mine = ours[answer['path']].windows or []
    kept = [w for w in answer['windows'] if w['within_clip']]
    differences += [max(abs(a['scores'][k] - b['scores'][k])
                        for k in a['scores'])
                    for a, b in zip(mine, kept)]
    for labels, windows in (
        (within, [w for w in answer['windows'] if w['within_clip']]),
        (every, answer['windows'])):
      best = max(windows, key=lambda w: w['scores'][pushed.positive])
      labels[answer['path']] = max(best['scores'], key=best['scores'].get)
    extra += sum(not w['within_clip'] for w in answer['windows'])
  found['MediaPipe AudioClassifier'] = _accuracy(within)
  found['MediaPipe, every window'] = _accuracy(every)
  found['MediaPipe windows past the end'] = extra
  if differences:
    # Against predict's scores, window by window within the clips.
    differences.sort()
    found['MediaPipe score difference, p95'] = differences[
        int(0.95 * (len(differences) - 1))]
    found['MediaPipe score difference, max'] = float(max(differences))
  return found


def part_audio(data_dir: str, out: str, per_class: int,
               stream_seconds: Tuple[int, int]) -> Dict[str, Any]:
  """Part 11: the audio front end's costs and its promise. Ingest
  throughput at 16 kHz and at 44.1 kHz stereo against a plain SciPy read
  and render loop; a model trained on 16 kHz recordings scored on the same
  held-out clips at 16, 44.1 (stereo) and 48 kHz; `predict --stream` on
  one core over a short and a long stream."""
  from pipeline.data import ingest  # pylint: disable=g-import-not-at-top
  logs = os.path.join(out, 'logs')
  folders = {'16 kHz mono': os.path.join(out, 'wav-16k')}
  shutil.rmtree(folders['16 kHz mono'], ignore_errors=True)
  run_process(cli('synth', '--out', folders['16 kHz mono'], '--per-class',
                  str(per_class), '--format', 'wav'),
              os.path.join(logs, 'audio-synth.log'))
  folders['44.1 kHz stereo'] = os.path.join(out, 'wav-44k-stereo')
  shutil.rmtree(folders['44.1 kHz stereo'], ignore_errors=True)
  _stereo_copies(folders['16 kHz mono'], folders['44.1 kHz stereo'], 44100, 2)
  throughput = {}
  for name, folder in folders.items():
    log(f'part 11: ingest throughput, {name}')
    root = os.path.join(out, f"audio-data-{name.split()[0]}")
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    result = ingest.ingest(folder, root, progress=False)
    ingest_seconds = time.perf_counter() - started
    clips, plain_seconds = _plain_render_seconds(folder)
    throughput[name] = {
        'clips': clips, 'examples': sum(result.counts.values()),
        'ingest_clips_per_second': clips / ingest_seconds,
        'plain_clips_per_second': clips / plain_seconds}
    log(f"  {throughput[name]['ingest_clips_per_second']:.1f} clips/s "
        f"against {throughput[name]['plain_clips_per_second']:.1f}")

  log('part 11: a model trained on the 16 kHz recordings of the default data')
  train_wav = os.path.join(out, 'wav-train')
  shutil.rmtree(train_wav, ignore_errors=True)
  run_process(cli('synth', '--out', train_wav, '--format', 'wav'),
              os.path.join(logs, 'audio-synth-train.log'))
  workspace = os.path.join(out, 'ws-audio')
  shutil.rmtree(workspace, ignore_errors=True)
  trained = pipeline_run(workspace, train_wav, logs, 'audio')
  model = pushed_figures(trained['summary'])['destination']
  held_out = os.path.join(out, 'wav-held-out')
  shutil.rmtree(held_out, ignore_errors=True)
  run_process(cli('synth', '--out', held_out, '--per-class', str(per_class),
                  '--format', 'wav', '--seed-data', '1'),
              os.path.join(logs, 'audio-synth-held-out.log'))
  sets = {'16 kHz mono': held_out}
  for name, rate, channels in (('44.1 kHz stereo', 44100, 2),
                               ('48 kHz mono', 48000, 1)):
    sets[name] = os.path.join(out, f'wav-held-out-{rate}')
    shutil.rmtree(sets[name], ignore_errors=True)
    _stereo_copies(held_out, sets[name], rate, channels)
  accuracy, clients = {}, {}
  for name, folder in sets.items():
    files = sorted(glob.glob(os.path.join(folder, '*', '*.wav')))
    ran = run_process(cli('predict', '--model', model, *files, '--json'),
                      os.path.join(logs, f"audio-predict-{name.split()[0]}"
                                   '.log'))
    answers = json.loads(ran['stdout'])
    accuracy[name] = _accuracy({a['path']: a['label'] for a in answers})
    clients[name] = _client_accuracy(model, files)
    log(f'  held-out accuracy at {name}: {accuracy[name]:.4f} ({clients[name]})')

  streams = {}
  for seconds in stream_seconds:
    log(f'part 11: predict --stream over {seconds} s of audio, one core')
    streams[str(seconds)] = _stream_figures(model, seconds, logs,
                                            f'audio-stream-{seconds}')
    log(f"  real-time factor {streams[str(seconds)]['real_time_factor']:.0f}"
        f"x, peak {streams[str(seconds)]['peak_rss_bytes'] / 2 ** 20:.0f} MiB")
  return {'measured': f'{datetime.date.today()}', 'per_class': per_class,
          'throughput': throughput, 'held_out_accuracy': accuracy,
          'client_accuracy': clients,
          'streams': streams}


def _audio_lines(audio: Dict[str, Any]) -> List[str]:
  """Part 11's section of the report."""
  lines = ['', '## 11. Audio: ingest, rates and streaming', '',
           f"Measured {audio['measured']}. Ingest throughput over "
           f"{2 * audio['per_class']} one-second clips (in process, the "
           'whole ingest: read, resample, windows, spectrogram, PNG, '
           'TFRecord) against a plain loop of SciPy\'s read, our '
           'spectrogram at the file\'s own rate and a PNG (what a notebook '
           'does, without resampling):', '',
           '| recordings | ingest clips/s | plain loop clips/s | ratio |',
           '|---|---|---|---|']
  for name, row in audio['throughput'].items():
    lines.append(f"| {name} | {row['ingest_clips_per_second']:.1f} | "
                 f"{row['plain_clips_per_second']:.1f} | "
                 f"{row['ingest_clips_per_second'] / row['plain_clips_per_second']:.2f} |")
  accuracy = audio['held_out_accuracy']
  clients = audio.get('client_accuracy') or {}
  base = accuracy['16 kHz mono']
  names = sorted({n for row in clients.values() for n in row})
  lines += ['', 'A model trained on the default data as 16 kHz recordings, '
            f"scored by `predict` on {2 * audio['per_class']} held-out "
            'clips (another seed) recorded at each rate, and the same '
            'pushed version run other ways:', '',
            '| held-out clips | `predict` | against 16 kHz | ' +
            ''.join(f'{n} | ' for n in names),
            '|---|---|---|' + '---|' * len(names)]
  for name, value in accuracy.items():
    row = clients.get(name, {})
    lines.append(f'| {name} | {value:.4f} | {value - base:+.4f} | ' + ''.join(
        (f'{row[n]} | ' if isinstance(row[n], int) else f'{row[n]:.4f} | ')
        if n in row else 'n/a | ' for n in names))
  lines += ['', '`predict --stream -` on one core (`taskset -c 0`), reading '
            'raw 16 kHz PCM made as it is read (`bench/pcm_source.py`); '
            'the real-time factor is seconds of audio per second of compute '
            'after the first window (start-up paid once):', '',
            '| audio | windows | wall s | first window s | real-time factor '
            '| peak RSS MiB |', '|---|---|---|---|---|---|']
  for row in audio['streams'].values():
    lines.append(f"| {row['audio_seconds'] / 60:.0f} min | {row['windows']} "
                 f"| {row['wall_seconds']:.1f} | "
                 f"{row['first_window_seconds']:.1f} | "
                 f"{row['real_time_factor']:.0f}x | "
                 f"{row['peak_rss_bytes'] / 2 ** 20:.0f} |")
  return lines


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 11's section of RESULTS.md (none when not measured)."""
  return _audio_lines(results[KEY]) if results.get(KEY) else []


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--audio-per-class', type=int, default=100,
                      help='clips per class of part 11 (default %(default)s)')
  parser.add_argument('--stream-seconds', default='360,3600',
                      help="part 11's stream lengths in seconds (default "
                      '%(default)s)')


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 11; its figures."""
  return part_audio(ctx.data_dir, ctx.out, args.audio_per_class,
                    tuple(int(s) for s in args.stream_seconds.split(',')))
