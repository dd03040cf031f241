"""Tests for pipeline.config and the command line."""

import os

import pytest

from pipeline import __main__ as cli
from pipeline import config as config_lib


def test_paths_default_to_one_workspace(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path / 'ws'))
  assert config.data_root == str(tmp_path / 'ws' / 'data')
  assert config.pipeline_root == str(tmp_path / 'ws' / 'tfx')
  assert config.metadata_path == str(tmp_path / 'ws' / 'metadata.sqlite')
  assert config.push_destination == str(tmp_path / 'ws' / 'pushed')
  assert config.schema_path == os.path.join(config_lib.SCHEMA_DIR,
                                            'schema.pbtxt')


@pytest.mark.parametrize('overrides, setting', [
    ({'min_auc': 1.5}, 'min_auc'),
    ({'min_accuracy': -0.1}, 'min_accuracy'),
    ({'max_auc_drop': 2.0}, 'max_auc_drop'),
    ({'class_names': ('only_one',)}, 'class_names'),
    ({'class_names': ('same', 'same')}, 'class_names'),
    ({'channels': 4}, 'channels'),
    ({'image_size': 8}, 'image_size'),
    ({'train_steps': 0}, 'train_steps'),
    ({'learning_rate': 0.0}, 'learning_rate'),
])
def test_bad_settings_are_refused_by_name(overrides, setting):
  with pytest.raises(config_lib.ConfigError, match=setting):
    config_lib.PipelineConfig(**overrides)


def test_command_line_overrides_reach_the_config(tmp_path):
  args = cli.build_parser().parse_args([
      'run', '--workspace', str(tmp_path), '--train-steps', '7',
      '--class-names', 'dog, cat', '--min-auc', '0.5', '--augment', 'false',
      '--beam-args=--direct_num_workers=2,--direct_running_mode=in_memory'])
  config = config_lib.config_from_args(args)
  assert config.train_steps == 7
  assert config.class_names == ('dog', 'cat')
  assert config.min_auc == 0.5
  assert config.augment is False
  assert config.beam_args == ('--direct_num_workers=2',
                              '--direct_running_mode=in_memory')
  assert config.workspace == str(tmp_path)
  # Options not given keep the defaults.
  assert config.batch_size == config_lib.PipelineConfig.batch_size


def test_cli_reports_a_bad_setting_without_traceback(tmp_path, capsys):
  code = cli.main(['run', '--workspace', str(tmp_path), '--min-auc', '3'])
  assert code == 2
  err = capsys.readouterr().err
  assert 'min_auc must be between 0 and 1' in err
  assert 'Traceback' not in err


def test_run_without_spans_says_to_ingest_first(tmp_path, capsys):
  code = cli.main(['run', '--workspace', str(tmp_path)])
  assert code == 2
  assert 'ingest' in capsys.readouterr().err


def test_every_command_has_help(capsys):
  for command in ('synth', 'ingest', 'run', 'predict', 'schedule',
                  'inspect'):
    with pytest.raises(SystemExit) as exit_info:
      cli.build_parser().parse_args([command, '--help'])
    assert exit_info.value.code == 0
    assert '--workspace' in capsys.readouterr().out


def test_inspect_without_a_store_says_so(tmp_path, capsys):
  code = cli.main(['inspect', 'runs', '--workspace', str(tmp_path)])
  assert code == 2
  err = capsys.readouterr().err
  assert 'No ML Metadata store' in err and 'Traceback' not in err
