"""The waveform model (components/tflite_pusher/waveform.py): the front
end's graph before the classifier, converted in every mode that keeps the
front end exact, proved on probe windows and on the span's kept windows."""

import numpy as np
import pytest
import tensorflow as tf

import audio_files
from components import frontend
from components.frontend import graph as graph_lib
from components.frontend import melscale
from components.frontend import windowing
from components.tflite_pusher import waveform


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
  model = waveform.convert(small_model, front_end, mode)
  image_model = conversion.TFLiteClassifier(conversion.convert(
      small_model, 'serving_image', mode))
  interpreter = tf.lite.Interpreter(model_content=model)
  interpreter.allocate_tensors()
  source = interpreter.get_input_details()[0]
  target = interpreter.get_output_details()[0]
  assert list(source['shape']) == [1, 16000]
  assert source['dtype'] == np.float32 and target['dtype'] == np.float32
  for samples in audio_files.front_end_windows(front_end):
    interpreter.set_tensor(source['index'], samples[None].astype(np.float32))
    interpreter.invoke()
    scores = interpreter.get_tensor(target['index'])[0]
    expected = image_model.scores(
        windowing.render(samples, front_end).astype(np.float32))
    assert np.abs(scores - expected).max() < 0.02, (scores, expected)


def test_float16_which_would_ruin_the_front_end_says_so(small_model):
  with pytest.raises(waveform.WaveformError, match='would ruin it'):
    waveform.convert(small_model, frontend.FrontEnd(image_size=32),
                     'float16')


