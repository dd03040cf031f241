"""What runs on the device, and the pushed model folder it reads.

A leaf package: it imports `components.common` and nothing else of the
project, and never TensorFlow, so `predict`, `predict --stream`, an app's
copy of them and the coming cascade client carry no training stack.

- `push`: numbered versions, `LATEST`, the manifest, written atomically.
- `manifest`: the manifest as one typed class with a schema version,
  written by the pusher and read by every reader.
- `model_folder`: one verified way to open a version (every file against
  its SHA-256, then the files against each other) before any interpreter
  touches it.
- `runtime`: LiteRT's interpreter as an app runs it.
- `pixels`: an image file's bytes to the model's pixels, as training
  decodes and resizes them, in NumPy.
"""
