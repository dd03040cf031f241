"""Phase two's model as a model server takes it: a SavedModel whose
`serving_default` answers what the cloud is sent.

For spans of recordings, a request is one window of mono 16-bit PCM at the
recorded front end's rate (little-endian bytes; base64 in JSON, as TF
Serving's REST API and KServe's V1 protocol carry `DT_STRING`). A phase
two that hears the window itself (its `serving_waveform`: pretrained
musicnn ears and their own features in its graph) takes the samples; one
that learned from pictures takes them drawn by the recorded front end,
which the model then holds (the same TensorFlow graph the waveform TFLite
model uses, `components.frontend.graph`). For spans of
images, a request is one encoded image (PNG or JPEG), decoded and resized
as Transform does. Either way the answer is each class's probability
(`scores`), the class names in score order (`classes`) and the most
probable class's name (`label`); the labels and the front end travel with
the model in `assets.extra/`.

This module is a leaf: it imports only the front end, the feature names and
TensorFlow, so a server, the pipeline and a test build it alike.
"""

import json
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from components.common import errors
from components.common import pairing
from components.frontend import FrontEnd
from components.frontend import graph
from components.modules import features

# The request's input name in `serving_default`, by what the spans hold
# (the device side reads them from the leaf `pairing`, without TensorFlow).
PCM_INPUT = pairing.PCM_INPUT
IMAGE_BYTES_INPUT = pairing.IMAGE_BYTES_INPUT
LABEL_OUTPUT = 'label'
# The front end travels beside the labels in `features.ASSETS_EXTRA`.
FRONT_END_FILE = 'front_end.json'


class ServingModelError(errors.PipelineError, ValueError):
  """Raised when the serving model cannot be built from phase two's."""


def hears_samples(loaded) -> bool:
  """Whether a loaded phase two takes a window's samples
  (`serving_waveform`) rather than its picture."""
  return features.SERVING_WAVEFORM_SIGNATURE in loaded.signatures


def read_labels(saved_model_dir: str) -> List[str]:
  """The class names a phase-two SavedModel carries, in score order."""
  path = os.path.join(saved_model_dir, features.ASSETS_EXTRA,
                      features.LABELS_FILE)
  try:
    with tf.io.gfile.GFile(path, 'r') as f:
      return [line for line in f.read().splitlines() if line]
  except tf.errors.OpError as e:
    raise ServingModelError(f'{saved_model_dir} has no labels file '
                            f'({path}): not a phase-two model') from e


class _Serving(tf.Module):
  """Requests to answers (see the module's docstring)."""

  def __init__(self, loaded, labels: Sequence[str],
               front_end: Optional[FrontEnd], image_size: int,
               channels: int):
    super().__init__(name='phase_two_serving')
    self.loaded = loaded
    self.hears = hears_samples(loaded)
    self.classify = loaded.signatures[
        features.SERVING_WAVEFORM_SIGNATURE if self.hears
        else features.SERVING_IMAGE_SIGNATURE]
    self.labels = tf.constant(list(labels), tf.string)
    self.image_size, self.channels = image_size, channels
    self.front_end = front_end
    self.drawing = (graph.FrontEndGraph(front_end)
                    if front_end and not self.hears else None)

  def answer(self, pixels: tf.Tensor) -> Dict[str, tf.Tensor]:
    scores = self.classify(**{features.IMAGE_INPUT_NAME: pixels})[
        features.SCORES_NAME]
    return self.named(scores)

  def answer_samples(self, samples: tf.Tensor) -> Dict[str, tf.Tensor]:
    scores = self.classify(**{features.WAVEFORM_INPUT_NAME: samples})[
        features.SCORES_NAME]
    return self.named(scores)

  def named(self, scores: tf.Tensor) -> Dict[str, tf.Tensor]:
    batch = tf.shape(scores)[0]
    return {features.SCORES_NAME: scores,
            features.CLASSES_NAME: tf.tile(self.labels[None, :], [batch, 1]),
            LABEL_OUTPUT: tf.gather(self.labels, tf.argmax(scores, axis=-1))}

  def samples_of_pcm(self, pcm: tf.Tensor) -> tf.Tensor:
    """[batch] PCM strings to float32 [batch, window] samples, each cut or
    zero-padded to the front end's window."""
    return features.decode_pcm(pcm, self.front_end.window_samples)

  def pixels_of_pcm(self, pcm: tf.Tensor) -> tf.Tensor:
    image = self.drawing(self.samples_of_pcm(pcm))
    if self.channels == 1:
      image = tf.round(tf.image.rgb_to_grayscale(image))
    return image

  def pixels_of_images(self, encoded: tf.Tensor) -> tf.Tensor:
    return tf.cast(features.decode_batch(encoded, self.image_size,
                                         self.channels), tf.float32)


