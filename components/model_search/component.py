"""ModelSearch: TFX's Tuner with a device budget (see the package doc).

It is TFX's `Tuner` component, same inputs, outputs and cache key, with
:class:`executor.Executor`, which chooses among the trials within the
budget and records every trial. The search itself is the module function
`components.modules.search.tuner_fn`.

Usage::

  search = ModelSearch(
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=schema_gen.outputs['schema'],
      tuner_fn='components.modules.search.tuner_fn',
      train_args=tfx.proto.TrainArgs(num_steps=150),  # per trial
      eval_args=tfx.proto.EvalArgs(),
      custom_config={..., 'tune_trials': 6, 'max_tflite_bytes': 250000})
  trainer = Trainer(..., hyperparameters=search.outputs[
      'best_hyperparameters'])
"""

from tfx.components.tuner import component as tuner_component
from tfx.dsl.components.base import executor_spec

from components.model_search import executor


class ModelSearch(tuner_component.Tuner):
  """TFX's Tuner choosing the most accurate trial that fits the device."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
