"""Wiring of the TFX pipeline; no I/O happens in `create_pipeline` (runners
read the module folder's version with `UserCode.of_modules`).

ImportExampleGen (the newest span) -> StatisticsGen -> ExampleValidator
(against the schema of ImportSchemaGen) -> DataGate (schema, class shares,
drift from the last accepted span; AcceptSpan records the baseline) ->
SpanWindow (the latest K spans) ->
Transform -> [ModelSearch, with --tune] -> Trainer -> Evaluator (against
the latest blessed model) -> TFLiteConverter (converted, proved, within
the device budget, its threshold chosen: the candidate version) ->
TFLitePusher.

Phase two, when the window's spans give families (a `Cond` on the window's
`families`): Transform -> PhaseTwoTrainer -> PhaseTwoEvaluator (against
its own latest blessed model) -> PhaseTwoServingCheck (the serving model,
proved in KServe's model server: an InfraBlessing); CascadeEvaluator (the
pair judged together: phase one's candidate routes, phase two names; its
blessing gates both pushes) -> PhaseTwoPusher (pushed where model servers
load it) and TFLitePusher.
"""

import ast
import dataclasses
import hashlib
import json
import os
from typing import Dict, List, Optional, Sequence, Set

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from ml_metadata.proto import metadata_store_pb2

from components import contracts
from components import data_gate
from components.cascade import component as cascade_lib
from components.phase_two_evaluator import metrics as family_metrics
from components.cloud import vertex_endpoint
from components.common import span_layout
from components.modules import features
from components.modules import phase_two
from components.model_search import component as model_search
from components.span_window import component as span_window_component
from components.phase_two_pusher import component as phase_two_pusher_lib
from components.serving_check import component as serving_check_lib
from components.tflite_pusher import component as tflite_pusher
from pipeline.settings import config as config_lib

# ImportExampleGen reads one span folder of the data root: the newest.
SPAN_INPUT = tfx.proto.Input(splits=[
    tfx.proto.Input.Split(name='all', pattern=span_layout.SPAN_PATTERN)])


# The module functions by dotted name: the installed package's (in a
# container image) or this checkout's (a local run), never a copy.
TRANSFORM_FN = 'components.modules.transform.preprocessing_fn'
TRAINER_FN = 'components.modules.trainer.run_fn'
PHASE_TWO_FN = 'components.modules.phase_two.run_fn'
SEARCH_FN = 'components.modules.search.tuner_fn'
# The key of the module code's version in Transform's, Trainer's and the
# model search's custom_config, which is part of their cache keys.
CODE_VERSION_KEY = 'code_version'
# The module functions' modules, by the component that calls them: each
# one's version covers the project files it imports, and only those.
ENTRY_MODULES = {
    'Transform': TRANSFORM_FN.rsplit('.', 1)[0],
    'Trainer': TRAINER_FN.rsplit('.', 1)[0],
    contracts.PhaseTwoTrainer.NODE: PHASE_TWO_FN.rsplit('.', 1)[0],
    'ModelSearch': SEARCH_FN.rsplit('.', 1)[0],
}
# The project's own top-level packages, whose files module code may import.
PROJECT_PACKAGES = ('components', 'pipeline')


def _module_file(root: str, module: str) -> Optional[str]:
  base = os.path.join(root, *module.split('.'))
  for path in (base + '.py', os.path.join(base, '__init__.py')):
    if os.path.isfile(path):
      return path
  return None


def _imported_modules(path: str) -> Set[str]:
  """The project modules a file imports (at any depth of its code: a
  function-level import counts too), and the packages holding them."""
  with open(path, encoding='utf-8') as source:
    tree = ast.parse(source.read(), path)
  names: Set[str] = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names.add(node.module)
      names.update(f'{node.module}.{alias.name}' for alias in node.names)
  found = set()
  for name in names:
    if name.split('.')[0] not in PROJECT_PACKAGES:
      continue
    parts = name.split('.')
    found.update('.'.join(parts[:i]) for i in range(1, len(parts) + 1))
  return found


