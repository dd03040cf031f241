"""End to end: the whole pipeline on a small data set, run three times.

The session's golden workspace (`golden` in conftest.py) holds the runs:
the first executes every component and pushes TFLite version 1; the second
finds the model blessed by the first as its baseline, so, as in TFX's own
penguin e2e test, only the Evaluator and the pusher run again (the pusher
sees the same model and pushes nothing new), with the data gate, whose
drift baseline is now the span itself; the third is served entirely from
the cache, adding no artifact to ML Metadata. These tests only read it.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import GOLDEN_SETTINGS
from conftest import golden_flags
from conftest import run_cli
from components import contracts
from components.cloud import push as cloud_push
from components.common import pairing
from components.modules import features
from components.ondevice import push
from pipeline.cli import commands as cli
from pipeline.settings import config as config_lib
from pipeline.settings import files
from pipeline.data import ingest
from pipeline.metadata import inspection
from pipeline.metadata import lineage
from pipeline.metadata import mlmd
from pipeline.metadata import summary as summary_lib
from pipeline.reporting import report

pytestmark = pytest.mark.e2e

COMPONENTS = {'ImportExampleGen', 'ImportSchemaGen', 'StatisticsGen',
              'ExampleValidator', 'DataGate', 'AcceptSpan', 'SpanWindow',
              'Transform', 'Trainer', 'Evaluator', 'TFLiteConverter',
              'TFLitePusher'}


def _states(summary):
  return {c['node']: c['state'] for c in summary['components']
          if c['node'] in COMPONENTS}


def _trained(store, config):
  """Phase one's Trainer's models (not the TFLite converter's
  candidates)."""
  return [model for model in store.get_artifacts_by_type('Model')
          if model.uri.startswith(os.path.join(config.pipeline_root,
                                               'Trainer', ''))]


def _assert_recalls_agree(found):
  """Phase two's blessing figures (its TFMA metrics) against each class's
  recall read from the confusion matrix its Evaluator wrote."""
  reject, *families = found['classes']
  named = [found['recall'][name] for name in families
           if found['recall'][name] is not None]
  assert named, found['recall']
  assert found['metrics']['mean_family_recall'] == pytest.approx(
      sum(named) / len(named), abs=1e-3), found
  assert found['metrics']['reject_recall'] == pytest.approx(
      found['recall'][reject], abs=1e-3), found


def test_ingesting_the_same_folder_twice_adds_one_span(golden):
  assert [code for code, _, _ in golden.ingests] == [0, 0]
  assert ingest.list_spans(os.path.join(golden.workspace, 'data')) == [1]


def test_a_first_run_shows_its_progress_and_no_traceback(golden):
  err = golden.consoles[0]
  # Every component's start and end are shown while the run goes, in order
  # (they used to vanish after Transform's SavedModel export).
  for node in COMPONENTS:
    running = err.index(f'pipeline: Component {node} is running.')
    assert running < err.index(f'pipeline: Component {node} is finished.')
  assert err.index('Component Transform is finished') < err.index(
      'Component Trainer is running')
  # The first run's drift-baseline resolver finds nothing: TFX logs that as
  # an error with a traceback, which is no news to a user.
  assert 'latest_data_baseline_resolver' in err
  assert 'Traceback' not in err and 'InputResolutionError' not in err
  assert "Couldn't find python-snappy" not in err
  for console in golden.consoles:
    assert 'Traceback' not in console


def test_pipeline_runs_then_is_served_from_the_cache(golden, small_spectrograms,
                                                     capsys):
  workspace, config = golden.workspace, golden.config
  first, second, third = golden.runs
  assert _states(first) == {node: 'ran' for node in COMPONENTS}
  assert first['blessed'] is True
  assert first['metrics']['example_count'] > 0
  manifest = push.read_manifest(os.path.join(config.push_destination, '1'))
  # TFMA's AUC (the Evaluator's) is the one the converter computes itself
  # on the same eval split with the same SavedModel (the manifest's
  # `savedmodel_auc`): two ways to one figure, which a mis-wired label,
  # split or score would part.
  assert first['metrics']['example_count'] == manifest.validation['examples']
  assert first['metrics']['auc'] == pytest.approx(
      manifest.validation['savedmodel_auc'], abs=0.02)
  assert os.path.isfile(os.path.join(first['model_path'], 'saved_model.pb'))
  assert 0 < first['transformed']['disk_bytes_per_example'] < 64 * 64 * 3
  assert first['pushed']['pushed'] == 1
  assert first['pushed']['pushed_version'] == '1'
  assert push.latest_version(config.push_destination) == 1
  assert manifest.quantization == 'dynamic'
  assert manifest.input_tensor['shape'] == [1, 64, 64, 3]

  store = mlmd.open_store(config.metadata_url(), read_only=True)
  models = _trained(store, config)
  assert len(models) == 1

  states = _states(second)
  assert states.pop('Evaluator') == 'ran'  # its baseline is now blessed
  # A new blessing as input: converted again, the same model found pushed.
  assert states.pop('TFLiteConverter') == 'ran'
  assert states.pop('TFLitePusher') == 'ran'
  assert states.pop('DataGate') == 'ran'  # span 1 is now its baseline
  assert set(states.values()) == {'cached'}
  assert second['model_path'] == first['model_path']
  assert second['pushed']['pushed_version'] == '1'
  assert push.versions(config.push_destination) == [1]

  assert set(_states(third).values()) == {'cached'}
  assert golden.artifacts[2] == golden.artifacts[1]
  assert len(_trained(store, config)) == 1
  assert len(mlmd.pipeline_runs(store, config.pipeline_name)) == 3
  assert 'Trainer' in summary_lib.format_summary(third)
  # Flat class folders: phase one alone, and the run says so.
  assert first['phase_two'] == {'trained': False,
                                'reason': summary_lib.NO_PHASE_TWO}
  assert 'Phase two: not trained: ' in summary_lib.format_summary(first)
  assert 'PhaseTwoTrainer' not in {c['node'] for c in first['components']}
  assert manifest.families.given is False
  # Phase one's threshold, chosen on the pushed TFLite model, is in the
  # manifest, on the PushedModel and in the summary.
  assert manifest.threshold.value == pytest.approx(
      first['pushed']['threshold'], abs=1e-4)
  assert manifest.threshold.figures['target_recall'] == 0.95
  assert 'Phase one decides at' in summary_lib.format_summary(first)

  # `inspect` answers from ML Metadata agree with the runs.
  rows = inspection.runs(store, config.pipeline_name)
  assert [r['run_id'] for r in rows] == [third['run_id'], second['run_id'],
                                         first['run_id']]
  assert set(rows[2]['ran']) >= COMPONENTS and not rows[2]['cached']
  assert set(rows[0]['cached']) >= COMPONENTS and not rows[0]['failed']
  assert set(rows[1]['ran']) >= {'Evaluator', 'TFLitePusher', 'DataGate'}
  assert rows[2]['pushed_version'] == '1'
  assert [r['spans'] for r in rows] == [[1], [1], [1]]
  assert 'spans 1  ran' in inspection.format_runs(rows)
  # The summary's time and inspect's are told apart, and inspect's is one
  # of the summary's.
  assert rows[2]['seconds'] == first['components_seconds']
  assert (f"(the components {first['components_seconds']:.1f} s, as "
          'inspect runs says') in summary_lib.format_summary(first)
  pushed = inspection.artifacts(store, 'PushedModel')
  assert [p['properties']['pushed_version'] for p in pushed] == ['1', '1']
  assert {a['type'] for a in inspection.artifacts(store)} >= {
      'Examples', 'Model', 'ModelBlessing', 'PushedModel', 'Schema'}
  # Statistics and anomalies show the span they were made from (TFX
  # records span 0 on them).
  for kind in ('ExampleStatistics', 'ExampleAnomalies'):
    made = inspection.artifacts(store, kind)
    assert made and {a['properties'].get('span') for a in made} == {1}, made
  evaluated = inspection.metrics(store, config.pipeline_name, last=5)
  assert [r['run_id'] for r in evaluated] == [third['run_id'],
                                              second['run_id'],
                                              first['run_id']]
  for name in ('auc', 'binary_accuracy', 'example_count'):
    assert evaluated[-1]['metrics'][name] == first['metrics'][name]
  assert evaluated[-1]['tflite']['pushed_version'] == '1'
  assert 'auc' in inspection.format_metrics(evaluated)

  # The lineage of the pushed model reaches the ingested span.
  chain = lineage.model_lineage(store, lineage.find_pushed_model(
      store, push_destination=config.push_destination))
  assert chain['pushed_model']['pushed_version'] == '1'
  assert chain['pushed_model']['id'] == min(p['id'] for p in pushed)
  assert chain['blessing']['blessed'] is True
  assert chain['evaluation']['metrics']['auc'] == first['metrics']['auc']
  assert chain['model']['id'] == models[0].id
  assert chain['trainer']['run_id'] == first['run_id']
  assert chain['trainer']['train_args']['num_steps'] == GOLDEN_SETTINGS[
      'train_steps']
  assert chain['trainer']['custom_config']['image_size'] == 64
  assert chain['schema']['schema_file'].endswith('schema.pbtxt')
  assert chain['transform_graph']['uri'].startswith(config.pipeline_root)
  [examples] = chain['examples']
  assert examples['spans'] == [1] and examples['recorded']
  assert examples['sources'][1]['source'] == small_spectrograms
  assert examples['sources'][1]['counts'] == {'not_instrument': 24,
                                              'instrument': 24}
  [span1] = examples['span_examples']
  assert span1['span'] == 1
  assert span1['statistics']['type'] == 'ExampleStatistics'
  assert span1['anomalies']['blessed'] == {'all': 1.0}
  names = {n['name'] for n in chain['graph']['nodes']}
  assert names >= {'ImportExampleGen', 'SpanWindow', 'Transform', 'Trainer',
                   'Evaluator', 'TFLitePusher', 'Examples', 'Model',
                   'PushedModel'}
  path_chain = lineage.model_lineage(store, lineage.find_pushed_model(
      store, path=os.path.join(config.push_destination, '1', 'model.tflite')))
  assert path_chain['pushed_model']['id'] == chain['pushed_model']['id']
  [row] = lineage.models_from_span(store, 1)
  assert [p['version'] for p in row['pushed']] == ['1']
  assert [m['id'] for m in row['models']] == [models[0].id]

  # ... and so do the commands, in words.
  capsys.readouterr()
  assert cli.main(['inspect', 'lineage', '--workspace', workspace]) == 0
  text = capsys.readouterr().out
  assert 'Pushed model v1' in text and 'data span 1' in text
  assert small_spectrograms in text
  assert cli.main(['inspect', 'lineage', '--workspace', workspace,
                   '--span', '1']) == 0
  assert 'pushed v1 (dynamic)' in capsys.readouterr().out
  assert cli.main(['inspect', 'lineage', 'v7', '--workspace', workspace]) == 2
  assert 'No pushed model version 7' in capsys.readouterr().err
  # They read ML Metadata and TFMA's files without TensorFlow, as the other
  # inspect commands do (TensorFlow alone costs seconds and 500 MB).
  code = ('import sys\n'
          'from pipeline.cli import commands\n'
          f"codes = [commands.main(['inspect', what, '--workspace', "
          f"{workspace!r}]) for what in ('lineage', 'metrics', 'runs')]\n"
          "print(codes, 'tensorflow' in sys.modules)\n")
  done = subprocess.run([sys.executable, '-c', code], capture_output=True,
                        text=True, timeout=300, check=False,
                        cwd=os.path.dirname(os.path.dirname(__file__)))
  assert done.stdout.splitlines()[-1] == '[0, 0, 0] False', done.stderr



def test_each_run_writes_a_report_of_its_own_figures(golden, small_spectrograms,
                                                    tmp_path):
  config = golden.config
  paths = [re.search(r'^Report: (.+)$', err, re.M).group(1)
           for err in golden.consoles]
  assert len(set(paths)) == 3
  path = paths[-1]
  store = mlmd.open_store(config.metadata_url(), read_only=True)
  newest = mlmd.pipeline_runs(store, config.pipeline_name)[0].name
  assert path == report.report_path(config, newest)
  with open(path, encoding='utf-8') as f:
    page = f.read()

  # Self-contained: nothing is fetched, no script runs; the sample images
  # are inline.
  assert not re.search(r'<script|<link|@import', page)
  sources = re.findall(r'\bsrc="([^"]*)"', page)
  assert len(sources) >= 8  # 4 per class, then the misclassified ones
  assert all(s.startswith('data:image/png;base64,') for s in sources)
  assert set(re.findall(r'url\(([^)]*)\)', page)) <= {'#arrow'}
  assert set(re.findall(r'href="([^"]*)"', page)) == set()

  # The figures are the run's own.
  [evaluated] = inspection.metrics(store, config.pipeline_name, last=1)
  # The run recorded the settings it used; `inspect settings` prints them
  # as a file `--config` reads back.
  recorded = inspection.settings(store, config.pipeline_name)
  assert recorded['run_id'] == newest
  assert recorded['settings']['image_size'] == 64
  assert recorded['settings']['train_steps'] == GOLDEN_SETTINGS['train_steps']
  settings_file = tmp_path / 'settings.toml'
  settings_file.write_text(inspection.format_settings(recorded))
  assert files.load_settings_file(str(settings_file)) == {
      name: tuple(value) if isinstance(value, list) else value
      for name, value in recorded['settings'].items()}
  counts = [int(c) for c in re.findall(r'class="count">(\d+)<', page)]
  assert len(counts) == 4
  assert sum(counts) == evaluated['metrics']['example_count']
  splits = dict(re.findall(r'<h3>(\w+) split: (\d+) examples</h3>', page))
  assert splits == {'all': '48'}  # the new span: 24 clips per class
  assert re.search(r'not_instrument \d+ \(\d+\.\d%\), instrument', page)
  assert f"{evaluated['metrics']['auc']:.4g}" in page
  assert '&gt;= 0.0' in page  # the AUC and accuracy lower bounds
  assert 'v1 (this run)' in page
  assert small_spectrograms in page  # lineage reaches the ingested folder
  assert 'None: every split matches the schema' in page
  assert 'The run trained on these spans.' in page
  assert 'Against span 1;' in page  # span 1 is its own baseline by now
  # At the threshold phase one ships with, as the confusion matrix is.
  shipped, wrong, scored = re.search(
      r'Misclassified eval examples at ([0-9.]+): (\d+) of (\d+)',
      page).groups()
  wrong, scored = int(wrong), int(scored)
  pushed = mlmd.pushed_summary(lineage.tflite_pushed_models(store)[-1])
  assert float(shipped) == pytest.approx(pushed['threshold'], abs=1e-4)
  assert f'Confusion matrix at threshold {pushed["threshold"]:.3f}' in page
  assert scored == evaluated['metrics']['example_count']
  assert len(sources) == 8 + min(wrong, 12)


@pytest.fixture(name='family_run', scope='module')
def _family_run(tmp_path_factory, small_spectrograms):
  """One cold run on the golden clips with each kind of instrument sound
  in a family folder (instrument/chord/, instrument/drums/, ...): (workspace,
  summary, what it printed)."""
  root = tmp_path_factory.mktemp('families')
  data = root / 'spectrograms'
  for class_name in ('not_instrument', 'instrument'):
    for name in os.listdir(os.path.join(small_spectrograms, class_name)):
      folder = data / class_name / (name.split('_')[0]
                                    if class_name == 'instrument' else '')
      folder.mkdir(parents=True, exist_ok=True)
      shutil.copy(os.path.join(small_spectrograms, class_name, name),
                  folder / name)
  workspace = str(root / 'workspace')
  assert run_cli('ingest', '--workspace', workspace, str(data))[0] == 0
  code, out, err = run_cli('run', '--workspace', workspace, '--json',
                           *golden_flags())
  assert code == 0, err
  return workspace, json.loads(out[out.index('{\n'):]), out + err


def test_spans_with_families_train_and_evaluate_phase_two(family_run, capsys):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  workspace, summary, console = family_run
  states = {c['node']: c['state'] for c in summary['components']}
  assert states['PhaseTwoTrainer'] == states['PhaseTwoEvaluator'] == 'ran'
  # Its training shows its progress, as phase one's does.
  assert 'phase two: step 4/4 loss' in console
  found = summary['phase_two']
  assert found['classes'] == ['not_instrument', 'chord', 'drums', 'melody',
                              'note']
  assert 0.0 <= found['metrics']['sparse_categorical_accuracy'] <= 1.0
  # Blessed on what it is for: both figures recorded by its Evaluator,
  # each what the confusion matrix its plots hold gives (read apart).
  assert found['metrics']['example_count'] > 0
  assert set(found['recall']) == set(found['classes'])
  _assert_recalls_agree(found)
  assert isinstance(found['blessed'], bool)
  assert 'Phase two: 5 classes, mean family recall' in (
      summary_lib.format_summary(summary))

  # Phase one's model is the one pushed, and its manifest names the
  # families of the cloud phase it pairs with.
  config = config_lib.PipelineConfig(workspace=workspace, **GOLDEN_SETTINGS)
  store = mlmd.open_store(config.metadata_url(), read_only=True)
  models = store.get_artifacts_by_type('Model')
  # Phase one's, the TFLite converter's candidate, phase two's.
  assert len(models) == 3
  [phase_one] = [model for model in models
                 if model.uri.startswith(os.path.join(config.pipeline_root,
                                                      'Trainer', ''))]
  chain = lineage.model_lineage(store, lineage.find_pushed_model(
      store, push_destination=config.push_destination))
  assert chain['model']['id'] == phase_one.id
  # Phase two's pushed model has a lineage of its own: its Trainer's model,
  # its Evaluator's blessing, the same window of spans.
  cloud = lineage.model_lineage(store, lineage.find_pushed_model(
      store, phase=2), phase=2)
  assert cloud['model']['uri'].startswith(
      os.path.join(config.pipeline_root, 'PhaseTwoTrainer', ''))
  assert cloud['evaluation']['metrics'][
      contracts.PhaseTwoEvaluator.MEAN_FAMILY_RECALL] == pytest.approx(
          summary['phase_two']['metrics'][
              contracts.PhaseTwoEvaluator.MEAN_FAMILY_RECALL])
  assert cloud['pushed_model']['model_name'] == 'instruments'
  assert [e['spans'] for e in cloud['examples']] == [
      e['spans'] for e in chain['examples']]
  capsys.readouterr()
  assert cli.main(['inspect', 'lineage', '1', '--phase', 'two',
                   '--workspace', workspace]) == 0
  text = capsys.readouterr().out
  assert text.startswith('Pushed phase two instruments v1, artifact ')
  assert '<- PhaseTwoTrainer execution' in text and 'data span' in text
  assert summary['model_path'].startswith(
      os.path.join(config.pipeline_root, 'Trainer'))
  manifest = push.read_manifest(os.path.join(config.push_destination, '1'))
  assert manifest.families.to_json() == {'given': True, 'names': [
      'chord', 'drums', 'melody', 'note'], 'pairing_key': pairing.key(
          'not_instrument', ['chord', 'drums', 'melody', 'note'], None)}
  assert manifest.class_names == ['not_instrument', 'instrument']

  # The serving model is proved in KServe's model server (an
  # InfraBlessing), pushed where a model server loads it, and answers an
  # image as phase two's SavedModel does.
  assert states['PhaseTwoServingCheck'] == states['PhaseTwoPusher'] == 'ran'
  check = found['serving_check']
  assert (check['blessed'], check['server']) == (1, 'kserve'), check
  assert check['server_requests'] == check['check_requests'] > 0
  assert check['server_max_score_difference'] <= 1e-4
  assert found['pushed']['pushed'] == 1
  served_dir = os.path.join(config.serving_destination, 'instruments', '1')
  assert found['pushed']['pushed_destination'] == served_dir
  assert found['pushed']['server_requests'] == check['server_requests']
  served = cloud_push.read_manifest(served_dir)
  assert served.classes == found['classes']
  # The pair: phase one's manifest names the phase two it works with.
  assert served.pairing_key and (
      manifest.pairing_key == served.pairing_key)
  assert served.families == ['chord', 'drums', 'melody', 'note']
  assert served.request == 'image_bytes'
  assert 'Phase two pushed as instruments version 1' in (
      summary_lib.format_summary(summary))
  assert "KServe's model server: ready in" in summary_lib.format_summary(
      summary)
  # The pair judged together before either push: phase one's candidate
  # routes at its threshold, phase two names; nothing was pushed before,
  # so the gate compares with no earlier pair, and it blessed this one.
  assert states['CascadeEvaluator'] == 'ran'
  cascade = found['cascade']
  assert cascade['threshold'] == pytest.approx(
      summary['pushed']['threshold'], abs=1e-4)
  assert 0.0 <= cascade['accuracy_pi_0.2'] <= 1.0
  assert cascade['cloud_alone_pi_0.2'] is not None
  assert cascade['phase_one'] == "this run's candidate"
  assert cascade['baseline'] == 'no phase one was pushed before'
  assert cascade['blessed'] is True, cascade
  text = summary_lib.format_summary(summary)
  assert "Cascade (this run's candidate at" in text
  assert 'the pair is blessed: both phases may be pushed' in text

  # Phase two's SavedModel answers raw examples with each class's score.
  loaded = tf.saved_model.load(found['model_path'])
  image = next(iter(sorted(
      os.path.join(folder, name) for folder, _, names in os.walk(
          os.path.join(workspace, '..', 'spectrograms', 'instrument'))
      for name in names)))
  with open(image, 'rb') as f:
    example = tf.train.Example(features=tf.train.Features(feature={
        features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[f.read()]))})).SerializeToString()
  answer = loaded.signatures[features.SERVING_EXAMPLES_SIGNATURE](
      examples=tf.constant([example]))
  assert [c.decode() for c in answer['classes'].numpy()[0]] == found[
      'classes']
  np.testing.assert_allclose(answer['scores'].numpy().sum(), 1.0, rtol=1e-5)
  with open(image, 'rb') as f:
    by_server = tf.saved_model.load(served_dir).signatures[
        features.SERVING_EXAMPLES_SIGNATURE](image_bytes=tf.constant(
            [f.read()]))
  np.testing.assert_allclose(by_server['scores'].numpy(),
                             answer['scores'].numpy(), atol=1e-5)

  # `inspect cascade` shows the pair: the threshold and why, the figures at
  # each instrument share, recall by family, the gate, both pushes.
  judged = inspection.cascade(store, config.pipeline_name)
  assert judged['blessed'] is True
  assert judged['phase_one']['pushed'] == judged['phase_two']['pushed'] == 1
  assert set(judged['figures']['families']) <= set(found['classes'][1:])
  text = inspection.format_cascade(judged)
  for words in ('Phase one decides at', 'end-to-end recall by family',
                'gate: blessed', 'phase one: pushed version 1',
                'phase two: pushed version 1', '  20% '):
    assert words in text, text

  # `inspect metrics` shows its accuracy and recall beside phase one's.
  [evaluated] = inspection.metrics(store, config.pipeline_name, last=1)
  assert evaluated['phase_two']['phase_two_accuracy'] == found['metrics'][
      'sparse_categorical_accuracy']
  assert evaluated['phase_two']['phase_two_family_recall'] == found[
      'metrics']['mean_family_recall']
  assert 'recall drums' in inspection.format_metrics([evaluated])

  # The report shows phase two and the families.
  path = re.search(r'^Report: (.+)$', console, re.M).group(1)
  with open(path, encoding='utf-8') as f:
    page = f.read()
  assert 'Phase two (the cloud model)' in page
  assert '5 classes: not_instrument, chord, drums, melody, note' in page
  assert 'labels of the cloud phase): chord, drums, melody, note.' in page
  assert 'Pushed as instruments version 1' in page
  # ... and the cascade: each share of instruments, each family, the curve.
  assert '<h3>The cascade</h3>' in page
  assert 'As phase one&#39;s threshold moves' in page or (
      "As phase one's threshold moves" in page)
