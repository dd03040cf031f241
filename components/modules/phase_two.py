"""Phase two's Trainer module: the cloud model that says which instrument.

TFX calls :func:`run_fn` by its dotted name (``run_fn=``), from a second
Trainer on the same transformed examples as phase one's. Its classes are
the reject class (class 0's name, `not_instrument`: what phase one wrongly
flags reaches the cloud too) and then the families Transform found
(`features.FAMILY_VOCABULARY`), sorted. Positive examples of no family are
left out of its training and weighed 0 in its evaluation.

On spans of recordings whose windows kept their samples, phase two hears
them through pretrained musicnn models (`TrainingSettings.encoder`, see
:mod:`components.modules.phase_two_audio` for its model and signatures).
Otherwise (spans of images, or `encoder` empty) the network is phase one's
CNN with a softmax head, at its own width (`TrainingSettings.width` as the
pipeline sets it for phase two): nothing but the serving budget limits its
size, and the exported SavedModel has three signatures:

* ``serving_default``: serialized raw `tf.Example`s in; ``scores``
  ([batch, classes], probabilities) and ``classes`` ([batch, classes], the
  class names in score order) out. TFMA evaluates through it.
* ``transform_features``: serialized raw `tf.Example`s in; the label TFMA
  scores against (``phase_two_label``, the class index) and its weight
  (``phase_two_weight``, 0 for a positive example of no known family) out.
* ``serving_image``: float32 0..255 pixels in; ``scores`` and ``classes``
  out.
"""

import json
import os
import shutil
import tempfile
import time
from typing import Any, Dict, List, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components.modules import features
from components.modules import phase_two_audio
from components.modules import trainer
from components.modules.settings import TrainingSettings

# Phase two's label and its weight, as `transform_features` gives them to
# TFMA.
LABEL_KEY = 'phase_two_label'
WEIGHT_KEY = 'phase_two_weight'
TRANSFORM_FEATURES_SIGNATURE = 'transform_features'
# What a run with no family cannot train.
NO_FAMILIES = ('phase two has no family to learn: the window\'s positive '
               'examples lie in no family sub-folder')


class NoFamiliesError(ValueError):
  """Raised when the transformed examples hold no family."""


def families_of(tf_transform_output: tft.TFTransformOutput) -> List[str]:
  """The families Transform found, sorted ([] when none).

  TFT writes a placeholder into an empty vocabulary; it is not a family.
  """
  _, placeholder = tft.analyzers.get_empy_vocabulary_dummy_value(tf.string)
  found = tf_transform_output.vocabulary_by_name(features.FAMILY_VOCABULARY)
  return sorted(value.decode('utf-8') for value in found
                if value and value != placeholder)


def class_names(reject: str, families: Sequence[str]) -> List[str]:
  """Phase two's classes in score order: the reject class, then families."""
  return [reject] + list(families)


def evaluate(model: tf.keras.Model, dataset: tf.data.Dataset,
             names: Sequence[str]) -> Dict[str, Any]:
  """Accuracy, recall per class and the confusion matrix over `dataset`.

  Args:
    model: phase two's classifier.
    dataset: (pixels, class index) batches.
    names: the class names, in score order.

  Returns:
    `accuracy`, `examples`, `recall` (class name to recall, None for a
    class with no example) and `confusion` (rows: true class, columns:
    predicted class).
  """
  predict = tf.function(lambda x: model(x, training=False), autograph=False)
  confusion = np.zeros((len(names), len(names)), np.int64)
  for images, labels in dataset:
    predicted = np.argmax(predict(images).numpy(), axis=-1)
    np.add.at(confusion, (labels.numpy().reshape(-1), predicted), 1)
  total = int(confusion.sum())
  rows = confusion.sum(axis=1)
  return {
      'accuracy': float(np.trace(confusion) / total) if total else 0.0,
      'examples': total,
      'recall': {name: (float(confusion[i, i] / rows[i]) if rows[i]
                        else None) for i, name in enumerate(names)},
      'confusion': confusion.tolist(),
  }


