"""A self-contained HTML report of one pipeline run.

`python -m pipeline report` (and every `python -m pipeline run`) writes
`WORKSPACE/reports/run-<run id>.html`: one file with no external resources
(no scripts, fonts or images fetched), readable offline and attachable to a
ticket. It shows, for the run:

- the components, their state (ran, cached, failed) and time;
- the data statistics per split, as TFDV computes them (counts, missing,
  numeric summaries with histograms, string summaries), and the label's
  class balance;
- the anomalies ExampleValidator found against the schema;
- the evaluation metrics beside the thresholds that bless a model, with the
  confusion matrix and the ROC curve drawn from TFMA's confusion matrices;
- the TFLite figures of every pushed model, this run's marked;
- the lineage of this run's model as a small graph.

Everything is read from ML Metadata and the artifacts it points to; charts
are inline SVG.
"""

import datetime
import html
import json
import math
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from components import data_gate
from components import local_disk
from pipeline import config as config_lib
from pipeline import inspection
from pipeline import lineage
from pipeline import mlmd

REPORTS_DIR = 'reports'


def _e(value: Any) -> str:
  return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
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


# ---------------------------------------------------------------- charts


def bar_chart_svg(values: Sequence[float], labels: Sequence[str],
                  width: int = 260, height: int = 90,
                  title: str = '') -> str:
  """A small bar chart (histogram buckets) as inline SVG."""
  if not values:
    return ''
  top = max(values) or 1.0
  bar = width / len(values)
  parts = [f'<svg class="chart" role="img" width="{width}" '
           f'height="{height + 16}" viewBox="0 0 {width} {height + 16}">'
           f'<title>{_e(title)}</title>']
  for index, (value, label) in enumerate(zip(values, labels)):
    h = height * value / top
    parts.append(
        f'<rect x="{index * bar + 1:.1f}" y="{height - h:.1f}" '
        f'width="{max(bar - 2, 1):.1f}" height="{h:.1f}" fill="#4a7bd0">'
        f'<title>{_e(label)}: {_fmt(value)}</title></rect>')
  if labels:
    parts.append(f'<text x="0" y="{height + 13}" class="axis">'
                 f'{_e(labels[0].split(" ")[0])}</text>')
    parts.append(f'<text x="{width}" y="{height + 13}" class="axis" '
                 f'text-anchor="end">{_e(labels[-1].split(" ")[-1])}</text>')
  parts.append('</svg>')
  return ''.join(parts)


def roc_svg(points: Sequence[Tuple[float, float]], auc: Optional[float],
            size: int = 260) -> str:
  """The ROC curve (false positive rate, true positive rate) as SVG."""
  pad = 34
  inner = size - pad - 10
  def xy(fpr, tpr):
    return pad + fpr * inner, 10 + (1 - tpr) * inner
  path = ' '.join(f'{x:.1f},{y:.1f}' for x, y in
                  (xy(f, t) for f, t in sorted(points)))
  label = f'AUC {auc:.4f}' if auc is not None else ''
  x0, y0 = xy(0, 0)
  x1, y1 = xy(1, 1)
  return (
      f'<svg id="roc" class="chart" role="img" width="{size}" '
      f'height="{size}" viewBox="0 0 {size} {size}"><title>ROC curve</title>'
      f'<rect x="{pad}" y="10" width="{inner}" height="{inner}" '
      'fill="none" stroke="#999"/>'
      f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#bbb" '
      'stroke-dasharray="4 3"/>'
      f'<polyline points="{path}" fill="none" stroke="#c0392b" '
      'stroke-width="2"/>'
      f'<text x="{pad + inner / 2}" y="{size - 4}" class="axis" '
      'text-anchor="middle">false positive rate</text>'
      f'<text x="10" y="{10 + inner / 2}" class="axis" text-anchor="middle" '
      f'transform="rotate(-90 10 {10 + inner / 2})">true positive rate</text>'
      f'<text x="{pad + inner - 6}" y="{10 + inner - 8}" '
      f'text-anchor="end">{_e(label)}</text></svg>')


