"""The device-aware model search: the budget, the trial table, the Trainer's
use of the choice, and the search in a pipeline (3 trials, small data)."""

import dataclasses
import json
import os
from unittest import mock

import pytest

from components.model_search import executor as search_executor
from components.model_search import trials
from components.tflite import budget as budget_lib
from components.modules import search
from components.modules import search_settings
from components.modules import settings as settings_lib
from components.modules import trainer
from pipeline.cli import commands as cli
from pipeline.settings import config as config_lib
from pipeline.metadata import inspection
from pipeline.metadata import mlmd
from pipeline.reporting import report
from pipeline.reporting import report_charts
from pipeline.metadata import summary as summary_lib
from pipeline.runners import run


def _trial(trial_id, auc, size, latency=1.0, fits=True, width=0.5,
           status='COMPLETED'):
  return {'trial_id': trial_id, 'status': status, 'auc': auc,
          'tflite_bytes': size, 'latency_ms_median': latency,
          'within_budget': fits, 'hyperparameters': {'width': width}}


def test_a_budget_names_each_limit_a_model_breaks_and_by_how_much():
  budget = budget_lib.Budget(max_tflite_bytes=250_000, max_latency_ms=2.0)
  assert budget.breaches(250_000, 2.0) == []
  [size, latency] = budget.breaches(320_864, 2.5)
  assert size.describe() == ('TFLite model 320,864 bytes, 70,864 over '
                             'max_tflite_bytes 250,000')
  assert latency.excess == pytest.approx(0.5)
  assert 'over max_latency_ms 2' in latency.describe()
  assert [b.limit_name for b in budget.breaches(1, None)] == [
      'max_latency_ms']  # an unmeasured latency cannot pass a limit
  assert budget_lib.Budget().breaches(10**9, 10**3) == []
  ram = budget_lib.Budget(max_arena_bytes=262_144)
  [arena] = ram.breaches(1, 1.0, 300_000)
  assert arena.describe() == ('TFLM arena 300,000 bytes, 37,856 over '
                              'max_arena_bytes 262,144')
  # A model TFLM could not run has no arena to fit any limit.
  [unrunnable] = ram.breaches(1, 1.0, None)
  assert 'did not run it' in unrunnable.describe()
  assert ram.breaches(1, 1.0, 262_144) == [] and ram.active
  assert not ram.for_phone().active
  assert not budget_lib.Budget().active
  assert budget_lib.Budget.from_dict(budget.to_dict()) == budget
  with pytest.raises(budget_lib.BudgetError, match='max_tflite_bytes'):
    budget_lib.Budget(max_tflite_bytes=-1)


def test_the_settings_refuse_a_negative_budget_and_reach_the_search():
  with pytest.raises(config_lib.ConfigError, match='max_latency_ms'):
    config_lib.PipelineConfig(max_latency_ms=-1.0)
  with pytest.raises(config_lib.ConfigError, match='tune_trials'):
    config_lib.PipelineConfig(tune_trials=0)
  config = config_lib.PipelineConfig(max_tflite_bytes=250_000, tune=True,
                                     quantization='int8')
  settings = config.search_settings()
  assert settings.budget.max_tflite_bytes == 250_000
  assert settings.quantization == 'int8'
  assert settings.tune_trials == 6


def test_the_chosen_trial_is_the_most_accurate_within_budget():
  table = [_trial('0', 0.99, 540_000, fits=False),
           _trial('1', 0.95, 160_000),
           _trial('2', 0.97, 215_000),
           _trial('3', 0.97, 90_000),  # as accurate and smaller: chosen
           _trial('4', 0.999, 100, status='FAILED')]
  assert trials.choose(table)['trial_id'] == '3'
  assert trials.choose([table[0]]) is None
  assert [r['trial_id'] for r in trials.pareto_front(
      table, 'tflite_bytes')] == ['3', '0']


