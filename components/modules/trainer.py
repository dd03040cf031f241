"""Trainer module: a small CNN for on-device binary classification.

TFX calls :func:`run_fn` by its dotted name (``run_fn=``). The model is a
depthwise-separable CNN in the spirit of MobileNet, trained from scratch
(no pretrained weights can be downloaded in our environment), small enough to
run on a phone in a few milliseconds after quantization.

The exported SavedModel has two signatures:

* ``serving_default``: serialized raw `tf.Example`s in, ``probability`` out.
  TFMA evaluates through it, decoding images exactly as Transform does.
* ``serving_image``: a float32 batch of 0..255 pixels
  ``[batch, size, size, channels]`` in, ``scores`` out: the probabilities of
  both classes, ``[batch, 2]`` in class-name order. The TFLite pusher
  converts this one; the model rescales pixels internally, so an app feeds
  raw pixel values.
"""

import json
import os
import shutil
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components.common import metrics
from components.modules import features
from components.modules import model_defaults
from components.modules.settings import TrainingSettings

_SHUFFLE_BUFFER = 1024
# Batches that re-estimate BatchNorm's statistics after training.
RECALIBRATION_BATCHES = 20
LOGIT_LAYER = 'logit'


# Dropout before the classifier, unless a model search chose another.
DEFAULT_DROPOUT = 0.2
# What a model search may set, from the Tuner's best hyperparameters.
TUNED_SETTINGS = ('width', 'dropout', 'learning_rate')


def build_model(image_size: int = features.DEFAULT_IMAGE_SIZE,
                channels: int = features.DEFAULT_CHANNELS,
                width: float = model_defaults.DEFAULT_WIDTH,
                dropout: float = DEFAULT_DROPOUT,
                classes: int = 1) -> tf.keras.Model:
  """Builds the uncompiled classifier.

  Args:
    image_size: side of the square input in pixels.
    channels: input channels (1 or 3).
    width: multiplier on every layer's filter count.
    dropout: dropout rate before the classifier.
    classes: 1 for phase one's binary model (a sigmoid); more for phase
      two's, a softmax over that many classes.

  Returns:
    A Keras model mapping [batch, size, size, channels] float pixels in
    0..255 to [batch, 1] probabilities of class index 1 (`classes` 1), or
    to [batch, classes] probabilities of each class.
  """

  def filters(n: int) -> int:
    return max(8, int(round(n * width / 8)) * 8)

  inputs = tf.keras.Input(shape=(image_size, image_size, channels),
                          name=features.IMAGE_INPUT_NAME)
  x = tf.keras.layers.Rescaling(1.0 / 255.0, name='rescale')(inputs)
  x = tf.keras.layers.Conv2D(filters(24), 3, strides=2, padding='same',
                             use_bias=False, name='stem_conv')(x)
  x = tf.keras.layers.BatchNormalization(momentum=0.9, name='stem_bn')(x)
  x = tf.keras.layers.ReLU(6.0, name='stem_relu')(x)
  blocks = [(48, 1), (96, 2), (96, 1), (192, 2), (256, 2), (256, 2)]
  for index, (block_filters, stride) in enumerate(blocks):
    prefix = f'block{index + 1}'
    x = tf.keras.layers.DepthwiseConv2D(3, strides=stride, padding='same',
                                        use_bias=False,
                                        name=f'{prefix}_dw')(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, name=f'{prefix}_dw_bn')(x)
    x = tf.keras.layers.ReLU(6.0, name=f'{prefix}_dw_relu')(x)
    x = tf.keras.layers.Conv2D(filters(block_filters), 1, use_bias=False,
                               name=f'{prefix}_pw')(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, name=f'{prefix}_pw_bn')(x)
    x = tf.keras.layers.ReLU(6.0, name=f'{prefix}_pw_relu')(x)
  # A wide 1x1 head at 4x4 resolution, as MobileNet's last layer: cheap to
  # compute, and it puts most weights in large tensors, which is what 8-bit
  # weight quantization shrinks.
  x = tf.keras.layers.Conv2D(filters(1280), 1, use_bias=False,
                             name='head_conv')(x)
  x = tf.keras.layers.BatchNormalization(momentum=0.9, name='head_bn')(x)
  x = tf.keras.layers.ReLU(6.0, name='head_relu')(x)
  x = tf.keras.layers.GlobalAveragePooling2D(name='pool')(x)
  x = tf.keras.layers.Dropout(dropout, name='dropout')(x)
  logit = tf.keras.layers.Dense(classes, name=LOGIT_LAYER)(x)
  if classes > 1:
    outputs = tf.keras.layers.Activation('softmax',
                                         name=features.SCORES_NAME)(logit)
  else:
    outputs = tf.keras.layers.Activation('sigmoid',
                                         name=features.OUTPUT_NAME)(logit)
  return tf.keras.Model(inputs, outputs, name='classifier')


