"""Run the pipeline locally (TFX LocalDagRunner, Beam as --beam chooses) and
summarise the run from ML Metadata.
"""

import contextlib
import json
import os
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional

from components.common import errors
from components.common import local_disk
from components.common import run_guard
from components.common import storage
from components import span_window
from pipeline.compat import beam_compat
from pipeline.runners import beam_profiles
from pipeline.settings import config as config_lib
from pipeline.data import ingest
from pipeline.metadata import mlmd

STATE_FILE = 'last_run.json'
# The portable Beam profile's worker pool log, in WORKSPACE/logs/.
BEAM_WORKERS_LOG = 'beam-workers.log'


class RunError(errors.PipelineError, RuntimeError):
  """Raised when the pipeline cannot start or a component failed.

  Attributes:
    unexpected: True when a component failed with an error the pipeline
      does not raise by design (a bug, not bad data): its traceback is
      worth keeping.
  """


class RunBusyError(RunError, errors.BusyError):
  """Another run holds the workspace's or the store's run lock."""


class RunLockLostError(RunError, errors.LockLostError):
  """The store's run lock was lost midway and another runner took it; the
  run stopped before its pusher pushed."""


@contextlib.contextmanager
def run_lock(config: config_lib.PipelineConfig) -> Iterator[None]:
  """Holds the run lock; refuses a second concurrent run at once.

  The lock file sits beside a SQLite store (in the workspace by default),
  so two workspaces sharing one SQLite file exclude each other too. With a
  MySQL or PostgreSQL store, the workspace is locked as well as the store's
  server lock of the pipeline, which every machine sharing the store sees;
  the pusher checks that lock before it pushes (`run_guard`), so a run
  that lost it midway to another runner stops there.

  Args:
    config: the settings (workspace, metadata store, pipeline name).

  Raises:
    RunBusyError: if another run holds a lock, naming it.
    RunError: if the store's server cannot be reached.
  """
  store = config.metadata_url()
  folder = (os.path.dirname(store.path) if store.is_sqlite
            else config.workspace)
  try:
    with local_disk.locked(os.path.join(folder, '.run.lock'),
                           blocking=False):
      if store.is_sqlite:
        yield
        return
      from pipeline.runners import store_lock  # pylint: disable=g-import-not-at-top
      try:
        with store_lock.held(
            store, config.pipeline_name,
            store_lock.describe_holder(config.workspace)) as lock, \
            run_guard.installed(lock.check):
          yield
      except store_lock.StoreLockBusy as e:
        raise RunBusyError(str(e), holder=e.holder) from e
      except store_lock.StoreLockError as e:
        raise RunError(str(e)) from e
  except local_disk.LockBusy as e:
    raise RunBusyError(
        f'Another pipeline run ({e.holder}) is using '
        f'{"workspace " + folder if folder == config.workspace else folder}'
        '; wait for it to finish.', holder=e.holder) from e


def _check_writable_uri(setting: str, folder: str) -> None:
  """Writes and removes a small object under a bucket folder."""
  probe = storage.join(folder, f'.write-check-{os.getpid()}')
  try:
    storage.write_bytes(probe, b'')
    storage.remove(probe)
  except OSError as e:
    raise RunError(f'{setting} {folder} is not writable ({e}); check the '
                   'bucket name and the credentials in the environment.'
                   ) from e


def check_writable(config: config_lib.PipelineConfig) -> None:
  """Refuses, naming the setting, folders the run would fail to write.

  Raises:
    RunError: for the first folder that cannot be created or written.
  """
  for setting, folder in (
      ('--pipeline-root', config.pipeline_root),
      ('--metadata', os.path.dirname(config.metadata_path)),
      ('--push-destination', config.push_destination),
      ('--workspace', config.workspace)):
    if not folder:
      continue  # The metadata store is a server.
    if storage.is_uri(folder):
      _check_writable_uri(setting, folder)
      continue
    try:
      os.makedirs(folder, exist_ok=True)
      with tempfile.NamedTemporaryFile(dir=folder, prefix='.write-check-'):
        pass
    except OSError as e:
      raise RunError(f'{setting} {folder} is not writable ({e.strerror}); '
                     'choose a folder this user can write.') from e


