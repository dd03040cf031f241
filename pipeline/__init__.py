"""On-device classifier pipeline: data, wiring, running and inspection.

Importing this package selects Keras 2 (tf-keras) for TensorFlow, before
TensorFlow is imported anywhere: with Keras 3 on TF 2.16 the TFLite converter
crashed on our SavedModels, while tf-keras 2.16 converts in every
quantization mode, and TFX 1.16's Transform and TFMA are built on it. The
choice is tested in tests/test_keras_choice.py.
"""

import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
# TensorFlow's C++ start-up chatter (CUDA probes, CPU features) is not ours.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
