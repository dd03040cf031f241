"""Convert, quantize and check TFLite models: plain functions, no TFX.

The TFLite pusher's executor only adapts artifacts to these functions, so each
can be tested on a small model without running a pipeline.

Quantization modes (see :data:`QUANTIZATION_MODES`):

* ``none``: float32, the reference.
* ``dynamic``: `tf.lite.Optimize.DEFAULT`, 8-bit weights, float input and
  output; about a quarter of the float32 size.
* ``float16``: 16-bit float weights, float input and output; about half.
* ``int8``: full integer: 8-bit weights and activations calibrated on a
  representative sample, uint8 input (raw pixels) and uint8 output, for
  integer-only accelerators and the TFLite Task Library.
"""

import hashlib
from typing import ContextManager, Dict, Iterable, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from components.common import metrics
from components.ondevice import runtime
from components.tflite import QUANTIZATION_MODES
from components.tflite import Quantization
from components.tflite import results


class ConversionError(RuntimeError):
  """Raised when the TFLite converter fails; names the mode and the model."""


def check_mode(mode: str) -> str:
  """Returns `mode` if it is a known quantization mode.

  Raises:
    ValueError: naming the known modes.
  """
  if mode not in QUANTIZATION_MODES:
    raise ValueError(f'unknown quantization mode {mode!r}; expected one of '
                     f'{", ".join(QUANTIZATION_MODES)}')
  return mode


def convert(saved_model_dir: str, signature_key: str, mode: str,
            representative_images: Optional[np.ndarray] = None) -> bytes:
  """Converts one signature of a SavedModel to a TFLite flatbuffer.

  Args:
    saved_model_dir: the SavedModel.
    signature_key: the signature to convert (one float image input).
    mode: one of :data:`QUANTIZATION_MODES`.
    representative_images: float32 [n, size, size, channels] pixels used to
      calibrate activations; required for `int8`.

  Returns:
    The TFLite model's bytes.

  Raises:
    ValueError: for an unknown mode, or `int8` without representative images.
    ConversionError: when the converter fails.
  """
  check_mode(mode)
  converter = tf.lite.TFLiteConverter.from_saved_model(
      saved_model_dir, signature_keys=[signature_key])
  if mode != Quantization.NONE:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if mode == Quantization.FLOAT16:
    converter.target_spec.supported_types = [tf.float16]
  elif mode == Quantization.INT8:
    if representative_images is None or len(representative_images) == 0:
      raise ValueError('int8 quantization needs representative images')
    images = np.asarray(representative_images, dtype=np.float32)

    def representative_dataset():
      for image in images:
        yield [image[None, ...]]

    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
  try:
    with native_noise_filtered():
      return converter.convert()
  except Exception as e:  # pylint: disable=broad-except
    raise ConversionError(
        f'TFLite conversion ({mode}) of {saved_model_dir} failed: {e}') from e


# What TensorFlow's native converter and interpreter write to standard
# error with no switch to stop them (TF_CPP_MIN_LOG_LEVEL does not reach
# absl's logging): a line apart from these still reaches the user.
NATIVE_NOISE = ('All log messages before absl::InitializeLog() is called',
                'tf_tfl_flatbuffer_helpers.cc',
                'Created TensorFlow Lite XNNPACK delegate for CPU')


def native_noise_filtered() -> ContextManager[None]:
  """Drops :data:`NATIVE_NOISE` from what native code writes to standard
  error inside the block; every other line still gets through, in order
  (:func:`runtime.native_stderr_filtered`)."""
  return runtime.native_stderr_filtered(NATIVE_NOISE)


class TFLiteClassifier(runtime.Classifier):
  """:class:`components.ondevice.runtime.Classifier` on TensorFlow's own
  interpreter, the one the converter was built with: the pusher's proofs,
  the search and the bench measure with it; devices run LiteRT's.

  Args:
    model: the TFLite model's bytes, or a path to a `.tflite` file.
    num_threads: interpreter threads.
  """

  def __init__(self, model, num_threads: int = 1):
    with native_noise_filtered():
      super().__init__(model, num_threads, interpreter=tf.lite.Interpreter)


def saved_model_scores(saved_model_dir: str, signature_key: str,
                       images: np.ndarray, batch_size: int = 64
                       ) -> np.ndarray:
  """Class probabilities of the SavedModel's image signature, [n, classes]."""
  loaded = tf.saved_model.load(saved_model_dir)
  signature = loaded.signatures[signature_key]
  input_name = list(signature.structured_input_signature[1])[0]
  outputs = []
  for start in range(0, len(images), batch_size):
    batch = tf.constant(images[start:start + batch_size], tf.float32)
    result = signature(**{input_name: batch})
    outputs.append(list(result.values())[0].numpy())
  return np.concatenate(outputs).astype(np.float32)


def compare(labels: np.ndarray, reference_scores: np.ndarray,
            tflite_scores: np.ndarray) -> Dict[str, float]:
  """Accuracy and AUC of both models, their difference, and agreement.

  Args:
    labels: 0/1 labels, [n].
    reference_scores: the SavedModel's class probabilities, [n, 2].
    tflite_scores: the TFLite model's class probabilities, [n, 2].

  Returns:
    `savedmodel_accuracy`, `savedmodel_auc`, `tflite_accuracy`,
    `tflite_auc`, `accuracy_drop` (SavedModel minus TFLite), `auc_drop`,
    `agreement` (share of examples given the same class) and `examples`.
  """
  reference = metrics.binary_metrics(labels, reference_scores[:, -1])
  quantized = metrics.binary_metrics(labels, tflite_scores[:, -1])
  agreement = float(np.mean(np.argmax(reference_scores, axis=1) ==
                            np.argmax(tflite_scores, axis=1)))
  return {
      'savedmodel_accuracy': reference['accuracy'],
      'savedmodel_auc': reference['auc'],
      'tflite_accuracy': quantized['accuracy'],
      'tflite_auc': quantized['auc'],
      'accuracy_drop': reference['accuracy'] - quantized['accuracy'],
      'auc_drop': reference['auc'] - quantized['auc'],
      'agreement': agreement,
      'examples': reference['examples'],
  }


