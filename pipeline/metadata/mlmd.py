"""Reading what the pipeline recorded in ML Metadata, with the public API.

Small, plain functions over `ml_metadata.MetadataStore`, and one reader of
a pipeline run, :class:`RunRecord`, used by the run summary, `inspect` and
the report alike.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components import contracts
from components.common import span_layout
from pipeline.settings import metadata_url
from pipeline.metadata import tfma_files
from components.common import errors

PIPELINE_RUN_CONTEXT = 'pipeline_run'
NODE_CONTEXT = 'node'
# Custom property of a pipeline-run context: the settings the run used.
SETTINGS_PROPERTY = 'settings'

_STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: 'ran',
    metadata_store_pb2.Execution.CACHED: 'cached',
    metadata_store_pb2.Execution.FAILED: 'failed',
    metadata_store_pb2.Execution.RUNNING: 'running',
    metadata_store_pb2.Execution.NEW: 'new',
    metadata_store_pb2.Execution.CANCELED: 'canceled',
}


# Execution type name of TFX resolver nodes.
_RESOLVER = '.Resolver'


class MetadataError(errors.PipelineError, LookupError):
  """Raised when the store, or the run asked for, is not there."""


@dataclasses.dataclass
class NodeExecution:
  """One component's execution within a pipeline run.

  Attributes:
    node: the component id, e.g. `Trainer`.
    state: 'ran', 'cached', 'failed', 'running', ...
    seconds: wall time from creation to last update.
    execution: the raw MLMD execution.
  """
  node: str
  state: str
  seconds: float
  execution: metadata_store_pb2.Execution


def open_store(store: metadata_url.MetadataUrl,
               read_only: bool = False) -> metadata_store.MetadataStore:
  """Opens the ML Metadata store `store` names.

  Args:
    store: the store's URL (SQLite file, MySQL or PostgreSQL server).
    read_only: only read: a SQLite file is opened read-only, a server's
      database must exist (nothing is created).

  Returns:
    A MetadataStore.

  Raises:
    MetadataError: if the SQLite file does not exist (the pipeline never
      ran), or the server cannot
      be reached or refuses (the URL is named without its password).
  """
  if store.is_sqlite and not os.path.isfile(store.path):
    raise MetadataError(
        f'No ML Metadata store at {store.path}: the pipeline has not run '
        'in this workspace yet (run `make run` or `python -m pipeline run`).')
  if store.scheme == 'postgresql':
    from pipeline.compat import postgresql_compat  # pylint: disable=g-import-not-at-top
    postgresql_compat.install()
  config = store.connection_config(create_database=not read_only)
  if store.is_sqlite and read_only:
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  try:
    return metadata_store.MetadataStore(config)
  except Exception as e:  # pylint: disable=broad-except
    # ML Metadata raises its own error types, one per status code; the
    # message is what helps (unreachable host, refused password, ...).
    message = store.hide(str(e))
    if not store.is_sqlite:
      # Its C++ client often says only "connection pointer is NULL"; the
      # Python driver tells why (refused password, unknown database, ...).
      from pipeline.metadata import server  # pylint: disable=g-import-not-at-top
      try:
        server.connect(store, create_database=not read_only).close()
      except server.ServerError as reason:
        raise MetadataError(str(reason)) from None
    raise MetadataError(f'cannot open the ML Metadata store '
                        f'{store.redacted()}: {message}') from None


def pipeline_runs(store: metadata_store.MetadataStore,
                  pipeline_name: str) -> List[metadata_store_pb2.Context]:
  """The pipeline-run contexts of `pipeline_name`, newest first."""
  runs = []
  for context in store.get_contexts_by_type(PIPELINE_RUN_CONTEXT):
    pipeline_contexts = [
        c for c in store.get_parent_contexts_by_context(context.id)
        if c.name == pipeline_name]
    if pipeline_contexts:
      runs.append(context)
  return sorted(runs, key=lambda c: (c.create_time_since_epoch, c.id),
                reverse=True)


def node_name(store: metadata_store.MetadataStore,
              execution: metadata_store_pb2.Execution) -> str:
  """The component id (e.g. `Trainer`) an execution belongs to."""
  for context in store.get_contexts_by_execution(execution.id):
    if context.type == NODE_CONTEXT:
      return context.name.split('.', 1)[-1]
  return execution.type


def execution_settings(execution: metadata_store_pb2.Execution
                       ) -> Dict[str, object]:
  """An execution's properties by name, JSON strings decoded."""
  settings = {}
  for name, value in list(execution.custom_properties.items()) + list(
      execution.properties.items()):
    kind = value.WhichOneof('value')
    plain = getattr(value, kind) if kind else None
    if isinstance(plain, str) and plain[:1] in '{[':
      try:
        plain = json.loads(plain)
      except ValueError:
        pass
    settings[name] = plain
  return settings


