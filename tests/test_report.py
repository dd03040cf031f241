"""The report's pure parts: chart geometry, and the template's layout of
gathered data (escaping included)."""

import os
import re

import numpy as np
import pytest
from PIL import Image

import headless
from pipeline.metadata import summary as summary_lib
from pipeline.reporting import report
from pipeline.reporting import report_charts


def _matrix(threshold, tp, fp, tn, fn):
  return {'threshold': threshold, 'true_positives': tp,
          'false_positives': fp, 'true_negatives': tn,
          'false_negatives': fn}


def test_roc_points_are_rates_at_each_threshold():
  matrices = [_matrix(0.0, 10, 10, 0, 0), _matrix(0.5, 8, 2, 8, 2),
              _matrix(1.0, 0, 0, 10, 10)]
  assert report_charts.roc_points(matrices) == [(0.0, 0.0), (0.2, 0.8),
                                                (1.0, 1.0)]


def test_confusion_matrix_places_counts_by_true_then_predicted_class():
  chart = report_charts.confusion_chart(_matrix(0.5, 40, 3, 50, 7),
                                        ['no', 'yes'], 0.5)
  # Rows are the true class, columns the predicted one: TN FP / FN TP.
  cells = sorted(chart['cells'], key=lambda c: (c['y'], c['x']))
  assert [c['count'] for c in cells] == [50, 3, 7, 40]
  assert [r['name'] for r in chart['rows']] == ['no', 'yes']


_GRAPH = {'nodes': [
    {'id': 'a1', 'kind': 'artifact', 'name': 'Examples', 'artifact_id': 1,
     'uri': '/x'},
    {'id': 'e2', 'kind': 'execution', 'name': 'Trainer', 'execution_id': 2,
     'run_id': 'r'},
    {'id': 'a3', 'kind': 'artifact', 'name': 'Model', 'artifact_id': 3,
     'uri': '/y'}],
    'edges': [['a1', 'e2'], ['e2', 'a3']]}


def test_lineage_graph_draws_sources_above_results():
  chart = report_charts.lineage_chart(_GRAPH)
  ys = {n['label']: n['y'] for n in chart['nodes']}
  assert ys['Examples #1'] < ys['Trainer'] < ys['Model #3']
  assert len(chart['edges']) == 2


def _crossed_boxes(chart):
  """(edge, box) pairs where an edge's polyline passes through a box that
  is neither of its ends (its segments are vertical or slanted lines)."""
  width, height = chart['box_width'], chart['box_height']
  found = []
  for edge in chart['edges']:
    (x0, y0), (x1, y1) = edge['points'][0], edge['points'][-1]
    for box in chart['nodes']:
      left, top = box['x'], box['y']
      if (left <= x0 <= left + width and abs(top + height - y0) < 1e-6) or (
          left <= x1 <= left + width and abs(top - y1) < 1e-6):
        continue  # one of its ends
      for (ax, ay), (bx, by) in zip(edge['points'], edge['points'][1:]):
        for t in np.linspace(0.0, 1.0, 50):
          x, y = ax + (bx - ax) * t, ay + (by - ay) * t
          if left < x < left + width and top < y < top + height:
            found.append((edge['path'], box['label']))
            break
  return found


def _node(node_id, name):
  kind = 'artifact' if node_id.startswith('a') else 'execution'
  return {'id': node_id, 'kind': kind, 'name': name,
          'artifact_id': int(node_id[1:])}


