"""A self-contained HTML report of one pipeline run.

`python -m pipeline report` (and every `python -m pipeline run`) writes
`WORKSPACE/reports/run-<run id>.html`: one file with no external resources
(no scripts, fonts or images fetched), readable offline and attachable to a
ticket. It shows, for the run:

- the components, their state (ran, cached, failed) and time;
- the window of data spans the run trained on, with each span's source,
  counts and image summaries, and a few sample images of each class of the
  newest span;
- the drift of the new span from the last accepted one, each distance
  beside its threshold;
- the data statistics of the new span, as TFDV computes them (counts,
  missing, numeric summaries with histograms, string summaries), and the
  label's class balance;
- the anomalies ExampleValidator found against the schema;
- the evaluation metrics beside the thresholds that bless a model, with the
  confusion matrix and the ROC curve drawn from TFMA's confusion matrices,
  and the eval examples the run's model got wrong, as pictures with their
  scores;
- the TFLite figures of every pushed model, this run's marked;
- the lineage of this run's model as a small graph.

Everything is read from ML Metadata (:func:`gather`, plain data), from the
artifacts' files (:mod:`artifacts`) and the run's model (:mod:`examples`,
scored once per model), then laid out by the Jinja2 template
`pipeline/reporting/templates/report.html` (:func:`render`); the charts are
inline SVG drawn from the shapes :mod:`report_charts` computes.
"""

import datetime
import math
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jinja2

from components import contracts
from components import data_gate
from components.common import local_disk
from components.model_search import trials as trials_lib
from components.modules import features
from pipeline.settings import config as config_lib
from pipeline.metadata import inspection
from pipeline.metadata import lineage
from pipeline.metadata import mlmd
from pipeline.metadata import summary as summary_lib
from pipeline.reporting import artifacts
from pipeline.reporting import examples
from pipeline.reporting import report_charts

REPORTS_DIR = 'reports'
TEMPLATES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             'templates')


def _fmt(value: Any) -> str:
  """How a figure reads in the report: 4 significant digits, n/a for NaN."""
  if isinstance(value, float):
    if math.isnan(value):
      return 'n/a'
    return f'{value:.4g}'
  if value is None:
    return ''
  return str(value)


def report_path(config: config_lib.PipelineConfig, run_id: str) -> str:
  """Where the report of a run is written."""
  safe = re.sub(r'[^0-9A-Za-z_.-]+', '-', run_id).strip('-')
  return os.path.join(config.workspace, REPORTS_DIR, f'run-{safe}.html')


# ------------------------------------------------------------ gathering


# The threshold of a run that ships none (it pushed nothing, or a version
# pushed before thresholds were chosen).
DEFAULT_THRESHOLD = 0.5


def _matrix_at(matrices, threshold: float = DEFAULT_THRESHOLD
               ) -> Optional[Dict]:
  if not matrices:
    return None
  return min(matrices, key=lambda m: abs(m['threshold'] - threshold))


def _printable(value: str) -> bool:
  return len(value) <= 60 and value.isprintable()


def _class_shares(class_names: Sequence[str], zeros: float,
                  ones: float) -> Tuple[str, str]:
  total = zeros + ones
  shares = [(class_names[0] if class_names else '0', zeros),
            (class_names[1] if len(class_names) > 1 else '1', ones)]
  return ('classes', ', '.join(f'{c} {int(n)} ({100.0 * n / total:.1f}%)'
                               for c, n in shares))


# String features whose every value's share the report shows.
GROUP_FEATURES = (features.FAMILY_KEY, features.KIND_KEY)


