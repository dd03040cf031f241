"""Tests of scripts/setup_env.sh's interpreter discovery."""

import os
import subprocess
import sys

import pytest

from pipeline.settings import config as config_lib

SCRIPT = os.path.join(config_lib.REPO_ROOT, 'scripts', 'setup_env.sh')


def _run(tmp_path, **env):
  base = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path),
          'PYENV_ROOT': str(tmp_path / 'no-pyenv')}
  base.update(env)
  return subprocess.run(['bash', SCRIPT, str(tmp_path / 'venv')], env=base,
                        capture_output=True, text=True, timeout=60,
                        check=False)


@pytest.mark.skipif(os.path.exists('/usr/bin/python3.10') or
                    os.path.exists('/usr/local/bin/python3.10'),
                    reason='this machine has a system Python 3.10')
def test_without_python_310_says_what_to_install(tmp_path):
  result = _run(tmp_path)
  assert result.returncode == 1
  assert 'No Python 3.10 interpreter was found' in result.stderr
  assert 'pyenv install 3.10' in result.stderr
  assert not (tmp_path / 'venv').exists()


def test_python310_pointing_elsewhere_is_refused(tmp_path):
  if sys.version_info[:2] != (3, 10):
    pytest.skip('needs the project venv')
  result = _run(tmp_path, PYTHON310='/bin/true')
  assert result.returncode == 1
  assert 'is not a Python 3.10 interpreter' in result.stderr
