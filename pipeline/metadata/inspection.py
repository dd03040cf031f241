"""Answers to "what did the pipeline do?" from ML Metadata, read-only.

`python -m pipeline inspect runs|artifacts|metrics|settings|trials` (each
with `--json`) uses the public ML Metadata API through `pipeline.metadata.mlmd`; the store is opened
read-only, so it can be read while a run writes to it.
"""

import datetime
import json
from typing import Any, Dict, List, Optional

from components import contracts
from components.common import storage
from components.model_search import trials as trials_lib
from components.modules import features
from pipeline.metadata import mlmd
from pipeline.metadata import summary as summary_lib

# Properties worth showing per artifact type; others are left out.
KEY_PROPERTIES = {
    'Examples': ('span', 'window_spans', 'split_names', 'version'),
    'ExampleStatistics': ('span', 'split_names'),
    'ExampleAnomalies': ('span', 'blessed'),
    'ModelBlessing': ('blessed',),
    'PushedModel': (contracts.TFLitePusher.PUSHED,
                    contracts.TFLitePusher.PUSHED_VERSION,
                    contracts.TFLitePusher.MODE, 'tflite_bytes',
                    'size_ratio', 'accuracy_drop', 'budget_exceeded',
                    contracts.TFLitePusher.REASON,
                    contracts.PhaseTwoPusher.MODEL_NAME),
    'InfraBlessing': (contracts.PhaseTwoServingCheck.BLESSED,
                      contracts.PhaseTwoServingCheck.SERVER,
                      'server_requests', 'server_max_score_difference',
                      contracts.PhaseTwoServingCheck.REASON),
    'HyperParameters': contracts.ModelSearch.CHOSEN,
    'TunerResults': contracts.ModelSearch.RESULTS,
}


def local_time(ms: int) -> str:
  """Epoch milliseconds as local date and time, to the second."""
  return datetime.datetime.fromtimestamp(ms / 1000.0).astimezone().strftime(
      '%Y-%m-%d %H:%M:%S')


def runs(store, pipeline_name: str) -> List[Dict[str, Any]]:
  """Every run, newest first: when, components by state, duration, push.

  Args:
    store: an ML Metadata store.
    pipeline_name: the pipeline's name.

  Returns:
    One dict per run with `run_id`, `started`, `seconds`, `ran`, `cached`,
    `failed` (component names), `components` (node, state, seconds),
    `spans` (the data spans it trained on, or its new span alone when it
    stopped before training), `pushed_version` (None when nothing was
    pushed) and `settings` (those the run used, None when not recorded).
  """
  return [run_row(record) for record in mlmd.run_records(store,
                                                          pipeline_name)]


def run_row(record: mlmd.RunRecord) -> Dict[str, Any]:
  """One run as a row of :func:`runs`."""
  pushed = record.output(contracts.TFLitePusher.NODE, contracts.TFLitePusher.PUSHED_MODEL)
  pushed_version = None
  if pushed is not None and mlmd.custom_value(
      pushed, contracts.TFLitePusher.PUSHED):
    pushed_version = mlmd.custom_value(
        pushed, contracts.TFLitePusher.PUSHED_VERSION)
  return {
      'run_id': record.run_id,
      'started': local_time(record.started_ms),
      'seconds': round(record.seconds, 1),
      'ran': record.nodes('ran'),
      'cached': record.nodes('cached'),
      'failed': record.nodes('failed'),
      'components': record.components(),
      'spans': record.window_spans(),
      'pushed_version': pushed_version,
      'settings': record.settings,
  }


def settings(store, pipeline_name: str,
             run_id: Optional[str] = None) -> Dict[str, Any]:
  """The settings a run used (default the newest run).

  Raises:
    mlmd.MetadataError: when the run is unknown or recorded no settings.
  """
  record = mlmd.find_run(store, pipeline_name, run_id)
  if record.settings is None:
    raise mlmd.MetadataError(f'run {record.run_id} recorded no settings.')
  return {'run_id': record.run_id, 'settings': record.settings}


def format_settings(row: Dict[str, Any]) -> str:
  """A run's settings as TOML, ready for `--config FILE`."""
  lines = [f"# settings of run {row['run_id']}"]
  for name, value in row['settings'].items():
    if isinstance(value, bool):
      text = str(value).lower()
    elif isinstance(value, (int, float)):
      text = repr(value)
    else:
      text = json.dumps(value, ensure_ascii=False)
    lines.append(f'{name} = {text}')
  return '\n'.join(lines)