def build_pipeline(config: config_lib.PipelineConfig,
                   span: Optional[int] = None,
                   worker_pool: Optional[str] = None):
  """Creates the TFX pipeline object for `config` (reads only the module
  folder, for its version); with `span`,
  ImportExampleGen reads that span rather than the newest it finds; with
  `worker_pool` (`host:port`), the portable Beam profile uses it."""
  from pipeline import pipeline_def  # pylint: disable=g-import-not-at-top
  # A PostgreSQL config installs its work-arounds in this process, where
  # TFX's components run and write.
  return pipeline_def.create_pipeline(
      config, pipeline_def.UserCode.of_modules(config.schema_path),
      config.metadata_url().connection_config(), span=span,
      beam_pipeline_args=config.beam_pipeline_args(worker_pool))


@contextlib.contextmanager
def beam_workers(config: config_lib.PipelineConfig
                 ) -> Iterator[Optional[str]]:
  """Runs the worker pool of the portable Beam profile around a run (its
  log in WORKSPACE/logs/beam-workers.log); yields its `host:port`, or None
  for the other profiles."""
  if config.beam != 'portable':
    yield None
    return
  log_path = os.path.join(config.workspace, 'logs', BEAM_WORKERS_LOG)
  try:
    with beam_profiles.worker_pool(
        log_path, config_lib.REPO_ROOT) as address:
      yield address
  except beam_profiles.BeamProfileError as e:
    raise RunError(str(e)) from e


def check_newest_span(data_root: str) -> int:
  """The newest complete span (with its ingest record); refuses a run with
  none, or whose newest span holds no examples.

  Returns:
    The span number, which the run then pins ImportExampleGen to: on a
    bucket, an upload killed midway leaves a span prefix without its
    record, which ImportExampleGen alone would take for the newest span.

  Raises:
    RunError: naming the data root or the span folder.
  """
  spans = ingest.list_spans(data_root)
  if not spans:
    raise RunError(f'No ingested span in {data_root}. Ingest a folder '
                   'first: python -m pipeline ingest SRC_DIR')
  folder = storage.join(data_root, span_window.span_folder_name(spans[-1]))
  # The same pattern ImportExampleGen reads the span with.
  pattern = span_window.SPAN_PATTERN.replace('{SPAN}', str(spans[-1]))
  if not storage.glob(storage.join(data_root, pattern)):
    raise RunError(f'{folder} holds no example files ({pattern}); remove '
                   'it or ingest the data again.')
  return spans[-1]


def check_drift_thresholds(config: config_lib.PipelineConfig) -> None:
  """Refuses `--drift-thresholds` naming a feature the schema does not
  compare between spans, before anything runs.

  Raises:
    RunError: naming the feature and the ones that can be set.
  """
  thresholds = config.drift_threshold_map()
  if not thresholds:
    return
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from tensorflow_metadata.proto.v0 import schema_pb2  # pylint: disable=g-import-not-at-top
  from components import data_gate  # pylint: disable=g-import-not-at-top
  with open(config.schema_path, encoding='utf-8') as f:
    schema = text_format.Parse(f.read(), schema_pb2.Schema())
  try:
    data_gate.apply_thresholds(schema, thresholds)
  except ValueError as e:
    raise RunError(str(e)) from e


