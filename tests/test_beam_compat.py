"""Tests of TFX's Beam dependency flags on local runners."""

import json
import os
import subprocess
import sys
from unittest import mock

import pytest

from pipeline.compat import beam_compat
from pipeline.compat import versions
from pipeline.settings import beam_profiles

# Builds a Beam executor as LocalDagRunner does, in a child process whose
# temporary folder is the test's, and prints the Beam arguments it kept.
_EXECUTOR = """
import json, sys
from pipeline.compat import beam_compat
from tfx.dsl.components.base import base_beam_executor
if sys.argv[1] == 'install':
  beam_compat.install()
  beam_compat.install()
class Executor(base_beam_executor.BaseBeamExecutor):
  def Do(self, input_dict, output_dict, exec_properties):
    pass
executor = Executor(
    base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=json.loads(sys.argv[2])))
print(json.dumps(executor._beam_pipeline_args))
"""


def _executor_args(tmp_path, beam_args, install=True):
  temp = tmp_path / 'temp'
  temp.mkdir()
  env = dict(os.environ, TMPDIR=str(temp))
  done = subprocess.run(
      [sys.executable, '-c', _EXECUTOR, 'install' if install else 'plain',
       json.dumps(beam_args)],
      env=env, capture_output=True, text=True, check=True,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  return json.loads(done.stdout.strip().splitlines()[-1]), os.listdir(temp)


def test_the_local_profile_needs_no_work_around(tmp_path):
  # It passes no Beam argument, and TFX packages nothing then.
  args, temp_files = _executor_args(
      tmp_path, beam_profiles.pipeline_args('local'), install=False)
  assert args == [] and temp_files == []


def test_a_local_runner_with_arguments_gets_no_throw_away_tfx_package(
    tmp_path):
  local = beam_profiles.pipeline_args('multiprocess')
  args, temp_files = _executor_args(tmp_path, local)
  assert not [a for a in args if a.startswith('--extra_package')]
  assert args[:len(local)] == local
  assert temp_files == []


def test_without_the_work_around_tfx_leaves_its_package_in_the_temp_folder(
    tmp_path):
  # Shows why the work-around exists: TFX 1.16 builds and keeps it.
  args, temp_files = _executor_args(
      tmp_path, beam_profiles.pipeline_args('multiprocess'), install=False)
  assert [a for a in args if a.startswith('--extra_package=')]
  assert temp_files


def test_the_work_around_refuses_a_tfx_it_was_not_written_for():
  with mock.patch.object(versions.metadata, 'version',
                         side_effect=lambda name: '1.17.0'):
    with pytest.raises(versions.CompatError) as refused:
      beam_compat.install()
  message = str(refused.value)
  assert 'beam_compat.py works around tfx 1.16.0, but tfx 1.17.0' in message
  assert beam_compat.CANARY in message


def test_a_remote_runner_still_gets_tfx_as_a_package(tmp_path):
  args, _ = _executor_args(
      tmp_path, ['--runner=DataflowRunner', '--project=p', '--region=r'])
  packages = [a for a in args if a.startswith('--extra_package=')]
  assert packages and packages[0].endswith('.tar.gz')


@pytest.mark.parametrize('beam_args, local', [
    ([], True),
    (['--direct_running_mode=multi_processing'], True),
    (['--runner=DirectRunner'], True),
    (['--runner=PortableRunner', '--environment_type=EXTERNAL',
      '--environment_config=localhost:50000'], True),
    (['--runner=PortableRunner', '--environment_type=LOOPBACK'], True),
    (['--runner=PortableRunner'], False),
    (['--runner=PortableRunner', '--environment_type=DOCKER'], False),
    (['--runner=DataflowRunner'], False),
])
def test_only_runners_on_this_machines_environment_count_as_holding_tfx(
    beam_args, local):
  assert beam_compat.workers_hold_tfx(beam_args) is local