_SPAN_FROM_INPUTS = ('ExampleStatistics', 'ExampleAnomalies')


def _input_span(store, artifact_id: int, types: Dict[int, str],
                depth: int = 3) -> Optional[int]:
  """The span of the Examples an artifact was made from, following the
  executions that made it back (statistics from examples, anomalies from
  statistics), or None."""
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  event = metadata_store_pb2.Event
  made_by = [e.execution_id for e in store.get_events_by_artifact_ids(
      [artifact_id]) if e.type == event.OUTPUT]
  if not made_by or depth <= 0:
    return None
  inputs = [e.artifact_id for e in store.get_events_by_execution_ids(
      made_by[:1]) if e.type == event.INPUT]
  for found in store.get_artifacts_by_id(inputs):
    kind = types.get(found.type_id)
    if kind == 'Examples':
      span = mlmd.custom_value(found, 'span')
      return int(span) if span is not None else None
    if kind in _SPAN_FROM_INPUTS:
      return _input_span(store, found.id, types, depth - 1)
  return None


def artifacts(store, type_name: Optional[str] = None
              ) -> List[Dict[str, Any]]:
  """Artifacts of one type (or all), newest first, with key properties."""
  if type_name:
    found = store.get_artifacts_by_type(type_name)
  else:
    found = store.get_artifacts()
  types = {t.id: t.name for t in store.get_artifact_types()}
  result = []
  for artifact in sorted(found, key=lambda a: a.id, reverse=True):
    kind = types.get(artifact.type_id, str(artifact.type_id))
    properties = {}
    for name in KEY_PROPERTIES.get(kind, ()):
      value = mlmd.custom_value(artifact, name)
      if value is not None:
        properties[name] = value
    if kind in _SPAN_FROM_INPUTS:
      # TFX's StatisticsGen and ExampleValidator record span 0: the span
      # is that of the examples they were made from.
      span = _input_span(store, artifact.id, types)
      if span is None:
        properties.pop('span', None)
      else:
        properties['span'] = span
    result.append({'id': artifact.id, 'type': kind, 'uri': artifact.uri,
                   'state': mlmd.artifact_state(artifact),
                   'properties': properties})
  return result


def metrics(store, pipeline_name: str, last: int = 5) -> List[Dict[str, Any]]:
  """Evaluation metrics and TFLite figures of the last `last` evaluated runs.

  Returns:
    Newest first: `run_id`, `metrics` (Evaluator, overall slice),
    `slices` (by recorded family and kind), `blessed`, `tflite` (the
    pusher's recorded figures, its threshold among them) and, when phase
    two trained, `phase_two` (its accuracy, blessing and recall per
    class) and `cascade` (the pair's accuracy and cloud share at each
    share of instruments).
  """
  result = []
  for record in mlmd.run_records(store, pipeline_name):
    entry = metrics_entry(record)
    if entry is None:
      continue
    result.append(entry)
    if len(result) >= last:
      break
  return result


def metrics_before(store, pipeline_name: str, run_id: str
                   ) -> Optional[Dict[str, Any]]:
  """The :func:`metrics` entry of the newest evaluated run before `run_id`
  (None when there is none, or `run_id` is not among the runs)."""
  found = False
  for record in mlmd.run_records(store, pipeline_name):
    if record.run_id == run_id:
      found = True
      continue
    if found:
      entry = metrics_entry(record)
      if entry is not None:
        return entry
  return None


def metrics_entry(record: mlmd.RunRecord) -> Optional[Dict[str, Any]]:
  """One run's row of :func:`metrics`; None when phase one was not
  evaluated in it."""
  evaluation = record.output(contracts.Evaluator.NODE, contracts.Evaluator.EVALUATION)
  if evaluation is None:
    return None
  entry: Dict[str, Any] = {
      'run_id': record.run_id,
      'metrics': mlmd.evaluation_metrics(evaluation.uri)}
  if record.blessed is not None:
    entry['blessed'] = record.blessed
  sliced = sliced_rows(evaluation.uri)
  if sliced:
    entry['slices'] = sliced
  pushed = record.output(contracts.TFLitePusher.NODE, contracts.TFLitePusher.PUSHED_MODEL)
  if pushed is not None:
    entry['tflite'] = mlmd.pushed_summary(pushed)
  judged = summary_lib.cascade_figures(record).get('by_pi', {})
  if judged:
    # The pair end to end at each share of instruments (`inspect
    # cascade` has the rest).
    entry['cascade'] = {
        f'cascade {name} at {float(pi):.0%} instruments': round(
            figures[key], 4)
        for pi, figures in sorted(judged.items(), key=lambda p: float(p[0]))
        for name, key in (('accuracy', 'accuracy'),
                          ('cloud share', 'cloud_share'))
        if figures.get(key) is not None}
  second = summary_lib.phase_two(record)
  if second is not None and second.get('trained'):
    entry['phase_two'] = {
        'phase_two_accuracy': (second.get('metrics') or {}).get(
            'sparse_categorical_accuracy'),
        'phase_two_family_recall': (second.get('metrics') or {}).get(
            contracts.PhaseTwoEvaluator.MEAN_FAMILY_RECALL),
        'phase_two_reject_recall': (second.get('metrics') or {}).get(
            contracts.PhaseTwoEvaluator.REJECT_RECALL),
        'phase_two_blessed': second.get('blessed'),
        **{f'recall {name}': value for name, value in
           (second.get('recall') or {}).items()}}
  return entry