def build(phase_two_dir: str, out_dir: str,
          front_end: Optional[FrontEnd], image_size: int,
          channels: int) -> List[str]:
  """Writes the serving SavedModel of phase two's model under `out_dir`.

  Args:
    phase_two_dir: phase two's trained SavedModel (`Format-Serving`).
    out_dir: the new SavedModel's folder (created).
    front_end: the recorded front end of the spans' recordings; None for
      spans of images.
    image_size: the model's square input side.
    channels: its input channels.

  Returns:
    The class names, in score order.

  Raises:
    ServingModelError: for a model without labels, or recordings drawn at
      another picture size than the model takes.
  """
  labels = read_labels(phase_two_dir)
  loaded = tf.saved_model.load(phase_two_dir)
  if hears_samples(loaded):
    if front_end is None:
      raise ServingModelError(
          f'{phase_two_dir} hears windows of samples, and the spans hold '
          'no recordings to send it')
    return _build_heard(loaded, labels, front_end, out_dir, image_size,
                        channels)
  if front_end is not None and front_end.image_size != image_size:
    raise ServingModelError(
        f'the recordings were drawn as {front_end.image_size}x'
        f'{front_end.image_size} pictures and the model takes {image_size}x'
        f'{image_size}: ingest them again with --image-size {image_size}')
  module = _Serving(loaded, labels, front_end, image_size, channels)
  if front_end is not None:
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                                 name=PCM_INPUT)])
    def serve(audio_pcm):
      return module.answer(module.pixels_of_pcm(audio_pcm))
  else:
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                                 name=IMAGE_BYTES_INPUT)])
    def serve(image_bytes):
      return module.answer(module.pixels_of_images(image_bytes))

  @tf.function(input_signature=[tf.TensorSpec(
      [None, image_size, image_size, channels], tf.float32,
      name=features.IMAGE_INPUT_NAME)])
  def serve_image(image):
    return module.answer(image)

  module.serve, module.serve_image = serve, serve_image
  tf.saved_model.save(module, out_dir, signatures={
      features.SERVING_EXAMPLES_SIGNATURE: serve,
      features.SERVING_IMAGE_SIGNATURE: serve_image})
  _write_extra(out_dir, labels, front_end)
  return labels


def _build_heard(loaded, labels: Sequence[str], front_end: FrontEnd,
                 out_dir: str, image_size: int, channels: int) -> List[str]:
  """The serving model of a phase two that hears the samples: PCM
  (`serving_default`) or float samples (`serving_waveform`) in."""
  module = _Serving(loaded, labels, front_end, image_size, channels)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name=PCM_INPUT)])
  def serve(audio_pcm):
    return module.answer_samples(module.samples_of_pcm(audio_pcm))

  @tf.function(input_signature=[tf.TensorSpec(
      [None, front_end.window_samples], tf.float32,
      name=features.WAVEFORM_INPUT_NAME)])
  def serve_waveform(samples):
    return module.answer_samples(samples)

  module.serve, module.serve_waveform = serve, serve_waveform
  tf.saved_model.save(module, out_dir, signatures={
      features.SERVING_EXAMPLES_SIGNATURE: serve,
      features.SERVING_WAVEFORM_SIGNATURE: serve_waveform})
  _write_extra(out_dir, labels, front_end)
  return list(labels)


def _write_extra(out_dir: str, labels: Sequence[str],
                 front_end: Optional[FrontEnd]) -> None:
  """The labels and the front end, in `assets.extra/`."""
  extra = os.path.join(out_dir, features.ASSETS_EXTRA)
  tf.io.gfile.makedirs(extra)
  with tf.io.gfile.GFile(os.path.join(extra, features.LABELS_FILE), 'w') as f:
    f.write(''.join(f'{label}\n' for label in labels))
  if front_end is not None:
    with tf.io.gfile.GFile(os.path.join(extra, FRONT_END_FILE), 'w') as f:
      f.write(json.dumps(front_end.to_record(), indent=2, sort_keys=True))


# The serving model's scores may differ from phase two's on the NumPy
# picture by what the TensorFlow front end's at most 2 of 255 pixel levels
# move them; more is a fault.
MAX_SCORE_DIFFERENCE = 0.05
# A disagreement counts where phase two decides: its top class beats the
# next by at least this much.
DECIDED_MARGIN = 0.1


def read_requests(pattern: str, key: str, limit: int) -> List[bytes]:
  """Up to `limit` values of bytes feature `key` (`audio_pcm` or `image`)
  from the raw examples matching `pattern`, in file order."""
  found: List[bytes] = []
  files = sorted(tf.io.gfile.glob(pattern))
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    if key in feature and feature[key].bytes_list.value:
      found.append(feature[key].bytes_list.value[0])
      if len(found) >= limit:
        break
  return found


