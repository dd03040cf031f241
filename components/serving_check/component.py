"""PhaseTwoServingCheck: phase two's serving model proved in a model server
before it may be pushed, as TFX's InfraValidator proves a model in
TensorFlow Serving (which cannot be installed here; KServe's Python model
server answers the same REST API).

1. If phase two's Evaluator did not bless the model, nothing is checked:
   the `InfraBlessing` says not blessed, and why.
2. The serving SavedModel is built (`components.cloud.serving_model`):
   `serving_default` takes one window of 16-bit PCM (spans of recordings,
   the recorded front end inside) or one encoded image.
3. In process: it answers the eval split's kept windows (or images) and
   the front end's test signals as phase two's SavedModel does on the
   NumPy picture.
4. In the server (`server='kserve'`): the model is laid out as a version,
   KServe's model server is started on it from its own environment, its
   readiness awaited within `ready_seconds`, the same requests sent over
   HTTP in TensorFlow Serving's request shape, and its answers compared
   with the serving model's in process. A model that does not load, does
   not answer, or answers differently is not blessed, with the reason in
   one line; the server's log is kept in the blessing.
5. The `InfraBlessing` holds `blessed` (1 or 0) as InfraValidator's does,
   the figures of both proofs, and, when blessed, the serving model itself
   (`serving/`), which PhaseTwoPusher pushes: what was proved is what is
   pushed.

Usage::

  check = PhaseTwoServingCheck(
      model=phase_two_trainer.outputs['model'],
      model_blessing=phase_two_evaluator.outputs['blessing'],
      span_examples=window.outputs['examples'], model_name='instruments',
      image_size=128, channels=3)
"""

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from components import contracts
from components.serving_check import executor

C = contracts.PhaseTwoServingCheck


class PhaseTwoServingCheckSpec(types.ComponentSpec):
  """Inputs, output and settings of :class:`PhaseTwoServingCheck`."""

  PARAMETERS = {
      executor.MODEL_NAME_KEY: ExecutionParameter(type=str),
      executor.IMAGE_SIZE_KEY: ExecutionParameter(type=int),
      executor.CHANNELS_KEY: ExecutionParameter(type=int),
      executor.CHECK_REQUESTS_KEY: ExecutionParameter(type=int),
      executor.SERVER_KEY: ExecutionParameter(type=str),
      executor.READY_SECONDS_KEY: ExecutionParameter(type=float),
  }
  INPUTS = {
      C.MODEL: ChannelParameter(type=standard_artifacts.Model),
      C.MODEL_BLESSING: ChannelParameter(
          type=standard_artifacts.ModelBlessing),
      C.SPAN_EXAMPLES: ChannelParameter(type=standard_artifacts.Examples),
  }
  OUTPUTS = {
      C.BLESSING: ChannelParameter(type=standard_artifacts.InfraBlessing),
  }


class PhaseTwoServingCheck(base_component.BaseComponent):
  """Proves phase two's serving model in a model server.

  Args:
    model: phase two's Trainer's Model channel.
    model_blessing: phase two's Evaluator's blessing.
    span_examples: the window's raw Examples (front end, and the eval
      requests the proofs send).
    model_name: the name the server serves it under.
    image_size: the model's square input side.
    channels: its input channels.
    check_requests: eval requests the proofs send at most.
    server: 'kserve' (KServe's model server, from its own environment) or
      'in-process' (the serving model in process only).
    ready_seconds: how long the server may take to be ready.
  """

  SPEC_CLASS = PhaseTwoServingCheckSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model: types.BaseChannel,
               model_blessing: types.BaseChannel,
               span_examples: types.BaseChannel, model_name: str,
               image_size: int, channels: int, check_requests: int = 64,
               server: str = executor.KSERVE, ready_seconds: float = 120.0):
    if check_requests < 1:
      raise ValueError(f'check_requests must be at least 1, got '
                       f'{check_requests}')
    if server not in executor.SERVERS:
      raise ValueError(f'server must be one of {", ".join(executor.SERVERS)}'
                       f', got {server!r}')
    super().__init__(spec=PhaseTwoServingCheckSpec(
        model=model, model_blessing=model_blessing,
        span_examples=span_examples, model_name=model_name,
        image_size=image_size, channels=channels,
        check_requests=check_requests, server=server,
        ready_seconds=ready_seconds,
        blessing=types.Channel(type=standard_artifacts.InfraBlessing)))