def project_files(module: str, root: str = config_lib.REPO_ROOT) -> List[str]:
  """The project's `.py` files that importing `module` runs: the module,
  every project module it imports, transitively, and their packages'
  `__init__.py` files, found by reading the import statements.

  Args:
    module: a dotted module name of the project.
    root: the folder holding the project's packages (local).

  Returns:
    Their paths, sorted.
  """
  seen: Set[str] = set()
  pending = [module]
  files: Set[str] = set()
  while pending:
    name = pending.pop()
    if name in seen:
      continue
    seen.add(name)
    path = _module_file(root, name)
    if path is None:
      continue  # A name imported from a module, not a module.
    files.add(path)
    parts = name.split('.')
    pending.extend('.'.join(parts[:i]) for i in range(1, len(parts)))
    pending.extend(_imported_modules(path))
  return sorted(files)


def fingerprint(paths: Sequence[str], root: str) -> str:
  """SHA-256 over each file's path under `root` and its bytes, in path
  order (16 hex digits)."""
  digest = hashlib.sha256()
  for path in sorted(paths):
    with open(path, 'rb') as source:
      digest.update(os.path.relpath(path, root).encode('utf-8') + b'\0' +
                    source.read() + b'\0')
  return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class UserCode:
  """The version of each component's module code and where the schema is:
  the runner's choice.

  Transform, Trainer and the model search call :data:`TRANSFORM_FN`,
  :data:`TRAINER_FN` and :data:`SEARCH_FN` by dotted name, so every Beam
  worker (in-process, a worker pool's processes, a container) imports the
  same installed code and nothing is packaged per run. Passing each one's
  version in its `custom_config` keeps what TFX's `module_file` gave, and
  more precisely: an edit to any file a component's code imports changes
  that component's cache key, so the next run runs it again, and an edit
  to a file it does not import (the pusher's budget check, say) leaves it
  cached.

  Attributes:
    schema_file: the curated schema, where the components run.
    versions: component (a key of :data:`ENTRY_MODULES`) -> a fingerprint
      of the files :func:`project_files` finds for its module.
  """
  schema_file: str
  versions: Dict[str, str]

  @classmethod
  def of_modules(cls, schema_file: str, root: str = config_lib.REPO_ROOT
                 ) -> 'UserCode':
    """Fingerprints each component's module code under `root` (local)."""
    return cls(schema_file=schema_file, versions={
        node: fingerprint(project_files(module, root), root)
        for node, module in ENTRY_MODULES.items()})


def _gated(lowest: float, largest_drop: float) -> tfma.MetricThreshold:
  """A blessing bar on a metric where higher is better: at least `lowest`,
  and at most `largest_drop` below the baseline model's."""
  return tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(
          lower_bound={'value': lowest}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={'value': -largest_drop}))


def eval_config(config: config_lib.PipelineConfig) -> tfma.EvalConfig:
  """The Evaluator's metrics and blessing thresholds.

  Args:
    config: the settings (`min_auc`, `min_accuracy`, `max_auc_drop`).

  Returns:
    A TFMA EvalConfig over the `serving_default` (tf.Example) signature.
  """
  overall = tfma.SlicingSpec()
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          signature_name=features.SERVING_EXAMPLES_SIGNATURE,
          label_key=features.LABEL_KEY,
          preprocessing_function_names=[])],
      # Overall, and by what ingestion recorded of each example: the family
      # of an instrument, the kind of any other sound (spans without them
      # give no such slice). The slices are shown, never gated: a slice of
      # one class has no AUC, and its accuracy is a recall.
      slicing_specs=[overall,
                     tfma.SlicingSpec(feature_keys=[features.FAMILY_KEY]),
                     tfma.SlicingSpec(feature_keys=[features.KIND_KEY])],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name='ExampleCount'),
          tfma.MetricConfig(
              class_name='AUC', per_slice_thresholds=[
                  tfma.PerSliceMetricThreshold(
                      slicing_specs=[overall],
                      threshold=_gated(config.min_auc,
                                       config.max_auc_drop))]),
          tfma.MetricConfig(
              class_name='BinaryAccuracy', per_slice_thresholds=[
                  tfma.PerSliceMetricThreshold(
                      slicing_specs=[overall],
                      threshold=tfma.MetricThreshold(
                          value_threshold=tfma.GenericValueThreshold(
                              lower_bound={'value': config.min_accuracy})))]),
          tfma.MetricConfig(class_name='Precision'),
          tfma.MetricConfig(class_name='Recall'),
          tfma.MetricConfig(class_name='ConfusionMatrixPlot'),
      ])])


