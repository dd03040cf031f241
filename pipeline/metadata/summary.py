"""The summary of a run, read from ML Metadata, and its console text."""

import json
import os
from typing import Any, Dict, List, Optional

from components import contracts
from components.common import storage
from components.modules import features
from pipeline.metadata import figures_cache
from pipeline.metadata import mlmd
from pipeline.settings import config as config_lib


def _transformed_bytes_per_example(uri: str) -> Dict[str, float]:
  """On-disk and serialized bytes per transformed training example."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  files = storage.glob(storage.join(uri, 'Split-train', '*'))
  if not files:
    return {}
  count, serialized = 0, 0
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
    count += 1
    serialized += len(record.numpy())
  on_disk = sum(tf.io.gfile.stat(f).length for f in files)
  return {'examples': count,
          'disk_bytes_per_example': round(on_disk / max(count, 1), 1),
          'serialized_bytes_per_example': round(serialized / max(count, 1), 1)}


# Why a run trained no phase two.
NO_PHASE_TWO = ("the window's spans give no families (instrument/<family>/ "
                'folders): phase one alone')


def _labels(model_uri: str) -> List[str]:
  """Phase two's classes, from the labels file its SavedModel carries."""
  path = storage.join(model_uri, 'Format-Serving', features.ASSETS_EXTRA,
                      features.LABELS_FILE)
  try:
    return [line for line in storage.read_text(path).splitlines() if line]
  except OSError:
    return []


def phase_two(record: mlmd.RunRecord) -> Optional[Dict[str, Any]]:
  """Phase two in a run: its classes, eval accuracy, recall per class,
  blessing and model; or why it did not train (`trained` false, `reason`);
  None when the run made no window, or its phase two did not finish."""
  model = record.output(contracts.PhaseTwoTrainer.NODE,
                        contracts.PhaseTwoTrainer.MODEL)
  if model is None:
    window = record.output(contracts.SpanWindow.NODE,
                           contracts.SpanWindow.EXAMPLES)
    if window is None or mlmd.window_families(window) != []:
      return None
    return {'trained': False, 'reason': NO_PHASE_TWO}
  found: Dict[str, Any] = {
      'trained': True, 'classes': _labels(model.uri),
      'model_path': storage.join(model.uri, 'Format-Serving')}
  evaluation = record.output(contracts.PhaseTwoEvaluator.NODE,
                             contracts.PhaseTwoEvaluator.EVALUATION)
  if evaluation is not None:
    found['metrics'] = mlmd.evaluation_metrics(evaluation.uri)
    found['confusion'] = mlmd.class_confusion(evaluation.uri,
                                              found['classes'])
    found['recall'] = mlmd.class_recall(found['classes'], found['confusion'])
  blessing = record.output(contracts.PhaseTwoEvaluator.NODE,
                           contracts.PhaseTwoEvaluator.BLESSING)
  if blessing is not None:
    found['blessed'] = bool(mlmd.custom_value(
        blessing, contracts.PhaseTwoEvaluator.BLESSED))
  check = record.output(contracts.PhaseTwoServingCheck.NODE,
                        contracts.PhaseTwoServingCheck.BLESSING)
  if check is not None:
    c = contracts.PhaseTwoServingCheck
    found['serving_check'] = {
        name: mlmd.custom_value(check, name) for name in (
            c.BLESSED, c.REASON, c.SERVER, *c.CHECK_FIGURES,
            *c.SERVER_FIGURES)
        if mlmd.custom_value(check, name) is not None}
  cascade = record.output(contracts.CascadeEvaluator.NODE,
                          contracts.CascadeEvaluator.EVALUATION)
  if cascade is not None:
    found['cascade'] = {name: mlmd.custom_value(cascade, name)
                        for name in cascade.custom_properties}
    found['cascade'].update(cascade_gate(record))
  pushed = record.output(contracts.PhaseTwoPusher.NODE,
                         contracts.PhaseTwoPusher.PUSHED_MODEL)
  if pushed is not None:
    found['pushed'] = {
        name: mlmd.custom_value(pushed, name) for name in (
            contracts.PhaseTwoPusher.PUSHED,
            contracts.PhaseTwoPusher.PUSHED_VERSION,
            contracts.PhaseTwoPusher.PUSHED_DESTINATION,
            contracts.PhaseTwoPusher.MODEL_NAME,
            contracts.PhaseTwoPusher.REASON,
            *contracts.PhaseTwoPusher.CHECK_FIGURES)
        if mlmd.custom_value(pushed, name) is not None}
  return found


