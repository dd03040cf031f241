"""The report's pictures: sample images of the newest span, and the eval
examples the run's model gets most confidently wrong (scored once per model
and eval examples, see :mod:`pipeline.metadata.figures_cache`)."""

import base64
import json
import os
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from components import contracts
from components.common import span_layout
from pipeline.metadata import figures_cache
from pipeline.metadata import mlmd

SAMPLES_PER_CLASS = 4
# The report reads at most this many examples of the newest span for its
# samples (a family too rare to be among them shows none).
SAMPLES_SCANNED = 5000
# The report scores at most this many eval examples with the run's model,
# and shows the most confidently wrong of them.
EVAL_SCORED = 1000
MISCLASSIFIED_SHOWN = 12


def _image_type(data: bytes) -> str:
  return 'image/jpeg' if data[:3] == b'\xff\xd8\xff' else 'image/png'


def _read_examples(uri: str, split_pattern: str, limit: int = -1
                   ) -> Iterator[Tuple[bytes, int, str, bytes, str, bytes]]:
  """The tf.Examples of `uri`'s splits matching `split_pattern`, in file
  order: (serialized, label, file name, image bytes, family or kind, ''
  when the example has neither, the window's 16-bit PCM, b'' when it kept
  none)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  files = sorted(tf.io.gfile.glob(os.path.join(uri, split_pattern, '*')))
  for raw in tf.data.TFRecordDataset(files,
                                     compression_type='GZIP').take(limit):
    data = raw.numpy()
    feature = tf.train.Example.FromString(data).features.feature
    group = pcm = b''
    for key in (features.FAMILY_KEY, features.KIND_KEY):
      if key in feature and feature[key].bytes_list.value:
        group = feature[key].bytes_list.value[0]
    if (features.AUDIO_PCM_KEY in feature
        and feature[features.AUDIO_PCM_KEY].bytes_list.value):
      pcm = feature[features.AUDIO_PCM_KEY].bytes_list.value[0]
    yield (data, int(feature[features.LABEL_KEY].int64_list.value[0]),
           feature[features.FILENAME_KEY].bytes_list.value[0].decode(
               'utf-8', 'replace'),
           feature[features.IMAGE_KEY].bytes_list.value[0],
           group.decode('utf-8', 'replace'), pcm)


def pick_samples(examples: Iterable[Tuple[int, str, str, bytes]],
                 class_names: Sequence[str], per_group: int = SAMPLES_PER_CLASS,
                 scanned: int = SAMPLES_SCANNED) -> List[Dict[str, Any]]:
  """A few images of each class, and of each family or kind within it.

  Args:
    examples: (label, family or kind, file name, image bytes), in the
      span's order (shuffled at ingest).
    class_names: the class names, in label order.
    per_group: images shown per class, or per family or kind.
    scanned: examples read at most, so a large span costs little.

  Returns:
    One entry per class (or class and family, `instrument / piano`), in
    label then name order: `name` and `images` ((file name, data URI)).
  """
  picked: Dict[Tuple[int, str], List[Tuple[str, str]]] = {}
  for number, (label, group, name, image) in enumerate(examples):
    if number >= scanned:
      break
    chosen = picked.setdefault((label, group), [])
    if len(chosen) < per_group:
      chosen.append((name, _data_uri(image)))

  def title(label: int, group: str) -> str:
    name = class_names[label] if label < len(class_names) else str(label)
    return f'{name} / {group}' if group else name

  return [{'name': title(label, group), 'images': images}
          for (label, group), images in sorted(picked.items())]


def samples(store, record: mlmd.RunRecord, class_names: Sequence[str]
             ) -> List[Dict[str, Any]]:
  """A few images of each class, family and kind of the run's newest span,
  as data URIs (:func:`pick_samples`)."""
  del store  # The record holds what is read.
  examples = record.output(contracts.ImportExampleGen.NODE, contracts.ImportExampleGen.EXAMPLES)
  if examples is None:
    return []
  return pick_samples(
      ((label, group, name, image) for _, label, name, image, group, _ in
       _read_examples(examples.uri, 'Split-*')), class_names)


def _data_uri(data: bytes) -> str:
  return f'data:{_image_type(data)};base64,{base64.b64encode(data).decode()}'


def wav_uri(pcm: bytes, sample_rate: int) -> str:
  """A window's mono 16-bit little-endian PCM as a WAV file in a data URI,
  which a page's `<audio>` plays."""
  from pipeline.data import spectrogram  # pylint: disable=g-import-not-at-top
  data = spectrogram.pcm_wav_bytes(pcm, sample_rate)
  return f'data:audio/wav;base64,{base64.b64encode(data).decode()}'


def window_rate(window) -> Optional[int]:
  """The sample rate of the window's recordings (its recorded front end),
  None for spans of images."""
  found = mlmd.custom_value(window, span_layout.FRONT_END_PROPERTY)
  if not found:
    return None
  try:
    rate = json.loads(found).get('sample_rate')
  except (ValueError, AttributeError):
    return None
  return int(rate) if isinstance(rate, (int, float)) and rate > 0 else None


def _misclassified(record: mlmd.RunRecord, class_names: Sequence[str],
                   threshold: float = 0.5) -> Optional[Dict[str, Any]]:
  """The eval examples the run's model classifies wrongly at `threshold`,
  most confident first, scored with its `serving_default` (tf.Example)
  signature."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  model = record.output(contracts.Trainer.NODE, contracts.Trainer.MODEL)
  window = record.output(contracts.SpanWindow.NODE, contracts.SpanWindow.EXAMPLES)
  if model is None or window is None:
    return None
  examples = list(_read_examples(window.uri, 'Split-eval', EVAL_SCORED))
  if not examples:
    return None
  rate = window_rate(window)
  serve = tf.saved_model.load(os.path.join(
      model.uri, 'Format-Serving')).signatures[
          features.SERVING_EXAMPLES_SIGNATURE]
  scores = []
  for start in range(0, len(examples), 64):
    batch = [example[0] for example in examples[start:start + 64]]
    output = serve(examples=tf.constant(batch))
    scores.extend(output[features.OUTPUT_NAME].numpy().reshape(-1).tolist())
  wrong = [(abs(score - label), label, score, name, image, pcm)
           for (_, label, name, image, _, pcm), score in zip(examples, scores)
           if int(score >= threshold) != label]
  wrong.sort(key=lambda item: -item[0])
  return {'scored': len(examples), 'wrong': len(wrong),
          'threshold': threshold,
          'examples': [{'name': name, 'uri': _data_uri(image), 'score': score,
                        'label': class_names[label],
                        # The window itself, to hear, where it kept its
                        # samples.
                        'audio': wav_uri(pcm, rate) if pcm and rate else None}
                       for _, label, score, name, image, pcm in
                       wrong[:MISCLASSIFIED_SHOWN]]}


def misclassified_once(workspace: str, record: mlmd.RunRecord,
                        class_names: Sequence[str], threshold: float = 0.5
                        ) -> Optional[Dict[str, Any]]:
  """:func:`_misclassified` at `threshold` (the positive class's score
  from which an example is called positive), scored once per model, eval
  examples and threshold: a cached run's report reuses the scores of the
  run that trained."""
  model = record.output(contracts.Trainer.NODE, contracts.Trainer.MODEL)
  window = record.output(contracts.SpanWindow.NODE, contracts.SpanWindow.EXAMPLES)
  if model is None or window is None:
    return None
  return figures_cache.cached(
      workspace, 'misclassified-heard',
      [model.uri, window.uri, *class_names, repr(float(threshold))],
      lambda: _misclassified(record, class_names, threshold))
