"""Wiring of the TFX pipeline; no I/O happens in `create_pipeline` (runners
read the module folder's version with `UserCode.of_modules`).

ImportExampleGen (the newest span) -> StatisticsGen -> ExampleValidator
(against the schema of ImportSchemaGen) -> DataGate (schema, class shares,
drift from the last accepted span; AcceptSpan records the baseline) ->
SpanWindow (the latest K spans) ->
Transform -> [ModelSearch, with --tune] -> Trainer -> Evaluator (against
the latest blessed model) -> TFLitePusher (within the device budget).
"""

import dataclasses
import hashlib
import json
import os
from typing import Optional, Sequence

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from ml_metadata.proto import metadata_store_pb2

from components import data_gate
from components import span_window
from components.modules import features
from components.model_search import component as model_search
from components.span_window import component as span_window_component
from components.tflite_pusher import component as tflite_pusher
from pipeline.settings import config as config_lib

# ImportExampleGen reads one span folder of the data root: the newest.
SPAN_INPUT = tfx.proto.Input(splits=[
    tfx.proto.Input.Split(name='all', pattern=span_window.SPAN_PATTERN)])


# The module functions by dotted name: the installed package's (in a
# container image) or this checkout's (a local run), never a copy.
TRANSFORM_FN = 'components.modules.transform.preprocessing_fn'
TRAINER_FN = 'components.modules.trainer.run_fn'
SEARCH_FN = 'components.modules.search.tuner_fn'
# The key of the module code's version in Transform's, Trainer's and the
# model search's custom_config, which is part of their cache keys.
CODE_VERSION_KEY = 'code_version'
# Project files outside the module folder that module code imports: the
# model search converts and times its trial models with the pusher's own
# functions. They are part of the module code's version too.
SHARED_CODE_FILES = tuple(
    os.path.join(config_lib.REPO_ROOT, 'components', 'tflite_pusher', name)
    for name in ('budget.py', 'conversion.py'))


@dataclasses.dataclass(frozen=True)
class UserCode:
  """The version of the module code and where the schema is: the runner's
  choice.

  Transform and Trainer call :data:`TRANSFORM_FN` and :data:`TRAINER_FN`
  by dotted name, so every Beam worker (in-process, a worker pool's
  processes, a container) imports the same installed code and nothing is
  packaged per run. Passing `version` in their `custom_config` keeps what
  TFX's `module_file` gave: any edit to the module folder changes their
  cache keys, so the next run trains again.

  Attributes:
    schema_file: the curated schema, where the components run.
    version: a fingerprint of every `.py` file of the module folder and
      of :data:`SHARED_CODE_FILES`.
  """
  schema_file: str
  version: str

  @classmethod
  def of_modules(cls, schema_file: str,
                 modules_dir: str = config_lib.MODULES_DIR,
                 shared_files: Sequence[str] = SHARED_CODE_FILES
                 ) -> 'UserCode':
    """Reads the module folder (local) and fingerprints it: SHA-256 over
    the name and bytes of each `.py` file, in name order, then of each of
    `shared_files`."""
    digest = hashlib.sha256()
    paths = [os.path.join(modules_dir, name)
             for name in sorted(os.listdir(modules_dir))
             if name.endswith('.py')] + list(shared_files)
    for path in paths:
      with open(path, 'rb') as source:
        digest.update(os.path.basename(path).encode('utf-8') + b'\0' +
                      source.read() + b'\0')
    return cls(schema_file=schema_file, version=digest.hexdigest()[:16])


def eval_config(config: config_lib.PipelineConfig) -> tfma.EvalConfig:
  """The Evaluator's metrics and blessing thresholds.

  Args:
    config: the settings (`min_auc`, `min_accuracy`, `max_auc_drop`).

  Returns:
    A TFMA EvalConfig over the `serving_default` (tf.Example) signature.
  """
  higher = tfma.MetricDirection.HIGHER_IS_BETTER
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          signature_name=features.SERVING_EXAMPLES_SIGNATURE,
          label_key=features.LABEL_KEY,
          preprocessing_function_names=[])],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name='ExampleCount'),
          tfma.MetricConfig(
              class_name='AUC',
              threshold=tfma.MetricThreshold(
                  value_threshold=tfma.GenericValueThreshold(
                      lower_bound={'value': config.min_auc}),
                  change_threshold=tfma.GenericChangeThreshold(
                      direction=higher,
                      absolute={'value': -config.max_auc_drop}))),
          tfma.MetricConfig(
              class_name='BinaryAccuracy',
              threshold=tfma.MetricThreshold(
                  value_threshold=tfma.GenericValueThreshold(
                      lower_bound={'value': config.min_accuracy}))),
          tfma.MetricConfig(class_name='Precision'),
          tfma.MetricConfig(class_name='Recall'),
          tfma.MetricConfig(class_name='ConfusionMatrixPlot'),
      ])])


