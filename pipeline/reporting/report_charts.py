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


LINEAGE_BOX = (132, 30)  # a box's width and height
LINEAGE_GAP = (14, 34)   # between boxes in a row, and between rows
LINEAGE_LANE = 10        # the width a long edge takes where it passes a row
LINEAGE_SWEEPS = 6       # ordering passes (down and up) against crossings


def _lineage_layers(nodes: Sequence[str], edges: Sequence[Tuple[str, str]]
                    ) -> Dict[str, int]:
  """Each node's row: one below its lowest source (sources have none)."""
  incoming: Dict[str, List[str]] = {n: [] for n in nodes}
  for source, target in edges:
    incoming[target].append(source)
  layer: Dict[str, int] = {}
  for start in nodes:  # iteratively, so a deep graph cannot recurse too far
    stack = [start]
    while stack:
      node = stack[-1]
      if node in layer:
        stack.pop()
        continue
      waiting = [p for p in incoming[node] if p not in layer
                 and p not in stack]
      if waiting:
        stack.extend(waiting)
        continue
      layer[node] = 1 + max((layer.get(p, -1) for p in incoming[node]),
                            default=-1)
      stack.pop()
  return layer


def _lineage_order(rows: List[List[str]], up: Dict[str, List[str]],
                   down: Dict[str, List[str]]) -> None:
  """Orders each row in place by the mean position of its neighbours in
  the row above (then below), sweep after sweep: the usual barycentre
  heuristic against crossing edges. Ties keep the earlier order."""
  def place(row, neighbours, fixed):
    index = {node: i for i, node in enumerate(fixed)}
    keyed = []
    for i, node in enumerate(row):
      seen = [index[n] for n in neighbours[node] if n in index]
      keyed.append((sum(seen) / len(seen) if seen else float(i), i, node))
    row[:] = [node for _, _, node in sorted(keyed)]

  for sweep in range(LINEAGE_SWEEPS):
    if sweep % 2 == 0:
      for r in range(1, len(rows)):
        place(rows[r], up, rows[r - 1])
    else:
      for r in range(len(rows) - 2, -1, -1):
        place(rows[r], down, rows[r + 1])


def lineage_chart(graph: Dict[str, Any]) -> Dict[str, Any]:
  """A top-to-bottom layered drawing of an upstream graph: each node one
  row below its lowest source; an edge that spans rows passes each row
  between boxes (a lane of its own), never through one; rows ordered
  against crossings and centred. Wide graphs are scaled to the page by the
  template (the drawing keeps its own coordinates).

  Returns:
    `width`, `height`, `box_width`, `box_height`, `nodes` (each `x`, `y`,
    `kind`, `label`, `tip`, `rx`, `fill`, `stroke`) and `edges` (each
    `points`: the polyline from the source box's bottom to the target
    box's top, as [(x, y), ...], and its SVG `path` text).
  """
  nodes = {n['id']: n for n in graph['nodes']}
  edges = sorted({(s, t) for s, t in graph['edges']
                  if s in nodes and t in nodes and s != t})
  layer = _lineage_layers(sorted(nodes), edges)
  # Long edges get a waypoint ("lane") in every row they pass.
  chains, up, down = [], {}, {}
  rows: List[List[str]] = [[] for _ in range(max(layer.values(),
                                                 default=-1) + 1)]
  for node_id in sorted(nodes, key=lambda n: (nodes[n]['kind'],
                                              nodes[n]['name'], n)):
    rows[layer[node_id]].append(node_id)
  for source, target in edges:
    chain = [source]
    for r in range(layer[source] + 1, layer[target]):
      lane = f'{source}>{target}@{r}'
      rows[r].append(lane)
      chain.append(lane)
    chain.append(target)
    for a, b in zip(chain, chain[1:]):
      down.setdefault(a, []).append(b)
      up.setdefault(b, []).append(a)
    chains.append(chain)
  for row in rows:
    for item in row:
      up.setdefault(item, [])
      down.setdefault(item, [])
  _lineage_order(rows, up, down)

  box_w, box_h = LINEAGE_BOX
  gap_x, gap_y = LINEAGE_GAP

  def span(item):
    return box_w if item in nodes else LINEAGE_LANE

  widths = [sum(span(i) for i in row) + gap_x * max(0, len(row) - 1)
            for row in rows]
  width = 20 + max(widths, default=80)
  centre = {}
  for r, row in enumerate(rows):
    x = 10 + (width - 20 - widths[r]) / 2
    for item in row:
      centre[item] = (x + span(item) / 2, 10 + r * (box_h + gap_y))
      x += span(item) + gap_x
  height = 20 + len(rows) * (box_h + gap_y) - gap_y if rows else 60

  drawn = []
  for chain in chains:
    points = [(centre[chain[0]][0], centre[chain[0]][1] + box_h)]
    for lane in chain[1:-1]:
      x, y = centre[lane]
      points += [(x, y), (x, y + box_h)]
    points.append(centre[chain[-1]])
    drawn.append({'points': points, 'path': 'M' + ' L'.join(
        f'{_number(x)},{_number(y)}' for x, y in points)})
  boxes = []
  for node_id, node in nodes.items():
    artifact = node['kind'] == 'artifact'
    x, y = centre[node_id]
    boxes.append({
        'id': node_id, 'x': x - box_w / 2, 'y': y, 'kind': node['kind'],
        'label': (f"{node['name']} #{node.get('artifact_id')}" if artifact
                  else node['name']),
        'tip': node.get('uri') or (f"execution {node.get('execution_id')}, "
                                   f"run {node.get('run_id')}"),
        'rx': 4 if artifact else 14,
        'fill': '#eef4ff' if artifact else '#fff4e0',
        'stroke': BAR_COLOUR if artifact else '#d08a1a'})
  return {'width': width, 'height': height, 'box_width': box_w,
          'box_height': box_h, 'edges': drawn, 'nodes': boxes}


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
