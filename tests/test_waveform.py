"""The in-graph audio front end (components/tflite_pusher/waveform.py)
draws what the NumPy front end draws, in TensorFlow and as a float TFLite
model of builtin ops, and its filterbank is the cheap banded form."""

import numpy as np
import pytest
import tensorflow as tf

import audio_files
from components.common import melscale
from components.tflite_pusher import waveform
from pipeline.data import frontend

FRONT_ENDS = [
    frontend.FrontEnd(),
    frontend.FrontEnd(image_size=64, colormap='gray', fft_size=1024),
    frontend.FrontEnd(sample_rate=22050, window_seconds=0.5, fft_size=512,
                      mel_min_hz=100, mel_max_hz=9000, top_db=60),
    # Frames not a multiple of four: one RFFT2D per frame.
    frontend.FrontEnd(image_size=30, fft_size=512),
]


def _windows(front_end):
  rate, seconds = front_end.sample_rate, front_end.window_seconds
  yield audio_files.chord(seconds, rate, base=130)
  yield audio_files.noise(seconds, rate, seed=3) * 1e-3  # quiet
  yield np.zeros(front_end.window_samples)  # silence
  clip = audio_files.chord(seconds / 3, rate, base=400)
  yield frontend.window_at(clip, 0, front_end)  # padded


def _graph(front_end):
  module = waveform.FrontEnd(front_end.record())
  return module, tf.function(module.__call__, input_signature=[
      tf.TensorSpec([1, front_end.window_samples], tf.float32)])


@pytest.mark.parametrize('index', range(len(FRONT_ENDS)))
def test_the_graph_draws_the_numpy_picture(index):
  front_end = FRONT_ENDS[index]
  _, graph = _graph(front_end)
  for samples in _windows(front_end):
    expected = frontend.render(samples, front_end).astype(np.float32)
    got = graph(tf.constant(samples[None].astype(np.float32))).numpy()[0]
    assert got.shape == expected.shape
    # float32 against float64: a value on a rounding edge may move by one.
    assert np.abs(got - expected).max() <= 2
    assert np.abs(got - expected).mean() < 0.01


@pytest.mark.parametrize('optimize', [False, True])
def test_the_tflite_front_end_uses_builtin_ops_and_agrees(optimize):
  # With dynamic-range quantization too: its matrices are small enough to
  # stay float.
  front_end = FRONT_ENDS[0]
  module, graph = _graph(front_end)
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [graph.get_concrete_function()], module)
  if optimize:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  model = converter.convert()
  interpreter = tf.lite.Interpreter(model_content=model)
  interpreter.allocate_tensors()
  ops = {op['op_name'] for op in interpreter._get_ops_details()}  # pylint: disable=protected-access
  assert 'RFFT2D' in ops
  assert not any(op.startswith('Flex') or op == 'CUSTOM' for op in ops), ops
  # No table of frames x fft_size indices, no full mel matrix: small.
  assert len(model) < 100_000
  source = interpreter.get_input_details()[0]
  target = interpreter.get_output_details()[0]
  for samples in _windows(front_end):
    interpreter.set_tensor(source['index'], samples[None].astype(np.float32))
    interpreter.invoke()
    got = interpreter.get_tensor(target['index'])[0]
    assert np.abs(got - frontend.render(samples, front_end)).max() <= 2


def test_the_banded_filterbank_is_the_full_one_without_its_zeros():
  record = FRONT_ENDS[0].record()
  full = melscale.mel_filterbank(16000, 2048, 128, 20.0, 8000.0)
  rebuilt = np.zeros_like(full)
  band = 0
  for low, high, weights in waveform.mel_groups(record):
    assert weights.size < waveform.FLOAT_WEIGHTS_BELOW
    rebuilt[band:band + weights.shape[1], low:high] = weights.T
    band += weights.shape[1]
  assert band == 128
  assert np.array_equal(rebuilt, full)
  assert waveform.constant_bytes(record) < full.nbytes / 10