def _search_settings(**search):
  training = settings_lib.TrainingSettings(
      image_size=64, channels=3, batch_size=8, learning_rate=2e-3,
      width=1.0, seed=0, augment=False, warm_start=False,
      class_names=('quiet', 'loud'))
  return search_settings.SearchSettings(
      training=training, **dict(dict(
          tune_trials=2, quantization='dynamic', latency_runs=1,
          representative_examples=1, budget=budget_lib.Budget()),
                                **search))


def test_the_search_settings_reach_the_module_code_as_they_were_built():
  built = dataclasses.replace(
      _search_settings(quantization='int8'),
      budget=budget_lib.Budget(max_tflite_bytes=5, max_latency_ms=1.5))
  config = json.loads(json.dumps(built.to_custom_config()))
  assert search_settings.SearchSettings.from_custom_config(config) == built
  assert settings_lib.TrainingSettings.from_custom_config(
      config) == built.training


def test_the_search_proposes_the_same_trials_for_the_same_seed(tmp_path):
  def widths(folder):
    result = search.tuner_fn(mock.Mock(
        custom_config=_search_settings(tune_trials=3).to_custom_config(),
        train_files=[], eval_files=[], transform_graph_path='',
        train_steps=1, working_dir=str(folder)))
    oracle = result.tuner.oracle
    proposed = []
    for _ in range(3):
      trial = oracle.create_trial('t')
      proposed.append(trial.hyperparameters.values['width'])
      oracle.update_trial(trial.trial_id, {search.OBJECTIVE: 0.5})
      oracle.end_trial(trial)
    return proposed

  assert widths(tmp_path / 'a') == widths(tmp_path / 'b')


def test_a_trial_over_budget_always_scores_below_one_within():
  assert search.trial_score(0.5, fits=True) > search.trial_score(1.0,
                                                                 fits=False)
  assert search.trial_score(float('nan'), fits=True) == 0.0


def test_no_fitting_trial_is_reported_with_the_budget_and_the_smallest():
  table = [_trial('0', 0.9, 540_000, fits=False, width=1.0),
           _trial('1', 0.8, 88_136, latency=0.4, fits=False, width=0.35)]
  message = search_executor.no_fit_message(
      table, budget_lib.Budget(max_tflite_bytes=50_000))
  assert 'no trial of 2 fits the device budget (max_tflite_bytes 50,000)' \
      in message
  assert '88,136 bytes (width 0.35)' in message
  assert '--max-tflite-bytes' in message


def test_the_trainer_takes_the_searched_settings_over_the_pipelines():
  config = _search_settings().training
  assert trainer.model_settings(config, None) == {
      'width': 1.0, 'dropout': trainer.DEFAULT_DROPOUT,
      'learning_rate': 2e-3}
  chosen = {'space': [], 'values': {'width': 0.5, 'dropout': 0.1,
                                    'learning_rate': 1e-3}}
  assert trainer.model_settings(config, chosen) == {
      'width': 0.5, 'dropout': 0.1, 'learning_rate': 1e-3}


def test_a_trial_table_that_is_not_one_is_named():
  with pytest.raises(trials.TrialsError, match='results/trials.json'):
    trials.loads('{"no": 1}', 'results/trials.json')
  table = trials.loads(trials.dumps([_trial('0', 0.9, 1)], '0', {}), 'x')
  assert table['chosen_trial'] == '0'


def test_the_size_scatter_draws_the_budget_the_front_and_the_choice():
  table = [_trial('0', 0.99, 540_000, fits=False),
           _trial('1', 0.95, 160_000),
           _trial('2', 0.97, 90_000)]
  chart = report_charts.trials_chart(
      table, 'tflite_bytes', 'TFLite bytes', 300_000,
      trials.pareto_front(table, 'tflite_bytes'), chosen='2')
  by_tip = {p['tip'].split(':')[0]: p for p in chart['points']}
  assert by_tip['trial 2']['fill'] == report_charts.CHOSEN_COLOUR
  assert by_tip['trial 0']['fill'] == report_charts.OVER_COLOUR
  assert 'over budget' in by_tip['trial 0']['tip']
  # Left to right: smaller models further left; the budget between them.
  assert (by_tip['trial 2']['x'] < by_tip['trial 1']['x'] <
          chart['budget_x'] < by_tip['trial 0']['x'])
  # Higher AUC higher up (smaller y); the front skips the dominated trial 1.
  assert by_tip['trial 0']['y'] < by_tip['trial 2']['y'] < \
      by_tip['trial 1']['y']
  assert len(chart['front'].split()) == 2
  assert [t['text'] for t in chart['x_ticks']] == ['0', '292k', '583k']
  assert report_charts.trials_chart([], 'tflite_bytes', '', 0, [],
                                    None) is None