def sliced_rows(uri: str) -> Dict[str, float]:
  """Phase one's evaluation by what ingestion recorded (the Evaluator's
  slices, at TFMA's threshold of 0.5): the share of each kind of other
  sound flagged as an instrument, and the share of each family found."""
  found = mlmd.slice_metrics(uri, (features.KIND_KEY, features.FAMILY_KEY))
  rows = {}
  for feature, said in ((features.KIND_KEY, 'flagged'),
                        (features.FAMILY_KEY, 'found')):
    for value, metrics in sorted(found.get(feature, {}).items()):
      accuracy = metrics.get('binary_accuracy')
      if accuracy is None:
        continue
      share = 1.0 - accuracy if feature == features.KIND_KEY else accuracy
      rows[f'{feature} {value}: {said} at 0.5'] = round(share, 4)
  return rows


def run_trials(record: mlmd.RunRecord) -> Optional[Dict[str, Any]]:
  """The trial table of one run's model search (ran or cached), or None
  when the run did not search.

  Returns:
    `run_id`, `budget` (the limits by setting name), `chosen_trial` (an
    id, None when no trial fitted) and `trials`: per trial its
    `hyperparameters`, `tflite_bytes`, `latency_ms_median`,
    `arena_bytes` (TFLM's arena; -1 when not measured), `auc`, `accuracy`,
    `within_budget`, `seconds` and `status`.

  Raises:
    trials_lib.TrialsError: when the table cannot be read.
  """
  results = record.output(contracts.ModelSearch.NODE,
                          contracts.ModelSearch.TUNER_RESULTS)
  if results is None:
    return None
  path = storage.join(results.uri, trials_lib.TRIALS_FILE)
  try:
    text = storage.read_text(path)
  except storage.StorageError as e:
    raise trials_lib.TrialsError(f'cannot read {path}: {e}') from e
  return dict(trials_lib.loads(text, path), run_id=record.run_id)


def trials(store, pipeline_name: str) -> Dict[str, Any]:
  """The trial table (see :func:`run_trials`) of the newest run with a
  model search.

  Raises:
    mlmd.MetadataError: when no run searched (`run --tune true` does).
    trials_lib.TrialsError: when the table cannot be read.
  """
  for record in mlmd.run_records(store, pipeline_name):
    table = run_trials(record)
    if table is not None:
      return table
  raise mlmd.MetadataError(
      f'no run of {pipeline_name} searched for a model; run with --tune true')


def format_trials(table: Dict[str, Any]) -> str:
  """The trial table as console lines, the chosen trial marked."""
  budget = ', '.join(f'{name} {value:,}' for name, value in
                     sorted(table['budget'].items()) if value) or 'none'
  lines = [f"Model search of run {table['run_id']}; device budget: {budget}"]
  for record in table['trials']:
    settings = ', '.join(f'{name} {value:.4g}' if isinstance(value, float)
                         else f'{name} {value}' for name, value in
                         sorted(record.get('hyperparameters', {}).items()))
    if record.get('status') != 'COMPLETED' or record.get('auc') is None:
      verdict = f"{str(record.get('status', '?')).lower()}"
      figures = ''
    else:
      verdict = 'within budget' if record['within_budget'] else 'over budget'
      arena = record.get('arena_bytes')
      figures = (f"  {record['tflite_bytes']:>9,} bytes  "
                 f"{record['latency_ms_median']:7.3f} ms  " +
                 (f'arena {arena:>9,}  ' if arena is not None and arena >= 0
                  else 'arena       n/a  ' if arena is not None else '') +
                 f"AUC {record['auc']:.4f}")
    chosen = '  <- chosen' if record['trial_id'] == table['chosen_trial'] \
        else ''
    lines.append(f"  trial {record['trial_id']:<4} {settings:<48}{figures}"
                 f'  {verdict}{chosen}')
  if table['chosen_trial'] is None:
    lines.append('No trial fits the budget; nothing was trained.')
  return '\n'.join(lines)