def confusion_svg(matrix: Dict[str, float], class_names: Sequence[str],
                  threshold: float) -> str:
  """A 2x2 confusion matrix (rows: true class, columns: predicted)."""
  cells = [[matrix.get('true_negatives', 0), matrix.get('false_positives', 0)],
           [matrix.get('false_negatives', 0), matrix.get('true_positives', 0)]]
  total = sum(sum(row) for row in cells) or 1.0
  cell, left, top = 90, 120, 40
  parts = [f'<svg id="confusion-matrix" class="chart" role="img" '
           f'width="{left + 2 * cell + 10}" height="{top + 2 * cell + 10}">'
           f'<title>Confusion matrix at threshold {threshold:g}</title>',
           f'<text x="{left + cell}" y="14" text-anchor="middle">predicted'
           '</text>']
  for j, name in enumerate(class_names[:2]):
    parts.append(f'<text x="{left + j * cell + cell / 2}" y="32" '
                 f'text-anchor="middle" class="axis">{_e(name)}</text>')
  for i, name in enumerate(class_names[:2]):
    parts.append(f'<text x="{left - 6}" y="{top + i * cell + cell / 2 + 4}" '
                 f'text-anchor="end" class="axis">true {_e(name)}</text>')
    for j in range(2):
      share = cells[i][j] / total
      shade = int(245 - 170 * min(1.0, share * 2))
      colour = (f'rgb({shade},{shade + 5 if shade < 250 else 250},255)'
                if i == j else f'rgb(255,{shade},{shade})')
      parts.append(
          f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell}" '
          f'height="{cell}" fill="{colour}" stroke="#fff"/>'
          f'<text x="{left + j * cell + cell / 2}" '
          f'y="{top + i * cell + cell / 2 + 5}" text-anchor="middle" '
          f'class="count">{int(round(cells[i][j]))}</text>')
  parts.append('</svg>')
  return ''.join(parts)


def lineage_svg(graph: Dict[str, Any]) -> str:
  """A left-to-right layered drawing of a lineage graph."""
  nodes = {n['id']: n for n in graph['nodes']}
  incoming: Dict[str, List[str]] = {n: [] for n in nodes}
  for source, target in graph['edges']:
    if source in nodes and target in nodes:
      incoming[target].append(source)
  layer: Dict[str, int] = {}
  def depth(node_id, trail=()):
    if node_id not in layer:
      if node_id in trail:  # a cycle cannot happen in MLMD; stay safe
        return 0
      layer[node_id] = 1 + max((depth(p, trail + (node_id,))
                                for p in incoming[node_id]), default=-1)
    return layer[node_id]
  for node_id in nodes:
    depth(node_id)
  columns: Dict[int, List[str]] = {}
  for node_id in sorted(nodes, key=lambda n: (nodes[n]['kind'], n)):
    columns.setdefault(layer[node_id], []).append(node_id)
  box_w, box_h, gap_x, gap_y = 124, 34, 26, 14
  position = {}
  for column, members in columns.items():
    for row, node_id in enumerate(members):
      position[node_id] = (10 + column * (box_w + gap_x),
                           10 + row * (box_h + gap_y))
  width = 20 + (max(columns) + 1) * (box_w + gap_x) if columns else 100
  height = 20 + max(len(m) for m in columns.values()) * (box_h + gap_y) \
      if columns else 60
  parts = [f'<svg id="lineage-graph" class="chart" role="img" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} '
           f'{height}"><title>Lineage</title><defs><marker id="arrow" '
           'viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path '
           'd="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>']
  for source, target in graph['edges']:
    if source not in position or target not in position:
      continue
    x1, y1 = position[source]
    x2, y2 = position[target]
    parts.append(f'<line x1="{x1 + box_w}" y1="{y1 + box_h / 2}" '
                 f'x2="{x2}" y2="{y2 + box_h / 2}" stroke="#aaa" '
                 'marker-end="url(#arrow)"/>')
  for node_id, (x, y) in position.items():
    node = nodes[node_id]
    is_artifact = node['kind'] == 'artifact'
    label = (f"{node['name']} #{node.get('artifact_id')}" if is_artifact
             else node['name'])
    tip = node.get('uri') or f"execution {node.get('execution_id')}, run " \
        f"{node.get('run_id')}"
    parts.append(
        f'<g class="node {node["kind"]}"><title>{_e(tip)}</title>'
        f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" '
        f'rx="{4 if is_artifact else 14}" fill="'
        f'{"#eef4ff" if is_artifact else "#fff4e0"}" stroke="'
        f'{"#4a7bd0" if is_artifact else "#d08a1a"}"/>'
        f'<text x="{x + box_w / 2}" y="{y + box_h / 2 + 4}" '
        f'text-anchor="middle">{_e(label)}</text></g>')
  parts.append('</svg>')
  return ''.join(parts)