def phase_two_eval_config(config: config_lib.PipelineConfig
                          ) -> tfma.EvalConfig:
  """Phase two's metrics and blessing thresholds.

  TFMA reads the label and its weight from the model's
  `transform_features` signature (the class index of the family, or of the
  reject class; weight 0 for a positive example of no known family), and
  the class probabilities from `serving_default`'s `scores`.

  Args:
    config: the settings (`phase_two_min_family_recall`,
      `phase_two_min_reject_recall`, `phase_two_max_recall_drop`,
      `phase_two_min_accuracy`, `phase_two_max_accuracy_drop`).

  Returns:
    A TFMA EvalConfig: what phase two is for, gated (its mean recall over
    the families and its reject recall, `phase_two_evaluator/metrics.py`,
    each with a bar and against its latest blessed model), accuracy over
    all classes, gated too, and the multi-class confusion matrix (each
    family's recall is read from it).
  """

  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          signature_name=features.SERVING_EXAMPLES_SIGNATURE,
          preprocessing_function_names=[
              phase_two.TRANSFORM_FEATURES_SIGNATURE],
          label_key=phase_two.LABEL_KEY,
          example_weight_key=phase_two.WEIGHT_KEY,
          prediction_key=features.SCORES_NAME)],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name='ExampleCount'),
          tfma.MetricConfig(
              class_name='MeanFamilyRecall', module=family_metrics.__name__,
              threshold=_gated(config.phase_two_min_family_recall,
                              config.phase_two_max_recall_drop)),
          tfma.MetricConfig(
              class_name='RejectRecall', module=family_metrics.__name__,
              threshold=_gated(config.phase_two_min_reject_recall,
                              config.phase_two_max_recall_drop)),
          tfma.MetricConfig(
              class_name='SparseCategoricalAccuracy',
              threshold=_gated(config.phase_two_min_accuracy,
                              config.phase_two_max_accuracy_drop)),
          tfma.MetricConfig(class_name='MultiClassConfusionMatrixPlot'),
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
          contracts.LATEST_DATA_BASELINE_RESOLVER)

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

  transform = tfx.components.Transform(
      examples=window.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      preprocessing_fn=TRANSFORM_FN,
      custom_config=dict(config.training_settings().to_custom_config(), **{
          CODE_VERSION_KEY: code.versions['Transform']}),
      # StatisticsGen has the raw data's statistics already; statistics of
      # the transformed PNG bytes say nothing. Skipping both passes saves
      # about a third of Transform's time and its memory peak.
      disable_statistics=True)

  # Scoped to phase one's Trainer and Evaluator: any other node's blessed
  # model (the cloud phase's) is not phase one's baseline.
  model_resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(
          type=tfx.types.standard_artifacts.Model,
          producer_component_id=contracts.PHASE_ONE_TRAINER,
          output_key=contracts.PHASE_ONE_MODEL_KEY),
      model_blessing=tfx.dsl.Channel(
          type=tfx.types.standard_artifacts.ModelBlessing,
          producer_component_id=contracts.PHASE_ONE_EVALUATOR,
          output_key=contracts.PHASE_ONE_BLESSING_KEY)).with_id(
              contracts.LATEST_BLESSED_MODEL_RESOLVER)

  # The search's cache key is its inputs and settings: while Transform's
  # output is unchanged it is served from the cache, not run again.
  search = model_search.ModelSearch(
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=schema_gen.outputs['schema'],
      tuner_fn=SEARCH_FN,
      train_args=tfx.proto.TrainArgs(num_steps=config.tune_steps),
      eval_args=tfx.proto.EvalArgs(num_steps=config.eval_steps or None),
      custom_config=dict(config.search_settings().to_custom_config(),
                         **{CODE_VERSION_KEY: code.versions['ModelSearch']}),
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
      custom_config=dict(config.training_settings().to_custom_config(), **{
          CODE_VERSION_KEY: code.versions['Trainer']})).with_id(
              contracts.PHASE_ONE_TRAINER)

  evaluator = tfx.components.Evaluator(
      examples=window.outputs['examples'],
      model=trainer.outputs['model'],
      baseline_model=model_resolver.outputs['model'],
      schema=schema_gen.outputs['schema'],
      example_splits=['eval'],
      eval_config=eval_config(config)).with_id(contracts.PHASE_ONE_EVALUATOR)

  converter = tflite_pusher.TFLiteConverter(
      model=trainer.outputs['model'],
      model_blessing=evaluator.outputs['blessing'],
      examples=transform.outputs['transformed_examples'],
      span_examples=window.outputs['examples'],
      settings=config.push_settings())

  # Phase two and the cascade run when the window's spans give families; a
  # window of flat class folders trains phase one alone. The cascade judges
  # the pair before either is pushed, and both pushers obey its blessing.
  has_families = window.outputs['examples'].future()[0].custom_property(
      span_layout.FAMILIES_PROPERTY) != '[]'
  with tfx.dsl.Cond(has_families):
    phase_two_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.Model,
            producer_component_id=contracts.PhaseTwoTrainer.NODE,
            output_key=contracts.PhaseTwoTrainer.MODEL),
        model_blessing=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.ModelBlessing,
            producer_component_id=contracts.PhaseTwoEvaluator.NODE,
            output_key=contracts.PhaseTwoEvaluator.BLESSING)).with_id(
                contracts.LATEST_BLESSED_PHASE_TWO_RESOLVER)
    phase_two_trainer = tfx.components.Trainer(
        run_fn=PHASE_TWO_FN,
        examples=transform.outputs['transformed_examples'],
        transform_graph=transform.outputs['transform_graph'],
        schema=schema_gen.outputs['schema'],
        train_args=tfx.proto.TrainArgs(num_steps=config.phase_two_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=config.eval_steps or None),
        custom_config=dict(config.phase_two_settings().to_custom_config(), **{
            CODE_VERSION_KEY: code.versions[
                contracts.PhaseTwoTrainer.NODE]})).with_id(
                    contracts.PhaseTwoTrainer.NODE)
    phase_two_evaluator = tfx.components.Evaluator(
        examples=window.outputs['examples'],
        model=phase_two_trainer.outputs['model'],
        baseline_model=phase_two_resolver.outputs['model'],
        schema=schema_gen.outputs['schema'],
        example_splits=['eval'],
        eval_config=phase_two_eval_config(config)).with_id(
            contracts.PhaseTwoEvaluator.NODE)
    serving_check = serving_check_lib.PhaseTwoServingCheck(
        model=phase_two_trainer.outputs['model'],
        model_blessing=phase_two_evaluator.outputs['blessing'],
        span_examples=window.outputs['examples'],
        model_name=config.served_model_name, image_size=config.image_size,
        channels=config.channels, server=config.serving_check).with_id(
            contracts.PhaseTwoServingCheck.NODE)
    cascade = cascade_lib.CascadeEvaluator(
        candidate=converter.outputs['candidate'],
        model=phase_two_trainer.outputs['model'],
        span_examples=window.outputs['examples'],
        image_size=config.image_size, channels=config.channels,
        push_destination=config.push_destination,
        serving_destination=config.serving_destination,
        model_name=config.served_model_name,
        gate=config.cascade_gate()).with_id(contracts.CascadeEvaluator.NODE)
    phase_two_pusher = phase_two_pusher_lib.PhaseTwoPusher(
        model=phase_two_trainer.outputs['model'],
        model_blessing=phase_two_evaluator.outputs['blessing'],
        infra_blessing=serving_check.outputs['blessing'],
        span_examples=window.outputs['examples'],
        serving_destination=config.serving_destination,
        model_name=config.served_model_name,
        vertex_target=vertex_endpoint.Target(
            project=config.gcp_project, region=config.region,
            endpoint=config.vertex_endpoint, image=config.image,
            machine_type=config.vertex_machine_type)
        if config.vertex_endpoint else None,
        cascade=cascade.outputs['blessing']).with_id(
            contracts.PhaseTwoPusher.NODE)

  pusher = tflite_pusher.TFLitePusher(
      candidate=converter.outputs['candidate'],
      push_destination=config.push_destination,
      cascade=cascade.outputs['blessing'])

  components = [example_gen, schema_gen, statistics_gen, example_validator,
                baseline_resolver, gate, accept, window, transform,
                *([search] if search else []), trainer, model_resolver,
                evaluator, converter, phase_two_resolver, phase_two_trainer,
                phase_two_evaluator, serving_check, cascade, phase_two_pusher,
                pusher]

  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=components,
      enable_cache=config.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(beam_pipeline_args))