# ------------------------------------------------------------ in a pipeline

# With seed 1 the search's first three trials are 1.0, 0.6 and 0.35 wide:
# the full-width model (about 545 kB in dynamic mode) is over this budget,
# the others (at most 219 kB) within it. The test asserts both kinds occur.
BUDGET = 300_000
SEED = 1


@pytest.fixture(scope='module')
def workspace(tmp_path_factory, small_spectrograms):
  ws = str(tmp_path_factory.mktemp('search') / 'workspace')
  assert cli.main(['ingest', '--workspace', ws, small_spectrograms]) == 0
  return ws


def _config(workspace, **overrides):
  settings = dict(workspace=workspace, image_size=64, train_steps=12,
                  batch_size=8, min_auc=0.0, min_accuracy=0.0,
                  max_auc_drop=1.0, max_accuracy_drop=1.0, latency_runs=5,
                  tune=True, tune_trials=3, tune_steps=4,
                  max_tflite_bytes=BUDGET, seed=SEED)
  settings.update(overrides)
  return config_lib.PipelineConfig(**settings)


def _state(summary, node):
  [state] = [c['state'] for c in summary['components'] if c['node'] == node]
  return state


@pytest.mark.e2e
def test_the_search_keeps_the_best_trial_within_budget_and_is_cached(
    workspace, capsys):
  config = _config(workspace)
  first = run.run_pipeline(config)
  assert _state(first, 'ModelSearch') == 'ran'
  store = mlmd.open_store(config.metadata_url(), read_only=True)
  table = inspection.trials(store, config.pipeline_name)
  records = table['trials']
  assert len(records) == 3
  assert {r['status'] for r in records} == {'COMPLETED'}
  over = [r for r in records if not r['within_budget']]
  assert over and all(r['tflite_bytes'] > BUDGET for r in over)
  fitting = [r for r in records if r['within_budget']]
  assert fitting and all(r['tflite_bytes'] <= BUDGET for r in fitting)
  [chosen] = [r for r in records if r['trial_id'] == table['chosen_trial']]
  assert chosen['within_budget']
  assert chosen['auc'] == max(r['auc'] for r in fitting)
  assert table['budget']['max_tflite_bytes'] == BUDGET

  # The Trainer trained the chosen settings, and the pushed model fits.
  model_dir = os.path.dirname(first['model_path'])  # Trainer/model/ID
  history_file = os.path.join(os.path.dirname(os.path.dirname(model_dir)),
                              'model_run', os.path.basename(model_dir),
                              'history.json')
  with open(history_file, encoding='utf-8') as f:
    history = json.load(f)
  assert history['tuned'] is True
  assert history['model']['width'] == chosen['hyperparameters']['width']
  assert history['model']['learning_rate'] == pytest.approx(
      chosen['hyperparameters']['learning_rate'], rel=1e-5)
  assert first['pushed']['pushed'] == 1
  assert first['pushed']['pushed_bytes'] <= BUDGET

  # `inspect trials` says the same, in words.
  capsys.readouterr()
  assert cli.main(['inspect', 'trials', '--workspace', workspace]) == 0
  text = capsys.readouterr().out
  assert f"trial {chosen['trial_id']}" in text and 'chosen' in text
  assert 'over budget' in text and 'max_tflite_bytes 300,000' in text

  # The report draws the trials against size and latency.
  page = report.build_report(config, first['run_id'])[1]
  section = page[page.index('<section id="search">'):]
  section = section[:section.index('</section>')]
  assert section.count('<svg class="chart trials"') == 2
  assert section.count('<circle') == 6  # 3 trials, 2 charts
  assert section.count('class="budget"') == 1  # no latency limit was set
  assert f"{chosen['trial_id']} (chosen)" in section

  # The same inputs: the search is served from the cache.
  second = run.run_pipeline(config)
  assert _state(second, 'ModelSearch') == 'cached'
  assert _state(second, 'Trainer') == 'cached'
  assert second['search']['chosen_trial'] == chosen['trial_id']
  assert second['search']['trials_within_budget'] == len(fitting)
  assert (f"Model search: trial {chosen['trial_id']} of 3 chosen"
          in summary_lib.format_summary(second))


