"""SpanWindow: train on the latest K spans, one span per ExampleGen run.

ImportExampleGen reads only the newest ingested span, so every span is its
own `Examples` artifact in ML Metadata with its statistics and validation,
made once and served from the cache afterwards. Training needs the latest K
spans: this component takes the newest span's artifact, finds the spans
before it in the data root, and writes them as one Examples artifact split
into train and eval by hash, exactly as ImportExampleGen splits.

The window's artifact records its spans (`window_spans`, e.g. "4,5,6") and,
per span, the source folder, class counts, ingest time and fingerprint
(`span_sources`, JSON), so a model's lineage names its data from ML Metadata
alone. It is cached while the newest span is unchanged.

Usage::

  example_gen = ImportExampleGen(input_base=data_root, input_config=...)
  window = SpanWindow(
      examples=example_gen.outputs['examples'],
      input_base=data_root,
      input_config=example_gen_pb2.Input(splits=[
          example_gen_pb2.Input.Split(name='all',
                                      pattern='span-{SPAN}/*.tfrecord.gz')]),
      output_config=example_gen_pb2.Output(split_config=...),
      num_spans=3)
  transform = Transform(examples=window.outputs['examples'], ...)
"""

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from components.span_window import executor


class SpanWindowSpec(types.ComponentSpec):
  """Input, output and settings of :class:`SpanWindow`."""

  PARAMETERS = {
      standard_component_specs.INPUT_BASE_KEY: ExecutionParameter(type=str),
      standard_component_specs.INPUT_CONFIG_KEY: ExecutionParameter(
          type=example_gen_pb2.Input),
      standard_component_specs.OUTPUT_CONFIG_KEY: ExecutionParameter(
          type=example_gen_pb2.Output),
      standard_component_specs.OUTPUT_DATA_FORMAT_KEY: ExecutionParameter(
          type=int),
      executor.NUM_SPANS_KEY: ExecutionParameter(type=int),
      executor.RECORD_VERSION_KEY: ExecutionParameter(type=int),
  }
  INPUTS = {
      executor.NEWEST_SPAN_KEY: ChannelParameter(
          type=standard_artifacts.Examples),
  }
  OUTPUTS = {
      executor.EXAMPLES_KEY: ChannelParameter(
          type=standard_artifacts.Examples),
  }


class SpanWindow(base_component.BaseComponent):
  """The latest `num_spans` spans as one Examples artifact (see module doc)."""

  SPEC_CLASS = SpanWindowSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, *, examples: types.BaseChannel, input_base: str,
               input_config: example_gen_pb2.Input,
               output_config: example_gen_pb2.Output, num_spans: int):
    """Creates the component.

    Args:
      examples: ImportExampleGen's `examples`, the newest span.
      input_base: the data root both components read.
      input_config: ImportExampleGen's input config: one split whose pattern
        holds `{SPAN}`.
      output_config: the train/eval hash split of the window.
      num_spans: K, the most spans in the window.
    """
    if len(input_config.splits) != 1 or (
        '{SPAN}' not in input_config.splits[0].pattern):
      raise ValueError('SpanWindow needs one input split whose pattern holds '
                       '{SPAN}, got ' + str(input_config).replace('\n', ' '))
    if num_spans < 1:
      raise ValueError(f'num_spans must be at least 1, got {num_spans}')
    super().__init__(spec=SpanWindowSpec(
        newest_span=examples, input_base=input_base,
        input_config=input_config, output_config=output_config,
        output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
        num_spans=num_spans, record_version=executor.RECORD_VERSION,
        examples=types.Channel(type=standard_artifacts.Examples)))
