"""Phase two on spans of recordings: it hears each window's samples through
pretrained musicnn models (`components.music`) and learns which family.

The musicnn networks stay frozen: each window's embedding, the sequence
of every model's 753 features a frame, averaged over 3 frames (a 1 s
window is 21 steps; `musicnn.SequenceEncoder`), is computed once for the
train and the eval split, and kept as float16. A small temporal classifier
is trained on it for `TrainingSettings.head_steps` (else the Trainer's
steps): the steps standardised, two convolutions of 3 steps over time,
max and mean over time, softmax. Heard over time rather than pooled first,
the window's attack and decay count: on one render of the default data it
raised the mean family recall from 0.70 to 0.76 (docs/phase-two.md). The
exported model is the whole graph, from a window of samples to the class
probabilities: log-mel, the networks, the standardisation and the
classifier, so a model server needs nothing but the SavedModel.

Its signatures:

* ``serving_default``: serialized raw `tf.Example`s in (their
  `audio_pcm`, a window of 16-bit PCM; a missing one is silence);
  ``scores`` and ``classes`` out. TFMA and the cascade evaluate through it.
* ``transform_features``: as phase two's on pictures (the label and its
  weight).
* ``serving_waveform``: float32 samples [batch, window samples] in, at
  16 kHz; ``scores`` and ``classes`` out. The serving model answers
  through it.
"""

import time
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from components.modules import features
from components.modules import trainer
from components.music import musicnn

# Embeddings per call of the frozen networks.
EMBED_BATCH = 64
# The classifier over the steps: two convolutions of FILTERS over KERNEL
# steps, with dropout before each (STEP_DROPOUT) and before the softmax
# (DROPOUT). Measured on one render of the default data (seed 7, 4,000
# steps): 0.757 and 0.763 mean family recall for two seeds, where a hidden
# layer on the pooled embedding gave 0.70; one convolution 0.72, kernel 5
# 0.75, 128 filters 0.74, steps of 9 frames 0.71.
FILTERS = 256
KERNEL = 3
STEP_DROPOUT = 0.2
DROPOUT = 0.3


def has_samples(feature_spec: Dict[str, Any]) -> bool:
  """Whether Transform passed each window's samples on."""
  return features.AUDIO_PCM_KEY in feature_spec