def _reference(phase_two_dir: str, requests: Sequence[bytes],
               front_end: Optional[FrontEnd], image_size: int,
               channels: int) -> np.ndarray:
  """Phase two's own scores for the requests: its `serving_waveform` on
  each window's samples, its `serving_image` on the NumPy front end's
  picture of each window, or its `serving_default` on each image as a raw
  example."""
  from components.frontend import melscale  # pylint: disable=g-import-not-at-top
  loaded = tf.saved_model.load(phase_two_dir)
  if front_end is not None and hears_samples(loaded):
    from components.frontend import windowing  # pylint: disable=g-import-not-at-top
    samples = np.stack([windowing.window_at(melscale.pcm16_samples(data), 0,
                                            front_end) for data in requests])
    answer = loaded.signatures[features.SERVING_WAVEFORM_SIGNATURE](
        **{features.WAVEFORM_INPUT_NAME: tf.constant(samples)})
  elif front_end is not None:
    pictures = np.stack([melscale.render(melscale.pcm16_samples(data),
                                         front_end) for data in requests])
    pixels = tf.constant(pictures, tf.float32)
    if channels == 1:
      pixels = tf.round(tf.image.rgb_to_grayscale(pixels))
    answer = loaded.signatures[features.SERVING_IMAGE_SIGNATURE](
        **{features.IMAGE_INPUT_NAME: pixels})
  else:
    examples = [tf.train.Example(features=tf.train.Features(feature={
        features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[data]))})).SerializeToString() for data in requests]
    answer = loaded.signatures[features.SERVING_EXAMPLES_SIGNATURE](
        examples=tf.constant(examples))
  return answer[features.SCORES_NAME].numpy()


def answer(serving_dir: str, requests: Sequence[bytes],
           pcm: bool) -> np.ndarray:
  """The serving model's scores for requests of PCM (`pcm`) or images,
  in process."""
  served = tf.saved_model.load(serving_dir).signatures[
      features.SERVING_EXAMPLES_SIGNATURE]
  name = PCM_INPUT if pcm else IMAGE_BYTES_INPUT
  return served(**{name: tf.constant(list(requests))})[
      features.SCORES_NAME].numpy()


def compare(scores: np.ndarray, reference: np.ndarray,
            what: str) -> Dict[str, Any]:
  """Scores against reference scores of the same requests: `agreement`
  (equal top classes where the reference decides), `max_score_difference`
  and `problem` (None when they answer alike; else `what`, the sentence
  saying which answers differently from which, and by how much)."""
  ordered = np.sort(reference, axis=1)
  decided = (ordered[:, -1] - ordered[:, -2]) >= DECIDED_MARGIN
  same = np.argmax(scores, axis=1) == np.argmax(reference, axis=1)
  difference = float(np.max(np.abs(scores - reference)))
  agreement = float(np.mean(same[decided])) if decided.any() else 1.0
  problem = None
  if difference > MAX_SCORE_DIFFERENCE or agreement < 1.0:
    problem = (f'{what}: scores up to {difference:.4f} apart (at most '
               f'{MAX_SCORE_DIFFERENCE} allowed), top classes equal on '
               f'{agreement:.0%} of the decided requests')
  return {'requests': len(scores), 'agreement': round(agreement, 4),
          'max_score_difference': round(difference, 6), 'problem': problem}


def check(serving_dir: str, phase_two_dir: str, requests: Sequence[bytes],
          front_end: Optional[FrontEnd], image_size: int, channels: int,
          scores: Optional[np.ndarray] = None) -> Dict[str, Any]:
  """The serving model against phase two's SavedModel on the same
  requests, in process: `requests`, `agreement` (equal top classes where
  phase two decides), `max_score_difference`, and `problem` (why it may
  not be pushed, or None).

  Args:
    serving_dir: the serving SavedModel (:func:`build`).
    phase_two_dir: phase two's SavedModel.
    requests: windows of 16-bit PCM (recordings) or encoded images.
    front_end: the recorded front end, None for images.
    image_size: the model's input side.
    channels: its input channels.
    scores: the serving model's scores for `requests` when the caller has
      them (:func:`answer`); else they are computed here.
  """
  if not requests:
    return {'requests': 0, 'agreement': None, 'max_score_difference': None,
            'problem': 'no request to check the serving model on'}
  if scores is None:
    scores = answer(serving_dir, requests, front_end is not None)
  reference = _reference(phase_two_dir, requests, front_end, image_size,
                         channels)
  return compare(scores, reference, "the serving model answers "
                 "differently from phase two's SavedModel")
