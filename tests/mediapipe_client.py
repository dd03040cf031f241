"""MediaPipe Tasks' AudioClassifier on a waveform model, as an app runs it.

Run with .venv-mediapipe's Python (scripts/ensure_mediapipe.sh), never
beside TensorFlow. Usage:

  python tests/mediapipe_client.py MODEL clips FILE...
  python tests/mediapipe_client.py MODEL stream FILE

Reads each WAV file with the standard library and NumPy only, hands
MediaPipe the samples at the file's own rate and channels (it downmixes,
resamples and cuts windows itself), and prints JSON: per file, its
duration (ms) and every result's timestamp (ms), scores by label and
whether it starts within the clip.

In clips mode MediaPipe's resampler (audio_dsp's QResampler) flushes its
filter at the end of the clip: a few samples more than the clip holds. A
resampled clip that fills whole windows therefore gets one more window,
starting at the clip's end and holding only that filter tail padded with
zeros. Such windows are marked `within_clip: false`; an app should drop
them, as the tests and bench part 11 do: they hold none of the clip's
sound.
"""

import json
import sys
import wave

import numpy as np
from mediapipe.tasks import python as mp_python
from mediapipe.tasks.python import audio
from mediapipe.tasks.python.components.containers import audio_data


def read(path):
  with wave.open(path, 'rb') as f:
    rate, channels = f.getframerate(), f.getnchannels()
    assert f.getsampwidth() == 2, 'the test writes 16-bit WAV'
    pcm = np.frombuffer(f.readframes(f.getnframes()), '<i2')
  samples = pcm.astype(np.float32) / 32768.0
  return samples.reshape(-1, channels) if channels > 1 else samples, rate


def answer(path, samples, rate, windows):
  """One file's answer: its windows, each marked by whether it starts
  before the clip's end."""
  duration = 1000.0 * len(samples) / rate
  return {'path': path, 'duration_ms': duration, 'windows': [
      dict(w, within_clip=w['timestamp_ms'] < duration) for w in windows]}


def scores(result):
  return {c.category_name: float(c.score)
          for c in result.classifications[0].categories}


def clips(model, paths):
  options = audio.AudioClassifierOptions(
      base_options=mp_python.BaseOptions(model_asset_path=model),
      running_mode=audio.RunningMode.AUDIO_CLIPS, max_results=-1)
  answers = []
  with audio.AudioClassifier.create_from_options(options) as classifier:
    for path in paths:
      samples, rate = read(path)
      results = classifier.classify(
          audio_data.AudioData.create_from_array(samples, rate))
      answers.append(answer(path, samples, rate, [
          {'timestamp_ms': r.timestamp_ms, 'scores': scores(r)}
          for r in results]))
  return answers


def stream(model, path):
  got = []
  options = audio.AudioClassifierOptions(
      base_options=mp_python.BaseOptions(model_asset_path=model),
      running_mode=audio.RunningMode.AUDIO_STREAM, max_results=-1,
      result_callback=lambda result, timestamp: got.append(
          {'timestamp_ms': timestamp, 'scores': scores(result)}))
  samples, rate = read(path)
  block = rate // 4  # a quarter of a second at a time, as a microphone
  with audio.AudioClassifier.create_from_options(options) as classifier:
    for start in range(0, len(samples), block):
      piece = samples[start:start + block]
      classifier.classify_async(
          audio_data.AudioData.create_from_array(piece, rate),
          int(1000 * start / rate))
  return [answer(path, samples, rate, got)]


def main(argv):
  model, mode, paths = argv[0], argv[1], argv[2:]
  answers = clips(model, paths) if mode == 'clips' else stream(model, paths[0])
  print(json.dumps(answers))


if __name__ == '__main__':
  main(sys.argv[1:])
