"""Executor of CascadeEvaluator: both phases over the window's eval
examples, the cascade's figures (`figures.judge`) written as
`cascade.json` and recorded on the artifact."""

import json
import os
from typing import Any, Dict, List

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import contracts
from components.cascade import figures as figures_lib
from components.cloud import serving_model
from components.common import artifact_properties
from components.common import storage
from components.modules import features
from components.ondevice import pixels as pixels_lib
from components.ondevice import push as ondevice_push
from components.tflite import conversion

C = contracts.CascadeEvaluator
IMAGE_SIZE_KEY = 'image_size'
CHANNELS_KEY = 'channels'
FILE = 'cascade.json'
_BATCH = 256


def read_eval(window: types.Artifact) -> List[tf.train.Example]:
  """The window's eval examples, in file order."""
  pattern = storage.join(artifact_utils.get_split_uri([window], 'eval'), '*')
  files = sorted(tf.io.gfile.glob(pattern))
  return [tf.train.Example.FromString(record.numpy()) for record in
          tf.data.TFRecordDataset(files, compression_type='GZIP')]


def _bytes(example: tf.train.Example, key: str) -> bytes:
  values = example.features.feature[key].bytes_list.value
  return values[0] if values else b''


def score(examples: List[tf.train.Example], model: bytes, phase_two_dir: str,
          image_size: int, channels: int) -> figures_lib.Scored:
  """Phase one's TFLite model and phase two's SavedModel on the same
  examples."""
  classifier = conversion.TFLiteClassifier(model)
  phase_one = np.array([
      float(classifier.scores(pixels_lib.model_pixels(
          _bytes(e, features.IMAGE_KEY), image_size, channels))[-1])
      for e in examples])
  serve = tf.saved_model.load(phase_two_dir).signatures[
      features.SERVING_EXAMPLES_SIGNATURE]
  phase_two = []
  for start in range(0, len(examples), _BATCH):
    batch = [e.SerializeToString() for e in examples[start:start + _BATCH]]
    phase_two.append(np.argmax(serve(examples=tf.constant(batch))[
        features.SCORES_NAME].numpy(), axis=1))
  labels = np.array([e.features.feature[features.LABEL_KEY].int64_list.value[0]
                     for e in examples])
  return figures_lib.Scored(
      labels=labels,
      families=[_bytes(e, features.FAMILY_KEY).decode('utf-8')
                for e in examples],
      phase_one=phase_one,
      phase_two=np.concatenate(phase_two) if phase_two else np.array([]),
      classes=serving_model.read_labels(phase_two_dir))


def properties(found: Dict[str, Any]) -> Dict[str, Any]:
  """The figures recorded on the artifact: the rates, and at each pi the
  accuracy, cloud share and both baselines."""
  recorded = {name: found[name] for name in ('threshold', 'examples', 'tpr1',
                                              'fpr1', 'a2', 'r2')}
  for pi, at in found['by_pi'].items():
    for name, value in at.items():
      recorded[f'{name}_pi_{pi}'] = (round(value, 6) if value is not None
                                     else None)
  return recorded


class Executor(base_executor.BaseExecutor):
  """Judges the pair on the window's eval examples."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Writes `cascade.json` and records the figures, or why there are none.

    Args:
      input_dict: `pushed_model` (the TFLite pusher's), `model` (phase
        two's Trainer), `span_examples` (the window's raw examples).
      output_dict: `evaluation`.
      exec_properties: `image_size`, `channels`.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    evaluation = artifact_utils.get_single_instance(output_dict[C.EVALUATION])
    pushed = artifact_utils.get_single_instance(input_dict[C.PUSHED_MODEL])
    model_file = os.path.join(pushed.uri, ondevice_push.MODEL_FILE)
    if not pushed.get_int_custom_property(contracts.TFLitePusher.PUSHED) or \
        not storage.isfile(model_file):
      reason = 'phase one was not pushed in this run'
      evaluation.set_string_custom_property(C.REASON, reason)
      print(f'cascade_evaluator: not judged: {reason}', flush=True)
      return
    threshold = (pushed.get_float_custom_property(
        contracts.TFLitePusher.THRESHOLD)
                 if pushed.has_custom_property(
                     contracts.TFLitePusher.THRESHOLD) else 0.5)
    phase_two = artifact_utils.get_single_instance(input_dict[C.MODEL])
    found = figures_lib.judge(
        score(read_eval(artifact_utils.get_single_instance(
            input_dict[C.SPAN_EXAMPLES])), storage.read_bytes(model_file),
              path_utils.serving_model_path(
                  phase_two.uri, path_utils.is_old_model_artifact(phase_two)),
              int(exec_properties[IMAGE_SIZE_KEY]),
              int(exec_properties[CHANNELS_KEY])), threshold)
    storage.write_bytes(storage.join(evaluation.uri, FILE),
                        json.dumps(found, indent=2, sort_keys=True))
    artifact_properties.record(evaluation, properties(found))
    at = found['by_pi']['0.2']
    print(f"cascade_evaluator: at threshold {threshold:.4g} and 20% "
          f"instruments: end-to-end accuracy {at['accuracy']:.4f} (device "
          f"alone {at['device_alone']:.4f}, cloud alone "
          f"{at['cloud_alone']:.4f}), cloud share {at['cloud_share']:.4f}",
          flush=True)
