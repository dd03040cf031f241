"""End to end on recordings (issue: the audio front end): folders of WAV
recordings at 16 kHz, 44.1 kHz stereo and 48 kHz become spans that record
one front end; the window's Examples and the pushed manifest carry it; no
recording has windows in both splits; `predict` gives every window with
its times, on files and on a stream; a window mixing front ends is
refused, naming both spans. The instruments lie in two family folders, so
phase two hears the windows' samples through musicnn, is checked in
KServe's model server and judged with phase one before either push."""

import base64
import glob
import io
import json
import os
import re
import subprocess
import sys
import wave as wave_lib

import numpy as np
import pytest
import tensorflow as tf

import audio_files
from conftest import run_cli
from components import frontend
from components.cloud import push as cloud_push
from components.common import span_layout
from components.ondevice import push
from pipeline.metadata import mlmd
from pipeline.metadata import summary as summary_lib
from pipeline.settings import config as config_lib

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = ['--image-size=32', '--train-steps=40', '--batch-size=16',
            '--model-width=0.25', '--augment=false', '--min-auc=0',
            '--min-accuracy=0', '--max-auc-drop=1', '--max-accuracy-drop=1',
            '--latency-runs=2', '--window-spans=2',
            '--phase-two-head-steps=40', '--phase-two-min-family-recall=0',
            '--phase-two-min-reject-recall=0',
            '--phase-two-min-accuracy=0', '--cascade-max-loss-vs-cloud=1',
            '--cascade-max-cloud-share=1']
SECONDS = 2.5  # three windows of 1 s each, the last padded


def _recordings(folder, per_class=8, families=True):
  """Both classes at three rates: 16 kHz mono, 44.1 kHz stereo, 48 kHz;
  with `families`, the lower chords in instrument/low/, the higher in
  instrument/high/."""
  formats = [(16000, 1, 'i16'), (44100, 2, 'i16'), (48000, 1, 'f32')]
  for label, name in enumerate(('not_instrument', 'instrument')):
    for index in range(per_class):
      family = ('low' if index < per_class // 2 else 'high') if (
          label and families) else ''
      os.makedirs(os.path.join(folder, name, family), exist_ok=True)
      rate, channels, kind = formats[index % 3]
      if label:
        sound = audio_files.chord(SECONDS, rate, base=110 + 30 * index,
                                  seed=index)
      else:
        sound = audio_files.noise(SECONDS, rate, seed=index)
      samples = np.stack([sound] * channels, axis=1)
      with open(os.path.join(folder, name, family,
                             f'{kind}_{rate}_{index}.wav'), 'wb') as f:
        f.write(audio_files.wav_bytes(samples, rate, kind))
  return folder


def _filenames(uri, split):
  names = []
  for path in glob.glob(os.path.join(uri, f'Split-{split}', '*.gz')):
    for record in tf.data.TFRecordDataset(path, compression_type='GZIP'):
      example = tf.train.Example.FromString(record.numpy())
      names.append(example.features.feature['filename']
                   .bytes_list.value[0].decode())
  return names


@pytest.fixture(scope='module')
def audio_run(tmp_path_factory):
  root = tmp_path_factory.mktemp('audio')
  workspace = str(root / 'ws')
  source = _recordings(str(root / 'recordings'))
  code, out, err = run_cli('ingest', '--workspace', workspace, source,
                           '--image-size=32')
  assert code == 0, err
  code, out, err = run_cli('run', '--workspace', workspace, '--json',
                           *SETTINGS)
  assert code == 0, err[-4000:]
  summary = json.loads(out[out.index('{\n'):])
  return {'workspace': workspace, 'source': source, 'summary': summary,
          'config': config_lib.PipelineConfig(workspace=workspace,
                                              image_size=32)}


