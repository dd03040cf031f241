"""Command line: `python -m pipeline <command> [options]`.

Commands:
  synth    make the embedded default data set (spectrogram PNGs per class)
  ingest   turn a folder of class subfolders into the next span
  run      run the pipeline on the ingested spans and print a summary
  predict  classify image files or WAV clips with a pushed TFLite model
  serve    KServe's model server on phase two's newest pushed version
  schedule retrain on a cadence (or once, for cron) as new spans arrive
  inspect  runs, artifacts, lineage, metrics, settings and model-search
           trials in ML Metadata
  report   a self-contained HTML report of a run
  compile  the same pipeline as a Kubeflow Pipelines v2 / Vertex AI job spec

Every command takes `--workspace DIR` (default: `workspace/` in the
checkout), the folder that holds the spans, the pipeline root, the ML
Metadata store and the pushed models; `--config FILE`, a TOML file of
settings that flags override; and `--debug`, which prints the traceback of
an unexpected error (always kept in a log file under `WORKSPACE/logs/`).
`python -m pipeline COMMAND --help` lists a command's options.
"""

import argparse
import contextlib
import functools
import json
import logging
import math
import os
import sys
import textwrap
import warnings
from typing import List, Optional, Tuple

from components.common import errors
from pipeline.runners import logs
from pipeline.settings import config as config_lib
from pipeline.settings import arguments
from pipeline.data.synth import DEFAULT_PER_CLASS as SYNTH_DEFAULT_PER_CLASS
from pipeline.data.synth import SOURCES as SYNTH_SOURCES
from pipeline.serving import cascade


class UserError(errors.PipelineError):
  """An error caused by input or settings; printed without a traceback."""


# Library log lines that say nothing a user can act on.
_NOISE = (
    'does not have payload_format custom property',
    'ArtifactQuery.property_predicate is not supported',
    'tf_record_iterator',
    'Compiled the loaded model',
    'is not supported on this platform',
    # TFX cleaning up empty folders, which object stores do not keep.
    'it is likely that it has been deleted by the executor',
    'is not found, not going to delete it',
    # Beam's TFRecord sink works without the optional C codec; its CRC is
    # all that is slower, on files of a few megabytes.
    "Couldn't find python-snappy",
    # TFMA loads the SavedModel for inference only, which needs no compile.
    'No training configuration found in save file',
    # ... and tries Keras' loader on phase two's heard model, which is
    # saved as signatures (tf.saved_model.save), before it loads those.
    'SavedModel saved prior to TF 2.5 detected when loading Keras model',
)


def _empty_resolver(record: logging.LogRecord) -> bool:
  """True for TFX's report that a resolver found nothing: a traceback it
  logs, as an error, for what is the normal first run of a pipeline with a
  baseline (the drift check's, the Evaluator's). The run summary shows the
  node as `empty`."""
  exc = record.exc_info[1] if record.exc_info else None
  return (type(exc).__name__ == 'InputResolutionError' and
          str(exc).rstrip().endswith('returned None.'))


class _ProgressFilter(logging.Filter):
  """Shows TFX's per-component progress and real warnings, drops the noise."""

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if _empty_resolver(record):
      return False
    if record.levelno < logging.WARNING:
      if message.startswith('Component ') and message.endswith(
          ('is running.', 'is finished.')):
        record.msg, record.args = 'pipeline: ' + message, ()
        return True
      return False
    return not any(noise in message for noise in _NOISE)


