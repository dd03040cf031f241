"""Embed TFLite metadata (labels, normalisation, phase one's threshold)
with tflite-support.

With the metadata in the model file, the TFLite Task Library's
ImageClassifier reads the labels and the input normalisation directly.

Phase one's threshold travels as the output's `ScoreThresholdingOptions`
(`global_score_threshold`), the score threshold MediaPipe Tasks'
classifiers and the TFLite Task Library read when the app sets none: they
list a class only when its score reaches it, so `instrument` is among the
categories exactly when phase one flags the window. The scores themselves
are the model's, as LiteRT, `predict` and TensorFlow Lite Micro read them
with the manifest's `threshold.value`; below 0.5 the negative class may be
listed too, and ranked first, so an app asks whether `instrument` is
listed, not which class leads. An app that wants every class sets
`score_threshold=0`.

The writers come from tflite-support, whose native library needs libusb-1.0
on the machine; where it cannot be imported the model is pushed without
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
    threshold: phase one's threshold, the output's score threshold (see
      the module's docstring); None records none.

  Returns:
    (model bytes, None) with metadata embedded, or (the unchanged model,
    reason) when the writers are unavailable or fail.
  """
  return _populate(model, class_names, 'image', threshold,
                   lambda writers, labels: (
                       writers.MetadataWriter.create_for_inference(
                           model, input_norm_mean=[INPUT_MEAN],
                           input_norm_std=[INPUT_STD],
                           label_file_paths=[labels])))


def _populate(model: bytes, class_names: Sequence[str], kind: str,
              threshold: Optional[float], create
              ) -> Tuple[bytes, Optional[str]]:
  """Writes the labels file, makes the `kind` writer with
  `create(writers, labels_path)`, and returns its model with `threshold`
  as the output's score threshold, or the unchanged model and why not."""
  try:
    writers = _writers(kind)
  except ImportError as e:
    return model, f'tflite-support metadata writers cannot be imported ({e})'
  with tempfile.TemporaryDirectory() as tmp:
    labels_path = os.path.join(tmp, 'labels.txt')
    with open(labels_path, 'w', encoding='utf-8') as f:
      f.write('\n'.join(class_names) + '\n')
    try:
      populated = create(writers, labels_path).populate()
      if threshold is not None:
        populated = with_score_threshold(model, populated, threshold)
      return populated, None
    except (ValueError, RuntimeError) as e:
      return model, f'the metadata writer failed ({e})'


def with_score_threshold(model: bytes, populated: bytes, threshold: float
                         ) -> bytes:
  """`model` with `populated`'s metadata and associated files, its first
  output's `ScoreThresholdingOptions` set to `threshold` (tflite-support's
  writers have no field for it).

  Raises:
    ValueError: for a threshold outside [0, 1].
  """
  if not 0.0 <= threshold <= 1.0:
    raise ValueError(f'threshold {threshold!r} is not a score in [0, 1]')
  import flatbuffers  # pylint: disable=g-import-not-at-top
  from tensorflow_lite_support.metadata import metadata_schema_py_generated as schema  # pylint: disable=g-import-not-at-top
  from tensorflow_lite_support.metadata.python import metadata  # pylint: disable=g-import-not-at-top
  displayer = metadata.MetadataDisplayer.with_model_buffer(populated)
  described, output = _output_metadata(displayer)
  units = [unit for unit in (output.processUnits or [])
           if unit.optionsType !=
           schema.ProcessUnitOptions.ScoreThresholdingOptions]
  unit = schema.ProcessUnitT()
  unit.optionsType = schema.ProcessUnitOptions.ScoreThresholdingOptions
  unit.options = schema.ScoreThresholdingOptionsT()
  unit.options.globalScoreThreshold = float(threshold)
  output.processUnits = units + [unit]
  builder = flatbuffers.Builder(0)
  builder.Finish(described.Pack(builder),
                 metadata.MetadataPopulator.METADATA_FILE_IDENTIFIER)
  populator = metadata.MetadataPopulator.with_model_buffer(model)
  populator.load_metadata_buffer(builder.Output())
  populator.load_associated_file_buffers({
      name: displayer.get_associated_file_buffer(name)
      for name in displayer.get_packed_associated_file_list()})
  populator.populate()
  return bytes(populator.get_model_buffer())


def _output_metadata(displayer):
  """The model's metadata as an object (`ModelMetadataT`) and its first
  output's entry in it."""
  from tensorflow_lite_support.metadata import metadata_schema_py_generated as schema  # pylint: disable=g-import-not-at-top
  described = schema.ModelMetadataT.InitFromObj(
      schema.ModelMetadata.GetRootAsModelMetadata(
          displayer.get_metadata_buffer(), 0))
  return described, described.subgraphMetadata[0].outputTensorMetadata[0]


def score_threshold(model: bytes) -> Optional[float]:
  """The first output's score threshold in `model`'s metadata, or None."""
  from tensorflow_lite_support.metadata import metadata_schema_py_generated as schema  # pylint: disable=g-import-not-at-top
  from tensorflow_lite_support.metadata.python import metadata  # pylint: disable=g-import-not-at-top
  try:
    displayer = metadata.MetadataDisplayer.with_model_buffer(model)
  except ValueError:
    return None
  for unit in _output_metadata(displayer)[1].processUnits or []:
    if unit.optionsType == schema.ProcessUnitOptions.ScoreThresholdingOptions:
      return float(unit.options.globalScoreThreshold)
  return None


def embed_audio(model: bytes, class_names: Sequence[str], sample_rate: int,
                threshold: Optional[float] = None
                ) -> Tuple[bytes, Optional[str]]:
  """Returns the waveform model with audio-classifier metadata (what
  MediaPipe Tasks' AudioClassifier requires: the input's AudioProperties,
  sample rate and one channel, and the labels as a TENSOR_AXIS_LABELS file
  on the output; and phase one's threshold as the output's score
  threshold, see the module's docstring), or the unchanged model and why
  not.

  Args:
    model: the waveform model's bytes (float32 samples in, scores out).
    class_names: label names in class-index order.
    sample_rate: the front end's rate, which the input expects.
    threshold: phase one's threshold; None records none.
  """
  return _populate(model, class_names, 'audio', threshold,
                   lambda writers, labels: (
                       writers.MetadataWriter.create_for_inference(
                           model, int(sample_rate), 1, [labels])))
