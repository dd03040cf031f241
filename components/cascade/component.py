"""CascadeEvaluator: the pair judged as the pattern runs it.

Phase one's pushed TFLite model (the one devices run) scores the window's
eval examples and routes those at or above its chosen threshold; phase
two's SavedModel names each routed example's family or rejects it. The
figures (`figures.judge`): phase one's rates, phase two's accuracy on what
it is sent, end-to-end accuracy and cloud share at 5, 20 and 50%
instruments, the device alone and the cloud alone at each, every family's
end-to-end recall, and the curve of accuracy against cloud share as the
threshold moves. They are written to `cascade.json` in the artifact (a
`ModelEvaluation`) and recorded on it; when phase one was not pushed, the
artifact says so.

Usage::

  cascade = CascadeEvaluator(
      pushed_model=tflite_pusher.outputs['pushed_model'],
      model=phase_two_trainer.outputs['model'],
      span_examples=window.outputs['examples'], image_size=128, channels=3)
"""

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from components import contracts
from components.cascade import executor

C = contracts.CascadeEvaluator


class CascadeEvaluatorSpec(types.ComponentSpec):
  """Inputs, output and settings of :class:`CascadeEvaluator`."""

  PARAMETERS = {
      executor.IMAGE_SIZE_KEY: ExecutionParameter(type=int),
      executor.CHANNELS_KEY: ExecutionParameter(type=int),
  }
  INPUTS = {
      C.PUSHED_MODEL: ChannelParameter(type=standard_artifacts.PushedModel),
      C.MODEL: ChannelParameter(type=standard_artifacts.Model),
      C.SPAN_EXAMPLES: ChannelParameter(type=standard_artifacts.Examples),
  }
  OUTPUTS = {
      C.EVALUATION: ChannelParameter(
          type=standard_artifacts.ModelEvaluation),
  }


class CascadeEvaluator(base_component.BaseComponent):
  """Judges phase one's pushed model and phase two's model together.

  Args:
    pushed_model: the TFLite pusher's PushedModel (the model and its
      threshold).
    model: phase two's Trainer's Model.
    span_examples: the window's raw Examples (its eval split).
    image_size: the models' square input side.
    channels: their input channels.
  """

  SPEC_CLASS = CascadeEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, pushed_model: types.BaseChannel,
               model: types.BaseChannel, span_examples: types.BaseChannel,
               image_size: int, channels: int):
    super().__init__(spec=CascadeEvaluatorSpec(
        pushed_model=pushed_model, model=model, span_examples=span_examples,
        image_size=image_size, channels=channels,
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation)))