@pytest.fixture(scope='module')
def small_model(tmp_path_factory):
  from components.modules import trainer  # pylint: disable=g-import-not-at-top
  tf.keras.utils.set_random_seed(0)
  model = trainer.build_model(image_size=32, channels=3, width=0.25)
  path = str(tmp_path_factory.mktemp('waveform') / 'saved_model')
  trainer.export_model(model, path, 32, 3)
  return path


@pytest.mark.parametrize('mode', ['none', 'dynamic'])
def test_the_waveform_model_scores_as_the_image_model_on_the_drawn_window(
    small_model, mode):
  from components.tflite import conversion  # pylint: disable=g-import-not-at-top
  front_end = frontend.FrontEnd(image_size=32)
  model = waveform.convert(small_model, front_end.record(), mode)
  image_model = conversion.TFLiteClassifier(conversion.convert(
      small_model, 'serving_image', mode))
  interpreter = tf.lite.Interpreter(model_content=model)
  interpreter.allocate_tensors()
  source = interpreter.get_input_details()[0]
  target = interpreter.get_output_details()[0]
  assert list(source['shape']) == [1, 16000]
  assert source['dtype'] == np.float32 and target['dtype'] == np.float32
  for samples in _windows(front_end):
    interpreter.set_tensor(source['index'], samples[None].astype(np.float32))
    interpreter.invoke()
    scores = interpreter.get_tensor(target['index'])[0]
    expected = image_model.scores(
        frontend.render(samples, front_end).astype(np.float32))
    assert np.abs(scores - expected).max() < 0.02, (scores, expected)


def test_float16_which_would_ruin_the_front_end_says_so(small_model):
  with pytest.raises(waveform.WaveformError, match='would ruin it'):
    waveform.convert(small_model, frontend.FrontEnd(image_size=32).record(),
                     'float16')


def test_int8_quantizes_the_classifier_and_keeps_the_front_end_float(
    small_model):
  front_end = frontend.FrontEnd(image_size=32)
  record = front_end.record()
  windows = list(_windows(front_end))
  model = waveform.convert(small_model, record, 'int8',
                           representative=np.stack(windows))
  interpreter = tf.lite.Interpreter(model_content=model,
                                    experimental_preserve_all_tensors=True)
  interpreter.allocate_tensors()
  details = interpreter.get_tensor_details()
  source = interpreter.get_input_details()[0]
  target = interpreter.get_output_details()[0]
  # Float in and out, as MediaPipe requires; int8 weights inside.
  assert source['dtype'] == np.float32 and target['dtype'] == np.float32
  assert any(d['dtype'] == np.int8 for d in details)
  drawn = next(d for d in details
               if d['name'] == waveform.FRONT_END_SCOPE + '/Round')
  assert drawn['dtype'] == np.float32
  for samples in windows:
    interpreter.set_tensor(source['index'], samples[None].astype(np.float32))
    interpreter.invoke()
    pixels = interpreter.get_tensor(drawn['index'])[0]
    expected = frontend.render(samples, front_end).astype(np.float32)
    assert np.abs(pixels - expected).max() <= waveform.MAX_PIXEL_ERROR


def test_the_pushers_proof_holds_for_a_faithful_model_and_names_its_figures(
    small_model):
  from components.tflite import conversion  # pylint: disable=g-import-not-at-top
  record = frontend.FrontEnd(image_size=32).record()
  model = waveform.convert(small_model, record, 'dynamic')
  image_model = conversion.convert(small_model, 'serving_image', 'dynamic')
  proof = waveform.check(model, image_model, record)
  assert proof['windows'] == len(waveform.probe_windows(record)) == 5
  assert proof['front_end_max_pixel_error'] <= waveform.MAX_PIXEL_ERROR
  assert proof['agreement'] == 1.0
  assert proof['max_score_difference'] < 0.02
  # Against another classifier the scores part ways: the check can fail.
  other = tf.keras.Sequential([tf.keras.Input((32, 32, 3)),
                               tf.keras.layers.GlobalAveragePooling2D(),
                               tf.keras.layers.Dense(2, activation='softmax')])
  other_model = tf.lite.TFLiteConverter.from_keras_model(other).convert()
  assert waveform.check(model, other_model, record)[
      'max_score_difference'] > 0.02


