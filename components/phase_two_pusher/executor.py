"""Executor of phase two's pusher: pushes the serving model its serving
check proved (`components.serving_check`) as the next numbered version
(`components.cloud.push`) and records the outcome.

It extends TFX's Pusher executor to reuse its blessing check (the model's
and the InfraBlessing's `blessed`) and its `pushed` marking.
"""

import os
import tempfile
import time
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.types import artifact_utils

from components import contracts
from components.cloud import push as cloud_push
from components.cloud import serving_model
from components.common import artifact_properties
from components.common import run_guard
from components.common import span_layout
from components.common import storage

P = contracts.PhaseTwoPusher
CHECK = contracts.PhaseTwoServingCheck
DESTINATION_KEY = 'serving_destination'
MODEL_NAME_KEY = 'model_name'


def _single(input_dict, key) -> types.Artifact:
  return artifact_utils.get_single_instance(input_dict[key])


def _fetch(uri: str, local: str) -> str:
  """The serving model in the InfraBlessing, as a local folder."""
  if not storage.is_uri(uri):
    return uri
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for folder, _, names in tf.io.gfile.walk(uri):
    for name in names:
      relative = storage.join(folder, name)[len(uri):].lstrip('/')
      os.makedirs(os.path.dirname(os.path.join(local, relative)),
                  exist_ok=True)
      with open(os.path.join(local, relative), 'wb') as f:
        f.write(storage.read_bytes(storage.join(folder, name)))
  return local


class Executor(pusher_executor.Executor):
  """Pushes phase two's proved serving model."""

  def _outcome(self, artifact: types.Artifact, figures: Dict[str, Any],
               reason: Optional[str] = None) -> None:
    artifact_properties.record(artifact, figures)
    if reason is not None:
      print(f'phase_two_pusher: not pushed: {reason}', flush=True)
      artifact.set_string_custom_property(P.REASON, reason)
      self._MarkNotPushed(artifact)

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Pushes phase two's serving model if its Evaluator and its serving
    check blessed it.

    Args:
      input_dict: `model` (phase two's Trainer), `model_blessing` (its
        Evaluator), `infra_blessing` (its serving check, holding the serving
        model), `span_examples` (the window: its families).
      output_dict: `pushed_model`, recording the outcome and the proofs.
      exec_properties: see `PhaseTwoPusherSpec.PARAMETERS`.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    pushed = artifact_utils.get_single_instance(output_dict[P.PUSHED_MODEL])
    name = exec_properties[MODEL_NAME_KEY]
    infra = _single(input_dict, P.INFRA_BLESSING)
    figures = {key: infra.get_custom_property(key) for key in P.CHECK_FIGURES
               if infra.has_custom_property(key)}
    if not self.CheckBlessing(input_dict):
      reason = (infra.get_string_custom_property(CHECK.REASON)
                if infra.has_custom_property(CHECK.REASON) else
                "phase two's model was not blessed")
      return self._outcome(pushed, figures, reason)
    window = _single(input_dict, P.SPAN_EXAMPLES)
    front_end = span_layout.window_property(window,
                                            span_layout.FRONT_END_PROPERTY)
    with tempfile.TemporaryDirectory(prefix='phase-two-push-') as scratch:
      folder = _fetch(storage.join(infra.uri, CHECK.SERVING_FOLDER), scratch)
      manifest = cloud_push.CloudManifest(
          model_name=name, classes=serving_model.read_labels(folder),
          families=span_layout.window_property(
              window, span_layout.FAMILIES_PROPERTY) or [],
          request=(serving_model.PCM_INPUT if front_end
                   else serving_model.IMAGE_BYTES_INPUT),
          front_end=front_end or None, figures=figures,
          source={'model': self.GetModelPath(input_dict),
                  'infra_blessing': infra.uri},
          created=time.strftime('%Y-%m-%dT%H:%M:%S%z'))
      run_guard.before_push()
      version, version_dir = cloud_push.write_version(
          exec_properties[DESTINATION_KEY], folder, manifest)
    print(f'phase_two_pusher: pushed version {version} to {version_dir}',
          flush=True)
    self._outcome(pushed, dict(figures, model_name=name))
    self._MarkPushed(pushed, pushed_destination=version_dir,
                     pushed_version=str(version))
