"""Executor of phase two's serving check: builds the serving model, proves
it in process and in KServe's model server, and writes an `InfraBlessing`
as TFX's InfraValidator does (`blessed` 1 or 0, and an `INFRA_BLESSED` or
`INFRA_NOT_BLESSED` file)."""

import os
import tempfile
import time
from typing import Any, Dict, List, Optional

import numpy as np
from tfx import types
from tfx.components.util import model_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import contracts
from components.cloud import launch
from components.cloud import push as cloud_push
from components.cloud import server as cloud_server
from components.cloud import serving_model
from components.common import artifact_properties
from components.common import pairing
from components.common import span_layout
from components.common import storage
from components import serving_check
from components.frontend import FrontEnd
from components.modules import features

C = contracts.PhaseTwoServingCheck
MODEL_NAME_KEY = 'model_name'
IMAGE_SIZE_KEY = 'image_size'
CHANNELS_KEY = 'channels'
CHECK_REQUESTS_KEY = 'check_requests'
SERVER_KEY = 'server'
READY_SECONDS_KEY = 'ready_seconds'
KSERVE, SERVERS = serving_check.KSERVE, serving_check.SERVERS
SERVER_LOG = 'server.log'


def requests_of(window: types.Artifact, front_end: Optional[FrontEnd],
                limit: int) -> List[bytes]:
  """The eval split's kept windows of PCM, or its images, and for audio
  the front end's test signals too."""
  from components.frontend import graph  # pylint: disable=g-import-not-at-top
  from components.frontend import melscale  # pylint: disable=g-import-not-at-top
  key = features.AUDIO_PCM_KEY if front_end else features.IMAGE_KEY
  pattern = storage.join(artifact_utils.get_split_uri([window], 'eval'), '*')
  found = serving_model.read_requests(pattern, key, limit)
  if front_end is not None:
    found += [melscale.pcm16_bytes(samples)
              for samples in graph.probe_windows(front_end)]
  return found


def _server_scores(server: launch.Server, name: str, requests: List[bytes],
                   times: List[float]) -> np.ndarray:
  """The server's V1 answers to the requests, in batches it takes."""
  import base64  # pylint: disable=g-import-not-at-top
  found = []
  for start in range(0, len(requests), cloud_server.MAX_INSTANCES):
    batch = requests[start:start + cloud_server.MAX_INSTANCES]
    began = time.monotonic()
    status, answer = launch.post(server.predict_url(), {'instances': [
        {name: {'b64': base64.b64encode(data).decode()}} for data in batch]})
    times.append(time.monotonic() - began)
    if status != 200:
      raise launch.LaunchError(
          f'the model server refused eval requests {start} to '
          f'{start + len(batch) - 1} ({status}): '
          f"{answer.get('error', answer)}")
    found += [row['scores'] for row in answer['predictions']]
  return np.asarray(found, np.float32)


def prove_in_server(folder: str, manifest: cloud_push.CloudManifest,
                    requests: List[bytes], expected: np.ndarray,
                    ready_seconds: float, log_path: str) -> Dict[str, Any]:
  """Pushes the serving model as version 1 of a scratch destination,
  starts KServe's model server on it and compares its answers with
  `expected` (the serving model's, in process)."""
  with tempfile.TemporaryDirectory(prefix='serving-check-version-') as \
      scratch, open(log_path, 'w', encoding='utf-8') as log:
    cloud_push.write_version(scratch, folder, manifest)
    started = time.monotonic()
    with launch.Server(cloud_push.model_base(scratch, manifest.model_name),
                       manifest.model_name, log=log) as server:
      try:
        server.wait_ready(ready_seconds)
      except launch.LaunchError as e:
        raise launch.LaunchError(f'{e} (did the model load? its log: '
                                 f'{log_path})') from e
      ready = time.monotonic() - started
      times: List[float] = []
      scores = _server_scores(server, manifest.request, requests, times)
  proof = serving_model.compare(scores, expected, 'the model server answers '
                                'differently from the serving model in '
                                'process')
  proof['ready_seconds'] = round(ready, 2)
  proof['p50_ms'] = round(1000 * float(np.median(times)), 1)
  return proof


