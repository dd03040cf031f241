"""Embed TFLite metadata (labels, normalisation, phase one's threshold)
with tflite-support.

With the metadata in the model file, the TFLite Task Library's
ImageClassifier reads the labels and the input normalisation directly.

Phase one's threshold travels as score calibration (`ScoreCalibrationOptions`
with an `INVERSE_LOGISTIC` transformation and a TENSOR_AXIS_SCORE_CALIBRATION
file), which MediaPipe Tasks' classifiers and the Task Library apply to the
raw scores before ranking them: with threshold t, the positive class's score
p is shown as sigmoid(logit(p) - logit(t)) and the negative class's as one
minus that, so the top category is `instrument` exactly when p >= t, and a
`score_threshold` of 0.5 keeps only the decided one. The raw output tensor
is unchanged: LiteRT, `predict` and TensorFlow Lite Micro read it with the
manifest's threshold.

The writers come from tflite-support, whose native library needs libusb-1.0
on the machine; where it cannot be imported the model is pushed without
embedded metadata (labels.txt and manifest.json carry the same facts) and
the reason is recorded.
"""

import math
import os
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

# The model takes raw 0..255 pixels and scales them itself, so a client's
# (pixel - mean) / std, as in TFLite metadata's NormalizationOptions, must
# leave every pixel as it is.
INPUT_MEAN = 0.0
INPUT_STD = 1.0
# The associated file holding the calibration's parameters.
CALIBRATION_FILE = 'score_calibration.txt'
# The calibrated threshold is kept inside (0, 1) so its logit is finite: a
# threshold of 1e-6 (phase one flags everything) is still one.
_THRESHOLD_CLAMP = 1e-6


def calibration_lines(class_names: Sequence[str], threshold: float
                      ) -> List[str]:
  """The score calibration file's lines (`scale,slope,offset`, one per class
  in label order) that move a binary classifier's decision from 0.5 to
  `threshold`: the positive (last) class's score p becomes
  sigmoid(logit(p) - logit(threshold)), the negative's
  sigmoid(logit(1 - p) + logit(threshold)), and the two still sum to 1.

  Raises:
    ValueError: for other than two classes, or a threshold outside [0, 1].
  """
  if len(class_names) != 2:
    raise ValueError(f'score calibration moves a binary decision; this model '
                     f'has {len(class_names)} classes')
  if not 0.0 <= threshold <= 1.0:
    raise ValueError(f'threshold {threshold!r} is not a score in [0, 1]')
  t = min(max(float(threshold), _THRESHOLD_CLAMP), 1.0 - _THRESHOLD_CLAMP)
  logit = math.log(t) - math.log(1.0 - t)
  return [f'1.0,1.0,{logit!r}', f'1.0,1.0,{-logit!r}']


def calibrated(scores, threshold: float):
  """What a reader of the calibration (MediaPipe, the Task Library) shows for
  raw binary `scores` ([..., 2]); the tests' and the docs' reference."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  offsets = np.asarray([float(line.rsplit(',', 1)[1]) for line in
                        calibration_lines(['-', '+'], threshold)])
  clipped = np.clip(np.asarray(scores, np.float64), 1e-16, 1.0)
  logits = np.log(clipped) - np.log(np.clip(1.0 - clipped, 1e-16, 1.0))
  return 1.0 / (1.0 + np.exp(-(logits + offsets)))


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


def embed(model: bytes, class_names: Sequence[str],
          threshold: Optional[float] = None
          ) -> Tuple[bytes, Optional[str]]:
  """Returns the model with image-classifier metadata, or why not.

  The input normalisation recorded is mean 0, std 1: the model takes raw
  0..255 pixels and scales them itself. The writer packs the labels in a zip
  stamped with the current time, so the result differs from call to call;
  compare converted models before embedding.

  Args:
    model: the TFLite model's bytes.
    class_names: label names in class-index order.
    threshold: phase one's threshold, embedded as score calibration (see
      the module's docstring); None embeds none.

  Returns:
    (model bytes, None) with metadata embedded, or (the unchanged model,
    reason) when the writers are unavailable or fail.
  """
  return _populate(model, class_names, 'image', threshold,
                   lambda writers, labels, calibration: (
                       writers.MetadataWriter.create_for_inference(
                           model, input_norm_mean=[INPUT_MEAN],
                           input_norm_std=[INPUT_STD],
                           label_file_paths=[labels],
                           score_calibration_md=calibration)))


def _populate(model: bytes, class_names: Sequence[str], kind: str,
              threshold: Optional[float], create
              ) -> Tuple[bytes, Optional[str]]:
  """Writes the labels file (and the score calibration file for a
  `threshold`), makes the `kind` writer with
  `create(writers, labels_path, calibration or None)` and returns its model,
  or the unchanged model and why not."""
  try:
    writers = _writers(kind)
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as schema  # pylint: disable=g-import-not-at-top
    from tensorflow_lite_support.metadata.python.metadata_writers import metadata_info  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    return model, f'tflite-support metadata writers cannot be imported ({e})'
  with tempfile.TemporaryDirectory() as tmp:
    labels_path = os.path.join(tmp, 'labels.txt')
    with open(labels_path, 'w', encoding='utf-8') as f:
      f.write('\n'.join(class_names) + '\n')
    calibration = None
    if threshold is not None:
      calibration_path = os.path.join(tmp, CALIBRATION_FILE)
      with open(calibration_path, 'w', encoding='utf-8') as f:
        # No newline at the end: MediaPipe reads a sigmoid per line, the
        # empty one after it too, and refuses a count that is not the
        # classes'.
        f.write('\n'.join(calibration_lines(class_names, threshold)))
      calibration = metadata_info.ScoreCalibrationMd(
          schema.ScoreTransformationType.INVERSE_LOGISTIC, 0.0,
          calibration_path)
    try:
      return create(writers, labels_path, calibration).populate(), None
    except (ValueError, RuntimeError) as e:
      return model, f'the metadata writer failed ({e})'


def embed_audio(model: bytes, class_names: Sequence[str], sample_rate: int,
                threshold: Optional[float] = None
                ) -> Tuple[bytes, Optional[str]]:
  """Returns the waveform model with audio-classifier metadata (what
  MediaPipe Tasks' AudioClassifier requires: the input's AudioProperties,
  sample rate and one channel, and the labels as a TENSOR_AXIS_LABELS file
  on the output; and phase one's threshold as score calibration, see the
  module's docstring), or the unchanged model and why not.

  Args:
    model: the waveform model's bytes (float32 samples in, scores out).
    class_names: label names in class-index order.
    sample_rate: the front end's rate, which the input expects.
    threshold: phase one's threshold; None embeds no calibration.
  """
  return _populate(model, class_names, 'audio', threshold,
                   lambda writers, labels, calibration: (
                       writers.MetadataWriter.create_for_inference(
                           model, int(sample_rate), 1, [labels],
                           score_calibration_md=calibration)))
