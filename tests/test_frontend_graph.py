"""The audio front end's graph (components/frontend/graph.py) draws what the
NumPy front end draws, in TensorFlow and as a float TFLite model of builtin
ops, and its filterbank is the cheap banded form."""

import numpy as np
import pytest
import tensorflow as tf

import audio_files
from components import frontend
from components.frontend import graph as graph_lib
from components.frontend import melscale
from components.frontend import windowing

FRONT_ENDS = [
    frontend.FrontEnd(),
    frontend.FrontEnd(image_size=64, colormap='gray', fft_size=1024),
    frontend.FrontEnd(sample_rate=22050, window_seconds=0.5, fft_size=512,
                      mel_min_hz=100, mel_max_hz=9000, top_db=60),
    # Frames not a multiple of four: one RFFT2D per frame.
    frontend.FrontEnd(image_size=30, fft_size=512),
]


def _graph(front_end):
  module = graph_lib.FrontEndGraph(front_end)
  return module, tf.function(module.__call__, input_signature=[
      tf.TensorSpec([1, front_end.window_samples], tf.float32)])


@pytest.mark.parametrize('index', range(len(FRONT_ENDS)))
def test_the_graph_draws_the_numpy_picture(index):
  front_end = FRONT_ENDS[index]
  _, graph = _graph(front_end)
  for samples in audio_files.front_end_windows(front_end):
    expected = windowing.render(samples, front_end).astype(np.float32)
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
  for samples in audio_files.front_end_windows(front_end):
    interpreter.set_tensor(source['index'], samples[None].astype(np.float32))
    interpreter.invoke()
    got = interpreter.get_tensor(target['index'])[0]
    assert np.abs(got - windowing.render(samples, front_end)).max() <= 2


def test_the_banded_filterbank_is_the_full_one_without_its_zeros():
  front_end = FRONT_ENDS[0]
  full = melscale.mel_filterbank(16000, 2048, 128, 20.0, 8000.0)
  rebuilt = np.zeros_like(full)
  band = 0
  for low, high, weights in graph_lib.mel_groups(front_end):
    assert weights.size < graph_lib.FLOAT_WEIGHTS_BELOW
    rebuilt[band:band + weights.shape[1], low:high] = weights.T
    band += weights.shape[1]
  assert band == 128
  assert np.array_equal(rebuilt, full)
  assert graph_lib.constant_bytes(front_end) < full.nbytes / 10


def test_the_pixel_check_measures_the_graph_against_numpy():
  front_end = frontend.FrontEnd(image_size=32)
  windows = np.stack(graph_lib.probe_windows(front_end)).astype(np.float32)
  assert len(windows) == 5
  assert graph_lib.pixel_error(front_end, windows) <= graph_lib.MAX_PIXEL_ERROR
  # Drawn with another dynamic range, the pictures are far apart.
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(melscale, 'render', lambda window, fe: np.zeros(
        (32, 32, 3), np.uint8))
    assert graph_lib.pixel_error(front_end, windows) > 100


@pytest.mark.parametrize('field, value, said', [
    ('version', 2, 'front end version 2'),
    ('sample_rate', None, "sample_rate is None, not an int"),
    ('sample_rate', 'fast', "sample_rate is 'fast', not an int"),
    ('fft_size', 1000.5, 'fft_size is 1000.5'),
    ('colormap', 3, 'colormap is 3, not a str'),
    ('colormap', 'jet', 'colormap must be one of'),
    ('top_db', True, 'top_db is True'),
    ('window_seconds', float('nan'), 'window_seconds and hop_seconds must'),
])
def test_a_damaged_recorded_front_end_is_refused_by_name(field, value, said):
  record = dict(frontend.FrontEnd().to_record(), **{field: value})
  with pytest.raises(frontend.FrontEndError, match=said):
    frontend.FrontEnd.from_record(record)
  with pytest.raises(frontend.FrontEndError, match='JSON object'):
    frontend.FrontEnd.from_record(['a list'])
