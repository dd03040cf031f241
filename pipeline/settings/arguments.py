"""The command line's settings: one flag per field of
:class:`~pipeline.settings.config.PipelineConfig`, with its meaning and
default as help, and the config built from flags over a settings file."""

import argparse
import dataclasses
from typing import Any, List, Optional

from components import tflite
from pipeline.settings import beam_profiles
from pipeline.settings import config as config_lib
from pipeline.settings import files


def _parse_bool(text: str) -> bool:
  lowered = text.strip().lower()
  if lowered in ('1', 'true', 'yes', 'on'):
    return True
  if lowered in ('0', 'false', 'no', 'off'):
    return False
  raise argparse.ArgumentTypeError(f'expected true or false, got {text!r}')


def _shown_default(name: str, default: Any) -> str:
  if name in config_lib.WORKSPACE_PATHS or name == 'metadata':
    return ''  # The meaning says where in the workspace.
  if isinstance(default, tuple):
    return f' (default: {",".join(default) or "none"})'
  if isinstance(default, bool):
    return f' (default: {str(default).lower()})'
  return f' (default: {default})'


def add_config_arguments(parser: argparse.ArgumentParser,
                         only: Optional[List[str]] = None) -> None:
  """Adds `--debug`, `--config FILE` and one `--option` per setting.

  Every option defaults to None, meaning "keep the file's value or the
  configuration's default", so :func:`config_from_args` can tell a given
  option from an omitted one. Booleans take `true` or `false`.

  Args:
    parser: the parser of one command.
    only: restrict to these field names (all fields when None);
      `workspace` is always there.
  """
  parser.add_argument(
      '--debug', action='store_true',
      help='print the traceback of an unexpected error on the console (it '
      'is always written to a log file in WORKSPACE/logs/)')
  parser.add_argument(
      '--config', metavar='FILE',
      help='TOML file of settings (names as below, e.g. train_steps = 300); '
      'flags given here override it')
  fields = {field.name: field
            for field in dataclasses.fields(config_lib.PipelineConfig)}
  for section, names in config_lib.SECTIONS.items():
    chosen = [name for name in names
              if not only or name in only or name == 'workspace']
    if chosen:
      _add_section(parser.add_argument_group(f'settings: {section}'),
                   [fields[name] for name in chosen])


def _add_section(group, fields) -> None:
  """One flag per setting of a section, in `group`."""
  for field in fields:
    default = field.default
    if isinstance(default, tuple):
      kind = files.parse_list
      metavar = 'FEATURE=X,...' if field.name == 'drift_thresholds' else 'A,B'
    elif isinstance(default, bool):
      kind, metavar = _parse_bool, 'true|false'
    elif field.name == 'quantization':
      kind, metavar = str, '|'.join(tflite.QUANTIZATION_MODES)
    elif field.name == 'beam':
      kind, metavar = str, '|'.join(beam_profiles.PROFILES)
    else:
      kind = type(default)
      metavar = {int: 'N', float: 'X'}.get(kind) or (
          'PATH' if field.name in config_lib.PATH_SETTINGS else
          'URL' if field.name == 'metadata' else 'NAME')
    group.add_argument(
        config_lib.flag(field.name), dest=field.name, type=kind, default=None,
        metavar=metavar,
        help=field.metadata['help'] + _shown_default(field.name, default))


def config_from_args(args: argparse.Namespace) -> config_lib.PipelineConfig:
  """Builds a validated configuration: defaults < settings file < flags.

  Args:
    args: options parsed by a parser set up with :func:`add_config_arguments`.

  Returns:
    The configuration, defaults filled in.

  Raises:
    ConfigError: naming a bad settings file entry, or the first setting
      outside its allowed values.
  """
  settings = {}
  if getattr(args, 'config', None):
    settings.update(files.load_settings_file(args.config))
  for field in dataclasses.fields(config_lib.PipelineConfig):
    value = getattr(args, field.name, None)
    if value is not None:
      settings[field.name] = value
  return config_lib.PipelineConfig(**settings)
