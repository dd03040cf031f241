"""The workspace's record of the last successful run (`last_run.json`),
which the scheduler reads to tell whether a span is new."""

import json
import os
from typing import Any, Dict

from components.common import local_disk

STATE_FILE = 'last_run.json'


def read_state(workspace: str) -> Dict[str, Any]:
  """What the last successful run recorded (empty before the first), from
  the workspace, a local folder."""
  path = os.path.join(workspace, STATE_FILE)
  if not os.path.isfile(path):
    return {}
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def write_state(workspace: str, state: Dict[str, Any]) -> None:
  """Records the last successful run, atomically."""
  local_disk.write_file(os.path.join(workspace, STATE_FILE),
                        json.dumps(state, indent=2))
