"""A candidate version: everything a pushed version holds (its files and
its manifest, without a version number), written where the pipeline keeps
artifacts before anything is pushed, so the pair can be judged on exactly
what devices would get. The TFLite converter writes it; the cascade reads
its model, and the TFLite pusher pushes it as it is.
"""

import json
from typing import Dict, Tuple

from components.common import storage
from components.ondevice import push
from components.ondevice.manifest import Manifest

# The candidate's files, beside its manifest.
FILES = 'files'


def write(folder: str, files: Dict[str, bytes], manifest: Manifest) -> None:
  """Writes a candidate into `folder` (local or a bucket URI)."""
  storage.makedirs(storage.join(folder, FILES))
  for name, data in files.items():
    storage.write_bytes(storage.join(folder, FILES, name), data)
  storage.write_bytes(storage.join(folder, push.MANIFEST_FILE),
                      json.dumps(manifest.to_json(), indent=2,
                                 sort_keys=True))


def read(folder: str) -> Tuple[Dict[str, bytes], Manifest]:
  """The files and manifest :func:`write` wrote.

  Raises:
    manifest.ManifestError: for a manifest this code cannot read.
  """
  base = storage.join(folder, FILES)
  files = {name: storage.read_bytes(storage.join(base, name))
           for name in sorted(storage.listdir(base))}
  manifest = Manifest.from_json(json.loads(storage.read_bytes(
      storage.join(folder, push.MANIFEST_FILE))))
  return files, manifest
