"""Each component's contract: its node id, output keys and the properties
it records, in one place.

The wiring (`pipeline/pipeline_def.py`) gives the nodes these ids, each
executor writes these keys and properties, and every reader of ML Metadata
(`pipeline/metadata/`, `pipeline/reporting/`) finds a run's results
through them, so a name is spelled once. TFX's standard components keep
their own ids (the class name) and output keys; they are listed here
because our readers name them.

Plain constants (the pusher's figures named by its result types), free of
TFX and TensorFlow: the command line's readers
import this without loading either.

Example:

    model = record.output(contracts.Trainer.NODE, contracts.Trainer.MODEL)
"""

from components.common import pair_blessing
from components.tflite import results


class ImportExampleGen:
  NODE = 'ImportExampleGen'
  EXAMPLES = 'examples'


class ImportSchemaGen:
  NODE = 'ImportSchemaGen'
  SCHEMA = 'schema'


class StatisticsGen:
  NODE = 'StatisticsGen'
  STATISTICS = 'statistics'


class ExampleValidator:
  NODE = 'ExampleValidator'
  ANOMALIES = 'anomalies'


class DataGate:
  """Stops a run on anomalies, a rare class or drift (`data_gate.py`)."""
  NODE = 'DataGate'
  REPORT = 'report'
  # On the report: the span checked, and the drift measured (JSON).
  SPAN = 'span'
  DRIFT = 'drift'


class AcceptSpan:
  """Records an accepted span as the next drift baseline."""
  NODE = 'AcceptSpan'
  BASELINE = 'baseline'
  SPAN = 'span'


class SpanWindow:
  """The latest K spans as one Examples artifact (`span_window/`)."""
  NODE = 'SpanWindow'
  EXAMPLES = 'examples'
  # On the window: its newest span, the spans it holds (JSON) and their
  # ingest records (JSON).
  SPAN = 'span'
  WINDOW_SPANS = 'window_spans'
  SPAN_SOURCES = 'span_sources'


class Transform:
  NODE = 'Transform'
  TRANSFORMED_EXAMPLES = 'transformed_examples'
  TRANSFORM_GRAPH = 'transform_graph'


class ModelSearch:
  """The budget-aware search (`model_search/`)."""
  NODE = 'ModelSearch'
  BEST_HYPERPARAMETERS = 'best_hyperparameters'
  TUNER_RESULTS = 'tuner_results'
  # On the chosen hyperparameters.
  CHOSEN = ('chosen_trial', 'auc', 'tflite_bytes', 'latency_ms_median')
  # On the results.
  RESULTS = ('trials', 'trials_within_budget', 'budget')


class Trainer:
  NODE = 'Trainer'
  MODEL = 'model'
  MODEL_RUN = 'model_run'


class Evaluator:
  NODE = 'Evaluator'
  EVALUATION = 'evaluation'
  BLESSING = 'blessing'
  BLESSED = 'blessed'


class PhaseTwoTrainer:
  """Phase two's Trainer (`modules/phase_two.py`): the cloud model."""
  NODE = 'PhaseTwoTrainer'
  MODEL = 'model'
  MODEL_RUN = 'model_run'


class PhaseTwoEvaluator:
  """Phase two's Evaluator: its mean recall over the families and its
  reject recall (`phase_two_evaluator/metrics.py`), its accuracy over the
  families and the reject class, and the multi-class confusion matrix."""
  NODE = 'PhaseTwoEvaluator'
  EVALUATION = 'evaluation'
  BLESSING = 'blessing'
  BLESSED = 'blessed'
  MEAN_FAMILY_RECALL = 'mean_family_recall'
  REJECT_RECALL = 'reject_recall'


class CascadeEvaluator:
  """The pair judged together, and gated, before either is pushed
  (`cascade/`)."""
  NODE = 'CascadeEvaluator'
  CANDIDATE = 'candidate'
  MODEL = 'model'
  SPAN_EXAMPLES = 'span_examples'
  EVALUATION = 'evaluation'
  # In the evaluation: every figure (`figures.judge`), the baseline's too.
  FILE = 'cascade.json'
  # A ModelBlessing, as TFX's Evaluator writes one: `blessed` 1 or 0, a
  # BLESSED or NOT_BLESSED file; both pushers read it.
  BLESSING = 'blessing'
  BLESSED = pair_blessing.BLESSED
  REASON = pair_blessing.REASON
  # Where phase one came from: this run's candidate, or the pushed LATEST
  # when the candidate is not ready.
  PHASE_ONE = 'phase_one'
  # The last pushed pair (or why there is none to compare with), and its
  # end-to-end accuracy at 20% instruments on the same examples.
  BASELINE = 'baseline'
  BASELINE_ACCURACY = 'baseline_accuracy_pi_0.2'


