"""The settings file (`--config FILE`, TOML): each key a setting of
:class:`~pipeline.settings.config.PipelineConfig`, checked against the
field's type, the file and key named in every error."""

import dataclasses
import os
from typing import Any, Dict, Tuple

from components.common import storage

from pipeline.settings import config as config_lib
from pipeline.settings.config import ConfigError


def parse_list(text: str) -> Tuple[str, ...]:
  """A comma-separated list, as flags and settings files write one."""
  return tuple(part.strip() for part in text.split(',') if part.strip())


def load_settings_file(path: str) -> Dict[str, Any]:
  """Reads a local TOML settings file into {setting: value}, checked by
  name.

  Names may be written with `_` or `-`; lists may be TOML arrays or
  comma-separated strings; relative paths are taken from the file's folder.

  Args:
    path: the file.

  Returns:
    The settings it holds, converted to the fields' types.

  Raises:
    ConfigError: for an unreadable file, an unknown name or a value of the
      wrong type, naming the file and the setting.
  """
  import tomli  # pylint: disable=g-import-not-at-top
  try:
    with open(path, 'rb') as f:
      raw = tomli.load(f)
  except OSError as e:
    raise ConfigError(f'cannot read settings file {path}: {e.strerror}') from e
  except tomli.TOMLDecodeError as e:
    raise ConfigError(f'settings file {path} is not valid TOML: {e}') from e
  fields = {field.name: field for field in dataclasses.fields(config_lib.PipelineConfig)}
  settings = {}
  for key, value in raw.items():
    name = key.replace('-', '_')
    if name not in fields:
      raise ConfigError(f'{path}: unknown setting {key!r} (see `python -m '
                        'pipeline run --help` for the settings)')
    value = _typed(path, key, value, fields[name].default)
    if value and (name in config_lib.PATH_SETTINGS or name == 'metadata') and (
        not storage.is_uri(value)):
      # Relative to the file, so a crontab's working folder does not matter.
      value = os.path.join(os.path.dirname(os.path.abspath(path)),
                           os.path.expanduser(value))
    settings[name] = value
  return settings


def _typed(path: str, key: str, value: Any, default: Any) -> Any:
  """`value` from a settings file as the type of `default`."""
  expected = type(default).__name__
  if isinstance(default, tuple):
    if isinstance(value, str):
      return parse_list(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
      return tuple(value)
    expected = 'a list of strings'
  elif isinstance(default, bool):
    if isinstance(value, bool):
      return value
    expected = 'true or false'
  elif isinstance(default, float):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      return float(value)
  elif isinstance(value, type(default)) and not isinstance(value, bool):
    return value
  raise ConfigError(f'{path}: setting {key!r} must be {expected}, got '
                    f'{value!r}')
