"""The device side (`predict`, `predict --stream`, the model folder) as
hardened as ingest: every hostile recording, stream setting, source and
model folder ends in one line, a non-zero exit, no traceback, no crash and
no hang; and it runs on LiteRT without TensorFlow."""

import dataclasses
import hashlib
import io
import itertools
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import audio_files
import device_fuzz
from components import frontend

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.path.join(
    REPO_ROOT, 'tests'))


@pytest.fixture(scope='module')
def version(tmp_path_factory):
  """A pushed version with an image model and a waveform model."""
  return device_fuzz.write_version(
      str(tmp_path_factory.mktemp('device') / 'pushed'))


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
  path = tmp_path_factory.mktemp('clips') / 'tone.wav'
  path.write_bytes(device_fuzz.seed_recordings()['mono16.wav'][1])
  return str(path)


def _cli(*argv, stdin=None, shell_suffix='', timeout=120):
  """Runs `python -m pipeline ...`; (exit code, stdout, stderr)."""
  command = [sys.executable, '-m', 'pipeline', *argv]
  if shell_suffix:
    done = subprocess.run(
        ['bash', '-c', ' '.join(f"'{part}'" for part in command) +
         shell_suffix], env=ENV, capture_output=True, text=True,
        timeout=timeout, cwd=REPO_ROOT, check=False)
  else:
    done = subprocess.run(command, env=ENV, input=stdin,
                          capture_output=True, timeout=timeout,
                          cwd=REPO_ROOT, check=False)
    return (done.returncode, done.stdout.decode(errors='replace'),
            done.stderr.decode(errors='replace'))
  return done.returncode, done.stdout, done.stderr


def _one_line(err):
  lines = [line for line in err.splitlines() if line.strip()]
  assert len(lines) == 1, err
  assert 'Traceback' not in err and 'traceback' not in err, err
  return lines[0]


def _copy(version, tmp_path):
  folder = str(tmp_path / 'copy')
  shutil.copytree(version, folder)
  return folder


def _manifest(folder, change=None):
  path = os.path.join(folder, 'manifest.json')
  with open(path, encoding='utf-8') as f:
    manifest = json.load(f)
  if change:
    change(manifest)
    with open(path, 'w', encoding='utf-8') as f:
      json.dump(manifest, f)
  return manifest


def _rewrite(folder, name, data):
  with open(os.path.join(folder, name), 'wb') as f:
    f.write(data)
  digest = hashlib.sha256(data).hexdigest()

  def change(manifest):
    manifest['files'][name] = digest
    if name == manifest['model_file']:
      manifest['sha256'] = digest
    if name == manifest['waveform']['file']:
      manifest['waveform']['sha256'] = digest

  _manifest(folder, change)


