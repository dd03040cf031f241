"""The one error hierarchy of the project.

Every error that the pipeline, its components or its command line raise by
design (bad data, a bad setting, a refused or stopped run) derives from
:class:`PipelineError`. The command line prints such an error as one line
and exits 2, and the scheduler reports it without a traceback; anything
else is a bug whose traceback is kept in the log. An expected error that
wraps an unexpected cause sets `unexpected`, so its traceback is kept too.

Two kinds are told apart by type, never by message text:

- :class:`BusyError`: another run holds a lock this run needs (a
  workspace's lock file or a shared store's server lock); waiting is the
  answer, and a scheduler skips the tick.
- :class:`LockLostError`: the run held its lock and lost it midway (the
  metadata server restarted, the network dropped, an idle timeout), and
  another runner took it; the run stopped before it pushed.

This module lives in `components/` because the components raise these
errors too, and `components/` never imports `pipeline/`.

Example:

    try:
      run.run_pipeline(config)
    except errors.BusyError:
      ...  # another run is under way: try again later
    except errors.PipelineError as e:
      print(f'error: {e}')
"""

from typing import Optional


class PipelineError(Exception):
  """An error the project raises by design; its message names the file,
  setting or component at fault and says what to do.

  Attributes:
    unexpected: True when the error wraps a failure nothing raises by
      design (a bug, not bad input), so its traceback is worth keeping.
  """

  def __init__(self, *args, unexpected: bool = False):
    super().__init__(*args)
    self.unexpected = unexpected


class BusyError(PipelineError):
  """Another run holds a lock this one needs.

  Attributes:
    holder: how the holder names itself (pid, host, start, workspace), or
      'another runner' when it is unknown.
  """

  def __init__(self, message: str, holder: str = ''):
    super().__init__(message)
    self.holder = holder


class LockLostError(PipelineError):
  """The run's lock was lost while it ran and another runner took it; the
  run stopped before pushing."""


def is_expected(error: BaseException) -> bool:
  """True when `error` is a :class:`PipelineError` not flagged
  `unexpected`: one line for the user, no traceback."""
  return isinstance(error, PipelineError) and not error.unexpected


def find_cause(error: BaseException, kind: type) -> Optional[BaseException]:
  """`error`, or the first error it was raised from, that is a `kind`
  (TFX re-raises an executor's error, wrapped or not); None if none is."""
  while error is not None:
    if isinstance(error, kind):
      return error
    error = error.__cause__ or error.__context__
  return None


def raised_by_design(error: BaseException) -> bool:
  """True when `error` or an error it was raised from is an expected
  :class:`PipelineError`: how a runner tells a component that refused its
  input from one that crashed."""
  cause = find_cause(error, PipelineError)
  return cause is not None and not cause.unexpected


class AudioError(PipelineError, ValueError):
  """Raised when a recording cannot be read or a window cannot be drawn;
  the message names the file or the front end setting at fault."""
