"""Executor of CascadeEvaluator: both phases over the window's eval
examples, the cascade's figures (`figures.judge`) written as
`cascade.json` and recorded on the artifact, and the gate
(`figures.verdict`) against its bars and the last pushed pair, judged on
the same examples, written as the pair's blessing (`blessing`)."""

import dataclasses
import json
from typing import Any, Dict, List, Optional, Tuple

from absl import logging

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import contracts
from components.cascade import figures as figures_lib
from components.cloud import push as cloud_push
from components.cloud import serving_model
from components.common import artifact_properties
from components.common import errors
from components.common import pair_blessing
from components.common import storage
from components.modules import features
from components.ondevice import candidate as candidate_lib
from components.ondevice import pixels as pixels_lib
from components.ondevice import push as ondevice_push
from components.tflite import conversion

C = contracts.CascadeEvaluator
CONVERTER = contracts.TFLiteConverter
IMAGE_SIZE_KEY = 'image_size'
CHANNELS_KEY = 'channels'
PUSH_DESTINATION_KEY = 'push_destination'
SERVING_DESTINATION_KEY = 'serving_destination'
NAME_KEY = 'model_name'
# The gate's settings: `figures.Gate`'s fields, as the settings name them
# (`cascade_` and the field).
GATE_KEYS = tuple(field.name for field in
                  dataclasses.fields(figures_lib.Gate))
# Windows per call of phase two's SavedModel. Heard through musicnn, a window
# holds about 17 MB of activations at its widest: on the default run's eval
# windows, batches of 256 took the process from 0.8 to 5.2 GB (the run's
# peak, never given back) where batches of 64 took it to 1.9 GB, in two
# thirds of the time and with the same scores to the bit.
_BATCH = 64


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


@dataclasses.dataclass(frozen=True)
class PhaseOne:
  """The phase one a pair is judged with: its model, threshold, pairing
  key and where it came from."""
  model: bytes
  threshold: float
  pairing_key: Optional[str]
  source: str


def candidate_phase_one(candidate: types.Artifact) -> Optional[PhaseOne]:
  """This run's candidate, when the converter made it ready."""
  if not candidate.get_int_custom_property(CONVERTER.READY):
    return None
  files, manifest = candidate_lib.read(candidate.uri)
  return PhaseOne(files[ondevice_push.MODEL_FILE],
                  manifest.threshold_value,
                  manifest.decisions()['pairing_key'],
                  "this run's candidate")


def pushed_phase_one(destination: str) -> Optional[PhaseOne]:
  """The version devices have (`LATEST` under `destination`), or None."""
  version = ondevice_push.latest_version(destination)
  if version is None:
    return None
  folder = storage.join(destination, str(version))
  try:
    manifest = ondevice_push.check_version(folder)
    model = storage.read_bytes(storage.join(folder, manifest.model_file))
  except (errors.PipelineError, OSError) as e:
    logging.warning('the pushed phase one %s cannot be read: %s', folder, e)
    return None
  return PhaseOne(model, manifest.threshold_value,
                  manifest.decisions()['pairing_key'],
                  f'pushed version {version}')


def pushed_phase_two(destination: str, name: str
                     ) -> Tuple[Optional[str], Optional[str], str]:
  """The newest pushed phase two's SavedModel (the Trainer's, which its
  manifest names), its pairing key, and where it is; (None, None, why)
  when there is none or it is gone."""
  base = cloud_push.model_base(destination, name)
  found = cloud_push.versions(base)
  if not found:
    return None, None, 'no phase two was pushed before'
  manifest = cloud_push.read_manifest(storage.join(base, str(found[-1])))
  model = (manifest.source or {}).get('model')
  if not model or not tf.io.gfile.exists(model):
    return None, None, (f'the SavedModel phase two version {found[-1]} came '
                        f'from ({model}) is gone')
  return model, manifest.pairing_key, f'phase two version {found[-1]}'