def test_predict_and_stream_run_on_litert_without_tensorflow(version, clip,
                                                             tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = tmp_path / 'photo.jpg'
  Image.fromarray(np.random.default_rng(0).integers(
      0, 255, (90, 70, 3), dtype=np.uint8)).save(image)
  probe = (
      'import json, sys\n'
      'from pipeline.cli import commands\n'
      'code = commands.main(sys.argv[1:])\n'
      'heavy = sorted(m for m in sys.modules if m.split(".")[0] in '
      '("tensorflow", "tfx", "tf_keras", "keras", "apache_beam"))\n'
      'print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)\n')
  for argv in (['predict', '--model', version, clip, str(image), '--json'],
               ['predict', '--model', version, clip, '--stream']):
    done = subprocess.run([sys.executable, '-c', probe, *argv], env=ENV,
                          capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT, check=False)
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result == {'code': 0, 'heavy': []}, done.stderr[-2000:]
    assert 'litert' in done.stdout or 'quiet' in done.stdout or (
        'loud' in done.stdout), done.stdout


def test_a_waveform_model_answers_recordings_and_the_image_model_images(
    version, clip, tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = tmp_path / 'photo.png'
  Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(image)
  code, out, err = _cli('predict', '--model', version, clip, str(image),
                        '--json')
  assert code == 0, err
  results = json.loads(out)
  assert results[0]['model'] == 'waveform.tflite'
  assert [w['start'] for w in results[0]['windows']] == [0.0, 1.0]
  assert results[1]['model'] == 'model.tflite'


@pytest.mark.parametrize('damage, names', [
    # A truncated waveform model in a manifest without a files list: its
    # own sha256 still holds it (once a segmentation fault).
    ('legacy_truncated_waveform', ('waveform.tflite', 'SHA-256')),
    ('labels_against_output', ('labels.txt', '[1, 3]')),
    ('no_input', ('manifest.json', "'input.image_size'")),
    ('truncated_model_rehashed', ('model.tflite', 'LiteRT')),
    ('no_digest', ('waveform.tflite', 'no SHA-256')),
    ('outside_the_folder', ('manifest.json', "'../model.tflite'")),
    ('waveform_against_front_end', ('waveform.tflite', '[1, 22050]')),
    ('not_json', ('manifest.json', 'not JSON')),
    ('front_end_against_image', ('manifest.json', '64 frames of')),
    ('bands_against_image', ('manifest.json', "mel_bands' is 64; its "
                                              'settings give 32')),
])
def test_a_damaged_model_folder_is_refused_in_one_line(version, clip,
                                                       tmp_path, damage,
                                                       names):
  folder = _copy(version, tmp_path)
  read = lambda name: open(os.path.join(folder, name), 'rb').read()  # pylint: disable=unnecessary-lambda-assignment,consider-using-with
  if damage == 'legacy_truncated_waveform':
    data = read('waveform.tflite')
    with open(os.path.join(folder, 'waveform.tflite'), 'wb') as f:
      f.write(data[:len(data) // 2])
    _manifest(folder, lambda m: m.pop('files'))
  elif damage == 'labels_against_output':
    _rewrite(folder, 'labels.txt', b'a\nb\nc\n')
    _manifest(folder, lambda m: m.pop('class_names'))
  elif damage == 'no_input':
    _manifest(folder, lambda m: m.pop('input'))
  elif damage == 'truncated_model_rehashed':
    _rewrite(folder, 'model.tflite', read('model.tflite')[:600])
  elif damage == 'no_digest':
    _manifest(folder, lambda m: (m.pop('files'), m['waveform'].pop(
        'sha256')))
  elif damage == 'outside_the_folder':
    _manifest(folder, lambda m: m.update(model_file='../model.tflite'))
  elif damage == 'waveform_against_front_end':
    # A whole front end of another rate (every field agreeing), which
    # the waveform model does not take.
    _manifest(folder, lambda m: m['input'].update(audio_front_end=dict(
        dataclasses.replace(frontend.FrontEnd.from_record(
            m['input']['audio_front_end']), sample_rate=22050).to_record(),
        recorded=True)))
  elif damage == 'front_end_against_image':
    _manifest(folder, lambda m: m['input']['audio_front_end'].update(
        frames=64))
  elif damage == 'bands_against_image':
    _manifest(folder, lambda m: m['input']['audio_front_end'].update(
        mel_bands=64))
  elif damage == 'not_json':
    with open(os.path.join(folder, 'manifest.json'), 'w') as f:
      f.write('{"model_file": ')
  for argv in (['predict', '--model', folder, clip],
               ['predict', '--model', folder, clip, '--stream']):
    code, _, err = _cli(*argv)
    line = _one_line(err)
    assert code == 2, err
    assert folder in line and all(name in line for name in names), line


def test_stream_settings_are_checked_where_the_command_line_is_read(
    version):
  cases = [('--input-rate', '0'), ('--input-rate', '-1'),
           ('--input-rate', '1'), ('--input-rate', '1000000000'),
           ('--input-channels', '0'), ('--input-channels', '-1'),
           ('--input-channels', '65')]
  for flag, value in cases:
    code, out, err = _cli('predict', '--model', version, '--stream', '-',
                          flag, value, stdin=b'\0' * 64000)
    line = _one_line(err)
    assert code == 2 and f'{flag} {value}' in line and not out, err


def test_stdin_empty_or_closed_is_said_in_one_line(version):
  code, _, err = _cli('predict', '--model', version, '--stream', '-',
                      stdin=b'')
  assert code == 2 and 'the input is empty' in _one_line(err), err
  code, _, err = _cli('predict', '--model', version, '--stream', '-',
                      shell_suffix=' <&-')
  assert code == 2 and 'standard input is closed' in _one_line(err), err


def test_special_sources_are_refused_by_name_and_never_hang(version, clip,
                                                            tmp_path):
  fifo = tmp_path / 'fifo'
  os.mkfifo(fifo)
  dangling = tmp_path / 'dangling.wav'
  os.symlink(tmp_path / 'nowhere.wav', dangling)
  loop = tmp_path / 'loop.wav'
  os.symlink(loop, loop)
  sources = {str(tmp_path): 'a directory', str(fifo): 'a FIFO',
             str(dangling): 'a link that leads nowhere',
             str(loop): 'a loop of symbolic links', '/dev/zero':
             'a character device'}
  for path, what in sources.items():
    code, _, err = _cli('predict', '--model', version, path, '--stream',
                        timeout=60)
    line = _one_line(err)
    assert code == 2 and path in line and what in line, err
    code, _, err = _cli('predict', '--model', version, clip, path,
                        timeout=60)
    line = _one_line(err)
    assert code == 1 and path in line and what in line, err


def test_nan_samples_and_short_or_endless_files(version, tmp_path):
  sound = audio_files.chord(2.0, 16000)
  sound[20000] = np.nan
  nan = tmp_path / 'nan.wav'
  nan.write_bytes(audio_files.wav_bytes(sound, 16000, 'f32'))
  code, out, err = _cli('predict', '--model', version, str(nan))
  assert code == 1 and 'NaN or infinite samples at 1.' in _one_line(err), err
  assert not out
  code, out, err = _cli('predict', '--model', version, str(nan), '--stream')
  assert code == 2 and 'NaN or infinite samples' in _one_line(err), err
  # A FLAC whose header leaves the length unknown is counted as decoded.
  import soundfile  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  soundfile.write(buffer, audio_files.chord(2.5, 16000), 16000,
                  format='FLAC')
  data = bytearray(buffer.getvalue())
  data[21] &= 0xF0  # STREAMINFO's 36-bit total samples: 0, unknown.
  data[22:26] = b'\0\0\0\0'
  unknown = tmp_path / 'unknown.flac'
  unknown.write_bytes(bytes(data))
  # The canary of spectrogram's shim: soundfile's own reads lose the end.
  with soundfile.SoundFile(str(unknown)) as opened, pytest.raises(
      Exception, match='psf_fseek'):
    while len(opened.read(4000)):
      pass
  for stream in ([], ['--stream']):
    code, out, err = _cli('predict', '--model', version, str(unknown),
                          '--json', *stream)
    assert code == 0, err
    starts = ([w['start'] for w in json.loads(out)[0]['windows']] if not
              stream else [json.loads(line)['start']
                           for line in out.splitlines()])
    assert starts == [0.0, 1.0, 2.0], out


def test_a_closed_output_pipe_ends_quietly(version, tmp_path):
  # An hour of (sparse, silent) audio: 3,600 windows take seconds to
  # print, so the reader leaves long before the writer is done, however
  # loaded the machine.
  long = tmp_path / 'long.wav'
  frames = 3600 * 8000
  data = bytearray(audio_files.wav_bytes(np.zeros(16), 8000)[:44])
  data[40:44] = (frames * 2).to_bytes(4, 'little')
  data[4:8] = (36 + frames * 2).to_bytes(4, 'little')
  with open(long, 'wb') as f:
    f.write(bytes(data))
    f.truncate(44 + frames * 2)
  code, out, err = _cli('predict', '--model', version, str(long),
                        '--stream', shell_suffix=' | head -1; '
                        'exit ${PIPESTATUS[0]}')
  assert len(out.splitlines()) == 1 and not err.strip(), err
  assert code == 141


def test_ingest_keeps_good_files_beside_one_giant(tmp_path):
  from pipeline.data import ingest  # pylint: disable=g-import-not-at-top
  from pipeline.data import spectrogram  # pylint: disable=g-import-not-at-top
  source = tmp_path / 'data'
  for index, name in enumerate(('not_instrument', 'instrument')):
    (source / name).mkdir(parents=True)
    for k in range(3):
      (source / name / f'{k}.wav').write_bytes(audio_files.wav_bytes(
          audio_files.chord(1.0, 16000) * (0.2 + 0.2 * index + 0.05 * k),
          16000))
  # 599 s at 1 MHz: under --max-clip-seconds, 599 million samples, 4.5
  # GiB at float64: refused from its header, not one sample read.
  header = io.BytesIO(audio_files.wav_bytes(np.zeros(16), 1_000_000))
  data = bytearray(header.getvalue()[:44])
  frames = 599 * 1_000_000
  data[40:44] = (frames * 2).to_bytes(4, 'little')
  data[4:8] = (36 + frames * 2).to_bytes(4, 'little')
  giant = source / 'instrument' / 'giant.wav'
  with open(giant, 'wb') as f:
    f.write(bytes(data))
    f.truncate(44 + frames * 2)  # sparse: no disk is used
  result = ingest.ingest(str(source), str(tmp_path / 'spans'),
                         class_names=('not_instrument', 'instrument'),
                         image_size=32, progress=False)
  assert sum(result.counts.values()) == 6
  reasons = dict(result.skipped)
  assert list(reasons) == [os.path.join('instrument', 'giant.wav')]
  assert f'{spectrogram.MAX_DECODED_SAMPLES:,}' in reasons[
      os.path.join('instrument', 'giant.wav')]


def test_device_fuzz(tmp_path):
  recordings, folders = 96, 96
  out = tmp_path / 'outcomes.json'
  child = subprocess.run(
      [sys.executable, os.path.join(REPO_ROOT, 'tests', 'device_fuzz.py'),
       str(tmp_path / 'work'), str(out), str(recordings), str(folders)],
      env=ENV, capture_output=True, text=True, timeout=900, check=False)
  assert child.returncode == 0, (
      f'the device fuzz child died ({child.returncode}); last lines:\n'
      f'{child.stderr[-3000:]}')
  outcomes = json.loads(out.read_text())
  assert len(outcomes['recordings']) == 2 * recordings
  assert len(outcomes['folders']) == folders
  refused = 0
  for description, (code, printed, err) in sorted(
      outcomes['recordings'].items()):
    assert code in (0, 1, 2), (description, code, err)
    assert 'raceback' not in err, (description, err)
    if code:
      refused += 1
      lines = [line for line in err.splitlines() if line.strip()]
      assert len(lines) == 1 and 'case' in lines[0], (description, err)
    else:
      assert printed.strip(), description
  assert refused > recordings // 4
  refused = 0
  for description, (code, printed, err) in sorted(
      outcomes['folders'].items()):
    assert code in (0, 2), (description, code, err)
    if code:
      refused += 1
      lines = [line for line in err.splitlines() if line.strip()]
      assert len(lines) == 1 and 'model folder' in lines[0] or (
          'pushed model folder' in lines[0]), (description, err)
    else:
      assert printed.strip() and not err.strip(), (description, err)
  assert refused > folders // 2


def test_stream_reads_any_length_and_predict_refuses_what_ingest_refuses(
    version, tmp_path):
  from pipeline.data import spectrogram  # pylint: disable=g-import-not-at-top
  from pipeline.serving import predict  # pylint: disable=g-import-not-at-top
  # A header declaring 240 million samples at 48 kHz stereo (41.7 min):
  # over ingest's bound, which predict keeps and the stream does not.
  frames = 120_000_000
  data = bytearray(audio_files.wav_bytes(np.zeros((16, 2)), 48000)[:44])
  data[40:44] = (frames * 4).to_bytes(4, 'little')
  data[4:8] = (36 + frames * 4).to_bytes(4, 'little')
  path = tmp_path / 'long.wav'
  with open(path, 'wb') as f:
    f.write(bytes(data))
    f.truncate(44 + frames * 4)  # sparse: no disk is used
  model = predict.PushedModel(version)
  with open(path, 'rb') as f:
    with pytest.raises(predict.StreamError, match='240,000,000 samples'):
      list(predict.stream(model, f, str(path),
                          limits=model.limits.__class__(
                              max_clip_seconds=1e9)))
  with open(path, 'rb') as f:
    windows = list(itertools.islice(predict.stream(model, f, str(path)), 3))
  assert [w['start'] for w in windows] == [0.0, 1.0, 2.0]
  assert spectrogram.MAX_DECODED_SAMPLES == 230_400_000


def test_a_folder_whose_manifest_predates_the_schema_version_still_opens(
    version, tmp_path):
  from components.ondevice import model_folder  # pylint: disable=g-import-not-at-top
  folder = _copy(version, tmp_path)
  assert _manifest(folder)['schema_version'] == 2
  _manifest(folder, lambda m: m.pop('schema_version'))
  opened = model_folder.open_version(folder)
  assert opened.manifest.schema_version == 1
  assert opened.waveform_file == 'waveform.tflite'
  assert opened.labels == ['quiet', 'loud']


def test_a_recording_is_answered_by_the_rule_its_version_names(tmp_path):
  import audio_files as files  # pylint: disable=g-import-not-at-top
  from pipeline.serving import predict  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  # One second flagged (offset 0.3) among three that are not (-0.1).
  clip = tmp_path / 'clip.wav'
  clip.write_bytes(files.wav_bytes(np.concatenate(
      [level + rng.uniform(-0.05, 0.05, 16000)
       for level in (0.3, -0.1, -0.1, -0.1)]
  ).astype(np.float32), 16000))
  answers = {}
  for rule in (None, 'mean'):
    folder = device_fuzz.write_version(
        str(tmp_path / str(rule)), labels=('not_instrument', 'instrument'),
        threshold=0.5, dc_gain=20.0, recording_rule=rule)
    model = predict.PushedModel(folder)
    assert model.recording_rule == (rule or 'max')
    answers[rule] = model.predict(str(clip))
  # The most positive window (versions naming no rule) calls it an
  # instrument; the mean of the four does not.
  assert answers[None].label == 'instrument'
  assert answers['mean'].label == 'not_instrument'
  mean = np.mean([w['scores']['instrument'] for w in answers['mean'].windows])
  assert answers['mean'].scores['instrument'] == pytest.approx(mean, abs=1e-6)
  # Both list the same flagged window and segment.
  assert [s['start'] for s in answers['mean'].segments] == [0.0]


def test_a_wav_piped_to_stream_is_read_by_its_header(version, tmp_path):
  samples = audio_files.chord(3.0, 16000)
  data = audio_files.wav_bytes(samples, 16000)
  # arecord writing to a pipe cannot know the length: it declares the
  # largest sizes a RIFF header holds.
  piped = bytearray(data)
  piped[4:8] = (0x7FFFFFFF).to_bytes(4, 'little')
  piped[40:44] = (0x7FFFFFFE).to_bytes(4, 'little')
  path = tmp_path / 'chord.wav'
  path.write_bytes(data)
  _, from_file, _ = _cli('predict', '--model', version, '--stream',
                         str(path), '--json')
  raw = data[44:]
  _, from_raw, _ = _cli('predict', '--model', version, '--stream', '-',
                        '--json', stdin=raw)
  for stdin in (data, bytes(piped)):
    code, out, err = _cli('predict', '--model', version, '--stream', '-',
                          '--json', stdin=stdin)
    assert code == 0, err
    # The header is not read as samples: the windows are the file's.
    assert out == from_file == from_raw
  assert len(from_file.splitlines()) == 3


def test_other_containers_piped_to_stream_are_refused_in_one_line(version):
  import soundfile  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  soundfile.write(buffer, audio_files.chord(1.0, 16000), 16000, format='FLAC')
  code, out, err = _cli('predict', '--model', version, '--stream', '-',
                        stdin=buffer.getvalue())
  line = _one_line(err)
  assert code == 2 and not out
  assert 'standard input holds FLAC, not raw PCM' in line and 'ffmpeg' in line
  # Raw PCM that starts like an MPEG frame sync (a quiet sample, -1) is
  # still raw PCM.
  quiet = np.full(16000, -1, '<i2').tobytes()
  code, out, err = _cli('predict', '--model', version, '--stream', '-',
                        stdin=quiet)
  assert code == 0 and out.count('\n') == 1, err