def _quiet_libraries() -> None:
  """Silences library chatter, keeping progress lines and real warnings."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  # The Beam worker processes of the portable profile inherit this; their
  # libraries' import-time deprecation notes are not ours to show.
  os.environ.setdefault('PYTHONWARNINGS', 'ignore')
  warnings.filterwarnings('ignore', category=FutureWarning)
  warnings.filterwarnings('ignore', category=DeprecationWarning)
  warnings.filterwarnings('ignore', category=RuntimeWarning,
                          module='tensorflow_model_analysis')
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter('%(message)s'))
  handler.addFilter(_ProgressFilter())
  # TFX logs its per-component progress on the 'absl' logger. Its level
  # must be set through absl's verbosity flag: TensorFlow's SavedModel
  # export saves and restores that flag around each save, which would put
  # a level set on the logger alone back to WARNING (the flag's default),
  # and progress lines would vanish after Transform.
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.INFO)
  for name in ('absl', ''):
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
  for name in ('tensorflow', 'apache_beam'):
    logging.getLogger(name).setLevel(logging.WARNING)
    # TensorFlow attaches its own handler on import; filter at the logger.
    logging.getLogger(name).addFilter(_ProgressFilter())


def _cmd_synth(args: argparse.Namespace,
               config: config_lib.PipelineConfig) -> int:
  from pipeline.data import sampled  # pylint: disable=g-import-not-at-top
  from pipeline.data import synth  # pylint: disable=g-import-not-at-top
  source = args.source
  if source == 'auto':
    missing = sampled.unavailable()
    source = 'procedural' if missing else 'sampled'
    if missing:
      print(f'synth: note: {missing}; fell back to the procedural generator '
            '(tones and noises, no families)', file=sys.stderr)
  out = args.out or os.path.join(
      config.workspace, 'default_sounds' if args.format == 'wav'
      else 'default_data')
  written = synth.synthesize(out, per_class=args.per_class, seed=args.seed_data,
                             class_names=config.class_names,
                             file_format=args.format, source=source,
                             replace=args.replace)
  print(f'synth: {"wrote" if written else "already present:"} {out} '
        f'({args.per_class} {source} {args.format} files per class)')
  return 0


def _cmd_ingest(args: argparse.Namespace,
                config: config_lib.PipelineConfig) -> int:
  from pipeline.data import ingest  # pylint: disable=g-import-not-at-top
  result = ingest.ingest(args.src_dir, config.data_root,
                         class_names=config.class_names,
                         limits=config.file_limits(), force=args.force,
                         front_end=config.front_end(),
                         proof_windows=config.proof_windows,
                         keep_samples=config.keep_window_samples)
  if result.created:
    counts = ', '.join(f'{n} {name}' for name, n in result.counts.items())
    made = ([f'{result.recordings} recordings drawn into windows']
            if result.recordings else []) + (
                [f'{result.reencoded} images re-encoded as PNG']
                if result.reencoded or not result.recordings else [])
    print(f'ingest: wrote span {result.span} to {result.span_dir} ({counts}; '
          f'{len(result.skipped)} skipped, {", ".join(made)})')
  else:
    print(f'ingest: {args.src_dir} already ingested as span {result.span}; '
          'nothing added')
  return 0


def _cmd_run(args: argparse.Namespace,
             config: config_lib.PipelineConfig) -> int:
  from pipeline.metadata import summary as summary_lib  # pylint: disable=g-import-not-at-top
  from pipeline.runners import run  # pylint: disable=g-import-not-at-top
  summary = run.run_pipeline(config)
  print(json.dumps(summary, indent=2) if args.json
        else summary_lib.format_summary(summary))
  _write_run_report(config, summary['run_id'])
  return 0


def _cmd_compile(args: argparse.Namespace,
                 config: config_lib.PipelineConfig) -> int:
  from pipeline.runners import vertex  # pylint: disable=g-import-not-at-top
  job = vertex.compile_pipeline(config)
  vertex.write_job(job, args.out)
  name = job['pipelineSpec']['pipelineInfo']['name']
  print(f'compile: wrote {args.out}: pipeline {name} for {args.target}, '
        f'{len(vertex.tasks(job))} tasks, image {config.image}, Beam '
        f'profile {config.beam}')
  if name != config.pipeline_name:
    print(f'compile: note: pipeline_name {config.pipeline_name} is '
          f'{name} there (Kubeflow allows only a-z, 0-9 and -)')
  if config.metadata:
    print('compile: note: --metadata is not used there; Vertex AI and '
          'Kubeflow Pipelines keep their own ML Metadata')
  return 0


def _write_run_report(config: config_lib.PipelineConfig, run_id: str) -> None:
  """Writes the run's HTML report; a failure here does not fail the run."""
  from pipeline.reporting import report  # pylint: disable=g-import-not-at-top
  try:
    path = report.write_report(config, run_id)
  except Exception as e:  # pylint: disable=broad-except
    print(f'warning: the run succeeded but its report could not be written: '
          f'{e}', file=sys.stderr)
  else:
    print(f'Report: {path}', file=sys.stderr)


def _cmd_report(args: argparse.Namespace,
                config: config_lib.PipelineConfig) -> int:
  from pipeline.reporting import report  # pylint: disable=g-import-not-at-top
  print(report.write_report(config, args.run, args.out))
  return 0


def _model_and_files(args: argparse.Namespace,
                     config: config_lib.PipelineConfig) -> Tuple[str, List[str]]:
  """The model folder and the files of `predict`: `--model DIR`, else the
  first of two or more paths when it is a folder (a local directory, or a
  bucket prefix that is no object: the older form `predict MODEL_DIR
  FILE...`), else the workspace's push destination."""
  from components.common import storage  # pylint: disable=g-import-not-at-top
  paths = list(args.paths)
  if args.model:
    return args.model, paths
  if len(paths) >= 2:
    first = paths[0]
    if (not storage.isfile(first) if storage.is_uri(first)
        else os.path.isdir(first)):
      return first, paths[1:]
  return config.push_destination, paths


def _cmd_predict(args: argparse.Namespace,
                 config: config_lib.PipelineConfig) -> int:
  from pipeline.serving import predict  # pylint: disable=g-import-not-at-top
  model_dir, paths = _model_and_files(args, config)
  if not paths:
    raise config_lib.ConfigError('predict needs at least one FILE (or - '
                                 'with --stream for standard input)')
  if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
    raise config_lib.ConfigError(f'--threshold must be a score from 0 to 1, '
                                 f'got {args.threshold:g}')
  if args.stream and paths == ['-']:
    # Checked where the command line is read, before the model is loaded.
    predict.check_raw_settings(args.input_rate, args.input_channels)
  model = predict.PushedModel(model_dir, config.file_limits(), args.threshold,
                              keep_input=bool(args.cascade))
  router = None
  if args.cascade and not (math.isfinite(args.cascade_drain) and
                           args.cascade_drain >= 0):
    raise config_lib.ConfigError(
        f'--cascade-drain {args.cascade_drain:g}: expected seconds, 0 or '
        'more')
  if args.cascade:
    router = predict.open_cascade(
        model, args.cascade, config.served_model_name, args.cascade_batch,
        args.cascade_wait if args.stream else None, args.cascade_queue,
        block=not args.stream)
  if args.stream:
    return _predict_stream(args, model, paths, router)
  if router is not None:
    results, summary = predict.cascade_files(model, paths, router,
                                             args.cascade_drain)
  else:
    results, summary = [model.predict(path) for path in paths], None
  if args.json:
    rows = [{k: v for k, v in r.__dict__.items()
             if v is not None or k in ('label', 'error')} for r in results]
    print(json.dumps({'predictions': rows, 'cascade': summary} if summary
                     else rows, indent=2))
  for result in results:
    if result.error:
      print(f'{result.path}: {result.error}', file=sys.stderr)
    elif not args.json:
      _print_file(result, router)
  if summary and not args.json:
    print(cascade.summary_line(summary))
  return _exit_code(results, summary)


