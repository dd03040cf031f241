"""The one atomic-write and lock helper (components/common/local_disk.py)."""

import os
import subprocess
import sys
import time
from unittest import mock

import pytest

from components.common import local_disk


def test_a_file_is_replaced_whole_or_not_at_all(tmp_path):
  path = tmp_path / 'state.json'
  local_disk.write_file(str(path), '{"span": 1}')
  assert path.read_text() == '{"span": 1}'
  assert oct(path.stat().st_mode & 0o777) == oct(0o644)
  with mock.patch.object(local_disk.os, 'fsync',
                         side_effect=OSError(28, 'No space left on device')):
    with pytest.raises(OSError, match='No space left'):
      local_disk.write_file(str(path), '{"span": 2}')
  assert path.read_text() == '{"span": 1}'
  assert os.listdir(tmp_path) == ['state.json']


def test_a_staged_folder_appears_complete_or_not_at_all(tmp_path):
  final = tmp_path / 'span-1'
  with pytest.raises(RuntimeError, match='crash'):
    with local_disk.staged_folder(str(final)) as staging:
      (tmp_path / 'seen').write_text(os.path.basename(staging))
      with open(os.path.join(staging, 'part'), 'w') as f:
        f.write('half')
      raise RuntimeError('crash')
  assert (tmp_path / 'seen').read_text().startswith(local_disk.STAGING_PREFIX)
  assert sorted(os.listdir(tmp_path)) == ['seen']
  with local_disk.staged_folder(str(final)) as staging:
    with open(os.path.join(staging, 'part'), 'w') as f:
      f.write('whole')
  assert (final / 'part').read_text() == 'whole'
  assert oct(final.stat().st_mode & 0o777) == oct(0o755)
  assert sorted(os.listdir(tmp_path)) == ['seen', 'span-1']


def test_a_held_lock_refuses_another_process_naming_the_holder(tmp_path):
  lock = tmp_path / 'ws' / '.run.lock'
  holder = subprocess.Popen(
      [sys.executable, '-c',
       'import sys, time\n'
       'from components.common import local_disk\n'
       f'with local_disk.locked({str(lock)!r}):\n'
       '  print("held", flush=True)\n'
       '  time.sleep(30)\n'],
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
      stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'held'
    started = time.time()
    with pytest.raises(local_disk.LockBusy) as busy:
      with local_disk.locked(str(lock), blocking=False):
        pass
    assert time.time() - started < 5
    assert busy.value.holder.startswith(f'pid {holder.pid} since ')
  finally:
    holder.kill()
    holder.wait()
  with local_disk.locked(str(lock), blocking=False):
    assert lock.read_text().startswith(f'pid {os.getpid()} ')