def test_lineage_graph_routes_long_edges_between_boxes_not_through_them():
  # Examples feed StatisticsGen and, three rows further down, Transform;
  # the schema feeds Transform from the top row.
  graph = {'nodes': [_node('a1', 'Examples'), _node('a2', 'Schema'),
                     _node('e3', 'StatisticsGen'),
                     _node('a4', 'ExampleStatistics'),
                     _node('e5', 'ExampleValidator'),
                     _node('a6', 'ExampleAnomalies'), _node('e7', 'Transform'),
                     _node('a8', 'TransformGraph')],
           'edges': [['a1', 'e3'], ['e3', 'a4'], ['a4', 'e5'], ['a2', 'e5'],
                     ['e5', 'a6'], ['a6', 'e7'], ['a1', 'e7'], ['a2', 'e7'],
                     ['e7', 'a8']]}
  chart = report_charts.lineage_chart(graph)
  assert _crossed_boxes(chart) == []
  long_edge = [e for e in chart['edges'] if len(e['points']) > 2]
  assert len(long_edge) == 3  # a1 -> e7, a2 -> e5 and a2 -> e7
  # Every edge leaves its source's bottom and ends at its target's top.
  tops = {(n['x'] + chart['box_width'] / 2, n['y']) for n in chart['nodes']}
  assert all(tuple(e['points'][-1]) in tops for e in chart['edges'])
  # The harness does see an edge drawn through a box.
  straight = dict(chart, edges=[{'points': [e['points'][0], e['points'][-1]],
                                 'path': e['path']}
                                for e in chart['edges']])
  assert _crossed_boxes(straight)


def test_bar_chart_scales_to_the_tallest_bucket():
  chart = report_charts.bar_chart([1.0, 4.0], ['0 - 1', '1 - 2'], height=80)
  assert [b['height'] for b in chart['bars']] == [20.0, 80.0]
  assert report_charts.bar_chart([], []) is None


def _data(**overrides):
  data = {
      'run_id': 'run-1', 'pipeline_name': 'p', 'workspace': '/ws',
      'generated': 'now', 'started': 'then', 'seconds': 1.5,
      'counts': {'ran': 1, 'cached': 0, 'failed': 0},
      'components': [{'node': 'Trainer', 'state': 'ran', 'seconds': 1.25}],
      'window': {'rows': [], 'trained': False}, 'drift': None,
      'samples': [], 'statistics': [], 'anomalies': None, 'evaluation': None,
      'search': None, 'phase_two': None, 'change': None,
      'tflite': {'this_run': None, 'rows': [], 'waveform_rows': [],
                 'threshold_line': None},
      'lineage': None, 'settings': None}
  data.update(overrides)
  return data


def test_the_template_lays_out_every_section_and_escapes_the_data():
  page = report.render(_data(
      statistics=[{'name': 'train', 'examples': 3, 'features': [
          {'name': '<b>label</b>', 'kind': 'num', 'facts': [('mean', 0.5)],
           'histogram': report_charts.bar_chart([1.0, 2.0], ['0 - 1',
                                                             '1 - 2'])}]}],
      evaluation={
          'blessed': False, 'failures': ['auc: below 0.9'],
          'rows': [('auc', float('nan'), '>= 0.9')],
          'confusion': report_charts.confusion_chart(
              _matrix(0.5, 4, 1, 5, 0), ['cat', '<img src=x>'], 0.5),
          'roc': report_charts.roc_chart([(0, 0), (0.2, 0.8), (1, 1)], 0.9),
          'sliced': [('family <i>low</i>', 4, '0.7500 found')],
          'misclassified': None},
      settings=[('class_names', 'cat, <img src=x>')]))
  for section in ('components', 'statistics', 'anomalies', 'evaluation',
                  'tflite', 'lineage', 'settings'):
    assert f'<section id="{section}"><h2>' in page
  assert '<h3>train split: 3 examples</h3>' in page
  assert '&lt;b&gt;label&lt;/b&gt;' in page and '<b>label' not in page
  assert '<img' not in page and '&lt;img src=x&gt;' in page
  assert 'Not blessed.' in page and '&gt;= 0.9' in page and 'n/a' in page
  assert 'TFMA slices, at 0.5' in page and (
      'family &lt;i&gt;low&lt;/i&gt;' in page) and '0.7500 found' in page
  assert [int(c) for c in re.findall(r'class="count">(\d+)<', page)] == [
      5, 1, 0, 4]
  assert 'id="roc"' in page and 'id="confusion-matrix"' in page
  assert '1.2 s' in page  # the component's time, one decimal
  assert not re.search(r'<script|<link|<[^>]*\bsrc=', page)


