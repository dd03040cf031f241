"""The training section of the settings, as the module code takes it.

TFX hands module code its settings as `custom_config`, a JSON object;
:class:`TrainingSettings` is the typed value the pipeline builds
(`PipelineConfig.training_settings()`) and the Transform, Trainer and search
module code read back (`from_custom_config`), so no key is spelled twice.
The search's own settings are `search_settings.py` (they hold the device
budget, which stays out of the Trainer's cache key). Their defaults live in
the pipeline's settings only.
"""

import dataclasses
from typing import Any, Dict, Tuple


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
  """What the Transform, Trainer and search module code need.

  Attributes:
    image_size: the model's square input side.
    channels: 3 (RGB) or 1.
    batch_size: training batch size.
    learning_rate: peak learning rate.
    width: multiplier on the CNN's filter counts.
    seed: random seed of training.
    augment: whether spectrograms are shifted and masked while training.
    warm_start: whether training starts from the latest blessed model.
    class_names: the two classes, label 0 first.
    encoder: phase two's ears on spans of recordings: the pretrained
      musicnn models (`components.music.weights.CHECKPOINTS`) whose pooled
      embedding it learns on, from each window's samples; () to learn from
      the pictures with phase one's CNN, as spans of images always do.
    head_steps: training steps of phase two's classifier on the encoder's
      embedding (0: the Trainer's steps).
  """
  image_size: int
  channels: int
  batch_size: int
  learning_rate: float
  width: float
  seed: int
  augment: bool
  warm_start: bool
  class_names: Tuple[str, ...]
  encoder: Tuple[str, ...] = ()
  head_steps: int = 0

  def to_custom_config(self) -> Dict[str, Any]:
    """The JSON object TFX passes to the module code."""
    values = dataclasses.asdict(self)
    values['class_names'] = list(self.class_names)
    values['encoder'] = list(self.encoder)
    return values

  @classmethod
  def from_custom_config(cls, config: Dict[str, Any]) -> 'TrainingSettings':
    """The settings a `custom_config` holds (extra keys ignored)."""
    return cls(image_size=int(config['image_size']),
               channels=int(config['channels']),
               batch_size=int(config['batch_size']),
               learning_rate=float(config['learning_rate']),
               width=float(config['width']), seed=int(config['seed']),
               augment=bool(config['augment']),
               warm_start=bool(config['warm_start']),
               class_names=tuple(config['class_names']),
               encoder=tuple(config.get('encoder', ())),
               head_steps=int(config.get('head_steps', 0)))
