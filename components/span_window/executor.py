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
from typing import Any, Dict, List

import apache_beam as beam
import tensorflow as tf
from tfx import types
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.common import span_layout
from components.span_window.window import (  # the rules, named here too
    SpanWindowError, choose_window, span_sources, window_families,
    window_front_end)

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
