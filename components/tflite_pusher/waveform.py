"""The waveform model: the audio front end's graph
(:class:`components.frontend.graph.FrontEndGraph`) in front of the trained
classifier, converted to TFLite, and its proofs.

Its input is one window of mono float32 samples at the front end's rate; a
shorter clip is padded with zeros at the end by the caller, as the front
end pads it (MediaPipe's AudioClassifier does). The front end's matrices
stay float under dynamic-range quantization (see the graph's module). In
`int8` mode every node in the front end's name scope is kept out of
quantization by name, so only the classifier is int8; `float16` has no such
choice and gets no waveform model.
"""

from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from components.frontend import graph
from components.frontend import melscale
from components.frontend.spec import FrontEnd
from components.ondevice import push
from components.tflite import conversion
from components.tflite import model_metadata
from components.tflite import results
from components.tflite_pusher.settings import PushSettings
from components.tflite import Quantization

# The quantization modes whose waveform model keeps the front end exact:
# `none`; `dynamic` (its matrices stay float, see mel_groups); and `int8`,
# whose calibration keeps every node of the front end's name scope out of
# quantization by name (the converter's selective quantization). Float16
# turns every float constant into float16, and the converter has no
# per-node choice for it.
WAVEFORM_MODES = (Quantization.NONE.value, Quantization.DYNAMIC.value,
                  Quantization.INT8.value)
# The name scope of the front end's nodes in the waveform graph.
FRONT_END_SCOPE = 'audio_front_end'


class WaveformError(RuntimeError):
  """Raised when a waveform model cannot be built; says why."""


def convert(saved_model_dir: str, front_end: FrontEnd, mode: str,
            channels: int = 3,
            representative: Optional[np.ndarray] = None) -> bytes:
  """The waveform model as TFLite: one window of mono float32 samples at
  the front end's rate in ([1, window_samples], named `samples`), the
  classes' probabilities out ([1, classes], float32), the front end inside
  in float and the classifier (the SavedModel's `serving_image`) quantized
  as `mode` says.

  Args:
    saved_model_dir: the trained SavedModel.
    front_end: the front end the classifier's pictures were drawn with.
    mode: one of :data:`WAVEFORM_MODES`.
    channels: the classifier's image channels (1: grey).
    representative: for `int8`, windows of samples ([n, window_samples])
      the classifier's ranges are calibrated on (default: the probe
      windows, a poorer calibration).

  Raises:
    WaveformError: for a mode in which the front end would not survive
      quantization, or a failed conversion.
  """
  from components.modules import features  # pylint: disable=g-import-not-at-top
  if mode not in WAVEFORM_MODES:
    raise WaveformError(
        f'no waveform model in {mode} mode: quantizing the front end with '
        f'the classifier would ruin it; modes with one: '
        f'{", ".join(WAVEFORM_MODES)}')
  loaded = tf.saved_model.load(saved_model_dir)
  classify = loaded.signatures[features.SERVING_IMAGE_SIGNATURE]
  drawing = graph.FrontEndGraph(front_end)

  class Waveform(tf.Module):
    """Samples to scores."""

    def __init__(self):
      super().__init__(name='waveform')
      self.front_end = drawing
      self.classify = classify

    @tf.function(input_signature=[tf.TensorSpec(
        [1, drawing.window], tf.float32, name='samples')])
    def __call__(self, samples):
      with tf.name_scope(FRONT_END_SCOPE):
        image = self.front_end(samples)
        if channels == 1:
          image = tf.round(tf.image.rgb_to_grayscale(image))
      return {features.SCORES_NAME: self.classify(
          **{features.IMAGE_INPUT_NAME: image})[features.SCORES_NAME]}

  module = Waveform()

  def converter():
    return tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module)

  try:
    with conversion.native_noise_filtered():
      if mode == Quantization.INT8:
        return _selective_int8(converter, front_end, representative)
      chosen = converter()
      if mode == Quantization.DYNAMIC:
        chosen.optimizations = [tf.lite.Optimize.DEFAULT]
      return chosen.convert()
  except Exception as e:  # pylint: disable=broad-except
    raise WaveformError(f'waveform conversion ({mode}) of {saved_model_dir} '
                        f'failed: {e}') from e