def _exit_code(results, summary: Optional[dict]) -> int:
  """`predict`'s exit code: 3 when phase two refused the device or
  answered badly (every answer of phase one is printed all the same), else
  1 when a file could not be read, else 0 (a phase two that cannot be
  reached is not a failure: its windows stay `family unknown`)."""
  if summary and summary.get('fault'):
    return cascade.FAULT_EXIT
  return 1 if any(r.error for r in results) else 0


def _print_file(result, router) -> None:
  """One file's answer, then its windows and segments, as text."""
  if router is None:
    print(f'{result.path}: {result.label} ({result.probability:.3f})')
  else:
    print(f'{result.path}: ' + cascade.describe(
        dict(result.__dict__, cloud=result.cascade)))
  if not result.windows or len(result.windows) < 2:
    return
  for window in result.windows:
    print(f"  {window['start']:8.2f}-{window['end']:.2f} s  " + (
        f"{window['label']} ({window['probability']:.3f})" if router is None
        else cascade.describe(window)))
  for segment in result.segments:
    print(f"  segment {segment['start']:.2f}-{segment['end']:.2f} s "
          f"above {result.threshold:g}: peak {segment['peak']:.3f}" + (
              f': {cascade.describe(segment)}' if router is not None else ''))


def _predict_stream(args: argparse.Namespace, model, paths: List[str],
                    router=None) -> int:
  """`predict --stream`: one source, each window printed as decided (with
  `--cascade`: as answered, late answers and segments as they come)."""
  from components.common import storage  # pylint: disable=g-import-not-at-top
  from pipeline.serving import predict  # pylint: disable=g-import-not-at-top
  if len(paths) != 1:
    raise config_lib.ConfigError('--stream reads one source: a WAV file, or '
                                 '- for raw 16-bit PCM on standard input')
  path = paths[0]
  raw = path == '-'
  if raw and (sys.stdin is None or sys.stdin.closed):
    raise predict.StreamError('-: standard input is closed; pipe raw 16-bit '
                              'PCM into it, or name a recording file')
  if not raw:
    predict.check_source(path)
  show = _StreamPrinter(args.json, router)
  with (contextlib.nullcontext(sys.stdin.buffer) if raw else
        storage.open_binary(path)) as source:
    windows = predict.stream(
        model, source, 'standard input' if raw else path,
        raw_rate=(model.front_end.sample_rate if args.input_rate is None
                  else args.input_rate) if raw else None,
        raw_channels=args.input_channels)
    if router is None:
      for window in windows:
        show.window(window)
    else:
      show.end(cascade.route(
          router, ((window, model.request_bytes(window))
                   for window in windows), show.answers,
          drain_seconds=args.cascade_drain))
  return _exit_code([], show.summary)


class _StreamPrinter:
  """Prints `predict --stream`'s answers as text or JSON lines; with
  `--cascade`, a segment when it closes and the summary at the end."""

  def __init__(self, as_json: bool, router):
    self.as_json, self.router, self._run = as_json, router, []
    self.summary: Optional[dict] = None

  def _line(self, kind: Optional[str], record: dict, text: str) -> None:
    print(json.dumps({kind: record} if kind else record) if self.as_json
          else text, flush=True)

  def window(self, window: dict) -> None:
    self._line(None, window, f"{window['start']:.2f}-{window['end']:.2f} s: "
               f"{window['label']} ({window['probability']:.3f})")

  def answers(self, records: List[dict]) -> None:
    for record in records:
      times = f"{record['start']:.2f}-{record['end']:.2f} s"
      if record.get('late'):
        self._line(None, record, f'{times}: {cascade.describe(record)} '
                   '(late answer)')
        continue
      flagged = cascade.flagged(record)
      if not flagged:
        self._close_segment()
      self._line(None, record, f'{times}: {cascade.describe(record)}')
      if flagged:
        self._run.append(record)

  def _close_segment(self) -> None:
    if not self._run:
      return
    segment = cascade.merge_segment(self._run, self.router.reject,
                                    self.router.positive)
    self._run = []
    self._line('segment', segment, f"segment {segment['start']:.2f}-"
               f"{segment['end']:.2f} s: {cascade.describe(segment)}")

  def end(self, summary: dict) -> None:
    self.summary = summary
    self._close_segment()
    self._line('cascade', summary, cascade.summary_line(summary))


