"""Benchmark figures are generated from bench/results.json, never typed:
RESULTS.md and the README's targets' table are what the generator makes
of the committed results; and the width study's rule (bench part 9) picks
what it says it picks."""

import json
import os

import pytest

from bench import run_bench
from bench.parts import audio as audio_part
from bench.parts import width_side_by_side
from bench.parts import width_study

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
  with open(os.path.join(ROOT, *parts), encoding='utf-8') as f:
    return f.read()


def test_results_md_and_the_readme_table_are_generated_from_results_json():
  results = json.loads(_read('bench', 'results.json'))
  assert _read('bench', 'RESULTS.md') == run_bench.markdown(results)
  readme = _read('README.md')
  assert run_bench.readme_with_targets(readme, results) == readme
  # The table is there, with a figure the results hold.
  ratio = results['ratios']['cached_vs_cold']
  assert f'| cached rerun vs cold run | {ratio:.3g} |' in readme


def test_a_retyped_figure_in_the_readme_is_told_apart():
  results = json.loads(_read('bench', 'results.json'))
  readme = _read('README.md')
  ratio = f"{results['ratios']['cached_vs_cold']:.3g}"
  edited = readme.replace(f'| cached rerun vs cold run | {ratio} |',
                          '| cached rerun vs cold run | 0.05 |')
  assert run_bench.readme_with_targets(edited, results) != edited


def test_the_readme_stays_short():
  assert len(_read('README.md').encode('utf-8')) <= 12 * 1024


def _run(width, seed, auc, accuracy):
  return {'width': width, 'seed': seed, 'auc': auc, 'accuracy': accuracy,
          'pushed_bytes': int(width * 500_000), 'latency_ms': width,
          'trainer_seconds': 100 * width, 'peak_rss_bytes': 2 ** 30}


def test_the_rule_picks_the_narrowest_width_as_good_and_as_steady():
  runs = [_run(1.0, s, a, c) for s, (a, c) in enumerate(
      [(0.990, 0.980), (0.994, 0.984), (0.992, 0.982)])]
  # 0.5: within 0.005 of 1.0's means, spreads no larger: chosen.
  runs += [_run(0.5, s, a, c) for s, (a, c) in enumerate(
      [(0.989, 0.979), (0.991, 0.981), (0.990, 0.980)])]
  # 0.35: as good on average but less steady.
  runs += [_run(0.35, s, a, c) for s, (a, c) in enumerate(
      [(0.980, 0.970), (0.999, 0.990), (0.991, 0.981)])]
  # 0.25: steady but worse.
  runs += [_run(0.25, s, a, c) for s, (a, c) in enumerate(
      [(0.980, 0.970), (0.981, 0.971), (0.982, 0.972)])]
  rows = width_study.width_rows(runs)
  assert [r['width'] for r in rows] == [1.0, 0.5, 0.35, 0.25]
  widest = rows[0]
  assert abs(widest['auc'] - 0.992) < 1e-9
  assert abs(widest['auc_spread'] - 0.004) < 1e-9
  assert width_study.chosen_width(rows) == 0.5
  chart = width_study.width_chart(rows)
  assert chart.startswith('<svg') and chart.count('<polyline') == 3
  lines = '\n'.join(width_study._width_lines({  # pylint: disable=protected-access
      'steps': 500, 'seeds': 3, 'measured': 'today', 'rows': rows,
      'rule': width_study.WIDTH_RULE, 'chosen': 0.5}))
  assert '| 0.5 | 0.9900 |' in lines and 'picks width **0.5**' in lines


def test_the_widest_is_chosen_when_no_narrower_width_keeps_up():
  runs = [_run(1.0, 0, 0.99, 0.98), _run(1.0, 1, 0.99, 0.98),
          _run(0.25, 0, 0.95, 0.94), _run(0.25, 1, 0.95, 0.94)]
  assert width_study.chosen_width(width_study.width_rows(runs)) == 1.0


def test_the_default_width_is_the_one_the_rule_picks_from_the_study():
  from components.modules import model_defaults  # pylint: disable=g-import-not-at-top
  from pipeline.settings import config  # pylint: disable=g-import-not-at-top
  study = json.loads(_read('bench', 'results.json'))['width_study']
  assert width_study.chosen_width(study['rows']) == model_defaults.DEFAULT_WIDTH
  assert config.PipelineConfig().model_width == model_defaults.DEFAULT_WIDTH
  assert f"picks width **{model_defaults.DEFAULT_WIDTH:g}**" in _read(
      'bench', 'RESULTS.md')