def test_the_waveform_models_table_shows_only_when_a_version_has_one():
  assert 'Waveform models' not in report.render(_data())
  page = report.render(_data(tflite={
      'this_run': None,
      'rows': [('v2', 'dynamic', 1, 2, 0.5, 1, 1, 0, 1, 1, None)],
      'waveform_rows': [
          ('v2', 605320, 3.2, 1.0, 37, 1.0, 0.973, 0.97, 0.0, None),
          ('v1', None, None, None, None, None, None, None, None,
           'no waveform model in <int8> mode')]}))
  assert 'Waveform models' in page and '605320' in page and '0.973' in page
  assert 'no waveform model in &lt;int8&gt; mode' in page


def test_missing_parts_say_so():
  page = report.render(_data())
  assert 'No statistics in this run.' in page
  assert 'The Evaluator did not finish in this run.' in page
  assert 'No pushed model in this run.' in page
  assert 'This run recorded no settings.' in page
  assert 'No span was read in this run.' in page
  assert 'No drift measured' in page


def test_spans_drift_and_pictures_are_laid_out_and_escaped():
  pixel = 'data:image/png;base64,iVBORw0KGgo='
  page = report.render(_data(
      window={'rows': [(2, '/in/<b>box</b>', 'today', 48, '50.0%', 90.5,
                        40.1, 0.01)], 'trained': True},
      drift={'baseline_span': 1, 'rows': [
          ('all', 'pixel_mean', 'Jensen-Shannon', 0.47, 0.3, 'over')]},
      samples=[{'name': 'cat', 'images': [('a<x>.png', pixel)]}],
      evaluation={'blessed': True, 'failures': [], 'rows': [],
                  'confusion': None, 'roc': None, 'sliced': [],
                  'misclassified': {'scored': 10, 'wrong': 1, 'examples': [
                      {'name': 'b.png', 'uri': pixel, 'score': 0.91,
                       'label': 'cat'}]}}))
  for section in ('spans', 'drift'):
    assert f'<section id="{section}"><h2>' in page
  assert '/in/&lt;b&gt;box&lt;/b&gt;' in page and 'a&lt;x&gt;.png' in page
  assert 'Against span 1;' in page and '0.47' in page and 'over' in page
  assert page.count(f'<img src="{pixel}"') == 2
  assert 'Misclassified eval examples: 1 of 10' in page
  assert 'true cat, score 0.91' in page


def test_families_and_kinds_are_counted_per_span_and_shown():
  sources = {1: {'groups': {'not_instrument': {'': 4},
                            'instrument': {'piano': 3, 'bass': 1}}},
             2: {'groups': None}}
  rows = report.group_rows(sources, [1, 2, 3])
  # A class without sub-folders, and spans ingested before groups were
  # counted, add no row.
  assert rows == [(1, 'instrument', 'piano', 3, '75.0%'),
                  (1, 'instrument', 'bass', 1, '25.0%')]
  page = report.render(_data(window={
      'rows': [(1, '/in', 'today', 8, '50.0%', 90.5, 40.1, 0.01)],
      'trained': True, 'groups': rows, 'families': ['bass', 'piano']}))
  assert '<h3>Families and kinds</h3>' in page and 'piano' in page
  assert 'labels of the cloud phase): bass, piano.' in page
  flat = report.render(_data(window={
      'rows': [(1, '/in', 'today', 8, '50.0%', 90.5, 40.1, 0.01)],
      'trained': True, 'groups': [], 'families': []}))
  assert 'Families and kinds' not in flat
  assert 'No family was given' in flat
  # A window written before families were recorded says nothing of them.
  older = report.render(_data(window={
      'rows': [(1, '/in', 'today', 8, '50.0%', 90.5, 40.1, 0.01)],
      'trained': True, 'groups': []}))
  assert 'No family was given' not in older and 'Families (' not in older