def format_runs(rows: List[Dict[str, Any]]) -> str:
  """Runs as console lines."""
  lines = []
  for row in rows:
    pushed = (f"pushed v{row['pushed_version']}" if row['pushed_version']
              else 'nothing pushed')
    spans = ','.join(map(str, row['spans'])) or '-'
    lines.append(f"{row['run_id']}  {row['started']}  {row['seconds']:>6.1f} s"
                 f"  spans {spans}  ran {len(row['ran'])}, cached "
                 f"{len(row['cached'])}, failed {len(row['failed'])}  {pushed}")
    if row['failed']:
      lines.append(f"    failed: {', '.join(row['failed'])}")
  return '\n'.join(lines) or 'no runs'


def format_artifacts(rows: List[Dict[str, Any]]) -> str:
  """Artifacts as console lines."""
  return '\n'.join(
      f"{row['id']:>5}  {row['type']:<20} {row['state']:<8} "
      + ' '.join(f'{k}={v}' for k, v in row['properties'].items())
      + f"\n       {row['uri']}" for row in rows) or 'no artifacts'


def format_metrics(rows: List[Dict[str, Any]]) -> str:
  """Metrics of several runs side by side, newest first."""
  if not rows:
    return 'no evaluated run'
  names = sorted({name for row in rows for name in row.get('metrics', {})})
  tflite = ('mode', 'tflite_accuracy', 'tflite_auc', 'size_ratio',
            'pushed_bytes', 'latency_ms_median', 'pushed_version')
  # Phase one's threshold, when the pusher chose one.
  chosen = ('threshold', 'threshold_recall', 'threshold_false_positive_rate')
  if any(name in row.get('tflite', {}) for row in rows for name in chosen):
    tflite += chosen
  # The waveform model's rows, when a run pushed from recordings.
  waveform = ('waveform_bytes', 'waveform_latency_ms_median',
              'waveform_eval_windows', 'waveform_eval_agreement',
              'waveform_eval_accuracy_drop')
  if any(name in row.get('tflite', {}) for row in rows for name in waveform):
    tflite += waveform
  # TensorFlow Lite Micro's figures, when a run ran its model there.
  board = ('arena_bytes', 'micro_latency_ms_median', 'micro_identical')
  if any(name in row.get('tflite', {}) for row in rows for name in board):
    tflite += board
  second = list(dict.fromkeys(name for row in rows
                              for name in row.get('phase_two', {})))
  sliced = list(dict.fromkeys(name for row in rows
                              for name in row.get('slices', {})))
  pair = list(dict.fromkeys(name for row in rows
                            for name in row.get('cascade', {})))
  width = max(len(n) for n in names + list(tflite) + second + sliced + pair +
              ['blessed'])
  header = ' ' * width + ''.join(f'  {row["run_id"][-15:]:>15}'
                                 for row in rows)
  lines = [header]

  def rows_of(section: str, row_names) -> None:
    for name in row_names:
      lines.append(f'{name:<{width}}' + ''.join(
          f"  {str(row.get(section, {}).get(name, '')):>15}" for row in rows))

  rows_of('metrics', names)
  lines.append(f"{'blessed':<{width}}" + ''.join(
      f"  {str(row.get('blessed', '')):>15}" for row in rows))
  rows_of('slices', sliced)
  rows_of('tflite', tflite)
  rows_of('phase_two', second)
  rows_of('cascade', pair)
  return '\n'.join(lines)


