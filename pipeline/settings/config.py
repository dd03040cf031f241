"""The one typed configuration of the pipeline.

Every setting lives once, as a field of :class:`PipelineConfig` with its
default and its meaning (the field's `help`). The command line
(:mod:`pipeline.settings.arguments`), the settings file
(:mod:`pipeline.settings.files`) and the help text are all made from those
fields; flags override the file, the file overrides the defaults. Paths
default to folders of one workspace, so two workspaces never mix. Nothing is
read at import: a :class:`PipelineConfig` is built explicitly and validated
on creation.
"""

import dataclasses
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from components.common import storage
from components import tflite
from components.tflite import budget
from components.modules import features
from components.modules import model_defaults
from components.modules.search_settings import SearchSettings
from components.modules.settings import TrainingSettings
from components.tflite_pusher.settings import PushSettings
from pipeline.settings import beam_profiles
from pipeline.data import decode
from components import frontend
from components.frontend import windowing
from pipeline.settings import metadata_url
from components.cascade import figures
from components.common import errors
from components import serving_check as serving_check_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DEFAULT_WORKSPACE = os.path.join(REPO_ROOT, 'workspace')
SCHEMA_DIR = os.path.join(REPO_ROOT, 'schema')
MODULES_DIR = os.path.join(REPO_ROOT, 'components', 'modules')

_FILE_LIMITS = decode.FileLimits()
_GATE = figures.Gate()
_FRONT_END = frontend.FrontEnd()
# `phase_two_encoder`'s value for phase two learning from the pictures.
PICTURES = 'pictures'
# FrontEnd's field names in its messages, as the settings that set them.
_FRONT_END_SETTINGS = {'window_seconds': 'clip_window_seconds',
                       'hop_seconds': 'clip_hop_seconds',
                       'max_windows': 'max_windows_per_clip'}
# Path settings whose empty default means "this folder of the workspace".
WORKSPACE_PATHS = {'data_root': 'data', 'pipeline_root': 'tfx',
                    'push_destination': 'pushed',
                    'serving_destination': 'served'}
PATH_SETTINGS = ('workspace', 'schema_dir') + tuple(WORKSPACE_PATHS)
SERVING_CHECKS = serving_check_lib.SERVERS
# The SQLite store of a workspace, when `metadata` names no other store.
METADATA_FILE = 'metadata.sqlite'


# The settings in sections, each owned by its consumer and reaching it as
# one typed value: the data and front end (`front_end()`, `file_limits()`),
# training and the search (`training_settings()`, `search_settings()`),
# the push and the device budget (`push_settings()`), the run and Beam
# (`beam_settings()`). The command line's help lists them so.
SECTIONS = {
    'workspace and stores': (
        'workspace', 'pipeline_name', 'data_root', 'pipeline_root',
        'metadata', 'push_destination', 'serving_destination',
        'schema_dir'),
    'data and front end': (
        'class_names', 'image_size', 'channels', 'max_side',
        'max_image_pixels', 'max_clip_seconds', 'sample_rate',
        'clip_window_seconds', 'clip_hop_seconds', 'max_windows_per_clip',
        'fft_size', 'mel_min_hz', 'mel_max_hz', 'top_db', 'colormap',
        'proof_windows', 'keep_window_samples', 'window_spans', 'train_buckets', 'eval_buckets',
        'min_class_share', 'drift_thresholds'),
    'training and search': (
        'warm_start', 'train_steps', 'eval_steps', 'batch_size',
        'learning_rate', 'model_width', 'seed', 'augment', 'tune',
        'tune_trials', 'tune_steps'),
    'evaluation': ('min_auc', 'min_accuracy', 'max_auc_drop'),
    'phase two (the cloud model)': (
        'phase_two_steps', 'phase_two_encoder', 'phase_two_head_steps',
        'phase_two_width',
        'phase_two_min_family_recall', 'phase_two_min_reject_recall',
        'phase_two_max_recall_drop', 'phase_two_min_accuracy',
        'phase_two_max_accuracy_drop', 'served_model_name', 'serving_check',
        'vertex_endpoint', 'vertex_machine_type'),
    'the cascade (both phases judged together)': (
        'cascade_max_loss_vs_cloud', 'cascade_max_cloud_share',
        'cascade_max_accuracy_drop'),
    'push and device budget': (
        'quantization', 'phase_one_recall', 'max_accuracy_drop',
        'representative_examples',
        'validation_examples', 'latency_runs', 'max_tflite_bytes',
        'max_latency_ms', 'max_arena_bytes', 'micro_examples'),
    'run and Beam': ('beam', 'beam_args', 'gcp_project', 'region',
                     'temp_location', 'image', 'enable_cache'),
}


