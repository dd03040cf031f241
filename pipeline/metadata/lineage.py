"""Lineage in ML Metadata: from a pushed model back to the data, and back.

A TFX artifact's lineage is written as events: an execution's OUTPUT event
names what it produced, its INPUT events what it read. Walking those events
backwards from a PushedModel reaches the blessing, the evaluation, the
model, the trainer run, the transform graph, the schema and the Examples of
ImportExampleGen; forwards from an Examples artifact, it reaches every model
trained on it.

Two details of how our pipeline records things:
- A cached execution re-publishes the artifacts of the execution it reuses,
  so an artifact can have several producers. The first one that ran (not
  cached) is the one that made it.
- The Evaluator reads the previous blessed model as `baseline_model`. That is
  a comparison, not a source: walks do not follow it, or every model would
  seem to come from the data of the models before it.

Everything comes from ML Metadata: ImportExampleGen makes one Examples
artifact per data span (with its statistics and anomalies), and the
SpanWindow's Examples artifact, which Transform reads, records the spans it
holds and, per span, the folder it was ingested from (see
`components.common.span_layout`). Runs made before spans were recorded (a window
of symbolic links read by ImportExampleGen) show the window's newest span
only.
"""

import dataclasses
import os
from typing import Any, Dict, List, Optional, Set, Tuple

from ml_metadata.proto import metadata_store_pb2

from components import contracts
from components.common import span_layout
from components.common import storage
from pipeline.metadata import mlmd
from components.common import errors

_Event = metadata_store_pb2.Event
_COMPARISON_KEYS = frozenset({'baseline_model'})


class LineageError(errors.PipelineError, LookupError):
  """Raised when the model or span asked for is not in ML Metadata."""


def _keys(event: metadata_store_pb2.Event) -> Set[str]:
  return {step.key for step in event.path.steps if step.HasField('key')}


def _is_source(event: metadata_store_pb2.Event) -> bool:
  """Whether an input event is a real source (not a baseline comparison)."""
  keys = _keys(event)
  return not keys or not keys <= _COMPARISON_KEYS


def _artifact_types(store) -> Dict[int, str]:
  return {t.id: t.name for t in store.get_artifact_types()}


def _run_id(store, execution: metadata_store_pb2.Execution) -> Optional[str]:
  for context in store.get_contexts_by_execution(execution.id):
    if context.type == mlmd.PIPELINE_RUN_CONTEXT:
      return context.name
  return None


def producer(store, artifact_id: int
             ) -> Optional[metadata_store_pb2.Execution]:
  """The execution that made an artifact: the first that ran, not cached."""
  ids = [e.execution_id for e in store.get_events_by_artifact_ids(
      [artifact_id]) if e.type == _Event.OUTPUT]
  executions = sorted(store.get_executions_by_id(ids), key=lambda e: e.id)
  for execution in executions:
    if execution.last_known_state == metadata_store_pb2.Execution.COMPLETE:
      return execution
  return executions[0] if executions else None


def _inputs(store, execution_id: int) -> List[Tuple[str, int]]:
  """(input key, artifact id) of an execution's source inputs."""
  return [(sorted(_keys(e))[0] if _keys(e) else '', e.artifact_id)
          for e in store.get_events_by_execution_ids([execution_id])
          if e.type == _Event.INPUT and _is_source(e)]