def augment_batch(images: tf.Tensor, max_band: float = 0.125,
                  seed: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Randomly shifts spectrograms in time and masks a time and a mel band.

  Per image: a circular shift along the horizontal (time) axis, then one
  band of columns and one band of rows, each up to `max_band` of the side,
  replaced by the image's mean (SpecAugment-style). Sounds do not change
  class when they start later or lose a moment or a narrow band, so the
  model learns that. Vectorized over the batch, and the shift is done on
  the stored 8-bit pixels: the input pipeline's cost is a few passes over
  the batch, whatever its size.

  Args:
    images: [batch, size, size, channels] pixels in 0..255, uint8 or float.
    max_band: largest masked band, as a fraction of the side.
    seed: a [2] integer seed: the draws are then a function of it alone
      (stateless), whatever thread or order the batch is augmented in;
      None: TensorFlow's stateful random ops.

  Returns:
    float32 augmented images, same shape.
  """
  shape = tf.shape(images)
  batch, size = shape[0], shape[2]
  band = tf.maximum(1, tf.cast(tf.cast(size, tf.float32) * max_band,
                               tf.int32))
  positions = tf.range(size)
  seeds = (iter(tf.unstack(tf.random.experimental.stateless_split(seed, 5)))
           if seed is not None else None)

  def draw(high):
    if seeds is None:
      return tf.random.uniform([batch, 1], 0, high, dtype=tf.int32)
    return tf.random.stateless_uniform([batch, 1], next(seeds), 0, high,
                                       dtype=tf.int32)

  shift = draw(size)
  images = tf.gather(images, (positions[None, :] - shift) % size, axis=2,
                     batch_dims=1)
  images = tf.cast(images, tf.float32)

  def band_mask():
    start = draw(size)
    width = draw(band + 1)
    return (positions[None, :] >= start) & (positions[None, :] < start + width)

  mask = band_mask()[:, None, :, None] | band_mask()[:, :, None, None]
  mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
  return tf.where(mask, mean, images)


def make_dataset(file_patterns: List[str],
                 tf_transform_output: tft.TFTransformOutput,
                 batch_size: int,
                 image_size: int,
                 channels: int,
                 training: bool,
                 seed: int = 0,
                 augment: bool = False,
                 cache_dir: Optional[str] = None,
                 families: Optional[Sequence[str]] = None) -> tf.data.Dataset:
  """Streams (pixels, label) batches from transformed examples.

  Transform stores each image as a PNG inside gzipped TFRecords (18.6 KB
  per 128x128 spectrogram instead of 49 KB of raw pixels). Decoding that is
  the input's cost, so for training the decoded 8-bit images are cached in
  an uncompressed file under `cache_dir` during the first pass: later epochs
  read raw pixels from disk, the data set is never held in memory, and the
  file is the caller's to delete. Batches are then shuffled, cast and
  augmented with vectorized ops.

  Args:
    file_patterns: globs of the gzipped TFRecord files written by Transform.
    tf_transform_output: the Transform output, for the feature spec.
    batch_size: examples per batch.
    image_size: side of the stored square images.
    channels: channels of the stored images.
    training: shuffle and repeat forever when True; one ordered pass when
      False.
    seed: seed of the shuffle and of the augmentation.
    augment: apply :func:`augment_batch` to every batch.
    cache_dir: training only: a folder for the decoded-image cache file
      (None: decode every epoch).
    families: phase two's families: the labels are then class indices
      (:func:`phase_two_labels`), and positive examples of no known family
      are left out.

  Returns:
    A dataset of (float32 [batch, size, size, channels] 0..255 pixels,
    float32 [batch, 1] labels), or int32 [batch] class indices with
    `families`.
  """
  files = []
  for pattern in file_patterns:
    files.extend(sorted(tf.io.gfile.glob(pattern)))
  if not files:
    raise ValueError(f'No transformed examples match {file_patterns}.')
  feature_spec = tf_transform_output.transformed_feature_spec()
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP',
                                    num_parallel_reads=tf.data.AUTOTUNE)

  labels_of = (phase_two_labels(families) if families is not None
               else lambda parsed: parsed[features.LABEL_KEY])

  def decode(serialized):
    parsed = tf.io.parse_single_example(serialized, feature_spec)
    image = tf.io.decode_png(parsed[features.IMAGE_PNG_KEY], channels=channels)
    image.set_shape([image_size, image_size, channels])
    return image, labels_of(parsed)

  # In order: the shuffle, hence every batch, is then a function of the
  # seed (a run repeats; measured in bench part 2's throughput).
  dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
  if families is not None:
    dataset = dataset.filter(lambda image, label: label >= 0)
  if training:
    if cache_dir:
      dataset = dataset.cache(os.path.join(cache_dir, 'decoded'))
    dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=seed,
                              reshuffle_each_iteration=True).repeat()

  def to_float(number, batch):
    images, labels = batch
    # Batch `number`'s draws come from (seed, number): stateless, so the
    # parallel map gives every batch the same augmentation in every run.
    images = (augment_batch(images, seed=tf.stack(
        [tf.cast(seed, tf.int64), number])) if augment
              else tf.cast(images, tf.float32))
    if families is not None:
      return images, tf.cast(labels, tf.int32)
    return images, tf.reshape(tf.cast(labels, tf.float32), [-1, 1])

  dataset = dataset.batch(batch_size, drop_remainder=training).enumerate()
  dataset = dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.prefetch(tf.data.AUTOTUNE)


def phase_two_labels(families: Sequence[str]):
  """Phase two's label of a parsed example: 0 (the reject class, class 0's
  name) for class 0, 1 + the index of its family in `families` for the
  positive class, -1 for a positive example of no family in `families`.

  Args:
    families: the families, in class order (class i + 1 is families[i]).

  Returns:
    A function of a dict of parsed features (`label`, int64, and
    `family`, a string, '' when absent) to an int32 scalar or [batch]
    tensor.
  """
  # A comparison with each family, not a lookup table: a table is a
  # resource the exported signatures would have to track.
  names = tf.constant(list(families), tf.string)

  def labels(parsed):
    label = parsed[features.LABEL_KEY]
    family = tf.reshape(parsed[features.FAMILY_KEY], tf.shape(label))
    matches = tf.equal(family[..., None], names)
    index = tf.where(tf.reduce_any(matches, axis=-1),
                     tf.argmax(tf.cast(matches, tf.int32), axis=-1,
                               output_type=tf.int32) + 1, -1)
    return tf.where(tf.equal(label, 0), tf.zeros_like(index), index)

  return labels


def _serving_signatures(model: tf.keras.Model, image_size: int,
                        channels: int) -> Dict[str, Any]:
  """Builds the tf.Example and the image signatures of the export."""
  logit_model = tf.keras.Model(model.inputs,
                               model.get_layer(LOGIT_LAYER).output)

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name='examples')])
  def serve_examples(serialized):
    parsed = tf.io.parse_example(serialized, {
        features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
    images = features.decode_batch(parsed[features.IMAGE_KEY], image_size,
                                   channels)
    return {features.OUTPUT_NAME: model(tf.cast(images, tf.float32),
                                        training=False)}

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None, image_size, image_size, channels], tf.float32,
                    name=features.IMAGE_INPUT_NAME)])
  def serve_images(images):
    # softmax([0, z]) equals [1 - sigmoid(z), sigmoid(z)]; as a softmax it
    # keeps the full 0..1 output range when quantized to 8 bits.
    logit = logit_model(images, training=False)
    return {features.SCORES_NAME: tf.nn.softmax(
        tf.concat([tf.zeros_like(logit), logit], axis=1))}

  return {
      features.SERVING_EXAMPLES_SIGNATURE: serve_examples,
      features.SERVING_IMAGE_SIGNATURE: serve_images,
  }


def export_model(model: tf.keras.Model, export_dir: str, image_size: int,
                 channels: int) -> None:
  """Saves `model` as a SavedModel with both serving signatures.

  Args:
    model: the trained classifier.
    export_dir: destination directory.
    image_size: side of the model's square input.
    channels: the model's input channels.
  """
  model.save(export_dir, save_format='tf', save_traces=False,
             signatures=_serving_signatures(model, image_size, channels))


def _warm_start_weights(model: tf.keras.Model,
                        base_model_dir: Optional[str]) -> bool:
  """Loads weights from a previous export when its architecture matches."""
  if not base_model_dir or not tf.io.gfile.exists(base_model_dir):
    return False
  base = tf.keras.models.load_model(base_model_dir, compile=False)
  if [w.shape for w in base.weights] != [w.shape for w in model.weights]:
    print(f'Warm start skipped: {base_model_dir} has another architecture.')
    return False
  model.set_weights(base.get_weights())
  return True


def evaluate(model: tf.keras.Model, dataset: tf.data.Dataset,
             max_batches: int = 0) -> Dict[str, float]:
  """Loss, accuracy and AUC of `model` over `dataset`.

  Args:
    model: the classifier.
    dataset: (pixels, labels) batches.
    max_batches: stop after this many batches (0: the whole dataset).

  Returns:
    `loss`, `accuracy`, `auc` and `examples`.
  """
  predict = tf.function(lambda x: model(x, training=False), autograph=False)
  labels, scores = [], []
  for index, (images, batch_labels) in enumerate(dataset):
    if max_batches and index >= max_batches:
      break
    scores.append(predict(images).numpy().reshape(-1))
    labels.append(batch_labels.numpy().reshape(-1))
  labels = np.concatenate(labels)
  scores = np.concatenate(scores)
  clipped = np.clip(scores, 1e-7, 1 - 1e-7)
  return {
      'loss': float(-np.mean(labels * np.log(clipped) +
                             (1 - labels) * np.log(1 - clipped))),
      'accuracy': float(np.mean((scores >= 0.5) == (labels >= 0.5))),
      'auc': metrics.binary_auc(labels, scores),
      'examples': int(len(labels)),
  }


def train(model: tf.keras.Model, dataset: tf.data.Dataset, steps: int,
          learning_rate: float, log_every: int = 0,
          tag: str = 'train') -> List[Dict[str, float]]:
  """Trains `model` for `steps` batches with Adam and cosine decay.

  A plain loop with a graph-compiled step (no AutoGraph): Keras' `fit`
  spent 15-20 s converting its own code with AutoGraph before the first
  step on our 2-core machines, longer than a default training run.

  Args:
    model: the classifier, trained in place: binary (labels 0 or 1,
      [batch, 1]) or multi-class (class indices, [batch]), by its output.
    dataset: endless (pixels, labels) batches.
    steps: number of training steps.
    learning_rate: peak learning rate.
    log_every: print progress every this many steps (0: ten times).
    tag: what the progress lines start with.

  Returns:
    One record per logged interval: `step`, mean `loss` and `accuracy`.
  """
  schedule = tf.keras.optimizers.schedules.CosineDecay(
      learning_rate, decay_steps=steps, alpha=0.05)
  optimizer = tf.keras.optimizers.Adam(schedule)
  multiclass = model.output_shape[-1] > 1
  loss_fn = (tf.keras.losses.SparseCategoricalCrossentropy() if multiclass
             else tf.keras.losses.BinaryCrossentropy())

  def step(images, labels):
    with tf.GradientTape() as tape:
      predictions = model(images, training=True)
      loss = loss_fn(labels, predictions)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    if multiclass:
      hits = tf.equal(tf.argmax(predictions, axis=-1, output_type=tf.int32),
                      tf.cast(tf.reshape(labels, [-1]), tf.int32))
    else:
      hits = tf.equal(predictions >= 0.5, labels >= 0.5)
    return loss, tf.reduce_mean(tf.cast(hits, tf.float32))

  step = tf.function(step, autograph=False)
  log_every = log_every or max(1, steps // 10)
  history, losses, accuracies = [], [], []
  started = time.time()
  iterator = iter(dataset)
  for index in range(1, steps + 1):
    try:
      images, labels = next(iterator)
    except StopIteration:
      break
    loss, correct = step(images, labels)
    losses.append(float(loss))
    accuracies.append(float(correct))
    if index % log_every == 0 or index == steps:
      record = {'step': index, 'loss': float(np.mean(losses)),
                'accuracy': float(np.mean(accuracies))}
      history.append(record)
      print(f"{tag}: step {index}/{steps} loss {record['loss']:.4f} "
            f"accuracy {record['accuracy']:.4f} "
            f'({time.time() - started:.0f} s)', flush=True)
      losses, accuracies = [], []
  recalibrate_batch_norm(model, iterator, RECALIBRATION_BATCHES)
  return history


def recalibrate_batch_norm(model: tf.keras.Model, batches,
                           count: int) -> int:
  """Sets BatchNorm's moving statistics to the trained weights' statistics.

  During training the moving mean and variance trail the weights that keep
  changing (momentum 0.9). On small data sets and short runs that lag put
  the inference-time decision threshold off: the AUC was high while the
  accuracy fell behind. After training, `count` more batches are run
  forward in training mode, no weight updated, with each BatchNorm layer's
  momentum set so its moving statistics become the plain average over
  those batches.

  Args:
    model: the trained classifier (its BatchNorm statistics change).
    batches: an iterator of (images, labels) batches.
    count: batches to average over.

  Returns:
    The number of batches used.
  """
  layers = [layer for layer in model.submodules
            if isinstance(layer, tf.keras.layers.BatchNormalization)]
  if not layers or count <= 0:
    return 0
  momenta = [layer.momentum for layer in layers]
  used = 0
  try:
    for used in range(count):
      try:
        images, _ = next(batches)
      except StopIteration:
        return used
      for layer in layers:
        layer.momentum = used / (used + 1.0)  # the running average
      model(images, training=True)
    used = count
  finally:
    for layer, momentum in zip(layers, momenta):
      layer.momentum = momentum
  return used


def model_settings(config: TrainingSettings,
                   hyperparameters: Optional[Dict[str, Any]]
                   ) -> Dict[str, float]:
  """Width, dropout and learning rate: the search's choice, else the
  pipeline's settings.

  Args:
    config: the training settings (their `width`, `learning_rate`).
    hyperparameters: the Tuner's best hyperparameters as KerasTuner
      writes them (`{'space': [...], 'values': {...}}`), or None.

  Returns:
    {'width', 'dropout', 'learning_rate'}.
  """
  settings = {'width': config.width, 'dropout': DEFAULT_DROPOUT,
              'learning_rate': config.learning_rate}
  values = (hyperparameters or {}).get('values') or {}
  settings.update({name: float(values[name]) for name in TUNED_SETTINGS
                   if name in values})
  return settings


def run_fn(fn_args) -> None:
  """Trains the classifier and exports it; called by the TFX Trainer.

  `fn_args.custom_config` holds the :class:`TrainingSettings`; their
  defaults live in the pipeline's configuration only.
  When a model search ran, `fn_args.hyperparameters` holds its choice of
  width, dropout and learning rate, which replace the settings'.

  Args:
    fn_args: the Trainer's `FnArgs` (files, Transform output, steps, export
      directories, custom config, base model).
  """
  config = TrainingSettings.from_custom_config(fn_args.custom_config)
  image_size, channels = config.image_size, config.channels
  batch_size, seed = config.batch_size, config.seed
  chosen = model_settings(config, getattr(fn_args, 'hyperparameters', None))
  tf.keras.utils.set_random_seed(seed)

  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  # The decoded cache is large: beside the run's outputs on a local disk,
  # in the temp folder when those are on a bucket (gs://, s3://).
  on_bucket = '://' in fn_args.model_run_dir
  cache_dir = tempfile.mkdtemp(
      prefix='.input-cache-', dir=None if on_bucket else fn_args.model_run_dir)
  train_ds = make_dataset(fn_args.train_files, tf_transform_output,
                          batch_size, image_size, channels, training=True,
                          seed=seed, augment=config.augment,
                          cache_dir=cache_dir)
  eval_ds = make_dataset(fn_args.eval_files, tf_transform_output, batch_size,
                         image_size, channels, training=False)

  model = build_model(image_size, channels, width=chosen['width'],
                      dropout=chosen['dropout'])
  warm_started = config.warm_start and _warm_start_weights(
      model, getattr(fn_args, 'base_model', None))
  try:
    history = train(model, train_ds, max(1, int(fn_args.train_steps)),
                    chosen['learning_rate'])
  finally:
    del train_ds
    shutil.rmtree(cache_dir, ignore_errors=True)
  print('train: evaluating on the eval split', flush=True)
  eval_metrics = evaluate(model, eval_ds, int(fn_args.eval_steps or 0))
  print('train: eval ' + ', '.join(f'{k} {v:.4f}' if isinstance(v, float)
                                   else f'{k} {v}'
                                   for k, v in eval_metrics.items()),
        flush=True)

  print('train: exporting the SavedModel', flush=True)
  started = time.time()
  export_model(model, fn_args.serving_model_dir, image_size, channels)
  print(f'train: exported in {time.time() - started:.0f} s', flush=True)
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir,
                                      'history.json'), 'w') as f:
    json.dump({'warm_started': warm_started, 'model': chosen,
               'tuned': bool(getattr(fn_args, 'hyperparameters', None)),
               'train': history,
               'eval': eval_metrics}, f, indent=2)