# ------------------------------------------------------------ data readers


def _read_proto(path: str, message):
  with open(path, 'rb') as f:
    message.ParseFromString(f.read())
  return message


def _splits(uri: str) -> List[str]:
  try:
    return sorted(name[len('Split-'):] for name in os.listdir(uri)
                  if name.startswith('Split-'))
  except OSError:
    return []


def read_statistics(uri: str) -> Dict[str, Any]:
  """Split name -> DatasetFeatureStatistics, from a statistics artifact."""
  from tensorflow_metadata.proto.v0 import statistics_pb2  # pylint: disable=g-import-not-at-top
  result = {}
  for split in _splits(uri):
    path = os.path.join(uri, f'Split-{split}', 'FeatureStats.pb')
    if os.path.isfile(path):
      stats = _read_proto(path, statistics_pb2.DatasetFeatureStatisticsList())
      if stats.datasets:
        result[split] = stats.datasets[0]
  return result


def read_anomalies(uri: str) -> Dict[str, Any]:
  """Split name -> Anomalies proto, from an anomalies artifact."""
  from tensorflow_metadata.proto.v0 import anomalies_pb2  # pylint: disable=g-import-not-at-top
  result = {}
  for split in _splits(uri):
    path = os.path.join(uri, f'Split-{split}', data_gate.ANOMALIES_FILE_NAME)
    if os.path.isfile(path):
      result[split] = _read_proto(path, anomalies_pb2.Anomalies())
  return result


