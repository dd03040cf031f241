"""Executor of the TFLite pusher: pushes the converter's candidate version
when it is ready and the cascade, when judged, blessed the pair.

As TFX's Pusher does: check, copy, mark. It reuses TFX's Pusher executor
for the `pushed` marking. The candidate (`components.ondevice.candidate`,
written by `convert_executor`) already holds every file and the manifest;
its figures are copied onto the PushedModel, so readers find them where
they always did.
"""

import os
from typing import Any, Dict, List, Tuple

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components import contracts
from components.common import artifact_properties
from components.common import pair_blessing
from components.common import run_guard
from components.common import storage
from components.ondevice import push
from components.ondevice.manifest import Manifest
from components.ondevice import candidate as candidate_lib

C = contracts.TFLitePusher
DESTINATION_KEY = 'push_destination'


def candidate_figures(candidate: types.Artifact) -> Dict[str, Any]:
  """The figures the converter recorded on its candidate (all but
  `ready`)."""
  return {name: value for name, value in
          candidate.mlmd_artifact.custom_properties.items()
          if name != contracts.TFLiteConverter.READY}


class Executor(pusher_executor.Executor):
  """Pushes the TFLite converter's candidate version."""

  def _mark_not_pushed(self, artifact: types.Artifact, reason: str) -> None:
    logging.warning('TFLite model not pushed: %s', reason)
    print(f'tflite_pusher: not pushed: {reason}', flush=True)
    self._MarkNotPushed(artifact)
    artifact.set_string_custom_property(C.REASON, reason)

  def _push(self, destination: str, files: Dict[str, bytes],
            manifest: Manifest) -> Tuple[int, str, bytes]:
    """Pushes a new version, or finds the latest holding the same converted
    model: (version, its folder, the model file devices have)."""
    version = push.find_identical(destination, manifest.converted_sha256,
                                  manifest.decisions())
    if version is None:
      run_guard.before_push()
      version, version_dir = push.write_version(destination, files, manifest)
      print(f'tflite_pusher: pushed version {version} to {version_dir}',
            flush=True)
      return version, version_dir, files[push.MODEL_FILE]
    version_dir = storage.join(destination, str(version))
    print(f'tflite_pusher: version {version} already holds this model, '
          'threshold and pairing; nothing new pushed', flush=True)
    return version, version_dir, storage.read_bytes(
        storage.join(version_dir, push.MODEL_FILE))

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Pushes the candidate if it is ready and the cascade did not hold the
    pair back.

    Args:
      input_dict: `candidate` (the TFLite converter's), `cascade` (the
        CascadeEvaluator's blessing; absent without families).
      output_dict: `pushed_model`, a PushedModel artifact recording the
        outcome and the candidate's figures.
      exec_properties: `push_destination`.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    pushed = artifact_utils.get_single_instance(output_dict[C.PUSHED_MODEL])
    candidate = artifact_utils.get_single_instance(input_dict[C.CANDIDATE])
    for name, value in candidate_figures(candidate).items():
      pushed.mlmd_artifact.custom_properties[name].CopyFrom(value)
    if not candidate.get_int_custom_property(
        contracts.TFLiteConverter.READY):
      return self._mark_not_pushed(
          pushed, candidate.get_string_custom_property(C.REASON))
    held = pair_blessing.held_back(input_dict.get(C.CASCADE) or [])
    if held:
      return self._mark_not_pushed(pushed, held)
    files, manifest = candidate_lib.read(candidate.uri)
    version, version_dir, model = self._push(
        exec_properties[DESTINATION_KEY], files, manifest)
    io_utils.write_bytes_file(os.path.join(pushed.uri, push.MODEL_FILE), model)
    self._MarkPushed(pushed, pushed_destination=version_dir,
                     pushed_version=str(version))
    artifact_properties.record(pushed, {'sha256': storage.sha256(model)})
