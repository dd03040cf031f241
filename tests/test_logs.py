"""Expected errors are one line; unexpected ones keep their traceback in a
log file that the error line names (pipeline/runners/logs.py and the CLI)."""

import logging
import os
import re
from unittest import mock

import pytest

from conftest import write_image
from components import data_gate
from pipeline.cli import commands as cli
from pipeline.settings import config as config_lib
from pipeline.data import ingest
from pipeline.runners import logs
from pipeline.runners import run
from pipeline.runners import schedule


@pytest.fixture(autouse=True)
def _no_log_file_left_open():
  """`schedule.tick` outside `main` leaves its log file open; close it so
  the next test starts its own."""
  yield
  logs.stop()


def _log_path(err):
  match = re.search(r'the traceback is in (\S+?)[;)]', err)
  assert match, err
  return match.group(1)


def test_an_unexpected_error_is_one_line_with_its_traceback_in_the_log(
    tmp_path, capsys):
  with mock.patch.object(ingest, 'ingest',
                         side_effect=ZeroDivisionError('boom')):
    code = cli.main(['ingest', str(tmp_path), '--workspace',
                     str(tmp_path / 'ws')])
  assert code == 1
  err = capsys.readouterr().err
  assert err.startswith('error: ZeroDivisionError: boom\n')
  assert 'Traceback' not in err and '--debug' in err
  path = _log_path(err)
  assert path.startswith(str(tmp_path / 'ws' / 'logs'))
  text = open(path, encoding='utf-8').read()
  assert 'Traceback (most recent call last)' in text
  assert 'ZeroDivisionError: boom' in text and '_cmd_ingest' in text


def test_debug_prints_the_traceback_on_the_console_too(tmp_path, capsys):
  with mock.patch.object(ingest, 'ingest', side_effect=KeyError('k')):
    code = cli.main(['ingest', str(tmp_path), '--workspace',
                     str(tmp_path / 'ws'), '--debug'])
  assert code == 1
  err = capsys.readouterr().err
  assert 'Traceback (most recent call last)' in err
  assert os.path.isfile(_log_path(err))


def test_an_expected_error_stays_one_line_without_a_log(tmp_path, capsys):
  code = cli.main(['ingest', str(tmp_path / 'missing'), '--workspace',
                   str(tmp_path / 'ws')])
  assert code == 2
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and 'is not a folder' in err
  assert not os.path.exists(tmp_path / 'ws' / 'logs')


@pytest.fixture
def config_with_a_span(tmp_path):
  for label, name in enumerate(('not_instrument', 'instrument')):
    for index in range(2):
      write_image(str(tmp_path / 'src' / name / f'{index}.png'),
                  seed=label * 10 + index)
  config = config_lib.PipelineConfig(workspace=str(tmp_path / 'ws'))
  ingest.ingest(str(tmp_path / 'src'), config.data_root, progress=False)
  return config


@pytest.mark.parametrize('raised, unexpected', [
    (ValueError('a bug in a component'), True),
    (data_gate.DataAnomaliesError('label distribution drift'), False),
])
def test_a_component_failure_is_unexpected_unless_raised_by_design(
    config_with_a_span, raised, unexpected):
  with mock.patch('tfx.orchestration.local.local_dag_runner.LocalDagRunner'
                  '.run', side_effect=raised):
    with pytest.raises(run.RunError, match=str(raised)) as error:
      run.run_pipeline(config_with_a_span)
  assert error.value.unexpected is unexpected
  assert error.value.__cause__ is raised


def test_the_scheduler_logs_an_unexpected_failure_with_its_traceback(
    config_with_a_span):
  def failing_run(config):
    del config
    try:
      raise ValueError('inside the trainer')
    except ValueError as e:
      raise run.RunError('The pipeline run failed: ValueError: inside the '
                         'trainer', unexpected=True) from e

  result = schedule.tick(config_with_a_span, run_fn=failing_run)
  assert result.action == 'failed'
  path = _log_path(result.message)
  text = open(path, encoding='utf-8').read()
  assert 'ValueError: inside the trainer' in text
  assert 'failing_run' in text


def test_a_metadata_password_is_in_no_log_line_nor_error(tmp_path, capsys):
  secret = 'Pw-from-the-url'

  def leaky(config):
    # As TFX does when a run starts: the whole connection config.
    logging.getLogger('absl').info('Using connection config: password: "%s"',
                                   config.metadata_url().password)
    raise RuntimeError(f'could not connect with password {secret}')

  with mock.patch.object(run, 'run_pipeline', side_effect=leaky):
    code = cli.main(['run', '--workspace', str(tmp_path / 'ws'), '--debug',
                     '--metadata', f'mysql://ml:{secret}@db.example/mlmd'])
  assert code == 1
  err = capsys.readouterr().err
  assert 'could not connect with password ***' in err
  text = open(_log_path(err), encoding='utf-8').read()
  assert 'Using connection config: password: "***"' in text
  assert secret not in err + text


def _record(level, message, error=None):
  exc_info = None
  if error is not None:
    try:
      raise error
    except type(error):
      import sys  # pylint: disable=g-import-not-at-top
      exc_info = sys.exc_info()
  return logging.LogRecord('absl', level, __file__, 1, message, (), exc_info)


def test_an_empty_resolver_on_a_first_run_prints_no_traceback():
  from tfx.orchestration.portable.input_resolution import exceptions  # pylint: disable=g-import-not-at-top
  keep = cli._ProgressFilter().filter  # pylint: disable=protected-access
  empty = exceptions.InputResolutionError(
      'Error while resolving inputs for latest_data_baseline_resolver: '
      '<LatestArtifactStrategy object at 0x7f> returned None.')
  assert not keep(_record(logging.ERROR, '[x] Input resolution error: %s',
                          empty))
  # Any other resolution failure, and any other error, is still shown.
  broken = exceptions.InputResolutionError('Error while resolving inputs: '
                                           'no such artifact type')
  assert keep(_record(logging.ERROR, '[x] Input resolution error', broken))
  assert keep(_record(logging.ERROR, 'boom', ValueError('returned None.')))
  assert not keep(_record(logging.WARNING, "Couldn't find python-snappy so "
                          'the implementation is not as fast'))
  # TFMA trying Keras' loader on phase two's model, saved as signatures.
  assert not keep(_record(logging.WARNING, 'SavedModel saved prior to TF 2.5 '
                          'detected when loading Keras model. Please ensure '
                          'that you are saving the model with model.save()'))