def read_evaluation(uri: str) -> Dict[str, Any]:
  """Metrics, thresholds, validation outcome and confusion matrices."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  result: Dict[str, Any] = {'metrics': mlmd.evaluation_metrics(uri),
                            'thresholds': {}, 'matrices': [], 'failures': []}
  try:
    with open(os.path.join(uri, 'eval_config.json'), encoding='utf-8') as f:
      config = json.load(f).get('evalConfig', {})
  except (OSError, ValueError):
    config = {}
  for spec in config.get('metricsSpecs', []):
    for metric in spec.get('metrics', []):
      threshold = metric.get('threshold')
      if threshold:
        result['thresholds'][metric['className']] = threshold
  try:
    validation = tfma.load_validation_result(uri)
    result['validation_ok'] = validation.validation_ok
    for per_slice in validation.metric_validations_per_slice:
      for failure in per_slice.failures:
        result['failures'].append(
            f'{failure.metric_key.name}: {failure.message}'.strip())
  except (OSError, IOError, ValueError, IndexError):
    pass
  for plots in tfma.load_plots(uri):
    if plots.slice_key.single_slice_keys:
      continue
    for item in plots.plot_keys_and_values:
      if item.key.model_name not in ('', 'candidate'):
        continue
      matrices = item.value.confusion_matrix_at_thresholds.matrices
      result['matrices'] = [
          {'threshold': m.threshold, 'true_positives': m.true_positives,
           'false_positives': m.false_positives,
           'true_negatives': m.true_negatives,
           'false_negatives': m.false_negatives} for m in matrices]
  return result


def roc_points(matrices: Sequence[Dict[str, float]]
               ) -> List[Tuple[float, float]]:
  """(false positive rate, true positive rate) at each threshold."""
  points = [(0.0, 0.0), (1.0, 1.0)]
  for m in matrices:
    negatives = m['false_positives'] + m['true_negatives']
    positives = m['true_positives'] + m['false_negatives']
    if negatives and positives:
      points.append((m['false_positives'] / negatives,
                     m['true_positives'] / positives))
  return sorted(set(points))


def _matrix_at(matrices, threshold: float = 0.5) -> Optional[Dict]:
  if not matrices:
    return None
  return min(matrices, key=lambda m: abs(m['threshold'] - threshold))


# ------------------------------------------------------------ sections


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
           css: str = '') -> str:
  head = ''.join(f'<th>{_e(h)}</th>' for h in headers)
  body = ''.join('<tr>' + ''.join(
      f'<td>{cell if isinstance(cell, _Raw) else _e(_fmt(cell))}</td>'
      for cell in row) + '</tr>' for row in rows)
  return f'<table class="{css}"><thead><tr>{head}</tr></thead>' \
         f'<tbody>{body}</tbody></table>'


class _Raw(str):
  """Markup that `_table` does not escape."""


def _section(section_id: str, title: str, body: str) -> str:
  return f'<section id="{section_id}"><h2>{_e(title)}</h2>{body}</section>'


def _components_section(executions) -> str:
  rows = [(e.node, _Raw(f'<span class="state {e.state}">{_e(e.state)}'
                        '</span>'), f'{e.seconds:.1f} s')
          for e in executions]
  return _section('components', 'Components', _table(
      ('component', 'state', 'time'), rows))


def _printable(value: str) -> bool:
  return len(value) <= 60 and value.isprintable()


def _feature_rows(dataset, label_key: str,
                  class_names: Sequence[str]) -> List[str]:
  blocks = []
  for feature in dataset.features:
    name = '.'.join(feature.path.step) or feature.name
    kind = feature.WhichOneof('stats')
    stats = getattr(feature, kind) if kind else None
    common = stats.common_stats if stats is not None else None
    present = common.num_non_missing if common else 0
    missing = common.num_missing if common else 0
    facts = [('present', present), ('missing', missing)]
    chart = ''
    if kind == 'num_stats':
      facts += [('mean', stats.mean), ('std dev', stats.std_dev),
                ('min', stats.min), ('median', stats.median),
                ('max', stats.max), ('zeros', stats.num_zeros)]
      for histogram in stats.histograms:
        if histogram.type == histogram.STANDARD and histogram.buckets:
          chart = bar_chart_svg(
              [b.sample_count for b in histogram.buckets],
              [f'{b.low_value:.3g} - {b.high_value:.3g}'
               for b in histogram.buckets], title=f'{name} histogram')
      if name == label_key and present:
        ones = present - stats.num_zeros
        shares = [(class_names[0] if class_names else '0', stats.num_zeros),
                  (class_names[1] if len(class_names) > 1 else '1', ones)]
        facts.append(('classes', ', '.join(
            f'{c} {int(n)} ({100.0 * n / present:.1f}%)' for c, n in shares)))
    elif kind == 'string_stats':
      facts += [('unique', stats.unique),
                ('average length', stats.avg_length)]
      top = [v for v in stats.top_values if _printable(v.value)
             and not v.value.startswith('__BYTES')][:5]
      if top and top[0].frequency > 1:
        facts.append(('top values', ', '.join(
            f'{v.value} ({int(v.frequency)})' for v in top)))
    elif kind == 'bytes_stats':
      facts += [('unique', stats.unique),
                ('average bytes', stats.avg_num_bytes),
                ('min bytes', stats.min_num_bytes),
                ('max bytes', stats.max_num_bytes)]
    facts_html = ''.join(f'<div><span class="k">{_e(k)}</span> '
                         f'{_e(_fmt(v))}</div>' for k, v in facts)
    blocks.append(f'<div class="feature"><h4>{_e(name)} '
                  f'<small>{_e((kind or "").replace("_stats", ""))}</small>'
                  f'</h4><div class="facts">{facts_html}</div>{chart}</div>')
  return blocks


def _statistics_section(statistics: Dict[str, Any], label_key: str,
                        class_names: Sequence[str]) -> str:
  if not statistics:
    return _section('statistics', 'Data statistics',
                    '<p class="missing">No statistics in this run.</p>')
  body = []
  for split, dataset in sorted(statistics.items(),
                               key=lambda item: item[0] != 'train'):
    body.append(f'<h3>{_e(split)} split: {dataset.num_examples} examples'
                '</h3><div class="features">'
                + ''.join(_feature_rows(dataset, label_key, class_names))
                + '</div>')
  return _section('statistics', 'Data statistics', ''.join(body))


def _anomalies_section(anomalies: Dict[str, Any]) -> str:
  if not anomalies:
    return _section('anomalies', 'Anomalies',
                    '<p class="missing">No anomalies artifact in this run.</p>')
  rows = []
  for split, proto in anomalies.items():
    for feature, info in sorted(proto.anomaly_info.items()):
      rows.append((split, feature, info.short_description,
                   info.description))
    if proto.HasField('dataset_anomaly_info'):
      info = proto.dataset_anomaly_info
      rows.append((split, '(data set)', info.short_description,
                   info.description))
  if not rows:
    body = ('<p class="ok">None: every split matches the schema '
            f'({", ".join(_e(s) for s in anomalies)}).</p>')
  else:
    body = _table(('split', 'feature', 'anomaly', 'detail'), rows, 'bad')
  return _section('anomalies', 'Anomalies', body)


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


def _evaluation_section(evaluation: Optional[Dict[str, Any]],
                        blessed: Optional[bool],
                        class_names: Sequence[str]) -> str:
  if not evaluation:
    return _section('evaluation', 'Evaluation',
                    '<p class="missing">The Evaluator did not finish in this '
                    'run.</p>')
  rows = []
  for name, value in sorted(evaluation['metrics'].items()):
    threshold = evaluation['thresholds'].get(_METRIC_CLASS.get(name, name))
    rows.append((name, value, _threshold_text(threshold) if threshold else ''))
  verdict = ('<p class="ok">Blessed: the model passed every threshold.</p>'
             if blessed else '<p class="bad">Not blessed.</p>'
             if blessed is not None else '')
  failures = ''.join(f'<li>{_e(f)}</li>' for f in evaluation['failures'])
  if failures:
    verdict += f'<ul class="bad">{failures}</ul>'
  pictures = []
  matrix = _matrix_at(evaluation['matrices'])
  if matrix:
    pictures.append('<figure>' + confusion_svg(
        matrix, class_names, matrix['threshold']) +
                    f'<figcaption>Confusion matrix at threshold '
                    f'{matrix["threshold"]:.2f}</figcaption></figure>')
    pictures.append('<figure>' + roc_svg(
        roc_points(evaluation['matrices']),
        evaluation['metrics'].get('auc')) +
                    '<figcaption>ROC curve (eval split)</figcaption>'
                    '</figure>')
  return _section('evaluation', 'Evaluation', verdict + _table(
      ('metric', 'value', 'threshold'), rows) +
                  f'<div class="figures">{"".join(pictures)}</div>')


def _tflite_section(store, this_run_pushed: Optional[Dict[str, Any]]) -> str:
  rows = []
  this_version = (this_run_pushed or {}).get('pushed_version')
  seen = set()
  for artifact in sorted(store.get_artifacts_by_type('PushedModel'),
                         key=lambda a: a.id):
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
                 figures.get('latency_ms_median')))
  rows.reverse()
  outcome = ''
  if this_run_pushed:
    if this_run_pushed.get('pushed'):
      outcome = (f'<p class="ok">This run pushed (or kept) version '
                 f'{_e(this_version)}: '
                 f'{_e(this_run_pushed.get("pushed_destination"))}</p>')
    else:
      outcome = ('<p class="bad">This run pushed nothing: '
                 f'{_e(this_run_pushed.get("reason"))}</p>')
  table = _table(('version', 'mode', 'TFLite bytes', 'float32 bytes',
                  'size vs float32', 'TFLite accuracy', 'SavedModel accuracy',
                  'accuracy drop', 'TFLite AUC', 'latency ms (median)'),
                 rows) if rows else '<p class="missing">No model pushed.</p>'
  return _section('tflite', 'TFLite models', outcome + table)


def _lineage_section(chain: Optional[Dict[str, Any]]) -> str:
  if not chain:
    return _section('lineage', 'Lineage',
                    '<p class="missing">No pushed model in this run.</p>')
  spans = []
  for examples in chain.get('examples', []):
    for span, source in sorted(examples.get('sources', {}).items()):
      spans.append((span, source.get('source'), json.dumps(
          source.get('counts')), source.get('ingested')))
  trainer = chain.get('trainer') or {}
  settings = trainer.get('custom_config') or {}
  text = (f'<p>Model {_e(chain.get("model", {}).get("id"))} was trained in '
          f'run {_e(trainer.get("run_id"))} with '
          f'{_e((trainer.get("train_args") or {}).get("num_steps"))} steps '
          f'({_e(", ".join(f"{k}={v}" for k, v in sorted(settings.items())))})'
          '.</p>')
  return _section('lineage', 'Lineage', text + _table(
      ('data span', 'ingested from', 'images per class', 'ingested at'),
      spans) + f'<div class="graph">{lineage_svg(chain["graph"])}</div>')


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;
color:#222;max-width:1400px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;border-bottom:1px solid #ddd;
padding-bottom:4px;margin-top:28px}h3{font-size:15px}h4{margin:0 0 4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;
padding:3px 8px;text-align:left}th{background:#f4f4f4}
.state.ran{color:#1b7f3b}.state.cached{color:#555}.state.failed{color:#b00020;
font-weight:bold}.ok{color:#1b7f3b}.bad{color:#b00020}.missing{color:#777}
.features{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}.feature{border:1px solid #e3e3e3;
border-radius:6px;padding:8px;min-width:280px}.facts .k{color:#666}
.figures{display:flex;gap:24px;flex-wrap:wrap}figure{margin:0}
svg text{font:11px system-ui,sans-serif}svg text.axis{fill:#555}
svg text.count{font-size:16px;font-weight:bold}.graph{overflow-x:auto}
small{color:#777;font-weight:normal}
"""