def _selective_int8(converter, front_end: FrontEnd,
                    representative: Optional[np.ndarray]) -> bytes:
  """Full-integer quantization of the classifier only: every node of
  :data:`FRONT_END_SCOPE` (found in the float model) is denylisted, so the
  front end stays float32 and the model's input and output stay float32,
  as MediaPipe's AudioClassifier requires."""
  windows = (np.asarray(representative, np.float32)
             if representative is not None and len(representative) else
             np.stack(graph.probe_windows(front_end)).astype(np.float32))
  windows = windows.reshape(-1, front_end.window_samples)

  def dataset():
    for window in windows:
      yield [window[None]]

  interpreter = tf.lite.Interpreter(model_content=converter().convert())
  denied = [detail['name'] for detail in interpreter.get_tensor_details()
            if detail['name'].startswith(FRONT_END_SCOPE + '/')]
  calibrated = converter()
  calibrated.optimizations = [tf.lite.Optimize.DEFAULT]
  calibrated.representative_dataset = dataset
  debugger = tf.lite.experimental.QuantizationDebugger(
      converter=calibrated, debug_dataset=dataset,
      debug_options=tf.lite.experimental.QuantizationDebugOptions(
          denylisted_nodes=denied))
  return debugger.get_nondebug_quantized_model()


# A probe window's top class is compared only where the image model's top
# score leads the next by at least this: two quantized models (calibrated
# apart in int8) may split a near tie either way.
DECISIVE_MARGIN = 0.2
# The same at phase one's threshold: a window is judged there only where the
# image model's positive score is this far from it (DECISIVE_MARGIN's lead
# of the top class, for two classes).
THRESHOLD_MARGIN = DECISIVE_MARGIN / 2


def shares_image_classifier(mode: str) -> bool:
  """Whether a waveform model in `mode` holds the image model's classifier
  quantized the same way (`none`, `dynamic`); in `int8` the two are
  calibrated apart."""
  return mode != Quantization.INT8


def probe_problem(proof: Dict[str, Any], mode: str) -> Optional[str]:
  """What keeps a waveform model back on the probe windows' classes
  (:func:`check`), or None.

  The rule: in `none` and `dynamic` modes the waveform model holds the image
  model's classifier quantized the same way and its pictures differ by at
  most :data:`MAX_PIXEL_ERROR`, so one decisive probe window given another
  class is a wiring fault, not chance, and refuses it. In `int8` the two
  are calibrated apart (the waveform model on the train split's windows
  through its own front end), and test signals such as silence fall outside
  what either was calibrated on: there a probe window decides nothing, the
  agreement is recorded, and the classes are judged on the eval split's
  windows by `max_accuracy_drop`, as the image model is.

  Args:
    proof: what :func:`check` returned.
    mode: the quantization mode, as the pusher's setting spells it.

  Returns:
    One sentence naming the disagreement, or None.
  """
  if not shares_image_classifier(mode) or proof['agreement'] >= 1.0:
    return None
  return (f"it agrees with the image model on {proof['agreement']:.0%} of "
          f"the {proof['decisive_windows']} probe windows the image model "
          f'decides clearly (in {mode} mode both hold the same classifier, '
          'so any disagreement is a fault)')