def run_pipeline(config: config_lib.PipelineConfig) -> Dict[str, Any]:
  """Runs the pipeline once and returns the summary of the run.

  Args:
    config: the pipeline configuration.

  Returns:
    The run summary (see :func:`summarize_latest_run`).

  Raises:
    RunError: when there is no span to train on, the workspace is busy, or a
      component failed (the message names it and the cause).
  """
  if not os.path.isfile(config.schema_path):
    raise RunError(f'Schema file {config.schema_path} does not exist.')
  check_drift_thresholds(config)
  check_writable(config)
  from tfx.orchestration.local import local_dag_runner  # pylint: disable=g-import-not-at-top
  beam_compat.install()
  with run_lock(config):
    started = time.time()
    span = check_newest_span(config.data_root)
    started_ms = int(started * 1000)
    with beam_workers(config) as worker_pool:
      try:
        local_dag_runner.LocalDagRunner().run(
            build_pipeline(config, span, worker_pool))
      except Exception as e:  # pylint: disable=broad-except
        _record_settings(config, started_ms)
        lost = _lost_lock(e)
        if lost is not None:
          raise RunLockLostError(str(lost)) from e
        raise RunError(f'The pipeline run failed: {type(e).__name__}: {e}',
                       unexpected=not errors.raised_by_design(e)) from e
    _record_settings(config, started_ms)
    summary = summarize_latest_run(config)
    summary['wall_seconds'] = round(time.time() - started, 1)
    spans = summary.get('spans') or []
    write_state(config.workspace, {'span': spans[-1] if spans else None,
                                   'spans': spans,
                                   'run_id': summary['run_id'],
                                   'finished': time.strftime(
                                       '%Y-%m-%dT%H:%M:%S%z')})
  return summary


def _lost_lock(error: BaseException) -> Optional[BaseException]:
  """The lost-lock error that stopped the pusher, if `error` is one or was
  raised from one (TFX re-raises an executor's error, wrapped or not)."""
  while error is not None:
    if isinstance(error, errors.LockLostError):
      return error
    error = error.__cause__ or error.__context__
  return None


def _record_settings(config: config_lib.PipelineConfig,
                     started_ms: int) -> None:
  """Stores the settings on the run this process just made (under the run
  lock, so the newest run that started after `started_ms` is ours)."""
  try:
    store = mlmd.open_store(config.metadata_url())
    record = mlmd.find_run(store, config.pipeline_name)
  except mlmd.MetadataError:
    return  # The run failed before anything was recorded.
  if record.context.create_time_since_epoch >= started_ms - 1000:
    mlmd.record_settings(store, record, config.to_dict())


def read_state(workspace: str) -> Dict[str, Any]:
  """What the last successful run recorded (empty before the first), from
  the workspace, a local folder."""
  path = os.path.join(workspace, STATE_FILE)
  if not os.path.isfile(path):
    return {}
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def write_state(workspace: str, state: Dict[str, Any]) -> None:
  """Records the last successful run, atomically."""
  local_disk.write_file(os.path.join(workspace, STATE_FILE),
                        json.dumps(state, indent=2))


