"""Reading what the pipeline recorded in ML Metadata, with the public API.

Small, plain functions over `ml_metadata.MetadataStore` used by the run
summary (and the inspection commands built on them).
"""

import dataclasses
import json
import os
from typing import Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

PIPELINE_RUN_CONTEXT = 'pipeline_run'
NODE_CONTEXT = 'node'

_STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: 'ran',
    metadata_store_pb2.Execution.CACHED: 'cached',
    metadata_store_pb2.Execution.FAILED: 'failed',
    metadata_store_pb2.Execution.RUNNING: 'running',
    metadata_store_pb2.Execution.NEW: 'new',
    metadata_store_pb2.Execution.CANCELED: 'canceled',
}


class MetadataStoreMissing(FileNotFoundError):
  """Raised when there is no ML Metadata store at the given path."""


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


def open_store(metadata_path: str,
               read_only: bool = False) -> metadata_store.MetadataStore:
  """Opens the SQLite ML Metadata store at `metadata_path`.

  Args:
    metadata_path: the SQLite file.
    read_only: open without creating or migrating anything.

  Returns:
    A MetadataStore.

  Raises:
    MetadataStoreMissing: if the file does not exist.
  """
  if not os.path.isfile(metadata_path):
    raise MetadataStoreMissing(
        f'No ML Metadata store at {metadata_path}: the pipeline has not run '
        'in this workspace yet (run `make run` or `python -m pipeline run`).')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY if read_only
      else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
  return metadata_store.MetadataStore(config)


def pipeline_runs(store: metadata_store.MetadataStore,
                  pipeline_name: str) -> List[metadata_store_pb2.Context]:
  """The pipeline-run contexts of `pipeline_name`, newest first."""
  runs = []
  for context in store.get_contexts_by_type(PIPELINE_RUN_CONTEXT):
    pipeline_contexts = [
        c for c in store.get_parent_contexts_by_context(context.id)
        if c.name == pipeline_name]
    if pipeline_contexts or context.name.startswith(pipeline_name):
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
  """Every component execution of one run, in execution order."""
  result = []
  for execution in store.get_executions_by_context(run_context.id):
    node = node_name(store, execution)
    seconds = max(0.0, (execution.last_update_time_since_epoch -
                        execution.create_time_since_epoch) / 1000.0)
    result.append(NodeExecution(
        node, _STATE_NAMES.get(execution.last_known_state, 'unknown'),
        seconds, execution))
  return sorted(result, key=lambda e: (e.execution.create_time_since_epoch,
                                       e.execution.id))


_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT,
                  metadata_store_pb2.Event.DECLARED_OUTPUT)
_INPUT_EVENTS = (metadata_store_pb2.Event.INPUT,
                 metadata_store_pb2.Event.DECLARED_INPUT)


def _artifacts_by_key(store: metadata_store.MetadataStore, execution_id: int,
                      event_types) -> Dict[str, List[metadata_store_pb2.Artifact]]:
  events = [e for e in store.get_events_by_execution_ids([execution_id])
            if e.type in event_types]
  artifacts = {a.id: a for a in store.get_artifacts_by_id(
      [e.artifact_id for e in events])}
  result: Dict[str, List[metadata_store_pb2.Artifact]] = {}
  for event in events:
    key = event.path.steps[0].key if event.path.steps else ''
    if event.artifact_id in artifacts:
      result.setdefault(key, []).append(artifacts[event.artifact_id])
  return result


def output_artifacts(store: metadata_store.MetadataStore,
                     execution_id: int
                     ) -> Dict[str, List[metadata_store_pb2.Artifact]]:
  """An execution's output artifacts by output key."""
  return _artifacts_by_key(store, execution_id, _OUTPUT_EVENTS)


def input_artifacts(store: metadata_store.MetadataStore,
                    execution_id: int
                    ) -> Dict[str, List[metadata_store_pb2.Artifact]]:
  """An execution's input artifacts by input key."""
  return _artifacts_by_key(store, execution_id, _INPUT_EVENTS)


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
