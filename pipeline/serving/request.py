"""A ready request for phase two's model server, made from a recording
(`python -m pipeline request`): the body of TF Serving's V1 predict (or
the Open Inference Protocol's V2 infer) holding the recording's windows,
cut and drawn as the served version's front end says, to send with
`curl`:

  python -m pipeline request recording.wav > input.json
  curl -s -d @input.json http://127.0.0.1:8080/v1/models/instruments:predict

A version of pictures takes the file's bytes as its one instance. The
body carries the version's pairing key, as a device's would.
"""

import base64
import dataclasses
from typing import Any, Dict, List

from components.common import pairing
from components.common import storage
from pipeline.data import spectrogram
from pipeline.serving import cascade


class RequestError(ValueError):
  """A request that cannot be made; the message names the file or folder."""


@dataclasses.dataclass
class Request:
  """A request body and what it holds.

  Attributes:
    body: the JSON body.
    windows: the windows (or images) in it.
    total: the recording's windows (more than `windows` when cut short).
    version: the served version it was made for.
    url_path: where to send it on the server.
  """
  body: Dict[str, Any]
  windows: int
  total: int
  version: int
  url_path: str


def _newest_manifest(base: str):
  from components.cloud import push  # pylint: disable=g-import-not-at-top
  found = push.versions(base)
  if not found:
    raise RequestError(f'{base}: no pushed version of phase two (a numbered '
                       'folder with assets.extra/manifest.json); run the '
                       'pipeline on spans with families, or name --model')
  return found[-1], push.read_manifest(storage.join(base, str(found[-1])))


def _windows(path: str, front_end) -> List[bytes]:
  """Every window of the recording at `path`, as 16-bit PCM bytes."""
  from components.frontend import melscale  # pylint: disable=g-import-not-at-top
  from components.frontend import windowing  # pylint: disable=g-import-not-at-top
  try:
    with storage.open_binary(path) as f:
      rate, _, blocks = spectrogram.recording_blocks(f, path, None, None)
      cutter = windowing.StreamWindows(front_end, rate)
      found = [melscale.pcm16_bytes(samples) for block in blocks
               for _, _, samples in cutter.push(block)]
      found += [melscale.pcm16_bytes(samples)
                for _, _, samples in cutter.finish()]
  except spectrogram.AudioError as e:
    raise RequestError(str(e)) from e
  except OSError as e:
    raise RequestError(f'{path}: {e.strerror or e}') from e
  if not found:
    raise RequestError(f'{path}: no window (the recording is empty)')
  return found


def make(base: str, path: str, v2: bool = False,
         most: int = cascade.MAX_BATCH) -> Request:
  """The request for `path` to the newest version under `base` (a model's
  folder of numbered versions).

  Args:
    base: the served model's base path.
    path: a recording (WAV, FLAC, Ogg, MP3), or an image for a version of
      pictures.
    v2: the Open Inference Protocol's body instead of V1's.
    most: at most this many windows (the server takes 32 a request).

  Raises:
    RequestError: naming the folder or the file.
  """
  from components.cloud import serving_model  # pylint: disable=g-import-not-at-top
  version, manifest = _newest_manifest(base)
  if manifest.request == serving_model.PCM_INPUT:
    found = _windows(path, manifest.front_end)
  else:
    try:
      found = [storage.read_bytes(path)]
    except OSError as e:
      raise RequestError(f'{path}: {e.strerror or e}') from e
  total, found = len(found), found[:most]
  texts = [base64.b64encode(data).decode('ascii') for data in found]
  name = manifest.model_name
  if v2:
    body: Dict[str, Any] = {'inputs': [{
        'name': manifest.request, 'shape': [len(texts)], 'datatype': 'BYTES',
        'data': texts}]}
    if manifest.pairing_key:
      body['parameters'] = {pairing.FIELD: manifest.pairing_key}
    where = f'/v2/models/{name}/infer'
  else:
    body = {'instances': [{manifest.request: {'b64': text}}
                          for text in texts]}
    if manifest.pairing_key:
      body[pairing.FIELD] = manifest.pairing_key
    where = f'/v1/models/{name}:predict'
  return Request(body, len(texts), total, version, where)