def upstream_graph(store, artifact_id: int) -> Dict[str, Any]:
  """Every artifact and execution an artifact was derived from.

  Args:
    store: an ML Metadata store.
    artifact_id: where to start.

  Returns:
    `{'nodes': [...], 'edges': [[from, to], ...]}`; a node is
    `{'id': 'a14' or 'e8', 'kind': 'artifact'|'execution', 'name': ...}`
    (artifact type or component) with `uri` or `state`; edges point from
    source to result.
  """
  artifact_types = _artifact_types(store)
  nodes: Dict[str, Dict[str, Any]] = {}
  edges: List[List[str]] = []
  pending = [artifact_id]
  while pending:
    current = pending.pop()
    node_id = f'a{current}'
    if node_id in nodes:
      continue
    artifact = store.get_artifacts_by_id([current])[0]
    nodes[node_id] = {'id': node_id, 'kind': 'artifact',
                      'name': artifact_types.get(artifact.type_id, '?'),
                      'artifact_id': current, 'uri': artifact.uri}
    execution = producer(store, current)
    if execution is None:
      continue
    execution_node = f'e{execution.id}'
    edges.append([execution_node, node_id])
    if execution_node in nodes:
      continue
    nodes[execution_node] = {
        'id': execution_node, 'kind': 'execution',
        'name': mlmd.node_name(store, execution), 'execution_id': execution.id,
        'run_id': _run_id(store, execution)}
    for _, input_id in _inputs(store, execution.id):
      edges.append([f'a{input_id}', execution_node])
      pending.append(input_id)
  unique_edges = sorted({tuple(e) for e in edges})
  return {'nodes': sorted(nodes.values(), key=lambda n: n['id']),
          'edges': [list(e) for e in unique_edges]}


def merge_graphs(*graphs: Optional[Dict[str, Any]]) -> Dict[str, Any]:
  """One graph of several :func:`upstream_graph` answers (None skipped):
  the union of their nodes and edges, in the same order rules."""
  nodes: Dict[str, Dict[str, Any]] = {}
  edges = set()
  for graph in graphs:
    if not graph:
      continue
    for node in graph['nodes']:
      nodes.setdefault(node['id'], node)
    edges.update(tuple(edge) for edge in graph['edges'])
  return {'nodes': sorted(nodes.values(), key=lambda n: n['id']),
          'edges': [list(e) for e in sorted(edges)]}


def downstream_artifacts(store, artifact_id: int) -> List[int]:
  """Every artifact derived from an artifact (not through baselines)."""
  seen: Set[int] = set()
  seen_executions: Set[int] = set()
  pending = [artifact_id]
  while pending:
    current = pending.pop()
    for event in store.get_events_by_artifact_ids([current]):
      if (event.type != _Event.INPUT or not _is_source(event)
          or event.execution_id in seen_executions):
        continue
      seen_executions.add(event.execution_id)
      for out in store.get_events_by_execution_ids([event.execution_id]):
        if out.type == _Event.OUTPUT and out.artifact_id not in seen:
          seen.add(out.artifact_id)
          pending.append(out.artifact_id)
  seen.discard(artifact_id)
  return sorted(seen)


def _made_by(store, artifact: metadata_store_pb2.Artifact, node: str) -> bool:
  maker = producer(store, artifact.id)
  return maker is not None and mlmd.node_name(store, maker) == node


def group_shares(groups: Dict[str, int]) -> List[Tuple[str, int, float]]:
  """(family or kind, examples, share of the class) of a class's
  sub-folders as ingest counted them ('' for files in the class folder
  itself); [] for a class without sub-folders."""
  if not set(groups) - {''}:
    return []
  total = sum(groups.values()) or 1
  return [(group, count, count / total) for group, count in groups.items()]


@dataclasses.dataclass(frozen=True)
class Phase:
  """The nodes of one phase a pushed model's lineage passes through."""
  pusher: str
  trainer: str
  evaluator: str


PHASES = {
    1: Phase(contracts.TFLitePusher.NODE, contracts.PHASE_ONE_TRAINER,
             contracts.PHASE_ONE_EVALUATOR),
    2: Phase(contracts.PhaseTwoPusher.NODE, contracts.PhaseTwoTrainer.NODE,
             contracts.PhaseTwoEvaluator.NODE),
}


def pushed_models(store, phase: int = 1) -> List[metadata_store_pb2.Artifact]:
  """A phase's PushedModel artifacts, oldest first: phase one's are the
  TFLite pusher's, phase two's the PhaseTwoPusher's."""
  return [artifact for artifact in sorted(
      store.get_artifacts_by_type('PushedModel'), key=lambda a: a.id)
          if _made_by(store, artifact, PHASES[phase].pusher)]


def tflite_pushed_models(store) -> List[metadata_store_pb2.Artifact]:
  """The TFLite pusher's PushedModel artifacts, oldest first (not the
  cloud phase's, which PhaseTwoPusher makes)."""
  return pushed_models(store, 1)


