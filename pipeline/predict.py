"""Run a pushed TFLite model on image files or WAV clips, as an app would.

`python -m pipeline predict MODEL_DIR FILE...` needs only the pushed model
folder (a version folder, or a push destination whose `LATEST` names one):
its `manifest.json`, `labels.txt` and `model.tflite`. Images are decoded and
resized exactly as in training; WAV clips are first rendered with the
project's spectrogram function.
"""

import dataclasses
import io
import os
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image

from components.modules import features
from components.tflite_pusher import conversion
from components.tflite_pusher import push
from pipeline import spectrogram



class ModelFolderError(ValueError):
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

  Raises:
    ModelFolderError: for a missing file or a checksum mismatch.
  """

  def __init__(self, path: str):
    try:
      self.folder = push.resolve_model_dir(path)
      self.manifest = push.read_manifest(self.folder)
    except (push.PushError, OSError, ValueError) as e:
      raise ModelFolderError(str(e)) from e
    model_path = os.path.join(self.folder, self.manifest['model_file'])
    try:
      with open(model_path, 'rb') as f:
        model = f.read()
      with open(os.path.join(self.folder, self.manifest['labels_file']),
                encoding='utf-8') as f:
        self.labels = [line.strip() for line in f if line.strip()]
    except OSError as e:
      raise ModelFolderError(f'incomplete model folder {self.folder}: {e}'
                             ) from e
    if conversion.sha256(model) != self.manifest['sha256']:
      raise ModelFolderError(
          f'{model_path} does not match the SHA-256 in its manifest; the '
          'file is corrupt or was replaced.')
    self.image_size = int(self.manifest['input']['image_size'])
    self.channels = int(self.manifest['input']['channels'])
    self.classifier = conversion.TFLiteClassifier(model)

  def pixels(self, data: bytes, name: str) -> np.ndarray:
    """Decodes an image or renders a WAV clip into model-sized pixels."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if spectrogram.is_wav(data):
      audio, rate = spectrogram.read_wav(data, name)
      buffer = io.BytesIO()
      Image.fromarray(spectrogram.spectrogram_image(
          audio, rate, self.image_size)).save(buffer, format='PNG')
      data = buffer.getvalue()
    image = features.decode_and_resize(tf.constant(data), self.image_size,
                                       self.channels)
    return image.numpy().astype(np.float32)

  def predict(self, path: str) -> Prediction:
    """Classifies one file; errors are returned, not raised."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    try:
      with open(path, 'rb') as f:
        data = f.read()
    except OSError as e:
      return Prediction(path, error=f'cannot read the file ({e.strerror})')
    if not data:
      return Prediction(path, error='empty file (0 bytes)')
    try:
      scores = self.classifier.scores(self.pixels(data, path))
    except spectrogram.AudioError as e:
      return Prediction(path, error=str(e))
    except tf.errors.InvalidArgumentError:
      return Prediction(path, error='not a readable image (PNG, JPEG, GIF, '
                        'BMP) or WAV clip')
    best = int(np.argmax(scores))
    return Prediction(path, self.labels[best], float(scores[best]),
                      {name: round(float(score), 6)
                       for name, score in zip(self.labels, scores)})


def predict_files(model_dir: str, paths: Sequence[str]) -> List[Prediction]:
  """Classifies every file with the model in `model_dir`."""
  model = PushedModel(model_dir)
  return [model.predict(path) for path in paths]