def cascade_figures(record: mlmd.RunRecord) -> Dict[str, Any]:
  """Every figure of a run's cascade (its `cascade.json`: at each share of
  instruments, each family, the curve, the baseline); {} when it judged
  none."""
  evaluation = record.output(contracts.CascadeEvaluator.NODE,
                             contracts.CascadeEvaluator.EVALUATION)
  if evaluation is None:
    return {}
  path = storage.join(evaluation.uri, contracts.CascadeEvaluator.FILE)
  return json.loads(storage.read_text(path)) if storage.isfile(path) else {}


def cascade_gate(record: mlmd.RunRecord) -> Dict[str, Any]:
  """The gate's verdict on a run's pair (`blessed`, `gate_reason`); {}
  when the cascade did not run."""
  c = contracts.CascadeEvaluator
  gate = record.output(c.NODE, c.BLESSING)
  if gate is None:
    return {}
  return {'blessed': bool(mlmd.custom_value(gate, c.BLESSED)),
          'gate_reason': mlmd.custom_value(gate, c.REASON)}


def threshold_line(pushed: Dict[str, Any]) -> str:
  """Phase one's chosen threshold and what it holds, from the PushedModel's
  figures."""
  line = (f"Phase one decides at {pushed['threshold']:.4g} (chosen for "
          f"recall {pushed.get('threshold_target_recall')} on the TFLite "
          f"model): eval recall {pushed.get('threshold_recall', 0):.4f}, at "
          f"least {pushed.get('threshold_recall_lower_bound', 0):.4f} at 95% "
          f"confidence; false-positive rate "
          f"{pushed.get('threshold_false_positive_rate', 0):.4f}")
  if not pushed.get('threshold_met', 1):
    line += ' (the target is not proved on this eval split)'
  if pushed.get('threshold_recording_rule') == 'mean':
    line += '; a recording by the mean of its windows'
  return line


def format_phase_two(found: Dict[str, Any]) -> List[str]:
  """Phase two's console lines."""
  if not found.get('trained'):
    return [f"Phase two: not trained: {found['reason']}"]
  metrics = found.get('metrics') or {}

  def figure(name):
    value = metrics.get(name)
    return f'{value:g}' if value is not None else 'not measured'

  gate = contracts.PhaseTwoEvaluator
  lines = [f"Phase two: {len(found['classes'])} classes, mean family recall "
           f'{figure(gate.MEAN_FAMILY_RECALL)}, reject recall '
           f'{figure(gate.REJECT_RECALL)}, eval accuracy '
           f"{figure('sparse_categorical_accuracy')}"
           + (f", blessed {'yes' if found['blessed'] else 'NO'}"
              if 'blessed' in found else '')]
  recall = {name: value for name, value in (found.get('recall') or {}).items()
            if value is not None}
  if recall:
    lines.append('Phase two recall: ' + ', '.join(
        f'{name} {value:.2f}' for name, value in recall.items()))
  lines.append(f"Phase two SavedModel: {found['model_path']}")
  lines += serving_check_lines(found.get('serving_check'))
  pushed = found.get('pushed') or {}
  if pushed.get('pushed'):
    lines.append(
        f"Phase two pushed as {pushed.get('model_name')} version "
        f"{pushed.get('pushed_version')}: {pushed.get('pushed_destination')}")
  elif pushed:
    lines.append(f"Phase two not pushed: {pushed.get('reason')}")
  lines += cascade_lines(found.get('cascade'))
  return lines


