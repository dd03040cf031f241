"""The report's pure parts: ROC points, charts and the lineage layout."""

import re

from pipeline import report


def _matrix(threshold, tp, fp, tn, fn):
  return {'threshold': threshold, 'true_positives': tp,
          'false_positives': fp, 'true_negatives': tn,
          'false_negatives': fn}


def test_roc_points_are_rates_at_each_threshold():
  matrices = [_matrix(0.0, 10, 10, 0, 0), _matrix(0.5, 8, 2, 8, 2),
              _matrix(1.0, 0, 0, 10, 10)]
  assert report.roc_points(matrices) == [(0.0, 0.0), (0.2, 0.8), (1.0, 1.0)]


def test_confusion_matrix_places_counts_by_true_then_predicted_class():
  svg = report.confusion_svg(_matrix(0.5, 40, 3, 50, 7), ['no', 'yes'], 0.5)
  # Rows are the true class, columns the predicted one: TN FP / FN TP.
  assert [int(c) for c in re.findall(r'class="count">(\d+)<', svg)] == [
      50, 3, 7, 40]
  assert 'true no' in svg and 'true yes' in svg


def test_lineage_graph_draws_sources_left_of_results():
  graph = {'nodes': [
      {'id': 'a1', 'kind': 'artifact', 'name': 'Examples', 'artifact_id': 1,
       'uri': '/x'},
      {'id': 'e2', 'kind': 'execution', 'name': 'Trainer', 'execution_id': 2,
       'run_id': 'r'},
      {'id': 'a3', 'kind': 'artifact', 'name': 'Model', 'artifact_id': 3,
       'uri': '/y'}],
      'edges': [['a1', 'e2'], ['e2', 'a3']]}
  svg = report.lineage_svg(graph)
  xs = {label: float(x) for x, label in re.findall(
      r'<text x="([\d.]+)"[^>]*>([^<]+)</text>', svg)}
  assert xs['Examples #1'] < xs['Trainer'] < xs['Model #3']
  assert svg.count('<line') == 2


def test_bar_chart_scales_to_the_tallest_bucket():
  svg = report.bar_chart_svg([1.0, 4.0], ['0 - 1', '1 - 2'], height=80)
  heights = [float(h) for h in re.findall(r' height="([\d.]+)" fill', svg)]
  assert heights == [20.0, 80.0]