def test_the_side_by_side_section_renders_its_figures():
  row = {'total_seconds': 100.0, 'trainer_seconds': 50.0,
         'peak_rss_bytes': 2 ** 30, 'pushed_bytes': 160_000,
         'evaluator_auc': 0.99, 'accuracy': 0.97, 'latency_ms': 0.25}
  side = '\n'.join(width_side_by_side._side_lines({  # pylint: disable=protected-access
      'measured': 'today', 'repeats': 1, 'notebook_seconds': 80.0,
      'notebook_accuracy': 0.8, 'notebook_tflite_bytes': 150_000,
      'widths': [0.5, 1.0], 'notebook_width': 0.5,
      'rows': {'width 0.5': row, 'width 1': dict(row, pushed_bytes=480_000,
                                                 total_seconds=200.0)}}))
  assert '| width 0.5 / width 1 | 0.500 |' in side and '| 0.333 |' in side
  assert 'takes 1.25x its time' in side
  assert 'cascade accuracy' not in side
  # Runs that judged a cascade show it beside the rest.
  judged = dict(row, threshold=0.1469, cascade_accuracy=0.808,
                cloud_share=0.28)
  side = '\n'.join(width_side_by_side._side_lines({  # pylint: disable=protected-access
      'measured': 'today', 'repeats': 1, 'notebook_seconds': 80.0,
      'notebook_accuracy': 0.8, 'notebook_tflite_bytes': 150_000,
      'widths': [0.5, 1.0], 'notebook_width': 0.5,
      'rows': {'width 0.5': dict(judged, cascade_accuracy=0.795,
                                 cloud_share=0.331),
               'width 1': judged}}))
  assert 'threshold | cascade accuracy | cloud share |' in side
  assert '| 0.1469 | 0.7950 | 0.3310 | 1,024 |' in side
  assert side.count('---|') == 11


def test_the_audio_section_renders_its_figures():
  audio = '\n'.join(audio_part._audio_lines({  # pylint: disable=protected-access
      'measured': 'today', 'per_class': 10,
      'throughput': {'16 kHz mono': {'ingest_clips_per_second': 30.0,
                                     'plain_clips_per_second': 60.0}},
      'held_out_accuracy': {'16 kHz mono': 0.98, '48 kHz mono': 0.975},
      'streams': {'60': {'audio_seconds': 60, 'windows': 60,
                         'wall_seconds': 5.0, 'first_window_seconds': 4.0,
                         'real_time_factor': 59.0,
                         'peak_rss_bytes': 2 ** 29}}}))
  assert '| 16 kHz mono | 30.0 | 60.0 | 0.50 |' in audio
  assert '| 48 kHz mono | 0.9750 | -0.0050 |' in audio
  assert '| 1 min | 60 | 5.0 | 4.0 | 59x | 512 |' in audio



def test_the_transfer_part_scores_predictions_by_family_and_kind():
  from bench.parts import transfer  # pylint: disable=g-import-not-at-top
  answer = lambda path, label, score: {  # pylint: disable=unnecessary-lambda-assignment
      'path': path, 'label': label,
      'scores': {'not_instrument': 1 - score, 'instrument': score}}
  found = transfer.score([
      answer('h/instrument/piano/a.wav', 'instrument', 0.9),
      answer('h/instrument/piano/b.wav', 'not_instrument', 0.4),
      answer('h/instrument/bass/c.wav', 'instrument', 0.8),
      answer('h/not_instrument/speech/d.wav', 'not_instrument', 0.1),
      answer('h/not_instrument/noise/e.wav', 'instrument', 0.6)])
  assert found['examples'] == 5
  assert abs(found['accuracy'] - 0.6) < 1e-9
  assert found['recall'] == {'instrument/bass': 1.0, 'instrument/piano': 0.5,
                             'not_instrument/noise': 0.0,
                             'not_instrument/speech': 1.0}
  assert 0.5 < found['auc'] < 1.0
  lines = '\n'.join(transfer.report_lines({'transfer': dict(
      found, measured='today', per_class=10, held_out_per_class=5,
      train_set=transfer.TRAIN_SET, held_out_set=transfer.HELD_OUT_SET,
      eval_split={'auc': 0.99, 'binary_accuracy': 0.95})}))
  assert '## 14. Transfer across sample sets' in lines
  assert '| **run 1: held-out sample set** | **0.6000** |' in lines
  assert '| instrument/piano | 0.50 |' in lines
  assert 'TimGM6mb.sf2' in lines and 'MuseScore_General.sf3' in lines


