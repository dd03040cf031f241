"""TFLiteConverter and TFLitePusher: quantize the blessed model, prove it,
choose its threshold, and push it for devices once the pair is judged.

TFX 1.16's `TFLiteRewriter` converts inside the Trainer, before the
Evaluator has blessed anything, and never applies full-integer settings;
TFMA cannot compare a TFLite model with its SavedModel. These components
convert, prove and push at the end of the pipeline instead, in two steps,
so the cascade (`components.cascade`) can judge the model devices would
get before it is pushed:

**TFLiteConverter** writes a *candidate* (a Model artifact holding the
version's files and manifest, every figure, `ready` or the reason not):

1. If the Evaluator did not bless the model, nothing is converted.
2. The Trainer's `serving_image` signature is converted in the chosen
   quantization mode (`none`, `dynamic`, `float16` or `int8`; `int8` is
   calibrated on a sample of the training split).
3. Proof: the TFLite interpreter and the SavedModel score the eval split;
   accuracy, AUC, their differences and the agreement are recorded, with
   sizes and median single-image latency. An accuracy drop over
   `max_accuracy_drop`, or a model over the device budget
   (`max_tflite_bytes`, `max_latency_ms`, `max_arena_bytes`), is not ready.
   In `int8` mode, or with an arena limit, the model also runs in
   TensorFlow Lite Micro on `micro_examples` eval images: its arena, its
   outputs against LiteRT's, and a C source array of it for firmware.
4. Phase one's threshold is chosen on the eval split for
   `phase_one_recall` (`components.tflite.threshold`), and the waveform
   model, labels and manifest are written beside the model.

**TFLitePusher** (as TFX's Pusher: check, copy, mark) writes a ready
candidate as the next numbered version under `push_destination`, then
moves the `LATEST` pointer (a device polling the folder never sees a
partial model), unless the CascadeEvaluator held the pair back. Its
PushedModel carries the candidate's figures.

Usage::

  converter = TFLiteConverter(
      model=trainer.outputs['model'],
      model_blessing=evaluator.outputs['blessing'],
      examples=transform.outputs['transformed_examples'],
      settings=PushSettings(
          push_destination='/models/instrument',
          class_names=('not_instrument', 'instrument'),
          quantization='dynamic', image_size=128, channels=3,
          max_accuracy_drop=0.01, representative_examples=300,
          validation_examples=2000, latency_runs=50,
          budget=Budget(max_tflite_bytes=250_000)))
  pusher = TFLitePusher(candidate=converter.outputs['candidate'],
                        push_destination='/models/instrument',
                        cascade=cascade.outputs['blessing'])

The pipeline passes its push-and-budget section
(`PipelineConfig.push_settings()`), where the defaults live.
"""

from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from components import contracts
from components.tflite_pusher import convert_executor
from components.tflite_pusher import executor
from components.tflite_pusher.settings import PushSettings

CONVERTER = contracts.TFLiteConverter
PUSHER = contracts.TFLitePusher


class TFLiteConverterSpec(types.ComponentSpec):
  """Inputs, output and settings of :class:`TFLiteConverter`."""

  PARAMETERS = {
      'quantization': ExecutionParameter(type=str),
      'class_names': ExecutionParameter(type=str),
      'image_size': ExecutionParameter(type=int),
      'channels': ExecutionParameter(type=int),
      'max_accuracy_drop': ExecutionParameter(type=float),
      'phase_one_recall': ExecutionParameter(type=float),
      'representative_examples': ExecutionParameter(type=int),
      'validation_examples': ExecutionParameter(type=int),
      'latency_runs': ExecutionParameter(type=int),
      'max_tflite_bytes': ExecutionParameter(type=int),
      'max_latency_ms': ExecutionParameter(type=float),
      'max_arena_bytes': ExecutionParameter(type=int),
      'micro_examples': ExecutionParameter(type=int),
  }
  INPUTS = {
      CONVERTER.MODEL: ChannelParameter(type=standard_artifacts.Model),
      CONVERTER.MODEL_BLESSING: ChannelParameter(
          type=standard_artifacts.ModelBlessing, optional=True),
      CONVERTER.EXAMPLES: ChannelParameter(type=standard_artifacts.Examples),
      CONVERTER.SPAN_EXAMPLES: ChannelParameter(
          type=standard_artifacts.Examples, optional=True),
  }
  OUTPUTS = {
      CONVERTER.CANDIDATE: ChannelParameter(type=standard_artifacts.Model),
  }


class TFLiteConverter(base_component.BaseComponent):
  """Converts, proves and writes the candidate TFLite version.

  Args:
    model: the Trainer's Model channel (SavedModel with `serving_image`).
    examples: Transform's transformed examples (`train` and `eval` splits of
      PNG images), for calibration, the parity check and the threshold.
    settings: the push-and-budget section of the settings, one typed value
      (:class:`PushSettings`: class names, quantization, input, tolerances,
      sample sizes, the recall target and the device budget), recorded as
      the component's execution properties (all but the destination, which
      is the pusher's).
    model_blessing: the Evaluator's blessing; without one the model is
      converted unvalidated.
    span_examples: the window's raw Examples; the audio front end and the
      families they record (if any) are written into the manifest.
  """

  SPEC_CLASS = TFLiteConverterSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(convert_executor.Executor)

  def __init__(self,
               model: types.BaseChannel,
               examples: types.BaseChannel,
               settings: PushSettings,
               model_blessing: Optional[types.BaseChannel] = None,
               span_examples: Optional[types.BaseChannel] = None):
    properties = settings.to_exec_properties()
    properties.pop(executor.DESTINATION_KEY)
    super().__init__(spec=TFLiteConverterSpec(
        model=model, model_blessing=model_blessing, examples=examples,
        span_examples=span_examples,
        candidate=types.Channel(type=standard_artifacts.Model),
        **properties))


class TFLitePusherSpec(types.ComponentSpec):
  """Inputs, output and settings of :class:`TFLitePusher`."""

  PARAMETERS = {
      executor.DESTINATION_KEY: ExecutionParameter(type=str),
  }
  INPUTS = {
      PUSHER.CANDIDATE: ChannelParameter(type=standard_artifacts.Model),
      PUSHER.CASCADE: ChannelParameter(
          type=standard_artifacts.ModelBlessing, optional=True),
  }
  OUTPUTS = {
      PUSHER.PUSHED_MODEL: ChannelParameter(
          type=standard_artifacts.PushedModel),
  }


class TFLitePusher(base_component.BaseComponent):
  """Pushes the TFLite converter's candidate for devices.

  Args:
    candidate: the TFLiteConverter's candidate.
    push_destination: the folder or bucket URI of numbered versions.
    cascade: the CascadeEvaluator's blessing; a pair it did not bless is
      not pushed. Absent for a window without families.
  """

  SPEC_CLASS = TFLitePusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, candidate: types.BaseChannel, push_destination: str,
               cascade: Optional[types.BaseChannel] = None):
    super().__init__(spec=TFLitePusherSpec(
        candidate=candidate, cascade=cascade,
        push_destination=push_destination,
        pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
