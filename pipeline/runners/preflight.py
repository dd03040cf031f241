"""Checks before a run starts: every refusal names the setting or folder,
before TFX has done anything."""

import os
import tempfile

from components.common import span_layout
from components.common import storage
from pipeline.data import ingest
from pipeline.runners.run_errors import RunError
from pipeline.settings import config as config_lib


def _check_writable_uri(setting: str, folder: str) -> None:
  """Writes and removes a small object under a bucket folder."""
  probe = storage.join(folder, f'.write-check-{os.getpid()}')
  try:
    storage.write_bytes(probe, b'')
    storage.remove(probe)
  except OSError as e:
    raise RunError(f'{setting} {folder} is not writable ({e}); check the '
                   'bucket name and the credentials in the environment.'
                   ) from e


def check_writable(config: config_lib.PipelineConfig) -> None:
  """Refuses, naming the setting, folders the run would fail to write.

  Raises:
    RunError: for the first folder that cannot be created or written.
  """
  for setting, folder in (
      ('--pipeline-root', config.pipeline_root),
      ('--metadata', os.path.dirname(config.metadata_path)),
      ('--push-destination', config.push_destination),
      ('--workspace', config.workspace)):
    if not folder:
      continue  # The metadata store is a server.
    if storage.is_uri(folder):
      _check_writable_uri(setting, folder)
      continue
    try:
      os.makedirs(folder, exist_ok=True)
      with tempfile.NamedTemporaryFile(dir=folder, prefix='.write-check-'):
        pass
    except OSError as e:
      raise RunError(f'{setting} {folder} is not writable ({e.strerror}); '
                     'choose a folder this user can write.') from e


def check_newest_span(data_root: str) -> int:
  """The newest complete span (with its ingest record); refuses a run with
  none, or whose newest span holds no examples.

  Returns:
    The span number, which the run then pins ImportExampleGen to: on a
    bucket, an upload killed midway leaves a span prefix without its
    record, which ImportExampleGen alone would take for the newest span.

  Raises:
    RunError: naming the data root or the span folder.
  """
  spans = ingest.list_spans(data_root)
  if not spans:
    raise RunError(f'No ingested span in {data_root}. Ingest a folder '
                   'first: python -m pipeline ingest SRC_DIR')
  folder = storage.join(data_root, span_layout.span_folder_name(spans[-1]))
  # The same pattern ImportExampleGen reads the span with.
  pattern = span_layout.SPAN_PATTERN.replace('{SPAN}', str(spans[-1]))
  if not storage.glob(storage.join(data_root, pattern)):
    raise RunError(f'{folder} holds no example files ({pattern}); remove '
                   'it or ingest the data again.')
  return spans[-1]


def check_drift_thresholds(config: config_lib.PipelineConfig) -> None:
  """Refuses `--drift-thresholds` naming a feature the schema does not
  compare between spans, before anything runs.

  Raises:
    RunError: naming the feature and the ones that can be set.
  """
  thresholds = config.drift_threshold_map()
  if not thresholds:
    return
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from tensorflow_metadata.proto.v0 import schema_pb2  # pylint: disable=g-import-not-at-top
  from components.common import drift  # pylint: disable=g-import-not-at-top
  with open(config.schema_path, encoding='utf-8') as f:
    schema = text_format.Parse(f.read(), schema_pb2.Schema())
  try:
    drift.apply_thresholds(schema, thresholds)
  except ValueError as e:
    raise RunError(str(e)) from e


def check_front_ends(config: config_lib.PipelineConfig, newest: int) -> None:
  """Refuses a run whose window of spans mixes recordings drawn with
  different audio front ends, before any component runs (the window's
  component checks it again on what it reads).

  Raises:
    RunError: naming both spans and what differs.
  """
  from components.span_window import window  # pylint: disable=g-import-not-at-top
  try:
    window.window_front_end(window.choose_window(
        config.data_root, span_layout.SPAN_PATTERN, newest,
        config.window_spans))
  except window.SpanWindowError as e:
    message = str(e)
    raise RunError(message[:1].upper() + message[1:]) from e
