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

`QUANTIZATION_MODES` lives here, free of TensorFlow, so the command line can
check the setting without loading it; `conversion` documents each mode.
"""

QUANTIZATION_MODES = ('none', 'dynamic', 'float16', 'int8')
