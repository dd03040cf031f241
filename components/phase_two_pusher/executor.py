"""Executor of phase two's pusher: pushes the serving model its serving
check proved (`components.serving_check`) as the next numbered version
(`components.cloud.push`) and records the outcome.

It extends TFX's Pusher executor to reuse its blessing check (the model's
and the InfraBlessing's `blessed`) and its `pushed` marking.
"""

import json
import tempfile
import time
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.types import artifact_utils

from components import contracts
from components.cloud import push as cloud_push
from components.cloud import serving_model
from components.cloud import vertex_endpoint
from components.common import artifact_properties
from components.common import pair_blessing
from components.common import pairing
from components.common import run_guard
from components.common import span_layout
from components.common import storage
from components.frontend import FrontEnd

P = contracts.PhaseTwoPusher
CHECK = contracts.PhaseTwoServingCheck
DESTINATION_KEY = 'serving_destination'
MODEL_NAME_KEY = 'model_name'
# JSON of a `vertex_endpoint.Target`, or '' for no Vertex AI endpoint.
VERTEX_KEY = 'vertex_target'


def _single(input_dict, key) -> types.Artifact:
  return artifact_utils.get_single_instance(input_dict[key])


def _fetch(uri: str, local: str) -> str:
  """The serving model in the InfraBlessing, as a local folder."""
  return cloud_push.download(uri, local) if storage.is_uri(uri) else uri


class Executor(pusher_executor.Executor):
  """Pushes phase two's proved serving model."""

  # `google.cloud.aiplatform`, or a stand-in (tests).
  aiplatform = None

  def _deploy(self, target_json: str, name: str, version: int,
              version_dir: str) -> Dict[str, Any]:
    """Deploys the pushed version to its Vertex AI endpoint; the figures
    saying where, or why not (the version stays pushed either way)."""
    target = vertex_endpoint.Target(**json.loads(target_json))
    try:
      found = vertex_endpoint.deploy(
          target, name, version, version_dir,
          labels={'pipeline': 'two-phase', 'version': str(version)},
          aiplatform=self.aiplatform)
    except vertex_endpoint.VertexDeployError as e:
      print(f'phase_two_pusher: pushed, not deployed: {e}', flush=True)
      return {P.VERTEX_DEPLOYED: 0, P.VERTEX_REASON: str(e)}
    print(f"phase_two_pusher: deployed version {version} to "
          f"{found['endpoint']}", flush=True)
    return {P.VERTEX_DEPLOYED: 1, P.VERTEX_ENDPOINT: found['endpoint'],
            P.VERTEX_MODEL: found['model']}

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
        model), `span_examples` (the window: its families), `cascade` (the
        CascadeEvaluator's blessing of the pair, optional).
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
    held = pair_blessing.held_back(input_dict.get(P.CASCADE) or [])
    if held:
      return self._outcome(pushed, figures, held)
    window = _single(input_dict, P.SPAN_EXAMPLES)
    front_end = span_layout.window_property(window,
                                            span_layout.FRONT_END_PROPERTY)
    with tempfile.TemporaryDirectory(prefix='phase-two-push-') as scratch:
      folder = _fetch(storage.join(infra.uri, CHECK.SERVING_FOLDER), scratch)
      classes = serving_model.read_labels(folder)
      manifest = cloud_push.CloudManifest(
          model_name=name, classes=classes,
          pairing_key=pairing.key(classes[0], classes[1:], front_end),
          families=span_layout.window_property(
              window, span_layout.FAMILIES_PROPERTY) or [],
          request=pairing.request_input(front_end),
          front_end=FrontEnd.from_record(front_end) if front_end else None,
          figures=figures,
          source={'model': self.GetModelPath(input_dict),
                  'infra_blessing': infra.uri},
          created=time.strftime('%Y-%m-%dT%H:%M:%S%z'))
      version = cloud_push.find_identical(exec_properties[DESTINATION_KEY],
                                          manifest)
      if version is not None:
        version_dir = storage.join(cloud_push.model_base(
            exec_properties[DESTINATION_KEY], name), str(version))
        print(f'phase_two_pusher: version {version} already holds this model '
              'and pairing; nothing new pushed', flush=True)
        self._outcome(pushed, dict(figures, model_name=name))
        return self._MarkPushed(pushed, pushed_destination=version_dir,
                                pushed_version=str(version))
      run_guard.before_push()
      version, version_dir = cloud_push.write_version(
          exec_properties[DESTINATION_KEY], folder, manifest)
    print(f'phase_two_pusher: pushed version {version} to {version_dir}',
          flush=True)
    if exec_properties.get(VERTEX_KEY):
      figures.update(self._deploy(exec_properties[VERTEX_KEY], name, version,
                                  version_dir))
    self._outcome(pushed, dict(figures, model_name=name))
    self._MarkPushed(pushed, pushed_destination=version_dir,
                     pushed_version=str(version))