def _model_base(args: argparse.Namespace,
                config: config_lib.PipelineConfig) -> str:
  """Phase two's folder of numbered versions: `--model`, else the
  serving destination's folder of the served model name."""
  from components.cloud import push  # pylint: disable=g-import-not-at-top
  return args.model or push.model_base(config.serving_destination,
                                       config.served_model_name)


def _add_model_base_arguments(parser: argparse.ArgumentParser) -> None:
  """`--model DIR` and the settings that name phase two's versions
  otherwise (read by :func:`_model_base`)."""
  parser.add_argument('--model', metavar='DIR',
                      help='a folder of numbered versions (default: the '
                      "workspace's serving destination and model name)")
  arguments.add_config_arguments(
      parser, only=['serving_destination', 'served_model_name'])


def _served_base(args: argparse.Namespace,
                 config: config_lib.PipelineConfig) -> Tuple[str, bool]:
  """The local folder of numbered versions `serve` serves, checked, and
  whether it is a copy to remove after: a bucket's newest version (or the
  one version named) is copied down first."""
  from components.cloud import push  # pylint: disable=g-import-not-at-top
  from components.common import storage  # pylint: disable=g-import-not-at-top
  base = _model_base(args, config)
  if storage.is_uri(base):
    return _copied_down(base.rstrip('/'), config.served_model_name), True
  if os.path.isfile(os.path.join(base, push.MANIFEST_PATH)):
    raise UserError(f'{base} is one version; serve takes the folder of '
                    f'numbered versions, {os.path.dirname(base) or "."}, '
                    'and serves its newest')
  if not os.path.isdir(base):
    raise UserError(f'{base}: no such folder (phase two is pushed there when '
                    'the spans give families; or name one with --model)')
  if not push.versions(base):
    raise UserError(f'{base} holds no pushed version (a numbered folder '
                    f'with {push.MANIFEST_PATH})')
  return base, False


def _cmd_request(args: argparse.Namespace,
                 config: config_lib.PipelineConfig) -> int:
  from pipeline.serving import request as request_lib  # pylint: disable=g-import-not-at-top
  try:
    made = request_lib.make(_model_base(args, config), args.file, v2=args.v2)
  except request_lib.RequestError as e:
    raise UserError(str(e)) from e
  print(json.dumps(made.body))
  left = (f' (the first {made.windows} of its {made.total}; a request '
          'takes no more)' if made.total > made.windows else '')
  print(f'request: {made.windows} windows of {args.file}{left} for version '
        f'{made.version}; send it with curl -s -d @input.json '
        f'http://127.0.0.1:8080{made.url_path}', file=sys.stderr)
  return 0


def _copied_down(uri: str, name: str) -> str:
  """A bucket's version as a local folder of versions: `uri` is one version
  (as Vertex AI hands a container its copy, $AIP_STORAGE_URI) or a folder
  of numbered versions, whose newest is taken. A bucket is read once:
  versions pushed there later are not picked up."""
  import tempfile  # pylint: disable=g-import-not-at-top
  from components.cloud import push  # pylint: disable=g-import-not-at-top
  from components.common import storage  # pylint: disable=g-import-not-at-top
  if storage.isfile(storage.join(uri, push.MANIFEST_PATH)):
    version_uri = uri
  else:
    found = push.versions(uri)
    if not found:
      raise UserError(f'{uri} holds no pushed version (a numbered folder '
                      f'with {push.MANIFEST_PATH}), nor is it one')
    version_uri = storage.join(uri, str(found[-1]))
  number = push.read_manifest(version_uri).version or 1
  base = os.path.join(tempfile.mkdtemp(prefix='serve-'), name)
  push.download(version_uri, os.path.join(base, str(number)))
  print(f'serve: copied version {number} from {version_uri} (a bucket is '
        'read once: later versions there are not picked up)', flush=True)
  return base


def _cmd_serve(args: argparse.Namespace,
               config: config_lib.PipelineConfig) -> int:
  import shutil  # pylint: disable=g-import-not-at-top
  from components.cloud import launch  # pylint: disable=g-import-not-at-top
  warning = launch.check_address(args.host, args.port)
  if warning:
    print(warning, file=sys.stderr, flush=True)
  if not 1 <= args.batch_windows <= MAX_SERVE_BATCH_WINDOWS:
    raise config_lib.ConfigError(
        f'--batch-windows {args.batch_windows}: expected 1 to '
        f'{MAX_SERVE_BATCH_WINDOWS} windows a model call')
  if not (math.isfinite(args.batch_wait_ms) and
          0 <= args.batch_wait_ms <= MAX_SERVE_BATCH_WAIT_MS):
    raise config_lib.ConfigError(
        f'--batch-wait-ms {args.batch_wait_ms:g}: expected 0 to '
        f'{MAX_SERVE_BATCH_WAIT_MS} ms')
  launch.kserve_python()  # says how to make the environment if absent
  base, copied = _served_base(args, config)
  print(f'serve: starting KServe on the newest version in {base} '
        '(Ctrl-C stops it)', flush=True)
  try:
    return launch.run_foreground(base, config.served_model_name, args.host,
                                 args.port, args.log_level,
                                 args.batch_windows, args.batch_wait_ms)
  finally:
    if copied:
      shutil.rmtree(os.path.dirname(base), ignore_errors=True)


