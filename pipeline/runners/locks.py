"""The run lock: one run of a pipeline at a time, on one machine or many.

A workspace's lock file protects one machine (or every workspace that
shares one SQLite store); a MySQL or PostgreSQL store adds the server's
lock (:mod:`pipeline.runners.store_lock`), which every machine sharing the
store sees.
"""

import contextlib
import os
from typing import Iterator

from components.common import local_disk
from components.common import run_guard
from pipeline.runners.run_errors import RunBusyError
from pipeline.runners.run_errors import RunError
from pipeline.settings import config as config_lib


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
