"""Phase two as a KServe model: one module-level `kserve.Model`, as
KServe's own examples write theirs, that `components.cloud.server` serves.

KServe takes each request through three handlers, and each does one thing:

- :meth:`PhaseTwoModel.preprocess`: the request's windows, decoded and
  checked (a bad request is KServe's `InvalidInput`, 400; a phase one this
  version does not pair with, 409), and the version that will answer them,
  fixed here so that a request is answered whole by one version whatever
  is swapped in meanwhile;
- :meth:`PhaseTwoModel.predict`: those windows through the model, in one
  call with whatever other requests arrived together (`server.Batcher`);
- :meth:`PhaseTwoModel.postprocess`: the answer in the protocol the
  request came in (V1's `predictions`, V2's outputs).

:meth:`PhaseTwoModel.load` serves the newest version that loads, and a
watcher thread swaps in newer ones as they are pushed.

This module imports KServe, so it runs in KServe's environment
(`.venv-kserve`) only; what needs no KServe (the versions, the request
decoding, the batcher) is in `components.cloud.server`.
"""

import dataclasses
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

import kserve
from kserve.errors import InvalidInput
from kserve.protocol import infer_type

from components.cloud import server


@dataclasses.dataclass(frozen=True)
class Windows:
  """A request, preprocessed: its windows, the version that answers them,
  and its V2 request (None for V1)."""
  version: server.Version
  data: List[bytes]
  v2_request: Optional[infer_type.InferRequest] = None


@dataclasses.dataclass(frozen=True)
class Answered:
  """The model's answer to one request's windows, as NumPy arrays
  (`scores`, `label`), beside what postprocess needs of the request."""
  windows: Windows
  answer: Dict[str, Any]


class PhaseTwoModel(kserve.Model):
  """Phase two's newest version under a base path; swaps in newer ones as
  they appear.

  Args:
    name: the name it is served under (`/v1/models/<name>`).
    base: the model's base path (numbered versions inside).
    poll_seconds: how often to look for a newer version.
    batcher: what joins requests into model calls (one of its own when
      None).
  """

  def __init__(self, name: str, base: str, poll_seconds: float,
               batcher: Optional[server.Batcher] = None):
    super().__init__(name)
    self.base = base
    self.poll_seconds = poll_seconds
    self.current: Optional[server.Version] = None
    self.batcher = batcher or server.Batcher()
    self._stop = threading.Event()
    self._loader = server.Loader(base)

  def load(self) -> bool:
    found = server.versions(self.base)
    if not found:
      raise SystemExit(f'serve: no pushed version under {self.base} (a '
                       'version is a numbered folder with assets.extra/'
                       'manifest.json, as the phase-two pusher writes it)')
    # The newest version that loads; a damaged newer one is said once.
    for number in reversed(found):
      self.current = self._loader.load(number)
      if self.current is not None:
        break
    else:
      raise SystemExit(f'serve: no version under {self.base} could be '
                       'served (each is said above); push phase two again')
    server.LOG.info('serving %s version %d from %s', self.name,
                    self.current.number, self.current.folder)
    threading.Thread(target=self._watch, name='version-watch',
                     daemon=True).start()
    self.ready = True
    return self.ready

  def _watch(self) -> None:
    while not self._stop.wait(self.poll_seconds):
      found = server.versions(self.base)
      if not found or found[-1] <= self.current.number:
        continue
      started = time.time()
      # A version that does not load leaves the one being served.
      loaded = self._loader.load(found[-1])
      if loaded is not None:
        previous, self.current = self.current.number, loaded
        server.LOG.info('serving %s version %d (was %d), loaded in %.1f s',
                        self.name, loaded.number, previous,
                        time.time() - started)

  def stop(self) -> None:
    self._stop.set()
    super().stop()

  async def preprocess(self, payload, headers=None) -> Windows:
    version = self.current  # this request's version, whatever is swapped
    try:
      if isinstance(payload, infer_type.InferRequest):
        version.check_pairing((payload.parameters or {}).get(
            server.PAIRING_FIELD))
        return Windows(version, _v2_instances(payload, version), payload)
      payload = server.v1_body(payload)
      version.check_pairing(payload.get(server.PAIRING_FIELD))
      return Windows(version, server.v1_instances(payload, version))
    except server.RequestError as e:
      raise InvalidInput(str(e)) from None

  async def predict(self, payload: Windows, headers=None) -> Answered:
    try:
      answer = await self.batcher.answer(payload.version, payload.data)
    except server.RequestError as e:
      raise InvalidInput(str(e)) from None
    return Answered(payload, answer)

  async def postprocess(self, result: Answered, headers=None,
                        response_headers=None):
    windows = result.windows
    if windows.v2_request is None:
      return server.v1_answer(windows.version, result.answer)
    return self._v2_answer(windows, result.answer)

  def get_input_types(self) -> List[Dict[str, Any]]:
    """V2 model metadata's inputs: one BYTES element a window."""
    return [{'name': self.current.input_name, 'datatype': 'BYTES',
             'shape': [-1]}]

  def get_output_types(self) -> List[Dict[str, Any]]:
    """V2 model metadata's outputs, as :meth:`postprocess` gives them."""
    classes = len(self.current.classes)
    return [{'name': 'scores', 'datatype': 'FP32', 'shape': [-1, classes]},
            {'name': 'classes', 'datatype': 'BYTES', 'shape': [-1, classes]},
            {'name': 'label', 'datatype': 'BYTES', 'shape': [-1]}]

  def _v2_answer(self, windows: Windows, answer: Dict[str, Any]):
    version = windows.version
    scores = answer['scores'].astype('float32')
    labels = [label.decode('utf-8') for label in answer['label']]
    rows = len(labels)
    outputs = [
        infer_type.InferOutput('scores', list(scores.shape), 'FP32',
                               scores.reshape(-1).tolist()),
        infer_type.InferOutput('classes', [rows, len(version.classes)],
                               'BYTES', version.classes * rows),
        infer_type.InferOutput('label', [rows], 'BYTES', labels)]
    return infer_type.InferResponse(
        response_id=windows.v2_request.id or str(uuid.uuid4()),
        model_name=self.name, infer_outputs=outputs,
        model_version=str(version.number))


def _v2_instances(payload: infer_type.InferRequest,
                  version: server.Version) -> List[bytes]:
  """The request bytes of a V2 request's one input, in order."""
  inputs = [i for i in payload.inputs if i.name == version.input_name]
  if len(inputs) != 1:
    raise server.RequestError(f'the request must have one input named '
                              f'{version.input_name!r} (BYTES, base64 text)')
  values = inputs[0].data
  if not isinstance(values, list):
    values = list(inputs[0].as_numpy().reshape(-1))
  return server.checked([server.decode(value, f'element {i}', version)
                         for i, value in enumerate(values)])
