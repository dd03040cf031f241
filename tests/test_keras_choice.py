"""The project runs on tf-keras 2.16 (TF_USE_LEGACY_KERAS=1), deliberately.

With Keras 3 on TF 2.16, TFLiteConverter.from_saved_model crashed on models
saved this way; tf-keras converts. These tests fail if the environment
drifts back to Keras 3 or the conversion breaks.
"""

import os

import numpy as np
import tensorflow as tf

from components.modules import features
from components.modules import trainer


def test_tf_keras_2_is_selected():
  assert os.environ['TF_USE_LEGACY_KERAS'] == '1'
  assert tf.keras.__name__.startswith('tf_keras')
  assert tf.__version__.startswith('2.16')


def test_exported_image_signature_converts_to_tflite(tmp_path):
  model = trainer.build_model(image_size=32, channels=3, width=0.5)
  export_dir = str(tmp_path / 'export')
  trainer.export_model(model, export_dir, 32, 3)
  converter = tf.lite.TFLiteConverter.from_saved_model(
      export_dir, signature_keys=[features.SERVING_IMAGE_SIGNATURE])
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  flatbuffer = converter.convert()
  interpreter = tf.lite.Interpreter(model_content=flatbuffer)
  interpreter.allocate_tensors()
  detail = interpreter.get_input_details()[0]
  assert list(detail['shape'][1:]) == [32, 32, 3]
  x = np.random.uniform(0, 255, (1, 32, 32, 3)).astype('float32')
  interpreter.set_tensor(detail['index'], x)
  interpreter.invoke()
  out = interpreter.get_tensor(interpreter.get_output_details()[0]['index'])
  assert out.shape == (1, 2)
  np.testing.assert_allclose(out[:, 1:], model(x).numpy(), atol=0.05)


def test_onednn_kernels_are_chosen_on_every_cpu():
  # TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI or
  # newer; importing the project turns them on everywhere (a user's 0
  # stands), so every machine trains with the same kernels.
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
  assert os.environ['TF_ENABLE_ONEDNN_OPTS'] == '1'
  assert _pywrap_util_port.IsMklEnabled()
  code = ('import pipeline\n'
          'from tensorflow.python.util import _pywrap_util_port as port\n'
          'print(port.IsMklEnabled())\n')
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  for setting, expected in ((None, 'True'), ('0', 'False')):
    env = {k: v for k, v in os.environ.items()
           if k != 'TF_ENABLE_ONEDNN_OPTS'}
    if setting is not None:
      env['TF_ENABLE_ONEDNN_OPTS'] = setting
    done = subprocess.run([sys.executable, '-c', code], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300,
                          check=True)
    assert done.stdout.split()[-1] == expected, (setting, done.stderr)