SECTIONS = ('components', 'spans', 'drift', 'statistics', 'anomalies',
            'evaluation', 'tflite', 'lineage', 'settings')


def _canned_page():
  """A report with every section and chart, from canned data."""
  pixel = ('data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAf'
           'FcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==')
  return report.render(_data(
      window={'rows': [(1, '/in/box', 'today', 48, '50.0%', 90.5, 40.1,
                        0.01)], 'trained': True},
      drift={'baseline_span': 1, 'rows': [
          ('all', 'pixel_mean', 'Jensen-Shannon', 0.1, 0.3, 'within')]},
      samples=[{'name': 'instrument', 'images': [('a.png', pixel)]}],
      statistics=[{'name': 'all', 'examples': 48, 'features': [
          {'name': 'pixel_mean', 'kind': 'num', 'facts': [('mean', 0.5)],
           'histogram': report_charts.bar_chart([1.0, 3.0, 2.0],
                                                ['0', '1', '2'])}]}],
      evaluation={
          'blessed': True, 'failures': [],
          'rows': [('auc', 0.9, '>= 0.5')],
          'confusion': report_charts.confusion_chart(
              _matrix(0.5, 4, 1, 5, 0), ['no', 'yes'], 0.5),
          'roc': report_charts.roc_chart([(0, 0), (0.2, 0.8), (1, 1)], 0.9),
          'sliced': [('kind speech', 12, '0.0833 flagged as an instrument')],
          'misclassified': None},
      lineage={'model_id': 3, 'run_id': 'r', 'steps': 4, 'settings': 'a=1',
               'spans': [(1, '/in/box', 'no 24', 'today')],
               'both_phases': True,
               'graph': report_charts.lineage_chart(_GRAPH)},
      settings=[('image_size', 64)]))


def test_a_browser_shows_the_report_with_its_charts_and_no_console_message(
    tmp_path):
  chromium = headless.find_chromium()
  if chromium is None:
    if os.environ.get('CI'):
      pytest.fail('chromium is missing on CI (make test installs it)')
    pytest.skip('no chromium here; scripts/ensure_browser.sh installs it')
  path = tmp_path / 'report.html'
  path.write_text(_canned_page(), encoding='utf-8')
  screenshot = str(tmp_path / 'report.png')
  messages, dom = headless.load(chromium, str(path), screenshot)
  assert messages == []
  for section in SECTIONS:
    assert f'<section id="{section}">' in dom
  for chart in ('confusion-matrix', 'roc', 'lineage-graph'):
    assert f'id="{chart}"' in dom
  picture = np.asarray(Image.open(screenshot).convert('RGB'))
  assert picture.shape == (4000, 1280, 3)

  def has_colour(rgb):
    return bool(np.any(np.all(np.abs(picture.astype(int) - rgb) < 12, -1)))
  assert has_colour((192, 57, 43))   # the ROC curve
  assert has_colour((74, 123, 208))  # histogram bars
  assert has_colour((255, 244, 224))  # the lineage graph's component boxes

  # The harness does see a console error when there is one.
  broken = tmp_path / 'broken.html'
  broken.write_text('<p>x</p><script>console.error("boom"); nope();</script>')
  messages, _ = headless.load(chromium, str(broken), str(tmp_path / 'b.png'),
                              height=200)
  assert any('boom' in m for m in messages)
  assert any('nope is not defined' in m for m in messages)


