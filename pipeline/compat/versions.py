"""The versions a work-around was written for, checked where it installs.

A shim patches a library's private code or works around one release's bug.
On another release the private code may be gone, or the bug fixed and the
shim harmful, so a shim refuses to install on any version but the ones it
was written for, with a message that says what to do.
"""

from importlib import metadata
from typing import Dict

from components.common import errors


class CompatError(errors.PipelineError, RuntimeError):
  """Raised when a work-around meets a library version it was not written
  for; names the shim, the package and both versions."""


def require(shim: str, written_for: Dict[str, str], canary: str) -> None:
  """Refuses to install `shim` unless each package has its version.

  Args:
    shim: the work-around's module path, for the message.
    written_for: package name -> the version the shim was written for.
    canary: the test that shows the bug without the shim.

  Raises:
    CompatError: for the first package at another version (or missing).
  """
  for package, version in written_for.items():
    try:
      found = metadata.version(package)
    except metadata.PackageNotFoundError:
      found = 'none'
    if found != version:
      raise CompatError(
          f'{shim} works around {package} {version}, but {package} {found} '
          f'is installed. Run {canary} without the work-around on {found}: '
          'if the bug is gone, remove the work-around; if not, check the '
          f'patched code and add {found} to its versions.')
