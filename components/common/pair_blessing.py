"""The cascade's blessing, written as TFX's Evaluator writes a model's
(`blessed` 1 or 0 and a BLESSED or NOT_BLESSED file) and read by both
pushers: a pair the cascade did not bless is pushed by neither."""

import os
from typing import List, Optional

from components.common import storage

# The blessing's properties, as TFX's Evaluator names its own
# (`contracts.CascadeEvaluator` spells them from here).
BLESSED = 'blessed'
REASON = 'reason'
BLESSED_FILE = 'BLESSED'
NOT_BLESSED_FILE = 'NOT_BLESSED'


def write(artifact, reason: Optional[str]) -> None:
  """Blesses `artifact` (a ModelBlessing) when `reason` is None, else
  records why not."""
  storage.write_bytes(os.path.join(
      artifact.uri, NOT_BLESSED_FILE if reason else BLESSED_FILE), b'')
  artifact.set_int_custom_property(BLESSED, 0 if reason else 1)
  if reason:
    artifact.set_string_custom_property(REASON, reason)


def held_back(blessings: List) -> Optional[str]:
  """Why the cascade held the pair back, or None when it blessed it or
  was not run (a window without families gives no blessing)."""
  if not blessings:
    return None
  blessing = blessings[0]
  if (blessing.has_custom_property(BLESSED) and
      blessing.get_int_custom_property(BLESSED)):
    return None
  reason = (blessing.get_string_custom_property(REASON)
            if blessing.has_custom_property(REASON) else 'not blessed')
  return f'the cascade held the pair back: {reason}'