def test_the_front_end_is_recorded_on_the_span_the_examples_and_the_manifest(
    audio_run):
  config = audio_run['config']
  expected = config.front_end().to_record()
  report = json.loads(open(os.path.join(config.data_root, 'span-1',
                                        'ingest.json')).read())
  assert report['front_end'] == expected
  assert report['counts'] == {'not_instrument': 24, 'instrument': 24}
  store = mlmd.open_store(config.metadata_url(), read_only=True)
  windows = [a for a in store.get_artifacts_by_type('Examples')
             if span_layout.FRONT_END_PROPERTY in a.custom_properties]
  assert windows
  recorded = json.loads(windows[-1].custom_properties[
      span_layout.FRONT_END_PROPERTY].string_value)
  assert recorded == expected
  pushed = audio_run['summary']['pushed']
  assert pushed['pushed'], pushed
  manifest = push.read_manifest(push.resolve_model_dir(
      config.push_destination))
  front_end = manifest.audio_front_end.to_json()
  assert front_end.pop('recorded') is True
  assert front_end == expected
  assert manifest.front_end == frontend.FrontEnd.from_record(expected)
  # The manifest alone says how to make the model's input from audio.
  for key in ('sample_rate', 'window_samples', 'fft_size', 'mel_bands',
              'mel_min_hz', 'mel_max_hz', 'top_db', 'colormap', 'padding'):
    assert key in front_end
  # Beside the image model, the waveform model, proved and listed.
  wave = manifest.waveform
  assert wave.file == 'waveform.tflite', wave
  assert wave.proof['front_end_max_pixel_error'] <= 2
  assert wave.proof['agreement'] == 1.0
  assert wave.proof['input']['shape'] == [1, 16000]
  assert manifest.files['waveform.tflite'] == wave.sha256
  artifact = store.get_artifacts_by_type('PushedModel')[-1]
  assert artifact.custom_properties['waveform_bytes'].int_value == (
      wave.proof['bytes'])
  # Proved on the span's own eval windows too: every window of the 16
  # recordings (three each) kept its samples, those in eval were used.
  assert report['samples'] == {'windows': 48, 'every_window': True,
                               'bytes': 48 * 2 * 16000}
  assert report['proof_windows'] == {'windows': 16, 'limit': 256,
                                     'bytes': 16 * 2 * 16000}
  assert 0 < wave.proof['eval_windows'] < 48, wave
  assert wave.proof['eval_front_end_max_pixel_error'] <= 2
  # As --max-accuracy-drop=1 allows.
  assert wave.proof['eval_accuracy_drop'] <= 1
  for name in ('eval_agreement', 'eval_accuracy', 'eval_accuracy_drop'):
    assert f'waveform_{name}' in artifact.custom_properties, name
  assert artifact.custom_properties['waveform_eval_windows'].int_value == (
      wave.proof['eval_windows'])


def test_phase_two_hears_the_windows_and_is_served_them(audio_run):
  found = audio_run['summary']['phase_two']
  assert found['classes'] == ['not_instrument', 'high', 'low']
  # Blessed on what it is for, both figures recorded by its Evaluator,
  # each what its confusion matrix gives.
  reject, *families = found['classes']
  named = [found['recall'][name] for name in families
           if found['recall'][name] is not None]
  assert found['metrics']['mean_family_recall'] == pytest.approx(
      sum(named) / len(named), abs=1e-3), found
  assert found['metrics']['reject_recall'] == pytest.approx(
      found['recall'][reject], abs=1e-3), found
  loaded = tf.saved_model.load(found['model_path'])
  assert 'serving_waveform' in loaded.signatures
  # KServe's model server answered windows of PCM as the SavedModel does.
  check = found['serving_check']
  assert (check['blessed'], check['server']) == (1, 'kserve'), check
  assert check['server_max_score_difference'] <= 1e-4
  served = cloud_push.read_manifest(found['pushed']['pushed_destination'])
  assert served.request == 'audio_pcm'
  assert found['cascade']['accuracy_pi_0.2'] is not None


def test_no_recording_has_windows_in_both_splits(audio_run):
  store = mlmd.open_store(audio_run['config'].metadata_url(), read_only=True)
  window = [a for a in store.get_artifacts_by_type('Examples')
            if span_layout.FRONT_END_PROPERTY in a.custom_properties][-1]
  train, evaluation = (_filenames(window.uri, split)
                       for split in ('train', 'eval'))
  assert train and evaluation
  assert not set(train) & set(evaluation)
  for name in set(train) | set(evaluation):
    assert (train + evaluation).count(name) == 3, name


