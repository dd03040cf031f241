"""The local runner: TFX's LocalDagRunner, Beam as `--beam` chooses, the
store and roots of the settings.

It only chooses: the checks before a run (:mod:`preflight`), the run lock
(:mod:`locks`), the state file (:mod:`state`) and the summary
(:mod:`pipeline.metadata.summary`) live beside it.
"""

import contextlib
import os
import time
from typing import Any, Dict, Iterator, Optional

from components.common import errors
from pipeline.compat import beam_compat
from pipeline.metadata import mlmd
from pipeline.metadata import summary as summary_lib
from pipeline.settings import beam_profiles
from pipeline.runners import worker_pool
from pipeline.runners import locks
from pipeline.runners import preflight
from pipeline.runners import state
from pipeline.runners.run_errors import RunError
from pipeline.runners.run_errors import RunLockLostError
from pipeline.settings import config as config_lib

# The portable Beam profile's worker pool log, in WORKSPACE/logs/.
BEAM_WORKERS_LOG = 'beam-workers.log'


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
      beam_pipeline_args=config.beam_settings().pipeline_args(worker_pool))


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
    with worker_pool.running(log_path, config_lib.REPO_ROOT) as address:
      yield address
  except beam_profiles.BeamProfileError as e:
    raise RunError(str(e)) from e


def install_work_arounds(config: config_lib.PipelineConfig) -> None:
  """Installs, in this process where TFX's components run, the shims this
  run needs: ML Metadata's on a PostgreSQL store, and TFX's packaging on
  local Beam runners when the run passes Beam arguments (the `local`
  profile passes none). Each refuses library versions it was not written
  for (`pipeline.compat.versions.CompatError`)."""
  if config.metadata_url().scheme == 'postgresql':
    from pipeline.compat import postgresql_compat  # pylint: disable=g-import-not-at-top
    postgresql_compat.install()
  if config.beam != 'local' or config.beam_args:
    beam_compat.install()


def run_pipeline(config: config_lib.PipelineConfig) -> Dict[str, Any]:
  """Runs the pipeline once and returns the summary of the run.

  Args:
    config: the pipeline configuration.

  Returns:
    The run summary (see :func:`summary.summarize_latest_run`).

  Raises:
    RunError: when there is no span to train on, the workspace is busy, or a
      component failed (the message names it and the cause).
  """
  if not os.path.isfile(config.schema_path):
    raise RunError(f'Schema file {config.schema_path} does not exist.')
  preflight.check_drift_thresholds(config)
  preflight.check_writable(config)
  from tfx.orchestration.local import local_dag_runner  # pylint: disable=g-import-not-at-top
  install_work_arounds(config)
  with locks.run_lock(config):
    started = time.time()
    span = preflight.check_newest_span(config.data_root)
    preflight.check_front_ends(config, span)
    started_ms = int(started * 1000)
    with beam_workers(config) as worker_pool:
      try:
        local_dag_runner.LocalDagRunner().run(
            build_pipeline(config, span, worker_pool))
      except Exception as e:  # pylint: disable=broad-except
        _record_settings(config, started_ms)
        lost = errors.find_cause(e, errors.LockLostError)
        if lost is not None:
          raise RunLockLostError(str(lost)) from e
        raise RunError(f'The pipeline run failed: {type(e).__name__}: {e}',
                       unexpected=not errors.raised_by_design(e)) from e
    _record_settings(config, started_ms)
    summary = summary_lib.summarize_latest_run(config)
    summary['wall_seconds'] = round(time.time() - started, 1)
    spans = summary.get('spans') or []
    state.write_state(config.workspace, {'span': spans[-1] if spans else None,
                                   'spans': spans,
                                   'run_id': summary['run_id'],
                                   'finished': time.strftime(
                                       '%Y-%m-%dT%H:%M:%S%z')})
  return summary


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