def cascade_lines(cascade: Optional[Dict[str, Any]]) -> List[str]:
  """The pair judged together, at 20% instruments, and the gate's verdict."""
  if not cascade:
    return []
  if cascade.get('reason'):
    return [f"Cascade: not judged, both pushes held: {cascade['reason']}"]
  lines = [
      f"Cascade ({cascade.get('phase_one') or 'phase one'} at "
      f"{cascade.get('threshold'):.4g}, then phase two), at 20% instruments: "
      f"end-to-end accuracy {cascade.get('accuracy_pi_0.2'):.4f} (device "
      f"alone {cascade.get('device_alone_pi_0.2'):.4f}, cloud alone "
      f"{cascade.get('cloud_alone_pi_0.2'):.4f}); cloud share "
      f"{cascade.get('cloud_share_pi_0.2'):.4f}",
      f"  phase one routes {cascade.get('tpr1'):.4f} of instruments and "
      f"{cascade.get('fpr1'):.4f} of the rest; phase two names "
      f"{cascade.get('a2') or 0:.4f} of routed instruments, rejects "
      f"{cascade.get('r2') if cascade.get('r2') is not None else 1:.4f} of "
      f"the rest routed"]
  before = cascade.get(contracts.CascadeEvaluator.BASELINE_ACCURACY)
  against = cascade.get(contracts.CascadeEvaluator.BASELINE)
  lines.append('  against the last pushed pair: ' + (
      f'{against}, {before:.4f}' if before is not None
      else f'none ({against})' if against else 'none'))
  if 'blessed' in cascade:
    lines.append('  the pair is ' + (
        'blessed: both phases may be pushed' if cascade['blessed'] else
        f"held back, neither phase pushed: {cascade.get('gate_reason')}"))
  return lines


def serving_check_lines(check: Optional[Dict[str, Any]]) -> List[str]:
  """What phase two's serving check proved, or why it blessed nothing."""
  if not check:
    return []
  if not check.get('blessed'):
    return [f"Phase two serving check: not blessed: {check.get('reason')}"]
  lines = [f"Phase two serving check: the serving model answers as its "
           f"SavedModel on {check.get('check_requests')} requests (scores at "
           f"most {check.get('check_max_score_difference')} apart)"]
  if check.get('server_requests') is not None:
    lines.append(
        f"  KServe's model server: ready in {check.get('server_ready_seconds')}"
        f" s, answered {check.get('server_requests')} requests alike (scores "
        f"at most {check.get('server_max_score_difference')} apart, "
        f"{check.get('server_p50_ms')} ms per batch at the median)")
  return lines


def summarize_latest_run(config: config_lib.PipelineConfig) -> Dict[str, Any]:
  """Summarises the newest run of the pipeline from ML Metadata.

  Args:
    config: the pipeline configuration (metadata path and pipeline name).

  Returns:
    A dict with `run_id`, `components` (node, state, seconds), `spans`
    (the data spans trained on, or the new span alone when the run stopped
    before the window), `blessed`,
    `model_path`, `metrics`, `transformed` (bytes per example),
    `pushed` when a pusher ran, `search` (the chosen trial's figures)
    when a model search ran, and `phase_two` (:func:`phase_two`).

  Raises:
    mlmd.MetadataError: when no run is recorded, naming the store.
  """
  store = mlmd.open_store(config.metadata_url(), read_only=True)
  try:
    record = mlmd.find_run(store, config.pipeline_name)
  except mlmd.MetadataError as e:
    raise mlmd.MetadataError(
        f'{e} ({config.metadata_url().redacted()})') from e
  summary: Dict[str, Any] = {
      'run_id': record.run_id,
      'components': record.components(),
      'spans': record.window_spans(),
      # From the first component's start to the last one's end, as
      # `inspect runs` gives it.
      'components_seconds': round(record.seconds, 1),
  }
  model = record.output(contracts.Trainer.NODE, contracts.Trainer.MODEL)
  if model is not None:
    summary['model_path'] = os.path.join(model.uri, 'Format-Serving')
  if record.blessed is not None:
    summary['blessed'] = record.blessed
  evaluation = record.output(contracts.Evaluator.NODE, contracts.Evaluator.EVALUATION)
  if evaluation is not None:
    summary['metrics'] = mlmd.evaluation_metrics(evaluation.uri)
  pushed = record.output(contracts.TFLitePusher.NODE, contracts.TFLitePusher.PUSHED_MODEL)
  if pushed is not None:
    summary['pushed'] = mlmd.pushed_summary(pushed)
  chosen = record.output(contracts.ModelSearch.NODE, contracts.ModelSearch.BEST_HYPERPARAMETERS)
  results = record.output(contracts.ModelSearch.NODE, contracts.ModelSearch.TUNER_RESULTS)
  if chosen is not None and results is not None:
    summary['search'] = {
        name: mlmd.custom_value(artifact, name)
        for artifact, names in (
            (chosen, contracts.ModelSearch.CHOSEN),
            (results, contracts.ModelSearch.RESULTS))
        for name in names}
  second = phase_two(record)
  if second is not None:
    summary['phase_two'] = second
  transformed = record.output(contracts.Transform.NODE, contracts.Transform.TRANSFORMED_EXAMPLES)
  if transformed is not None:
    summary['transformed'] = figures_cache.cached(
        config.workspace, 'transformed-bytes', [transformed.uri],
        lambda: _transformed_bytes_per_example(transformed.uri))
  return summary