def baseline(examples: List[tf.train.Example], phase_one: PhaseOne,
             old_one: Optional[PhaseOne], exec_properties: Dict[str, Any]
             ) -> Tuple[Optional[Dict[str, Any]], str]:
  """The last pushed pair (`old_one`, the pushed phase one, and the newest
  pushed phase two) judged on the same examples, and what it is; or None
  and why there is none to compare with."""
  if old_one is None:
    return None, 'no phase one was pushed before'
  old_two, key, where = pushed_phase_two(
      exec_properties[SERVING_DESTINATION_KEY], exec_properties[NAME_KEY])
  if old_two is None:
    return None, where
  if key != phase_one.pairing_key or old_one.pairing_key != key:
    return None, ('the last pushed pair answers other classes or draws '
                  'windows otherwise (another pairing key)')
  found = figures_lib.judge(score(
      examples, old_one.model, old_two, int(exec_properties[IMAGE_SIZE_KEY]),
      int(exec_properties[CHANNELS_KEY])), old_one.threshold)
  return found, f'{old_one.source} with {where}'


class Executor(base_executor.BaseExecutor):
  """Judges the pair on the window's eval examples and gates its push."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Writes `cascade.json`, records the figures and blesses the pair, or
    says why not.

    Args:
      input_dict: `candidate` (the TFLite converter's), `model` (phase
        two's Trainer), `span_examples` (the window's raw examples).
      output_dict: `evaluation` and `blessing`.
      exec_properties: see `CascadeEvaluatorSpec.PARAMETERS`.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    evaluation = artifact_utils.get_single_instance(output_dict[C.EVALUATION])
    blessed = artifact_utils.get_single_instance(output_dict[C.BLESSING])
    pushed = pushed_phase_one(exec_properties[PUSH_DESTINATION_KEY])
    phase_one = candidate_phase_one(artifact_utils.get_single_instance(
        input_dict[C.CANDIDATE])) or pushed
    if phase_one is None:
      reason = 'phase one has no ready candidate and no pushed version'
      evaluation.set_string_custom_property(C.REASON, reason)
      pair_blessing.write(blessed, reason)
      print(f'cascade_evaluator: not judged: {reason}', flush=True)
      return
    phase_two = artifact_utils.get_single_instance(input_dict[C.MODEL])
    phase_two_dir = path_utils.serving_model_path(
        phase_two.uri, path_utils.is_old_model_artifact(phase_two))
    examples = read_eval(artifact_utils.get_single_instance(
        input_dict[C.SPAN_EXAMPLES]))
    found = figures_lib.judge(score(
        examples, phase_one.model, phase_two_dir,
        int(exec_properties[IMAGE_SIZE_KEY]),
        int(exec_properties[CHANNELS_KEY])), phase_one.threshold)
    before, against = baseline(examples, phase_one, pushed, exec_properties)
    found['phase_one'] = phase_one.source
    found['baseline'] = {'pair': against, 'by_pi': before['by_pi']} if (
        before) else {'pair': None, 'reason': against}
    reason = figures_lib.verdict(found, gate(exec_properties), before)
    storage.write_bytes(storage.join(evaluation.uri, C.FILE),
                        json.dumps(found, indent=2, sort_keys=True))
    artifact_properties.record(evaluation, dict(
        properties(found), **{
            C.PHASE_ONE: phase_one.source, C.BASELINE: against,
            C.BASELINE_ACCURACY: before['by_pi'][figures_lib.GATE_PI][
                'accuracy'] if before else None}))
    pair_blessing.write(blessed, reason)
    at = found['by_pi'][figures_lib.GATE_PI]
    print(f"cascade_evaluator: {phase_one.source} at threshold "
          f"{phase_one.threshold:.4g} and 20% instruments: end-to-end "
          f"accuracy {at['accuracy']:.4f} (device alone "
          f"{at['device_alone']:.4f}, cloud alone {at['cloud_alone']:.4f}), "
          f"cloud share {at['cloud_share']:.4f}", flush=True)
    if before:
      print(f"cascade_evaluator: the last pushed pair ({against}): "
            f"{before['by_pi'][figures_lib.GATE_PI]['accuracy']:.4f}",
            flush=True)
    print('cascade_evaluator: ' + (f'held back: {reason}' if reason
                                   else 'blessed'), flush=True)


def gate(exec_properties: Dict[str, Any]) -> figures_lib.Gate:
  """The gate's bars, from the component's settings."""
  return figures_lib.Gate(**{name: float(exec_properties[name])
                             for name in GATE_KEYS})
