"""The cascade's blessing, written as TFX's Evaluator writes a model's
(`blessed` 1 or 0 and a BLESSED or NOT_BLESSED file) and read by both
pushers: a pair the cascade did not bless is pushed by neither."""

import os
from typing import List, Optional

from components import contracts
from components.common import storage

C = contracts.CascadeEvaluator
BLESSED_FILE = 'BLESSED'
NOT_BLESSED_FILE = 'NOT_BLESSED'


def write(artifact, reason: Optional[str]) -> None:
  """Blesses `artifact` (a ModelBlessing) when `reason` is None, else
  records why not."""
  storage.write_bytes(os.path.join(
      artifact.uri, NOT_BLESSED_FILE if reason else BLESSED_FILE), b'')
  artifact.set_int_custom_property(C.BLESSED, 0 if reason else 1)
  if reason:
    artifact.set_string_custom_property(C.REASON, reason)


def held_back(blessings: List) -> Optional[str]:
  """Why the cascade held the pair back, or None when it blessed it or
  was not run (a window without families gives no blessing)."""
  if not blessings:
    return None
  blessing = blessings[0]
  if (blessing.has_custom_property(C.BLESSED) and
      blessing.get_int_custom_property(C.BLESSED)):
    return None
  reason = (blessing.get_string_custom_property(C.REASON)
            if blessing.has_custom_property(C.REASON) else 'not blessed')
  return f'the cascade held the pair back: {reason}'