def span_windows(file_pattern: str, limit: int, channels: int
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The windows of a split that kept their samples (`audio_pcm`, a
  bounded sample per span, see `pipeline/data/ingest.py`): (float32
  [n, window_samples] samples, uint8 [n, size, size, channels] pictures the
  NumPy front end drew from the original audio, int64 [n] labels); at most
  `limit` (0: all), in file order. Empty arrays when none kept samples."""
  from components.modules import features  # pylint: disable=g-import-not-at-top
  samples, images, labels = [], [], []
  files = sorted(tf.io.gfile.glob(file_pattern))
  for record in (tf.data.TFRecordDataset(files, compression_type='GZIP')
                 if files else []):
    example = tf.train.Example.FromString(record.numpy())
    feature = example.features.feature
    pcm = feature[features.AUDIO_PCM_KEY].bytes_list.value if (
        features.AUDIO_PCM_KEY in feature) else []
    if not pcm:
      continue
    samples.append(melscale.pcm16_samples(pcm[0]))
    images.append(tf.io.decode_png(feature[features.IMAGE_KEY].bytes_list
                                   .value[0], channels=channels).numpy())
    labels.append(feature[features.LABEL_KEY].int64_list.value[0])
    if limit and len(samples) >= limit:
      break
  if not samples:
    return (np.zeros((0, 0), np.float32), np.zeros((0, 0, 0, channels),
                                                   np.uint8),
            np.zeros(0, np.int64))
  return np.stack(samples), np.stack(images), np.asarray(labels, np.int64)


def check_span_windows(model: bytes, saved_model_dir: str,
                       front_end: FrontEnd, samples: np.ndarray,
                       images: np.ndarray, labels: np.ndarray,
                       image_model: Optional[bytes] = None,
                       threshold: Optional[float] = None
                       ) -> Dict[str, Any]:
  """Proves a waveform model on the span's own windows
  (:func:`span_windows`): the in-graph front end's pixels against the NumPy
  front end's on the same samples, and the waveform model's scores on the
  samples against the SavedModel's on the pictures trained with; with
  `image_model` and `threshold`, its decisions at phase one's threshold
  against the image model's on the pictures.

  Returns:
    `eval_windows`, `eval_front_end_max_pixel_error` (0..255),
    `eval_agreement` (share of windows given the same class),
    `eval_savedmodel_accuracy`, `eval_accuracy` (the waveform model's) and
    `eval_accuracy_drop` (SavedModel minus waveform model); with a
    threshold, `eval_threshold_agreement`, `eval_threshold_accuracy`,
    `eval_image_threshold_accuracy` and `eval_threshold_recall`.
  """
  from components.modules import features  # pylint: disable=g-import-not-at-top
  pixel_error = graph.pixel_error(front_end, samples)
  waveform = conversion.TFLiteClassifier(model)
  scores = np.stack([waveform.scores(window) for window in samples])
  compared = conversion.compare(
      labels, conversion.saved_model_scores(
          saved_model_dir, features.SERVING_IMAGE_SIGNATURE, images), scores)
  found = {'eval_windows': int(len(samples)),
           'eval_front_end_max_pixel_error': pixel_error,
           'eval_agreement': compared['agreement'],
           'eval_savedmodel_accuracy': compared['savedmodel_accuracy'],
           'eval_accuracy': compared['tflite_accuracy'],
           'eval_accuracy_drop': compared['accuracy_drop']}
  if image_model is not None and threshold is not None:
    found.update(at_threshold(
        labels, scores[:, -1], conversion.tflite_scores(
            conversion.TFLiteClassifier(image_model),
            images.astype(np.float32))[:, -1], threshold))
  return found


def at_threshold(labels: np.ndarray, waveform_scores: np.ndarray,
                 image_scores: np.ndarray, threshold: float
                 ) -> Dict[str, Any]:
  """The waveform model's decisions at phase one's `threshold` against the
  image model's on the same windows (positive-class scores of each):
  `eval_threshold_agreement` (share decided alike), the decisive windows
  (`eval_threshold_decisive_windows`, where the image model's score is
  :data:`THRESHOLD_MARGIN` or more from the threshold: the threshold is a
  positive's own score, so the window it was taken from, and any as near,
  may fall either side for two quantized models) and the share of those
  decided alike (`eval_threshold_decisive_agreement`, 1 when none is),
  each model's accuracy (`eval_threshold_accuracy`,
  `eval_image_threshold_accuracy`) and the waveform model's recall
  (`eval_threshold_recall`, None without positives)."""
  labels = np.asarray(labels) == 1
  image_scores = np.asarray(image_scores, np.float64)
  mine = np.asarray(waveform_scores) >= threshold
  theirs = image_scores >= threshold
  decisive = np.abs(image_scores - threshold) >= THRESHOLD_MARGIN
  return {'eval_threshold_agreement': round(float(np.mean(mine == theirs)), 6),
          'eval_threshold_decisive_windows': int(decisive.sum()),
          'eval_threshold_decisive_agreement': round(float(
              np.mean(mine[decisive] == theirs[decisive])) if decisive.any()
                                                     else 1.0, 6),
          'eval_threshold_accuracy': round(float(np.mean(mine == labels)), 6),
          'eval_image_threshold_accuracy': round(
              float(np.mean(theirs == labels)), 6),
          'eval_threshold_recall': (round(float(np.mean(mine[labels])), 6)
                                    if labels.any() else None)}


def check(model: bytes, image_model: bytes, front_end: FrontEnd
          ) -> Dict[str, Any]:
  """Proves a waveform model on :func:`graph.probe_windows`: its front end's
  pixels against the NumPy front end's, and its scores against the image
  model's on the NumPy pictures.

  Returns:
    `front_end_max_pixel_error` (0..255), `max_score_difference`,
    `agreement` (share of the decisive windows, where the image model's
    top score leads by :data:`DECISIVE_MARGIN`, given the same top class;
    1 when none is decisive), `decisive_windows` and `windows` (see
    :func:`graph.pixel_error` for the pixels).
  """
  waveform = conversion.TFLiteClassifier(model)
  images = conversion.TFLiteClassifier(image_model)
  score_difference, same, decisive = 0.0, 0, 0
  windows = np.stack(graph.probe_windows(front_end)).astype(np.float32)
  pixel_error = graph.pixel_error(front_end, windows)
  for samples in windows:
    scores = waveform.scores(samples)
    reference = images.scores(
        melscale.render(samples, front_end).astype(np.float32))
    score_difference = max(score_difference,
                           float(np.abs(scores - reference).max()))
    ranked = np.sort(reference)[::-1]
    if len(ranked) < 2 or ranked[0] - ranked[1] >= DECISIVE_MARGIN:
      decisive += 1
      same += int(np.argmax(scores) == np.argmax(reference))
  return {'front_end_max_pixel_error': pixel_error,
          'max_score_difference': round(score_difference, 6),
          'agreement': same / decisive if decisive else 1.0,
          'decisive_windows': decisive, 'windows': len(windows)}


# Windows the proof runs on: ([n, window_samples] samples, [n, size, size,
# channels] pictures, [n] labels), as :func:`span_windows` reads them.
Windows = Tuple[np.ndarray, np.ndarray, np.ndarray]


def build(model_path: str, image_model: bytes, front_end: Dict[str, Any],
          settings: PushSettings,
          windows: Callable[[str], Optional[Windows]],
          threshold: Optional[float] = None
          ) -> Tuple[Optional[bytes], results.WaveformProof]:
  """The waveform model for spans of recordings, proved and held to the
  device budget: (its bytes, or None; its proof, which says why when there
  is none).

  Args:
    model_path: the trained SavedModel.
    image_model: the image model, converted; the probe windows' reference.
    front_end: the recorded front end (`recorded` true) or why there is
      none (`recorded` false, `reason`).
    settings: the pusher's settings (mode, budget, tolerances).
    windows: a split's kept windows (None without them): in `int8` the
      classifier is calibrated on the train split's samples (probe windows
      without), and the model is proved on the eval split's (on probe
      windows only without).
    threshold: phase one's threshold, chosen on the image model over the
      whole eval split: the waveform model shares its classifier, so it
      decides at the same threshold (recorded in its metadata), proved on
      the eval split's kept windows: of those the image model scores
      :data:`THRESHOLD_MARGIN` or more from the threshold, at most
      `max_accuracy_drop` may be decided otherwise. Its accuracy against
      the SavedModel's there is then recorded, and judged only in `int8`
      (without a threshold, in every mode).
  """
  if not front_end.get('recorded'):
    return None, results.WaveformProof(reason=front_end.get('reason'))
  drawn_with = FrontEnd.from_record(front_end)
  if drawn_with.image_size != settings.image_size:
    return None, results.WaveformProof(recordings=True, reason=(
        f'the recordings were drawn as {drawn_with.image_size}x'
        f'{drawn_with.image_size} pictures and the model takes '
        f'{settings.image_size}x{settings.image_size} (--image-size): '
        f'ingest them again with --image-size {settings.image_size} for a '
        'waveform model'))
  mode = settings.quantization
  train = windows('train') if mode == Quantization.INT8 else None
  representative = train[0] if train is not None else None
  try:
    model = convert(model_path, drawn_with, mode, settings.channels,
                    representative)
  except WaveformError as e:
    return None, results.WaveformProof(recordings=True, reason=str(e))
  proof = check(model, image_model, drawn_with)
  samples = graph.probe_windows(drawn_with)[0].astype('float32')
  latency = conversion.TFLiteClassifier(model).median_latency_ms(
      samples, runs=settings.latency_runs)
  # MediaPipe's AudioClassifier needs the metadata; the budget counts it.
  model, problem = model_metadata.embed_audio(
      model, list(settings.class_names), drawn_with.sample_rate, threshold)
  figures = dict(
      proof, recordings=True, bytes=len(model), latency_ms_median=latency,
      threshold=threshold,
      metadata_embedded=problem is None, metadata_problem=problem,
      input={'shape': [1, drawn_with.window_samples], 'dtype': 'float32',
             'sample_rate': drawn_with.sample_rate, 'channels': 1,
             'meaning': ('one window of mono samples in -1..1 at the front '
                         'end\'s rate, zero-padded at the end')},
      output={'meaning': 'probability of each class, in labels.txt order'})
  problems = []

  def check_pixels(error: float, where: str) -> None:
    if error > graph.MAX_PIXEL_ERROR:
      problems.append(f'{where}its front end is {error:g} off the NumPy '
                      f'picture (at most {graph.MAX_PIXEL_ERROR:g} allowed)')

  max_drop = settings.max_accuracy_drop
  evaluation = windows('eval')
  if evaluation is not None and len(evaluation[0]):
    figures.update(check_span_windows(model, model_path, drawn_with,
                                      *evaluation, image_model, threshold))
    check_pixels(figures['eval_front_end_max_pixel_error'],
                 "on the eval split's windows ")
    # Where the waveform model holds the image model's own quantized
    # classifier (not int8, calibrated apart), it is judged against that
    # model's decisions at phase one's threshold below: the image model's
    # parity with the SavedModel is proved on the whole eval split, and
    # here one window of a few dozen would be more than max_accuracy_drop
    # (the default run's 53 windows: one flipped at 0.5 by quantization,
    # the image model's own, refused the waveform model at 1.89 points).
    against_saved_model = (threshold is None or
                           not shares_image_classifier(mode))
    if against_saved_model and figures['eval_accuracy_drop'] > max_drop:
      problems.append(
          f"on {figures['eval_windows']} eval windows its accuracy is "
          f"{figures['eval_accuracy']:.4f} against the SavedModel's "
          f"{figures['eval_savedmodel_accuracy']:.4f}, a drop of "
          f"{figures['eval_accuracy_drop'] * 100:.2f} points (at most "
          f'{max_drop * 100:.2f} allowed by max_accuracy_drop)')
    if threshold is not None and (
        1.0 - figures['eval_threshold_decisive_agreement'] > max_drop):
      problems.append(
          f"at phase one's threshold {threshold:.4g} it decides as the image "
          f"model on {figures['eval_threshold_decisive_agreement']:.1%} of "
          f"the {figures['eval_threshold_decisive_windows']} eval windows "
          f'the image model scores {THRESHOLD_MARGIN:g} or more from it (at '
          f'most {max_drop * 100:.2f}% may differ, max_accuracy_drop)')
  else:
    figures.update(eval_windows=0, eval_proof=(
        'no window of the eval split kept its samples (spans ingested '
        'with proof_windows 0, or before windows kept them): proved on '
        'test signals only'))
  check_pixels(proof['front_end_max_pixel_error'], '')
  disagreement = probe_problem(proof, mode)
  if disagreement:
    problems.append(disagreement)
  problems += [breach.describe() for breach in
               settings.budget.for_phone().breaches(len(model), latency)]
  if problems:
    return None, results.WaveformProof(reason='; '.join(problems), **figures)
  return model, results.WaveformProof(file=push.WAVEFORM_FILE,
                                      sha256=conversion.sha256(model),
                                      **figures)


def describe(proof: results.WaveformProof) -> str:
  """One line on the waveform model, as the pusher prints it."""
  if proof.file is None:
    return f'no waveform model: {proof.reason}'
  return (f'waveform model {proof.bytes} bytes, '
          f'{proof.latency_ms_median:.3g} ms, front end '
          f'{proof.front_end_max_pixel_error:g} off the NumPy picture on '
          'test signals' + (
              f', {proof.eval_front_end_max_pixel_error:g} on '
              f'{proof.eval_windows} eval windows, accuracy '
              f'{proof.eval_accuracy:.4f} (SavedModel '
              f'{proof.eval_savedmodel_accuracy:.4f})'
              if proof.eval_windows else '') + (
                  f', at threshold {proof.threshold:.4g} it decides as the '
                  f'image model on {proof.eval_threshold_agreement:.1%} '
                  'of them' if proof.eval_threshold_agreement is not None
                  else ''))
