"""The device side's cost: `predict` on one recording, and on the longest
recording the README promises, against the same work through TensorFlow.

`python bench/device_side.py [--model DIR] [--rounds N] [--json OUT]`
times, in interleaved rounds, fresh processes that each report their wall
time and peak resident memory:

- `predict`: `python -m pipeline predict --model DIR clip.wav`, LiteRT's
  interpreter, no TensorFlow;
- `tensorflow`: what `predict` cost before it moved to LiteRT: the same
  windows run by TensorFlow's `tf.lite.Interpreter` after `import
  tensorflow` (its import was nearly all of the old cost);
- `longest`: `predict` and `predict --stream` on 10 min at 192 kHz, stereo,
  16-bit (a 461 MB WAV), which read a block at a time, and `ingest` of it
  (beside two short clips), which keeps the clip at the front end's rate.

Targets: `predict` under 1 s and 150 MB on one recording. Seconds vary with
this machine's load; the ratio to `tensorflow` in one run does not.
Without `--model` a small version (image and waveform models, the default
front end) is pushed first.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = {'seconds': 1.0, 'peak_mib': 150.0}
# Runs argv in this process and prints its wall time and peak memory.
_PROBE = '''
import json, sys, time
started = time.perf_counter()
mode, argv = sys.argv[1], sys.argv[2:]
if mode == 'tensorflow':
  import numpy as np
  import tensorflow as tf
  from components.ondevice import model_folder
  from components.frontend import windowing
  from pipeline.data import spectrogram
  version = model_folder.open_version(argv[0])
  front_end = version.front_end
  interpreter = tf.lite.Interpreter(model_path=f"{version.folder}/"
                                    f"{version.waveform_file}")
  interpreter.allocate_tensors()
  source = interpreter.get_input_details()[0]['index']
  with open(argv[1], 'rb') as f:
    audio, rate, _ = spectrogram.read_audio(f, argv[1])
  for _, _, window in windowing.sample_windows(audio, rate, front_end, 0):
    interpreter.set_tensor(source, window[None].astype(np.float32))
    interpreter.invoke()
  code = 0
else:
  import contextlib, io
  from pipeline.cli import commands
  with contextlib.redirect_stdout(io.StringIO()):
    code = commands.main(argv)
# VmHWM, the peak of this program's own memory: ru_maxrss would also count
# what the parent held when it forked.
with open('/proc/self/status') as status:
  peak = next(int(line.split()[1]) for line in status
              if line.startswith('VmHWM:'))
print(json.dumps({'code': code, 'seconds': time.perf_counter() - started,
                  'peak_mib': peak / 1024,
                  'tensorflow': 'tensorflow' in sys.modules}))
'''


def _version(folder: str) -> str:
  """Pushes a small image model and waveform model to `folder`."""
  sys.path.insert(0, os.path.join(ROOT, 'tests'))
  import device_fuzz  # pylint: disable=g-import-not-at-top
  return device_fuzz.write_version(folder)


def _wav(path: str, seconds: float, rate: int, channels: int) -> None:
  """A tone with noise as a 16-bit WAV, written a minute at a time."""
  import wave  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  with wave.open(path, 'wb') as out:
    out.setnchannels(channels)
    out.setsampwidth(2)
    out.setframerate(rate)
    for start in range(0, int(seconds * rate), 60 * rate):
      t = (start + np.arange(min(60 * rate, int(seconds * rate) - start))
           ) / rate
      sound = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(
          t.size)
      frames = np.repeat(sound[:, None], channels, axis=1)
      out.writeframes(np.round(frames * 32767).astype('<i2').tobytes())


def _run(mode: str, argv: List[str]) -> Dict[str, float]:
  env = dict(os.environ, PYTHONPATH=ROOT, TF_USE_LEGACY_KERAS='1',
             TF_CPP_MIN_LOG_LEVEL='3')
  done = subprocess.run([sys.executable, '-c', _PROBE, mode, *argv],
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        check=False)
  try:
    result = json.loads(done.stdout.strip().splitlines()[-1])
  except (IndexError, ValueError) as e:
    raise SystemExit(f'{mode} failed:\n{done.stderr[-2000:]}') from e
  if result['code']:
    raise SystemExit(f'{mode} exited {result["code"]}:\n{done.stderr}')
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', default='')
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--json', help='also write the figures to this file')
  args = parser.parse_args()
  work = tempfile.mkdtemp(prefix='device-bench-')
  model = args.model or _version(os.path.join(work, 'pushed'))
  clip = os.path.join(work, 'clip.wav')
  _wav(clip, 3.0, 44100, 2)
  rows: Dict[str, List[Dict[str, float]]] = {'predict': [], 'tensorflow': []}
  for _ in range(args.rounds):
    rows['predict'].append(_run('predict', ['predict', '--model', model,
                                            clip]))
    rows['tensorflow'].append(_run('tensorflow', [model, clip]))
  longest = os.path.join(work, 'longest.wav')
  _wav(longest, 600.0, 192000, 2)
  for mode, extra in (('longest', []), ('longest --stream', ['--stream'])):
    rows[mode] = [_run('predict', ['predict', '--model', model, longest,
                                   *extra])]
  # Ingest decodes it whole at the front end's rate (10 min at 16 kHz).
  data = os.path.join(work, 'data')
  for name in ('not_instrument', 'instrument'):
    os.makedirs(os.path.join(data, name))
    os.link(clip, os.path.join(data, name, 'clip.wav'))
  os.rename(longest, os.path.join(data, 'instrument', 'longest.wav'))
  rows['longest ingest'] = [_run('predict', [
      'ingest', '--workspace', os.path.join(work, 'ws'), data])]
  os.remove(os.path.join(data, 'instrument', 'longest.wav'))
  figures = {name: {'seconds': statistics.median(r['seconds'] for r in runs),
                    'peak_mib': max(r['peak_mib'] for r in runs),
                    'tensorflow_imported': any(r['tensorflow'] for r in runs),
                    'runs': len(runs)} for name, runs in rows.items()}
  figures['ratio_seconds'] = (figures['predict']['seconds'] /
                              figures['tensorflow']['seconds'])
  figures['ratio_peak_mib'] = (figures['predict']['peak_mib'] /
                               figures['tensorflow']['peak_mib'])
  figures['targets'] = TARGETS
  print('| run | median s | peak MiB | TensorFlow imported |')
  print('|---|---|---|---|')
  for name in rows:
    row = figures[name]
    print(f"| {name} | {row['seconds']:.2f} | {row['peak_mib']:.0f} | "
          f"{row['tensorflow_imported']} |")
  print(f"predict / tensorflow: {figures['ratio_seconds']:.3f} of the time, "
        f"{figures['ratio_peak_mib']:.3f} of the memory; targets: under "
        f"{TARGETS['seconds']:g} s and {TARGETS['peak_mib']:g} MiB "
        f"({'met' if figures['predict']['seconds'] < TARGETS['seconds'] and figures['predict']['peak_mib'] < TARGETS['peak_mib'] else 'missed'})")
  if args.json:
    with open(args.json, 'w', encoding='utf-8') as f:
      json.dump(figures, f, indent=2)


if __name__ == '__main__':
  main()
