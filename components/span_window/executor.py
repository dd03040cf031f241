"""SpanWindow executor: choose the window's spans, then split them as
ImportExampleGen does.

The spans are chosen from the data root (`tf.io.gfile`, so it may be a
`gs://` or `s3://` URI), not from ML Metadata: the Kubeflow Pipelines v2
compiler of TFX 1.16 resolves at most one artifact per channel, by type
only, so the latest K span artifacts cannot reach a component there (see
tests/test_span_window.py). Reading, hash-splitting and writing are
ImportExampleGen's own executor, applied to the window's files.
"""

import json
import os
from typing import Any, Dict, List, NamedTuple, Optional

import apache_beam as beam
import tensorflow as tf
from tfx import types
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.common import span_layout
from components.common import errors

NEWEST_SPAN_KEY = 'newest_span'
EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY
NUM_SPANS_KEY = 'num_spans'
# What the window records on its artifact, as a version: part of the
# component's cache key, so a window written before a property existed
# (its families, which phase two's Cond reads) is made again, not served
# from the cache without it.
RECORD_VERSION_KEY = 'record_version'
RECORD_VERSION = 2
# Where the executor hands the chosen file patterns to the read transform.
_PATTERNS_KEY = '_span_window_patterns'


class SpanWindowError(errors.PipelineError, RuntimeError):
  """Raised when the window cannot be assembled from the data root."""


class WindowSpan(NamedTuple):
  """One span of a window: its number, file pattern and ingest record."""
  span: int
  pattern: str
  report: Dict[str, Any]


def read_span_report(data_root: str, span: int) -> Dict[str, Any]:
  """A span's ingest record (source folder, fingerprint, counts)."""
  path = os.path.join(data_root, span_layout.span_folder_name(span),
                      span_layout.REPORT_NAME)
  try:
    with tf.io.gfile.GFile(path, 'r') as f:
      return json.loads(f.read())
  except (tf.errors.OpError, ValueError) as e:
    raise SpanWindowError(f'cannot read the ingest record {path}: {e}') from e


def choose_window(data_root: str, pattern: str, newest: int,
                  num_spans: int) -> List[WindowSpan]:
  """The spans of the window that ends with span `newest`, oldest first.

  Walks back from `newest` over the complete span folders and keeps up to
  `num_spans` of them. A span ingested again from an identical source (the
  same fingerprint as a newer span of the window) is left out, so no data
  counts twice.

  Args:
    data_root: folder (or URI) of the `span-N` folders.
    pattern: the span file pattern with `{SPAN}`, relative to `data_root`.
    newest: the newest span, the one ImportExampleGen read.
    num_spans: K, the most spans in the window.

  Returns:
    The chosen spans with their file patterns and ingest records.

  Raises:
    SpanWindowError: when span `newest` is not a complete span folder or a
      chosen span holds no example file.
  """
  spans = [span for span in span_layout.list_spans(data_root)
           if span <= newest]
  if newest not in spans:
    raise SpanWindowError(
        f'span {newest} is not a complete span folder under {data_root}')
  chosen: List[WindowSpan] = []
  fingerprints = set()
  for span in reversed(spans):
    if len(chosen) == num_spans:
      break
    report = read_span_report(data_root, span)
    fingerprint = report.get('fingerprint')
    if fingerprint and fingerprint in fingerprints:
      continue
    fingerprints.add(fingerprint)
    span_pattern = pattern.replace('{SPAN}', str(span))
    if not tf.io.gfile.glob(os.path.join(data_root, span_pattern)):
      folder = os.path.join(data_root, span_layout.span_folder_name(span))
      raise SpanWindowError(
          f'span folder {folder} holds no file matching {span_pattern}; '
          'remove it or ingest the data again')
    chosen.append(WindowSpan(span, span_pattern, report))
  return list(reversed(chosen))


def window_front_end(window: List[WindowSpan]) -> Optional[Dict[str, Any]]:
  """The audio front end the window's recordings were drawn with (None when
  no span recorded one: images only).

  Raises:
    SpanWindowError: when two spans of the window were drawn with different
      front ends; it names both and says to ingest again.
  """
  chosen: Optional[WindowSpan] = None
  for entry in window:
    record = entry.report.get('front_end')
    if not record:
      continue
    if chosen is None:
      chosen = entry
      continue
    first = chosen.report['front_end']
    differ = [f'{key} {first.get(key)} against {record.get(key)}'
              for key in span_layout.COMPARED_FRONT_END
              if first.get(key) != record.get(key)]
    if differ:
      raise SpanWindowError(
          f'the window mixes spans drawn with different audio front ends: '
          f'span {chosen.span} and span {entry.span} differ in '
          f'{"; ".join(differ)}. A model cannot learn from both: ingest the '
          f'recordings of span {chosen.span} again with the front end '
          'settings of the newer span (or set --window-spans so the window '
          'holds one front end).')
  return chosen.report['front_end'] if chosen else None