def test_predict_lists_every_window_of_each_recording(audio_run):
  source = audio_run['source']
  files = [os.path.join(source, 'instrument', 'low', 'i16_44100_1.wav'),
           os.path.join(source, 'not_instrument', 'f32_48000_2.wav')]
  # Two files and the model folder left to its default: both are files.
  code, out, err = run_cli('predict', '--workspace', audio_run['workspace'],
                           *files, '--json')
  assert code == 0, err
  answers = json.loads(out)
  assert [a['path'] for a in answers] == files
  for answer in answers:
    assert [(w['start'], w['end']) for w in answer['windows']] == [
        (0.0, 1.0), (1.0, 2.0), (2.0, 2.5)]
    assert isinstance(answer['segments'], list)
    # The recording is answered by the mean of its windows, the rule its
    # version records.
    mean = np.mean([w['scores']['instrument'] for w in answer['windows']])
    assert answer['scores']['instrument'] == pytest.approx(mean, abs=1e-6)
    # The waveform model answered: what the device runs.
    assert answer['model'] == 'waveform.tflite'
    assert {w['model'] for w in answer['windows']} == {'waveform.tflite'}
  # The older form, model folder first, and the flag give the same.
  model = audio_run['config'].push_destination
  for args in ([model, *files], ['--model', model, *files]):
    code, out, err = run_cli('predict', *args, '--json')
    assert code == 0, err
    assert json.loads(out) == answers


def test_the_stream_decides_the_windows_predict_gives(audio_run):
  path = os.path.join(audio_run['source'], 'instrument', 'low',
                      'i16_44100_1.wav')
  model = audio_run['config'].push_destination
  code, out, err = run_cli('predict', '--model', model, path, '--json')
  assert code == 0, err
  windows = json.loads(out)[0]['windows']
  code, out, err = run_cli('predict', '--model', model, '--stream', path,
                           '--json')
  assert code == 0, err
  assert [json.loads(line) for line in out.splitlines()] == windows
  # Raw 16-bit PCM on standard input, as a microphone gives it.
  from pipeline.data import spectrogram  # pylint: disable=g-import-not-at-top
  with open(path, 'rb') as f:
    data = f.read()
  header = spectrogram.read_wav_header(open(path, 'rb'))
  pcm = data[header.data_offset:header.data_offset +
             header.frames * header.block_align]
  ran = subprocess.run(
      [sys.executable, '-m', 'pipeline', 'predict', '--model', model,
       '--stream', '-', '--input-rate', '44100', '--input-channels', '2',
       '--json'], input=pcm, cwd=ROOT, capture_output=True, timeout=600,
      check=False)
  assert ran.returncode == 0, ran.stderr[-3000:]
  assert [json.loads(line) for line in ran.stdout.splitlines()] == windows


def test_a_window_of_spans_drawn_differently_is_refused(audio_run,
                                                        tmp_path):
  source = _recordings(str(tmp_path / 'more'), per_class=3)
  code, _, err = run_cli('ingest', '--workspace', audio_run['workspace'],
                         source, '--image-size=32', '--sample-rate=22050')
  assert code == 0, err
  code, _, err = run_cli('run', '--workspace', audio_run['workspace'],
                         *SETTINGS)
  assert code != 0
  assert 'span 1 and span 2 differ in sample_rate 16000 against 22050' in err
  assert 'ingest the recordings of span 1 again' in err


MEDIAPIPE = os.path.join(ROOT, '.venv-mediapipe', 'bin', 'python')


def _mediapipe(model, mode, *files):
  """MediaPipe Tasks' AudioClassifier in its own environment."""
  assert os.path.exists(MEDIAPIPE), (
      'no .venv-mediapipe: make test makes it (scripts/ensure_mediapipe.sh)')
  ran = subprocess.run(
      [MEDIAPIPE, os.path.join(ROOT, 'tests', 'mediapipe_client.py'), model,
       mode, *files], capture_output=True, text=True, timeout=600,
      check=False, env={'PATH': os.environ.get('PATH', '')})
  assert ran.returncode == 0, ran.stderr[-3000:]
  return json.loads(ran.stdout.strip().splitlines()[-1])


