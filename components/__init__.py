"""Code that runs inside the pipeline's components.

`modules/` holds the Transform and Trainer module files (shipped by TFX as a
wheel, so kept minimal), `data_gate.py` stops a run on data anomalies, and
`tflite_pusher/` converts, validates and pushes the TFLite model.

Importing this package selects Keras 2 (tf-keras), as `pipeline` does, for
the same reason (see pipeline/__init__.py).
"""

import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