def window_families(window: List[WindowSpan]) -> List[str]:
  """The families every span of the window gives its positive class
  (sorted; [] when none: phase one alone).

  A span ingested before families were recorded gives none.

  Raises:
    SpanWindowError: when two spans give different families, naming both
      spans and the families only one of them has, like a front end change.
  """
  first: Optional[WindowSpan] = None
  for entry in window:
    if first is None:
      first = entry
      continue
    old = set(first.report.get('families') or [])
    new = set(entry.report.get('families') or [])
    if old != new:
      only = '; '.join(
          f'only span {span} has {", ".join(sorted(names))}'
          for span, names in ((first.span, old - new),
                              (entry.span, new - old)) if names)
      raise SpanWindowError(
          f'the window mixes spans with different families: span '
          f'{first.span} and span {entry.span} differ ({only}). Phase two '
          'learns one set of families: ingest the older span again from '
          'folders with the newer family folders (or set --window-spans so '
          'the window holds one family set).')
  return sorted((first.report.get('families') or []) if first else [])


def span_sources(window: List[WindowSpan]) -> Dict[str, Dict[str, Any]]:
  """What the window records per span: source folder, counts (and per
  sub-folder of each class: families, kinds), ingest time."""
  return {str(entry.span): {'source': entry.report.get('source'),
                            'counts': entry.report.get('counts'),
                            'groups': entry.report.get('groups'),
                            'ingested': entry.report.get('created'),
                            'fingerprint': entry.report.get('fingerprint')}
          for entry in window}


class Executor(import_executor.Executor):
  """Writes the latest K spans as one Examples artifact, split by hash."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    """Reads every span file pattern of the window and merges them."""
    read_one = super().GetInputSourceToExamplePTransform()

    @beam.ptransform_fn
    def ReadWindow(pipeline: beam.Pipeline,  # pylint: disable=invalid-name
                   exec_properties: Dict[str, Any],
                   split_pattern: str) -> beam.pvalue.PCollection:
      del split_pattern  # The window's patterns replace the template.
      records = [
          pipeline | f'ReadSpan[{span}]' >> read_one(exec_properties, pattern)
          for span, pattern in exec_properties[_PATTERNS_KEY]]
      return tuple(records) | 'MergeSpans' >> beam.Flatten()

    return ReadWindow

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Chooses the window of the newest span, then writes its splits.

    Args:
      input_dict: `newest_span`: ImportExampleGen's artifact of the newest
        span.
      output_dict: `examples`: the window's Examples artifact.
      exec_properties: `input_base` (the data root), `input_config` (one
        split whose pattern holds `{SPAN}`), `output_config` (the hash
        split), `num_spans` and `output_data_format`.

    Raises:
      SpanWindowError: when the data root does not hold the window's spans.
    """
    newest = artifact_utils.get_single_instance(input_dict[NEWEST_SPAN_KEY])
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY],
        input_config)
    window = choose_window(
        exec_properties[standard_component_specs.INPUT_BASE_KEY],
        input_config.splits[0].pattern, span_layout.artifact_span(newest),
        int(exec_properties[NUM_SPANS_KEY]))
    front_end = window_front_end(window)
    families = window_families(window)
    properties = dict(exec_properties)
    properties[_PATTERNS_KEY] = [(entry.span, entry.pattern)
                                 for entry in window]
    super().Do(input_dict, output_dict, properties)
    output = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
    output.set_int_custom_property('span', span_layout.artifact_span(newest))
    output.set_string_custom_property(
        span_layout.WINDOW_SPANS_PROPERTY,
        ','.join(str(entry.span) for entry in window))
    output.set_string_custom_property(
        span_layout.SPAN_SOURCES_PROPERTY,
        json.dumps(span_sources(window)))  # classes stay in label order
    output.set_string_custom_property(span_layout.FAMILIES_PROPERTY,
                                      json.dumps(families))
    if front_end:
      output.set_string_custom_property(span_layout.FRONT_END_PROPERTY,
                                        json.dumps(front_end, sort_keys=True))