class PhaseTwoServingCheck:
  """Proves phase two's serving model in a model server before its push,
  as TFX's InfraValidator does (`serving_check/`): an `InfraBlessing`."""
  NODE = 'PhaseTwoServingCheck'
  MODEL = 'model'
  MODEL_BLESSING = 'model_blessing'
  SPAN_EXAMPLES = 'span_examples'
  BLESSING = 'blessing'
  # On the InfraBlessing, as TFX's InfraValidator writes it.
  BLESSED = 'blessed'
  REASON = 'reason'
  # The serving model proved is kept in the blessing, and pushed from it.
  SERVING_FOLDER = 'serving'
  SERVER = 'server'
  # The serving model against phase two's SavedModel, in process; then the
  # model server against the serving model, over HTTP.
  CHECK_FIGURES = ('check_requests', 'check_agreement',
                   'check_max_score_difference')
  SERVER_FIGURES = ('server_requests', 'server_agreement',
                    'server_max_score_difference', 'server_ready_seconds',
                    'server_p50_ms')


class PhaseTwoPusher:
  """Pushes the serving model its check proved (`phase_two_pusher/`)."""
  NODE = 'PhaseTwoPusher'
  MODEL = 'model'
  MODEL_BLESSING = 'model_blessing'
  INFRA_BLESSING = 'infra_blessing'
  SPAN_EXAMPLES = 'span_examples'
  # The CascadeEvaluator's blessing of the pair.
  CASCADE = 'cascade'
  PUSHED_MODEL = 'pushed_model'
  PUSHED = 'pushed'
  PUSHED_VERSION = 'pushed_version'
  PUSHED_DESTINATION = 'pushed_destination'
  REASON = 'reason'
  MODEL_NAME = 'model_name'
  # A Vertex AI endpoint deployment, when one is set.
  VERTEX_DEPLOYED = 'vertex_deployed'
  VERTEX_ENDPOINT = 'vertex_endpoint'
  VERTEX_MODEL = 'vertex_model'
  VERTEX_REASON = 'vertex_reason'
  # The check's figures, copied onto the PushedModel and into the manifest.
  CHECK_FIGURES = (PhaseTwoServingCheck.SERVER,
                   *PhaseTwoServingCheck.CHECK_FIGURES,
                   *PhaseTwoServingCheck.SERVER_FIGURES)


class TFLiteConverter:
  """Converts and proves the TFLite model, chooses phase one's threshold
  and writes the version devices would get, unpushed (`tflite_pusher/`)."""
  NODE = 'TFLiteConverter'
  MODEL = 'model'
  MODEL_BLESSING = 'model_blessing'
  EXAMPLES = 'examples'
  # The window's raw Examples: the audio front end they were drawn with.
  SPAN_EXAMPLES = 'span_examples'
  # A Model artifact: the version's files and manifest, every figure, and
  # whether it may be pushed (`ready`, else `reason`).
  CANDIDATE = 'candidate'
  READY = 'ready'
  REASON = 'reason'


class TFLitePusher:
  """Pushes the converter's candidate when it is ready and the cascade
  blessed the pair (`tflite_pusher/`)."""
  NODE = 'TFLitePusher'
  CANDIDATE = 'candidate'
  # The CascadeEvaluator's blessing (absent for a window without families).
  CASCADE = 'cascade'
  PUSHED_MODEL = 'pushed_model'
  # On the PushedModel: the outcome ...
  PUSHED = 'pushed'
  PUSHED_VERSION = 'pushed_version'
  PUSHED_DESTINATION = 'pushed_destination'
  REASON = 'reason'
  MODE = 'mode'
  # Phase one's decision threshold, chosen for a recall target on the
  # pushed model (components/tflite/threshold.py), and what it holds.
  THRESHOLD = 'threshold'
  THRESHOLD_FIGURES = (THRESHOLD, 'threshold_recall',
                       'threshold_recall_lower_bound',
                       'threshold_false_positive_rate',
                       'threshold_target_recall', 'threshold_met',
                       'threshold_recording_rule')
  # ... and every figure a reader shows, in the order readers list them,
  # named by the stages' result types (the converter records them on its
  # candidate; the pusher copies them onto the PushedModel).
  FIGURES = ((PUSHED, PUSHED_VERSION, PUSHED_DESTINATION) +
             results.ImageProof.names() + THRESHOLD_FIGURES +
             results.Packaging.names() + results.MicroProof.names() +
             (REASON,) + results.BudgetVerdict.names())
  # The waveform model's figures (`waveform_` and its manifest entry's
  # key): bytes, latency, the proof on test signals and on the span's own
  # eval windows, or why there is none.
  WAVEFORM_FIGURES = results.WaveformProof.names()


# The resolver nodes' ids.
LATEST_DATA_BASELINE_RESOLVER = 'latest_data_baseline_resolver'
LATEST_BLESSED_MODEL_RESOLVER = 'latest_blessed_model_resolver'
LATEST_BLESSED_PHASE_TWO_RESOLVER = 'latest_blessed_phase_two_resolver'

# Phase one's model and its blessing: the nodes and output keys the
# baseline resolver reads, so a second model-producing node (the cloud
# phase) never becomes phase one's baseline.
PHASE_ONE_TRAINER = 'Trainer'
PHASE_ONE_MODEL_KEY = 'model'
PHASE_ONE_EVALUATOR = 'Evaluator'
PHASE_ONE_BLESSING_KEY = 'blessing'
