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
# TensorFlow's oneDNN kernels: on by default only on CPUs with AVX-512
# VNNI or newer, off elsewhere (this project's 2-core AVX2 machines), where
# they make a training step about 2x and musicnn's hearing about 3x faster
# (bench part 1). Set explicitly, every machine runs the same kernels; 0
# turns them off.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