def test_int8_quantizes_the_classifier_and_keeps_the_front_end_float(
    small_model):
  front_end = frontend.FrontEnd(image_size=32)
  windows = list(audio_files.front_end_windows(front_end))
  model = waveform.convert(small_model, front_end, 'int8',
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
    expected = windowing.render(samples, front_end).astype(np.float32)
    assert np.abs(pixels - expected).max() <= graph_lib.MAX_PIXEL_ERROR


def test_the_pushers_proof_holds_for_a_faithful_model_and_names_its_figures(
    small_model):
  from components.tflite import conversion  # pylint: disable=g-import-not-at-top
  front_end = frontend.FrontEnd(image_size=32)
  model = waveform.convert(small_model, front_end, 'dynamic')
  image_model = conversion.convert(small_model, 'serving_image', 'dynamic')
  proof = waveform.check(model, image_model, front_end)
  assert proof['windows'] == len(graph_lib.probe_windows(front_end)) == 5
  assert proof['front_end_max_pixel_error'] <= graph_lib.MAX_PIXEL_ERROR
  assert proof['agreement'] == 1.0
  assert proof['max_score_difference'] < 0.02
  # Against another classifier the scores part ways: the check can fail.
  other = tf.keras.Sequential([tf.keras.Input((32, 32, 3)),
                               tf.keras.layers.GlobalAveragePooling2D(),
                               tf.keras.layers.Dense(2, activation='softmax')])
  other_model = tf.lite.TFLiteConverter.from_keras_model(other).convert()
  assert waveform.check(model, other_model, front_end)[
      'max_score_difference'] > 0.02


def _examples(path, windows, front_end, labels):
  """Raw examples as ingest writes them, some keeping their samples."""
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from components.frontend import melscale  # pylint: disable=g-import-not-at-top
  with tf.io.TFRecordWriter(path, options=tf.io.TFRecordOptions(
      compression_type='GZIP')) as writer:
    for index, (samples, label) in enumerate(zip(windows, labels)):
      png = io.BytesIO()
      Image.fromarray(melscale.render(samples, front_end)).save(png, 'PNG')
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
  front_end = frontend.FrontEnd(image_size=32)
  windows = list(audio_files.front_end_windows(
      frontend.FrontEnd(image_size=32))) * 2
  labels = [index % 2 for index in range(len(windows))]
  _examples(str(tmp_path / 'eval.gz'), windows, front_end, labels)
  samples, images, kept = waveform.span_windows(
      str(tmp_path / '*.gz'), 0, 3)
  assert len(samples) == len(images) == len(kept) == (len(windows) + 1) // 2
  assert samples.shape[1] == 16000 and images.shape[1:] == (32, 32, 3)
  assert list(kept) == labels[::2]
  assert len(waveform.span_windows(str(tmp_path / '*.gz'), 2, 3)[0]) == 2
  assert len(waveform.span_windows(str(tmp_path / 'none*'), 0, 3)[0]) == 0
  model = waveform.convert(small_model, front_end, 'dynamic')
  proof = waveform.check_span_windows(model, small_model, front_end, samples,
                                      images, kept)
  assert proof['eval_windows'] == len(samples)
  assert proof['eval_front_end_max_pixel_error'] <= graph_lib.MAX_PIXEL_ERROR
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
  front_end = frontend.FrontEnd(image_size=32)
  model = waveform.convert(small_model, front_end, 'dynamic')
  # Clear answers: the waveform model sides with one of them per window.
  sure_0 = waveform.check(model, _constant_classifier([1.5, -1.5]), front_end)
  sure_1 = waveform.check(model, _constant_classifier([-1.5, 1.5]), front_end)
  assert sure_0['decisive_windows'] == sure_1['decisive_windows'] == 5
  assert sure_0['agreement'] + sure_1['agreement'] == pytest.approx(1.0)
  # A tie decides nothing, so it cannot disagree.
  tie = waveform.check(model, _constant_classifier([0.0, 0.0]), front_end)
  assert tie['decisive_windows'] == 0 and tie['agreement'] == 1.0


def test_a_probe_disagreement_refuses_only_where_both_hold_one_classifier():
  proof = {'agreement': 0.75, 'decisive_windows': 4, 'windows': 5}
  for mode in ('none', 'dynamic'):
    problem = waveform.probe_problem(proof, mode)
    assert '75% of the 4 probe windows' in problem and mode in problem
  # int8 models are calibrated apart: the eval windows judge the classes.
  assert waveform.probe_problem(proof, 'int8') is None
  assert waveform.probe_problem(dict(proof, agreement=1.0), 'dynamic') is None


def _settings():
  """The pusher's settings for the 32x32 test model, in dynamic mode."""
  from components.tflite_pusher.settings import PushSettings  # pylint: disable=g-import-not-at-top
  return PushSettings(
      push_destination='/unused', class_names=('a', 'b'),
      quantization='dynamic', image_size=32, channels=3,
      max_accuracy_drop=0.01, representative_examples=10,
      validation_examples=0, latency_runs=1)


def test_recordings_drawn_at_another_size_than_the_model_say_so(small_model):
  settings = _settings()
  drawn = dict(frontend.FrontEnd(image_size=64).to_record(), recorded=True)
  model, proof = waveform.build(small_model, b'', drawn, settings,
                                lambda split: None)
  assert model is None and proof.recordings
  assert proof.reason == (
      'the recordings were drawn as 64x64 pictures and the model takes '
      '32x32 (--image-size): ingest them again with --image-size 32 for a '
      'waveform model')


def test_at_threshold_compares_the_two_models_decisions():
  # The third window's image score is 0.05 from the threshold: it may fall
  # either side, and is not held against the waveform model.
  found = waveform.at_threshold(np.array([1, 1, 0, 0]),
                                np.array([0.5, 0.1, 0.3, 0.1]),
                                np.array([0.5, 0.4, 0.2, 0.1]), 0.25)
  assert found == {'eval_threshold_agreement': 0.5,
                   'eval_threshold_decisive_windows': 3,
                   'eval_threshold_decisive_agreement': pytest.approx(
                       2 / 3, abs=1e-6),
                   'eval_threshold_accuracy': 0.5,
                   'eval_image_threshold_accuracy': 1.0,
                   'eval_threshold_recall': 0.5}
  assert waveform.at_threshold(np.array([0]), np.array([0.9]),
                               np.array([0.9]), 0.5)[
                                   'eval_threshold_recall'] is None


def test_the_waveform_model_decides_at_phase_ones_threshold_or_says_why_not(
    small_model):
  from components.tflite import conversion  # pylint: disable=g-import-not-at-top
  from components.tflite import model_metadata  # pylint: disable=g-import-not-at-top
  settings = _settings()
  front_end = frontend.FrontEnd(image_size=32)
  drawn = dict(front_end.to_record(), recorded=True)
  samples = np.stack(list(audio_files.front_end_windows(front_end)) * 2
                     ).astype(np.float32)
  images = np.stack([melscale.render(w, front_end) for w in samples])
  model = waveform.convert(small_model, front_end, 'dynamic')
  scores = conversion.tflite_scores(conversion.TFLiteClassifier(model),
                                    samples)[:, -1]
  # A threshold between the windows' scores, and labels the model's own
  # decisions there: against itself it decides the same everywhere.
  threshold = float(scores.min() + scores.max()) / 2
  labels = (scores >= threshold).astype(np.int64)
  image_model = conversion.convert(small_model, 'serving_image', 'dynamic')
  built, proof = waveform.build(
      small_model, image_model, drawn, settings,
      lambda split: (samples, images, labels), threshold)
  assert built is not None, proof.reason
  assert proof.threshold == threshold
  assert proof.eval_threshold_agreement == 1.0
  assert proof.eval_threshold_accuracy == 1.0
  assert 'at threshold' in waveform.describe(proof)
  # Its metadata carries the threshold, for MediaPipe.
  pytest.importorskip('tensorflow_lite_support.metadata.python.metadata')
  assert model_metadata.score_threshold(built) == pytest.approx(threshold,
                                                                abs=1e-6)
  # Beside an image model that gets every window right at the threshold
  # where this one gets some wrong, it is held back, and says why.
  sure_no = _constant_classifier([1.5, -1.5])
  built, proof = waveform.build(
      small_model, sure_no, drawn, settings,
      lambda split: (samples, images, np.zeros_like(labels)), threshold)
  assert built is None
  assert "at phase one's threshold" in proof.reason
  assert 'max_accuracy_drop' in proof.reason


def test_one_window_off_the_saved_model_does_not_refuse_what_decides_as_the_image_model(
    small_model, monkeypatch):
  from components.tflite import conversion  # pylint: disable=g-import-not-at-top
  settings = _settings()
  front_end = frontend.FrontEnd(image_size=32)
  drawn = dict(front_end.to_record(), recorded=True)
  samples = np.stack(list(audio_files.front_end_windows(front_end))
                     ).astype(np.float32)
  images = np.stack([melscale.render(w, front_end) for w in samples])
  labels = np.zeros(len(samples), np.int64)
  # As the default run found it: one window of 53 flipped at 0.5 against
  # the SavedModel, every window decided at the threshold as the image
  # model decides it.
  found = {'eval_windows': 53, 'eval_front_end_max_pixel_error': 0.0,
           'eval_agreement': 52 / 53, 'eval_savedmodel_accuracy': 0.9623,
           'eval_accuracy': 0.9434, 'eval_accuracy_drop': 0.0189,
           'eval_threshold_agreement': 1.0,
           'eval_threshold_decisive_windows': 53,
           'eval_threshold_decisive_agreement': 1.0,
           'eval_threshold_accuracy': 0.9434,
           'eval_image_threshold_accuracy': 0.9434,
           'eval_threshold_recall': 0.9643}
  monkeypatch.setattr(waveform, 'check_span_windows',
                      lambda *args: dict(found))
  image_model = conversion.convert(small_model, 'serving_image', 'dynamic')

  def built(threshold):
    return waveform.build(small_model, image_model, drawn, settings,
                          lambda split: (samples, images, labels), threshold)

  model, proof = built(0.34)
  assert model is not None, proof.reason
  assert proof.eval_accuracy_drop == 0.0189  # recorded, not judged
  # Without a threshold the SavedModel is still the judge.
  model, proof = built(None)
  assert model is None and 'a drop of 1.89 points' in proof.reason


def test_conversion_says_nothing_but_what_matters_on_stderr(small_model,
                                                            capfd):
  import os  # pylint: disable=g-import-not-at-top,import-outside-toplevel
  from components.tflite import conversion  # pylint: disable=g-import-not-at-top
  capfd.readouterr()
  front_end = frontend.FrontEnd(image_size=32)
  model = waveform.convert(small_model, front_end, 'dynamic')
  image_model = conversion.TFLiteClassifier(conversion.convert(
      small_model, 'serving_image', 'dynamic'))
  assert model and image_model
  said = capfd.readouterr().err
  for noise in conversion.NATIVE_NOISE:
    assert noise not in said, said
  # What is not known noise still gets through, in order.
  with conversion.native_noise_filtered():
    os.write(2, b'W0000 tf_tfl_flatbuffer_helpers.cc:390] Ignored x.\n')
    os.write(2, b'a real problem\n')
    os.write(2, b'and its second line\n')
  assert capfd.readouterr().err == 'a real problem\nand its second line\n'
