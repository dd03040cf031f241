"""Code that runs inside the pipeline's components.

`modules/` holds the Transform, Trainer and model-search module code
(fingerprinted into their cache keys, so kept minimal), `data_gate.py` stops
a run on data anomalies, `span_window/` assembles the latest spans,
`model_search/` keeps the best trial within the device budget, and
`tflite_pusher/` converts, validates and pushes the TFLite model.

Importing this package selects Keras 2 (tf-keras), as `pipeline` does, for
the same reason (see pipeline/__init__.py).
"""

import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
