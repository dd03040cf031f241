"""Geometry of the report's charts: positions, sizes and colours, no markup.

Each function turns figures into a plain dict of shapes that the report's
template (`pipeline/reporting/templates/report.html`) draws as inline SVG, so the
arithmetic is tested here and the markup lives in one place.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

BAR_COLOUR = '#4a7bd0'
ROC_COLOUR = '#c0392b'


def _number(value: float) -> str:
  return f'{value:.4g}'


def _tick(value: float) -> str:
  """An axis label: thousands as 'k' (295k), small values to 3 digits."""
  return f'{value / 1000:,.0f}k' if value >= 10_000 else f'{value:.3g}'


def bar_chart(values: Sequence[float], labels: Sequence[str],
              width: int = 260, height: int = 90,
              title: str = '') -> Optional[Dict[str, Any]]:
  """Bars of a histogram, the tallest `height` high; None without values."""
  if not values:
    return None
  top = max(values) or 1.0
  bar = width / len(values)
  bars = []
  for index, (value, label) in enumerate(zip(values, labels)):
    h = height * value / top
    bars.append({'x': round(index * bar + 1, 1), 'y': round(height - h, 1),
                 'width': round(max(bar - 2, 1), 1), 'height': round(h, 1),
                 'tip': f'{label}: {_number(value)}'})
  return {'width': width, 'height': height, 'title': title, 'bars': bars,
          'colour': BAR_COLOUR, 'first': labels[0].split(' ')[0],
          'last': labels[-1].split(' ')[-1]}


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


def roc_chart(points: Sequence[Tuple[float, float]], auc: Optional[float],
              size: int = 260) -> Dict[str, Any]:
  """The ROC curve in a square plot with the chance diagonal."""
  pad = 34
  inner = size - pad - 10

  def xy(fpr, tpr):
    return round(pad + fpr * inner, 1), round(10 + (1 - tpr) * inner, 1)

  return {'size': size, 'pad': pad, 'inner': inner, 'colour': ROC_COLOUR,
          'curve': ' '.join(f'{x},{y}' for x, y in
                            (xy(f, t) for f, t in sorted(points))),
          'diagonal': xy(0, 0) + xy(1, 1),
          'label': f'AUC {auc:.4f}' if auc is not None else ''}


SHARE_COLOUR = BAR_COLOUR


def cascade_chart(points: Sequence[Tuple[float, float, float]],
                  chosen: Optional[float], width: int = 360,
                  height: int = 220) -> Optional[Dict[str, Any]]:
  """The cascade's curve: end-to-end accuracy and the cloud's share of
  windows against phase one's threshold (both 0..1), the threshold phase
  one ships with marked; None without points."""
  if not points:
    return None
  left, top, bottom, right = 34, 10, 30, 10
  inner_w, inner_h = width - left - right, height - top - bottom

  def xy(threshold, value):
    return (round(left + threshold * inner_w, 1),
            round(top + (1 - value) * inner_h, 1))

  ordered = sorted(points)

  def line(index):
    return ' '.join('%s,%s' % xy(p[0], p[index]) for p in ordered)

  return {'width': width, 'height': height, 'left': left, 'top': top,
          'inner_width': inner_w, 'inner_height': inner_h,
          'accuracy': line(1), 'share': line(2),
          'accuracy_colour': ROC_COLOUR, 'share_colour': SHARE_COLOUR,
          'chosen_x': None if chosen is None else xy(chosen, 0)[0],
          'chosen': None if chosen is None else f'{chosen:.4g}',
          'ticks': [{'x': xy(t, 0)[0], 'text': _tick(t)}
                    for t in (0.0, 0.25, 0.5, 0.75, 1.0)]}


def confusion_chart(matrix: Dict[str, float], class_names: Sequence[str],
                    threshold: float) -> Dict[str, Any]:
  """A 2x2 grid: rows the true class, columns the predicted one."""
  counts = [[matrix.get('true_negatives', 0), matrix.get('false_positives', 0)],
            [matrix.get('false_negatives', 0), matrix.get('true_positives', 0)]]
  total = sum(sum(row) for row in counts) or 1.0
  cell, left, top = 90, 120, 40
  cells = []
  for i in range(2):
    for j in range(2):
      shade = int(245 - 170 * min(1.0, counts[i][j] / total * 2))
      fill = (f'rgb({shade},{min(shade + 5, 250)},255)' if i == j
              else f'rgb(255,{shade},{shade})')
      cells.append({'x': left + j * cell, 'y': top + i * cell, 'fill': fill,
                    'count': int(round(counts[i][j]))})
  names = list(class_names[:2])
  return {'width': left + 2 * cell + 10, 'height': top + 2 * cell + 10,
          'cell': cell, 'left': left, 'top': top, 'threshold': threshold,
          'cells': cells,
          'columns': [{'x': left + j * cell + cell / 2, 'name': name}
                      for j, name in enumerate(names)],
          'rows': [{'y': top + i * cell + cell / 2 + 4, 'name': name}
                   for i, name in enumerate(names)]}


def classes_chart(counts: Sequence[Sequence[float]],
                  class_names: Sequence[str], cell: int = 30
                  ) -> Optional[Dict[str, Any]]:
  """A many-class confusion matrix: rows the true class, columns the
  predicted one, each cell its count, shaded by its share of the row (the
  diagonal blue, the rest red); None without counts."""
  total = sum(sum(row) for row in counts)
  if not counts or not total:
    return None
  # Room for the longest name: beside the rows, and above the columns,
  # where names are turned 50 degrees.
  longest = max((len(name) for name in class_names), default=1)
  left, top, right = 16 + 8 * longest, 20 + 6 * longest, 5 * longest
  cells = []
  for i, row in enumerate(counts):
    whole = sum(row) or 1.0
    for j, count in enumerate(row):
      shade = int(250 - 200 * min(1.0, count / whole))
      fill = (f'rgb({shade},{min(shade + 5, 250)},255)' if i == j
              else f'rgb(255,{shade},{shade})')
      cells.append({'x': left + j * cell, 'y': top + i * cell, 'fill': fill,
                    'count': int(round(count)) if count else ''})
  size = len(counts)
  return {'width': left + size * cell + right,
          'height': top + size * cell + 10,
          'cell': cell, 'left': left, 'top': top, 'cells': cells,
          'columns': [{'x': left + j * cell + cell / 2, 'y': top - 6,
                       'name': name}
                      for j, name in enumerate(class_names[:size])],
          'rows': [{'y': top + i * cell + cell / 2 + 4, 'name': name}
                   for i, name in enumerate(class_names[:size])]}


def lineage_chart(graph: Dict[str, Any]) -> Dict[str, Any]:
  """A left-to-right layered layout: each node one column right of its
  rightmost source."""
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
  height = (20 + max(len(m) for m in columns.values()) * (box_h + gap_y)
            if columns else 60)
  edges = []
  for source, target in graph['edges']:
    if source in position and target in position:
      (x1, y1), (x2, y2) = position[source], position[target]
      edges.append({'x1': x1 + box_w, 'y1': y1 + box_h / 2,
                    'x2': x2, 'y2': y2 + box_h / 2})
  boxes = []
  for node_id, (x, y) in position.items():
    node = nodes[node_id]
    artifact = node['kind'] == 'artifact'
    boxes.append({
        'x': x, 'y': y, 'kind': node['kind'],
        'label': (f"{node['name']} #{node.get('artifact_id')}" if artifact
                  else node['name']),
        'tip': node.get('uri') or (f"execution {node.get('execution_id')}, "
                                   f"run {node.get('run_id')}"),
        'rx': 4 if artifact else 14,
        'fill': '#eef4ff' if artifact else '#fff4e0',
        'stroke': BAR_COLOUR if artifact else '#d08a1a'})
  return {'width': width, 'height': height, 'box_width': box_w,
          'box_height': box_h, 'edges': edges, 'nodes': boxes}


TRIAL_COLOUR = BAR_COLOUR
OVER_COLOUR = '#999999'
CHOSEN_COLOUR = ROC_COLOUR


def trials_chart(records: Sequence[Dict[str, Any]], cost: str, label: str,
                 limit: float, front: Sequence[Dict[str, Any]],
                 chosen: Optional[str], width: int = 320,
                 height: int = 240) -> Optional[Dict[str, Any]]:
  """AUC against a cost (TFLite bytes or latency) of a model search's trials.

  Args:
    records: the completed trials (`trial_id`, `auc`, `cost`,
      `within_budget`).
    cost: the figure on the x axis.
    label: the x axis' title.
    limit: the budget's limit on `cost` (0: none, no line drawn).
    front: the Pareto front, by increasing cost, joined by a line.
    chosen: the chosen trial's id, drawn larger in its own colour.
    width: the chart's width in pixels.
    height: the chart's height in pixels.

  Returns:
    Shapes for the template, or None without a completed trial.
  """
  if not records:
    return None
  left, bottom, top, right = 46, 30, 10, 12
  inner_w, inner_h = width - left - right, height - top - bottom
  x_max = max([r[cost] for r in records] + [limit]) * 1.08 or 1.0
  aucs = [r['auc'] for r in records]
  y_min = max(0.0, min(aucs) - 0.02)
  y_max = min(1.0, max(aucs) + 0.01)
  if y_max - y_min < 0.02:
    y_min = max(0.0, y_max - 0.02)
  span = (y_max - y_min) or 1.0

  def xy(x_value: float, auc: float) -> Tuple[float, float]:
    return (round(left + inner_w * x_value / x_max, 1),
            round(top + inner_h * (1 - (auc - y_min) / span), 1))

  points = []
  for record in records:
    x, y = xy(record[cost], record['auc'])
    is_chosen = record['trial_id'] == chosen
    points.append({
        'x': x, 'y': y, 'r': 6 if is_chosen else 4,
        'fill': (CHOSEN_COLOUR if is_chosen else TRIAL_COLOUR
                 if record['within_budget'] else OVER_COLOUR),
        'tip': (f"trial {record['trial_id']}: AUC {record['auc']:.4f}, "
                f"{label} {_number(record[cost])}"
                + ('' if record['within_budget'] else ', over budget')
                + (', chosen' if is_chosen else ''))})
  budget_x = xy(limit, y_min)[0] if limit else None
  return {
      'width': width, 'height': height, 'left': left, 'top': top,
      'inner_width': inner_w, 'inner_height': inner_h, 'label': label,
      'points': points,
      'front': ' '.join(f'{x},{y}' for x, y in
                        (xy(r[cost], r['auc']) for r in front)),
      'budget_x': budget_x,
      'x_ticks': [{'x': xy(value, y_min)[0], 'text': _tick(value),
                   'anchor': anchor}
                  for value, anchor in ((0.0, 'start'), (x_max / 2, 'middle'),
                                        (x_max, 'end'))],
      'y_ticks': [{'y': xy(0, value)[1], 'text': f'{value:.3f}'}
                  for value in (y_min, (y_min + y_max) / 2, y_max)],
      'colours': {'within': TRIAL_COLOUR, 'over': OVER_COLOUR,
                  'chosen': CHOSEN_COLOUR}}
