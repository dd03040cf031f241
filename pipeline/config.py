"""The one typed configuration of the pipeline and its command line.

Every setting has a default here and can be overridden from the command line
(`--train-steps 300`, `--class-names a,b`, ...). Paths default to folders of
one workspace, so two workspaces never mix. Nothing is read at import: a
:class:`PipelineConfig` is built explicitly and validated on creation.
"""

import argparse
import dataclasses
import os
from typing import Any, Dict, List, Optional, Tuple

from components.modules import features
from components.tflite_pusher import conversion
from pipeline import ingest

_FILE_LIMITS = ingest.FileLimits()

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_WORKSPACE = os.path.join(REPO_ROOT, 'workspace')
SCHEMA_DIR = os.path.join(REPO_ROOT, 'schema')
MODULES_DIR = os.path.join(REPO_ROOT, 'components', 'modules')
TRANSFORM_MODULE_FILE = os.path.join(MODULES_DIR, 'transform.py')
TRAINER_MODULE_FILE = os.path.join(MODULES_DIR, 'trainer.py')

DEFAULT_BEAM_ARGS = ('--direct_running_mode=in_memory',
                     '--direct_num_workers=1')


class ConfigError(ValueError):
  """Raised for a setting outside its allowed values; names the setting."""


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Every setting of the pipeline.

  Paths left empty are derived from `workspace`: `data/` (ingested spans),
  `tfx/` (pipeline root), `metadata.sqlite` (ML Metadata), `pushed/`
  (TFLite models for devices).

  Attributes:
    workspace: folder holding everything one pipeline produces.
    pipeline_name: name recorded in ML Metadata.
    data_root: folder of `span-N/` subfolders written by `ingest`.
    pipeline_root: TFX pipeline root (artifacts).
    metadata_path: SQLite file of the ML Metadata store.
    push_destination: where the TFLite pusher writes model versions.
    schema_dir: folder holding the curated `schema.pbtxt`.
    class_names: the two class folder names, label 0 first.
    image_size: side of the model's square input, in pixels.
    channels: 3 for RGB input, 1 for grayscale.
    window_spans: train and evaluate on the latest this many spans.
    max_side: images with a larger side are shrunk to it at ingestion.
    max_image_pixels: images declaring more pixels (width x height) are
      skipped by `ingest` and refused by `predict`, from their header,
      before any pixel is decoded.
    max_clip_seconds: WAV clips longer than this are skipped by `ingest`
      and refused by `predict`, before their samples are read.
    warm_start: start training from the weights of the latest blessed model
      (when its architecture matches).
    train_steps: training steps (batches).
    eval_steps: evaluation batches used for validation during training
      (0: the whole eval split).
    batch_size: training batch size.
    learning_rate: peak learning rate (cosine decay over `train_steps`).
    model_width: multiplier on the CNN's filter counts.
    seed: random seed of training.
    augment: randomly shift spectrograms in time and mask a time and a mel
      band while training; turn off for images that are not spectrograms.
    eval_buckets: hash buckets of the eval split, out of
      `train_buckets + eval_buckets`.
    train_buckets: hash buckets of the train split.
    min_class_share: stop before training when a class is a smaller share
      of a split than this (a drifted label distribution); 0 turns it off.
    min_auc: absolute lower bound on eval AUC for a blessing.
    min_accuracy: absolute lower bound on eval binary accuracy.
    max_auc_drop: largest allowed drop of AUC from the latest blessed model.
    quantization: TFLite quantization mode: none, dynamic, float16 or int8.
    max_accuracy_drop: largest allowed accuracy drop from the SavedModel to
      the TFLite model on the eval split (0.01 = one point); a larger drop
      stops the push.
    representative_examples: training examples that calibrate int8.
    latency_runs: invokes timed for the TFLite model's median latency.
    beam_args: Apache Beam pipeline arguments.
    enable_cache: reuse component outputs whose inputs did not change.
  """
  workspace: str = DEFAULT_WORKSPACE
  pipeline_name: str = 'on_device_classifier'
  data_root: str = ''
  pipeline_root: str = ''
  metadata_path: str = ''
  push_destination: str = ''
  schema_dir: str = SCHEMA_DIR
  class_names: Tuple[str, ...] = features.DEFAULT_CLASS_NAMES
  image_size: int = features.DEFAULT_IMAGE_SIZE
  channels: int = features.DEFAULT_CHANNELS
  max_side: int = _FILE_LIMITS.max_side
  max_image_pixels: int = _FILE_LIMITS.max_pixels
  max_clip_seconds: float = _FILE_LIMITS.max_clip_seconds
  window_spans: int = 3
  warm_start: bool = False
  train_steps: int = 500
  eval_steps: int = 0
  batch_size: int = 32
  learning_rate: float = 2e-3
  model_width: float = 1.0
  seed: int = 0
  augment: bool = True
  train_buckets: int = 4
  eval_buckets: int = 1
  min_class_share: float = 0.05
  min_auc: float = 0.9
  min_accuracy: float = 0.8
  max_auc_drop: float = 0.01
  quantization: str = 'dynamic'
  max_accuracy_drop: float = 0.01
  representative_examples: int = 300
  latency_runs: int = 50
  beam_args: Tuple[str, ...] = DEFAULT_BEAM_ARGS
  enable_cache: bool = True

  def __post_init__(self):
    workspace = os.path.abspath(self.workspace)
    object.__setattr__(self, 'workspace', workspace)
    for name, default in (('data_root', 'data'), ('pipeline_root', 'tfx'),
                          ('metadata_path', 'metadata.sqlite'),
                          ('push_destination', 'pushed')):
      value = getattr(self, name) or os.path.join(workspace, default)
      object.__setattr__(self, name, os.path.abspath(value))
    object.__setattr__(self, 'class_names', tuple(self.class_names))
    object.__setattr__(self, 'beam_args', tuple(self.beam_args))
    self._validate()

  def _validate(self) -> None:
    if len(self.class_names) != 2 or len(set(self.class_names)) != 2 or not all(
        name.strip() and '/' not in name for name in self.class_names):
      raise ConfigError(
          'class_names must be two different folder names (label 0 first), '
          f'got {list(self.class_names)}')
    if self.channels not in (1, 3):
      raise ConfigError(f'channels must be 1 or 3, got {self.channels}')
    if not 16 <= self.image_size <= 1024:
      raise ConfigError(
          f'image_size must be between 16 and 1024, got {self.image_size}')
    for name in ('train_steps', 'batch_size', 'train_buckets',
                 'eval_buckets', 'window_spans', 'max_side',
                 'max_image_pixels'):
      if getattr(self, name) < 1:
        raise ConfigError(f'{name} must be at least 1, got '
                          f'{getattr(self, name)}')
    if not self.max_clip_seconds > 0:
      raise ConfigError('max_clip_seconds must be positive, got '
                        f'{self.max_clip_seconds}')
    if self.eval_steps < 0:
      raise ConfigError(f'eval_steps must be 0 or more, got {self.eval_steps}')
    if not 0.0 <= self.min_class_share <= 0.5:
      raise ConfigError('min_class_share must be between 0 and 0.5, got '
                        f'{self.min_class_share}')
    for name in ('min_auc', 'min_accuracy', 'max_auc_drop'):
      value = getattr(self, name)
      if not 0.0 <= value <= 1.0:
        raise ConfigError(f'{name} must be between 0 and 1, got {value}')
    if self.quantization not in conversion.QUANTIZATION_MODES:
      raise ConfigError(
          f'quantization must be one of '
          f'{", ".join(conversion.QUANTIZATION_MODES)}, got '
          f'{self.quantization!r}')
    if not -1.0 <= self.max_accuracy_drop <= 1.0:
      raise ConfigError('max_accuracy_drop must be between -1 and 1, got '
                        f'{self.max_accuracy_drop}')
    for name in ('representative_examples', 'latency_runs'):
      if getattr(self, name) < 1:
        raise ConfigError(f'{name} must be at least 1, got '
                          f'{getattr(self, name)}')
    if not 0.0 < self.learning_rate < 1.0:
      raise ConfigError(
          f'learning_rate must be in (0, 1), got {self.learning_rate}')
    if self.model_width <= 0:
      raise ConfigError(f'model_width must be positive, got {self.model_width}')

  @property
  def schema_path(self) -> str:
    """The curated schema file inside `schema_dir`."""
    return os.path.join(self.schema_dir, 'schema.pbtxt')

  def file_limits(self) -> ingest.FileLimits:
    """The limits `ingest` and `predict` read every source file within."""
    return ingest.FileLimits(max_side=self.max_side,
                             max_pixels=self.max_image_pixels,
                             max_clip_seconds=self.max_clip_seconds)

  def module_custom_config(self) -> Dict[str, Any]:
    """Settings passed to the Transform and Trainer module code."""
    return {
        'image_size': self.image_size,
        'channels': self.channels,
        'batch_size': self.batch_size,
        'learning_rate': self.learning_rate,
        'width': self.model_width,
        'seed': self.seed,
        'augment': self.augment,
        'warm_start': self.warm_start,
        'class_names': list(self.class_names),
    }


def _flag(name: str) -> str:
  return '--' + name.replace('_', '-')


def _parse_list(text: str) -> Tuple[str, ...]:
  return tuple(part.strip() for part in text.split(',') if part.strip())


def _parse_bool(text: str) -> bool:
  lowered = text.strip().lower()
  if lowered in ('1', 'true', 'yes', 'on'):
    return True
  if lowered in ('0', 'false', 'no', 'off'):
    return False
  raise argparse.ArgumentTypeError(f'expected true or false, got {text!r}')


_HIDDEN_FROM_CLI = ('workspace',)


def add_config_arguments(parser: argparse.ArgumentParser,
                         only: Optional[List[str]] = None) -> None:
  """Adds one `--option` per configuration field to `parser`.

  Every option defaults to None, meaning "keep the configuration's default",
  so :func:`config_from_args` can tell a given option from an omitted one.

  Args:
    parser: the parser of one command.
    only: restrict to these field names (all fields when None).
  """
  parser.add_argument('--workspace', default=DEFAULT_WORKSPACE,
                      help='folder holding the spans, pipeline root, ML '
                      'Metadata store and pushed models (default: %(default)s)')
  group = parser.add_argument_group('pipeline settings')
  for field in dataclasses.fields(PipelineConfig):
    if field.name in _HIDDEN_FROM_CLI or (only and field.name not in only):
      continue
    default = field.default
    if field.type in ('Tuple[str, ...]',) or isinstance(default, tuple):
      kind, shown = _parse_list, ','.join(default)
    elif isinstance(default, bool):
      kind, shown = _parse_bool, str(default).lower()
    else:
      kind, shown = type(default), default
    if field.name in ('data_root', 'pipeline_root', 'metadata_path',
                      'push_destination'):
      shown = 'inside the workspace'
    elif field.name == 'beam_args':
      shown = f'{shown}; write --beam-args=--flag=value,--flag2=value'
    group.add_argument(_flag(field.name), dest=field.name, type=kind,
                       default=None, metavar=field.name.upper(),
                       help=f'(default: {shown})')


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
  """Builds a validated configuration from parsed command-line options.

  Args:
    args: options parsed by a parser set up with :func:`add_config_arguments`.

  Returns:
    The configuration, defaults filled in.

  Raises:
    ConfigError: naming the first setting outside its allowed values.
  """
  overrides = {}
  for field in dataclasses.fields(PipelineConfig):
    value = getattr(args, field.name, None)
    if value is not None:
      overrides[field.name] = value
  return PipelineConfig(**overrides)