def _feature(feature, label_key: str,
             class_names: Sequence[str]) -> Dict[str, Any]:
  """One feature's facts (name, value pairs) and histogram."""
  name = '.'.join(feature.path.step) or feature.name
  kind = feature.WhichOneof('stats')
  stats = getattr(feature, kind) if kind else None
  common = stats.common_stats if stats is not None else None
  present = common.num_non_missing if common else 0
  facts = [('present', present), ('missing', common.num_missing if common
                                   else 0)]
  histogram = None
  if kind == 'num_stats':
    facts += [('mean', stats.mean), ('std dev', stats.std_dev),
              ('min', stats.min), ('median', stats.median),
              ('max', stats.max), ('zeros', stats.num_zeros)]
    for h in stats.histograms:
      if h.type == h.STANDARD and h.buckets:
        histogram = report_charts.bar_chart(
            [b.sample_count for b in h.buckets],
            [f'{b.low_value:.3g} - {b.high_value:.3g}' for b in h.buckets],
            title=f'{name} histogram')
    if name == label_key and present:
      facts.append(_class_shares(class_names, stats.num_zeros,
                                 present - stats.num_zeros))
  elif kind == 'string_stats':
    facts += [('unique', stats.unique), ('average length', stats.avg_length)]
    if name == label_key and present:  # The schema's categorical label.
      counts = {v.value: v.frequency for v in stats.top_values}
      facts.append(_class_shares(class_names, counts.get('0', 0),
                                 counts.get('1', 0)))
    if name in GROUP_FEATURES and present:
      # Each family's (or kind's) share of the examples that have one.
      shown = sorted(stats.top_values, key=lambda v: v.value)
      facts.append(('shares', ', '.join(
          f'{v.value} {v.frequency / present:.1%}' for v in shown)))
      histogram = report_charts.bar_chart(
          [v.frequency for v in shown], [v.value for v in shown],
          title=f'{name} shares')
    top = [v for v in stats.top_values if _printable(v.value)
           and not v.value.startswith('__BYTES')][:5]
    if name not in GROUP_FEATURES and top and top[0].frequency > 1:
      facts.append(('top values', ', '.join(
          f'{v.value} ({int(v.frequency)})' for v in top)))
  elif kind == 'bytes_stats':
    facts += [('unique', stats.unique), ('average bytes', stats.avg_num_bytes),
              ('min bytes', stats.min_num_bytes),
              ('max bytes', stats.max_num_bytes)]
  return {'name': name, 'kind': (kind or '').replace('_stats', ''),
          'facts': facts, 'histogram': histogram}


def _statistics(statistics: Dict[str, Any], label_key: str,
                class_names: Sequence[str]) -> List[Dict[str, Any]]:
  """Splits (train first) with their example counts and features."""
  return [{'name': split, 'examples': dataset.num_examples,
           'features': [_feature(f, label_key, class_names)
                        for f in dataset.features]}
          for split, dataset in sorted(statistics.items(),
                                       key=lambda item: item[0] != 'train')]


def _anomalies(anomalies: Dict[str, Any]) -> Optional[Dict[str, Any]]:
  if not anomalies:
    return None
  rows = []
  for split, proto in anomalies.items():
    for feature, info in sorted(proto.anomaly_info.items()):
      rows.append((split, feature, info.short_description, info.description))
    if proto.HasField('dataset_anomaly_info'):
      info = proto.dataset_anomaly_info
      rows.append((split, '(data set)', info.short_description,
                   info.description))
  return {'rows': rows, 'splits': list(anomalies)}


_SUMMARIES = ('pixel_mean', 'pixel_std', 'saturated_share')


def _span_figures(dataset) -> Dict[str, Any]:
  """Examples, class-1 share and the image summaries' means of one span."""
  means = {'.'.join(f.path.step): f.num_stats.mean for f in dataset.features
           if f.HasField('num_stats')}
  return {'examples': dataset.num_examples,
          'positive_share': data_gate.positive_share(dataset),
          **{name: means.get(name) for name in _SUMMARIES}}


