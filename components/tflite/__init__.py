"""The on-device model library: making a TFLite model for a device and
proving it, as plain functions any component, the bench and a second model
import (the pusher, the model search).

A leaf package: it imports `components.common` and `components.ondevice`
and no component, so an edit to one component's executor changes no other
component's cache key (`tests/test_layout.py` reads the imports).

- `conversion`: SavedModel to TFLite in each quantization mode, and the
  proofs against the SavedModel.
- `budget`: the device budget (bytes, latency, TensorFlow Lite Micro's
  arena) and its breaches.
- `micro`: the model run in TensorFlow Lite Micro, in child processes.
- `firmware`: the model as C++ source for firmware.
- `model_metadata`: TFLite metadata (labels, normalisation, audio
  properties) embedded in the model.
- `results`: the typed results of the proofs; their fields name every
  figure the pusher records.

`Quantization` and `QUANTIZATION_MODES` live here, free of TensorFlow, so
the command line can check the setting without loading it; `conversion`
documents each mode.
"""

import enum


class Quantization(str, enum.Enum):
  """The quantization modes, equal to their names as the settings and the
  manifests spell them (`Quantization.INT8 == 'int8'`)."""
  NONE = 'none'
  DYNAMIC = 'dynamic'
  FLOAT16 = 'float16'
  INT8 = 'int8'


QUANTIZATION_MODES = tuple(mode.value for mode in Quantization)
