"""Log files: where every record of a run, and every unexpected traceback,
is kept.

`run` and `schedule` write `WORKSPACE/logs/<command>-<time>-<pid>.log` (the
workspace is always a local folder) with
every log record at INFO and above, unfiltered (the console shows only the
progress lines and real warnings). Any command that fails unexpectedly
writes its traceback to its log file, creating one if it had none, and the
one-line error names that file; `--debug` also prints the traceback on the
console. Expected failures (bad data, bad settings, a refused push) stay one
clear line.
"""

import logging
import os
import sys
import tempfile
import time
import traceback
from typing import Optional, Set

LOGS_DIR = 'logs'
_FORMAT = '%(asctime)s %(levelname)s %(name)s: %(message)s'
_LOGGER_NAMES = ('', 'absl')
# Tracebacks go to the file only: the console already has the error line.
_TRACEBACKS = logging.getLogger('pipeline.tracebacks')
_TRACEBACKS.propagate = False
_handler: Optional[logging.FileHandler] = None
# Strings no log line may hold (a metadata store's password: TFX logs the
# whole connection config when a run starts).
_SECRETS: Set[str] = set()


def hide(secret: str) -> None:
  """Replaces `secret` with `***` in every log line written from now on."""
  if secret:
    _SECRETS.add(secret)


def redact(text: str) -> str:
  """`text` with every hidden string replaced by `***`."""
  for secret in _SECRETS:
    text = text.replace(secret, '***')
  return text


class _Redacting(logging.Formatter):
  """The log format, with the hidden strings replaced."""

  def format(self, record: logging.LogRecord) -> str:
    return redact(super().format(record))


def _new_path(workspace: str, command: str) -> str:
  stamp = time.strftime('%Y%m%d-%H%M%S')
  name = f'{command}-{stamp}-{os.getpid()}.log'
  folder = os.path.join(workspace, LOGS_DIR)
  try:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), 'a', encoding='utf-8'):
      pass
  except OSError:
    # An unwritable workspace must not hide the error being logged.
    folder = tempfile.gettempdir()
  return os.path.join(folder, name)


def start(workspace: str, command: str) -> str:
  """Sends every log record (INFO and up) to a new log file of `command`.

  Args:
    workspace: the workspace; the file goes to its `logs/` folder (or the
      temporary folder when that cannot be written).
    command: the command's name, the start of the file name.

  Returns:
    The log file's path. Calling it again returns the same file.
  """
  global _handler
  if _handler is not None:
    return _handler.baseFilename
  _handler = logging.FileHandler(_new_path(workspace, command),
                                 encoding='utf-8')
  _handler.setLevel(logging.INFO)
  _handler.setFormatter(_Redacting(_FORMAT))
  for name in _LOGGER_NAMES:
    logger = logging.getLogger(name)
    logger.addHandler(_handler)
    if logger.getEffectiveLevel() > logging.INFO:
      logger.setLevel(logging.INFO)
  _TRACEBACKS.addHandler(_handler)
  return _handler.baseFilename


def stop() -> None:
  """Closes the log file opened by :func:`start`, if any."""
  global _handler
  if _handler is None:
    return
  for name in _LOGGER_NAMES:
    logging.getLogger(name).removeHandler(_handler)
  _TRACEBACKS.removeHandler(_handler)
  _handler.close()
  _handler = None


def log_traceback(error: BaseException, workspace: str, command: str,
                  echo: bool = False) -> str:
  """Writes `error` with its whole traceback (causes included) to the log.

  Args:
    error: the exception.
    workspace: the workspace (for a log file opened here).
    command: the command's name (for a log file opened here).
    echo: also print the traceback on stderr (`--debug`).

  Returns:
    The log file's path, for the one-line error message.
  """
  path = start(workspace, command)
  text = ''.join(traceback.format_exception(type(error), error,
                                            error.__traceback__))
  _TRACEBACKS.error('unexpected error:\n%s', text)
  _handler.flush()
  if echo:
    print(redact(text), file=sys.stderr, end='')
  return path