def _window(store, record: mlmd.RunRecord) -> Dict[str, Any]:
  """The run's data spans: source, counts, ingest time and image summaries."""
  window = record.output(contracts.SpanWindow.NODE, contracts.SpanWindow.EXAMPLES)
  sources = mlmd.span_sources(window) if window is not None else {}
  rows = []
  for span in record.window_spans():
    source = sources.get(span, {})
    figures: Dict[str, Any] = {}
    found = lineage.span_examples(store, span)
    if found and found.get('statistics'):
      [stats] = store.get_artifacts_by_id([found['statistics']['id']])
      datasets = artifacts.read_statistics(stats)
      if datasets:
        figures = _span_figures(next(iter(datasets.values())))
    share = figures.get('positive_share')
    rows.append((span, source.get('source'), source.get('ingested'),
                 figures.get('examples'),
                 f'{share:.1%}' if share is not None else None,
                 *(figures.get(name) for name in _SUMMARIES)))
  families = mlmd.window_families(window) if window is not None else None
  return {'rows': rows, 'trained': window is not None,
          'groups': group_rows(sources, record.window_spans()),
          'families': families}


def group_rows(sources: Dict[int, Dict[str, Any]], spans: List[int]
               ) -> List[Tuple[Any, ...]]:
  """Examples per sub-folder of each class (an instrument's family, a
  kind of other sound) of each span that has sub-folders: (span, class,
  family or kind, examples, share of the class)."""
  rows = []
  for span in spans:
    for name, groups in ((sources.get(span) or {}).get('groups')
                         or {}).items():
      rows += [(span, name, group or '(in the class folder)', count,
                f'{share:.1%}')
               for group, count, share in lineage.group_shares(groups)]
  return rows


def _drift(record: mlmd.RunRecord) -> Optional[Dict[str, Any]]:
  drift = record.drift()
  if drift is None:
    return None
  rows = [(split, m['feature'], m['measure'], m['value'], m['threshold'],
           'over' if m['value'] > m['threshold'] else 'within')
          for split, measurements in sorted(drift['measurements'].items())
          for m in measurements]
  return {'baseline_span': drift['baseline_span'], 'rows': rows}


def _threshold_text(threshold: Dict[str, Any]) -> str:
  parts = []
  value = threshold.get('valueThreshold', {})
  if 'lowerBound' in value:
    parts.append(f">= {value['lowerBound']}")
  if 'upperBound' in value:
    parts.append(f"<= {value['upperBound']}")
  change = threshold.get('changeThreshold', {})
  if change:
    direction = change.get('direction', '')
    parts.append(f"change vs baseline {'>=' if 'HIGHER' in direction else '<='}"
                 f" {change.get('absolute', change.get('relative', ''))}")
  return '; '.join(parts)


_METRIC_CLASS = {'auc': 'AUC', 'binary_accuracy': 'BinaryAccuracy',
                 'precision': 'Precision', 'recall': 'Recall',
                 'example_count': 'ExampleCount'}


def _evaluation(evaluation: Optional[Dict[str, Any]], blessed: Optional[bool],
                class_names: Sequence[str],
                misclassified: Optional[Dict[str, Any]],
                shipped: Optional[float] = None
                ) -> Optional[Dict[str, Any]]:
  """The evaluation's section; its confusion matrix at the threshold phase
  one ships with (`shipped`, else 0.5), the nearest TFMA computed."""
  if not evaluation:
    return None
  rows = []
  for name, value in sorted(evaluation['metrics'].items()):
    threshold = evaluation['thresholds'].get(_METRIC_CLASS.get(name, name))
    rows.append((name, value, _threshold_text(threshold) if threshold else ''))
  matrix = _matrix_at(evaluation['matrices'],
                      DEFAULT_THRESHOLD if shipped is None else shipped)
  sliced = []
  for feature, said in ((features.KIND_KEY, 'flagged as an instrument'),
                        (features.FAMILY_KEY, 'found')):
    for value, metrics in sorted(evaluation.get('slices', {}).get(
        feature, {}).items()):
      if 'binary_accuracy' in metrics:
        share = metrics['binary_accuracy']
        if feature == features.KIND_KEY:
          share = 1.0 - share
        sliced.append((f'{feature} {value}', int(metrics.get(
            'example_count', 0)), f'{share:.4f} {said}'))
  return {
      'blessed': blessed, 'failures': evaluation['failures'], 'rows': rows,
      'sliced': sliced, 'shipped': shipped is not None,
      'misclassified': misclassified,
      'confusion': (report_charts.confusion_chart(
          matrix, class_names, matrix['threshold']) if matrix else None),
      'roc': (report_charts.roc_chart(
          report_charts.roc_points(evaluation['matrices']),
          evaluation['metrics'].get('auc')) if matrix else None)}


