"""A pretrained music model's ears, for phase two: musicnn (Pons and Serra,
2019) rewritten in TensorFlow 2, its trained weights read from the files
PyPI's `musicnn` 0.1.0 wheel ships.

- :mod:`weights`: where the checkpoints live, which ones there are, and the
  check that the files are the wheel's (SHA-256); no TensorFlow.
- :mod:`musicnn`: the log-mel front end (librosa's definition, as the
  models were trained on it) and the network as Keras layers, loaded from a
  checkpoint; the pooled embedding phase two learns on.

A leaf: it imports nothing of the project but `components.common`, so the
Trainer module, the bench and the proof test import it alike.
"""
