"""The model search's section of the settings, as its module code
(`search.py`) takes it through `custom_config`: the training settings, the
search's own, and how trials are converted and judged, the device budget
as a `Budget`. A file of its own, so the budget's code is in the search's
cache key and not the Trainer's.
"""

import dataclasses
from typing import Any, Dict

from components.modules.settings import TrainingSettings
from components.tflite import budget as budget_lib


@dataclasses.dataclass(frozen=True)
class SearchSettings:
  """What the budget-aware model search needs: the training settings, its
  own, and how its trials are converted and judged.

  Attributes:
    training: the training settings each trial trains with.
    tune_trials: trials of the search.
    quantization: the mode trials are converted in.
    latency_runs: invokes timed for a trial's median latency.
    representative_examples: training examples calibrating `int8`.
    budget: the device budget trials are judged by.
  """
  training: TrainingSettings
  tune_trials: int
  quantization: str
  latency_runs: int
  representative_examples: int
  budget: budget_lib.Budget

  def to_custom_config(self) -> Dict[str, Any]:
    """The JSON object TFX passes to the search's module code: the
    training settings, the search's and the budget's limits, flat."""
    return dict(self.training.to_custom_config(),
                tune_trials=self.tune_trials, quantization=self.quantization,
                latency_runs=self.latency_runs,
                representative_examples=self.representative_examples,
                **self.budget.to_dict())

  @classmethod
  def from_custom_config(cls, config: Dict[str, Any]) -> 'SearchSettings':
    """The settings a `custom_config` holds."""
    return cls(training=TrainingSettings.from_custom_config(config),
               tune_trials=int(config['tune_trials']),
               quantization=str(config['quantization']),
               latency_runs=int(config['latency_runs']),
               representative_examples=int(config['representative_examples']),
               budget=budget_lib.Budget.from_dict(config))