def tflite_scores(classifier: TFLiteClassifier,
                  images: Iterable[np.ndarray]) -> np.ndarray:
  """Runs `classifier` on every image, one invoke each, [n, classes]."""
  return np.stack([classifier.scores(image) for image in images])


def sha256(data: bytes) -> str:
  """Hex SHA-256 of `data`."""
  return hashlib.sha256(data).hexdigest()


def sample_records(files: List[str], limit: int, seed: int = 0
                   ) -> List[bytes]:
  """A uniform random sample of `limit` records (all when limit is 0).

  Reservoir sampling over the serialized records, so only the sample is held
  in memory, whatever the split's size, and the sample does not depend on
  the order the files were written in (a prefix of a split may hold one
  class only).

  Args:
    files: gzipped TFRecord files.
    limit: sample size; 0 keeps every record.
    seed: seed of the sample.

  Returns:
    The sampled serialized records, in file order.
  """
  rng = np.random.default_rng(seed)
  kept: List[Tuple[int, bytes]] = []
  for index, record in enumerate(
      tf.data.TFRecordDataset(files, compression_type='GZIP')):
    if not limit or len(kept) < limit:
      kept.append((index, record.numpy()))
    else:
      slot = rng.integers(0, index + 1)
      if slot < limit:
        kept[slot] = (index, record.numpy())
  return [record for _, record in sorted(kept)]


def load_images(file_pattern: str, image_key: str, label_key: str,
                image_size: int, channels: int, limit: int = 0, seed: int = 0
                ) -> Tuple[np.ndarray, np.ndarray]:
  """Reads (pixels, labels) from gzipped TFRecords of PNG-image examples.

  Args:
    file_pattern: glob of the TFRecord files (e.g. a Transform split).
    image_key: feature holding the PNG bytes.
    label_key: feature holding the int64 label.
    image_size: side of the stored square images.
    channels: channels of the stored images.
    limit: a uniform random sample of this many examples (0: all).
    seed: seed of the sample.

  Returns:
    (uint8 [n, size, size, channels] pixels, int64 [n] labels). Pixels stay
    8-bit, a quarter of float32's memory; the scoring functions cast them
    a batch or an image at a time.

  Raises:
    ValueError: if no file matches or the files hold no example.
  """
  files = sorted(tf.io.gfile.glob(file_pattern))
  if not files:
    raise ValueError(f'no examples match {file_pattern}')
  records = sample_records(files, limit, seed)
  if not records:
    raise ValueError(f'{file_pattern} holds no examples')
  spec = {image_key: tf.io.FixedLenFeature([], tf.string),
          label_key: tf.io.FixedLenFeature([], tf.int64)}

  def parse(record):
    parsed = tf.io.parse_single_example(record, spec)
    image = tf.io.decode_png(parsed[image_key], channels=channels)
    image.set_shape([image_size, image_size, channels])
    return image, parsed[label_key]

  images, labels = [], []
  dataset = tf.data.Dataset.from_tensor_slices(records).map(parse)
  for image, label in dataset.batch(256):
    images.append(image.numpy())
    labels.append(label.numpy())
  return np.concatenate(images), np.concatenate(labels)


def convert_and_check(saved_model_dir: str, signature_key: str, mode: str,
                      eval_images: np.ndarray, eval_labels: np.ndarray,
                      representative_images: Optional[np.ndarray] = None,
                      latency_runs: int = 50
                      ) -> Tuple[bytes, results.ImageProof, np.ndarray]:
  """Converts in `mode`, then measures the model against its SavedModel.

  Args:
    saved_model_dir: the trained SavedModel.
    signature_key: its float image signature.
    mode: one of :data:`QUANTIZATION_MODES`.
    eval_images: float32 pixels the comparison runs on.
    eval_labels: their 0/1 labels.
    representative_images: calibration pixels (needed for `int8`).
    latency_runs: invokes timed for the median single-image latency.

  Returns:
    (TFLite model bytes, its :class:`results.ImageProof`: sizes (the
    float32 TFLite model's too), what :func:`compare` measures, and the
    median latency; and the model's scores of `eval_images`, [n, classes]).
  """
  model = convert(saved_model_dir, signature_key, mode, representative_images)
  float_bytes = len(model) if mode == Quantization.NONE else len(
      convert(saved_model_dir, signature_key, Quantization.NONE))
  classifier = TFLiteClassifier(model)
  scores = tflite_scores(classifier, eval_images)
  compared = compare(
      eval_labels,
      saved_model_scores(saved_model_dir, signature_key, eval_images), scores)
  return model, results.ImageProof(
      mode=Quantization(mode).value, float_bytes=float_bytes,
      tflite_bytes=len(model), size_ratio=len(model) / float_bytes,
      latency_ms_median=classifier.median_latency_ms(eval_images[0],
                                                     runs=latency_runs),
      **compared), scores