def create_pipeline(
    config: config_lib.PipelineConfig,
    code: UserCode,
    metadata_connection_config: Optional[
        metadata_store_pb2.ConnectionConfig] = None,
    span: Optional[int] = None,
    *,
    beam_pipeline_args: Sequence[str],
) -> tfx.dsl.Pipeline:
  """Builds the pipeline from the settings; the runner chooses the rest.

  Args:
    config: every setting (names, roots, thresholds, training, pusher);
      see :class:`pipeline.settings.config.PipelineConfig`.
    code: the module code's version and the schema file.
    metadata_connection_config: the ML Metadata connection (None: the
      orchestrator's default).
    span: the span ImportExampleGen reads (None: the newest span folder it
      finds, complete or not).
    beam_pipeline_args: the Beam arguments, the runner's choice (see
      :meth:`PipelineConfig.beam_pipeline_args`).

  Returns:
    The `tfx.dsl.Pipeline`.
  """
  # One span per run: its statistics and validation are made once, then
  # served from the cache. One split, so they describe the whole span.
  example_gen = tfx.components.ImportExampleGen(
      input_base=config.data_root,
      input_config=SPAN_INPUT,
      range_config=None if span is None else tfx.proto.RangeConfig(
          static_range=tfx.proto.StaticRange(start_span_number=span,
                                             end_span_number=span)),
      output_config=tfx.proto.Output(
          split_config=tfx.proto.SplitConfig(
              splits=[tfx.proto.SplitConfig.Split(name='all',
                                                  hash_buckets=1)],
              partition_feature_name=features.FILENAME_KEY)))

  schema_gen = tfx.components.ImportSchemaGen(schema_file=code.schema_file)

  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'])

  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'])

  baseline_resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
      baseline=tfx.dsl.Channel(type=data_gate.DataBaseline)).with_id(
          'latest_data_baseline_resolver')

  gate = data_gate.DataGate(
      examples=example_gen.outputs['examples'],
      anomalies=example_validator.outputs['anomalies'],
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'],
      baseline=baseline_resolver.outputs['baseline'],
      min_class_share=config.min_class_share,
      drift_thresholds=json.dumps(config.drift_threshold_map(),
                                  sort_keys=True))

  # The next runs compare their spans with this one, now it passed.
  accept = data_gate.AcceptSpan(
      examples=example_gen.outputs['examples'],
      statistics=statistics_gen.outputs['statistics'])
  accept.add_upstream_node(gate)

  window = span_window_component.SpanWindow(
      examples=example_gen.outputs['examples'],
      input_base=config.data_root,
      input_config=SPAN_INPUT,
      output_config=tfx.proto.Output(
          split_config=tfx.proto.SplitConfig(
              splits=[
                  tfx.proto.SplitConfig.Split(
                      name='train', hash_buckets=config.train_buckets),
                  tfx.proto.SplitConfig.Split(
                      name='eval', hash_buckets=config.eval_buckets),
              ],
              partition_feature_name=features.FILENAME_KEY)),
      num_spans=config.window_spans)
  # A span the gate stops is not worth reading K spans for.
  window.add_upstream_node(gate)

  custom_config = dict(config.module_custom_config(),
                       **{CODE_VERSION_KEY: code.version})
  transform = tfx.components.Transform(
      examples=window.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      preprocessing_fn=TRANSFORM_FN,
      custom_config=custom_config,
      # StatisticsGen has the raw data's statistics already; statistics of
      # the transformed PNG bytes say nothing. Skipping both passes saves
      # about a third of Transform's time and its memory peak.
      disable_statistics=True)

  model_resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
      model_blessing=tfx.dsl.Channel(
          type=tfx.types.standard_artifacts.ModelBlessing)).with_id(
              'latest_blessed_model_resolver')

  # The search's cache key is its inputs and settings: while Transform's
  # output is unchanged it is served from the cache, not run again.
  search = model_search.ModelSearch(
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=schema_gen.outputs['schema'],
      tuner_fn=SEARCH_FN,
      train_args=tfx.proto.TrainArgs(num_steps=config.tune_steps),
      eval_args=tfx.proto.EvalArgs(num_steps=config.eval_steps or None),
      custom_config=dict(config.search_custom_config(),
                         **{CODE_VERSION_KEY: code.version}),
  ) if config.tune else None

  trainer = tfx.components.Trainer(
      run_fn=TRAINER_FN,
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=schema_gen.outputs['schema'],
      train_args=tfx.proto.TrainArgs(num_steps=config.train_steps),
      eval_args=tfx.proto.EvalArgs(num_steps=config.eval_steps or None),
      base_model=(model_resolver.outputs['model'] if config.warm_start
                  else None),
      hyperparameters=(search.outputs['best_hyperparameters'] if search
                       else None),
      custom_config=custom_config)

  evaluator = tfx.components.Evaluator(
      examples=window.outputs['examples'],
      model=trainer.outputs['model'],
      baseline_model=model_resolver.outputs['model'],
      schema=schema_gen.outputs['schema'],
      example_splits=['eval'],
      eval_config=eval_config(config))

  pusher = tflite_pusher.TFLitePusher(
      model=trainer.outputs['model'],
      model_blessing=evaluator.outputs['blessing'],
      examples=transform.outputs['transformed_examples'],
      push_destination=config.push_destination,
      class_names=config.class_names,
      quantization=config.quantization,
      image_size=config.image_size,
      channels=config.channels,
      max_accuracy_drop=config.max_accuracy_drop,
      representative_examples=config.representative_examples,
      validation_examples=config.validation_examples,
      latency_runs=config.latency_runs,
      **config.device_budget().to_dict())

  components = [example_gen, schema_gen, statistics_gen, example_validator,
                baseline_resolver, gate, accept, window, transform,
                *([search] if search else []), trainer, model_resolver,
                evaluator, pusher]

  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=components,
      enable_cache=config.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(beam_pipeline_args))
