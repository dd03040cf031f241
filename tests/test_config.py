"""Tests for pipeline.settings.config and the command line."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from conftest import write_image
from pipeline.cli import commands as cli
from pipeline.settings import config as config_lib
from pipeline.settings import arguments
from pipeline.data import ingest
from pipeline.metadata import mlmd
from pipeline.runners import state


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
    ({'phase_two_steps': 0}, 'phase_two_steps'),
    ({'phase_two_width': 0.0}, 'phase_two_width'),
    ({'phase_two_encoder': 'MSD_vgg'}, 'phase_two_encoder'),
    ({'phase_two_encoder': 'MSD_musicnn,MSD_musicnn'}, 'phase_two_encoder'),
    ({'phase_two_encoder': ' , '}, 'phase_two_encoder'),
    ({'phase_two_min_accuracy': 1.5}, 'phase_two_min_accuracy'),
    ({'serving_check': 'docker'}, 'serving_check'),
    ({'phase_one_recall': 1.0}, 'phase_one_recall'),
    ({'vertex_endpoint': 'e'}, "vertex_endpoint 'e' deploys from a gs://"),
])
def test_bad_settings_are_refused_by_name(overrides, setting):
  with pytest.raises(config_lib.ConfigError, match=setting):
    config_lib.PipelineConfig(**overrides)


def test_command_line_overrides_reach_the_config(tmp_path):
  args = cli.build_parser().parse_args([
      'run', '--workspace', str(tmp_path), '--train-steps', '7',
      '--class-names', 'dog, cat', '--min-auc', '0.5', '--augment', 'false',
      '--beam-args=--direct_num_workers=2,--direct_running_mode=in_memory'])
  config = arguments.config_from_args(args)
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


def _config(argv):
  return arguments.config_from_args(cli.build_parser().parse_args(argv))


def test_a_settings_file_is_read_and_flags_override_it(tmp_path):
  settings = tmp_path / 'retrain.toml'
  settings.write_text(
      'train_steps = 120\n'
      'min-auc = 0.75\n'
      'class_names = ["dog", "cat"]\n'
      'augment = false\n'
      'beam_args = "--direct_num_workers=2"\n'
      'workspace = "ws"\n')
  config = _config(['run', '--config', str(settings), '--train-steps', '7'])
  assert config.train_steps == 7  # the flag wins
  assert config.min_auc == 0.75
  assert config.class_names == ('dog', 'cat')
  assert config.augment is False
  assert config.beam_args == ('--direct_num_workers=2',)
  # Relative paths are taken from the file's folder, not the current one.
  assert config.workspace == str(tmp_path / 'ws')
  assert config.batch_size == config_lib.PipelineConfig.batch_size


def test_bucket_uris_stay_as_given_in_flags_and_settings_files(tmp_path):
  settings = tmp_path / 'shared.toml'
  settings.write_text('pipeline_root = "gs://team-bucket/tfx"\n'
                      'data_root = "data"\n')
  config = _config(['run', '--config', str(settings), '--push-destination',
                    's3://team-bucket/models', '--workspace', str(tmp_path)])
  assert config.pipeline_root == 'gs://team-bucket/tfx'
  assert config.push_destination == 's3://team-bucket/models'
  assert config.data_root == str(tmp_path / 'data')  # local: from the file


def test_a_bucket_workspace_is_refused_naming_what_may_be_on_a_bucket():
  with pytest.raises(config_lib.ConfigError,
                     match='workspace must be a local folder.*--data-root'):
    config_lib.PipelineConfig(workspace='s3://team-bucket/ws')


@pytest.mark.parametrize('text, message', [
    ('train_stpes = 3\n', "unknown setting 'train_stpes'"),
    ('train_steps = "many"\n', "'train_steps' must be int"),
    ('augment = "no"\n', "'augment' must be true or false"),
    ('min_auc = true\n', "'min_auc' must be float"),
    ('train_steps = [\n', 'not valid TOML'),
])
def test_a_bad_settings_file_is_named_with_the_setting(tmp_path, text,
                                                         message):
  settings = tmp_path / 'bad.toml'
  settings.write_text(text)
  with pytest.raises(config_lib.ConfigError, match=message) as error:
    _config(['run', '--config', str(settings)])
  assert 'bad.toml' in str(error.value)


def test_help_shows_every_setting_with_its_meaning(capsys):
  with pytest.raises(SystemExit):
    cli.build_parser().parse_args(['run', '--help'])
  text = ' '.join(capsys.readouterr().out.split())
  for field in dataclasses.fields(config_lib.PipelineConfig):
    name, meaning = field.name, field.metadata['help']
    assert '--' + name.replace('_', '-') in text
    assert ' '.join(meaning.split()) in text
  assert '--augment true|false' in text


def test_abbreviated_flags_are_refused_and_named(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.build_parser().parse_args(['run', '--push', '/tmp/x'])
  assert exit_info.value.code == 2
  assert 'unrecognized arguments: --push' in capsys.readouterr().err


def test_every_setting_can_be_given_on_the_command_line():
  parser = cli.build_parser()
  flags = {action.dest for action in
           parser._subparsers._group_actions[0].choices['run']._actions}
  assert {field.name for field in dataclasses.fields(
      config_lib.PipelineConfig)} <= flags


_HEAVY = ('tensorflow', 'tfx', 'apache_beam', 'tensorflow_model_analysis',
          'tensorflow_transform', 'tensorflow_data_validation')


def _heavy_modules_loaded_by(argv):
  """Runs the CLI in a fresh interpreter; returns the heavy packages it
  imported and its exit code."""
  code = ('import json, sys\n'
          'from pipeline.cli import commands as cli\n'
          'try:\n'
          f'  code = cli.main({argv!r})\n'
          'except SystemExit as e:\n'
          '  code = e.code\n'
          f'heavy = sorted({{m.split(".")[0] for m in sys.modules}} & '
          f'set({_HEAVY!r}))\n'
          'print(json.dumps([heavy, code]))')
  out = subprocess.run([sys.executable, '-c', code], cwd=config_lib.REPO_ROOT,
                       capture_output=True, text=True, check=True).stdout
  return json.loads(out.splitlines()[-1])


def test_help_inspect_and_an_idle_tick_start_without_tensorflow(tmp_path):
  workspace = tmp_path / 'ws'
  write_image(str(tmp_path / 'src' / 'not_instrument' / 'a.png'), seed=1)
  write_image(str(tmp_path / 'src' / 'instrument' / 'b.png'), seed=2)
  config = config_lib.PipelineConfig(workspace=str(workspace))
  ingest.ingest(str(tmp_path / 'src'), config.data_root, progress=False)
  state.write_state(config.workspace, {'span': 1})
  open(config.metadata_path, 'w').close()
  mlmd.open_store(config.metadata_url())
  for argv in (['synth', '--help'], ['run', '--help'],
               ['inspect', 'runs', '--workspace', str(workspace)],
               ['inspect', 'artifacts', '--workspace', str(workspace)],
               ['schedule', '--once', '--workspace', str(workspace)]):
    assert _heavy_modules_loaded_by(argv) == [[], 0], argv


def test_every_setting_is_in_one_section_and_the_help_lists_them_so(capsys):
  names = [field.name
           for field in dataclasses.fields(config_lib.PipelineConfig)]
  listed = [name for section in config_lib.SECTIONS.values()
            for name in section]
  assert sorted(listed) == sorted(names)
  with pytest.raises(SystemExit):
    cli.main(['run', '--help'])
  text = capsys.readouterr().out
  at = [text.index(f'settings: {section}:')
        for section in config_lib.SECTIONS]
  assert at == sorted(at)
  push = list(config_lib.SECTIONS).index('push and device budget')
  push_part = text[at[push]:at[push + 1]]
  assert '--max-arena-bytes' in push_part and '--train-steps' not in push_part


def test_each_section_reaches_its_consumer_as_one_typed_value(tmp_path):
  config = config_lib.PipelineConfig(
      workspace=str(tmp_path), quantization='int8', max_latency_ms=2.5,
      model_width=0.5, beam_args=('--a=1',), sample_rate=22050)
  push = config.push_settings()
  assert (push.quantization, push.budget.max_latency_ms) == ('int8', 2.5)
  assert push.push_destination == config.push_destination
  assert config.training_settings().width == 0.5
  assert config.search_settings().budget == push.budget
  assert config.beam_settings().pipeline_args() == ['--a=1']
  assert config.front_end().sample_rate == 22050


def test_phase_two_hears_through_the_named_models_or_learns_from_pictures():
  assert config_lib.PipelineConfig().phase_two_settings().encoder == (
      'MSD_musicnn', 'MTT_musicnn')
  assert config_lib.PipelineConfig(
      phase_two_encoder=' MTT_musicnn ').phase_two_settings().encoder == (
          'MTT_musicnn',)
  pictures = config_lib.PipelineConfig(phase_two_encoder='pictures')
  assert pictures.phase_two_settings().encoder == ()
  assert pictures.training_settings().encoder == ()