def _agree(ours, theirs, where, threshold):
  """One window's answer from predict and from MediaPipe, on the same
  samples. MediaPipe lists a class only when its score reaches the score
  threshold the version's metadata records, phase one's threshold, so
  `instrument` is listed where predict flags the window. The two runtimes'
  kernels (LiteRT's, MediaPipe's own) quantize the dynamic-range layers'
  activations on the fly and may round them a step apart, which this
  briefly trained model turns into score differences that vary with its
  training (0.0203 was seen once against the 0.02 this test held). So the
  scores MediaPipe lists agree with predict's within 0.05, a class it
  leaves out scores under the threshold (within 0.05), and `instrument` is
  listed exactly where predict flags the window wherever predict's score is
  0.1 or more from the threshold, which no rounding step crosses."""
  for label, score in ours['scores'].items():
    if label in theirs['scores']:
      assert abs(score - theirs['scores'][label]) < 0.05, (where, ours,
                                                           theirs)
      # MediaPipe read the threshold: it lists nothing under it.
      assert theirs['scores'][label] >= threshold - 1e-6, (where, theirs)
    else:
      assert score < threshold + 0.05, (where, threshold, ours, theirs)
  positive = list(ours['scores'])[-1]
  if abs(ours['scores'][positive] - threshold) >= 0.1:
    assert (positive in theirs['scores']) == (ours['label'] == positive), (
        where, threshold, ours, theirs)


def test_mediapipe_audio_classifier_runs_the_waveform_model_as_predict_does(
    audio_run):
  config = audio_run['config']
  folder = push.resolve_model_dir(config.push_destination)
  model = os.path.join(folder, 'waveform.tflite')
  source = audio_run['source']
  files = [os.path.join(source, 'not_instrument', 'i16_16000_0.wav'),
           os.path.join(source, 'instrument', 'low', 'i16_16000_3.wav'),
           os.path.join(source, 'instrument', 'low', 'i16_44100_1.wav'),
           os.path.join(source, 'not_instrument', 'i16_44100_4.wav')]
  # Two whole windows at 44.1 kHz: MediaPipe's resampler flushes a few
  # samples past the end, which make a third window holding none of the
  # clip; it is marked, and the windows within the clip are predict's.
  whole = os.path.join(os.path.dirname(source), 'whole_44100.wav')
  with open(whole, 'wb') as f:
    f.write(audio_files.wav_bytes(np.stack(
        [audio_files.chord(2.0, 44100, base=200)] * 2, axis=1), 44100))
  files.append(whole)
  threshold = push.read_manifest(folder).decision_threshold
  assert threshold is not None
  code, out, err = run_cli('predict', '--model', folder, *files, '--json')
  assert code == 0, err
  ours = json.loads(out)
  assert {answer['threshold'] for answer in ours} == {threshold}
  theirs = _mediapipe(model, 'clips', *files)
  assert [w['within_clip'] for w in theirs[-1]['windows']] == [
      True, True, False], theirs[-1]
  for mine, other in zip(ours, theirs):
    assert [int(1000 * w['start']) for w in mine['windows']] == [
        w['timestamp_ms'] for w in other['windows'] if w['within_clip']], other
    # At 16 kHz nothing is resampled: the same model on the same samples.
    # At 44.1 kHz MediaPipe resamples with its own filter, which moves this
    # small test model's scores by up to 0.23: the windows must be the same,
    # and bench part 11 measures what its resampler costs in accuracy.
    if '16000' not in mine['path']:
      continue
    for a, b in zip(mine['windows'], other['windows']):
      _agree(a, b, mine['path'], threshold)

  # Stream mode over a recording of several windows, fed a quarter of a
  # second at a time: the windows `predict --stream` decides.
  recording = os.path.join(os.path.dirname(source), 'recording.wav')
  parts = [audio_files.chord(1.0, 16000, base=150), audio_files.noise(
      1.0, 16000, seed=5), audio_files.chord(1.0, 16000, base=300),
           audio_files.noise(1.0, 16000, seed=6)]
  with open(recording, 'wb') as f:
    f.write(audio_files.wav_bytes(np.concatenate(parts), 16000))
  code, out, err = run_cli('predict', '--model', folder, '--stream',
                           recording, '--json')
  assert code == 0, err
  streamed = [json.loads(line) for line in out.splitlines()]
  assert len(streamed) == 4
  windows = _mediapipe(model, 'stream', recording)[0]['windows']
  assert [w['timestamp_ms'] for w in windows] == [0, 1000, 2000, 3000]
  for a, b in zip(streamed, windows):
    _agree(a, b, recording, threshold)


