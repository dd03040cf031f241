"""On-device classifier pipeline: data, wiring, running and inspection.

Importing this package selects Keras 2 (tf-keras) for TensorFlow, before
TensorFlow is imported anywhere: with Keras 3 on TF 2.16 the TFLite converter
crashed on our SavedModels, while tf-keras 2.16 converts in every
quantization mode, and TFX 1.16's Transform and TFMA are built on it. The
choice is tested in tests/test_keras_choice.py.
"""

import os
import warnings

os.environ['TF_USE_LEGACY_KERAS'] = '1'
# TensorFlow's oneDNN kernels: on by default only on CPUs with AVX-512
# VNNI or newer, off elsewhere (this project's 2-core AVX2 machines), where
# they make a training step about 2x and musicnn's hearing about 3x faster
# (bench part 1). Set explicitly, every machine runs the same kernels; 0
# turns them off.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
# TensorFlow's C++ start-up chatter (CUDA probes on a machine without CUDA,
# CPU features) is not ours; real failures still surface as exceptions.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# Google client libraries warn at import that Python 3.10 is old; TFX 1.16
# installs on no newer Python.
warnings.filterwarnings('ignore', category=FutureWarning, module='google')