def test_samples_are_picked_per_class_and_per_family_or_kind():
  from pipeline.reporting import examples  # pylint: disable=g-import-not-at-top
  png = b'\x89PNG\r\n\x1a\n'
  span = ([(1, 'piano', f'instrument/piano/{i}.wav', png) for i in range(5)]
          + [(0, 'speech', 'not_instrument/speech/a.wav', png),
             (1, 'bass', 'instrument/bass/b.wav', png),
             (0, '', 'not_instrument/c.wav', png)])
  picked = examples.pick_samples(iter(span), ('not_instrument', 'instrument'),
                                 per_group=2)
  assert [(entry['name'], [name for name, _ in entry['images']])
          for entry in picked] == [
              ('not_instrument', ['not_instrument/c.wav']),
              ('not_instrument / speech', ['not_instrument/speech/a.wav']),
              ('instrument / bass', ['instrument/bass/b.wav']),
              ('instrument / piano', ['instrument/piano/0.wav',
                                      'instrument/piano/1.wav'])]
  assert picked[0]['images'][0][1].startswith('data:image/png;base64,')
  # Only the first `scanned` examples are read.
  assert [entry['name'] for entry in examples.pick_samples(
      iter(span), ('not_instrument', 'instrument'), scanned=5)] == [
          'instrument / piano']


def test_the_statistics_show_every_familys_share_with_a_chart():
  from tensorflow_metadata.proto.v0 import statistics_pb2  # pylint: disable=g-import-not-at-top
  feature = statistics_pb2.FeatureNameStatistics(name='family')
  feature.string_stats.common_stats.num_non_missing = 8
  feature.string_stats.common_stats.num_missing = 4
  for value, count in (('piano', 5), ('bass', 3)):
    feature.string_stats.top_values.add(value=value, frequency=count)
  shown = report._feature(feature, 'label', ('no', 'yes'))  # pylint: disable=protected-access
  assert ('shares', 'bass 37.5%, piano 62.5%') in shown['facts']
  assert [bar['tip'] for bar in shown['histogram']['bars']] == ['bass: 3', 'piano: 5']
  assert not any(name == 'top values' for name, _ in shown['facts'])


def test_phase_one_s_threshold_is_shown_with_what_it_holds():
  figures = {'threshold': 0.3125, 'threshold_target_recall': 0.95,
             'threshold_recall': 0.98, 'threshold_recall_lower_bound': 0.96,
             'threshold_false_positive_rate': 0.12, 'threshold_met': 0}
  page = report.render(_data(tflite={
      'this_run': dict(figures, pushed=1, pushed_version='3',
                       pushed_destination='/p/3'),
      'rows': [], 'waveform_rows': [],
      'threshold_line': summary_lib.threshold_line(figures)}))
  assert ('Phase one decides at 0.3125 (chosen for recall 0.95 on the TFLite '
          'model): eval recall 0.9800, at least 0.9600 at 95% confidence; '
          'false-positive rate 0.1200 (the target is not proved on this '
          'eval split).') in page


def test_phase_two_shows_its_classes_and_recall_or_why_it_did_not_train():
  page = report.render(_data(phase_two={
      'trained': True, 'classes': ['not_instrument', 'bass', 'piano'],
      'accuracy': 0.8125, 'examples': 16.0, 'blessed': False,
      'family_recall': 0.75, 'reject_recall': 1.0,
      'model_path': '/m/Format-Serving',
      'rows': [('not_instrument', 1.0), ('bass', 0.5), ('piano', None)],
      'check_lines': ['Phase two serving check: not blessed: the <server>'],
      'pushed': {'pushed': 0, 'reason': 'not blessed'}}))
  assert 'Phase two (the cloud model)' in page
  assert '3 classes: not_instrument, bass, piano' in page
  assert ('Mean family recall 0.75, reject recall 1, accuracy 0.8125 on 16 '
          'eval examples') in page
  assert 'not blessed' in page and '<td>bass</td><td>0.5</td>' in page
  assert 'serving check: not blessed: the &lt;server&gt;' in page
  assert 'Not pushed: not blessed' in page
  assert '<h3>The cascade</h3>' not in page
  judged = report.render(_data(phase_two={
      'trained': True, 'classes': ['not_instrument', 'bass'],
      'accuracy': 0.8, 'examples': 4.0, 'model_path': '/m',
      'rows': [], 'check_lines': [],
      'cascade_by_pi': [('20%', 0.8232, 0.7502, 0.7975, 0.2442)],
      'cascade_families': [('bass', 0.4, 0.9, 10)],
      'cascade_curve': [(0.05, 0.813, 0.309), (0.95, 0.837, 0.207)],
      'pushed': {'pushed': 1, 'model_name': 'instruments',
                 'pushed_version': '1', 'pushed_destination': '/s/1'}}))
  assert '<h3>The cascade</h3>' in judged
  assert '<td>20%</td><td>0.8232</td><td>0.7502</td>' in judged
  assert '<td>bass</td><td>0.4</td><td>0.9</td><td>10</td>' in judged
  assert '<td>0.95</td><td>0.837</td><td>0.207</td>' in judged
  skipped = report.render(_data(phase_two={
      'trained': False, 'reason': 'no <families>'}))
  assert 'Not trained: no &lt;families&gt;.' in skipped
  assert 'Phase two' not in report.render(_data())