def _examples(path, windows, record, labels):
  """Raw examples as ingest writes them, some keeping their samples."""
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from components.common import melscale  # pylint: disable=g-import-not-at-top
  with tf.io.TFRecordWriter(path, options=tf.io.TFRecordOptions(
      compression_type='GZIP')) as writer:
    for index, (samples, label) in enumerate(zip(windows, labels)):
      png = io.BytesIO()
      Image.fromarray(melscale.render(samples, record)).save(png, 'PNG')
      feature = {
          'image': tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[png.getvalue()])),
          'label': tf.train.Feature(int64_list=tf.train.Int64List(
              value=[label]))}
      if index % 2 == 0:
        feature['audio_pcm'] = tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[melscale.pcm16_bytes(samples)]))
      writer.write(tf.train.Example(features=tf.train.Features(
          feature=feature)).SerializeToString())


def test_the_proof_on_the_spans_own_windows_reads_the_kept_samples_and_holds(
    small_model, tmp_path):
  record = frontend.FrontEnd(image_size=32).record()
  windows = list(_windows(frontend.FrontEnd(image_size=32))) * 2
  labels = [index % 2 for index in range(len(windows))]
  _examples(str(tmp_path / 'eval.gz'), windows, record, labels)
  samples, images, kept = waveform.span_windows(
      str(tmp_path / '*.gz'), 0, 3)
  assert len(samples) == len(images) == len(kept) == (len(windows) + 1) // 2
  assert samples.shape[1] == 16000 and images.shape[1:] == (32, 32, 3)
  assert list(kept) == labels[::2]
  assert len(waveform.span_windows(str(tmp_path / '*.gz'), 2, 3)[0]) == 2
  assert len(waveform.span_windows(str(tmp_path / 'none*'), 0, 3)[0]) == 0
  model = waveform.convert(small_model, record, 'dynamic')
  proof = waveform.check_span_windows(model, small_model, record, samples,
                                      images, kept)
  assert proof['eval_windows'] == len(samples)
  assert proof['eval_front_end_max_pixel_error'] <= waveform.MAX_PIXEL_ERROR
  assert proof['eval_agreement'] == 1.0
  assert abs(proof['eval_accuracy_drop']) < 1e-9


def _constant_classifier(bias):
  """An image model that always answers softmax(bias)."""
  model = tf.keras.Sequential([
      tf.keras.Input((32, 32, 3)), tf.keras.layers.GlobalAveragePooling2D(),
      tf.keras.layers.Dense(2, activation='softmax', kernel_initializer='zeros',
                            bias_initializer=tf.keras.initializers.Constant(
                                bias))])
  return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def test_the_probe_agreement_judges_only_windows_the_image_model_decides(
    small_model):
  record = frontend.FrontEnd(image_size=32).record()
  model = waveform.convert(small_model, record, 'dynamic')
  # Clear answers: the waveform model sides with one of them per window.
  sure_0 = waveform.check(model, _constant_classifier([1.5, -1.5]), record)
  sure_1 = waveform.check(model, _constant_classifier([-1.5, 1.5]), record)
  assert sure_0['decisive_windows'] == sure_1['decisive_windows'] == 5
  assert sure_0['agreement'] + sure_1['agreement'] == pytest.approx(1.0)
  # A tie decides nothing, so it cannot disagree.
  tie = waveform.check(model, _constant_classifier([0.0, 0.0]), record)
  assert tie['decisive_windows'] == 0 and tie['agreement'] == 1.0


def test_a_probe_disagreement_refuses_only_where_both_hold_one_classifier():
  proof = {'agreement': 0.75, 'decisive_windows': 4, 'windows': 5}
  for mode in ('none', 'dynamic'):
    problem = waveform.probe_problem(proof, mode)
    assert '75% of the 4 probe windows' in problem and mode in problem
  # int8 models are calibrated apart: the eval windows judge the classes.
  assert waveform.probe_problem(proof, 'int8') is None
  assert waveform.probe_problem(dict(proof, agreement=1.0), 'dynamic') is None