def node_executions(store: metadata_store.MetadataStore,
                    run_context: metadata_store_pb2.Context
                    ) -> List[NodeExecution]:
  """Every component execution of one run, in execution order.

  A resolver that found no artifact yet (the first run has no drift
  baseline) is recorded by TFX as failed although the run goes on; its
  state here is 'empty'.
  """
  result = []
  executions = store.get_executions_by_context(run_context.id)
  resolvers = {t.id for t in store.get_execution_types_by_id(
      sorted({e.type_id for e in executions})) if t.name.endswith(_RESOLVER)}
  for execution in executions:
    node = node_name(store, execution)
    seconds = max(0.0, (execution.last_update_time_since_epoch -
                        execution.create_time_since_epoch) / 1000.0)
    state = _STATE_NAMES.get(execution.last_known_state, 'unknown')
    if state == 'failed' and execution.type_id in resolvers:
      state = 'empty'
    result.append(NodeExecution(node, state, seconds, execution))
  return sorted(result, key=lambda e: (e.execution.create_time_since_epoch,
                                       e.execution.id))


_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT,
                  metadata_store_pb2.Event.DECLARED_OUTPUT)


def output_artifacts(store: metadata_store.MetadataStore,
                     execution_id: int
                     ) -> Dict[str, List[metadata_store_pb2.Artifact]]:
  """An execution's output artifacts by output key."""
  events = [e for e in store.get_events_by_execution_ids([execution_id])
            if e.type in _OUTPUT_EVENTS]
  artifacts = {a.id: a for a in store.get_artifacts_by_id(
      [e.artifact_id for e in events])}
  result: Dict[str, List[metadata_store_pb2.Artifact]] = {}
  for event in events:
    key = event.path.steps[0].key if event.path.steps else ''
    if event.artifact_id in artifacts:
      result.setdefault(key, []).append(artifacts[event.artifact_id])
  return result


def artifact_state(artifact: metadata_store_pb2.Artifact) -> str:
  """LIVE, PENDING, DELETED, ... as a lower-case word."""
  return metadata_store_pb2.Artifact.State.Name(artifact.state).lower()


def custom_value(artifact: metadata_store_pb2.Artifact,
                 name: str) -> Optional[object]:
  """A custom or regular property's value (int, float or str), or None."""
  for properties in (artifact.custom_properties, artifact.properties):
    if name in properties:
      value = properties[name]
      kind = value.WhichOneof('value')
      if kind == 'struct_value':
        return dict(value.struct_value)
      return getattr(value, kind) if kind else None
  return None