def _cmd_schedule(args: argparse.Namespace,
                  config: config_lib.PipelineConfig) -> int:
  from pipeline.runners import schedule  # pylint: disable=g-import-not-at-top
  if args.once:
    cadence = None
  else:
    cadence = schedule.Cadence(every=args.every, cron=args.cron)
  scheduler = schedule.Scheduler(config, cadence, source=args.source,
                                 force=args.force)
  if args.once:
    result = scheduler.run_once()
    return 1 if result.action == 'failed' else 0
  scheduler.install_signal_handlers()
  print(f'schedule: started for workspace {config.workspace} '
        f'({"every " + args.every if args.every else "cron " + args.cron}); '
        'Ctrl-C or SIGTERM stops it between runs', flush=True)
  scheduler.loop()
  return 0


def _cmd_inspect(args: argparse.Namespace,
                 config: config_lib.PipelineConfig) -> int:
  from pipeline.metadata import inspection  # pylint: disable=g-import-not-at-top
  from pipeline.metadata import mlmd  # pylint: disable=g-import-not-at-top
  store = mlmd.open_store(config.metadata_url(), read_only=True)
  if args.what == 'runs':
    rows = inspection.runs(store, config.pipeline_name)
    text = inspection.format_runs(rows)
  elif args.what == 'artifacts':
    rows = inspection.artifacts(store, args.type)
    text = inspection.format_artifacts(rows)
  elif args.what == 'metrics':
    rows = inspection.metrics(store, config.pipeline_name, args.last)
    text = inspection.format_metrics(rows)
  elif args.what == 'settings':
    rows = inspection.settings(store, config.pipeline_name, args.run)
    text = inspection.format_settings(rows)
  elif args.what == 'trials':
    rows = inspection.trials(store, config.pipeline_name)
    text = inspection.format_trials(rows)
  elif args.what == 'cascade':
    rows = inspection.cascade(store, config.pipeline_name, args.run)
    text = inspection.format_cascade(rows)
  else:
    rows, text = _lineage(store, config, args)
  print(json.dumps(rows, indent=2, default=str) if args.json else text)
  return 0


def _lineage(store, config: config_lib.PipelineConfig,
             args: argparse.Namespace):
  """`inspect lineage`: a pushed model back to its spans, or a span forward."""
  from pipeline.metadata import lineage  # pylint: disable=g-import-not-at-top
  if args.span is not None:
    if args.model or args.artifact_id is not None:
      raise UserError('give either --span or a model, not both')
    rows = lineage.models_from_span(store, args.span)
    return rows, lineage.format_models_from_span(args.span, rows)
  version = path = None
  if args.model:
    if args.model.lstrip('v').isdigit() and not os.path.exists(args.model):
      version = args.model
    else:
      path = args.model
  phase = 2 if args.phase == 'two' else 1
  pushed = lineage.find_pushed_model(
      store, version=version, path=path, artifact_id=args.artifact_id,
      push_destination=config.push_destination, phase=phase)
  result = lineage.model_lineage(store, pushed, phase)
  return result, lineage.format_model_lineage(result)


# The settings bounding what one source file may cost `ingest` and `predict`.
_FILE_LIMITS = ['max_side', 'max_image_pixels', 'max_clip_seconds']
# The audio front end's settings (`predict` reads it from the manifest).
_FRONT_END = ['sample_rate', 'clip_window_seconds', 'clip_hop_seconds',
              'max_windows_per_clip', 'fft_size', 'mel_min_hz', 'mel_max_hz',
              'top_db', 'colormap']


class _HelpFormatter(argparse.HelpFormatter):
  """Wraps help text between words only, never inside `--flag-names`."""

  def _split_lines(self, text, width):
    return textwrap.wrap(' '.join(text.split()), width,
                         break_on_hyphens=False)


