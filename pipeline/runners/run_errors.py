"""The errors of a local run: the runner's part of the one hierarchy
(:mod:`components.common.errors`)."""

from components.common import errors


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
