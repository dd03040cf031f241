"""Wiring of the TFX pipeline; no I/O happens here.

ImportExampleGen -> StatisticsGen -> ImportSchemaGen -> ExampleValidator ->
DataGate -> Transform -> Trainer -> Evaluator (against the latest blessed
model) -> TFLitePusher.
"""

from typing import Any, Dict, Optional, Sequence

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from ml_metadata.proto import metadata_store_pb2

from components import data_gate
from components.modules import features
from components.tflite_pusher import component as tflite_pusher

SPAN_PATTERN = 'span-{SPAN}/*.tfrecord.gz'


def eval_config(min_auc: float, min_accuracy: float,
                max_auc_drop: float) -> tfma.EvalConfig:
  """The Evaluator's metrics and blessing thresholds.

  Args:
    min_auc: absolute lower bound on AUC.
    min_accuracy: absolute lower bound on binary accuracy.
    max_auc_drop: largest allowed AUC drop against the baseline model.

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
                      lower_bound={'value': min_auc}),
                  change_threshold=tfma.GenericChangeThreshold(
                      direction=higher,
                      absolute={'value': -max_auc_drop}))),
          tfma.MetricConfig(
              class_name='BinaryAccuracy',
              threshold=tfma.MetricThreshold(
                  value_threshold=tfma.GenericValueThreshold(
                      lower_bound={'value': min_accuracy}))),
          tfma.MetricConfig(class_name='Precision'),
          tfma.MetricConfig(class_name='Recall'),
          tfma.MetricConfig(class_name='ConfusionMatrixPlot'),
      ])])


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    window_root: str,
    schema_path: str,
    transform_module_file: str,
    trainer_module_file: str,
    custom_config: Dict[str, Any],
    train_steps: int,
    eval_steps: int,
    train_buckets: int,
    eval_buckets: int,
    min_auc: float,
    min_accuracy: float,
    max_auc_drop: float,
    push_destination: str,
    class_names: Sequence[str],
    image_size: int,
    channels: int,
    quantization: str = 'dynamic',
    max_accuracy_drop: float = 0.01,
    representative_examples: int = 300,
    latency_runs: int = 50,
    warm_start: bool = False,
    min_class_share: float = 0.05,
    metadata_connection_config: Optional[
        metadata_store_pb2.ConnectionConfig] = None,
    beam_pipeline_args: Sequence[str] = (),
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
  """Builds the pipeline.

  Args:
    pipeline_name: name recorded in ML Metadata.
    pipeline_root: root folder of the artifacts.
    window_root: folder of `span-N/` windows of gzipped TFRecord files (see
      `pipeline.window`); ImportExampleGen reads the newest.
    schema_path: the curated schema file.
    transform_module_file: file defining `preprocessing_fn`.
    trainer_module_file: file defining `run_fn`.
    custom_config: settings for the module code (image size, channels, ...).
    train_steps: training steps.
    eval_steps: validation batches during training (0: the whole split).
    train_buckets: hash buckets of the train split.
    eval_buckets: hash buckets of the eval split.
    min_auc: absolute AUC bound for a blessing.
    min_accuracy: absolute binary accuracy bound for a blessing.
    max_auc_drop: allowed AUC drop against the latest blessed model.
    push_destination: folder receiving the TFLite model versions.
    class_names: class names in label order.
    image_size: side of the model's square input.
    channels: the model's input channels.
    quantization: TFLite quantization mode.
    max_accuracy_drop: allowed SavedModel-to-TFLite accuracy drop.
    representative_examples: training examples calibrating int8.
    latency_runs: invokes timed for the TFLite latency.
    warm_start: give the Trainer the latest blessed model as `base_model`,
      to start from its weights.
    min_class_share: each class's smallest allowed share of a split.
    metadata_connection_config: ML Metadata connection.
    beam_pipeline_args: Apache Beam arguments.
    enable_cache: reuse outputs of components whose inputs did not change.

  Returns:
    The `tfx.dsl.Pipeline`.
  """
  example_gen = tfx.components.ImportExampleGen(
      input_base=window_root,
      input_config=tfx.proto.Input(splits=[
          tfx.proto.Input.Split(name='all', pattern=SPAN_PATTERN)]),
      output_config=tfx.proto.Output(
          split_config=tfx.proto.SplitConfig(
              splits=[
                  tfx.proto.SplitConfig.Split(name='train',
                                              hash_buckets=train_buckets),
                  tfx.proto.SplitConfig.Split(name='eval',
                                              hash_buckets=eval_buckets),
              ],
              partition_feature_name=features.FILENAME_KEY)))

  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples'])

  schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)

  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'])

  gate = data_gate.DataGate(anomalies=example_validator.outputs['anomalies'],
                            statistics=statistics_gen.outputs['statistics'],
                            min_class_share=min_class_share)

  transform = tfx.components.Transform(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      module_file=transform_module_file,
      custom_config=custom_config,
      # StatisticsGen has the raw data's statistics already; statistics of
      # the transformed PNG bytes say nothing. Skipping both passes saves
      # about a third of Transform's time and its memory peak.
      disable_statistics=True)
  transform.add_upstream_node(gate)

  model_resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
      model_blessing=tfx.dsl.Channel(
          type=tfx.types.standard_artifacts.ModelBlessing)).with_id(
              'latest_blessed_model_resolver')

  trainer = tfx.components.Trainer(
      module_file=trainer_module_file,
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=schema_gen.outputs['schema'],
      train_args=tfx.proto.TrainArgs(num_steps=train_steps),
      eval_args=tfx.proto.EvalArgs(num_steps=eval_steps or None),
      base_model=model_resolver.outputs['model'] if warm_start else None,
      custom_config=custom_config)

  evaluator = tfx.components.Evaluator(
      examples=example_gen.outputs['examples'],
      model=trainer.outputs['model'],
      baseline_model=model_resolver.outputs['model'],
      schema=schema_gen.outputs['schema'],
      example_splits=['eval'],
      eval_config=eval_config(min_auc, min_accuracy, max_auc_drop))

  pusher = tflite_pusher.TFLitePusher(
      model=trainer.outputs['model'],
      model_blessing=evaluator.outputs['blessing'],
      examples=transform.outputs['transformed_examples'],
      push_destination=push_destination,
      class_names=class_names,
      quantization=quantization,
      image_size=image_size,
      channels=channels,
      max_accuracy_drop=max_accuracy_drop,
      representative_examples=representative_examples,
      latency_runs=latency_runs)

  components = [example_gen, statistics_gen, schema_gen, example_validator,
                gate, transform, trainer, model_resolver, evaluator, pusher]

  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(beam_pipeline_args))