def window_summary(store, examples: metadata_store_pb2.Artifact
                   ) -> Dict[str, Any]:
  """The data spans behind the Examples artifact a Transform read.

  Returns:
    `{'window_span': N, 'spans': [...], 'sources': {span: {'source',
    'counts', 'ingested', 'fingerprint'}}, 'recorded': bool}`; `recorded`
    says whether SpanWindow made `examples` (else `spans` is empty).
  """
  recorded = _made_by(store, examples, contracts.SpanWindow.NODE)
  return {'window_span': mlmd.custom_value(examples, 'span'),
          'spans': mlmd.data_spans(examples) if recorded else [],
          'sources': mlmd.span_sources(examples), 'recorded': recorded}


def span_examples(store, span: int,
                  artifact_types: Optional[Dict[int, str]] = None
                  ) -> Optional[Dict[str, Any]]:
  """ImportExampleGen's Examples of one data span with its statistics and
  anomalies (the newest, if the span was read more than once)."""
  artifact_types = artifact_types or _artifact_types(store)
  for artifact in sorted(store.get_artifacts_by_type('Examples'),
                         key=lambda a: -a.id):
    if (mlmd.custom_value(artifact, 'span') != span
        or mlmd.custom_value(artifact, span_layout.WINDOW_SPANS_PROPERTY)
        is not None
        or not _made_by(store, artifact, contracts.ImportExampleGen.NODE)):
      continue
    entry = dict(_artifact_summary(artifact, 'Examples'), span=span)
    statistics = _consumer_outputs(store, artifact.id, 'ExampleStatistics',
                                   artifact_types)
    if statistics is not None:
      entry['statistics'] = _artifact_summary(statistics, 'ExampleStatistics')
      anomalies = _consumer_outputs(store, statistics.id, 'ExampleAnomalies',
                                    artifact_types)
      if anomalies is not None:
        entry['anomalies'] = dict(
            _artifact_summary(anomalies, 'ExampleAnomalies'),
            blessed=mlmd.custom_value(anomalies, 'blessed'))
    return entry
  return None


def _artifact_summary(artifact, type_name: str) -> Dict[str, Any]:
  return {'id': artifact.id, 'type': type_name, 'uri': artifact.uri}


def _consumer_outputs(store, artifact_id: int, output_type: str,
                      artifact_types) -> Optional[metadata_store_pb2.Artifact]:
  """The first `output_type` artifact made from an artifact, if any."""
  for derived in store.get_artifacts_by_id(
      downstream_artifacts_one_step(store, artifact_id)):
    if artifact_types.get(derived.type_id) == output_type:
      return derived
  return None


def downstream_artifacts_one_step(store, artifact_id: int) -> List[int]:
  """Artifacts made by the executions that read an artifact."""
  executions = {e.execution_id for e in store.get_events_by_artifact_ids(
      [artifact_id]) if e.type == _Event.INPUT and _is_source(e)}
  return sorted({e.artifact_id for e in store.get_events_by_execution_ids(
      sorted(executions)) if e.type == _Event.OUTPUT})


def _place(path: str) -> str:
  """A path as compared: local ones resolved, URIs without a trailing /."""
  return path.rstrip('/') if storage.is_uri(path) else os.path.realpath(path)