def test_part_one_says_the_pipeline_side_trains_two_models():
  from bench.parts import pipeline_vs_notebook  # pylint: disable=g-import-not-at-top
  one = {'images': 2000, 'notebook_steps': 500, 'repeats': 1,
         'cold_ingest_seconds': 20.0, 'cold_run_seconds': 300.0,
         'cold_total_seconds': 320.0, 'second_run_seconds': 90.0,
         'cached_run_seconds': 10.0, 'notebook_seconds': 100.0,
         'components': {'Trainer': 150.0, 'PhaseTwoTrainer': 60.0,
                        'PhaseTwoServingCheck': 15.0},
         'notebook_phases': {'fit_seconds': 80.0},
         'notebook_tflite_bytes': 1000, 'notebook_accuracy': 0.9,
         'notebook_tflite_accuracy': 0.9, 'pipeline_metrics': {}}
  text = '\n'.join(pipeline_vs_notebook.report_lines(
      {'pipeline_vs_notebook': one}))
  assert ('The pipeline side trains two models, the notebook one' in text
          and 'PhaseTwoTrainer 60.0 s, PhaseTwoServingCheck 15.0 s), 75.0 s '
          "of the run's 300.0 s" in text), text
  one['components'] = {'Trainer': 150.0}
  assert 'two models' not in '\n'.join(pipeline_vs_notebook.report_lines(
      {'pipeline_vs_notebook': one}))


def test_the_cascade_bench_scores_files_by_their_folders_at_20_percent():
  from bench import cascade  # pylint: disable=g-import-not-at-top
  from pipeline.serving import predict  # pylint: disable=g-import-not-at-top

  def file(truth, group, label, sent):
    return predict.Prediction(f'/held/{truth}/{group}/x.wav', label=label,
                              cascade={'windows': 1, 'sent': sent})

  results = [file('instrument', 'bass', 'bass', 1),
             file('instrument', 'bass', 'piano', 1),
             file('instrument', 'piano', 'not_instrument', 0),
             file('not_instrument', 'speech', 'not_instrument', 0),
             file('not_instrument', 'speech', 'not_instrument', 1),
             file('not_instrument', 'noise', 'bass', 1)]
  found = cascade.score(results, 'not_instrument', 'instrument')
  assert found['instrument_accuracy'] == pytest.approx(1 / 3)
  assert found['not_instrument_accuracy'] == pytest.approx(2 / 3)
  assert found['accuracy_pi_0.2'] == pytest.approx(0.2 / 3 + 0.8 * 2 / 3)
  assert found['cloud_share_pi_0.2'] == pytest.approx(0.2 * 2 / 3 +
                                                      0.8 * 2 / 3)
  assert found['by_group'] == {'instrument/bass': 0.5,
                               'instrument/piano': 0.0,
                               'not_instrument/noise': 0.0,
                               'not_instrument/speech': 1.0}
  alone = cascade.device_alone(results, 'not_instrument', 'instrument')
  # Only the one unflagged other is right on the device alone.
  assert alone['not_instrument_accuracy'] == pytest.approx(1 / 3)
  assert alone['accuracy_pi_0.2'] == pytest.approx(0.8 / 3)


def test_with_the_cascade_s_figures_the_rule_judges_by_them():
  runs = []
  for width, auc, accuracy, cascade, share in (
      (1.0, 0.994, 0.984, 0.820, 0.245),
      # Loses a point at 0.5 but not in the cascade: chosen.
      (0.5, 0.992, 0.974, 0.818, 0.250),
      # As good in the cascade but sends the cloud more.
      (0.25, 0.990, 0.970, 0.822, 0.270)):
    runs.append(dict(_run(width, 0, auc, accuracy), cascade_accuracy=cascade,
                     cloud_share=share, threshold=width / 10))
  rows = width_study.width_rows(runs)
  assert width_study.by_cascade(rows)
  assert width_study.chosen_width(rows) == 0.5
  lines = '\n'.join(width_study._width_lines({  # pylint: disable=protected-access
      'steps': 2000, 'seeds': 1, 'measured': 'today', 'rows': rows}))
  assert ('| 0.5 | 0.9920 | 0.0000 | 0.9740 | 0.0000 | 0.05 | 0.8180 | '
          '0.2500 |') in (
      lines)
  assert 'end-to-end accuracy at 20% instruments' in lines
  # Without them (spans without families), phase one's own rule.
  assert not width_study.by_cascade(width_study.width_rows(
      [_run(1.0, 0, 0.99, 0.98)]))