def build_parser() -> argparse.ArgumentParser:
  """The argument parser of every command."""
  parser = argparse.ArgumentParser(
      prog='python -m pipeline', allow_abbrev=False,
      formatter_class=_HelpFormatter,
      description='The Two-Phase Predictions pattern with TFX: phase one, a '
      'small classifier of pictures or recordings that runs on the device '
      '(a quantized TensorFlow Lite model), says whether a sound is an '
      'instrument; phase two, served in the cloud, names the family of what '
      'phase one flags. One pipeline trains, gates and pushes both.')
  commands = parser.add_subparsers(
      dest='command', required=True, metavar='COMMAND',
      parser_class=functools.partial(argparse.ArgumentParser,
                                     allow_abbrev=False,
                                     formatter_class=_HelpFormatter))

  synth = commands.add_parser(
      'synth', help='make the default data set',
      description='Synthesize instrument and non-instrument audio clips and '
      'save them as WAVs (or spectrogram PNGs), one folder per class. Skips '
      'the work when the same data set is already there.')
  synth.add_argument('--out', help='destination folder (default: '
                     'WORKSPACE/default_sounds, or WORKSPACE/default_data '
                     'for PNGs)')
  synth.add_argument('--source', choices=('auto',) + SYNTH_SOURCES,
                     default='auto',
                     help='sampled: instruments rendered by FluidSynth from '
                     'General MIDI soundfonts into instrument/<family>/, '
                     'speech by flite, sound effects, noises and mixtures '
                     'into not_instrument/<kind>/; procedural: synthesized '
                     'tones and noises; auto: sampled where FluidSynth, the '
                     'soundfonts and flite are installed, else procedural, '
                     'said in one line (default: %(default)s)')
  synth.add_argument('--replace', action='store_true',
                     help='replace a data set synth made with other '
                     'settings (another source, seed or size) instead of '
                     'refusing')
  synth.add_argument('--per-class', type=int,
                     default=SYNTH_DEFAULT_PER_CLASS,
                     help='clips per class (default: %(default)s)')
  synth.add_argument('--seed-data', type=int, default=0,
                     help='seed of the data set (default: %(default)s)')
  synth.add_argument('--format', choices=('png', 'wav'), default='wav',
                     help='audio clips (16 kHz, 1 s: the default data, so a '
                     'default run pushes the waveform model too) or their '
                     'spectrogram images, drawn with the default front end '
                     '(default: %(default)s)')
  arguments.add_config_arguments(synth, only=['class_names'])
  synth.set_defaults(func=_cmd_synth)

  ingest = commands.add_parser(
      'ingest', help='ingest a folder of class subfolders as the next span',
      description='Read SRC_DIR/<class>/... (PNG or JPEG images of any size, '
      'or WAV clips) and write the next span of tf.Examples into the '
      "workspace's data root. Unreadable files are skipped and listed.")
  ingest.add_argument('src_dir', metavar='SRC_DIR')
  ingest.add_argument('--force', action='store_true',
                      help='add a span even if the latest one came from the '
                      'same files')
  arguments.add_config_arguments(
      ingest, only=['data_root', 'class_names', 'image_size'] + _FILE_LIMITS
      + _FRONT_END + ['proof_windows', 'keep_window_samples'])
  ingest.set_defaults(func=_cmd_ingest)

  run = commands.add_parser(
      'run', help='run the pipeline',
      description='Run the TFX pipeline locally on the ingested spans and '
      'print a summary: components run or cached, their times, the '
      'evaluation metrics, the blessing and where the model is.')
  run.add_argument('--json', action='store_true',
                   help='print the summary as JSON')
  arguments.add_config_arguments(run)
  run.set_defaults(func=_cmd_run)

  compile_ = commands.add_parser(
      'compile', help='compile the pipeline for Vertex AI / Kubeflow '
      'Pipelines v2',
      description='Write the Kubeflow Pipelines v2 job spec (JSON) of the '
      'same pipeline `run` runs, with the same settings, for Vertex AI '
      'Pipelines or a KFP v2 cluster. Every task runs in --image (built '
      'from the Dockerfile); the roots must be bucket URIs. Works offline: '
      'nothing is read or uploaded.')
  compile_.add_argument('--target', choices=('vertex',), default='vertex',
                        help='the orchestrator (default: %(default)s; '
                        'Vertex AI and KFP v2 take the same spec)')
  compile_.add_argument('--out', required=True, metavar='FILE',
                        help='the JSON file to write')
  arguments.add_config_arguments(compile_)
  compile_.set_defaults(func=_cmd_compile)

  predict = commands.add_parser(
      'predict', help='classify files with a pushed TFLite model',
      description='Run a pushed TFLite model on image files or recordings '
      'the way an app would, using only the model folder: print each '
      "file's class and probability. A recording is drawn with the audio "
      "front end the model's manifest records and cut into its windows: "
      'each window is classified with its times, and consecutive positive '
      'windows merge into segments. Exits 1 if a file could not be '
      'classified; with --cascade, 3 if phase two refused the device or '
      "answered what it cannot read (phase one's answers are printed all "
      'the same), and 0 when phase two cannot be reached (its windows stay '
      '"family unknown").')
  predict.add_argument('paths', metavar='FILE', nargs='+',
                       help='image files or recordings (WAV); the older form '
                       'MODEL_DIR FILE... still works')
  predict.add_argument('--model', metavar='MODEL_DIR',
                       help='a pushed version folder, or a push destination '
                       '(its LATEST version is used; default: the '
                       "workspace's pushed/)")
  predict.add_argument('--json', action='store_true',
                       help='print the predictions as JSON (with --stream: '
                       'one JSON object per line, per window)')
  predict.add_argument('--threshold', type=float, default=None,
                       help='score of the positive class (the last label) '
                       'from which a window counts as positive; consecutive '
                       'positive windows merge into segments (default: the '
                       "version's own, chosen by its pusher for "
                       '--phase-one-recall and recorded in its manifest; 0.5 '
                       'for versions pushed before)')
  predict.add_argument('--stream', action='store_true',
                       help='read one recording as it arrives (a WAV file, '
                       'or - for standard input: raw 16-bit little-endian '
                       'PCM, or a WAV stream read by its header) in bounded '
                       'memory, printing each window as it is decided')
  predict.add_argument('--input-rate', type=int, default=None, metavar='HZ',
                       help="sample rate of raw PCM on standard input "
                       "(default: the model's front end rate)")
  predict.add_argument('--input-channels', type=int, default=1, metavar='N',
                       help='interleaved channels of raw PCM on standard '
                       'input, 1 to 64 (default %(default)s)')
  predict.add_argument('--cascade', metavar='URL',
                       help="send the windows phase one flags to phase two's "
                       'model server (python -m pipeline serve) at URL, e.g. '
                       'http://127.0.0.1:8080 (or its whole V1 :predict URL), '
                       'and answer them with the family it names; see '
                       'docs/cascade.md')
  predict.add_argument('--cascade-batch', type=int,
                       default=cascade.DEFAULT_BATCH, metavar='N',
                       help='flagged windows per request, 1 to '
                       f'{cascade.MAX_BATCH} (default %(default)s)')
  predict.add_argument('--cascade-wait', type=float,
                       default=cascade.DEFAULT_WAIT_SECONDS,
                       metavar='SECONDS',
                       help='with --stream: how long a flagged window waits '
                       'for its answer before it is printed "family '
                       'unknown" (its family follows as a late answer when '
                       'the server answers; default %(default)s)')
  predict.add_argument('--cascade-drain', type=float,
                       default=cascade.DEFAULT_DRAIN_SECONDS,
                       metavar='SECONDS',
                       help='at the end of the files or the stream, how long '
                       'to wait, at most, for answers still to come before '
                       'the flagged windows still queued are answered '
                       '"family unknown" (default %(default)s)')
  predict.add_argument('--cascade-queue', type=int,
                       default=cascade.DEFAULT_QUEUE, metavar='N',
                       help='flagged windows held while the server cannot be '
                       'reached; when full, the oldest is dropped (default '
                       '%(default)s)')
  arguments.add_config_arguments(
      predict, only=['push_destination', 'served_model_name'] + _FILE_LIMITS)
  predict.set_defaults(func=_cmd_predict)

  serve = commands.add_parser(
      'serve', help="KServe's model server on phase two's newest version",
      description="Start KServe's Python model server (in its own "
      'environment, .venv-kserve; scripts/ensure_kserve.sh makes it) on the '
      'newest version of phase two under --serving-destination/'
      '--served-model-name, or --model DIR. It answers TensorFlow Serving\'s '
      'REST API (V1: POST /v1/models/NAME:predict with {"instances": '
      '[{"audio_pcm": {"b64": ...}}]}) and the Open Inference Protocol (V2) '
      'on one port, picks up a newly pushed version without dropping a '
      'request, and gives Prometheus metrics at /metrics. Requests are '
      'logged one line each at --log-level debug only. See docs/phase-two.md.')
  _add_model_base_arguments(serve)
  serve.add_argument('--host', default='127.0.0.1',
                     help='address to listen on (default %(default)s; '
                     '0.0.0.0 for every address)')
  serve.add_argument('--port', type=int, default=8080,
                     help='HTTP port (default %(default)s)')
  serve.add_argument('--batch-windows', type=int, default=64, metavar='N',
                     help='at most N windows a model call: requests that '
                     'arrive while the model is busy are answered together '
                     '(default %(default)s; 1 answers each request alone)')
  serve.add_argument('--batch-wait-ms', type=float, default=0.0,
                     metavar='MS',
                     help='how long a request that finds the model free may '
                     'wait for others to join its call (default '
                     '%(default)s: it runs at once)')
  serve.add_argument('--log-level', default='info',
                     choices=('debug', 'info', 'warning', 'error'),
                     help='debug logs one line per request (default '
                     '%(default)s)')
  serve.set_defaults(func=_cmd_serve)

  request = commands.add_parser(
      'request', help="a ready request for phase two's model server",
      description="Print the body of a request for phase two's model "
      'server holding the windows of a recording, cut and drawn as the '
      "served version's front end says, with its pairing key: TensorFlow "
      "Serving's V1 predict body (--v2: the Open Inference Protocol's), to "
      'send with curl -d @input.json. At most 32 windows (the server takes '
      'no more a request); the rest are left out and said on stderr.')
  request.add_argument('file', metavar='FILE',
                       help='a recording (an image, for a phase two of '
                       'pictures)')
  _add_model_base_arguments(request)
  request.add_argument('--v2', action='store_true',
                       help="the Open Inference Protocol's body")
  request.set_defaults(func=_cmd_request)

  sched = commands.add_parser(
      'schedule', help='retrain on a cadence as new data arrives',
      description='At every tick: ingest --source (if given; a new span only '
      'when it changed), then, if a span was added since the last successful '
      'run, run the pipeline on the latest --window-spans spans. One run at '
      'a time; a failed run is logged and the next tick still runs; Ctrl-C '
      'or SIGTERM stop between runs.')
  when = sched.add_mutually_exclusive_group(required=True)
  when.add_argument('--every', help='interval between ticks: 30m, 6h, 1d, '
                    '3600 (seconds)')
  when.add_argument('--cron', help="cron expression, e.g. '0 3 * * *' "
                    '(daily at 03:00, local time)')
  when.add_argument('--once', action='store_true',
                    help='one tick, then exit (for cron or a systemd timer)')
  sched.add_argument('--source', help='folder of class subfolders to ingest '
                     'at every tick')
  sched.add_argument('--force', action='store_true',
                     help='run even when no span was added')
  arguments.add_config_arguments(sched)
  sched.set_defaults(func=_cmd_schedule)

  inspect = commands.add_parser(
      'inspect', help='runs, artifacts, lineage and metrics from ML Metadata',
      description='Read the ML Metadata store (read-only, safe during a '
      'run): runs (newest first, with components ran, cached or failed and '
      'the pushed version), artifacts (by type, with key properties), '
      'lineage (a pushed model back to the ingested spans, or with --span '
      'the models that came from a span), metrics (evaluation and TFLite '
      'figures of the last runs side by side), settings (those a run '
      'used, as TOML for --config), trials (every trial of the newest '
      'model search: settings, TFLite bytes, latency, AUC, within the '
      'device budget or not, the chosen one marked) or cascade (the pair '
      'of the newest run that judged one: phase one\'s threshold and why, '
      'end-to-end accuracy and cloud share at each instrument share, '
      'recall by family, the curve, the gate\'s verdict, what was pushed).')
  inspect.add_argument('what', choices=('runs', 'artifacts', 'lineage',
                                        'metrics', 'settings', 'trials',
                                        'cascade'))
  inspect.add_argument('model', nargs='?', metavar='MODEL',
                       help='lineage only: a pushed version (3 or v3) or '
                       'its folder (default: the LATEST version)')
  inspect.add_argument('--phase', choices=('one', 'two'), default='one',
                       help='lineage only: phase one\'s pushed model (the '
                       'device\'s, default) or phase two\'s (the cloud\'s: '
                       'MODEL is its version, default the newest pushed)')
  inspect.add_argument('--artifact-id', type=int,
                       help='lineage only: the PushedModel artifact id')
  inspect.add_argument('--span', type=int,
                       help='lineage only: list the models that came from '
                       'this data span')
  inspect.add_argument('--type', help='artifact type, e.g. Examples, Model, '
                       'ModelBlessing, PushedModel (artifacts only)')
  inspect.add_argument('--run', help='settings and cascade only: run id, or '
                       'a unique prefix of one (default: the newest run)')
  inspect.add_argument('--last', type=int, default=5,
                       help='runs to compare (metrics only; default '
                       '%(default)s)')
  inspect.add_argument('--json', action='store_true', help='print JSON')
  arguments.add_config_arguments(
      inspect, only=['pipeline_name', 'metadata'])
  inspect.set_defaults(func=_cmd_inspect)

  report = commands.add_parser(
      'report', help='write the HTML report of a run',
      description='Write a self-contained HTML report of a run (default: the '
      'newest): components, data statistics, anomalies, evaluation metrics '
      'and thresholds with the confusion matrix and ROC curve, the TFLite '
      'figures of every pushed model and the lineage graph. Prints its '
      'path; `run` writes one after every run.')
  report.add_argument('--run', help='run id, or a unique prefix of one '
                      '(see `inspect runs`; default: the newest run)')
  report.add_argument('--out', help='the HTML file to write (default: '
                      'WORKSPACE/reports/run-<run id>.html)')
  arguments.add_config_arguments(
      report, only=['pipeline_name', 'metadata'])
  report.set_defaults(func=_cmd_report)
  return parser


