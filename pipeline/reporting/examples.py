"""The report's pictures: sample images of the newest span, and the eval
examples the run's model gets most confidently wrong (scored once per model
and eval examples, see :mod:`pipeline.metadata.figures_cache`)."""

import base64
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from components import contracts
from pipeline.metadata import figures_cache
from pipeline.metadata import mlmd

SAMPLES_PER_CLASS = 4
# The report scores at most this many eval examples with the run's model,
# and shows the most confidently wrong of them.
EVAL_SCORED = 1000
MISCLASSIFIED_SHOWN = 12


def _image_type(data: bytes) -> str:
  return 'image/jpeg' if data[:3] == b'\xff\xd8\xff' else 'image/png'


def _read_examples(uri: str, split_pattern: str, limit: int = -1
                   ) -> Iterator[Tuple[bytes, int, str, bytes]]:
  """The tf.Examples of `uri`'s splits matching `split_pattern`, in file
  order: (serialized, label, file name, image bytes)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  files = sorted(tf.io.gfile.glob(os.path.join(uri, split_pattern, '*')))
  for raw in tf.data.TFRecordDataset(files,
                                     compression_type='GZIP').take(limit):
    data = raw.numpy()
    feature = tf.train.Example.FromString(data).features.feature
    yield (data, int(feature[features.LABEL_KEY].int64_list.value[0]),
           feature[features.FILENAME_KEY].bytes_list.value[0].decode(
               'utf-8', 'replace'),
           feature[features.IMAGE_KEY].bytes_list.value[0])


def samples(store, record: mlmd.RunRecord, class_names: Sequence[str]
             ) -> List[Dict[str, Any]]:
  """A few images of each class of the run's newest span, as data URIs."""
  examples = record.output(contracts.ImportExampleGen.NODE, contracts.ImportExampleGen.EXAMPLES)
  if examples is None:
    return []
  picked: Dict[int, List[Tuple[str, str]]] = {0: [], 1: []}
  for _, label, name, image in _read_examples(examples.uri, 'Split-*'):
    if len(picked.get(label, ())) >= SAMPLES_PER_CLASS:
      if all(len(v) >= SAMPLES_PER_CLASS for v in picked.values()):
        break
      continue
    picked[label].append((name, _data_uri(image)))
  return [{'name': class_names[label] if label < len(class_names)
           else str(label), 'images': images}
          for label, images in sorted(picked.items())]


def _data_uri(data: bytes) -> str:
  return f'data:{_image_type(data)};base64,{base64.b64encode(data).decode()}'


def _misclassified(record: mlmd.RunRecord, class_names: Sequence[str]
                   ) -> Optional[Dict[str, Any]]:
  """The eval examples the run's model classifies wrongly, most confident
  first, scored with its `serving_default` (tf.Example) signature."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  model = record.output(contracts.Trainer.NODE, contracts.Trainer.MODEL)
  window = record.output(contracts.SpanWindow.NODE, contracts.SpanWindow.EXAMPLES)
  if model is None or window is None:
    return None
  examples = list(_read_examples(window.uri, 'Split-eval', EVAL_SCORED))
  if not examples:
    return None
  serve = tf.saved_model.load(os.path.join(
      model.uri, 'Format-Serving')).signatures[
          features.SERVING_EXAMPLES_SIGNATURE]
  scores = []
  for start in range(0, len(examples), 64):
    batch = [data for data, _, _, _ in examples[start:start + 64]]
    output = serve(examples=tf.constant(batch))
    scores.extend(output[features.OUTPUT_NAME].numpy().reshape(-1).tolist())
  wrong = [(abs(score - label), label, score, name, image)
           for (_, label, name, image), score in zip(examples, scores)
           if int(score >= 0.5) != label]
  wrong.sort(key=lambda item: -item[0])
  return {'scored': len(examples), 'wrong': len(wrong),
          'examples': [{'name': name, 'uri': _data_uri(image), 'score': score,
                        'label': class_names[label]}
                       for _, label, score, name, image in
                       wrong[:MISCLASSIFIED_SHOWN]]}


def misclassified_once(workspace: str, record: mlmd.RunRecord,
                        class_names: Sequence[str]
                        ) -> Optional[Dict[str, Any]]:
  """:func:`_misclassified`, scored once per model and eval examples: a
  cached run's report reuses the scores of the run that trained."""
  model = record.output(contracts.Trainer.NODE, contracts.Trainer.MODEL)
  window = record.output(contracts.SpanWindow.NODE, contracts.SpanWindow.EXAMPLES)
  if model is None or window is None:
    return None
  return figures_cache.cached(
      workspace, 'misclassified', [model.uri, window.uri, *class_names],
      lambda: _misclassified(record, class_names))
