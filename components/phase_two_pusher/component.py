"""PhaseTwoPusher: push the serving model PhaseTwoServingCheck proved.

1. If phase two's Evaluator or its serving check did not bless the model,
   nothing is pushed; the output records `pushed=0` and the reason (the
   check's own, when it has one), and the run succeeds.
2. The serving model kept in the check's `InfraBlessing` is written as the
   next numbered version under `<serving_destination>/<model_name>/`, the
   layout TensorFlow Serving and KServe's TensorFlow runtime read, with
   `assets.extra/manifest.json` holding the labels, the front end and the
   check's figures.
3. With a `vertex_target`, the version is deployed to that Vertex AI
   endpoint (`components.cloud.vertex_endpoint`), served by the image's
   `python -m pipeline serve` with its routes set; a refusal leaves the
   version pushed and is recorded with its reason.

Usage::

  pusher = PhaseTwoPusher(
      model=phase_two_trainer.outputs['model'],
      model_blessing=phase_two_evaluator.outputs['blessing'],
      infra_blessing=serving_check.outputs['blessing'],
      span_examples=window.outputs['examples'],
      serving_destination='/models/served', model_name='instruments')
"""

import dataclasses
import json
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter

from components import contracts
from components.phase_two_pusher import executor


P = contracts.PhaseTwoPusher


class PhaseTwoPusherSpec(types.ComponentSpec):
  """Inputs, output and settings of :class:`PhaseTwoPusher`."""

  PARAMETERS = {
      executor.DESTINATION_KEY: ExecutionParameter(type=str),
      executor.MODEL_NAME_KEY: ExecutionParameter(type=str),
      executor.VERTEX_KEY: ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      P.MODEL: ChannelParameter(type=standard_artifacts.Model),
      P.MODEL_BLESSING: ChannelParameter(type=standard_artifacts.ModelBlessing),
      P.INFRA_BLESSING: ChannelParameter(type=standard_artifacts.InfraBlessing),
      P.SPAN_EXAMPLES: ChannelParameter(type=standard_artifacts.Examples),
      P.CASCADE: ChannelParameter(type=standard_artifacts.ModelBlessing,
                                  optional=True),
  }
  OUTPUTS = {
      P.PUSHED_MODEL: ChannelParameter(type=standard_artifacts.PushedModel),
  }


class PhaseTwoPusher(base_component.BaseComponent):
  """Pushes the serving model phase two's serving check proved.

  Args:
    model: phase two's Trainer's Model channel.
    model_blessing: phase two's Evaluator's blessing.
    infra_blessing: PhaseTwoServingCheck's InfraBlessing (holds the model).
    span_examples: the window's raw Examples (front end, families).
    serving_destination: the folder or bucket of served models.
    model_name: the name a server serves it under.
    vertex_target: a `components.cloud.vertex_endpoint.Target` to deploy
      each pushed version to (a bucket destination), or None.
    cascade: the CascadeEvaluator's blessing; a pair it did not bless is
      not pushed.
  """

  SPEC_CLASS = PhaseTwoPusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model: types.BaseChannel,
               model_blessing: types.BaseChannel,
               infra_blessing: types.BaseChannel,
               span_examples: types.BaseChannel, serving_destination: str,
               model_name: str, vertex_target=None,
               cascade: Optional[types.BaseChannel] = None):
    super().__init__(spec=PhaseTwoPusherSpec(
        vertex_target=(json.dumps(dataclasses.asdict(vertex_target),
                                  sort_keys=True) if vertex_target else ''),
        model=model, model_blessing=model_blessing,
        infra_blessing=infra_blessing, span_examples=span_examples,
        cascade=cascade,
        serving_destination=serving_destination, model_name=model_name,
        pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
