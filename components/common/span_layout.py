"""The layout of the data root and the spans' recorded properties, defined
once, light enough for the command line to import: `ingest` writes
`span-N/` folders holding gzipped TFRecord files and `ingest.json`;
ImportExampleGen, the data gate, the window of spans
(`components/span_window/`) and the pusher read them.
"""

import json
import re
from typing import List

from components.common import storage

# A span folder under the data root, as ExampleGen's span pattern and as a
# regular expression.
SPAN_PATTERN = 'span-{SPAN}/*.tfrecord.gz'
SPAN_DIR_RE = re.compile(r'^span-(\d+)$')
# What `ingest` writes last into a span folder: its source and fingerprint.
REPORT_NAME = 'ingest.json'
# Custom properties of the window's Examples artifact: its spans ("4,5,6")
# and, per span, the source folder, counts, ingest time and fingerprint
# (JSON).
WINDOW_SPANS_PROPERTY = 'window_spans'
SPAN_SOURCES_PROPERTY = 'span_sources'
# The audio front end its recordings were drawn with (JSON; absent when the
# window holds images only), as `ingest` records it in `ingest.json`.
FRONT_END_PROPERTY = 'front_end'
# The families of the window's positive class (JSON list, sorted; [] when
# its spans give none), as `ingest` records them in `ingest.json`.
FAMILIES_PROPERTY = 'families'
# The recorded front end's fields that decide the picture (the record is
# written by components/frontend/spec.py; the window compares it as data).
COMPARED_FRONT_END = ('version', 'sample_rate', 'window_samples',
                      'hop_samples', 'fft_size', 'frame_hop_samples',
                      'frames', 'mel_bands', 'mel_min_hz', 'mel_max_hz',
                      'top_db', 'colormap')


def window_property(artifact, name: str):
  """A property the window records as JSON on its Examples artifact (a
  TFX artifact), decoded; None when it holds none."""
  if not artifact.has_custom_property(name):
    return None
  return json.loads(artifact.get_string_custom_property(name))


def span_folder_name(span: int) -> str:
  """The folder name of span `span` under the data root."""
  return f'span-{span}'


def list_spans(data_root: str) -> List[int]:
  """Numbers of the complete span folders under `data_root` (those with
  their ingest record), sorted; the data root may be a `gs://` or `s3://`
  URI."""
  spans = []
  for name in storage.listdir(data_root):
    match = SPAN_DIR_RE.match(name)
    if match and storage.isfile(storage.join(data_root, name, REPORT_NAME)):
      spans.append(int(match.group(1)))
  return sorted(spans)


def artifact_span(artifact) -> int:
  """The span of a TFX artifact: ImportExampleGen records it as a custom
  property, while the type declares a property that stays 0."""
  if artifact.has_custom_property('span'):
    return int(artifact.get_int_custom_property('span'))
  return int(getattr(artifact, 'span', 0) or 0)