@pytest.mark.e2e
def test_a_search_with_no_trial_in_budget_stops_before_training(workspace):
  config = _config(workspace, max_tflite_bytes=1_000)
  with pytest.raises(run.RunError) as raised:
    run.run_pipeline(config)
  assert 'no trial of 3 fits the device budget (max_tflite_bytes 1,000)' \
      in str(raised.value)
  assert not raised.value.unexpected
  summary = summary_lib.summarize_latest_run(config)
  assert _state(summary, 'ModelSearch') == 'failed'
  assert 'Trainer' not in {c['node'] for c in summary['components']
                           if c['state'] == 'ran'}


def test_a_push_refused_over_budget_is_said_in_the_summary():
  # The pusher's refusal is tested in test_tflite_pusher.py, the budget's
  # way to the pusher in test_wiring.py; this is its line in the summary.
  summary = {'run_id': 'r', 'components': [], 'pushed': {
      'pushed': 0, 'budget_exceeded': 'max_tflite_bytes',
      'reason': 'over the device budget: TFLite model 96,000 bytes, '
                '46,000 over max_tflite_bytes 50,000'}}
  assert ('TFLite model not pushed: over the device budget: TFLite model '
          '96,000 bytes') in summary_lib.format_summary(summary)


@pytest.mark.e2e
def test_an_int8_search_under_an_arena_budget_pushes_a_board_model(
    workspace, capsys):
  arena_budget = 262_144
  config = _config(workspace, quantization='int8', max_tflite_bytes=0,
                   max_arena_bytes=arena_budget, micro_examples=8,
                   pipeline_name='board')
  summary = run.run_pipeline(config)
  store = mlmd.open_store(config.metadata_url(), read_only=True)
  table = inspection.trials(store, config.pipeline_name)
  assert table['budget']['max_arena_bytes'] == arena_budget
  # Every trial ran in TFLM and records its arena.
  assert all(r['arena_bytes'] > 0 for r in table['trials']), table
  assert all(r['within_budget'] == (r['arena_bytes'] <= arena_budget)
             for r in table['trials'])
  pushed = summary['pushed']
  assert pushed['pushed'] == 1, pushed
  assert 0 < pushed['arena_bytes'] <= arena_budget
  assert pushed['micro_identical'] == 1.0
  said = summary_lib.format_summary(summary)
  assert f"TensorFlow Lite Micro: arena {pushed['arena_bytes']:,} bytes" in said
  assert 'waveform' not in said.lower()  # image spans: nothing to say
  capsys.readouterr()
  assert cli.main(['inspect', 'trials', '--workspace', workspace,
                   '--pipeline-name', 'board']) == 0
  text = capsys.readouterr().out
  for record in table['trials']:
    assert f"arena {record['arena_bytes']:>9,}" in text
  # The report draws the trials against RAM as well.
  page = report.build_report(config, summary['run_id'])[1]
  section = page[page.index('<section id="search">'):]
  assert section[:section.index('</section>')].count(
      '<svg class="chart trials"') == 3
  # ... and the pushed model's arena beside its other figures.
  section = page[page.index('<section id="tflite">'):]
  assert str(pushed['arena_bytes']) in section[:section.index('</section>')]