# The waveform model's columns in the report, after the version.
WAVEFORM_COLUMNS = tuple(f'waveform_{name}' for name in (
    'bytes', 'latency_ms_median', 'front_end_max_pixel_error',
    'eval_windows', 'eval_front_end_max_pixel_error', 'eval_agreement',
    'eval_accuracy', 'eval_accuracy_drop',
    'eval_threshold_decisive_agreement', 'reason'))


def _tflite(store, this_run: Optional[Dict[str, Any]]) -> Dict[str, Any]:
  """Every pushed version, newest first, this run's marked; and the
  waveform model of each version pushed from recordings (or why it has
  none)."""
  rows, waveform = [], []
  this_version = (this_run or {}).get('pushed_version')
  seen = set()
  for artifact in lineage.tflite_pushed_models(store):
    figures = mlmd.pushed_summary(artifact)
    version = figures.get('pushed_version')
    if not figures.get('pushed') or version in seen:
      continue
    seen.add(version)
    mark = ' (this run)' if version == this_version else ''
    rows.append((f'v{version}{mark}', figures.get('mode'),
                 figures.get('tflite_bytes'), figures.get('float_bytes'),
                 figures.get('size_ratio'), figures.get('tflite_accuracy'),
                 figures.get('savedmodel_accuracy'),
                 figures.get('accuracy_drop'), figures.get('tflite_auc'),
                 figures.get('latency_ms_median'), figures.get('arena_bytes')))
    if any(name in figures for name in WAVEFORM_COLUMNS):
      waveform.append((f'v{version}{mark}',) + tuple(
          figures.get(name) for name in WAVEFORM_COLUMNS))
  return {'this_run': this_run, 'rows': rows[::-1],
          'waveform_rows': waveform[::-1],
          'threshold_line': (summary_lib.threshold_line(this_run)
                             if (this_run or {}).get('threshold') is not None
                             else None)}


def _arena(trial: Dict[str, Any]) -> Any:
  """A trial's TFLM arena for the table: bytes, or why there is none."""
  arena = trial.get('arena_bytes')
  if arena is None:
    return None
  return int(arena) if arena >= 0 else 'not measured'


def _search(record: mlmd.RunRecord) -> Optional[Dict[str, Any]]:
  """The run's model search: its trials as a table and two scatters (AUC
  against size and against latency), or None when the run did not search."""
  table = inspection.run_trials(record)
  if table is None:
    return None
  done = trials_lib.completed(table['trials'])
  budget = table['budget']
  rows = []
  for r in table['trials']:
    hp = r.get('hyperparameters', {})
    rows.append((r['trial_id'] + (' (chosen)' if r['trial_id'] ==
                                  table['chosen_trial'] else ''),
                 hp.get('width'), hp.get('dropout'), hp.get('learning_rate'),
                 r.get('tflite_bytes'), r.get('latency_ms_median'),
                 _arena(r), r.get('auc'),
                 'yes' if r.get('within_budget') else 'no', r.get('seconds')))
  charts = []
  for cost, label, limit in (
      ('tflite_bytes', 'TFLite bytes', 'max_tflite_bytes'),
      ('latency_ms_median', 'latency ms', 'max_latency_ms'),
      ('arena_bytes', 'TFLM arena bytes (RAM)', 'max_arena_bytes')):
    # Trials whose arena was not measured (-1) have no point on that chart.
    measured = [r for r in done if r.get(cost, -1) >= 0]
    charts.append(report_charts.trials_chart(
        measured, cost, label, float(budget.get(limit) or 0),
        trials_lib.pareto_front(measured, cost), table['chosen_trial']))
  return {'budget': ', '.join(f'{k} {v:,}' for k, v in sorted(budget.items())
                              if v) or 'none',
          'chosen': table['chosen_trial'], 'rows': rows,
          'charts': [c for c in charts if c]}