def find_pushed_model(store, version: Optional[str] = None,
                      path: Optional[str] = None,
                      artifact_id: Optional[int] = None,
                      push_destination: Optional[str] = None,
                      phase: int = 1) -> metadata_store_pb2.Artifact:
  """The PushedModel artifact of a phase that pushed a version, folder or
  id.

  With no argument: for phase one the version `LATEST` points to in
  `push_destination`, for phase two the newest version pushed.

  Raises:
    LineageError: when nothing matches.
  """
  pushed = pushed_models(store, phase)
  if artifact_id is not None:
    for artifact in pushed:
      if artifact.id == artifact_id:
        return artifact
    raise LineageError(f'No PushedModel artifact with id {artifact_id} '
                       '(see `inspect artifacts --type PushedModel`).')
  if path is not None:
    target = _place(path)
    if not storage.is_uri(target) and os.path.isfile(target):
      target = os.path.dirname(target)
    for artifact in pushed:
      destination = mlmd.custom_value(artifact, contracts.TFLitePusher.PUSHED_DESTINATION)
      if mlmd.custom_value(artifact, contracts.TFLitePusher.PUSHED) and destination and (
          _place(destination) == target):
        return artifact
      if _place(artifact.uri) == target:
        return artifact
    raise LineageError(f'No pushed model was recorded at {path}.')
  if version is None and phase == 2:
    for artifact in reversed(pushed):
      if mlmd.custom_value(artifact, contracts.PhaseTwoPusher.PUSHED):
        return artifact
    raise LineageError('Phase two has not been pushed here (see `inspect '
                       'runs`: a run pushes it when the pair is blessed).')
  if version is None:
    if not push_destination:
      raise LineageError('Name a model: a version, a path or an artifact id.')
    from components.ondevice import push  # pylint: disable=g-import-not-at-top
    latest = push.latest_version(push_destination)
    if latest is None:
      raise LineageError(f'Nothing has been pushed to {push_destination}.')
    version = str(latest)
  version = str(version).lstrip('v')
  for artifact in pushed:  # oldest first: the one that wrote the version
    if (mlmd.custom_value(artifact, contracts.TFLitePusher.PUSHED)
        and str(mlmd.custom_value(artifact, contracts.TFLitePusher.PUSHED_VERSION)) == version):
      return artifact
  raise LineageError(f'No pushed model version {version} in ML Metadata '
                     '(see `inspect artifacts --type PushedModel`).')


def _pushed_two(artifact: metadata_store_pb2.Artifact) -> Dict[str, Any]:
  """Phase two's PushedModel as recorded: pushed, where, under what name."""
  found = {}
  gate = contracts.PhaseTwoPusher
  for name in (gate.PUSHED, gate.PUSHED_VERSION, gate.PUSHED_DESTINATION,
               gate.MODEL_NAME, gate.REASON):
    value = mlmd.custom_value(artifact, name)
    if value is not None:
      found[name] = value
  return found


def model_lineage(store, pushed: metadata_store_pb2.Artifact,
                  phase: int = 1) -> Dict[str, Any]:
  """The chain from a phase's pushed model back to the ingested spans.

  Returns:
    A dict with `phase`, `pushed_model` (its figures), `blessing`, `evaluation`
    (with metrics), `model`, `trainer` (run and settings), `transform_graph`,
    `schema`, `examples` (each with its data spans, statistics and
    anomalies) and the `graph` (see :func:`upstream_graph`).
  """
  artifact_types = _artifact_types(store)
  graph = upstream_graph(store, pushed.id)
  by_type: Dict[str, List[metadata_store_pb2.Artifact]] = {}
  ids = [n['artifact_id'] for n in graph['nodes'] if n['kind'] == 'artifact']
  for artifact in sorted(store.get_artifacts_by_id(ids), key=lambda a: a.id):
    by_type.setdefault(artifact_types.get(artifact.type_id, '?'),
                       []).append(artifact)

  nodes = PHASES[phase]
  result: Dict[str, Any] = {
      'phase': phase,
      'pushed_model': dict(_artifact_summary(pushed, 'PushedModel'),
                           **(mlmd.pushed_summary(pushed) if phase == 1
                              else _pushed_two(pushed))),
      'graph': graph,
  }
  # The phase's own blessing and model: phase one's graph also reaches the
  # cascade's blessing, phase two's model and the converter's candidate.
  for blessing in by_type.get('ModelBlessing', []):
    if not _made_by(store, blessing, nodes.evaluator):
      continue
    result['blessing'] = dict(_artifact_summary(blessing, 'ModelBlessing'),
                              blessed=bool(mlmd.custom_value(blessing,
                                                             'blessed')))
    evaluator = producer(store, blessing.id)
    if evaluator is not None:
      for evaluation in mlmd.output_artifacts(store, evaluator.id).get(
          'evaluation', []):
        result['evaluation'] = dict(
            _artifact_summary(evaluation, 'ModelEvaluation'),
            run_id=_run_id(store, evaluator),
            metrics=mlmd.evaluation_metrics(evaluation.uri))
  for model in by_type.get('Model', []):
    if not _made_by(store, model, nodes.trainer):
      continue
    result['model'] = _artifact_summary(model, 'Model')
    trainer = producer(store, model.id)
    if trainer is not None:
      settings = mlmd.execution_settings(trainer)
      result['trainer'] = {
          'execution_id': trainer.id, 'run_id': _run_id(store, trainer),
          'train_args': settings.get('train_args'),
          'eval_args': settings.get('eval_args'),
          'custom_config': settings.get('custom_config')}
  for name, key in (('TransformGraph', 'transform_graph'),
                    ('Schema', 'schema')):
    for artifact in by_type.get(name, []):
      result[key] = _artifact_summary(artifact, name)
  if 'schema' in result:
    schema_producer = producer(store, result['schema']['id'])
    if schema_producer is not None:
      result['schema']['schema_file'] = mlmd.custom_value(schema_producer,
                                                          'schema_file')
  examples = []
  windows = [a for a in by_type.get('Examples', [])
             if _made_by(store, a, contracts.SpanWindow.NODE)]
  for artifact in windows:
    entry = dict(_artifact_summary(artifact, 'Examples'),
                 **window_summary(store, artifact))
    entry['span_examples'] = [
        found for found in (span_examples(store, span, artifact_types)
                            for span in entry['spans']) if found]
    examples.append(entry)
  result['examples'] = examples
  return result


