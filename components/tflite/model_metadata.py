"""Embed TFLite metadata (labels, normalisation) with tflite-support.

With the metadata in the model file, the TFLite Task Library's
ImageClassifier reads the labels and the input normalisation directly. The
writers come from tflite-support, whose native library needs libusb-1.0 on
the machine; where it cannot be imported the model is pushed without
embedded metadata (labels.txt and manifest.json carry the same facts) and
the reason is recorded.
"""

import os
import tempfile
from typing import Any, Dict, Optional, Sequence, Tuple

# The model takes raw 0..255 pixels and scales them itself, so a client's
# (pixel - mean) / std, as in TFLite metadata's NormalizationOptions, must
# leave every pixel as it is.
INPUT_MEAN = 0.0
INPUT_STD = 1.0


def normalization_options(channels: int) -> Dict[str, Any]:
  """Mean and std per input channel, as TFLite's NormalizationOptions."""
  return {'mean': [INPUT_MEAN] * channels, 'std': [INPUT_STD] * channels}


def _writers(kind: str = 'image'):
  # Import the writer modules directly: `import tflite_support` also loads
  # the Task Library, whose pybind types clash with TensorFlow's.
  if kind == 'audio':
    from tensorflow_lite_support.metadata.python.metadata_writers import audio_classifier  # pylint: disable=g-import-not-at-top
    return audio_classifier
  from tensorflow_lite_support.metadata.python.metadata_writers import image_classifier  # pylint: disable=g-import-not-at-top
  return image_classifier


def embed(model: bytes, class_names: Sequence[str]
          ) -> Tuple[bytes, Optional[str]]:
  """Returns the model with image-classifier metadata, or why not.

  The input normalisation recorded is mean 0, std 1: the model takes raw
  0..255 pixels and scales them itself. The writer packs the labels in a zip
  stamped with the current time, so the result differs from call to call;
  compare converted models before embedding.

  Args:
    model: the TFLite model's bytes.
    class_names: label names in class-index order.

  Returns:
    (model bytes, None) with metadata embedded, or (the unchanged model,
    reason) when the writers are unavailable or fail.
  """
  return _populate(model, class_names, 'image', lambda writers, labels: (
      writers.MetadataWriter.create_for_inference(
          model, input_norm_mean=[INPUT_MEAN], input_norm_std=[INPUT_STD],
          label_file_paths=[labels])))


def _populate(model: bytes, class_names: Sequence[str], kind: str,
              create) -> Tuple[bytes, Optional[str]]:
  """Writes the labels file, makes the `kind` writer with
  `create(writers, labels_path)` and returns its model, or the unchanged
  model and why not."""
  try:
    writers = _writers(kind)
  except ImportError as e:
    return model, f'tflite-support metadata writers cannot be imported ({e})'
  with tempfile.TemporaryDirectory() as tmp:
    labels_path = os.path.join(tmp, 'labels.txt')
    with open(labels_path, 'w', encoding='utf-8') as f:
      f.write('\n'.join(class_names) + '\n')
    try:
      return create(writers, labels_path).populate(), None
    except (ValueError, RuntimeError) as e:
      return model, f'the metadata writer failed ({e})'


def embed_audio(model: bytes, class_names: Sequence[str], sample_rate: int
                ) -> Tuple[bytes, Optional[str]]:
  """Returns the waveform model with audio-classifier metadata (what
  MediaPipe Tasks' AudioClassifier requires: the input's AudioProperties,
  sample rate and one channel, and the labels as a TENSOR_AXIS_LABELS file
  on the output), or the unchanged model and why not.

  Args:
    model: the waveform model's bytes (float32 samples in, scores out).
    class_names: label names in class-index order.
    sample_rate: the front end's rate, which the input expects.
  """
  return _populate(model, class_names, 'audio', lambda writers, labels: (
      writers.MetadataWriter.create_for_inference(
          model, int(sample_rate), 1, [labels])))
