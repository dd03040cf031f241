"""Loading a page in a real headless Chromium: console messages, DOM, picture.

Debian's chromium, started the way a closed network needs (no background
networking, no component updates, a fresh profile). `CHROMIUM` names another
binary. The console is read from Chromium's own log (`--enable-logging`),
where every `console.*` call and uncaught error appears as a CONSOLE line.
"""

import os
import re
import shutil
import subprocess
import tempfile
from typing import List, Optional

FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
         '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--hide-scrollbars',
         '--disable-extensions', '--enable-logging=stderr', '--v=0')

# `[pid:tid:time:INFO:CONSOLE:12] "message", source: file:///... (12)`
# (older builds write `INFO:CONSOLE(12)]`).
_CONSOLE = re.compile(r':CONSOLE[:(]\d*\)?\] "(.*)", source: (.*)$')


def find_chromium() -> Optional[str]:
  """The Chromium binary, or None."""
  named = os.environ.get('CHROMIUM')
  if named and os.access(named, os.X_OK):
    return named
  for name in ('chromium', 'chromium-browser', 'google-chrome'):
    path = shutil.which(name)
    if path:
      return path
  return None


def _run(binary: str, url: str, extra: List[str]) -> subprocess.CompletedProcess:
  profile = tempfile.mkdtemp(prefix='chromium-profile-')
  try:
    return subprocess.run(
        [binary, *FLAGS, f'--user-data-dir={profile}', *extra, url],
        capture_output=True, text=True, timeout=120, check=False)
  finally:
    shutil.rmtree(profile, ignore_errors=True)


def console_messages(stderr: str) -> List[str]:
  """The page's console messages in Chromium's log."""
  found = []
  for line in stderr.splitlines():
    match = _CONSOLE.search(line)
    if match:
      found.append(f'{match.group(1)} ({match.group(2)})')
  return found


def load(binary: str, page: str, screenshot: str, width: int = 1280,
         height: int = 4000):
  """Loads `page`; returns (console messages, rendered DOM).

  Also writes a `width` x `height` PNG screenshot to `screenshot`.
  """
  url = 'file://' + os.path.abspath(page)
  shot = _run(binary, url, [f'--screenshot={screenshot}',
                            f'--window-size={width},{height}'])
  dom = _run(binary, url, ['--dump-dom'])
  if dom.returncode != 0 or not os.path.isfile(screenshot):
    raise RuntimeError(f'chromium failed on {page}: {dom.stderr[-2000:]}')
  return console_messages(shot.stderr) + console_messages(dom.stderr), \
      dom.stdout
