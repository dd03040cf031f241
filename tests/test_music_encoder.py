"""The TensorFlow 2 port of musicnn against the original: the wheel's own
extractor (librosa 0.8.1 and its TensorFlow 1 graph, run through
tf.compat.v1) in a process of its own, on recordings of sampled instruments,
speech and noise (procedural sounds where the soundfonts are missing).

Tolerances, stated: the log-mel within 1e-3 (the original rounds it to
float16, whose step is 5e-4 of the value; a value on a rounding edge may
round the other way in either); each pooled feature and tag probability
within 1e-3 of the largest value of its kind (float32 sums in another
order)."""

import os
import subprocess
import sys
import wave

import numpy as np
import pytest
import tensorflow as tf

from components.frontend import melscale
from components.music import musicnn
from components.music import weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, '.musicnn-reference')
MODELS = ('MSD_musicnn', 'MTT_musicnn')
MEL_TOLERANCE = 1e-3
RELATIVE_TOLERANCE = 1e-3


def _recordings():
  """Four 1 s recordings at 16 kHz, as float samples."""
  from pipeline.data import sampled  # pylint: disable=import-outside-toplevel
  from pipeline.data import synth  # pylint: disable=import-outside-toplevel
  if sampled.unavailable() is None:
    sampled.fresh()
    clips = [synth.make_sampled_clip(3, label, index)[1]
             for label in (1, 0) for index in range(2)]
    sampled.fresh()
    return clips
  return [synth.make_clip(3, label, index)[1]
          for label in (1, 0) for index in range(2)]


@pytest.fixture(scope='module')
def compared(tmp_path_factory):
  """(the PCM of each recording, what the original made of it)."""
  assert os.path.isfile(os.path.join(REFERENCE, 'musicnn', 'extractor.py')), (
      f'{REFERENCE} is missing: run bash scripts/ensure_musicnn_reference.sh')
  folder = tmp_path_factory.mktemp('recordings')
  pcm, paths = [], []
  for index, clip in enumerate(_recordings()):
    data = melscale.pcm16_bytes(clip)
    path = str(folder / f'clip_{index}.wav')
    with wave.open(path, 'wb') as f:
      f.setnchannels(1)
      f.setsampwidth(2)
      f.setframerate(musicnn.SAMPLE_RATE)
      f.writeframes(data)
    pcm.append(melscale.pcm16_samples(data))
    paths.append(path)
  out = str(folder / 'original.npz')
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([REFERENCE, ROOT]),
             CUDA_VISIBLE_DEVICES='')
  done = subprocess.run([sys.executable, os.path.join(ROOT, 'tests',
                                                      'musicnn_original.py'),
                         out, ','.join(MODELS)] + paths,
                        env=env, cwd=str(folder), capture_output=True,
                        text=True, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  with np.load(out) as found:
    return np.stack(pcm), dict(found)


def test_the_log_mel_is_librosas(compared):
  pcm, original = compared
  ours = musicnn.LogMel()(pcm).numpy()
  for index in range(len(pcm)):
    theirs = original[f'mel_{index}']
    assert ours[index].shape == theirs.shape == (63, musicnn.MEL_BANDS)
    assert np.abs(ours[index] - theirs).max() <= MEL_TOLERANCE, index


@pytest.mark.parametrize('model', MODELS)
def test_the_network_answers_as_the_original(compared, model):
  pcm, original = compared
  network = musicnn.load_network(model)
  found = network(musicnn.LogMel()(pcm), training=False)
  tags = tf.sigmoid(found['logits']).numpy()
  for key in ('max_pool', 'mean_pool', 'penultimate'):
    ours = found[key].numpy()
    theirs = np.concatenate([original[f'{model}/{key}_{i}'].reshape(1, -1)
                             for i in range(len(pcm))])
    scale = np.abs(theirs).max()
    assert scale > 0
    assert np.abs(ours - theirs).max() <= RELATIVE_TOLERANCE * scale, key
  theirs = np.concatenate([original[f'{model}/taggram_{i}']
                           for i in range(len(pcm))])
  assert np.abs(tags - theirs).max() <= RELATIVE_TOLERANCE


def test_the_encoder_concatenates_each_models_pools(compared):
  pcm, original = compared
  embedding = musicnn.Encoder(MODELS)(pcm[:2]).numpy()
  assert embedding.shape == (2, 2 * 2 * musicnn.FEATURES_PER_FRAME)
  width = musicnn.FEATURES_PER_FRAME
  theirs = np.concatenate([original[f'MTT_musicnn/mean_pool_{i}'].reshape(
      1, -1) for i in range(2)])
  ours = embedding[:, 3 * width:]
  assert np.abs(ours - theirs).max() <= RELATIVE_TOLERANCE * np.abs(
      theirs).max()


def test_weights_that_are_not_the_wheels_are_refused(tmp_path):
  prefix = weights.checkpoint_prefix('MSD_musicnn')
  copy = tmp_path / 'MSD_musicnn'
  copy.mkdir()
  for name in weights.CHECKPOINTS['MSD_musicnn'].files:
    data = open(os.path.join(prefix, name), 'rb').read()
    if name == '.index':
      data = data[:-1] + bytes([data[-1] ^ 1])
    (copy / name).write_bytes(data)
  with pytest.raises(weights.WeightsError, match=r'\.index is not the file'):
    weights.checkpoint_prefix('MSD_musicnn', str(tmp_path))


def test_missing_weights_name_the_file_and_the_remedy(tmp_path):
  with pytest.raises(weights.WeightsError,
                     match='MTT_musicnn.*ensure_music_weights'):
    weights.checkpoint_prefix('MTT_musicnn', str(tmp_path))
  with pytest.raises(weights.WeightsError, match='unknown musicnn model'):
    weights.checkpoint_prefix('MTT_vgg')


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
  path = str(tmp_path / 'other')
  tf.train.Checkpoint(conv2d=tf.Variable(tf.zeros([3, 3, 1, 2]))).write(path)
  with pytest.raises(weights.WeightsError, match='has no batch_normalization/gamma'):
    musicnn.load_weights(musicnn.build_network('MSD_musicnn'), path)


def test_the_sequence_encoder_keeps_each_step_of_the_frames_it_pools():
  # A 1 s window is 63 frames, 21 steps of 3: the steps' mean is each
  # model's mean pool, so the steps are the frames the pools are of.
  pcm = np.random.default_rng(3).uniform(-0.5, 0.5, (2, 16000)).astype(
      np.float32)
  steps = musicnn.SequenceEncoder(MODELS)(pcm).numpy()
  width = musicnn.FEATURES_PER_FRAME
  assert steps.shape == (2, 21, len(MODELS) * width)
  assert musicnn.SequenceEncoder.steps_of(16000) == 21
  assert musicnn.SequenceEncoder.steps_of(16500) == 22  # 65 frames
  pooled = musicnn.Encoder(MODELS)(pcm).numpy()
  for index in range(len(MODELS)):
    mean_pool = pooled[:, (2 * index + 1) * width:(2 * index + 2) * width]
    np.testing.assert_allclose(
        steps[:, :, index * width:(index + 1) * width].mean(axis=1),
        mean_pool, atol=1e-4 * np.abs(mean_pool).max())
  # A window whose frames the steps do not divide: the last step is the
  # mean of the frames left, not of padding.
  longer = musicnn.SequenceEncoder(MODELS[:1])(np.pad(pcm, ((0, 0),
                                                            (0, 500))))
  assert longer.shape[1] == 22
