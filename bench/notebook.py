"""The notebook way, as a script: the baseline the benchmark compares with.

What the Two-Phase Predictions notebook does with a folder of spectrograms:
`ImageDataGenerator.flow_from_directory`, `model.fit`, then
`TFLiteConverter.from_keras_model` with `Optimize.DEFAULT` and
`tf.lite.Interpreter` for predictions. The model is our architecture
(`components.modules.trainer.build_model`), trained for the same number of
steps with the same batch size and learning rate, so the two sides do the
same learning work. Our model rescales pixels itself (a Rescaling layer), so
the generator is given no `rescale`; the multiply costs the same either way.

Prints one JSON line with the wall time of each phase.

Usage: python bench/notebook.py DATA_DIR OUT_DIR [--steps N]
"""

import argparse
import json
import math
import os
import time

STARTED = time.time()

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from components.modules.metrics import binary_auc  # pylint: disable=g-import-not-at-top,wrong-import-position
from components.modules import trainer  # pylint: disable=g-import-not-at-top,wrong-import-position

CLASSES = ['not_instrument', 'instrument']


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument('data_dir')
  parser.add_argument('out_dir')
  parser.add_argument('--steps', type=int, default=500)
  parser.add_argument('--image-size', type=int, default=128)
  parser.add_argument('--batch-size', type=int, default=32)
  parser.add_argument('--learning-rate', type=float, default=2e-3)
  parser.add_argument('--width', type=float, default=None,
                      help='model width (default: the pipeline\'s default)')
  args = parser.parse_args()
  times = {'import_seconds': time.time() - STARTED}
  tf.keras.utils.set_random_seed(0)

  started = time.time()
  generator = tf.keras.preprocessing.image.ImageDataGenerator(
      validation_split=0.2)
  flow = dict(target_size=(args.image_size, args.image_size),
              batch_size=args.batch_size, classes=CLASSES,
              class_mode='binary', seed=0)
  train = generator.flow_from_directory(args.data_dir, subset='training',
                                        **flow)
  val = generator.flow_from_directory(args.data_dir, subset='validation',
                                      shuffle=False, **flow)
  times['list_seconds'] = time.time() - started

  started = time.time()
  model = (trainer.build_model(args.image_size, 3) if args.width is None
           else trainer.build_model(args.image_size, 3, width=args.width))
  model.compile(
      optimizer=tf.keras.optimizers.Adam(
          tf.keras.optimizers.schedules.CosineDecay(
              args.learning_rate, decay_steps=args.steps, alpha=0.05)),
      loss='binary_crossentropy', metrics=['accuracy'])
  epochs = max(1, math.ceil(args.steps / len(train)))
  model.fit(train, epochs=epochs, steps_per_epoch=min(len(train), args.steps),
            verbose=0)
  times['fit_seconds'] = time.time() - started
  times['train_steps'] = epochs * min(len(train), args.steps)

  started = time.time()
  probabilities = model.predict(val, verbose=0)[:, 0]
  labels = val.classes[:len(probabilities)]
  times['keras_eval_seconds'] = time.time() - started
  times['keras_accuracy'] = float(np.mean((probabilities >= 0.5) == labels))
  times['keras_auc'] = float(binary_auc(labels, probabilities))

  started = time.time()
  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  tflite_model = converter.convert()
  os.makedirs(args.out_dir, exist_ok=True)
  with open(os.path.join(args.out_dir, 'model.tflite'), 'wb') as f:
    f.write(tflite_model)
  times['convert_seconds'] = time.time() - started
  times['tflite_bytes'] = len(tflite_model)

  started = time.time()
  interpreter = tf.lite.Interpreter(model_content=tflite_model)
  interpreter.allocate_tensors()
  inp = interpreter.get_input_details()[0]
  out = interpreter.get_output_details()[0]
  predictions = []
  val.reset()
  for index in range(len(val)):
    images, _ = val[index]
    for image in images:
      interpreter.set_tensor(inp['index'], image[None].astype(np.float32))
      interpreter.invoke()
      predictions.append(float(interpreter.get_tensor(out['index'])[0][0]))
  predictions = np.array(predictions)
  times['tflite_predict_seconds'] = time.time() - started
  times['tflite_accuracy'] = float(np.mean((predictions >= 0.5) == labels))
  times['eval_images'] = int(len(labels))
  times['total_seconds'] = time.time() - STARTED
  print(json.dumps(times))


if __name__ == '__main__':
  main()