def keep(local_folder: str, uri: str) -> None:
  """Copies a local folder's files under `uri` (a folder or a bucket
  prefix)."""
  for root, _, names in os.walk(local_folder):
    for name in names:
      path = os.path.join(root, name)
      target = storage.join(uri, os.path.relpath(path, local_folder))
      if not storage.is_uri(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
      storage.upload(path, target)


def _record(figures: Dict[str, Any], prefix: str, proof: Dict[str, Any],
            where: str) -> None:
  """A proof's figures into `figures` (as `<prefix>_<name>`), and its
  line on the console."""
  figures.update({f'{prefix}_{key}': value for key, value in proof.items()
                  if key != 'problem'})
  print(f"phase_two_serving_check: {where}: {proof['requests']} requests, "
        f"agreement {proof['agreement']}, scores at most "
        f"{proof['max_score_difference']} apart", flush=True)


def _mark(blessing: types.Artifact, figures: Dict[str, Any],
          reason: Optional[str]) -> None:
  artifact_properties.record(blessing, figures)
  blessed = reason is None
  blessing.set_int_custom_property(C.BLESSED, int(blessed))
  storage.write_bytes(storage.join(
      blessing.uri, 'INFRA_BLESSED' if blessed else 'INFRA_NOT_BLESSED'), b'')
  if blessed:
    print('phase_two_serving_check: blessed', flush=True)
  else:
    blessing.set_string_custom_property(C.REASON, reason)
    print(f'phase_two_serving_check: not blessed: {reason}', flush=True)


class Executor(base_executor.BaseExecutor):
  """Builds phase two's serving model and proves it in a model server."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Writes the InfraBlessing, with the serving model inside when blessed.

    Args:
      input_dict: `model` (phase two's Trainer), `model_blessing` (its
        Evaluator), `span_examples` (the window's raw examples).
      output_dict: `blessing`, an InfraBlessing.
      exec_properties: see `PhaseTwoServingCheckSpec.PARAMETERS`.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    blessing = artifact_utils.get_single_instance(output_dict[C.BLESSING])
    server_kind = exec_properties[SERVER_KEY]
    figures: Dict[str, Any] = {C.SERVER: server_kind}
    model_blessing = artifact_utils.get_single_instance(
        input_dict[C.MODEL_BLESSING])
    if not model_utils.is_model_blessed(model_blessing):
      return _mark(blessing, figures, "not checked: phase two's model was "
                   'not blessed by its Evaluator')
    window = artifact_utils.get_single_instance(input_dict[C.SPAN_EXAMPLES])
    record = span_layout.window_property(window,
                                         span_layout.FRONT_END_PROPERTY)
    front_end = FrontEnd.from_record(record) if record else None
    model = artifact_utils.get_single_instance(input_dict[C.MODEL])
    model_path = path_utils.serving_model_path(
        model.uri, path_utils.is_old_model_artifact(model))
    with tempfile.TemporaryDirectory(prefix='serving-check-') as scratch:
      reason = self._check(scratch, model_path, window, front_end,
                           exec_properties, figures)
      if reason is None:
        keep(os.path.join(scratch, C.SERVING_FOLDER),
             storage.join(blessing.uri, C.SERVING_FOLDER))
      if os.path.exists(os.path.join(scratch, SERVER_LOG)):
        storage.upload(os.path.join(scratch, SERVER_LOG),
                       storage.join(blessing.uri, SERVER_LOG))
    _mark(blessing, figures, reason)

  def _check(self, scratch: str, model_path: str, window: types.Artifact,
             front_end: Optional[FrontEnd], exec_properties: Dict[str, Any],
             figures: Dict[str, Any]) -> Optional[str]:
    """Builds the serving model in `scratch` and proves it; returns why it
    may not be pushed, or None. Adds the figures to `figures`."""
    size = int(exec_properties[IMAGE_SIZE_KEY])
    channels = int(exec_properties[CHANNELS_KEY])
    folder = os.path.join(scratch, C.SERVING_FOLDER)
    started = time.time()
    try:
      classes = serving_model.build(model_path, folder, front_end, size,
                                    channels)
    except serving_model.ServingModelError as e:
      return str(e)
    requests = requests_of(window, front_end,
                           int(exec_properties[CHECK_REQUESTS_KEY]))
    # The serving model's own answers, once: the reference of both proofs.
    expected = (serving_model.answer(folder, requests, front_end is not None)
                if requests else None)
    proof = serving_model.check(folder, model_path, requests, front_end,
                                size, channels, scores=expected)
    _record(figures, 'check', proof, f'in process '
            f'({time.time() - started:.0f} s)')
    if proof['problem'] or exec_properties[SERVER_KEY] != KSERVE:
      return proof['problem']
    manifest = cloud_push.CloudManifest(
        model_name=exec_properties[MODEL_NAME_KEY], classes=classes,
        families=[], request=pairing.request_input(front_end),
        front_end=front_end,
        figures={}, source={'model': model_path},
        created=time.strftime('%Y-%m-%dT%H:%M:%S%z'))
    try:
      served = prove_in_server(
          folder, manifest, requests, expected,
          float(exec_properties[READY_SECONDS_KEY]),
          os.path.join(scratch, SERVER_LOG))
    except launch.LaunchError as e:
      return str(e)
    _record(figures, 'server', served,
            f"in KServe's model server, ready in {served['ready_seconds']} s")
    return served['problem']