@dataclasses.dataclass
class RunRecord:
  """One pipeline run as ML Metadata recorded it.

  Attributes:
    run_id: the pipeline-run context's name.
    context: the raw MLMD context.
    executions: its component executions, in execution order.
    started_ms: creation time of its first execution (epoch ms), or of the
      context when nothing executed.
    ended_ms: last update of its last execution (epoch ms).
    settings: the settings the run used, as recorded by `run` (None for a
      run recorded without them).
  """
  run_id: str
  context: metadata_store_pb2.Context
  executions: List[NodeExecution]
  started_ms: int
  ended_ms: int
  settings: Optional[Dict[str, Any]]
  _store: Any = dataclasses.field(repr=False, compare=False)
  _outputs: Dict[int, Dict[str, List[metadata_store_pb2.Artifact]]] = (
      dataclasses.field(default_factory=dict, repr=False, compare=False))

  @property
  def seconds(self) -> float:
    """Wall time from the first execution's start to the last's end."""
    return max(0.0, (self.ended_ms - self.started_ms) / 1000.0)

  def nodes(self, state: str) -> List[str]:
    """Component ids whose execution is in `state` (ran, cached, failed)."""
    return [e.node for e in self.executions if e.state == state]

  def execution(self, node: str) -> Optional[NodeExecution]:
    """The execution of component `node` in this run, if any."""
    return next((e for e in self.executions if e.node == node), None)

  def outputs(self, node: str) -> Dict[str, List[metadata_store_pb2.Artifact]]:
    """Output artifacts of component `node` by key ({} if it did not run)."""
    execution = self.execution(node)
    if execution is None:
      return {}
    key = execution.execution.id
    if key not in self._outputs:
      self._outputs[key] = output_artifacts(self._store, key)
    return self._outputs[key]

  def output(self, node: str, key: str
             ) -> Optional[metadata_store_pb2.Artifact]:
    """The first output artifact `key` of component `node`, or None."""
    return (self.outputs(node).get(key) or [None])[0]

  def components(self) -> List[Dict[str, Any]]:
    """node, state and seconds (to 0.1 s) of each execution, in order."""
    return [{'node': e.node, 'state': e.state, 'seconds': round(e.seconds, 1)}
            for e in self.executions]

  @property
  def blessed(self) -> Optional[bool]:
    """The Evaluator's blessing in this run, or None when none was made."""
    blessing = self.output(contracts.Evaluator.NODE, contracts.Evaluator.BLESSING)
    return (None if blessing is None
            else bool(custom_value(blessing, contracts.Evaluator.BLESSED)))

  def window_spans(self) -> List[int]:
    """The data spans this run trained on; the new span alone when it
    stopped before the window was made; [] before ExampleGen ran."""
    examples = (self.output(contracts.SpanWindow.NODE, contracts.SpanWindow.EXAMPLES)
                or self.output(contracts.ImportExampleGen.NODE, contracts.ImportExampleGen.EXAMPLES))
    return data_spans(examples) if examples is not None else []

  def drift(self) -> Optional[Dict[str, Any]]:
    """What the DataGate measured against the last accepted span:
    `{'baseline_span': N, 'measurements': {split: [...]}}`; None when the
    gate did not pass."""
    report = self.output(contracts.DataGate.NODE, contracts.DataGate.REPORT)
    text = custom_value(report, contracts.DataGate.DRIFT) if report else None
    return json.loads(text) if text else None


def data_spans(examples: metadata_store_pb2.Artifact) -> List[int]:
  """The data spans an Examples artifact holds: a window's spans, or the
  one span of an ImportExampleGen artifact."""
  spans = custom_value(examples, span_layout.WINDOW_SPANS_PROPERTY)
  if spans:
    return [int(span) for span in str(spans).split(',')]
  span = custom_value(examples, 'span')
  return [int(span)] if span is not None else []


def span_sources(examples: metadata_store_pb2.Artifact
                 ) -> Dict[int, Dict[str, Any]]:
  """Per span of a window: source folder, counts, ingest time, fingerprint."""
  text = custom_value(examples, span_layout.SPAN_SOURCES_PROPERTY)
  if not text:
    return {}
  return {int(span): source for span, source in json.loads(text).items()}


def window_families(examples: metadata_store_pb2.Artifact
                    ) -> Optional[List[str]]:
  """The families of a window's Examples ([] when its spans give none),
  or None for a window written before families were recorded."""
  text = custom_value(examples, span_layout.FAMILIES_PROPERTY)
  return json.loads(text) if text else None


def _run_record(store: metadata_store.MetadataStore,
                context: metadata_store_pb2.Context) -> RunRecord:
  executions = node_executions(store, context)
  started = min((e.execution.create_time_since_epoch for e in executions),
                default=context.create_time_since_epoch)
  ended = max((e.execution.last_update_time_since_epoch for e in executions),
              default=started)
  settings = None
  if SETTINGS_PROPERTY in context.custom_properties:
    settings = json.loads(
        context.custom_properties[SETTINGS_PROPERTY].string_value)
  return RunRecord(context.name, context, executions, started, ended,
                   settings, store)


def run_records(store: metadata_store.MetadataStore,
                pipeline_name: str) -> List[RunRecord]:
  """Every run of `pipeline_name` that executed something, newest first."""
  records = (_run_record(store, c) for c in pipeline_runs(store,
                                                          pipeline_name))
  return [r for r in records if r.executions]


