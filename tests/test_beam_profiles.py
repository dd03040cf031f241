"""Tests of the Beam profiles (`--beam`), the portable one end to end."""

import os
import time
from unittest import mock

import pytest

from conftest import GOLDEN_SETTINGS
from components import contracts
from pipeline.cli import commands as cli
from pipeline.runners import worker_pool
from pipeline.settings import beam_profiles
from pipeline.settings import config as config_lib
from pipeline.metadata import mlmd
from pipeline.reporting import artifacts
from pipeline.runners import run


def test_each_profile_names_its_runner_and_raw_arguments_come_last():
  assert beam_profiles.pipeline_args('local') == []
  assert beam_profiles.pipeline_args('local', ['--x=1']) == ['--x=1']
  assert '--direct_running_mode=multi_processing' in (
      beam_profiles.pipeline_args('multiprocess'))
  assert beam_profiles.pipeline_args(
      'portable', worker_pool='localhost:5') == [
          '--runner=PortableRunner', '--job_endpoint=embed',
          '--environment_type=EXTERNAL', '--environment_config=localhost:5']
  assert beam_profiles.pipeline_args(
      'dataflow', gcp_project='p', region='r', temp_location='gs://b/t',
      image='i:1') == [
          '--runner=DataflowRunner', '--project=p', '--region=r',
          '--temp_location=gs://b/t', '--sdk_container_image=i:1']


def test_a_profile_without_what_it_needs_is_refused_naming_it(tmp_path):
  with pytest.raises(beam_profiles.BeamProfileError, match='worker pool'):
    beam_profiles.pipeline_args('portable')
  with pytest.raises(beam_profiles.BeamProfileError, match='--region'):
    beam_profiles.pipeline_args('dataflow', gcp_project='p',
                                temp_location='gs://b', image='i')
  with pytest.raises(config_lib.ConfigError, match='beam must be one of'):
    config_lib.PipelineConfig(workspace=str(tmp_path), beam='spark')
  with pytest.raises(config_lib.ConfigError,
                     match='temp_location must be a gs:// folder'):
    config_lib.PipelineConfig(
        workspace=str(tmp_path), beam='dataflow', gcp_project='p',
        region='r', temp_location='/tmp/t', image='i')


# A stand-in for Beam's worker pool that ignores SIGTERM, listens on its
# port and has started a worker that outlives it unless its group is killed.
_STUCK_POOL = """
import signal, socket, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
port = int(sys.argv[1].split('=')[1])
worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])
with open(sys.argv[0] + '.worker', 'w') as f:
  f.write(str(worker.pid))
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('localhost', port))
server.listen()
time.sleep(600)
"""


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  # A zombie (exited, not yet reaped by its parent) counts as gone.
  with open(f'/proc/{pid}/stat', encoding='ascii') as stat:
    return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'


def test_the_worker_pool_stops_with_every_process_it_started(
    tmp_path, monkeypatch):
  (tmp_path / 'stuck_pool.py').write_text(_STUCK_POOL)
  monkeypatch.setenv('PYTHONPATH', str(tmp_path))
  monkeypatch.setattr(worker_pool, '_POOL_STOP_SECONDS', 2)
  monkeypatch.setattr(worker_pool, 'WORKER_POOL_MODULE', 'stuck_pool')
  with worker_pool.running(str(tmp_path / 'pool.log'),
                                 config_lib.REPO_ROOT):
    worker = int((tmp_path / 'stuck_pool.py.worker').read_text())
    assert _alive(worker)
  deadline = time.monotonic() + 10
  while _alive(worker) and time.monotonic() < deadline:
    time.sleep(0.1)
  assert not _alive(worker)


def test_a_worker_pool_that_cannot_start_is_reported_with_its_log(tmp_path):
  log = tmp_path / 'pool.log'
  with mock.patch.object(worker_pool, 'WORKER_POOL_MODULE',
                         'no_such_beam_module'):
    with pytest.raises(beam_profiles.BeamProfileError) as raised:
      with worker_pool.running(str(log), config_lib.REPO_ROOT):
        pass
  assert str(log) in str(raised.value)
  assert 'no_such_beam_module' in str(raised.value)


# Loose gates: these runs check where the work ran and that it is the
# same work, not the tiny model's quality.


def _statistics(config):
  store = mlmd.open_store(config.metadata_url(), read_only=True)
  record = mlmd.find_run(store, config.pipeline_name)
  statistics = record.output(contracts.StatisticsGen.NODE,
                             contracts.StatisticsGen.STATISTICS)
  dataset = artifacts.read_statistics(statistics)['all']
  features = {}
  for feature in dataset.features:
    stats = feature.num_stats if feature.HasField('num_stats') else None
    features[feature.path.step[0]] = (
        round(stats.mean, 6) if stats else
        feature.string_stats.unique if feature.HasField('string_stats')
        else None)
  return dataset.num_examples, features


@pytest.mark.e2e
@pytest.mark.portable
def test_the_portable_profile_runs_the_beam_work_in_worker_processes(
    tmp_path, small_spectrograms, golden):
  # The local profile's run of the same data and settings is the golden
  # workspace's first.
  summaries = {'local': golden.runs[0]}
  statistics = {'local': _statistics(golden.config)}
  workspace = str(tmp_path / 'portable')
  assert cli.main(['ingest', '--workspace', workspace,
                   small_spectrograms]) == 0
  config = config_lib.PipelineConfig(workspace=workspace, beam='portable',
                                     **GOLDEN_SETTINGS)
  summaries['portable'] = run.run_pipeline(config)
  statistics['portable'] = _statistics(config)
  assert golden.config.beam == 'local'
  assert statistics['portable'] == statistics['local']
  assert statistics['local'][0] == 48
  for key in ('example_count',):
    assert (summaries['portable']['metrics'][key] ==
            summaries['local']['metrics'][key])
  assert summaries['portable']['pushed']['pushed_version'] == '1'

  # Every Beam component ran its DoFns in SDK worker processes the pool
  # started, not in this process.
  log_path = os.path.join(str(tmp_path / 'portable'), 'logs',
                          run.BEAM_WORKERS_LOG)
  with open(log_path, encoding='utf-8') as log:
    started = [line for line in log
               if worker_pool.WORKER_STARTED in line]
  beam_components = {'ImportExampleGen', 'StatisticsGen', 'Transform',
                     'Evaluator'}
  assert len(started) >= len(beam_components)
  assert not os.path.exists(os.path.join(golden.workspace, 'logs',
                                         run.BEAM_WORKERS_LOG))