def _settings_section(settings: Optional[Dict[str, Any]]) -> str:
  if settings is None:
    return _section('settings', 'Settings',
                    '<p>This run recorded no settings.</p>')
  return _section('settings', 'Settings', _table(
      ('setting', 'value'),
      [(name, ', '.join(map(str, value)) if isinstance(value, list)
        else value) for name, value in settings.items()]))


def build_report(config: config_lib.PipelineConfig,
                 run_id: Optional[str] = None) -> Tuple[str, str]:
  """The HTML report of a run.

  Args:
    config: the pipeline configuration (store, names).
    run_id: a run id or a unique prefix of one; default the newest run.

  Returns:
    (run id, HTML text).

  Raises:
    mlmd.MetadataError: when the pipeline never ran here, or the run is
      not found.
  """
  store = mlmd.open_store(config.metadata_path, read_only=True)
  record = mlmd.find_run(store, config.pipeline_name, run_id)
  executions = record.executions
  statistics = {}
  if record.output('StatisticsGen', 'statistics') is not None:
    statistics = read_statistics(
        record.output('StatisticsGen', 'statistics').uri)
  anomalies = {}
  if record.output('ExampleValidator', 'anomalies') is not None:
    anomalies = read_anomalies(record.output('ExampleValidator',
                                             'anomalies').uri)
  evaluation, blessed = None, None
  if record.output('Evaluator', 'evaluation') is not None:
    evaluation = read_evaluation(record.output('Evaluator', 'evaluation').uri)
  if record.output('Evaluator', 'blessing') is not None:
    blessed = bool(mlmd.custom_value(record.output('Evaluator', 'blessing'),
                                     'blessed'))
  pushed_artifact = record.output('TFLitePusher', 'pushed_model')
  this_pushed = (mlmd.pushed_summary(pushed_artifact)
                 if pushed_artifact is not None else None)
  chain = (lineage.model_lineage(store, pushed_artifact)
           if pushed_artifact is not None else None)
  summary = (f'<p>Started {_e(inspection.run_row(record)["started"])}, '
             f'{_e(round(record.seconds, 1))} s; '
             f'{len(record.nodes("ran"))} components ran, '
             f'{len(record.nodes("cached"))} cached, '
             f'{len(record.nodes("failed"))} failed.</p>')
  class_names = list(config.class_names)
  for execution in executions:
    recorded = mlmd.execution_settings(execution.execution).get('class_names')
    if execution.node == 'TFLitePusher' and recorded:
      class_names = list(recorded)
  generated = datetime.datetime.now().astimezone().strftime(
      '%Y-%m-%d %H:%M:%S %Z')
  body = ''.join([
      f'<h1>Run {_e(record.run_id)}</h1>',
      f'<p><small>Pipeline {_e(config.pipeline_name)}, workspace '
      f'{_e(config.workspace)}; report written {_e(generated)}.</small></p>',
      summary,
      _components_section(executions),
      _statistics_section(statistics, 'label', class_names),
      _anomalies_section(anomalies),
      _evaluation_section(evaluation, blessed, class_names),
      _tflite_section(store, this_pushed),
      _lineage_section(chain),
      _settings_section(record.settings),
  ])
  page = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
          '<meta name="viewport" content="width=device-width">'
          f'<title>Run {_e(record.run_id)}</title><style>{_CSS}</style>'
          f'</head><body>{body}</body></html>')
  return record.run_id, page


def write_report(config: config_lib.PipelineConfig,
                 run_id: Optional[str] = None,
                 out: Optional[str] = None) -> str:
  """Writes the report of a run (atomically) and returns its path."""
  name, page = build_report(config, run_id)
  path = out or report_path(config, name)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  local_disk.write_file(path, page)
  return path