# The bounds of serve's batching flags.
MAX_SERVE_BATCH_WINDOWS = 1024
MAX_SERVE_BATCH_WAIT_MS = 1000
# Commands whose every log record goes to a log file (see pipeline.runners.logs).
_LOGGED_COMMANDS = ('run', 'schedule')


def main(argv: Optional[List[str]] = None) -> int:
  """Runs one command; returns the process exit code.

  Expected errors (bad data, bad settings, a refused run) print one line
  and exit 2. Any other error prints one line naming the log file that
  holds its traceback (also printed with `--debug`) and exits 1.
  """
  _quiet_libraries()
  args = build_parser().parse_args(argv)
  workspace = config_lib.DEFAULT_WORKSPACE
  try:
    config = arguments.config_from_args(args)
    workspace = config.workspace
    logs.hide(config.metadata_url().password)
    if args.command in _LOGGED_COMMANDS:
      logs.start(workspace, args.command)
    return args.func(args, config)
  except KeyboardInterrupt:
    print('interrupted', file=sys.stderr)
    return 130
  except BrokenPipeError:
    # The reader left (`| head -1`): end quietly, as Unix tools do; stdout
    # goes nowhere so the interpreter's last flush cannot fail again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141
  except Exception as e:  # pylint: disable=broad-except
    if errors.is_expected(e):
      print(logs.redact(f'error: {e}'), file=sys.stderr)
      return 2
    path = logs.log_traceback(e, workspace, args.command, echo=args.debug)
    print(logs.redact(f'error: {type(e).__name__}: {e}') +
          f'\n(the traceback is in {path}'
          f'{"" if args.debug else "; --debug also prints it here"})',
          file=sys.stderr)
    return 1
  finally:
    logs.stop()


def exit_with(code: int) -> None:
  """Exits with `code`. After tensorflow-io's S3 client was used, the
  interpreter's normal shutdown aborts in that library (exit 134:
  "pure virtual method called", tensorflow/io#2039, 0.37.1 with TF 2.16),
  so then everything is flushed and the process leaves at once."""
  from components.common import storage  # pylint: disable=g-import-not-at-top
  if storage.uses_tensorflow_io():
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # pylint: disable=protected-access
  sys.exit(code)


