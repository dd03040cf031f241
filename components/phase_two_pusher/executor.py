"""Executor of phase two's pusher: reads artifacts, builds and proves the
serving model (`components.cloud.serving_model`), pushes it
(`components.cloud.push`) and records the outcome.

It extends TFX's Pusher executor to reuse its blessing check and its
`pushed` marking.
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
from components.frontend import FrontEnd
from components.modules import features

MODEL_KEY = contracts.PhaseTwoPusher.MODEL
MODEL_BLESSING_KEY = contracts.PhaseTwoPusher.MODEL_BLESSING
SPAN_EXAMPLES_KEY = contracts.PhaseTwoPusher.SPAN_EXAMPLES
PUSHED_MODEL_KEY = contracts.PhaseTwoPusher.PUSHED_MODEL
DESTINATION_KEY = 'serving_destination'
MODEL_NAME_KEY = 'model_name'
IMAGE_SIZE_KEY = 'image_size'
CHANNELS_KEY = 'channels'
CHECK_REQUESTS_KEY = 'check_requests'


def _window(input_dict: Dict[str, List[types.Artifact]]) -> types.Artifact:
  return artifact_utils.get_single_instance(input_dict[SPAN_EXAMPLES_KEY])


def _requests(window: types.Artifact, front_end: Optional[FrontEnd],
              limit: int) -> List[bytes]:
  """The eval split's kept windows of PCM, or its images, and for audio
  the front end's test signals too."""
  from components.frontend import graph  # pylint: disable=g-import-not-at-top
  from components.frontend import melscale  # pylint: disable=g-import-not-at-top
  key = features.AUDIO_PCM_KEY if front_end else features.IMAGE_KEY
  pattern = storage.join(artifact_utils.get_split_uri([window], 'eval'), '*')
  requests = serving_model.read_requests(pattern, key, limit)
  if front_end is not None:
    requests += [melscale.pcm16_bytes(samples)
                 for samples in graph.probe_windows(front_end)]
  return requests


class Executor(pusher_executor.Executor):
  """Builds phase two's serving model, proves it and pushes it."""

  def _outcome(self, artifact: types.Artifact, figures: Dict[str, Any],
               reason: Optional[str] = None) -> None:
    artifact_properties.record(artifact, figures)
    if reason is not None:
      print(f'phase_two_pusher: not pushed: {reason}', flush=True)
      artifact.set_string_custom_property(contracts.PhaseTwoPusher.REASON,
                                          reason)
      self._MarkNotPushed(artifact)

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Pushes phase two's serving model if blessed and faithful.

    Args:
      input_dict: `model` (phase two's Trainer), `model_blessing` (its
        Evaluator), `span_examples` (the window's raw examples).
      output_dict: `pushed_model`, recording the outcome and the proof.
      exec_properties: see `PhaseTwoPusherSpec.PARAMETERS`.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    pushed = artifact_utils.get_single_instance(output_dict[PUSHED_MODEL_KEY])
    name = exec_properties[MODEL_NAME_KEY]
    if not self.CheckBlessing(input_dict):
      return self._outcome(pushed, {}, 'phase two\'s model was not blessed '
                           'by its Evaluator')
    window = _window(input_dict)
    record = span_layout.window_property(window,
                                       span_layout.FRONT_END_PROPERTY)
    front_end = FrontEnd.from_record(record) if record else None
    size = int(exec_properties[IMAGE_SIZE_KEY])
    channels = int(exec_properties[CHANNELS_KEY])
    model_path = self.GetModelPath(input_dict)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix='phase-two-serving-') as scratch:
      folder = os.path.join(scratch, 'serving')
      try:
        classes = serving_model.build(model_path, folder, front_end, size,
                                      channels)
      except serving_model.ServingModelError as e:
        return self._outcome(pushed, {}, str(e))
      proof = serving_model.check(
          folder, model_path, _requests(
              window, front_end, int(exec_properties[CHECK_REQUESTS_KEY])),
          front_end, size, channels)
      figures = {f'check_{key}': value for key, value in proof.items()
                 if key != 'problem'}
      print(f"phase_two_pusher: checked on {proof['requests']} requests: "
            f"agreement {proof['agreement']}, scores at most "
            f"{proof['max_score_difference']} apart "
            f'({time.time() - started:.0f} s)', flush=True)
      if proof['problem']:
        return self._outcome(pushed, figures, proof['problem'])
      manifest = cloud_push.CloudManifest(
          model_name=name, classes=classes,
          families=span_layout.window_property(
              window, span_layout.FAMILIES_PROPERTY) or [],
          request=(serving_model.PCM_INPUT if front_end
                   else serving_model.IMAGE_BYTES_INPUT),
          front_end=front_end.to_record() if front_end else None,
          figures=figures, source={'model': model_path},
          created=time.strftime('%Y-%m-%dT%H:%M:%S%z'))
      run_guard.before_push()
      version, version_dir = cloud_push.write_version(
          exec_properties[DESTINATION_KEY], folder, manifest)
    print(f'phase_two_pusher: pushed version {version} to {version_dir}',
          flush=True)
    self._outcome(pushed, dict(figures, model_name=name))
    self._MarkPushed(pushed, pushed_destination=version_dir,
                     pushed_version=str(version))
