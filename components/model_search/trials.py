"""The trial table of a model search: what each trial measured, which one
was chosen, and which trials are worth their cost.

Plain Python over JSON records, so `inspect trials` and the report read a
finished search without TensorFlow or KerasTuner.

A record holds `trial_id`, `status`, `hyperparameters` ({name: value}) and
the figures of `components/modules/search.py` (`auc`, `accuracy`,
`tflite_bytes`, `latency_ms_median`, `within_budget`, `seconds`, `score`).
"""

import json
from typing import Any, Dict, List, Optional

from components.common import errors

# The file of the TunerResults artifact that holds the whole table.
TRIALS_FILE = 'trials.json'


class TrialsError(errors.PipelineError, ValueError):
  """Raised for a trial table that cannot be read; names the file."""


def completed(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
  """The trials that ran to the end and recorded an AUC."""
  return [r for r in records
          if r.get('status') == 'COMPLETED' and r.get('auc') is not None]


def choose(records: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
  """The trial within budget with the best AUC (ties: the smaller model,
  then the earlier trial); None when no trial fits."""
  fitting = [r for r in completed(records) if r.get('within_budget')]
  if not fitting:
    return None
  return sorted(fitting, key=lambda r: (-_auc(r), r['tflite_bytes'],
                                        str(r['trial_id'])))[0]


def pareto_front(records: List[Dict[str, Any]],
                 cost: str) -> List[Dict[str, Any]]:
  """The completed trials no other trial beats on both AUC and `cost`.

  A trial is on the front when every trial at most as costly has a lower
  AUC. Returned by increasing cost, so joining them draws the front.

  Args:
    records: the trial table.
    cost: `tflite_bytes` or `latency_ms_median`.
  """
  front, best = [], float('-inf')
  for record in sorted(completed(records),
                       key=lambda r: (r[cost], -_auc(r))):
    if _auc(record) > best:
      front.append(record)
      best = _auc(record)
  return front


def _auc(record: Dict[str, Any]) -> float:
  auc = record.get('auc')
  return float('-inf') if auc is None or auc != auc else float(auc)


def dumps(records: List[Dict[str, Any]], chosen: Optional[str],
          budget: Dict[str, Any]) -> str:
  """The table as the JSON document `loads` reads."""
  return json.dumps({'budget': budget, 'chosen_trial': chosen,
                     'trials': records}, indent=2, sort_keys=True)


def loads(text: str, source: str) -> Dict[str, Any]:
  """Reads a table written by `dumps`.

  Args:
    text: the document.
    source: where it came from, for the error message.

  Returns:
    {'budget': {...}, 'chosen_trial': id or None, 'trials': [...]}.

  Raises:
    TrialsError: naming `source` when the document is not a trial table.
  """
  try:
    table = json.loads(text)
  except ValueError as e:
    raise TrialsError(f'{source} is not JSON: {e}') from e
  if not isinstance(table, dict) or not isinstance(table.get('trials'),
                                                   list):
    raise TrialsError(f'{source} holds no trial table')
  table.setdefault('budget', {})
  table.setdefault('chosen_trial', None)
  return table
