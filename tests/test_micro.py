"""TensorFlow Lite Micro (components/tflite/micro.py): the int8
model's smallest arena, its outputs equal to LiteRT's, and a model with an
operator TFLM lacks named, not run."""

import numpy as np
import pytest
import tensorflow as tf

from components.tflite import conversion
from components.tflite import micro


@pytest.fixture(scope='module')
def int8_model(tmp_path_factory):
  from components.modules import trainer  # pylint: disable=g-import-not-at-top
  tf.keras.utils.set_random_seed(0)
  path = str(tmp_path_factory.mktemp('micro') / 'saved_model')
  model = trainer.build_model(image_size=32, channels=3, width=0.25)
  # An untrained model's logits span almost nothing, and TFLM's softmax
  # aborts on so narrow an input range (LiteRT copes): widen them.
  rng = np.random.default_rng(0)
  images = (rng.integers(0, 256, (12, 32, 32, 3)) * np.linspace(
      0.2, 1.0, 12)[:, None, None, None]).astype(np.float32)
  logit = model.get_layer(trainer.LOGIT_LAYER)
  spread = float(np.std(model(images)))
  logit.set_weights([w * 3.0 / max(spread, 1e-6)
                     for w in logit.get_weights()])
  trainer.export_model(model, path, 32, 3)
  model = conversion.convert(path, 'serving_image', 'int8', images)
  classifier = conversion.TFLiteClassifier(model)
  inputs = np.stack([classifier.quantize_input(image) for image in images])
  return {'path': path, 'model': model, 'inputs': inputs}


def test_tflm_runs_the_int8_model_as_litert_does_in_its_smallest_arena(
    int8_model, tmp_path):
  model, inputs = int8_model['model'], int8_model['inputs']
  found = micro.measure(model, inputs)
  assert 'error' not in found, found
  assert found['outputs'].dtype == np.uint8  # the int8 mode's output
  assert len(np.unique(found['outputs'][:, -1])) > 3  # not one answer
  # Bit for bit LiteRT's builtin kernels; XNNPACK rounds a little apart.
  np.testing.assert_array_equal(found['outputs'],
                                micro.litert_outputs(model, inputs))
  assert np.abs(found['outputs'].astype(int) - micro.litert_outputs(
      model, inputs, xnnpack=True).astype(int)).max() <= 2
  arena = found['arena_bytes']
  assert arena % micro.ARENA_STEP == 0 and found['latency_ms_median'] > 0
  assert found['arena_reported'] <= arena
  # The smallest: one step less does not run.
  path = str(tmp_path / 'model.tflite')
  with open(path, 'wb') as f:
    f.write(model)
  assert micro.allocates(path, arena)
  assert not micro.allocates(path, arena - micro.ARENA_STEP)


def test_a_model_with_an_operator_tflm_lacks_is_named(int8_model):
  from components.tflite_pusher import waveform  # pylint: disable=g-import-not-at-top
  from components import frontend  # pylint: disable=g-import-not-at-top
  model = waveform.convert(int8_model['path'],
                           frontend.FrontEnd(image_size=32),
                           'dynamic')
  found = micro.measure(model, np.zeros((1, 16000), np.float32))
  assert 'RFFT2D' in found['error'], found
  assert 'RFFT2D' in found['missing_ops']


def test_the_c_array_compiles_and_holds_the_tflite_files_bytes(int8_model,
                                                               tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  from components.tflite import firmware  # pylint: disable=g-import-not-at-top
  model = int8_model['model']
  files = firmware.sources(model, 12345, ['not "instrument"', 'instrument'],
                           (1.0, 0), (0.00390625, 0), 'version 7 */ test')
  for name, data in files.items():
    (tmp_path / name).write_bytes(data)
  (tmp_path / 'main.cc').write_text(r'''
#include <cstdio>
#include <cstdint>
#include "model_data.h"
static_assert(kTensorArenaSize == 12345, "arena");
static_assert(kNumLabels == 2, "labels");
int main(int argc, char** argv) {
  if (reinterpret_cast<uintptr_t>(g_model_data) % 16 != 0) return 3;
  FILE* out = fopen(argv[1], "wb");
  fwrite(g_model_data, 1, g_model_data_len, out);
  fclose(out);
  printf("%s|%s|%g|%d\n", kLabels[0], kLabels[1], kOutputScale,
         kInputZeroPoint);
  return 0;
}
''')
  compiled = subprocess.run(
      ['c++', '-std=c++17', '-Wall', '-Werror', '-o', str(tmp_path / 'dump'),
       str(tmp_path / 'main.cc'), str(tmp_path / firmware.SOURCE_FILE)],
      capture_output=True, text=True, check=False)
  assert compiled.returncode == 0, compiled.stderr
  ran = subprocess.run([str(tmp_path / 'dump'), str(tmp_path / 'out.bin')],
                       capture_output=True, text=True, check=False)
  assert ran.returncode == 0, ran
  assert (tmp_path / 'out.bin').read_bytes() == model
  assert ran.stdout.strip() == 'not "instrument"|instrument|0.00390625|0'


def test_a_tflm_run_that_takes_too_long_is_stopped_and_said(int8_model):
  from unittest import mock  # pylint: disable=g-import-not-at-top
  with mock.patch.object(micro, 'RUN_TIMEOUT', 0.01):
    found = micro.measure(int8_model['model'], int8_model['inputs'])
  assert 'took over 0.01 s for 12 inputs' in found['error'], found