def _lineage(chain: Optional[Dict[str, Any]],
             phase_two: Optional[Dict[str, Any]] = None
             ) -> Optional[Dict[str, Any]]:
  """The lineage section: phase one's pushed model back to its spans, and
  the graph of both pushed models (`phase_two`: the upstream graph of
  phase two's, when this run pushed one)."""
  if not chain:
    return None
  spans = []
  for window in chain.get('examples', []):
    for span, source in sorted(window.get('sources', {}).items()):
      spans.append((span, source.get('source'),
                    lineage.counts_text(source.get('counts')),
                    source.get('ingested')))
  trainer = chain.get('trainer') or {}
  settings = trainer.get('custom_config') or {}
  return {'model_id': chain.get('model', {}).get('id'),
          'run_id': trainer.get('run_id'),
          'steps': (trainer.get('train_args') or {}).get('num_steps'),
          'settings': ', '.join(f'{k}={v}' for k, v in sorted(settings.items())),
          'spans': spans,
          'both_phases': phase_two is not None,
          'graph': report_charts.lineage_chart(lineage.merge_graphs(
              chain['graph'], phase_two))}


def _phase_two(record: mlmd.RunRecord) -> Optional[Dict[str, Any]]:
  """Phase two's section: whether it trained (or why not), its accuracy,
  blessing and recall per class."""
  found = summary_lib.phase_two(record)
  if found is None or not found.get('trained'):
    return found
  metrics = found.get('metrics') or {}
  judged = summary_lib.cascade_figures(record)
  curve = [(point['threshold'], point['accuracy'], point['cloud_share'])
           for point in judged.get('curve', [])]
  gate = contracts.PhaseTwoEvaluator
  return dict(found, accuracy=metrics.get('sparse_categorical_accuracy'),
              family_recall=metrics.get(gate.MEAN_FAMILY_RECALL),
              reject_recall=metrics.get(gate.REJECT_RECALL),
              examples=metrics.get('example_count'),
              check_lines=summary_lib.serving_check_lines(
                  found.get('serving_check')) + summary_lib.cascade_lines(
                      found.get('cascade')),
              rows=[(name, recall) for name, recall in
                    (found.get('recall') or {}).items()],
              confusion=report_charts.classes_chart(
                  found.get('confusion') or [], found.get('classes') or []),
              cascade_by_pi=[
                  (f'{float(pi):.0%}', at['accuracy'], at['device_alone'],
                   at['cloud_alone'], at['cloud_share'])
                  for pi, at in judged.get('by_pi', {}).items()],
              cascade_families=[
                  (name, family['end_to_end_recall'],
                   family['phase_one_recall'], family['examples'])
                  for name, family in judged.get('families', {}).items()],
              cascade_curve=curve,
              cascade_chart=report_charts.cascade_chart(
                  curve, (found.get('cascade') or {}).get('threshold')))


def _change(store, config: config_lib.PipelineConfig,
            record: mlmd.RunRecord) -> Optional[Dict[str, Any]]:
  """This run's `inspect metrics` entry and the one of the evaluated run
  before it (None before), or None when this run evaluated nothing."""
  this = inspection.metrics_entry(record)
  if this is None:
    return None
  return {'this': this, 'before': inspection.metrics_before(
      store, config.pipeline_name, record.run_id)}


