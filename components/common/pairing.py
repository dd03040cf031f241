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