def find_run(store: metadata_store.MetadataStore, pipeline_name: str,
             run_id: Optional[str] = None) -> RunRecord:
  """The run named `run_id` (or a unique prefix of it); default the newest.

  Raises:
    MetadataError: when no run, or more than one, matches.
  """
  runs = pipeline_runs(store, pipeline_name)
  if not runs:
    raise MetadataError(f'No run of {pipeline_name} is recorded yet.')
  if not run_id or run_id == 'latest':
    return _run_record(store, runs[0])
  matches = [r for r in runs if r.name == run_id] or [
      r for r in runs if r.name.startswith(run_id)]
  if len(matches) != 1:
    known = ', '.join(r.name for r in runs[:5])
    raise MetadataError(
        f'{"No" if not matches else "More than one"} run matches {run_id!r}; '
        f'newest runs: {known} (see `python -m pipeline inspect runs`).')
  return _run_record(store, matches[0])


def record_settings(store: metadata_store.MetadataStore,
                    record: RunRecord, settings: Dict[str, Any]) -> None:
  """Stores the settings a run used on its pipeline-run context."""
  context = metadata_store_pb2.Context()
  context.CopyFrom(record.context)
  context.custom_properties[SETTINGS_PROPERTY].string_value = json.dumps(
      settings, sort_keys=True)
  store.put_contexts([context])
  record.settings = dict(settings)


def _metric_values(sliced) -> Dict[str, float]:
  """One slice's numeric metrics of the candidate model (not the baseline,
  not the differences), rounded."""
  return {item.key.name: round(item.value.double_value.value, 4)
          for item in sliced.metric_keys_and_values
          if item.key.model_name in ('', 'candidate') and not item.key.is_diff
          and item.value.HasField('double_value')}


def evaluation_metrics(uri: str) -> Dict[str, float]:
  """The overall-slice metrics the Evaluator wrote under `uri`."""
  metrics = {}
  for sliced in tfma_files.metrics(uri):
    if not sliced.slice_key.single_slice_keys:
      metrics.update(_metric_values(sliced))
  return metrics


def slice_metrics(uri: str, features_: Sequence[str]
                  ) -> Dict[str, Dict[str, Dict[str, float]]]:
  """The metrics the Evaluator wrote under `uri` for each slice of one of
  `features_`: {feature: {value: {metric: value}}}."""
  found: Dict[str, Dict[str, Dict[str, float]]] = {}
  for sliced in tfma_files.metrics(uri):
    keys = sliced.slice_key.single_slice_keys
    if len(keys) != 1 or keys[0].column not in features_:
      continue
    key = keys[0]
    kind = key.WhichOneof('kind')
    value = getattr(key, kind) if kind else ''
    if isinstance(value, bytes):
      value = value.decode('utf-8', 'replace')
    found.setdefault(key.column, {}).setdefault(str(value), {}).update(
        _metric_values(sliced))
  return found


def class_confusion(uri: str, names: List[str]) -> List[List[float]]:
  """The multi-class confusion matrix an Evaluator wrote under `uri`, at
  its top class: rows the true class, columns the predicted one, in
  `names` order (the weighted matrix when there is one: a positive example
  of no known family weighs nothing)."""
  counts = [[0.0] * len(names) for _ in names]
  chosen = None
  for plots in tfma_files.plots(uri):
    if plots.slice_key.single_slice_keys:
      continue
    for key in plots.plot_keys_and_values:
      matrices = key.value.multi_class_confusion_matrix_at_thresholds
      if key.key.model_name not in ('', 'candidate') or not matrices.matrices:
        continue
      # The weighted matrix (a positive example of no known family weighs
      # nothing) when there is one.
      if chosen is None or key.key.example_weighted.value:
        chosen = matrices.matrices[0]
  for entry in (chosen.entries if chosen is not None else []):
    if (0 <= entry.actual_class_id < len(names)
        and 0 <= entry.predicted_class_id < len(names)):
      counts[entry.actual_class_id][entry.predicted_class_id] += (
          entry.num_weighted_examples)
  return counts


def class_recall(names: List[str], counts: List[List[float]]
                 ) -> Dict[str, Optional[float]]:
  """Each class's recall from a confusion matrix (:func:`class_confusion`;
  None for a class with no example)."""
  return {name: (round(row[index] / sum(row), 4) if sum(row) else None)
          for index, (name, row) in enumerate(zip(names, counts))}


def pushed_summary(artifact: metadata_store_pb2.Artifact) -> Dict[str, Any]:
  """The TFLite pusher's recorded outcome and figures, by name."""
  result = {}
  for name in (contracts.TFLitePusher.FIGURES +
               contracts.TFLitePusher.WAVEFORM_FIGURES):
    value = custom_value(artifact, name)
    if value is not None:
      result[name] = round(value, 4) if isinstance(value, float) else value
  return result