def _signatures(model: tf.keras.Model, names: Sequence[str],
                image_size: int, channels: int) -> Dict[str, Any]:
  """The exported signatures (see the module's docstring)."""
  answer = features.named_scores(names)

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name='examples')])
  def serve_examples(serialized):
    parsed = tf.io.parse_example(serialized, {
        features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
    images = features.decode_batch(parsed[features.IMAGE_KEY], image_size,
                                   channels)
    return answer(model(tf.cast(images, tf.float32), training=False))

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None, image_size, image_size, channels], tf.float32,
                    name=features.IMAGE_INPUT_NAME)])
  def serve_images(images):
    return answer(model(images, training=False))

  return {features.SERVING_EXAMPLES_SIGNATURE: serve_examples,
          TRANSFORM_FEATURES_SIGNATURE: transform_features(names),
          features.SERVING_IMAGE_SIGNATURE: serve_images}


def transform_features(names: Sequence[str]):
  """The `transform_features` signature: TFMA's label (the class index)
  and its weight (0 for a positive example of no known family) of raw
  examples."""
  labels_of = trainer.phase_two_labels(names[1:])

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name='examples')])
  def transform(serialized):
    parsed = tf.io.parse_example(serialized, {
        features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64,
                                                  default_value=0),
        features.FAMILY_KEY: tf.io.FixedLenFeature([], tf.string,
                                                   default_value='')})
    label = labels_of(parsed)
    return {LABEL_KEY: tf.cast(tf.maximum(label, 0), tf.int64),
            WEIGHT_KEY: tf.cast(label >= 0, tf.float32)}

  return transform


def _write_labels(export_dir: str, names: Sequence[str]) -> None:
  extra = os.path.join(export_dir, features.ASSETS_EXTRA)
  tf.io.gfile.makedirs(extra)
  with tf.io.gfile.GFile(os.path.join(extra, features.LABELS_FILE), 'w') as f:
    f.write(''.join(f'{name}\n' for name in names))


def export_model(model: tf.keras.Model, export_dir: str,
                 names: Sequence[str], image_size: int,
                 channels: int) -> None:
  """Saves phase two's model with its signatures and its labels file
  (`assets.extra/labels.txt`, one class a line, in score order)."""
  model.save(export_dir, save_format='tf', save_traces=False,
             signatures=_signatures(model, names, image_size, channels))
  _write_labels(export_dir, names)


def export_heard(model: phase_two_audio.Heard, export_dir: str,
                 names: Sequence[str], window_samples: int) -> None:
  """Saves phase two on recordings (its encoder and head) with its
  signatures and its labels file."""
  found = phase_two_audio.signatures(model, names, window_samples)
  found[TRANSFORM_FEATURES_SIGNATURE] = transform_features(names)
  tf.saved_model.save(model, export_dir, signatures=found)
  _write_labels(export_dir, names)


def run_fn(fn_args) -> None:
  """Trains phase two's classifier and exports it; called by the Trainer.

  Args:
    fn_args: the Trainer's `FnArgs`; `custom_config` holds phase two's
      :class:`TrainingSettings`.

  Raises:
    NoFamiliesError: when the transformed examples hold no family (the
      pipeline runs phase two only when the window has families).
  """
  config = TrainingSettings.from_custom_config(fn_args.custom_config)
  tf.keras.utils.set_random_seed(config.seed)
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  families = families_of(tf_transform_output)
  if not families:
    raise NoFamiliesError(NO_FAMILIES)
  names = class_names(config.class_names[0], families)
  print(f'phase two: {len(names)} classes: {", ".join(names)}', flush=True)
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  feature_spec = tf_transform_output.transformed_feature_spec()
  window_samples = (phase_two_audio.window_samples_of(fn_args.train_files)
                    if config.encoder and phase_two_audio.has_samples(
                        feature_spec) else 0)
  if window_samples:
    record = _train_heard(fn_args, config, feature_spec, families, names,
                          window_samples)
  else:
    if config.encoder:
      print('phase two: the windows kept no samples (spans of images, or '
            'ingested with --keep-window-samples false): it learns from '
            'the pictures', flush=True)
    record = _train_pictures(fn_args, config, tf_transform_output,
                             families, names)
  found = record['eval']
  print(f"phase two: eval accuracy {found['accuracy']:.4f} on "
        f"{found['examples']} examples; recall " + ', '.join(
            f'{name} {recall:.2f}' for name, recall in found['recall'].items()
            if recall is not None), flush=True)
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir,
                                      'history.json'), 'w') as f:
    json.dump(dict(record, classes=names), f, indent=2)


