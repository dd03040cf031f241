"""ModelSearch executor: TFX's Tuner search, then the device budget's choice.

TFX's executor writes the trial with the best score; this one also writes
every trial's figures (`trials.json` in the TunerResults artifact), chooses
among the trials within budget only, and stops the run, naming the budget
and the smallest trial, when no trial fits: training the full number of
steps for a model the pusher must refuse would waste the run.
"""

import json
import os
from typing import Any, Dict, List

from tfx import types
from tfx.components.tuner import executor as tuner_executor
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import json_utils

from components.model_search import trials as trials_lib
from components.tflite import budget as budget_lib
from components.modules import search
from components.common import errors

BEST_HYPERPARAMETERS_FILE = 'best_hyperparameters.txt'  # what Trainer reads
TUNER_RESULTS_FILE = 'tuner_results.json'  # TFX's own summary


class ModelSearchError(errors.PipelineError, RuntimeError):
  """Raised when no trial of the search fits the device budget."""


def trial_records(oracle) -> List[Dict[str, Any]]:
  """Every trial of a KerasTuner oracle as a plain record, by trial id."""
  records = []
  for trial in sorted(oracle.trials.values(), key=lambda t: t.trial_id):
    record: Dict[str, Any] = {
        'trial_id': str(trial.trial_id),
        'status': str(trial.status),
        'hyperparameters': {
            name: float(f'{value:.6g}') if isinstance(value, float)
            else value
            for name, value in trial.hyperparameters.values.items()}}
    for name in search.FIGURES + (search.OBJECTIVE,):
      if trial.metrics.exists(name):
        record[name] = float(trial.metrics.get_last_value(name))
    for name in ('tflite_bytes', 'arena_bytes'):
      if name in record:
        record[name] = int(record[name])
    if 'within_budget' in record:
      record['within_budget'] = bool(record['within_budget'])
    records.append(record)
  return records


def no_fit_message(records: List[Dict[str, Any]],
                   budget: budget_lib.Budget) -> str:
  """Why the search found nothing: the budget and the cheapest trials."""
  done = trials_lib.completed(records)
  if not done:
    return f'no trial of the model search completed ({len(records)} tried)'
  smallest = min(done, key=lambda r: r['tflite_bytes'])
  fastest = min(done, key=lambda r: r['latency_ms_median'])
  arenas = [r for r in done if r.get('arena_bytes', -1) >= 0]
  leanest = (f", the leanest in RAM {min(r['arena_bytes'] for r in arenas):,}"
             ' arena bytes' if arenas else '')
  return (f'no trial of {len(done)} fits the device budget '
          f'({budget.describe()}): the smallest model was '
          f"{smallest['tflite_bytes']:,} bytes (width "
          f"{smallest['hyperparameters'].get('width')}), the fastest "
          f"{fastest['latency_ms_median']:.3f} ms{leanest}; raise the limit "
          '(--max-tflite-bytes, --max-latency-ms, --max-arena-bytes) or run '
          'more trials (--tune-trials)')


class Executor(tuner_executor.Executor):
  """Runs the search, writes every trial, and keeps the best that fits."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Searches, then writes the chosen hyperparameters and the table.

    Args:
      input_dict: as TFX's Tuner: `examples`, `transform_graph`, `schema`.
      output_dict: `best_hyperparameters` (the chosen trial's, what the
        Trainer reads) and `tuner_results` (`trials.json`, every trial).
      exec_properties: as TFX's Tuner; `custom_config` holds the budget.

    Raises:
      ModelSearchError: when no trial fits the budget.
    """
    settings = json_utils.loads(
        exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY,
                            'null')) or {}
    budget = budget_lib.Budget.from_dict(settings)
    tuner = tuner_executor.search(input_dict, exec_properties,
                                  self._get_tmp_dir(),
                                  print_tuning_summary=False)
    records = trial_records(tuner.oracle)
    chosen = trials_lib.choose(records)
    results = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.TUNER_RESULTS_KEY])
    io_utils.write_string_file(
        os.path.join(results.uri, trials_lib.TRIALS_FILE),
        trials_lib.dumps(records, chosen and chosen['trial_id'],
                         budget.to_dict()))
    if chosen is None:
      raise ModelSearchError(no_fit_message(records, budget))
    best = tuner.oracle.get_trial(chosen['trial_id']).hyperparameters
    hyperparameters = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.BEST_HYPERPARAMETERS_KEY])
    io_utils.write_string_file(
        os.path.join(hyperparameters.uri, BEST_HYPERPARAMETERS_FILE),
        json.dumps(best.get_config()))
    io_utils.write_string_file(
        os.path.join(results.uri, TUNER_RESULTS_FILE),
        json.dumps([dict(trial_id=r['trial_id'], score=r.get('score'),
                         **r['hyperparameters'])
                    for r in trials_lib.completed(records)]))
    hyperparameters.set_string_custom_property('chosen_trial',
                                               chosen['trial_id'])
    for name in ('auc', 'latency_ms_median'):
      hyperparameters.set_float_custom_property(name, chosen[name])
    hyperparameters.set_int_custom_property('tflite_bytes',
                                            chosen['tflite_bytes'])
    if chosen.get('arena_bytes', -1) >= 0:
      hyperparameters.set_int_custom_property('arena_bytes',
                                              chosen['arena_bytes'])
    results.set_int_custom_property('trials', len(records))
    results.set_int_custom_property(
        'trials_within_budget',
        sum(1 for r in trials_lib.completed(records) if r['within_budget']))
    results.set_string_custom_property('budget', budget.describe())
    print(f"search: chose trial {chosen['trial_id']} of {len(records)}: "
          + ', '.join(f'{k} {v:.4g}'
                      for k, v in chosen['hyperparameters'].items())
          + f" (auc {chosen['auc']:.4f}, {chosen['tflite_bytes']:,} bytes, "
          f"{chosen['latency_ms_median']:.3f} ms)", flush=True)
