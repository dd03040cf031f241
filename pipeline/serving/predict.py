"""Run a pushed TFLite model on image files or WAV clips, as an app would.

`python -m pipeline predict MODEL_DIR FILE...` needs only the pushed model
folder (a version folder, or a push destination whose `LATEST` names one;
local, `gs://` or `s3://`): its `manifest.json`, `labels.txt` and
`model.tflite`, each checked against the manifest's SHA-256. Files are read
through the same function as `ingest` (:func:`pipeline.data.decode.read_source`,
with the same limits on declared image pixels and clip length), then decoded
and resized exactly as in training; WAV clips are rendered with the
project's spectrogram function.
"""

import dataclasses
from typing import BinaryIO, List, Optional, Sequence

import numpy as np

from components.common import storage
from components.modules import features
from components.tflite_pusher import conversion
from components.tflite_pusher import push
from pipeline.data import decode
from components.common import errors


class ModelFolderError(errors.PipelineError, ValueError):
  """Raised when a pushed model folder is incomplete or corrupt."""


@dataclasses.dataclass
class Prediction:
  """The outcome for one file.

  Attributes:
    path: the file.
    label: the predicted class name (None on error).
    probability: its probability.
    scores: every class's probability, by class name.
    error: why the file could not be classified, else None.
  """
  path: str
  label: Optional[str] = None
  probability: float = 0.0
  scores: Optional[dict] = None
  error: Optional[str] = None


class PushedModel:
  """A pushed model folder, loaded and checked against its manifest.

  Args:
    path: a version folder or a push destination.
    limits: the limits every classified file is read within.

  Raises:
    ModelFolderError: for a missing file or a checksum mismatch.
  """

  def __init__(self, path: str,
               limits: decode.FileLimits = decode.FileLimits()):
    self.limits = limits
    try:
      self.folder = push.resolve_model_dir(path)
      self.manifest = push.check_version(self.folder)
      model_path = storage.join(self.folder, self.manifest['model_file'])
      model = storage.read_bytes(model_path)
      labels = storage.read_text(storage.join(self.folder,
                                              self.manifest['labels_file']))
    except push.PushError as e:
      raise ModelFolderError(str(e)) from e
    except (OSError, ValueError, KeyError) as e:
      raise ModelFolderError(f'incomplete model folder {path}: {e}') from e
    self.labels = [line.strip() for line in labels.splitlines()
                   if line.strip()]
    self.image_size = int(self.manifest['input']['image_size'])
    self.channels = int(self.manifest['input']['channels'])
    self.classifier = conversion.TFLiteClassifier(model)

  def pixels(self, stream: BinaryIO, name: str) -> np.ndarray:
    """Reads an image or WAV clip into model-sized float pixels.

    Raises:
      decode.UnreadableFile: naming why the file cannot be used.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    source = decode.read_source(stream, name, self.image_size, self.limits,
                                allow_blank=True)
    image = features.decode_and_resize(tf.constant(source.data),
                                       self.image_size, self.channels)
    return image.numpy().astype(np.float32)

  def predict(self, path: str) -> Prediction:
    """Classifies one file; errors are returned, not raised."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    try:
      with storage.open_binary(path) as f:
        pixels = self.pixels(f, path)
    except OSError as e:
      return Prediction(path, error=f'cannot read the file '
                        f'({e.strerror or e})')
    except decode.UnreadableFile as e:
      return Prediction(path, error=str(e))
    except tf.errors.InvalidArgumentError as e:
      return Prediction(path, error=f'not a readable image ({e.message})')
    scores = self.classifier.scores(pixels)
    best = int(np.argmax(scores))
    return Prediction(path, self.labels[best], float(scores[best]),
                      {name: round(float(score), 6)
                       for name, score in zip(self.labels, scores)})


def predict_files(model_dir: str, paths: Sequence[str],
                  limits: decode.FileLimits = decode.FileLimits()
                  ) -> List[Prediction]:
  """Classifies every file with the model in `model_dir`.

  Args:
    model_dir: a pushed version folder or a push destination.
    paths: the image files or WAV clips.
    limits: the limits every file is read within.

  Returns:
    One :class:`Prediction` per path, in order; unreadable files carry
    their reason in `error`.

  Raises:
    ModelFolderError: for an incomplete or corrupt model folder.
  """
  model = PushedModel(model_dir, limits)
  return [model.predict(path) for path in paths]
