"""TFLitePusher: quantize the blessed model, prove it, push it for devices.

TFX 1.16's `TFLiteRewriter` converts inside the Trainer, before the
Evaluator has blessed anything, and never applies full-integer settings;
TFMA cannot compare a TFLite model with its SavedModel. This component
converts, proves and pushes at the end of the pipeline instead:

1. If the Evaluator did not bless the model, nothing is converted or pushed;
   the output records `pushed=0` and the reason, and the run succeeds.
2. The Trainer's `serving_image` signature is converted in the chosen
   quantization mode (`none`, `dynamic`, `float16` or `int8`; `int8` is
   calibrated on a sample of the training split).
3. Proof before push: the TFLite interpreter and the SavedModel score the
   eval split; accuracy, AUC, their differences and the agreement are
   recorded, with sizes and median single-image latency. If the accuracy drop
   exceeds `max_accuracy_drop`, nothing is pushed; nor is a model over the
   device budget (`max_tflite_bytes`, `max_latency_ms`, `max_arena_bytes`).
   In `int8` mode, or with an arena limit, the model also runs in
   TensorFlow Lite Micro on `micro_examples` eval images: its arena, its
   outputs against LiteRT's, and a C source array of it for firmware.
4. The push writes `model.tflite` (with labels and normalisation embedded
   where tflite-support can be loaded), `labels.txt` and `manifest.json` as
   the next numbered version under `push_destination`, then moves the
   `LATEST` pointer; a device polling the folder never sees a partial model.

Usage::

  pusher = TFLitePusher(
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

from components.tflite_pusher import executor
from components.tflite_pusher.settings import PushSettings


class TFLitePusherSpec(types.ComponentSpec):
  """Inputs, output and settings of :class:`TFLitePusher`."""

  PARAMETERS = {
      'push_destination': ExecutionParameter(type=str),
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
      executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      executor.MODEL_BLESSING_KEY: ChannelParameter(
          type=standard_artifacts.ModelBlessing, optional=True),
      executor.EXAMPLES_KEY: ChannelParameter(
          type=standard_artifacts.Examples),
      executor.SPAN_EXAMPLES_KEY: ChannelParameter(
          type=standard_artifacts.Examples, optional=True),
  }
  OUTPUTS = {
      executor.PUSHED_MODEL_KEY: ChannelParameter(
          type=standard_artifacts.PushedModel),
  }


class TFLitePusher(base_component.BaseComponent):
  """Converts, validates and pushes a quantized TFLite model.

  Args:
    model: the Trainer's Model channel (SavedModel with `serving_image`).
    examples: Transform's transformed examples (`train` and `eval` splits of
      PNG images), for calibration and the parity check.
    settings: the push-and-budget section of the settings, one typed value
      (:class:`PushSettings`: destination, class names, quantization,
      input, tolerances, sample sizes and the device budget), recorded as
      the component's execution properties.
    model_blessing: the Evaluator's blessing; without one the model is
      pushed unvalidated.
    span_examples: the window's raw Examples; the audio front end they
      record (if any) is written into the manifest.
  """

  SPEC_CLASS = TFLitePusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self,
               model: types.BaseChannel,
               examples: types.BaseChannel,
               settings: PushSettings,
               model_blessing: Optional[types.BaseChannel] = None,
               span_examples: Optional[types.BaseChannel] = None):
    spec = TFLitePusherSpec(
        model=model,
        model_blessing=model_blessing,
        examples=examples,
        span_examples=span_examples,
        pushed_model=types.Channel(type=standard_artifacts.PushedModel),
        **settings.to_exec_properties())
    super().__init__(spec=spec)