def test_the_window_rule_bench_pads_and_decides_as_it_says():
  import numpy as np  # pylint: disable=g-import-not-at-top
  from bench import window_rule  # pylint: disable=g-import-not-at-top
  recording = np.arange(25, dtype=np.float32) + 1
  zeros = window_rule.windows(recording, 10, 10, 'zeros')
  assert [w[0] for w in zeros] == [1, 11, 21]
  assert list(zeros[-1][5:]) == [0] * 5  # silence after the end
  aligned = window_rule.windows(recording, 10, 10, 'end-aligned')
  assert [w[0] for w in aligned] == [1, 11, 16]
  assert aligned[-1][-1] == 25  # ends where the recording ends
  # A recording shorter than a window is padded either way.
  short = window_rule.windows(recording[:4], 10, 10, 'end-aligned')
  assert len(short) == 1 and list(short[0][4:]) == [0] * 6
  scores = [0.2, 0.9, 0.1]
  assert window_rule.decide(scores, 'max') == 0.9
  assert window_rule.decide(scores, 'mean') == pytest.approx(0.4)
  assert window_rule.decide(scores, 'first') == 0.2


def test_part_14_reports_the_window_rule_when_measured():
  from bench.parts import transfer  # pylint: disable=g-import-not-at-top
  row = {'accuracy': 0.9, 'false_positive_rate': 0.1,
         'false_negative_rate': 0.0, 'false_positives_from_the_last_window': 1}
  found = dict(accuracy=0.9, auc=0.95, recall={}, eval_split={},
               per_class=10, held_out_per_class=5, measured='today',
               train_set=transfer.TRAIN_SET,
               held_out_set=transfer.HELD_OUT_SET,
               window_rule={'lengths': {'1.5': {'zeros/max': row,
                                                'zeros/mean': dict(
                                                    row, accuracy=0.95)}}})
  lines = '\n'.join(transfer.report_lines({'transfer': found}))
  assert '| length | zeros/max | zeros/mean |' in lines
  assert '| 1.5 s | 0.9000 | 0.9500 |' in lines


def test_part_15_scores_families_three_windows_and_rejects():
  import numpy as np  # pylint: disable=g-import-not-at-top
  from bench.parts import sample_sets  # pylint: disable=g-import-not-at-top
  names = ['not_instrument', 'bass', 'piano']
  labels = np.array([1, 1, 1, 2, 2, 2, 0, 0])
  # One bass window is heard as piano, but not strongly enough to sway
  # the mean of its recording's three; one other sound passes as bass.
  scores = np.array([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.1, 0.4, 0.5],
                     [0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8],
                     [0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])

  class _Head:

    def predict(self, embedded, verbose=0):
      del verbose
      return scores[embedded]

  found = sample_sets._score(_Head(), np.arange(8), labels, names)  # pylint: disable=protected-access
  assert found['family_accuracy'] == pytest.approx(5 / 6, abs=1e-4)
  assert found['three_window_accuracy'] == 1.0
  assert found['recall'] == {'bass': pytest.approx(0.6667, abs=1e-4),
                             'piano': 1.0}
  assert found['reject_recall'] == 0.5
  lines = '\n'.join(sample_sets.report_lines({'sample_sets': {
      'measured': '2026-12-07', 'encoder': ['MSD_musicnn'],
      'per_family': 2, 'others': 2, 'steps': 10,
      'held_out': {'a.sf2': found, 'b.sf2': found}}}))
  assert '## 15. Phase two across sample sets' in lines
  assert '| a.sf2 | **0.8333** | 1.0000 |' in lines
  assert '| piano | 1.00 | 1.00 |' in lines
