"""Figures that readers compute from an artifact's files, kept once computed.

A TFX artifact's files never change after its component published it, so
a figure computed from them (the transformed examples' size, the report's
scores of the eval examples) holds for as long as the artifact exists.
Readers keep such figures here, keyed by the artifacts' URIs, so a run
served from the cache, and its report, do not redo the work: the cache
answers. The files live in the workspace (`WORKSPACE/cache/`), a local
folder; a missing or unreadable entry is computed again.
"""

import hashlib
import json
import os
from typing import Any, Callable, Sequence

from components.common import local_disk

CACHE_FOLDER = 'cache'


def cached(workspace: str, kind: str, uris: Sequence[str],
           compute: Callable[[], Any]) -> Any:
  """The figure of `kind` for the artifacts at `uris`, computed once.

  Args:
    workspace: the workspace folder (local).
    kind: what the figure is (part of the file name).
    uris: the artifact URIs it is computed from.
    compute: computes it (a JSON-serializable value).

  Returns:
    The kept figure, or `compute()`'s, which is then kept.
  """
  key = hashlib.sha256('\0'.join(uris).encode('utf-8')).hexdigest()[:24]
  path = os.path.join(workspace, CACHE_FOLDER, f'{kind}-{key}.json')
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):
    pass
  value = compute()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  local_disk.write_file(path, json.dumps(value))
  return value