def test_the_threshold_line_names_the_recording_rule():
  figures = {'threshold': 0.43, 'threshold_target_recall': 0.95,
             'threshold_recall': 0.98, 'threshold_recall_lower_bound': 0.95,
             'threshold_false_positive_rate': 0.06, 'threshold_met': 1}
  assert 'mean of its windows' not in summary_lib.threshold_line(figures)
  assert summary_lib.threshold_line(dict(
      figures, threshold_recording_rule='mean')).endswith(
          '; a recording by the mean of its windows')


def test_the_report_leads_with_the_answer():
  page = report.render(_data(
      tflite={'this_run': {'pushed': 1, 'pushed_version': '3',
                           'pushed_destination': '/p/3'}, 'rows': [],
              'waveform_rows': [],
              'threshold_line': 'Phase one decides at 0.5797 <recall>'},
      phase_two={
          'trained': True, 'classes': ['not_instrument', 'bass'],
          'accuracy': 0.8, 'examples': 4.0, 'model_path': '/m',
          'family_recall': 0.7173, 'reject_recall': 0.9908,
          'rows': [], 'check_lines': [],
          'cascade_by_pi': [('5%', 0.9712, 0.9, 0.95, 0.0612),
                            ('20%', 0.9375, 0.7809, 0.9357, 0.2125)],
          'cascade_families': [], 'cascade_curve': [],
          'pushed': {'pushed': 1, 'model_name': 'instruments',
                     'pushed_version': '2', 'pushed_destination': '/s/2'}}))
  # Before anything else: the components, the data and the sections.
  assert page.index('<section id="headline">') < page.index(
      '<section id="components">')
  answer = page[page.index('<section id="headline">'):
                page.index('<section id="components">')]
  assert ('version 3 pushed. Phase one decides at 0.5797 &lt;recall&gt;.'
          in answer)
  assert ('mean family recall 0.7173, reject recall 0.9908; pushed as '
          'instruments version 2.') in answer
  assert ('5% instruments: accuracy 0.9712, cloud share 0.0612; 20% '
          'instruments: accuracy 0.9375, cloud share 0.2125.') in answer
  held = report.render(_data(
      tflite={'this_run': {'pushed': 0, 'reason': 'not blessed'},
              'rows': [], 'waveform_rows': [], 'threshold_line': None},
      phase_two={'trained': False, 'reason': 'no families'}))
  assert 'nothing pushed: not blessed.' in held
  assert 'Phase two, in the cloud</td><td>not trained: no families.' in held
  assert 'it pushed nothing and trained nothing' in report.render(_data())


