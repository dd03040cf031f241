"""Bench part 3, the pushed model: size, accuracy and AUC on the eval split
per quantization mode, single-image latency (one thread, after warm-up,
median of `--invokes` invokes), beside the Keras model's `predict` on one
image and a batched `model(x)` call.
"""

import argparse
import glob
import os
import time
from typing import Any, Dict, List

from bench.parts.common import Context
from bench.parts.common import LATENCY_ROUNDS
from bench.parts.common import log
from bench.parts.common import median
from bench.parts.common import transform_paths

NUMBER = 3
# The part's figures in results.json.
KEY = 'pushed_model'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = True
NEEDS_WORKSPACE = True


def part_pushed_model(workspace: str, invokes: int) -> Dict[str, Any]:
  """Part 3: each quantization mode against the Keras model."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.tflite import conversion  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  model_dir = max(glob.glob(os.path.join(workspace, 'tfx', 'Trainer', 'model',
                                         '*', 'Format-Serving')),
                  key=os.path.getmtime)
  _, pattern = transform_paths(workspace)
  eval_pattern = pattern.replace('Split-train', 'Split-eval')
  images, labels = conversion.load_images(
      eval_pattern, features.IMAGE_PNG_KEY, features.LABEL_KEY, 128, 3)
  calibration, _ = conversion.load_images(
      pattern, features.IMAGE_PNG_KEY, features.LABEL_KEY, 128, 3,
      limit=300, seed=0)
  signature = 'serving_image'
  modes, classifiers = {}, {}
  for mode in ('none', 'dynamic', 'int8', 'float16'):
    model, proof, _ = conversion.convert_and_check(
        model_dir, signature, mode, images, labels,
        representative_images=calibration if mode == 'int8' else None,
        latency_runs=20)
    figures = proof.to_figures()
    modes[mode] = {k: figures[k] for k in (
        'tflite_bytes', 'size_ratio', 'tflite_accuracy', 'tflite_auc',
        'savedmodel_accuracy', 'savedmodel_auc', 'agreement')}
    classifiers[mode] = conversion.TFLiteClassifier(model, num_threads=1)
    log(f"part 3: {mode}: {figures['tflite_bytes']} bytes")
  # Latency in interleaved rounds, so a slow spell of a shared machine does
  # not fall on one mode: the median of the rounds' medians.
  rounds: Dict[str, List[float]] = {mode: [] for mode in classifiers}
  for _ in range(LATENCY_ROUNDS):
    for mode, classifier in classifiers.items():
      rounds[mode].append(classifier.median_latency_ms(
          images[0].astype(np.float32), runs=invokes, warmup=20))
  for mode, values in rounds.items():
    modes[mode]['latency_ms_median'] = median(values)
    modes[mode]['latency_ms_rounds'] = values
    log(f'part 3: {mode}: {median(values):.3f} ms (rounds: '
        + ', '.join(f'{v:.3f}' for v in values) + ')')

  keras_model = tf.keras.models.load_model(model_dir, compile=False)
  one = images[:1].astype(np.float32)
  times = []
  for index in range(5 + 50):
    started = time.perf_counter()
    keras_model.predict(one, verbose=0)
    if index >= 5:
      times.append((time.perf_counter() - started) * 1000.0)
  batch = tf.constant(images[:32], tf.float32)
  batched = []
  for index in range(3 + 30):
    started = time.perf_counter()
    keras_model(batch, training=False)
    if index >= 3:
      batched.append((time.perf_counter() - started) * 1000.0)
  single_call = []
  one_tensor = tf.constant(one)
  for index in range(5 + invokes):
    started = time.perf_counter()
    keras_model(one_tensor, training=False)
    if index >= 5:
      single_call.append((time.perf_counter() - started) * 1000.0)
  keras = {'predict_one_ms': median(times),
           'call_one_ms': median(single_call),
           'call_batch32_ms': median(batched),
           'call_batch32_per_image_ms': median(batched) / 32,
           'threads': 'TensorFlow default (all cores)'}
  log(f"part 3: keras predict one image {keras['predict_one_ms']:.2f} ms")
  return {'eval_images': int(len(labels)), 'invokes': invokes,
          'modes': modes, 'keras': keras,
          'int8_vs_keras_predict': keras['predict_one_ms'] /
                                   modes['int8']['latency_ms_median'],
          'int8_vs_float32': modes['none']['latency_ms_median'] /
                             modes['int8']['latency_ms_median'],
          'numpy': np.__version__}


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 3's section of RESULTS.md (none when not measured)."""
  model = results.get('pushed_model')
  if not model:
    return []
  lines: List[str] = []
  lines += ['', '## 3. The pushed model', '',
            f"Eval split ({model['eval_images']} images). Latency: one "
            f"image, one interpreter thread, after warm-up; the median of "
            f"{LATENCY_ROUNDS} rounds, each the median of "
            f"{model['invokes']} invokes, the modes taking turns.", '',
            '| mode | bytes | vs float32 | accuracy | AUC | agreement with '
            'SavedModel | latency ms |', '|---|---|---|---|---|---|---|']
  for mode, row in model['modes'].items():
    name = 'float32 (no quantization)' if mode == 'none' else mode
    lines.append(
        f"| {name} | {row['tflite_bytes']:,} | {row['size_ratio']:.3f} | "
        f"{row['tflite_accuracy']:.4f} | {row['tflite_auc']:.4f} | "
        f"{row['agreement']:.4f} | {row['latency_ms_median']:.3f} |")
  keras = model['keras']
  lines += ['', f"The Keras model (SavedModel, TensorFlow threads: all "
            f"cores): `predict` on one image {keras['predict_one_ms']:.2f} "
            f"ms; `model(x)` on one image {keras['call_one_ms']:.2f} ms; "
            f"`model(x)` on a batch of 32 {keras['call_batch32_ms']:.1f} ms "
            f"({keras['call_batch32_per_image_ms']:.2f} ms per image)."]
  return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--invokes', type=int, default=300)


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 3; its figures."""
  return part_pushed_model(ctx.workspace, args.invokes)