def gather(config: config_lib.PipelineConfig,
           run_id: Optional[str] = None) -> Dict[str, Any]:
  """Everything the report shows about a run, as plain data.

  Args:
    config: the pipeline configuration (store, names).
    run_id: a run id or a unique prefix of one; default the newest run.

  Returns:
    The template's variables (see `pipeline/reporting/templates/report.html`).

  Raises:
    mlmd.MetadataError: when the pipeline never ran here, or the run is
      not found.
  """
  store = mlmd.open_store(config.metadata_url(), read_only=True)
  record = mlmd.find_run(store, config.pipeline_name, run_id)

  statistics = record.output(contracts.StatisticsGen.NODE,
                             contracts.StatisticsGen.STATISTICS)
  anomalies = record.output(contracts.ExampleValidator.NODE,
                            contracts.ExampleValidator.ANOMALIES)
  evaluation = record.output(contracts.Evaluator.NODE,
                             contracts.Evaluator.EVALUATION)
  statistics = artifacts.read_statistics(statistics) if statistics else {}
  anomalies = artifacts.read_anomalies(anomalies.uri) if anomalies else {}
  evaluation = (artifacts.read_evaluation(evaluation.uri) if evaluation
                else None)
  pushed = record.output(contracts.TFLitePusher.NODE, contracts.TFLitePusher.PUSHED_MODEL)
  pushed_two = record.output(contracts.PhaseTwoPusher.NODE,
                             contracts.PhaseTwoPusher.PUSHED_MODEL)
  # The threshold phase one ships with: the confusion matrix and the
  # misclassified examples are at it.
  shipped = (mlmd.pushed_summary(pushed).get(contracts.TFLitePusher.THRESHOLD)
             if pushed is not None else None)
  class_names = list(config.class_names)
  converter = record.execution(contracts.TFLiteConverter.NODE)
  if converter is not None:
    class_names = list(mlmd.execution_settings(converter.execution).get(
        'class_names') or class_names)
  return {
      'run_id': record.run_id,
      'pipeline_name': config.pipeline_name,
      'workspace': config.workspace,
      'generated': datetime.datetime.now().astimezone().strftime(
          '%Y-%m-%d %H:%M:%S %Z'),
      'started': inspection.local_time(record.started_ms),
      'seconds': round(record.seconds, 1),
      'counts': {state: len(record.nodes(state))
                 for state in ('ran', 'cached', 'failed')},
      'components': record.components(),
      'window': _window(store, record),
      'drift': _drift(record),
      'samples': examples.samples(store, record, class_names),
      'statistics': _statistics(statistics, 'label', class_names),
      'anomalies': _anomalies(anomalies),
      'evaluation': _evaluation(
          evaluation, record.blessed, class_names,
          examples.misclassified_once(
              config.workspace, record, class_names,
              DEFAULT_THRESHOLD if shipped is None else shipped)
          if evaluation else None, shipped),
      'phase_two': _phase_two(record),
      'change': _change(store, config, record),
      'search': _search(record),
      'tflite': _tflite(store, mlmd.pushed_summary(pushed)
                        if pushed is not None else None),
      'lineage': _lineage(
          lineage.model_lineage(store, pushed) if pushed is not None
          else None,
          lineage.upstream_graph(store, pushed_two.id)
          if pushed_two is not None else None),
      'settings': ([(name, ', '.join(map(str, value))
                     if isinstance(value, list) else value)
                    for name, value in record.settings.items()]
                   if record.settings is not None else None),
  }


# What the headline compares with the run before: a name, and how to read
# it from an `inspect metrics` entry (`inspection.metrics_entry`).
COMPARED = (
    ("phase one's AUC", lambda e: (e.get('metrics') or {}).get('auc')),
    ("phase one's threshold", lambda e: (e.get('tflite') or {}).get(
        contracts.TFLitePusher.THRESHOLD)),
    ("phase two's mean family recall", lambda e: (e.get('phase_two') or {})
     .get('phase_two_family_recall')),
    ("phase two's reject recall", lambda e: (e.get('phase_two') or {})
     .get('phase_two_reject_recall')),
    ('the cascade at 20% instruments', lambda e: (e.get('cascade') or {})
     .get('cascade accuracy at 20% instruments')),
)