def _train_pictures(fn_args, config: TrainingSettings,
                    tf_transform_output: tft.TFTransformOutput,
                    families: Sequence[str],
                    names: Sequence[str]) -> Dict[str, Any]:
  """Phase one's CNN with a softmax head, trained on the pictures and
  exported; returns the history record."""
  image_size, channels = config.image_size, config.channels
  on_bucket = '://' in fn_args.model_run_dir
  cache_dir = tempfile.mkdtemp(
      prefix='.input-cache-', dir=None if on_bucket else fn_args.model_run_dir)
  train_ds = trainer.make_dataset(
      fn_args.train_files, tf_transform_output, config.batch_size,
      image_size, channels, training=True, seed=config.seed,
      augment=config.augment, cache_dir=cache_dir, families=families)
  eval_ds = trainer.make_dataset(
      fn_args.eval_files, tf_transform_output, config.batch_size, image_size,
      channels, training=False, families=families)
  model = trainer.build_model(image_size, channels, width=config.width,
                              dropout=trainer.DEFAULT_DROPOUT,
                              classes=len(names))
  try:
    history = trainer.train(model, train_ds, max(1, int(fn_args.train_steps)),
                            config.learning_rate, tag='phase two')
  finally:
    del train_ds
    shutil.rmtree(cache_dir, ignore_errors=True)
  found = evaluate(model, eval_ds, names)
  print('phase two: exporting the SavedModel', flush=True)
  export_model(model, fn_args.serving_model_dir, names, image_size, channels)
  return {'hears': 'pictures', 'width': config.width, 'train': history,
          'eval': found}


def _train_heard(fn_args, config: TrainingSettings,
                 feature_spec: Dict[str, Any], families: Sequence[str],
                 names: Sequence[str], window_samples: int) -> Dict[str, Any]:
  """The classifier on the frozen musicnn embedding of each window's
  samples, trained and exported with the encoder; returns the history
  record."""
  from components.music import musicnn  # pylint: disable=g-import-not-at-top
  print(f'phase two: hears each window ({window_samples} samples) through '
        f'{", ".join(config.encoder)}', flush=True)
  encoder = musicnn.SequenceEncoder(config.encoder)
  started = time.time()
  train = phase_two_audio.embed(encoder, phase_two_audio.pcm_dataset(
      fn_args.train_files, feature_spec, families, window_samples), 'train')
  held = phase_two_audio.embed(encoder, phase_two_audio.pcm_dataset(
      fn_args.eval_files, feature_spec, families, window_samples), 'eval')
  heard_seconds = time.time() - started
  if not len(train[1]):
    raise NoFamiliesError('phase two has no window to learn from: no '
                          'train window kept its samples')
  steps = config.head_steps or max(1, int(fn_args.train_steps))
  head = phase_two_audio.train_head(train, len(names), steps,
                                    config.batch_size, config.learning_rate,
                                    config.seed)
  found = evaluate(head, tf.data.Dataset.from_tensor_slices(held).batch(256),
                   names)
  print('phase two: exporting the SavedModel, its ears inside', flush=True)
  exported = time.time()
  export_heard(phase_two_audio.Heard(encoder, head),
               fn_args.serving_model_dir, names, window_samples)
  print(f'phase two: exported in {time.time() - exported:.0f} s', flush=True)
  return {'hears': list(config.encoder), 'window_samples': window_samples,
          'train_windows': int(len(train[1])),
          'heard_seconds': round(heard_seconds, 1), 'eval': found}
