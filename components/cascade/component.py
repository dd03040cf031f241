"""CascadeEvaluator: the pair judged as the pattern runs it, before
either phase is pushed.

Phase one's TFLite model (the TFLite converter's candidate, the file
devices would get; the pushed `LATEST` when the candidate is not ready)
scores the window's eval examples and routes those at or above its chosen
threshold; phase two's SavedModel names each routed example's family or
rejects it. The figures (`figures.judge`): phase one's rates, phase two's
accuracy on what it is sent, end-to-end accuracy and cloud share at 5, 20
and 50% instruments, the device alone and the cloud alone at each, every
family's end-to-end recall, and the curve of accuracy against cloud share
as the threshold moves. They are written to `cascade.json` in the
`evaluation` (a ModelEvaluation) and recorded on it.

The gate (`figures.verdict`), at 20% instruments: the pair's end-to-end
accuracy may be at most `max_loss_vs_cloud` below sending every window to
the cloud, it may send at most `max_cloud_share` of windows, and it may
fall at most `max_accuracy_drop` below the last pushed pair's (the
`LATEST` phase one and the newest phase two, judged on the same examples;
skipped when there is none, or it pairs otherwise). The `blessing` (a
ModelBlessing) says whether it passed, and why not; neither pusher pushes
a pair it did not bless.

Usage::

  cascade = CascadeEvaluator(
      candidate=converter.outputs['candidate'],
      model=phase_two_trainer.outputs['model'],
      span_examples=window.outputs['examples'], image_size=128, channels=3,
      push_destination='/models/instrument', serving_destination='/served',
      model_name='instruments', gate=figures.Gate())
"""

import dataclasses

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from components import contracts
from components.cascade import executor
from components.cascade import figures

C = contracts.CascadeEvaluator


class CascadeEvaluatorSpec(types.ComponentSpec):
  """Inputs, output and settings of :class:`CascadeEvaluator`."""

  PARAMETERS = {
      executor.IMAGE_SIZE_KEY: ExecutionParameter(type=int),
      executor.CHANNELS_KEY: ExecutionParameter(type=int),
      executor.PUSH_DESTINATION_KEY: ExecutionParameter(type=str),
      executor.SERVING_DESTINATION_KEY: ExecutionParameter(type=str),
      executor.NAME_KEY: ExecutionParameter(type=str),
      **{name: ExecutionParameter(type=float) for name in executor.GATE_KEYS},
  }
  INPUTS = {
      C.CANDIDATE: ChannelParameter(type=standard_artifacts.Model),
      C.MODEL: ChannelParameter(type=standard_artifacts.Model),
      C.SPAN_EXAMPLES: ChannelParameter(type=standard_artifacts.Examples),
  }
  OUTPUTS = {
      C.EVALUATION: ChannelParameter(
          type=standard_artifacts.ModelEvaluation),
      C.BLESSING: ChannelParameter(type=standard_artifacts.ModelBlessing),
  }


class CascadeEvaluator(base_component.BaseComponent):
  """Judges phase one's candidate and phase two's model together and gates
  their push.

  Args:
    candidate: the TFLite converter's candidate (the model and its
      threshold).
    model: phase two's Trainer's Model.
    span_examples: the window's raw Examples (its eval split).
    image_size: the models' square input side.
    channels: their input channels.
    push_destination: where phase one is pushed (the last pushed pair's
      phase one, and phase one when the candidate is not ready).
    serving_destination: where phase two is pushed.
    model_name: the name phase two is pushed and served under.
    gate: the bars the pair must pass (:class:`figures.Gate`).
  """

  SPEC_CLASS = CascadeEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, candidate: types.BaseChannel,
               model: types.BaseChannel, span_examples: types.BaseChannel,
               image_size: int, channels: int, push_destination: str,
               serving_destination: str, model_name: str,
               gate: figures.Gate = figures.Gate()):
    super().__init__(spec=CascadeEvaluatorSpec(
        candidate=candidate, model=model, span_examples=span_examples,
        image_size=image_size, channels=channels,
        push_destination=push_destination,
        serving_destination=serving_destination, model_name=model_name,
        **{name: float(value) for name, value in
           dataclasses.asdict(gate).items()},
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