def models_from_span(store, span: int) -> List[Dict[str, Any]]:
  """Which models came from a data span (the reverse of the lineage).

  Returns:
    One entry per window (SpanWindow's Examples) that holds the span:
    `examples_id`,
    `window_span`, `spans`, the `models` trained on it (id, URI) and the
    versions `pushed` from them (version, mode, artifact id).
  """
  artifact_types = _artifact_types(store)
  result = []
  for examples in sorted(store.get_artifacts_by_type('Examples'),
                         key=lambda a: a.id):
    if span not in mlmd.data_spans(examples) or not _made_by(
        store, examples, contracts.SpanWindow.NODE):
      continue
    spans = window_summary(store, examples)
    derived = store.get_artifacts_by_id(downstream_artifacts(store,
                                                             examples.id))
    models, pushed = [], {}
    for artifact in sorted(derived, key=lambda a: a.id):
      kind = artifact_types.get(artifact.type_id)
      if kind == 'Model' and not _made_by(
          store, artifact, contracts.TFLiteConverter.NODE):
        models.append({'id': artifact.id, 'uri': artifact.uri})
      elif (kind == 'PushedModel'
            and mlmd.custom_value(artifact, contracts.TFLitePusher.PUSHED)
            and _made_by(store, artifact, contracts.TFLitePusher.NODE)):
        version = str(mlmd.custom_value(artifact, contracts.TFLitePusher.PUSHED_VERSION))
        pushed.setdefault(version, {
            'version': version, 'id': artifact.id,
            'mode': mlmd.custom_value(artifact, contracts.TFLitePusher.MODE),
            'path': mlmd.custom_value(artifact, contracts.TFLitePusher.PUSHED_DESTINATION)})
    result.append({'examples_id': examples.id,
                   'window_span': spans['window_span'],
                   'spans': spans['spans'], 'models': models,
                   'pushed': list(pushed.values())})
  if not result:
    raise LineageError(
        f'No window in ML Metadata holds data span {span} (windows of runs '
        'made before spans were recorded in ML Metadata are not searched).')
  return result


def counts_text(counts: Any) -> str:
  """A span's examples per class as words (`not_instrument 2800, ...`)."""
  if not isinstance(counts, dict):
    return '' if counts is None else str(counts)
  return ', '.join(f'{name} {count}' for name, count in counts.items())


