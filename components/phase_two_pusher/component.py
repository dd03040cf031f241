"""PhaseTwoPusher: push phase two's blessed model for a model server.

1. If phase two's Evaluator did not bless the model, nothing is pushed;
   the output records `pushed=0` and the reason, and the run succeeds.
2. The serving SavedModel is built (`components.cloud.serving_model`):
   `serving_default` takes one window of 16-bit PCM (spans of recordings,
   the recorded front end inside) or one encoded image, and answers each
   class's probability, the class names and the label.
3. Proof before push: the serving model and phase two's SavedModel answer
   the eval split's kept windows (or images) and the front end's test
   signals; a model that answers differently is not pushed, and the run
   says why.
4. The push writes it as the next numbered version under
   `<serving_destination>/<model_name>/`, the layout TensorFlow Serving and
   KServe's TensorFlow runtime read, with `assets.extra/manifest.json`.

Usage::

  pusher = PhaseTwoPusher(
      model=phase_two_trainer.outputs['model'],
      model_blessing=phase_two_evaluator.outputs['blessing'],
      span_examples=window.outputs['examples'],
      serving_destination='/models/served', model_name='instruments',
      image_size=128, channels=3)
"""

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from components.phase_two_pusher import executor


class PhaseTwoPusherSpec(types.ComponentSpec):
  """Inputs, output and settings of :class:`PhaseTwoPusher`."""

  PARAMETERS = {
      executor.DESTINATION_KEY: ExecutionParameter(type=str),
      executor.MODEL_NAME_KEY: ExecutionParameter(type=str),
      executor.IMAGE_SIZE_KEY: ExecutionParameter(type=int),
      executor.CHANNELS_KEY: ExecutionParameter(type=int),
      executor.CHECK_REQUESTS_KEY: ExecutionParameter(type=int),
  }
  INPUTS = {
      executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      executor.MODEL_BLESSING_KEY: ChannelParameter(
          type=standard_artifacts.ModelBlessing),
      executor.SPAN_EXAMPLES_KEY: ChannelParameter(
          type=standard_artifacts.Examples),
  }
  OUTPUTS = {
      executor.PUSHED_MODEL_KEY: ChannelParameter(
          type=standard_artifacts.PushedModel),
  }


class PhaseTwoPusher(base_component.BaseComponent):
  """Builds, proves and pushes phase two's serving model.

  Args:
    model: phase two's Trainer's Model channel.
    model_blessing: phase two's Evaluator's blessing.
    span_examples: the window's raw Examples (front end, families, and the
      eval requests the proof sends).
    serving_destination: the folder or bucket of served models.
    model_name: the name a server serves it under.
    image_size: the model's square input side.
    channels: its input channels.
    check_requests: eval requests the proof sends at most.
  """

  SPEC_CLASS = PhaseTwoPusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model: types.BaseChannel,
               model_blessing: types.BaseChannel,
               span_examples: types.BaseChannel, serving_destination: str,
               model_name: str, image_size: int, channels: int,
               check_requests: int = 64):
    if check_requests < 1:
      raise ValueError(f'check_requests must be at least 1, got '
                       f'{check_requests}')
    super().__init__(spec=PhaseTwoPusherSpec(
        model=model, model_blessing=model_blessing,
        span_examples=span_examples,
        serving_destination=serving_destination, model_name=model_name,
        image_size=image_size, channels=channels,
        check_requests=check_requests,
        pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