def test_the_report_and_inspect_show_both_models(audio_run):
  workspace = audio_run['workspace']
  manifest = push.read_manifest(push.resolve_model_dir(
      audio_run['config'].push_destination))
  wave = manifest.waveform
  code, out, err = run_cli('report', '--workspace', workspace)
  assert code == 0, err
  with open(out.strip().splitlines()[-1], encoding='utf-8') as f:
    page = f.read()
  # Each misclassified window plays, at the recorded front end's rate.
  wrong = int(re.search(r'Misclassified eval examples at [0-9.]+: (\d+) of',
                        page).group(1))
  heard = re.findall(r'<audio controls preload="none" src="data:audio/wav;'
                     r'base64,([^"]+)"', page)
  assert len(heard) == min(wrong, 12)
  for clip in heard:
    with wave_lib.open(io.BytesIO(base64.b64decode(clip))) as played:
      assert played.getframerate() == manifest.front_end.sample_rate
      assert played.getnframes() == manifest.front_end.window_samples
  section = page[page.index('<section id="tflite">'):]
  section = section[:section.index('</section>')]
  assert 'Waveform models' in section
  assert str(wave.proof['bytes']) in section
  assert str(manifest.validation['tflite_bytes']) in section
  assert str(wave.proof['eval_windows']) in section
  code, out, err = run_cli('inspect', 'metrics', '--workspace', workspace)
  assert code == 0, err
  rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
          if line.strip()}
  assert rows['waveform_bytes'] == [str(wave.proof['bytes'])], out
  assert rows['pushed_bytes'] == [str(manifest.bytes)], out
  assert 'waveform_eval_agreement' in rows and 'waveform_latency_ms_median' in rows
  # Phase one's threshold, as its manifest holds it, and the pair's figures.
  assert float(rows['threshold'][0]) == pytest.approx(
      manifest.decision_threshold, abs=1e-4), out
  assert 'cascade accuracy at 20% instruments' in out, out
  assert 'cascade cloud share at 20% instruments' in out, out
  # Phase one's evaluation by family (TFMA slices): both families of the
  # eval split, no kind (the other sounds lie in their class folder).
  found = {line.split(':')[0]: float(line.split()[-1])
           for line in out.splitlines() if ': found at 0.5' in line}
  assert set(found) == {'family low', 'family high'}, out
  assert all(0.0 <= share <= 1.0 for share in found.values())
  assert 'flagged at 0.5' not in out
  sliced = page[page.index('TFMA slices, at 0.5'):]
  sliced = sliced[:sliced.index('</table>')]
  for name, share in found.items():
    assert name in sliced and f'{share:.4f} found' in sliced, sliced
  # And the run's own summary says it in a line.
  text = summary_lib.format_summary(audio_run['summary'])
  assert (f"Waveform model: {wave.proof['bytes']:,} bytes" in text and
          f"on {wave.proof['eval_windows']} eval windows" in text), text


def test_int8_pushes_a_waveform_model_calibrated_on_the_spans_windows(
    audio_run, tmp_path):
  # A workspace of its own: the tests above add spans to theirs.
  workspace = str(tmp_path / 'ws')
  source = _recordings(str(tmp_path / 'flat'), families=False)
  code, out, err = run_cli('ingest', '--workspace', workspace, source,
                           '--image-size=32')
  assert code == 0, err
  code, out, err = run_cli('run', '--workspace', workspace, '--json',
                           *SETTINGS, '--quantization=int8')
  assert code == 0, err[-4000:]
  assert 'no waveform model' not in out + err
  folder = push.resolve_model_dir(config_lib.PipelineConfig(
      workspace=workspace, image_size=32).push_destination)
  manifest = push.read_manifest(folder)
  assert manifest.quantization == 'int8'
  wave = manifest.waveform
  assert wave.file == 'waveform.tflite', wave
  assert wave.proof['eval_windows'] > 0
  assert wave.proof['eval_front_end_max_pixel_error'] <= 2
  assert wave.proof['front_end_max_pixel_error'] <= 2
  with open(os.path.join(folder, 'waveform.tflite'), 'rb') as f:
    interpreter = tf.lite.Interpreter(model_content=f.read())
  assert interpreter.get_input_details()[0]['dtype'] == np.float32
  assert interpreter.get_output_details()[0]['dtype'] == np.float32
  assert any(d['dtype'] == np.int8 for d in interpreter.get_tensor_details())