def format_summary(summary: Dict[str, Any]) -> str:
  """Renders a run summary as a few lines of text for the console."""
  lines: List[str] = [f"Run {summary['run_id']}" + (
      f" on spans {', '.join(map(str, summary['spans']))}"
      if summary.get('spans') else '')]
  for component in summary['components']:
    lines.append(f"  {component['node']:<32} {component['state']:<8} "
                 f"{component['seconds']:>7.1f} s")
  if 'wall_seconds' in summary:
    line = (f"  {'total wall time':<32} {'':<8} "
            f"{summary['wall_seconds']:>7.1f} s")
    if summary.get('components_seconds') is not None:
      line += (f" (the components {summary['components_seconds']:.1f} s, "
               'as inspect runs says; the rest is the checks before and '
               'this summary)')
    lines.append(line)
  transformed = summary.get('transformed') or {}
  if transformed:
    lines.append(
        f"Transformed examples: {transformed['examples']} in train, "
        f"{transformed['disk_bytes_per_example']:.0f} bytes each on disk "
        f"({transformed['serialized_bytes_per_example']:.0f} serialized)")
  search = summary.get('search') or {}
  if search:
    lines.append(
        f"Model search: trial {search['chosen_trial']} of {search['trials']} "
        f"chosen, {search['trials_within_budget']} within the budget "
        f"({search['budget']}); its trial: AUC {search['auc']:.4f}, "
        f"{search['tflite_bytes']:,} bytes, {search['latency_ms_median']:.3f} "
        'ms (see `inspect trials`)')
  metrics = summary.get('metrics') or {}
  if metrics:
    lines.append('Evaluation: ' + ', '.join(
        f'{name} {value:g}' for name, value in sorted(metrics.items())))
  if 'blessed' in summary:
    lines.append('Model blessed: ' + ('yes' if summary['blessed'] else
                                      'NO (below the thresholds)'))
  if 'model_path' in summary:
    lines.append(f"SavedModel: {summary['model_path']}")
  pushed = summary.get('pushed') or {}
  if pushed.get('pushed'):
    lines.append(
        f"TFLite ({pushed.get('mode')}): {pushed.get('tflite_bytes')} bytes, "
        f"{pushed.get('size_ratio', 0):.2f}x the float32 TFLite model; "
        f"accuracy {pushed.get('tflite_accuracy')} vs SavedModel "
        f"{pushed.get('savedmodel_accuracy')}, AUC {pushed.get('tflite_auc')}, "
        f"agreement {pushed.get('agreement')}, "
        f"{pushed.get('latency_ms_median')} ms per image")
    if pushed.get('threshold') is not None:
      lines.append(threshold_line(pushed))
    if pushed.get('arena_bytes') is not None:
      lines.append(
          f"TensorFlow Lite Micro: arena {pushed['arena_bytes']:,} bytes, "
          f"{pushed.get('micro_latency_ms_median')} ms per image, outputs "
          f"identical to LiteRT's on {pushed.get('micro_identical', 0):.0%} "
          f"of {pushed.get('micro_examples')} images; C source in the "
          'version folder')
    elif pushed.get('micro_error'):
      lines.append(f"TensorFlow Lite Micro: {pushed['micro_error']}")
    if pushed.get('waveform_bytes') is not None:
      proof = (f"; on {pushed['waveform_eval_windows']} eval windows "
               f"accuracy {pushed.get('waveform_eval_accuracy')} vs "
               f"SavedModel {pushed.get('waveform_eval_savedmodel_accuracy')}"
               if pushed.get('waveform_eval_windows') else
               '; proved on test signals only')
      lines.append(f"Waveform model: {pushed['waveform_bytes']:,} bytes, "
                   f"{pushed.get('waveform_latency_ms_median')} ms per "
                   f'window{proof}')
    elif pushed.get('waveform_recordings'):
      lines.append(f"No waveform model: {pushed.get('waveform_reason')}")
    lines.append(f"Pushed version {pushed.get('pushed_version')}: "
                 f"{pushed.get('pushed_destination')}")
  elif pushed:
    lines.append(f"TFLite model not pushed: {pushed.get('reason')}")
  if summary.get('phase_two'):
    lines.extend(format_phase_two(summary['phase_two']))
  return '\n'.join(lines)