class ConfigError(errors.PipelineError, ValueError):
  """Raised for a setting outside its allowed values; names the setting."""


def _setting(default: Any, meaning: str) -> Any:
  return dataclasses.field(default=default, metadata={'help': meaning})


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Every setting of the pipeline.

  Each field's default is here and its meaning is its `help` metadata (what
  `python -m pipeline run --help` shows); :func:`describe` lists both. Paths
  left empty are derived from `workspace`.
  """
  workspace: str = _setting(
      DEFAULT_WORKSPACE, 'folder holding the spans, pipeline root, ML '
      'Metadata store and pushed models of one pipeline')
  pipeline_name: str = _setting('on_device_classifier',
                                'name of the pipeline in ML Metadata')
  data_root: str = _setting('', 'folder of the span-N/ folders written by '
                            '`ingest` (default: WORKSPACE/data)')
  pipeline_root: str = _setting('', 'TFX pipeline root, where artifacts are '
                                'written (default: WORKSPACE/tfx)')
  metadata: str = _setting(
      '', 'the ML Metadata store: sqlite:///PATH (or a file path), '
      'mysql://USER@HOST[:PORT]/DATABASE (MySQL or MariaDB) or '
      'postgresql://USER@HOST[:PORT]/DATABASE; the password may follow USER '
      f'as USER:PASSWORD or come from ${metadata_url.PASSWORD_ENV} '
      f'(default: WORKSPACE/{METADATA_FILE})')
  push_destination: str = _setting(
      '', 'folder receiving the numbered TFLite model versions (default: '
      'WORKSPACE/pushed)')
  serving_destination: str = _setting(
      '', 'folder or bucket receiving the cloud model (phase two) as '
      'numbered versions under <name>/, the layout TensorFlow Serving and '
      'KServe read (default: WORKSPACE/served)')
  schema_dir: str = _setting(SCHEMA_DIR,
                             'folder holding the curated schema.pbtxt')
  class_names: Tuple[str, ...] = _setting(
      features.DEFAULT_CLASS_NAMES,
      'the two class folder names, label 0 first, comma-separated')
  image_size: int = _setting(features.DEFAULT_IMAGE_SIZE,
                             "side of the model's square input, in pixels "
                             '(and of spectrograms rendered from WAV clips)')
  channels: int = _setting(features.DEFAULT_CHANNELS,
                           '3 for RGB input, 1 for grayscale')
  max_side: int = _setting(_FILE_LIMITS.max_side,
                           'images with a larger side are shrunk to it '
                           'before they are stored')
  max_image_pixels: int = _setting(
      _FILE_LIMITS.max_pixels, 'images declaring more pixels (width x '
      'height) are refused from their header, before any pixel is decoded '
      '(ingest and predict)')
  max_clip_seconds: float = _setting(
      _FILE_LIMITS.max_clip_seconds, 'WAV clips longer than this are refused '
      'from their header, before their samples are read (ingest and '
      'predict)')
  # The audio front end (components/frontend/): how `ingest` and
  # `predict` turn a recording into the model's images. Recorded with each
  # span and in each pushed manifest; a run refuses a window of spans drawn
  # with different front ends.
  sample_rate: int = _setting(_FRONT_END.sample_rate, 'every recording is '
                              'downmixed to mono and resampled to this rate '
                              '(Hz) before its spectrogram is drawn')
  clip_window_seconds: float = _setting(
      _FRONT_END.window_seconds, 'seconds of audio in one spectrogram image; '
      'shorter clips are padded with silence at the end, longer ones cut '
      'into windows')
  clip_hop_seconds: float = _setting(
      _FRONT_END.hop_seconds, 'seconds between the starts of consecutive '
      'windows of a recording')
  max_windows_per_clip: int = _setting(
      _FRONT_END.max_windows, 'at most this many windows of one recording '
      'become examples, evenly spaced over it (0: all)')
  fft_size: int = _setting(_FRONT_END.fft_size, 'samples per analysis frame '
                           'of the spectrogram (a power of two)')
  mel_min_hz: float = _setting(_FRONT_END.mel_min_hz, 'lowest frequency of '
                               'the mel bands')
  mel_max_hz: float = _setting(_FRONT_END.mel_max_hz, 'highest frequency of '
                               'the mel bands (0: half the sample rate)')
  top_db: float = _setting(_FRONT_END.top_db, 'dB below the window\'s peak '
                           'drawn as the darkest colour')
  colormap: str = _setting(_FRONT_END.colormap, 'colour map of the '
                           'spectrogram images: magma or gray')
  proof_windows: int = _setting(
      windowing.PROOF_WINDOWS, 'recordings per span whose first window '
      'keeps its samples (16-bit PCM, in the examples) so the pusher can '
      'prove the waveform model on the eval split\'s (0: none; the proof '
      'then uses test signals only)')
  keep_window_samples: bool = _setting(
      True, 'every window of a recording keeps its samples (16-bit PCM, '
      '32 KB a window at 16 kHz) beside its picture, so phase two hears '
      'the window itself; off: only the proof windows keep them and phase '
      'two learns from the pictures')
  window_spans: int = _setting(3, 'train and evaluate on the latest this '
                               'many spans')
  warm_start: bool = _setting(False, 'start training from the weights of '
                              'the latest blessed model (when its '
                              'architecture matches)')
  # 2000: on the default data, a third sample set no run trains on
  # (OPL-3 FM, 300 clips) scored 0.933 at 500 steps and 0.950 at 2000;
  # held out by soundfont and voice (bench part 14's split) 0.903 at 500,
  # 0.927 at 1000, 0.933 at 1500 and 0.943 at 2000.
  train_steps: int = _setting(2000, 'training steps (batches)')
  eval_steps: int = _setting(0, 'evaluation batches used for validation '
                             'while training (0: the whole eval split)')
  batch_size: int = _setting(32, 'training batch size')
  learning_rate: float = _setting(2e-3, 'peak learning rate (cosine decay '
                                  'over the training steps)')
  model_width: float = _setting(
      model_defaults.DEFAULT_WIDTH, "multiplier on the CNN's filter counts "
      '(0.25 to 1; the default follows a measured rule: see '
      'bench/RESULTS.md, "Width study"; 0.5 is a third of the bytes and '
      'latency at the same AUC and about a point less accuracy)')
  seed: int = _setting(0, 'random seed of training')
  augment: bool = _setting(True, 'randomly shift spectrograms in time and '
                           'mask a time and a mel band while training; turn '
                           'off for images that are not spectrograms')
  train_buckets: int = _setting(4, 'hash buckets of the train split')
  eval_buckets: int = _setting(1, 'hash buckets of the eval split, out of '
                               'train + eval buckets')
  min_class_share: float = _setting(
      0.05, 'stop before training when a class is a smaller share of a '
      'split than this (a drifted label distribution); 0 turns it off')
  drift_thresholds: Tuple[str, ...] = _setting(
      (), "override the schema's drift thresholds between a new span and the "
      'last accepted one, as FEATURE=X (L-infinity for the label, '
      'Jensen-Shannon for the image summaries, both 0 to 1); *=X sets every '
      'feature, X=1 turns a check off')
  min_auc: float = _setting(0.9, 'lowest eval AUC a model may have to be '
                            'blessed')
  min_accuracy: float = _setting(0.8, 'lowest eval binary accuracy a model '
                                 'may have to be blessed')
  max_auc_drop: float = _setting(0.01, 'largest allowed drop of AUC from '
                                 'the latest blessed model')
  phase_two_steps: int = _setting(
      500, "phase two's training steps (batches); phase two trains when "
      "the window's spans give families (instrument/<family>/ folders)")
  phase_two_encoder: str = _setting(
      'MSD_musicnn,MTT_musicnn', "the pretrained musicnn models phase two "
      "hears each window's samples through (comma-separated: MSD_musicnn, "
      "MTT_musicnn; frozen, a classifier learned on their pooled "
      "embedding), or 'pictures' to learn from the spectrograms with its "
      "own CNN, as spans of images and spans without samples always do")
  # 4000: 2,000 steps gave a mean family recall of 0.895 and 4,000 0.908 in
  # a pilot whose clips had twins in every sample set (flattered figures;
  # the default data give about 0.67); 4,000 cost 20 s in the default run.
  phase_two_head_steps: int = _setting(
      4000, "training steps of phase two's classifier on the musicnn "
      'embedding (phase_two_steps are the CNN\'s, when it learns from '
      'pictures)')
  phase_two_width: float = _setting(
      1.0, "multiplier on phase two's CNN filter counts (its size is "
      'bounded by the serving budget, not a device\'s)')
  phase_two_min_family_recall: float = _setting(
      0.5, "lowest mean recall over the families (each family's share of "
      'eval examples phase two names right, averaged) phase two may have '
      'to be blessed')
  phase_two_min_reject_recall: float = _setting(
      0.8, "lowest share of the eval split's non-instruments phase two "
      'rejects (what phase one wrongly flags) to be blessed')
  phase_two_max_recall_drop: float = _setting(
      0.02, "largest allowed drop of phase two's mean family recall, and of "
      'its reject recall, from its latest blessed model')
  phase_two_min_accuracy: float = _setting(
      0.6, "lowest eval accuracy over the families and the reject class "
      'phase two may have to be blessed')
  phase_two_max_accuracy_drop: float = _setting(
      0.02, "largest allowed drop of phase two's eval accuracy from its "
      'latest blessed model')
  served_model_name: str = _setting(
      'instruments', 'the name phase two is served under '
      '(/v1/models/<name>:predict)')
  serving_check: str = _setting(
      'kserve', "where phase two's serving model is proved before its push: "
      "kserve (KServe's model server, from .venv-kserve, as InfraValidator "
      'proves a model in TF Serving) or in-process (the serving model '
      'against phase two\'s SavedModel only)')
  vertex_endpoint: str = _setting(
      '', 'a Vertex AI endpoint (display name) each pushed phase-two '
      'version is deployed to, served by --image\'s `serve` (needs a gs:// '
      'serving destination, --gcp-project and --region); empty: none')
  vertex_machine_type: str = _setting(
      'n1-standard-2', 'machine type of the Vertex AI endpoint\'s replica')
  cascade_max_loss_vs_cloud: float = _setting(
      _GATE.max_loss_vs_cloud, 'largest allowed gap, at 20 percent instruments, '
      "between sending every window to the cloud and the pair's end-to-end "
      'accuracy; a larger gap holds both phases back')
  cascade_max_cloud_share: float = _setting(
      _GATE.max_cloud_share, 'largest share of windows the pair may send to '
      'the cloud at 20 percent instruments; more holds both phases back')
  cascade_max_accuracy_drop: float = _setting(
      _GATE.max_accuracy_drop, "largest allowed drop of the pair's "
      "end-to-end accuracy (20 percent instruments) from the last pushed pair's, "
      'judged on the same eval examples; more holds both phases back')
  quantization: str = _setting(
      'dynamic', 'TFLite quantization: ' +
      ', '.join(tflite.QUANTIZATION_MODES))
  phase_one_recall: float = _setting(
      0.95, "recall phase one's threshold must hold on the eval split, "
      'proved with 0.95 confidence on the pushed TFLite model (the highest '
      'such threshold is chosen: an instrument phase one misses never '
      'reaches the cloud, and each false positive is a cloud request)')
  max_accuracy_drop: float = _setting(
      0.01, 'largest allowed accuracy drop from the SavedModel to the '
      'TFLite model on the eval sample (0.01 = one point); a larger drop '
      'stops the push')
  representative_examples: int = _setting(
      300, 'training examples that calibrate int8 quantization')
  validation_examples: int = _setting(
      2000, 'eval examples, a uniform sample, for the TFLite parity check '
      "(0: all); bounds the pusher's memory")
  latency_runs: int = _setting(50, "invokes timed for the TFLite model's "
                               'median latency')
  max_tflite_bytes: int = _setting(
      0, 'device budget: the largest TFLite file, in bytes; a larger model '
      'is not pushed (0: no limit)')
  max_latency_ms: float = _setting(
      0.0, 'device budget: the largest median latency of one image with one '
      'interpreter thread, in ms, timed on the machine that runs the '
      'pipeline as a proxy for the device; a slower model is not pushed '
      '(0: no limit)')
  max_arena_bytes: int = _setting(
      0, 'device budget: the largest TensorFlow Lite Micro tensor arena (the '
      'RAM a microcontroller sets aside), in bytes, measured by running the '
      'model in TFLM; a model needing more, or one TFLM cannot run, is not '
      'pushed (0: no limit; meant for --quantization int8)')
  micro_examples: int = _setting(
      50, 'eval images the pusher runs in TensorFlow Lite Micro (int8 mode, '
      'or with --max-arena-bytes) to compare its outputs with LiteRT\'s')
  tune: bool = _setting(False, 'search the model width, dropout and '
                        'learning rate before training (TFX Tuner), keeping '
                        'the most accurate trial within the device budget')
  tune_trials: int = _setting(6, 'trials of the model search (--tune)')
  tune_steps: int = _setting(150, 'training steps of each trial of the '
                             'model search (--tune)')
  beam: str = _setting(
      'local', 'where the Beam components run: local (in-process, one '
      'worker), multiprocess (a worker process per CPU), portable (a worker '
      'pool of separate SDK processes on this machine, as on Dataflow), '
      'dataflow (Google Cloud Dataflow; needs --gcp-project, --region, '
      '--temp-location, --image)')
  beam_args: Tuple[str, ...] = _setting(
      (), 'more Apache Beam pipeline arguments, after the --beam profile\'s, '
      'comma-separated; write --beam-args=--flag=value,--flag2=value')
  gcp_project: str = _setting('', 'Google Cloud project (--beam dataflow)')
  region: str = _setting('', 'Google Cloud region, e.g. europe-west4 '
                         '(--beam dataflow)')
  temp_location: str = _setting('', 'gs:// folder for Dataflow\'s temporary '
                                'files (--beam dataflow)')
  image: str = _setting('', 'the container image holding this project: '
                        "Dataflow's SDK container (--beam dataflow) and the "
                        'image of every task of a compiled pipeline')
  enable_cache: bool = _setting(True, 'reuse the outputs of components '
                                'whose inputs did not change')

  def __post_init__(self):
    for name in ('workspace', 'schema_dir'):
      if storage.is_uri(getattr(self, name)):
        raise ConfigError(
            f'{name} must be a local folder, got {getattr(self, name)}: the '
            'workspace holds the local SQLite store, logs, locks and '
            'reports; put --data-root, --pipeline-root and '
            '--push-destination on the bucket instead.')
    workspace = os.path.abspath(self.workspace)
    object.__setattr__(self, 'workspace', workspace)
    for name, default in WORKSPACE_PATHS.items():
      value = getattr(self, name) or os.path.join(workspace, default)
      if not storage.is_uri(value):  # gs://, s3:// stay as they are.
        object.__setattr__(self, name, os.path.abspath(value))
    object.__setattr__(self, 'class_names', tuple(self.class_names))
    object.__setattr__(self, 'beam_args', tuple(self.beam_args))
    self._validate()

  def metadata_url(self) -> metadata_url.MetadataUrl:
    """The ML Metadata store these settings name (password included).

    Raises:
      ConfigError: for a URL that names no store.
    """
    try:
      return metadata_url.parse(
          self.metadata, os.path.join(self.workspace, METADATA_FILE))
    except metadata_url.MetadataUrlError as e:
      raise ConfigError(str(e)) from e

  @property
  def metadata_path(self) -> str:
    """The SQLite file of the store; '' when the store is a server."""
    return self.metadata_url().path

  def _validate(self) -> None:
    self.metadata_url()
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
    for name in ('train_steps', 'phase_two_steps', 'phase_two_head_steps',
                 'batch_size',
                 'train_buckets',
                 'eval_buckets', 'window_spans', 'max_side',
                 'max_image_pixels', 'representative_examples',
                 'latency_runs', 'tune_trials', 'tune_steps'):
      if getattr(self, name) < 1:
        raise ConfigError(f'{name} must be at least 1, got '
                          f'{getattr(self, name)}')
    for name in ('eval_steps', 'validation_examples', 'proof_windows',
                 'micro_examples'):
      if getattr(self, name) < 0:
        raise ConfigError(f'{name} must be 0 or more, got '
                          f'{getattr(self, name)}')
    if not self.max_clip_seconds > 0:
      raise ConfigError('max_clip_seconds must be positive, got '
                        f'{self.max_clip_seconds}')
    self.drift_threshold_map()
    self.phase_two_encoder_models()
    if not 0.0 <= self.min_class_share <= 0.5:
      raise ConfigError('min_class_share must be between 0 and 0.5, got '
                        f'{self.min_class_share}')
    for name in ('min_auc', 'min_accuracy', 'max_auc_drop',
                 'phase_two_min_accuracy', 'phase_two_max_accuracy_drop',
                 'phase_two_min_family_recall', 'phase_two_min_reject_recall',
                 'phase_two_max_recall_drop', 'cascade_max_loss_vs_cloud', 'cascade_max_cloud_share',
                 'cascade_max_accuracy_drop'):
      value = getattr(self, name)
      if not 0.0 <= value <= 1.0:
        raise ConfigError(f'{name} must be between 0 and 1, got {value}')
    if self.quantization not in tflite.QUANTIZATION_MODES:
      raise ConfigError(
          f'quantization must be one of '
          f'{", ".join(tflite.QUANTIZATION_MODES)}, got '
          f'{self.quantization!r}')
    try:
      self.device_budget()
    except budget.BudgetError as e:
      raise ConfigError(str(e)) from e
    if not -1.0 <= self.max_accuracy_drop <= 1.0:
      raise ConfigError('max_accuracy_drop must be between -1 and 1, got '
                        f'{self.max_accuracy_drop}')
    if not 0.0 < self.learning_rate < 1.0:
      raise ConfigError(
          f'learning_rate must be in (0, 1), got {self.learning_rate}')
    if not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,62}',
                        self.served_model_name):
      raise ConfigError(
          'served_model_name must be 1 to 63 letters, digits, _, . or - '
          f'(a URL path part and a folder name), got '
          f'{self.served_model_name!r}')
    if self.vertex_endpoint and not self.serving_destination.startswith(
        'gs://'):
      raise ConfigError(
          f'vertex_endpoint {self.vertex_endpoint!r} deploys from a gs:// '
          f'serving destination; serving_destination is '
          f'{self.serving_destination}')
    if not 0.0 < self.phase_one_recall < 1.0:
      raise ConfigError(f'phase_one_recall must be in (0, 1), got '
                        f'{self.phase_one_recall}')
    if self.serving_check not in SERVING_CHECKS:
      raise ConfigError(f'serving_check must be one of '
                        f'{", ".join(SERVING_CHECKS)}, got '
                        f'{self.serving_check!r}')
    for name in ('model_width', 'phase_two_width'):
      if getattr(self, name) <= 0:
        raise ConfigError(f'{name} must be positive, got '
                          f'{getattr(self, name)}')
    try:
      self.front_end()
    except frontend.FrontEndError as e:
      message = str(e)
      for field, setting in _FRONT_END_SETTINGS.items():
        message = re.sub(rf'\b{field}\b', setting, message)
      raise ConfigError(f'audio front end: {message}') from e
    self._validate_beam()

  def _validate_beam(self) -> None:
    if self.beam not in beam_profiles.PROFILES:
      raise ConfigError(f'beam must be one of '
                        f'{", ".join(beam_profiles.PROFILES)}, got '
                        f'{self.beam!r}')
    missing = self.beam_settings().missing()
    if missing:
      raise ConfigError(
          f'beam {self.beam} needs ' +
          ', '.join(name for name in missing) + ' (' +
          ', '.join(flag(name) for name in missing) + ')')
    if self.beam == 'dataflow' and storage.scheme(self.temp_location) != 'gs':
      raise ConfigError('temp_location must be a gs:// folder for beam '
                        f'dataflow, got {self.temp_location!r}')

  def drift_threshold_map(self) -> Dict[str, float]:
    """`drift_thresholds` as {feature or '*': threshold}.

    Raises:
      ConfigError: for an entry that is not FEATURE=X with X in [0, 1].
    """
    thresholds = {}
    for entry in self.drift_thresholds:
      name, _, value = entry.partition('=')
      try:
        threshold = float(value)
      except ValueError:
        threshold = -1.0
      if not name.strip() or not 0.0 <= threshold <= 1.0:
        raise ConfigError(
            f'drift_thresholds entries must be FEATURE=X with X between 0 '
            f'and 1 (or *=X), got {entry!r}')
      thresholds[name.strip()] = threshold
    return thresholds

  @property
  def schema_path(self) -> str:
    """The curated schema file inside `schema_dir`."""
    return os.path.join(self.schema_dir, 'schema.pbtxt')

  def to_dict(self) -> Dict[str, Any]:
    """Every setting by name, JSON-able (tuples as lists); the metadata
    store without its password, as it may be shown, recorded and read
    back (the password then comes from the environment)."""
    settings = {field.name: (list(value) if isinstance(value, tuple)
                             else value)
                for field in dataclasses.fields(self)
                for value in (getattr(self, field.name),)}
    settings['metadata'] = self.metadata_url().without_password()
    return settings

  def file_limits(self) -> decode.FileLimits:
    """The limits `ingest` and `predict` read every source file within."""
    return decode.FileLimits(max_side=self.max_side,
                             max_pixels=self.max_image_pixels,
                             max_clip_seconds=self.max_clip_seconds)

  def front_end(self) -> frontend.FrontEnd:
    """The audio front end these settings describe."""
    return frontend.FrontEnd(
        sample_rate=self.sample_rate, window_seconds=self.clip_window_seconds,
        hop_seconds=self.clip_hop_seconds, fft_size=self.fft_size,
        mel_min_hz=self.mel_min_hz, mel_max_hz=self.mel_max_hz,
        top_db=self.top_db, colormap=self.colormap,
        image_size=self.image_size, max_windows=self.max_windows_per_clip)

  def training_settings(self) -> TrainingSettings:
    """The training section, as the Transform, Trainer and search module
    code take it (through `custom_config`)."""
    return TrainingSettings(
        image_size=self.image_size, channels=self.channels,
        batch_size=self.batch_size, learning_rate=self.learning_rate,
        width=self.model_width, seed=self.seed, augment=self.augment,
        warm_start=self.warm_start, class_names=tuple(self.class_names))

  def phase_two_settings(self) -> TrainingSettings:
    """Phase two's training settings: phase one's, at phase two's width
    and never warm-started from phase one's model."""
    return dataclasses.replace(self.training_settings(),
                               width=self.phase_two_width, warm_start=False,
                               encoder=self.phase_two_encoder_models(),
                               head_steps=self.phase_two_head_steps)

  def phase_two_encoder_models(self) -> Tuple[str, ...]:
    """`phase_two_encoder` as model names (() for 'pictures').

    Raises:
      ConfigError: for a name that is not one of the musicnn models.
    """
    from components.music import weights  # pylint: disable=g-import-not-at-top
    text = self.phase_two_encoder.strip()
    if text == PICTURES:
      return ()
    names = tuple(name.strip() for name in text.split(',') if name.strip())
    unknown = [name for name in names if name not in weights.CHECKPOINTS]
    if unknown or not names or len(set(names)) != len(names):
      raise ConfigError(
          f'phase_two_encoder {self.phase_two_encoder!r}: expected '
          f"'{PICTURES}' or distinct names among "
          f'{", ".join(sorted(weights.CHECKPOINTS))}, comma-separated')
    return names

  def device_budget(self) -> budget.Budget:
    """`max_tflite_bytes`, `max_latency_ms` and `max_arena_bytes` as the
    budget the search and the pusher judge models by.

    Raises:
      budget.BudgetError: for a negative limit.
    """
    return budget.Budget(max_tflite_bytes=self.max_tflite_bytes,
                         max_latency_ms=self.max_latency_ms,
                         max_arena_bytes=self.max_arena_bytes)

  def search_settings(self) -> SearchSettings:
    """The model search's section: the training settings, the search's,
    the quantization it converts with and the device budget."""
    return SearchSettings(
        training=self.training_settings(), tune_trials=self.tune_trials,
        quantization=self.quantization, latency_runs=self.latency_runs,
        representative_examples=self.representative_examples,
        budget=self.device_budget())

  def push_settings(self) -> PushSettings:
    """The push-and-budget section, as the TFLite pusher takes it."""
    return PushSettings(
        push_destination=self.push_destination,
        class_names=tuple(self.class_names), quantization=self.quantization,
        image_size=self.image_size, channels=self.channels,
        max_accuracy_drop=self.max_accuracy_drop,
        phase_one_recall=self.phase_one_recall,
        representative_examples=self.representative_examples,
        validation_examples=self.validation_examples,
        latency_runs=self.latency_runs, micro_examples=self.micro_examples,
        budget=self.device_budget())

  def cascade_gate(self) -> figures.Gate:
    """The cascade's section: the bars the pair must pass to be pushed."""
    return figures.Gate(
        max_loss_vs_cloud=self.cascade_max_loss_vs_cloud,
        max_cloud_share=self.cascade_max_cloud_share,
        max_accuracy_drop=self.cascade_max_accuracy_drop)

  def beam_settings(self) -> beam_profiles.BeamSettings:
    """The run-and-Beam section, as the runners take it."""
    return beam_profiles.BeamSettings(
        profile=self.beam, extra=tuple(self.beam_args),
        **{name: getattr(self, name)
           for name in beam_profiles.DATAFLOW_SETTINGS})


def flag(name: str) -> str:
  """The command-line flag of setting `name`."""
  return '--' + name.replace('_', '-')
