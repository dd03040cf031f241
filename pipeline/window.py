"""Rolling windows of the latest K spans, as ImportExampleGen spans.

TFX's ExampleGen reads one span per run (its `RangeConfig` takes a single
span), while retraining should see the latest K spans. So, before each run,
the runner lays out a *window* for the newest data span N: a folder
`<window root>/span-N/` of symbolic links to the example files of data spans
N-K+1 .. N, plus `window.json` naming them. ImportExampleGen reads
`span-{SPAN}/*` under the window root, picks span N, and records it on its
Examples artifact; its fingerprint (file sizes and times) is unchanged while
no span is added, so an unchanged window is served from the cache.

Spans are immutable once ingested, which is what makes links safe.
"""

import json
import os
import shutil
from typing import List

from components import local_disk
from pipeline import ingest

WINDOW_FILE = 'window.json'


class WindowError(RuntimeError):
  """Raised when no window can be laid out (no span ingested)."""


def window_root(workspace: str, num_spans: int) -> str:
  """The folder of the windows of `num_spans` spans in a workspace."""
  return os.path.join(workspace, 'windows', f'last-{num_spans}')


def read_window(window_dir: str) -> List[int]:
  """The data spans a window folder covers."""
  with open(os.path.join(window_dir, WINDOW_FILE), encoding='utf-8') as f:
    return list(json.load(f)['spans'])


def prepare(data_root: str, root: str, num_spans: int) -> List[int]:
  """Lays out the window of the newest span unless it is already there.

  Args:
    data_root: folder of the ingested `span-N` folders.
    root: the window root (see :func:`window_root`).
    num_spans: K, the number of newest spans in the window.

  Returns:
    The data spans of the window, oldest first.

  Raises:
    WindowError: when no span has been ingested, or a span in the window
      holds no example file.
  """
  spans = ingest.list_spans(data_root)
  if not spans:
    raise WindowError(f'No ingested span in {data_root}. Ingest a folder '
                      'first: python -m pipeline ingest SRC_DIR')
  chosen = spans[-num_spans:]
  for span in chosen:
    span_dir = os.path.join(data_root, f'span-{span}')
    if not any(name.endswith('.tfrecord.gz') for name in os.listdir(span_dir)):
      raise WindowError(
          f'{span_dir} holds no example files (*.tfrecord.gz); remove it or '
          'ingest the data again.')
  target = os.path.join(root, f'span-{chosen[-1]}')
  if os.path.isfile(os.path.join(target, WINDOW_FILE)):
    if read_window(target) == chosen:
      return chosen
    shutil.rmtree(target)
  with local_disk.staged_folder(target) as staging:
    for span in chosen:
      span_dir = os.path.join(data_root, f'span-{span}')
      for name in sorted(os.listdir(span_dir)):
        if name.endswith('.tfrecord.gz'):
          os.symlink(os.path.join(span_dir, name),
                     os.path.join(staging, f'span{span:05d}-{name}'))
    with open(os.path.join(staging, WINDOW_FILE), 'w', encoding='utf-8') as f:
      json.dump({'spans': chosen, 'data_root': data_root}, f)
  return chosen