def window_samples_of(file_patterns: List[str]) -> int:
  """The window's length in samples: the longest kept window of the first
  examples (every window of a front end has one length)."""
  longest = 0
  for record in tf.data.TFRecordDataset(_files(file_patterns),
                                        compression_type='GZIP').take(64):
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    if features.AUDIO_PCM_KEY in feature:
      value = feature[features.AUDIO_PCM_KEY].bytes_list.value
      longest = max([longest] + [len(v) // 2 for v in value])
  return longest


def _files(file_patterns: List[str]) -> List[str]:
  files = []
  for pattern in file_patterns:
    files.extend(sorted(tf.io.gfile.glob(pattern)))
  if not files:
    raise ValueError(f'No transformed examples match {file_patterns}.')
  return files


def pcm_dataset(file_patterns: List[str], feature_spec: Dict[str, Any],
                families: Sequence[str], window_samples: int
                ) -> tf.data.Dataset:
  """(float32 [batch, window_samples] samples, int32 [batch] class index,
  bool [batch] whether the window kept its samples) batches, in file
  order; positive windows of no known family are left out."""
  labels_of = trainer.phase_two_labels(families)
  keys = (features.AUDIO_PCM_KEY, features.LABEL_KEY, features.FAMILY_KEY)
  spec = {key: feature_spec[key] for key in keys}

  def parse(serialized):
    parsed = tf.io.parse_example(serialized, spec)
    return parsed[features.AUDIO_PCM_KEY], labels_of(parsed)

  return (tf.data.TFRecordDataset(_files(file_patterns),
                                  compression_type='GZIP')
          .batch(EMBED_BATCH).map(parse).unbatch()
          .filter(lambda pcm, label: label >= 0)
          .batch(EMBED_BATCH)
          .map(lambda pcm, label: (
              features.decode_pcm(pcm, window_samples), label,
              tf.strings.length(pcm) > 0)))


def embed(encoder: musicnn.Encoder, dataset: tf.data.Dataset,
          tag: str) -> Tuple[np.ndarray, np.ndarray]:
  """The embedding and class index of every window that kept its samples,
  with progress lines; the windows that kept none are left out, and
  counted in one line."""
  # float16, cast in TensorFlow: a window's steps are 21 x 1,506 numbers
  # and a split holds thousands of windows (NumPy's own cast to float16 left
  # the dataset's end stalled for as long again as the whole embedding).
  run = tf.function(lambda samples: tf.cast(encoder(samples), tf.float16),
                    autograph=False)
  found, labels = [], []
  missing = 0
  started = time.time()
  for index, (samples, label, kept) in enumerate(dataset, start=1):
    kept = kept.numpy()
    missing += int((~kept).sum())
    if kept.any():
      found.append(run(tf.boolean_mask(samples, kept)).numpy())
      labels.append(label.numpy()[kept])
    if index % 10 == 0:
      print(f'phase two: {tag}: {sum(map(len, labels))} windows heard '
            f'({time.time() - started:.0f} s)', flush=True)
  if missing:
    print(f'phase two: {tag}: {missing} windows kept no samples (spans '
          'ingested with --keep-window-samples false, or before windows '
          'kept them): left out; ingest those recordings again to train on '
          'them', flush=True)
  if not found:
    return (np.zeros((0, encoder.size), np.float16),
            np.zeros(0, np.int32))
  return np.concatenate(found), np.concatenate(labels).astype(np.int32)


def build_head(size: int, classes: int, mean: np.ndarray,
               std: np.ndarray) -> tf.keras.Model:
  """The classifier on the sequence of steps ([batch, steps, `size`]):
  standardised (by the train split's mean and deviation of each feature,
  fixed), two convolutions over time, max and mean over time, then
  softmax, with dropout while training."""
  layers = tf.keras.layers
  steps = layers.Input([None, size], name='embedding')
  x = layers.Lambda(
      lambda t: (tf.cast(t, tf.float32) - tf.constant(mean, tf.float32)) /
      tf.constant(std, tf.float32), name='standardise')(steps)
  for index in range(2):
    x = layers.Conv1D(FILTERS, KERNEL, padding='same', activation='relu',
                      name=f'over_time_{index + 1}')(
                          layers.Dropout(STEP_DROPOUT)(x))
  pooled = layers.Concatenate(name='pooled')([
      layers.GlobalMaxPooling1D()(x), layers.GlobalAveragePooling1D()(x)])
  scores = layers.Dense(classes, activation='softmax', name='families')(
      layers.Dropout(DROPOUT)(pooled))
  return tf.keras.Model(steps, scores, name='phase_two_head')


def train_head(train: Tuple[np.ndarray, np.ndarray], classes: int,
               steps: int, batch_size: int, learning_rate: float,
               seed: int) -> tf.keras.Model:
  """Trains the classifier on the train split's embeddings ([windows,
  steps, features], float16)."""
  embeddings, labels = train
  axes = tuple(range(embeddings.ndim - 1))
  mean = embeddings.mean(axis=axes, dtype=np.float32)
  std = embeddings.std(axis=axes, dtype=np.float32) + 1e-3
  head = build_head(embeddings.shape[-1], classes, mean, std)
  dataset = (tf.data.Dataset.from_tensor_slices((embeddings, labels))
             .shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
             .repeat().batch(batch_size)
             .map(lambda x, y: (tf.cast(x, tf.float32), y)))
  trainer.train(head, dataset, steps, learning_rate, tag='phase two')
  return head


class Heard(tf.keras.Model):
  """Samples to class probabilities: the frozen encoder, then the head."""

  def __init__(self, encoder: musicnn.Encoder, head: tf.keras.Model):
    super().__init__(name='phase_two_heard')
    self.encoder, self.head = encoder, head

  def call(self, samples, training=False):
    return self.head(self.encoder(samples), training=training)

  def get_config(self):
    """Nothing to rebuild it from: it is exported as signatures only."""
    return {}


def signatures(model: Heard, names: Sequence[str],
               window_samples: int) -> Dict[str, Any]:
  """The exported `serving_default` and `serving_waveform` (see the
  module's docstring; phase two adds `transform_features`)."""
  answer = features.named_scores(names)

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None], tf.string, name='examples')])
  def serve_examples(serialized):
    parsed = tf.io.parse_example(serialized, {
        features.AUDIO_PCM_KEY: tf.io.FixedLenFeature([], tf.string,
                                                      default_value='')})
    samples = features.decode_pcm(parsed[features.AUDIO_PCM_KEY],
                                  window_samples)
    return answer(model(samples, training=False))

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None, window_samples], tf.float32,
                    name=features.WAVEFORM_INPUT_NAME)])
  def serve_waveform(samples):
    return answer(model(samples, training=False))

  return {features.SERVING_EXAMPLES_SIGNATURE: serve_examples,
          features.SERVING_WAVEFORM_SIGNATURE: serve_waveform}