def change_text(this: Dict[str, Any], before: Optional[Dict[str, Any]]
                ) -> str:
  """This run's figures against the evaluated run before it: each figure
  both have, with its difference, then those that did not move."""
  if before is None:
    return ('the first evaluated run of this pipeline here: nothing to '
            'compare with.')
  moved, same = [], []
  for name, read in COMPARED:
    now, then = read(this), read(before)
    if now is None or then is None:
      continue
    if round(float(now) - float(then), 4) == 0:
      same.append(name)
    else:
      moved.append(f'{name} {_fmt(now)} ({float(now) - float(then):+.4f})')
  said = '; '.join(moved) if moved else 'no figure moved'
  if moved and same:
    said += f"; unchanged: {', '.join(same)}"
  return f"against run {before['run_id']}: {said}."


def headline(data: Dict[str, Any]) -> List[Tuple[str, str]]:
  """The answer first, a line for each part of the pattern: what phase one
  pushed and how it decides, what phase two names and where it was pushed,
  and the cascade's end-to-end accuracy at each share of instruments."""
  rows = []
  tflite = data.get('tflite') or {}
  this_run = tflite.get('this_run')
  if this_run:
    said = (f"version {this_run.get('pushed_version')} pushed"
            if this_run.get('pushed') else
            f"nothing pushed: {this_run.get('reason')}")
    line = tflite.get('threshold_line')
    rows.append(('Phase one, on the device',
                 f'{said}. {line}.' if line else f'{said}.'))
  two = data.get('phase_two')
  if two and not two.get('trained'):
    rows.append(('Phase two, in the cloud',
                 f"not trained: {two.get('reason')}."))
  elif two:
    said = (f"mean family recall {_fmt(two.get('family_recall'))}, reject "
            f"recall {_fmt(two.get('reject_recall'))}")
    pushed = two.get('pushed') or {}
    if pushed.get('pushed'):
      said += (f"; pushed as {pushed.get('model_name')} version "
               f"{pushed.get('pushed_version')}")
    elif pushed:
      said += f"; not pushed: {pushed.get('reason')}"
    rows.append(('Phase two, in the cloud', f'{said}.'))
    by_pi = two.get('cascade_by_pi') or []
    if by_pi:
      rows.append(('The cascade, end to end', '; '.join(
          f'{share} instruments: accuracy {_fmt(accuracy)}, cloud share '
          f'{_fmt(cloud_share)}'
          for share, accuracy, _, _, cloud_share in by_pi) + '.'))
  if not rows:
    rows.append(('This run', 'it pushed nothing and trained nothing: the '
                 'components below say where it stopped.'))
  change = data.get('change')
  if change:
    rows.append(('Since the last run',
                 change_text(change['this'], change['before'])))
  return rows


def render(data: Dict[str, Any]) -> str:
  """Lays the gathered data out as the report's HTML page, the headline
  (:func:`headline`) first."""
  environment = jinja2.Environment(
      loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
      autoescape=True, undefined=jinja2.StrictUndefined,
      trim_blocks=True, lstrip_blocks=True)
  environment.filters['fmt'] = _fmt
  return environment.get_template('report.html').render(
      **dict(data, headline=headline(data)))


def build_report(config: config_lib.PipelineConfig,
                 run_id: Optional[str] = None) -> Tuple[str, str]:
  """The HTML report of a run: (run id, HTML text).

  Raises:
    mlmd.MetadataError: when the pipeline never ran here, or the run is
      not found.
  """
  data = gather(config, run_id)
  return data['run_id'], render(data)


def write_report(config: config_lib.PipelineConfig,
                 run_id: Optional[str] = None,
                 out: Optional[str] = None) -> str:
  """Writes the report of a run (atomically) and returns its path."""
  name, page = build_report(config, run_id)
  path = out or report_path(config, name)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  local_disk.write_file(path, page)
  return path
