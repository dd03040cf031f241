"""What pairs a phase-one version with a phase-two version.

Phase one flags windows; phase two names their family. The pair works only
when phase two answers for the families phase one was trained beside (its
classes: the reject class and those families) and draws windows with the
same audio front end. Both versions carry the same key of those two, so a
device can say which phase two its phase one expects and a server can
refuse a device whose phase one does not match, instead of answering with
labels the device does not know.
"""

import hashlib
import json
from typing import Any, Dict, Optional, Sequence

# What a device sends phase two for one window (the serving signature's
# input): mono 16-bit PCM of the window for spans of recordings, the
# encoded picture for spans of images.
PCM_INPUT = 'audio_pcm'
IMAGE_BYTES_INPUT = 'image_bytes'
# Where a request names the phase one it comes from (V1's body, V2's
# parameters) and an answer names the phase two that gave it.
FIELD = 'pairing_key'


def request_input(front_end: Any) -> str:
  """The input phase two takes, by the spans' front end (its record or
  :class:`FrontEnd`; None for spans of images)."""
  return PCM_INPUT if front_end else IMAGE_BYTES_INPUT


def key(reject: str, families: Sequence[str],
        front_end: Optional[Dict[str, Any]]) -> Optional[str]:
  """The pairing key of a window's classes and front end; None when it
  gives no families (a phase one that pairs with no cloud phase).

  Args:
    reject: class 0's name, phase two's reject class.
    families: the positive class's families.
    front_end: the window's recorded front end (`FrontEnd.to_record()`),
      None for spans of images.
  """
  if not families:
    return None
  text = json.dumps({'classes': [reject] + sorted(families),
                     'front_end': front_end}, sort_keys=True)
  return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]