def _transformed_bytes_per_example(uri: str) -> Dict[str, float]:
  """On-disk and serialized bytes per transformed training example."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  files = storage.glob(storage.join(uri, 'Split-train', '*'))
  if not files:
    return {}
  count, serialized = 0, 0
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
    count += 1
    serialized += len(record.numpy())
  on_disk = sum(tf.io.gfile.stat(f).length for f in files)
  return {'examples': count,
          'disk_bytes_per_example': round(on_disk / max(count, 1), 1),
          'serialized_bytes_per_example': round(serialized / max(count, 1), 1)}


def summarize_latest_run(config: config_lib.PipelineConfig) -> Dict[str, Any]:
  """Summarises the newest run of the pipeline from ML Metadata.

  Args:
    config: the pipeline configuration (metadata path and pipeline name).

  Returns:
    A dict with `run_id`, `components` (node, state, seconds), `spans`
    (the data spans trained on, or the new span alone when the run stopped
    before the window), `blessed`,
    `model_path`, `metrics`, `transformed` (bytes per example),
    `pushed` when a pusher ran and `search` (the chosen trial's figures)
    when a model search ran.

  Raises:
    RunError: when no run is recorded.
  """
  store = mlmd.open_store(config.metadata_url(), read_only=True)
  try:
    record = mlmd.find_run(store, config.pipeline_name)
  except mlmd.MetadataError as e:
    raise RunError(f'{e} ({config.metadata_url().redacted()})') from e
  summary: Dict[str, Any] = {
      'run_id': record.run_id,
      'components': record.components(),
      'spans': record.window_spans(),
  }
  model = record.output('Trainer', 'model')
  if model is not None:
    summary['model_path'] = os.path.join(model.uri, 'Format-Serving')
  if record.blessed is not None:
    summary['blessed'] = record.blessed
  evaluation = record.output('Evaluator', 'evaluation')
  if evaluation is not None:
    summary['metrics'] = mlmd.evaluation_metrics(evaluation.uri)
  pushed = record.output('TFLitePusher', 'pushed_model')
  if pushed is not None:
    summary['pushed'] = mlmd.pushed_summary(pushed)
  chosen = record.output('ModelSearch', 'best_hyperparameters')
  results = record.output('ModelSearch', 'tuner_results')
  if chosen is not None and results is not None:
    summary['search'] = {
        name: mlmd.custom_value(artifact, name)
        for artifact, names in (
            (chosen, ('chosen_trial', 'auc', 'tflite_bytes',
                      'latency_ms_median')),
            (results, ('trials', 'trials_within_budget', 'budget')))
        for name in names}
  transformed = record.output('Transform', 'transformed_examples')
  if transformed is not None:
    summary['transformed'] = _transformed_bytes_per_example(transformed.uri)
  return summary


def format_summary(summary: Dict[str, Any]) -> str:
  """Renders a run summary as a few lines of text for the console."""
  lines: List[str] = [f"Run {summary['run_id']}" + (
      f" on spans {', '.join(map(str, summary['spans']))}"
      if summary.get('spans') else '')]
  for component in summary['components']:
    lines.append(f"  {component['node']:<32} {component['state']:<8} "
                 f"{component['seconds']:>7.1f} s")
  if 'wall_seconds' in summary:
    lines.append(f"  {'total wall time':<32} {'':<8} "
                 f"{summary['wall_seconds']:>7.1f} s")
  transformed = summary.get('transformed') or {}
  if transformed:
    lines.append(
        f"Transformed examples: {transformed['examples']} in train, "
        f"{transformed['disk_bytes_per_example']:.0f} bytes each on disk "
        f"({transformed['serialized_bytes_per_example']:.0f} serialized)")
  search = summary.get('search') or {}
  if search:
    lines.append(
        f"Model search: trial {search['chosen_trial']} of {search['trials']} "
        f"chosen, {search['trials_within_budget']} within the budget "
        f"({search['budget']}); its trial: AUC {search['auc']:.4f}, "
        f"{search['tflite_bytes']:,} bytes, {search['latency_ms_median']:.3f} "
        'ms (see `inspect trials`)')
  metrics = summary.get('metrics') or {}
  if metrics:
    lines.append('Evaluation: ' + ', '.join(
        f'{name} {value:g}' for name, value in sorted(metrics.items())))
  if 'blessed' in summary:
    lines.append('Model blessed: ' + ('yes' if summary['blessed'] else
                                      'NO (below the thresholds)'))
  if 'model_path' in summary:
    lines.append(f"SavedModel: {summary['model_path']}")
  pushed = summary.get('pushed') or {}
  if pushed.get('pushed'):
    lines.append(
        f"TFLite ({pushed.get('mode')}): {pushed.get('tflite_bytes')} bytes, "
        f"{pushed.get('size_ratio', 0):.2f}x the float32 TFLite model; "
        f"accuracy {pushed.get('tflite_accuracy')} vs SavedModel "
        f"{pushed.get('savedmodel_accuracy')}, AUC {pushed.get('tflite_auc')}, "
        f"agreement {pushed.get('agreement')}, "
        f"{pushed.get('latency_ms_median')} ms per image")
    lines.append(f"Pushed version {pushed.get('pushed_version')}: "
                 f"{pushed.get('pushed_destination')}")
  elif pushed:
    lines.append(f"TFLite model not pushed: {pushed.get('reason')}")
  return '\n'.join(lines)