def test_the_headline_says_what_changed_since_the_run_before():
  before = {'run_id': 'run-0', 'metrics': {'auc': 0.99},
            'tflite': {'threshold': 0.5797},
            'phase_two': {'phase_two_family_recall': 0.6724,
                          'phase_two_reject_recall': 0.9926},
            'cascade': {'cascade accuracy at 20% instruments': 0.9287}}
  this = {'run_id': 'run-1', 'metrics': {'auc': 0.9958},
          'tflite': {'threshold': 0.5797},
          'phase_two': {'phase_two_family_recall': 0.7173,
                        'phase_two_reject_recall': 0.9908}}
  said = report.change_text(this, before)
  assert said == (
      "against run run-0: phase one's AUC 0.9958 (+0.0058); phase two's mean "
      "family recall 0.7173 (+0.0449); phase two's reject recall 0.9908 "
      "(-0.0018); unchanged: phase one's threshold.")  # no cascade this run
  assert report.change_text(before, before) == (
      'against run run-0: no figure moved.')
  assert 'nothing to compare with' in report.change_text(this, None)
  page = report.render(_data(change={'this': this, 'before': before}))
  answer = page[page.index('<section id="headline">'):
                page.index('<section id="components">')]
  assert 'Since the last run</td><td>against run run-0' in answer


def test_the_confusion_matrix_is_at_the_threshold_phase_one_ships_with():
  evaluation = {'metrics': {'auc': 0.9}, 'thresholds': {}, 'failures': [],
                'matrices': [_matrix(0.5, 8, 2, 8, 2),
                             _matrix(0.58, 7, 1, 9, 3),
                             _matrix(0.6, 6, 1, 9, 4)]}
  shipped = report._evaluation(evaluation, True, ['cat', 'dog'], None, 0.5797)  # pylint: disable=protected-access
  assert shipped['confusion']['threshold'] == 0.58 and shipped['shipped']
  page = report.render(_data(evaluation=shipped))
  assert ('Confusion matrix at threshold 0.580, the one phase one ships '
          'with') in page
  unshipped = report._evaluation(evaluation, False, ['cat', 'dog'], None)  # pylint: disable=protected-access
  assert unshipped['confusion']['threshold'] == 0.5
  assert 'ships with' not in report.render(_data(evaluation=unshipped))


def test_the_cascade_curve_is_a_chart_with_the_shipped_threshold_marked():
  chart = report_charts.cascade_chart(
      [(0.95, 0.837, 0.207), (0.05, 0.813, 0.309), (0.5, 0.9, 0.25)], 0.5797,
      width=144, height=140)
  # 100 x 100 inside: threshold 0.05 at x 39, accuracy 0.813 at y 28.7.
  assert chart['accuracy'].split()[0] == '39.0,28.7'
  assert chart['share'].split()[-1] == '129.0,89.3'
  assert chart['chosen_x'] == 92.0 and chart['chosen'] == '0.5797'
  assert report_charts.cascade_chart([], 0.5) is None
  page = report.render(_data(phase_two={
      'trained': True, 'classes': ['not_instrument', 'bass'],
      'accuracy': 0.8, 'examples': 4.0, 'model_path': '/m',
      'rows': [], 'check_lines': [],
      'cascade_by_pi': [('20%', 0.8232, 0.7502, 0.7975, 0.2442)],
      'cascade_families': [], 'cascade_curve': [(0.05, 0.813, 0.309)],
      'cascade_chart': chart,
      'pushed': {'pushed': 0, 'reason': 'held back'}}))
  assert 'id="cascade-curve"' in page and 'shipped 0.5797' in page