def cascade(store, pipeline_name: str,
            run_id: Optional[str] = None) -> Dict[str, Any]:
  """The cascade of a run (default: the newest run that judged one): phase
  one's threshold and why, the figures at each instrument share, each
  family's end-to-end recall, the curve, the gate's verdict against the
  last pushed pair, and what each pusher did.

  Raises:
    mlmd.MetadataError: when no run (or not the one named) judged a pair.
  """
  records = ([mlmd.find_run(store, pipeline_name, run_id)] if run_id else
             mlmd.run_records(store, pipeline_name))
  c = contracts.CascadeEvaluator
  for record in records:
    evaluation = record.output(c.NODE, c.EVALUATION)
    if evaluation is None:
      continue
    found: Dict[str, Any] = {'run_id': record.run_id,
                             **summary_lib.cascade_gate(record)}
    figures = summary_lib.cascade_figures(record)
    if figures:
      found['figures'] = figures
    else:
      found['reason'] = mlmd.custom_value(evaluation, c.REASON)
    phase_one = record.output(contracts.TFLitePusher.NODE,
                              contracts.TFLitePusher.PUSHED_MODEL)
    if phase_one is not None:
      found['phase_one'] = {name: mlmd.custom_value(phase_one, name) for name
                            in contracts.TFLitePusher.THRESHOLD_FIGURES + (
                                contracts.TFLitePusher.PUSHED,
                                contracts.TFLitePusher.PUSHED_VERSION,
                                contracts.TFLitePusher.REASON)}
    phase_two = record.output(contracts.PhaseTwoPusher.NODE,
                              contracts.PhaseTwoPusher.PUSHED_MODEL)
    if phase_two is not None:
      found['phase_two'] = {name: mlmd.custom_value(phase_two, name)
                            for name in (contracts.PhaseTwoPusher.PUSHED,
                                         contracts.PhaseTwoPusher.PUSHED_VERSION,
                                         contracts.PhaseTwoPusher.MODEL_NAME,
                                         contracts.PhaseTwoPusher.REASON)}
    return found
  raise mlmd.MetadataError(
      f'run {run_id} judged no cascade' if run_id else
      f'no run of {pipeline_name} judged a cascade (phase two trains, and '
      'the pair is judged, when the spans give families)')


def _pushed_words(pushed: Optional[Dict[str, Any]], what: str) -> str:
  if not pushed:
    return f'{what}: did not run'
  if pushed.get('pushed'):
    return f"{what}: pushed version {pushed.get('pushed_version')}"
  return f"{what}: not pushed: {pushed.get('reason')}"


def format_cascade(found: Dict[str, Any]) -> str:
  """The cascade of a run as console lines."""
  lines = [f"Cascade of run {found['run_id']}"]
  one = found.get('phase_one') or {}
  if one.get('threshold') is not None:
    lines.append('  ' + summary_lib.threshold_line(one))
  figures = found.get('figures')
  if not figures:
    lines.append(f"  not judged: {found.get('reason')}")
  else:
    lines.append(f"  {figures.get('phase_one', 'phase one')} on "
                 f"{figures['examples']} eval examples: TPR1 "
                 f"{figures['tpr1']}, FPR1 {figures['fpr1']}, A2 "
                 f"{figures['a2']}, R2 {figures['r2']}")
    lines.append(f"  {'instruments':>12} {'end to end':>11} "
                 f"{'device alone':>13} {'cloud alone':>12} "
                 f"{'cloud share':>12}")
    for pi, at in figures['by_pi'].items():
      lines.append(f"  {float(pi):>12.0%} " + ' '.join(
          f'{at[name]:>{width}.4f}' if at[name] is not None
          else f"{'n/a':>{width}}" for name, width in (
              ('accuracy', 11), ('device_alone', 13), ('cloud_alone', 12),
              ('cloud_share', 12))))
    lines.append('  end-to-end recall by family (capped by phase one\'s):')
    for name, family in figures['families'].items():
      lines.append(f"    {name:24} {family['end_to_end_recall']:.4f} "
                   f"(phase one {family['phase_one_recall']:.4f}, "
                   f"{family['examples']} examples)")
    lines.append('  the curve at 20% instruments (threshold: accuracy, '
                 'cloud share):')
    points = [f"{point['threshold']:.2f}: {point['accuracy']:.3f}/"
              f"{point['cloud_share']:.3f}" for point in figures['curve']
              if point['accuracy'] is not None]
    lines += ['    ' + ', '.join(points[i:i + 5])
              for i in range(0, len(points), 5)]
    base = figures.get('baseline') or {}
    if base.get('pair'):
      before = base['by_pi'].get('0.2', {}).get('accuracy')
      lines.append(f"  the last pushed pair ({base['pair']}): "
                   f"{before:.4f} at 20% instruments")
    elif base.get('reason'):
      lines.append(f"  no earlier pair compared: {base['reason']}")
  if 'blessed' in found:
    lines.append('  gate: ' + ('blessed' if found['blessed'] else
                               f"held back: {found.get('gate_reason')}"))
  lines.append('  ' + _pushed_words(found.get('phase_one'), 'phase one'))
  lines.append('  ' + _pushed_words(found.get('phase_two'), 'phase two'))
  return '\n'.join(lines)