def format_model_lineage(lineage: Dict[str, Any]) -> str:
  """The lineage of a pushed model as console lines, model first."""
  pushed = lineage['pushed_model']
  if lineage.get('phase', 1) == 2:
    lines = [f"Pushed phase two {pushed.get('model_name')} "
             f"v{pushed.get('pushed_version')}, artifact {pushed['id']}: "
             f"{pushed.get('pushed_destination')}"]
  else:
    lines = [f"Pushed model v{pushed.get('pushed_version')} "
             f"({pushed.get('mode')}), artifact {pushed['id']}: "
             f"{pushed.get('pushed_destination')}",
             f"  TFLite {pushed.get('tflite_bytes')} bytes "
             f"({pushed.get('size_ratio')}x float32), accuracy "
             f"{pushed.get('tflite_accuracy')} (drop "
             f"{pushed.get('accuracy_drop')}), AUC {pushed.get('tflite_auc')}, "
             f"{pushed.get('latency_ms_median')} ms per image"]
  blessing = lineage.get('blessing')
  if blessing:
    lines.append(f"<- blessing {blessing['id']}: "
                 f"{'blessed' if blessing['blessed'] else 'NOT blessed'}")
  evaluation = lineage.get('evaluation')
  if evaluation:
    metrics = evaluation.get('metrics', {})
    lines.append(f"<- evaluation {evaluation['id']} (run "
                 f"{evaluation.get('run_id')}): " + ', '.join(
                     f'{k} {v:g}' for k, v in sorted(metrics.items())))
  model = lineage.get('model')
  if model:
    lines.append(f"<- model {model['id']}: {model['uri']}")
  trainer = lineage.get('trainer')
  if trainer:
    config = trainer.get('custom_config') or {}
    train_args = trainer.get('train_args') or {}
    lines.append(f"<- {PHASES[lineage.get('phase', 1)].trainer} "
                 f"execution {trainer['execution_id']} (run "
                 f"{trainer.get('run_id')}): {train_args.get('num_steps')} "
                 'steps, ' + ', '.join(f'{k}={v}' for k, v in sorted(
                     config.items()) if not isinstance(v, (dict, list))))
  for key, label in (('transform_graph', 'transform graph'),
                     ('schema', 'schema')):
    if lineage.get(key):
      lines.append(f"<- {label} {lineage[key]['id']}: {lineage[key]['uri']}"
                   + (f" (from {lineage[key]['schema_file']})"
                      if lineage[key].get('schema_file') else ''))
  for examples in lineage.get('examples', []):
    if not examples.get('recorded', True):
      lines.append(f"<- examples {examples['id']} (a window ending with span "
                   f"{examples['window_span']}, made before spans were "
                   f"recorded in ML Metadata): {examples['uri']}")
      continue
    lines.append(f"<- examples {examples['id']} (window of data spans "
                 f"{', '.join(map(str, examples['spans']))}): "
                 f"{examples['uri']}")
    by_span = {e['span']: e for e in examples.get('span_examples', [])}
    sources = examples.get('sources', {})
    for span in examples['spans']:
      source = sources.get(span, {})
      counts = counts_text(source.get('counts'))
      lines.append(f"   <- data span {span} ({counts}), ingested "
                   f"{source.get('ingested')} from {source.get('source')}")
      for name, groups in (source.get('groups') or {}).items():
        shares = group_shares(groups)
        if shares:
          lines.append(f"      {name}: " + ', '.join(
              f"{group or '(top)'} {count} ({share:.0%})"
              for group, count, share in shares))
      found = by_span.get(span)
      if found:
        lines.append(f"      examples {found['id']}"
                     + (f", statistics {found['statistics']['id']}"
                        if found.get('statistics') else '')
                     + (f", anomalies {found['anomalies']['id']} (blessed "
                        f"{found['anomalies'].get('blessed')})"
                        if found.get('anomalies') else ''))
  return '\n'.join(lines)


def format_models_from_span(span: int, rows: List[Dict[str, Any]]) -> str:
  """The models of a data span as console lines."""
  lines = []
  for row in rows:
    pushed = ', '.join(f"v{p['version']} ({p['mode']})" for p in row['pushed'])
    lines.append(
        f"data span {span} -> window {row['examples_id']} (spans "
        f"{', '.join(map(str, row['spans']))}) -> models "
        f"{', '.join(str(m['id']) for m in row['models']) or 'none'}"
        f" -> pushed {pushed or 'nothing'}")
  return '\n'.join(lines)