def test_phase_two_s_confusion_matrix_is_drawn_row_by_row():
  chart = report_charts.classes_chart(
      [[8, 2, 0], [1, 3, 0], [0, 0, 0]], ['not_instrument', 'bass', 'piano'])
  counts = [cell['count'] for cell in chart['cells']]
  assert counts == [8, 2, '', 1, 3, '', '', '', '']
  # Shaded by the share of the row: 8 of 10 darker than 3 of 4 is not.
  first, bass = chart['cells'][0]['fill'], chart['cells'][4]['fill']
  assert first == 'rgb(90,95,255)' and bass == 'rgb(100,105,255)'
  assert chart['cells'][1]['fill'] == 'rgb(255,210,210)'  # 2 of 10, off
  assert [row['name'] for row in chart['rows']] == [
      'not_instrument', 'bass', 'piano']
  assert report_charts.classes_chart([[0, 0], [0, 0]], ['a', 'b']) is None
  page = report.render(_data(phase_two={
      'trained': True, 'classes': ['not_instrument', 'bass', 'piano'],
      'accuracy': 0.8, 'examples': 14.0, 'model_path': '/m',
      'rows': [], 'check_lines': [], 'confusion': chart,
      'pushed': {'pushed': 0, 'reason': 'held back'}}))
  assert 'id="phase-two-confusion"' in page and '>not_instrument</text>' in page


def test_the_lineage_graph_holds_both_phases_and_words_the_counts():
  from pipeline.metadata import lineage  # pylint: disable=g-import-not-at-top
  phase_two = {'nodes': [_node('a1', 'Examples'), _node('e9', 'PhaseTwoTrainer'),
                         _node('a10', 'Model')],
               'edges': [['a1', 'e9'], ['e9', 'a10']]}
  merged = lineage.merge_graphs(_GRAPH, None, phase_two)
  assert [n['id'] for n in merged['nodes']] == ['a1', 'a10', 'a3', 'e2', 'e9']
  assert merged['edges'] == [['a1', 'e2'], ['a1', 'e9'], ['e2', 'a3'],
                             ['e9', 'a10']]
  chain = {'graph': _GRAPH, 'model': {'id': 3},
           'trainer': {'run_id': 'r', 'train_args': {'num_steps': 4}},
           'examples': [{'sources': {1: {
               'source': '/in', 'ingested': 'today',
               'counts': {'not_instrument': 5, 'instrument': 6}}}}]}
  section = report._lineage(chain, phase_two)  # pylint: disable=protected-access
  assert section['both_phases']
  assert section['spans'] == [(1, '/in', 'not_instrument 5, instrument 6',
                               'today')]
  labels = {n['label'] for n in section['graph']['nodes']}
  assert {'Trainer', 'PhaseTwoTrainer', 'Model #3', 'Model #10'} <= labels
  assert not report._lineage(chain)['both_phases']  # pylint: disable=protected-access


def test_a_misclassified_window_plays_as_the_model_heard_it():
  import base64  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  import wave  # pylint: disable=g-import-not-at-top
  from pipeline.reporting import examples  # pylint: disable=g-import-not-at-top
  samples = (np.sin(np.arange(800) / 5.0) * 12000).astype('<i2')
  uri = examples.wav_uri(samples.tobytes(), 8000)
  assert uri.startswith('data:audio/wav;base64,')
  with wave.open(io.BytesIO(base64.b64decode(uri.split(',', 1)[1]))) as heard:
    assert (heard.getnchannels(), heard.getsampwidth(),
            heard.getframerate(), heard.getnframes()) == (1, 2, 8000, 800)
    assert np.array_equal(np.frombuffer(heard.readframes(800), '<i2'),
                          samples)
  wrong = {'scored': 10, 'wrong': 1, 'threshold': 0.58, 'examples': [
      {'name': 'instrument/piano/a.wav', 'uri': 'data:image/png;base64,AA',
       'score': 0.1, 'label': 'instrument', 'audio': uri}]}
  evaluation = {'blessed': True, 'failures': [], 'rows': [],
                'confusion': None, 'roc': None, 'sliced': [],
                'misclassified': wrong}
  page = report.render(_data(evaluation=evaluation))
  assert f'<audio controls preload="none" src="{uri}"' in page
  assert 'each window plays as the model heard it' in page
  # Pictures without samples (spans of images) have nothing to play.
  wrong['examples'][0]['audio'] = None
  page = report.render(_data(evaluation=evaluation))
  assert '<audio' not in page and 'plays as' not in page
