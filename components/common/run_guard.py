"""Checks that a runner installs for the pusher to pass before it pushes.

A runner that holds a lock for the length of a run (the shared store's
server lock, :mod:`pipeline.runners.store_lock`) can lose it midway. The
pusher is the one component whose work another run must never repeat
beside it, so it calls :func:`before_push` right before it writes a
version; each installed check raises to stop the push. Nothing is
installed where a run holds no such lock (SQLite, a Kubeflow task), and
then :func:`before_push` does nothing.

The checks live in this process: TFX's local runner calls executors in
the process that runs the pipeline.

Example:

    with run_guard.installed(lock.check):
      LocalDagRunner().run(pipeline)  # the pusher calls before_push()
"""

import contextlib
import threading
from typing import Callable, Iterator, List

_checks: List[Callable[[], None]] = []
_mutex = threading.Lock()


@contextlib.contextmanager
def installed(check: Callable[[], None]) -> Iterator[None]:
  """Makes :func:`before_push` call `check` while the block runs.

  Args:
    check: raises (a `PipelineError`, naming why) when the run must not
      push.
  """
  with _mutex:
    _checks.append(check)
  try:
    yield
  finally:
    with _mutex:
      _checks.remove(check)


def before_push() -> None:
  """Calls every installed check; the first that raises stops the push."""
  with _mutex:
    checks = list(_checks)
  for check in checks:
    check()
