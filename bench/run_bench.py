"""The benchmark suite: our pipeline against the notebook way, side by side.

`make bench` runs it on this machine and writes `bench/RESULTS.md` and
`bench/results.json`. Thirteen parts:

1. Pipeline vs notebook: wall time of a cold pipeline run (ingest + run, in
   a fresh workspace, as a new process), of the reruns served from the
   cache, and of `bench/notebook.py` (flow_from_directory, fit, TFLite
   conversion, interpreter predictions) on the same images, the same model
   and the same number of steps; medians of `--repeats` runs; time per
   component.
2. Input throughput: images per second delivered by the Trainer's input
   (transformed examples through tf.data) and by flow_from_directory over
   the same images, without the model.
3. The pushed model per quantization mode: size, accuracy and AUC on the
   eval split, single-image latency (one thread, after warm-up, median of
   `--invokes` invokes), beside the Keras model's `predict` on one image and
   a batched `model(x)` call.
4. Scale: the pipeline at 1x, 4x and 8x the default data: time per
   component, bytes per transformed example, peak memory of the run's
   process tree.
5. History: 8 spans of 1x each (the synthesizer with seeds 1 to 8),
   ingested and run one after another in one workspace with the default
   window of 3 spans. Once the window is full, history must cost nothing:
   run 8's time and peak memory against run 3's (both train on 3 spans).
6. Storage layer: a cold default run (ingest + run, local disk, SQLite) of
   this checkout against the same of `--baseline`, the commit before every
   file went through `components/common/storage.py` and ML Metadata through a URL;
   the two take turns, `--repeats` times each, on the same data. The local
   default must stay within 5%.
7. Beam profiles: a cold run (ingest + run) with `--beam local` and with
   `--beam portable` (every DoFn in SDK worker processes of a worker pool)
   at 1x and 8x the default data, taking turns: time per component and
   peak memory of the whole process tree (runner, pool and its workers).
   No target; it shows what the portable profile costs on one machine.

8. Model search: on the 1x default data, a default run and a run with
   `--tune true --tune-trials 6` under a size budget (`--search-budget`,
   default half the default model's bytes): time per trial, and the chosen
   model against the default one in bytes, AUC and latency (both pushed
   files timed side by side, taking turns).
9. Width study: every width the search offers, trained on the 1x default
   data at the default steps with `--width-seeds` seeds each, in one
   workspace (Transform runs once; each run trains, evaluates and pushes):
   eval AUC and accuracy (mean and spread), pushed bytes, latency, Trainer
   seconds and the run's peak memory, per width, and the width the
   default's rule (:data:`WIDTH_RULE`) picks from them; a chart in
   `bench/width_study.svg`.
10. Width side by side: cold runs of the default width and of a narrower
   one (`--side-width`), and `bench/notebook.py` building the narrower
   model, taking turns; both pushed files' bytes and latency side by side.
11. Audio: ingest throughput at 16 kHz and 44.1 kHz stereo against a plain
   SciPy read and render loop; a model trained on 16 kHz recordings scored
   on held-out clips at 16, 44.1 (stereo) and 48 kHz; `predict --stream`'s
   real-time factor on one core and its memory over 6 and 60 minutes.
12. The waveform model: bytes and single-window latency against the image
   model and the NumPy front end's time, in dynamic and int8 modes.
13. The board: the default model in int8 and the search under a 256 KB
   arena budget; TensorFlow Lite Micro's arena and latency per image, the
   outputs against LiteRT's, the C array compiled.

Every timed run is a separate process, so each pays for its own start-up,
as a user's does. Work files go to `bench/out/` (git-ignored).
"""

import argparse
import datetime
import glob
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pipeline  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position

DEFAULT_PER_CLASS = 1000
LATENCY_ROUNDS = 5
# Settings every `python -m pipeline run` of the suite gets (see main).
RUN_ARGS: List[str] = []
CLASSES = ('not_instrument', 'instrument')


def log(message: str) -> None:
  print(f'[{datetime.datetime.now():%H:%M:%S}] bench: {message}', flush=True)


# --------------------------------------------------------------- processes


def _tree_rss(process) -> int:
  import psutil  # pylint: disable=g-import-not-at-top
  total = 0
  try:
    members = [process] + process.children(recursive=True)
  except psutil.Error:
    return 0
  for member in members:
    try:
      total += member.memory_info().rss
    except psutil.Error:
      pass
  return total


def run_process(args: List[str], log_path: str,
                root: str = ROOT) -> Dict[str, Any]:
  """Runs a command in checkout `root`; returns wall seconds, CPU seconds
  (user + system of the command and every process it waited for), peak
  tree RSS and its stdout. CPU seconds move less than wall seconds when
  something else loads this noisy machine.

  Raises:
    RuntimeError: when the command fails (its log is named).
  """
  import psutil  # pylint: disable=g-import-not-at-top
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1', TF_CPP_MIN_LOG_LEVEL='3',
             PYTHONHASHSEED='0', PYTHONPATH=root)
  started = time.time()
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  with open(log_path, 'w', encoding='utf-8') as err:
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err,
                               cwd=root, env=env, text=True)
    watched = psutil.Process(process.pid)
    peak = [0]
    done = threading.Event()

    def sample():
      while not done.is_set():
        peak[0] = max(peak[0], _tree_rss(watched))
        done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    done.set()
    sampler.join()
  seconds = time.time() - started
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
  if process.returncode != 0:
    raise RuntimeError(f'{" ".join(args)} failed ({process.returncode}); '
                       f'see {log_path}')
  return {'seconds': seconds, 'cpu_seconds': cpu, 'peak_rss_bytes': peak[0],
          'stdout': out}


def cli(*args: str) -> List[str]:
  return [sys.executable, '-m', 'pipeline', *args]


def synth(data_dir: str, per_class: int, seed: int, log_dir: str) -> None:
  # Images: the notebook script reads them with flow_from_directory. The
  # default front end draws the default recordings as exactly these images.
  run_process(cli('synth', '--out', data_dir, '--per-class', str(per_class),
                  '--seed-data', str(seed), '--format', 'png'),
              os.path.join(log_dir, f'synth-{per_class}.log'))


def pipeline_run(workspace: str, data_dir: str, log_dir: str, tag: str,
                 ingest: bool = True, extra: Tuple[str, ...] = (),
                 root: str = ROOT) -> Dict[str, Any]:
  """Ingest (optionally) then run with the checkout at `root`; returns
  times, memory and the summary."""
  result: Dict[str, Any] = {}
  if ingest:
    ingested = run_process(cli('ingest', '--workspace', workspace, data_dir),
                           os.path.join(log_dir, f'{tag}-ingest.log'), root)
    result['ingest_seconds'] = ingested['seconds']
  ran = run_process(cli('run', '--workspace', workspace, '--json',
                        *RUN_ARGS, *extra),
                    os.path.join(log_dir, f'{tag}-run.log'), root)
  summary = _last_json(ran['stdout'])
  result.update(run_seconds=ran['seconds'],
                run_cpu_seconds=ran['cpu_seconds'],
                peak_rss_bytes=ran['peak_rss_bytes'],
                components={c['node']: c['seconds']
                            for c in summary['components']},
                summary=summary)
  return result


def _bytes_per_example(summary: Dict[str, Any]) -> Optional[float]:
  return (summary.get('transformed') or {}).get('disk_bytes_per_example')


def _last_json(stdout: str) -> Dict[str, Any]:
  """The JSON document printed last (progress lines come before it)."""
  lines = stdout.splitlines()
  start = max(i for i, line in enumerate(lines) if line == '{')
  return json.loads('\n'.join(lines[start:]))


def median(values: List[float]) -> float:
  return float(statistics.median(values)) if values else float('nan')


# ------------------------------------------------------------------ parts


def part_pipeline_vs_notebook(data_dir: str, out: str, repeats: int,
                              steps: int, per_class: int) -> Dict[str, Any]:
  """Part 1; also leaves the first workspace for parts 2 and 3."""
  logs = os.path.join(out, 'logs')
  cold, notebook = [], []
  keep = os.path.join(out, 'ws-1x')
  reruns: Dict[str, List[float]] = {'second': [], 'third': []}
  for index in range(repeats):
    workspace = keep if index == 0 else os.path.join(out, f'ws-cold-{index}')
    shutil.rmtree(workspace, ignore_errors=True)
    log(f'part 1: cold pipeline run {index + 1}/{repeats}')
    result = pipeline_run(workspace, data_dir, logs, f'cold{index}')
    cold.append(result)
    log(f"  ingest {result['ingest_seconds']:.1f} s, run "
        f"{result['run_seconds']:.1f} s")
    for which in ('second', 'third'):
      again = pipeline_run(workspace, data_dir, logs, f'{which}{index}',
                           ingest=False)
      reruns[which].append(again['run_seconds'])
      log(f"  {which} run {again['run_seconds']:.1f} s")
    if workspace != keep:
      shutil.rmtree(workspace, ignore_errors=True)
    log(f'part 1: notebook script run {index + 1}/{repeats}')
    ran = run_process([sys.executable, os.path.join(ROOT, 'bench',
                                                    'notebook.py'),
                       data_dir, os.path.join(out, 'notebook'), '--steps',
                       str(steps)],
                      os.path.join(logs, f'notebook{index}.log'))
    figures = json.loads(ran['stdout'].strip().splitlines()[-1])
    figures['wall_seconds'] = ran['seconds']
    figures['peak_rss_bytes'] = ran['peak_rss_bytes']
    notebook.append(figures)
    log(f"  notebook {ran['seconds']:.1f} s")

  components = sorted({c for r in cold for c in r['components']},
                      key=lambda c: list(cold[0]['components']).index(c)
                      if c in cold[0]['components'] else 99)
  cold_total = median([r['ingest_seconds'] + r['run_seconds'] for r in cold])
  return {
      'repeats': repeats,
      'images': 2 * per_class,
      'cold_ingest_seconds': median([r['ingest_seconds'] for r in cold]),
      'cold_run_seconds': median([r['run_seconds'] for r in cold]),
      'cold_total_seconds': cold_total,
      'second_run_seconds': median(reruns['second']),
      'cached_run_seconds': median(reruns['third']),
      'components': {c: median([r['components'].get(c, 0.0) for r in cold])
                     for c in components},
      'notebook_seconds': median([n['wall_seconds'] for n in notebook]),
      'notebook_phases': {k: median([n[k] for n in notebook]) for k in (
          'import_seconds', 'fit_seconds', 'keras_eval_seconds',
          'convert_seconds', 'tflite_predict_seconds')},
      'notebook_steps': notebook[0]['train_steps'],
      'notebook_accuracy': median([n['keras_accuracy'] for n in notebook]),
      'notebook_tflite_accuracy': median([n['tflite_accuracy']
                                          for n in notebook]),
      'notebook_tflite_bytes': notebook[0]['tflite_bytes'],
      'pipeline_metrics': cold[0]['summary'].get('metrics'),
      'transformed_bytes': _bytes_per_example(cold[0]['summary']),
      'pipeline_pushed': cold[0]['summary'].get('pushed'),
      'cold_runs': [{k: v for k, v in r.items() if k != 'summary'}
                    for r in cold],
      'notebook_runs': notebook,
  }


def part_storage_layer(data_dir: str, out: str, repeats: int,
                       baseline: str) -> Dict[str, Any]:
  """Part 6: cold default runs of this checkout and of `baseline`, in turns.
  """
  logs = os.path.join(out, 'logs')
  source = os.path.join(out, 'baseline-src')
  shutil.rmtree(source, ignore_errors=True)
  os.makedirs(source)
  commit = subprocess.run(['git', 'rev-parse', '--short', baseline], cwd=ROOT,
                          capture_output=True, text=True,
                          check=True).stdout.strip()
  archive = subprocess.run(['git', 'archive', commit], cwd=ROOT,
                           capture_output=True, check=True).stdout
  subprocess.run(['tar', '-x', '-C', source], input=archive, check=True)
  runs: Dict[str, List[Dict[str, Any]]] = {'baseline': [], 'current': []}
  for index in range(repeats):
    # Alternating, and each side first in turn, so drift of the machine
    # falls on both.
    order = ['baseline', 'current'] if index % 2 == 0 else [
        'current', 'baseline']
    for side in order:
      workspace = os.path.join(out, f'ws-storage-{side}')
      shutil.rmtree(workspace, ignore_errors=True)
      log(f'part 6: cold run of {side} {index + 1}/{repeats}')
      result = pipeline_run(workspace, data_dir, logs,
                            f'storage-{side}{index}',
                            root=source if side == 'baseline' else ROOT)
      result.pop('summary')
      result['total_seconds'] = (result['ingest_seconds']
                                 + result['run_seconds'])
      runs[side].append(result)
      log(f"  ingest {result['ingest_seconds']:.1f} s, run "
          f"{result['run_seconds']:.1f} s")
      shutil.rmtree(workspace, ignore_errors=True)
  shutil.rmtree(source, ignore_errors=True)
  medians = {side: {key: median([r[key] for r in rows]) for key in (
      'ingest_seconds', 'run_seconds', 'total_seconds', 'peak_rss_bytes')}
             for side, rows in runs.items()}
  return {'baseline': commit, 'repeats': repeats,
          'measured': f'{datetime.date.today()}', 'medians': medians,
          'runs': runs}


def part_beam_profiles(out: str, factors: List[int], per_class: int,
                       keep: bool) -> Dict[str, Any]:
  """Part 7: cold runs with the local and the portable Beam profile."""
  logs = os.path.join(out, 'logs')
  rows: Dict[str, Dict[str, Any]] = {}
  for factor in factors:
    folder = os.path.join(out, f'data-{factor}x')
    log(f'part 7: making {factor}x data')
    synth(folder, per_class * factor, 0, logs)
    for index, profile in enumerate(('local', 'portable')
                                    if factor % 2 else
                                    ('portable', 'local')):
      workspace = os.path.join(out, f'ws-beam-{profile}-{factor}x')
      shutil.rmtree(workspace, ignore_errors=True)
      log(f'part 7: {profile} at {factor}x ({index + 1}/2)')
      result = pipeline_run(workspace, folder, logs,
                            f'beam-{profile}-{factor}x',
                            extra=('--beam', profile))
      summary = result.pop('summary')
      result['examples'] = (summary.get('metrics') or {}).get(
          'example_count')
      rows[f'{profile}-{factor}x'] = dict(result, images=2 * per_class *
                                          factor)
      log(f"  run {result['run_seconds']:.1f} s, peak "
          f"{result['peak_rss_bytes'] / 2**20:.0f} MiB")
      if not keep:
        shutil.rmtree(workspace, ignore_errors=True)
    if not keep and factor != 1:
      shutil.rmtree(folder, ignore_errors=True)
  return {'measured': f'{datetime.date.today()}', 'factors': factors,
          'rows': rows}


def _pushed_figures(summary: Dict[str, Any]) -> Dict[str, Any]:
  pushed = summary.get('pushed') or {}
  return {'pushed': bool(pushed.get('pushed')),
          'pushed_bytes': pushed.get('pushed_bytes'),
          'tflite_auc': pushed.get('tflite_auc'),
          'evaluator_auc': (summary.get('metrics') or {}).get('auc'),
          'accuracy': (summary.get('metrics') or {}).get('binary_accuracy'),
          'destination': pushed.get('pushed_destination')}


def _latency_side_by_side(files: Dict[str, str], rounds: int = 5,
                          invokes: int = 300) -> Dict[str, float]:
  """Median single-image latency (one thread) of each TFLite file, the
  files taking turns: the median of `rounds` medians of `invokes`."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from components.tflite import conversion  # pylint: disable=g-import-not-at-top
  classifiers = {name: conversion.TFLiteClassifier(path)
                 for name, path in files.items()}
  medians: Dict[str, List[float]] = {name: [] for name in files}
  for _ in range(rounds):
    for name, classifier in classifiers.items():
      shape = classifier.input['shape'][1:]
      pixels = np.full(shape, 128.0, np.float32)
      medians[name].append(classifier.median_latency_ms(pixels,
                                                        runs=invokes))
  return {name: median(values) for name, values in medians.items()}


def part_search(data_dir: str, out: str, trials: int, budget: int,
                keep: bool) -> Dict[str, Any]:
  """Part 8: the device-aware model search against the default model."""
  logs = os.path.join(out, 'logs')
  runs: Dict[str, Dict[str, Any]] = {}
  workspace = os.path.join(out, 'ws-search-default')
  shutil.rmtree(workspace, ignore_errors=True)
  log('part 8: default run')
  default = pipeline_run(workspace, data_dir, logs, 'search-default')
  runs['default'] = dict(_pushed_figures(default['summary']),
                         run_seconds=default['run_seconds'])
  budget = budget or int(runs['default']['pushed_bytes']) // 2
  tuned_ws = os.path.join(out, 'ws-search-tuned')
  shutil.rmtree(tuned_ws, ignore_errors=True)
  log(f'part 8: --tune true --tune-trials {trials} --max-tflite-bytes '
      f'{budget}')
  tuned = pipeline_run(tuned_ws, data_dir, logs, 'search-tuned', extra=(
      '--tune', 'true', '--tune-trials', str(trials),
      '--max-tflite-bytes', str(budget)))
  runs['tuned'] = dict(_pushed_figures(tuned['summary']),
                       run_seconds=tuned['run_seconds'],
                       search_seconds=tuned['components'].get('ModelSearch'),
                       trainer_seconds=tuned['components'].get('Trainer'),
                       search=tuned['summary'].get('search'))
  runs['default']['trainer_seconds'] = default['components'].get('Trainer')
  listed = run_process(cli('inspect', 'trials', '--workspace', tuned_ws,
                           '--json'),
                       os.path.join(logs, 'search-trials.log'))
  table = _last_json(listed['stdout'])
  files = {name: os.path.join(figures['destination'], 'model.tflite')
           for name, figures in runs.items() if figures['pushed']}
  latency = _latency_side_by_side(files) if files else {}
  for name, value in latency.items():
    runs[name]['latency_ms'] = value
  log(f"  chosen trial {table.get('chosen_trial')}: "
      f"{runs['tuned'].get('pushed_bytes')} bytes against "
      f"{runs['default'].get('pushed_bytes')}")
  if not keep:
    for path in (workspace, tuned_ws):
      shutil.rmtree(path, ignore_errors=True)
  return {'measured': f'{datetime.date.today()}', 'budget': budget,
          'trials': table['trials'], 'chosen_trial': table['chosen_trial'],
          'runs': runs}


# The rule the default width follows, applied to part 9's table.
WIDTH_RULE = ('the narrowest width whose mean eval AUC and mean accuracy are '
              'both within 0.005 of the widest\'s, and whose spreads (max - '
              'min over the seeds) are no larger than the widest\'s')
_WIDTH_TOLERANCE = 0.005
# Every model must bless and push to be measured, whatever its quality.
_STUDY_GATES = ('--min-auc', '0', '--min-accuracy', '0', '--max-auc-drop',
                '1', '--max-accuracy-drop', '1')


def width_rows(runs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
  """Part 9's runs, one row per width (widest first): mean and spread
  (max - min) of AUC and accuracy over the seeds, and the means of the
  rest."""
  rows = []
  for width in sorted({r['width'] for r in runs}, reverse=True):
    mine = [r for r in runs if r['width'] == width]
    row: Dict[str, Any] = {'width': width, 'seeds': len(mine)}
    for key in ('auc', 'accuracy'):
      values = [r[key] for r in mine]
      row[key] = statistics.mean(values)
      row[f'{key}_spread'] = max(values) - min(values)
    for key in ('pushed_bytes', 'latency_ms', 'trainer_seconds',
                'peak_rss_bytes'):
      row[key] = statistics.mean(r[key] for r in mine)
    rows.append(row)
  return rows


def chosen_width(rows: List[Dict[str, Any]]) -> float:
  """The width :data:`WIDTH_RULE` picks from :func:`width_rows`."""
  widest = max(rows, key=lambda r: r['width'])
  fitting = [r for r in rows
             if r['auc'] >= widest['auc'] - _WIDTH_TOLERANCE
             and r['accuracy'] >= widest['accuracy'] - _WIDTH_TOLERANCE
             and r['auc_spread'] <= widest['auc_spread'] + 1e-12
             and r['accuracy_spread'] <= widest['accuracy_spread'] + 1e-12]
  return min(r['width'] for r in fitting)


def part_width_study(data_dir: str, out: str, seeds: int,
                     keep: bool) -> Dict[str, Any]:
  """Part 9: every width the search offers, `seeds` seeds each."""
  from components.modules import search  # pylint: disable=g-import-not-at-top
  logs = os.path.join(out, 'logs')
  workspace = os.path.join(out, 'ws-widths')
  shutil.rmtree(workspace, ignore_errors=True)
  runs = []
  for width in sorted(search.WIDTHS, reverse=True):
    for seed in range(seeds):
      log(f'part 9: width {width}, seed {seed}')
      result = pipeline_run(workspace, data_dir, logs,
                            f'width{width}-seed{seed}', ingest=not runs,
                            extra=('--model-width', str(width), '--seed',
                                   str(seed), *_STUDY_GATES))
      figures = _pushed_figures(result['summary'])
      pushed = result['summary'].get('pushed') or {}
      runs.append({'width': width, 'seed': seed,
                   'auc': figures['evaluator_auc'],
                   'accuracy': figures['accuracy'],
                   'pushed_bytes': figures['pushed_bytes'],
                   'latency_ms': pushed.get('latency_ms_median'),
                   'trainer_seconds': result['components'].get('Trainer'),
                   'peak_rss_bytes': result['peak_rss_bytes']})
      log(f"  AUC {figures['evaluator_auc']}, {figures['pushed_bytes']} "
          f"bytes, Trainer {result['components'].get('Trainer')} s")
  if not keep:
    shutil.rmtree(workspace, ignore_errors=True)
  rows = width_rows(runs)
  return {'measured': f'{datetime.date.today()}', 'seeds': seeds,
          'steps': int(RUN_ARGS[1]) if RUN_ARGS else None, 'runs': runs,
          'rows': rows, 'rule': WIDTH_RULE, 'chosen': chosen_width(rows)}


def part_width_side_by_side(data_dir: str, out: str, repeats: int,
                            steps: int, keep: bool,
                            narrow: float) -> Dict[str, Any]:
  """Part 10: the default width against a narrower one (`--side-width`),
  and the notebook script building the narrower model, taking turns: cold
  runs (ingest + run, fresh workspace), then both pushed files timed side
  by side."""
  from components.modules import model_defaults  # pylint: disable=g-import-not-at-top
  logs = os.path.join(out, 'logs')
  widths = [narrow, model_defaults.DEFAULT_WIDTH]
  sides = {f'width {w:g}': ('--model-width', str(w)) for w in widths}
  cold: Dict[str, List[Dict[str, Any]]] = {name: [] for name in sides}
  notebook: List[Dict[str, Any]] = []
  files: Dict[str, str] = {}
  for index in range(repeats):
    for name, extra in sides.items():
      tag = name.replace(' ', '')
      workspace = os.path.join(out, f'ws-side-{tag}')
      shutil.rmtree(workspace, ignore_errors=True)
      log(f'part 10: cold run, {name}, {index + 1}/{repeats}')
      result = pipeline_run(workspace, data_dir, logs, f'side-{tag}-{index}',
                            extra=extra)
      figures = _pushed_figures(result['summary'])
      cold[name].append({
          'total_seconds': result['ingest_seconds'] + result['run_seconds'],
          'trainer_seconds': result['components'].get('Trainer'),
          'peak_rss_bytes': result['peak_rss_bytes'], **figures})
      log(f"  {cold[name][-1]['total_seconds']:.1f} s, "
          f"{figures['pushed_bytes']} bytes, AUC {figures['evaluator_auc']}")
      if figures['pushed'] and index == repeats - 1:
        kept = os.path.join(out, f'side-{tag}.tflite')
        shutil.copyfile(os.path.join(figures['destination'], 'model.tflite'),
                        kept)
        files[name] = kept
      if not keep:
        shutil.rmtree(workspace, ignore_errors=True)
    log(f'part 10: notebook script, width {narrow:g}, {index + 1}/{repeats}')
    ran = run_process([sys.executable, os.path.join(ROOT, 'bench',
                                                    'notebook.py'),
                       data_dir, os.path.join(out, 'notebook-side'),
                       '--steps', str(steps), '--width', str(narrow)],
                      os.path.join(logs, f'side-notebook{index}.log'))
    notebook.append(dict(json.loads(ran['stdout'].strip().splitlines()[-1]),
                         wall_seconds=ran['seconds']))
    log(f"  notebook {ran['seconds']:.1f} s")
  latency = _latency_side_by_side(files) if files else {}
  rows = {}
  for name, runs in cold.items():
    rows[name] = {key: median([r[key] for r in runs if r[key] is not None])
                  for key in ('total_seconds', 'trainer_seconds',
                              'peak_rss_bytes', 'pushed_bytes',
                              'evaluator_auc', 'accuracy')}
    rows[name]['latency_ms'] = latency.get(name)
  return {'measured': f'{datetime.date.today()}', 'repeats': repeats,
          'widths': widths, 'rows': rows, 'runs': cold,
          'notebook_width': narrow,
          'notebook_seconds': median([n['wall_seconds'] for n in notebook]),
          'notebook_accuracy': median([n['keras_accuracy']
                                       for n in notebook]),
          'notebook_tflite_bytes': notebook[0]['tflite_bytes']}


def _side_lines(side: Dict[str, Any]) -> List[str]:
  """Part 10's section of the report."""
  narrow, wide = (f'width {w:g}' for w in side['widths'])
  rows = side['rows']
  new, old = rows[narrow], rows[wide]

  def ratio(key):
    if new.get(key) and old.get(key):
      return f'{new[key] / old[key]:.3f}'
    return 'n/a'

  lines = ['', f'## 10. Width {side["widths"][0]:g} against '
           f'{side["widths"][1]:g}, side by side', '',
           f"Cold runs (ingest + run in a fresh workspace) at both widths, "
           f"and `bench/notebook.py` building the width "
           f"{side['notebook_width']:g} model, taking turns, "
           f"{side['repeats']} time(s) each (measured {side['measured']}); "
           'medians. Latency: both pushed files timed side by side, one '
           'thread.', '',
           '| | cold run s | Trainer s | pushed bytes | latency ms | AUC | '
           'accuracy | peak MiB |', '|---|---|---|---|---|---|---|---|']
  for name, r in rows.items():
    latency = (f"{r['latency_ms']:.3f}" if r.get('latency_ms') is not None
               else 'n/a')
    lines.append(
        f"| {name} | {r['total_seconds']:.1f} | {r['trainer_seconds']:.1f} | "
        f"{r['pushed_bytes']:,.0f} | {latency} | {r['evaluator_auc']:.4f} | "
        f"{r['accuracy']:.4f} | {r['peak_rss_bytes'] / 2 ** 20:,.0f} |")
  lines.append(f"| {narrow} / {wide} | {ratio('total_seconds')} | "
               f"{ratio('trainer_seconds')} | {ratio('pushed_bytes')} | "
               f"{ratio('latency_ms')} | | | {ratio('peak_rss_bytes')} |")
  lines += ['', f"The notebook script: {side['notebook_seconds']:.1f} s, "
            f"Keras accuracy {side['notebook_accuracy']:.3f}, "
            f"{side['notebook_tflite_bytes']:,} bytes; the width "
            f"{side['widths'][0]:g} cold run takes "
            f"{new['total_seconds'] / side['notebook_seconds']:.2f}x its "
            'time.']
  return lines


def _stereo_copies(src: str, dst: str, rate: int, channels: int) -> None:
  """Every WAV clip of `src` (class folders) resampled to `rate` and copied
  to `channels`, as a device recording the same sounds would give them."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from scipy.io import wavfile  # pylint: disable=g-import-not-at-top
  from components import frontend  # pylint: disable=g-import-not-at-top
  from components.frontend import windowing  # pylint: disable=g-import-not-at-top
  from pipeline.data import spectrogram  # pylint: disable=g-import-not-at-top
  for name in sorted(os.listdir(src)):
    if not os.path.isdir(os.path.join(src, name)):
      continue
    os.makedirs(os.path.join(dst, name), exist_ok=True)
    for clip in sorted(os.listdir(os.path.join(src, name))):
      with open(os.path.join(src, name, clip), 'rb') as f:
        audio, source_rate = spectrogram.read_wav(f.read())
      audio = windowing.resample(audio, source_rate, rate)
      pcm = np.round(np.clip(audio, -1, 1) * 32767).astype('<i2')
      wavfile.write(os.path.join(dst, name, clip), rate,
                    np.repeat(pcm[:, None], channels, axis=1))


def _plain_render_seconds(folder: str) -> Tuple[int, float]:
  """The loop a notebook writes: SciPy's read, our spectrogram at the
  file's own rate (no resampling, no windows), a PNG; (clips, seconds)."""
  from scipy.io import wavfile  # pylint: disable=g-import-not-at-top
  from pipeline.data import decode  # pylint: disable=g-import-not-at-top
  from pipeline.data import spectrogram  # pylint: disable=g-import-not-at-top
  from components.frontend import melscale  # pylint: disable=g-import-not-at-top
  paths = sorted(glob.glob(os.path.join(folder, '*', '*.wav')))
  started = time.perf_counter()
  for path in paths:
    rate, samples = wavfile.read(path)
    mono = samples.astype('float64') / 32768.0
    if mono.ndim == 2:
      mono = mono.mean(axis=1)
    decode.png_bytes(melscale.spectrogram_image(mono, rate))
  return len(paths), time.perf_counter() - started


def _stream_figures(model: str, seconds: int, logs: str,
                    tag: str) -> Dict[str, Any]:
  """`predict --stream -` on one core over `seconds` of raw PCM made as it
  is read: wall seconds, real-time factor, the reader's peak RSS."""
  import psutil  # pylint: disable=g-import-not-at-top
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1', TF_CPP_MIN_LOG_LEVEL='3',
             PYTHONPATH=ROOT)
  one_core = ['taskset', '-c', '0'] if shutil.which('taskset') else []
  source = subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'bench', 'pcm_source.py'),
       str(seconds)], stdout=subprocess.PIPE, cwd=ROOT, env=env)
  with open(os.path.join(logs, f'{tag}.log'), 'w', encoding='utf-8') as err:
    started = time.time()
    reader = subprocess.Popen(
        [*one_core, *cli('predict', '--model', model, '--stream', '-')],
        stdin=source.stdout, stdout=subprocess.PIPE, stderr=err, cwd=ROOT,
        env=env, text=True)
    source.stdout.close()
    watched = psutil.Process(reader.pid)
    peak, lines, first = 0, 0, None
    for _ in reader.stdout:
      lines += 1
      if first is None:
        first = time.time() - started
      if lines % 20 == 0:
        try:
          peak = max(peak, watched.memory_info().rss)
        except psutil.Error:
          pass
    reader.wait()
    wall = time.time() - started
  source.wait()
  if reader.returncode != 0:
    raise RuntimeError(f'predict --stream failed; see {tag}.log')
  # The start-up (TensorFlow, the model) is paid once: the rate is over the
  # windows after the first.
  steady = wall - (first or 0.0)
  return {'audio_seconds': seconds, 'windows': lines, 'wall_seconds': wall,
          'first_window_seconds': first,
          'real_time_factor': (seconds - 1) / steady if steady > 0 else None,
          'peak_rss_bytes': peak, 'one_core': bool(one_core)}


def _accuracy(labels: Dict[str, str]) -> float:
  """Share of files whose label is their class folder's name."""
  return sum(label == os.path.basename(os.path.dirname(path))
             for path, label in labels.items()) / len(labels)


def _client_accuracy(model: str, files: List[str]) -> Dict[str, float]:
  """Held-out accuracy of each way to run the pushed version: the image
  model on the NumPy pictures, and MediaPipe Tasks' AudioClassifier on
  `waveform.tflite` alone (its own environment, .venv-mediapipe), each clip
  labelled by its most positive window as `predict` does."""
  from pipeline.serving import predict  # pylint: disable=g-import-not-at-top
  pushed = predict.PushedModel(model)
  found: Dict[str, float] = {}
  waveform = pushed.waveform
  ours = {f: pushed.predict(f) for f in files}  # the waveform model answers
  pushed.waveform = None  # the image model answers
  found['image model'] = _accuracy({f: pushed.predict(f).label for f in files})
  client = os.path.join(ROOT, '.venv-mediapipe', 'bin', 'python')
  if waveform is None or not os.path.exists(client):
    return found
  ran = subprocess.run(
      [client, os.path.join(ROOT, 'tests', 'mediapipe_client.py'),
       os.path.join(pushed.folder, pushed.waveform_file), 'clips', *files],
      capture_output=True, text=True, check=True, timeout=3600)
  # Each clip labelled from the windows that start within it, and, to show
  # what that rule is worth, from every window MediaPipe gives (its
  # resampler's flush adds a window at the end of a clip of whole windows).
  within, every, extra, differences = {}, {}, 0, []
  for answer in json.loads(ran.stdout.strip().splitlines()[-1]):
    mine = ours[answer['path']].windows or []
    kept = [w for w in answer['windows'] if w['within_clip']]
    differences += [max(abs(a['scores'][k] - b['scores'][k])
                        for k in a['scores'])
                    for a, b in zip(mine, kept)]
    for labels, windows in (
        (within, [w for w in answer['windows'] if w['within_clip']]),
        (every, answer['windows'])):
      best = max(windows, key=lambda w: w['scores'][pushed.positive])
      labels[answer['path']] = max(best['scores'], key=best['scores'].get)
    extra += sum(not w['within_clip'] for w in answer['windows'])
  found['MediaPipe AudioClassifier'] = _accuracy(within)
  found['MediaPipe, every window'] = _accuracy(every)
  found['MediaPipe windows past the end'] = extra
  if differences:
    # Against predict's scores, window by window within the clips.
    differences.sort()
    found['MediaPipe score difference, p95'] = differences[
        int(0.95 * (len(differences) - 1))]
    found['MediaPipe score difference, max'] = float(max(differences))
  return found


def part_audio(data_dir: str, out: str, per_class: int,
               stream_seconds: Tuple[int, int]) -> Dict[str, Any]:
  """Part 11: the audio front end's costs and its promise. Ingest
  throughput at 16 kHz and at 44.1 kHz stereo against a plain SciPy read
  and render loop; a model trained on 16 kHz recordings scored on the same
  held-out clips at 16, 44.1 (stereo) and 48 kHz; `predict --stream` on
  one core over a short and a long stream."""
  from pipeline.data import ingest  # pylint: disable=g-import-not-at-top
  logs = os.path.join(out, 'logs')
  folders = {'16 kHz mono': os.path.join(out, 'wav-16k')}
  shutil.rmtree(folders['16 kHz mono'], ignore_errors=True)
  run_process(cli('synth', '--out', folders['16 kHz mono'], '--per-class',
                  str(per_class), '--format', 'wav'),
              os.path.join(logs, 'audio-synth.log'))
  folders['44.1 kHz stereo'] = os.path.join(out, 'wav-44k-stereo')
  shutil.rmtree(folders['44.1 kHz stereo'], ignore_errors=True)
  _stereo_copies(folders['16 kHz mono'], folders['44.1 kHz stereo'], 44100, 2)
  throughput = {}
  for name, folder in folders.items():
    log(f'part 11: ingest throughput, {name}')
    root = os.path.join(out, f"audio-data-{name.split()[0]}")
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    result = ingest.ingest(folder, root, progress=False)
    ingest_seconds = time.perf_counter() - started
    clips, plain_seconds = _plain_render_seconds(folder)
    throughput[name] = {
        'clips': clips, 'examples': sum(result.counts.values()),
        'ingest_clips_per_second': clips / ingest_seconds,
        'plain_clips_per_second': clips / plain_seconds}
    log(f"  {throughput[name]['ingest_clips_per_second']:.1f} clips/s "
        f"against {throughput[name]['plain_clips_per_second']:.1f}")

  log('part 11: a model trained on the 16 kHz recordings of the default data')
  train_wav = os.path.join(out, 'wav-train')
  shutil.rmtree(train_wav, ignore_errors=True)
  run_process(cli('synth', '--out', train_wav, '--format', 'wav'),
              os.path.join(logs, 'audio-synth-train.log'))
  workspace = os.path.join(out, 'ws-audio')
  shutil.rmtree(workspace, ignore_errors=True)
  trained = pipeline_run(workspace, train_wav, logs, 'audio')
  model = _pushed_figures(trained['summary'])['destination']
  held_out = os.path.join(out, 'wav-held-out')
  shutil.rmtree(held_out, ignore_errors=True)
  run_process(cli('synth', '--out', held_out, '--per-class', str(per_class),
                  '--format', 'wav', '--seed-data', '1'),
              os.path.join(logs, 'audio-synth-held-out.log'))
  sets = {'16 kHz mono': held_out}
  for name, rate, channels in (('44.1 kHz stereo', 44100, 2),
                               ('48 kHz mono', 48000, 1)):
    sets[name] = os.path.join(out, f'wav-held-out-{rate}')
    shutil.rmtree(sets[name], ignore_errors=True)
    _stereo_copies(held_out, sets[name], rate, channels)
  accuracy, clients = {}, {}
  for name, folder in sets.items():
    files = sorted(glob.glob(os.path.join(folder, '*', '*.wav')))
    ran = run_process(cli('predict', '--model', model, *files, '--json'),
                      os.path.join(logs, f"audio-predict-{name.split()[0]}"
                                   '.log'))
    answers = json.loads(ran['stdout'])
    accuracy[name] = _accuracy({a['path']: a['label'] for a in answers})
    clients[name] = _client_accuracy(model, files)
    log(f'  held-out accuracy at {name}: {accuracy[name]:.4f} ({clients[name]})')

  streams = {}
  for seconds in stream_seconds:
    log(f'part 11: predict --stream over {seconds} s of audio, one core')
    streams[str(seconds)] = _stream_figures(model, seconds, logs,
                                            f'audio-stream-{seconds}')
    log(f"  real-time factor {streams[str(seconds)]['real_time_factor']:.0f}"
        f"x, peak {streams[str(seconds)]['peak_rss_bytes'] / 2 ** 20:.0f} MiB")
  return {'measured': f'{datetime.date.today()}', 'per_class': per_class,
          'throughput': throughput, 'held_out_accuracy': accuracy,
          'client_accuracy': clients,
          'streams': streams}


def _audio_lines(audio: Dict[str, Any]) -> List[str]:
  """Part 11's section of the report."""
  lines = ['', '## 11. Audio: ingest, rates and streaming', '',
           f"Measured {audio['measured']}. Ingest throughput over "
           f"{2 * audio['per_class']} one-second clips (in process, the "
           'whole ingest: read, resample, windows, spectrogram, PNG, '
           'TFRecord) against a plain loop of SciPy\'s read, our '
           'spectrogram at the file\'s own rate and a PNG (what a notebook '
           'does, without resampling):', '',
           '| recordings | ingest clips/s | plain loop clips/s | ratio |',
           '|---|---|---|---|']
  for name, row in audio['throughput'].items():
    lines.append(f"| {name} | {row['ingest_clips_per_second']:.1f} | "
                 f"{row['plain_clips_per_second']:.1f} | "
                 f"{row['ingest_clips_per_second'] / row['plain_clips_per_second']:.2f} |")
  accuracy = audio['held_out_accuracy']
  clients = audio.get('client_accuracy') or {}
  base = accuracy['16 kHz mono']
  names = sorted({n for row in clients.values() for n in row})
  lines += ['', 'A model trained on the default data as 16 kHz recordings, '
            f"scored by `predict` on {2 * audio['per_class']} held-out "
            'clips (another seed) recorded at each rate, and the same '
            'pushed version run other ways:', '',
            '| held-out clips | `predict` | against 16 kHz | ' +
            ''.join(f'{n} | ' for n in names),
            '|---|---|---|' + '---|' * len(names)]
  for name, value in accuracy.items():
    row = clients.get(name, {})
    lines.append(f'| {name} | {value:.4f} | {value - base:+.4f} | ' + ''.join(
        (f'{row[n]} | ' if isinstance(row[n], int) else f'{row[n]:.4f} | ')
        if n in row else 'n/a | ' for n in names))
  lines += ['', '`predict --stream -` on one core (`taskset -c 0`), reading '
            'raw 16 kHz PCM made as it is read (`bench/pcm_source.py`); '
            'the real-time factor is seconds of audio per second of compute '
            'after the first window (start-up paid once):', '',
            '| audio | windows | wall s | first window s | real-time factor '
            '| peak RSS MiB |', '|---|---|---|---|---|---|']
  for row in audio['streams'].values():
    lines.append(f"| {row['audio_seconds'] / 60:.0f} min | {row['windows']} "
                 f"| {row['wall_seconds']:.1f} | "
                 f"{row['first_window_seconds']:.1f} | "
                 f"{row['real_time_factor']:.0f}x | "
                 f"{row['peak_rss_bytes'] / 2 ** 20:.0f} |")
  return lines


def part_waveform(out: str, rounds: int = 5,
                  invokes: int = 200) -> Dict[str, Any]:
  """Part 12: the waveform model (the front end inside) against the image
  model and the NumPy front end, per window, at the default width and
  front end, in `dynamic` mode and in `int8` (the front end kept float by
  name): bytes, and single-window latency on one thread, the models taking
  turns (untrained weights: neither figure depends on training; int8 is
  calibrated on a few synthesized clips)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import trainer  # pylint: disable=g-import-not-at-top
  from components.tflite import conversion  # pylint: disable=g-import-not-at-top
  from components.tflite_pusher import waveform  # pylint: disable=g-import-not-at-top
  from components import frontend  # pylint: disable=g-import-not-at-top
  from components.frontend import graph  # pylint: disable=g-import-not-at-top
  from components.frontend import windowing  # pylint: disable=g-import-not-at-top
  from pipeline.data import synth  # pylint: disable=g-import-not-at-top
  front_end = frontend.FrontEnd()
  saved = os.path.join(out, 'waveform-saved-model')
  shutil.rmtree(saved, ignore_errors=True)
  tf.keras.utils.set_random_seed(0)
  trainer.export_model(trainer.build_model(), saved, front_end.image_size, 3)
  image_model = conversion.convert(saved, 'serving_image', 'dynamic')
  waveform_model = waveform.convert(saved, front_end, 'dynamic')
  window = synth.make_clip(0, 1, 0)[1].astype(np.float32)
  pixels = windowing.render(window, front_end).astype(np.float32)
  clips = np.stack([synth.make_clip(0, i % 2, i)[1] for i in range(16)]
                   ).astype(np.float32)
  image_int8 = conversion.convert(saved, 'serving_image', 'int8', np.stack(
      [windowing.render(clip, front_end) for clip in clips]))
  waveform_int8 = waveform.convert(saved, front_end, 'int8',
                                   representative=clips)
  runners = {}
  for name, model, feed in (
      ('image model', image_model, pixels),
      ('waveform model', waveform_model, window),
      ('image model (int8)', image_int8, pixels),
      ('waveform model (int8)', waveform_int8, window)):
    classifier = conversion.TFLiteClassifier(model, num_threads=1)
    classifier.scores(feed)  # sets the (quantized) input, invokes once
    runners[name] = classifier.interpreter
  medians: Dict[str, List[float]] = {name: [] for name in runners}
  medians['NumPy front end'] = []
  for _ in range(rounds):
    for name, interpreter in runners.items():
      times = []
      for _ in range(invokes):
        started = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - started)
      medians[name].append(1000 * median(times))
    times = []
    for _ in range(invokes // 4):
      started = time.perf_counter()
      windowing.render(window, front_end)
      times.append(time.perf_counter() - started)
    medians['NumPy front end'].append(1000 * median(times))
  latency = {name: median(values) for name, values in medians.items()}
  log(f"  waveform {len(waveform_model)} bytes, {latency['waveform model']:.2f}"
      f" ms; image {len(image_model)} bytes, {latency['image model']:.2f} ms")
  return {'measured': f'{datetime.date.today()}', 'mode': 'dynamic',
          'bytes': {'image model': len(image_model),
                    'waveform model': len(waveform_model),
                    'image model (int8)': len(image_int8),
                    'waveform model (int8)': len(waveform_int8)},
          'front_end_constant_bytes': graph.constant_bytes(front_end),
          'latency_ms': latency}


def _board_figures(summary: Dict[str, Any]) -> Dict[str, Any]:
  """A run's pushed int8 model as a board sees it."""
  pushed = summary.get('pushed') or {}
  return dict(_pushed_figures(summary), **{
      name: pushed.get(name) for name in (
          'arena_bytes', 'micro_latency_ms_median', 'micro_identical',
          'micro_max_difference_xnnpack', 'micro_examples',
          'latency_ms_median', 'reason')})


def part_board(data_dir: str, out: str, trials: int, arena_budget: int,
               keep: bool) -> Dict[str, Any]:
  """Part 13: the board. The default model in int8, then the search under
  an arena budget (`--quantization int8 --tune true --max-arena-bytes`):
  each pushed model's TensorFlow Lite Micro arena and latency per image
  (TFLM's reference kernels on this machine), its outputs against LiteRT's
  on the pusher's eval sample, and its C array compiled."""
  logs = os.path.join(out, 'logs')
  runs: Dict[str, Dict[str, Any]] = {}
  table: Dict[str, Any] = {}
  for name, extra in (
      ('default', ('--quantization', 'int8')),
      ('searched', ('--quantization', 'int8', '--tune', 'true',
                    '--tune-trials', str(trials), '--max-arena-bytes',
                    str(arena_budget)))):
    workspace = os.path.join(out, f'ws-board-{name}')
    shutil.rmtree(workspace, ignore_errors=True)
    log(f"part 13: {name}: {' '.join(extra)}")
    ran = pipeline_run(workspace, data_dir, logs, f'board-{name}', extra=extra)
    runs[name] = dict(_board_figures(ran['summary']),
                      run_seconds=ran['run_seconds'])
    folder = runs[name]['destination']
    if folder:
      compiled = subprocess.run(
          ['c++', '-std=c++17', '-c', '-o', os.path.join(out, f'{name}.o'),
           os.path.join(folder, 'model_data.cc')],
          capture_output=True, text=True, check=False)
      runs[name]['c_array_compiles'] = compiled.returncode == 0
    if name == 'searched':
      listed = run_process(cli('inspect', 'trials', '--workspace', workspace,
                               '--json'),
                           os.path.join(logs, 'board-trials.log'))
      table = _last_json(listed['stdout'])
    log(f"  arena {runs[name].get('arena_bytes')}, TFLM "
        f"{runs[name].get('micro_latency_ms_median')} ms")
    if not keep:
      shutil.rmtree(workspace, ignore_errors=True)
  return {'measured': f'{datetime.date.today()}', 'budget': arena_budget,
          'runs': runs, 'trials': table.get('trials', []),
          'chosen_trial': table.get('chosen_trial')}


def _board_lines(board: Dict[str, Any]) -> List[str]:
  """Part 13's section of the report."""
  lines = ['', '## 13. The board: TensorFlow Lite Micro', '',
           f"Measured {board['measured']}, default data, int8. The default "
           'model, then the search under an arena budget of '
           f"{board['budget']:,} bytes. Arena: the smallest TFLM tensor arena "
           'that runs the pushed file; TFLM ms: one invoke with its reference '
           'kernels on this machine (a board is slower, this ranks models); '
           'identical: the share of the pusher\'s eval sample whose outputs '
           'equal LiteRT\'s builtin kernels bit for bit.', '',
           '| model | file bytes | arena bytes | TFLM ms/image | LiteRT ms '
           '| identical | AUC | C array compiles |',
           '|---|---|---|---|---|---|---|---|']
  for name, run in board['runs'].items():
    def cell(key, fmt='{:,}'):
      value = run.get(key)
      return fmt.format(value) if value is not None else 'n/a'
    lines.append(
        f"| {name} | {cell('pushed_bytes')} | {cell('arena_bytes')} | "
        f"{cell('micro_latency_ms_median', '{:.1f}')} | "
        f"{cell('latency_ms_median', '{:.3f}')} | "
        f"{cell('micro_identical', '{:.0%}')} | "
        f"{cell('evaluator_auc', '{:.4f}')} | "
        f"{run.get('c_array_compiles', 'n/a')} |")
  if board['trials']:
    lines += ['', 'The trials of the search (`inspect trials`):', '',
              '| trial | width | file bytes | arena bytes | AUC | within '
              'budget |', '|---|---|---|---|---|---|']
    for trial in board['trials']:
      mark = ' (chosen)' if trial['trial_id'] == board['chosen_trial'] else ''
      lines.append(
          f"| {trial['trial_id']}{mark} | "
          f"{trial.get('hyperparameters', {}).get('width')} | "
          f"{trial.get('tflite_bytes', 0):,} | "
          f"{trial.get('arena_bytes', -1):,} | {trial.get('auc', 0):.4f} | "
          f"{'yes' if trial.get('within_budget') else 'no'} |")
  return lines


def _waveform_lines(wave: Dict[str, Any]) -> List[str]:
  """Part 12's section of the report."""
  sizes, latency = wave['bytes'], wave['latency_ms']
  image, full = latency['image model'], latency['waveform model']
  return ['', '## 12. The waveform model', '',
          f"The default model and front end, `{wave['mode']}` mode "
          f"(measured {wave['measured']}): the waveform model takes one "
          'window of samples and holds the front end (its filterbank '
          f"{wave['front_end_constant_bytes']:,} bytes, banded); single-"
          'window latency on one thread, the models taking turns.', '',
          '| | bytes | latency ms |', '|---|---|---|',
          f"| image model | {sizes['image model']:,} | {image:.3f} |",
          f"| waveform model | {sizes['waveform model']:,} | {full:.3f} |",
          f"| NumPy front end (render one window) | | "
          f"{latency['NumPy front end']:.3f} |"] + [
              f"| {name} | {sizes[name]:,} | {latency[name]:.3f} |"
              for name in ('image model (int8)', 'waveform model (int8)')
              if name in sizes] + ['',
          f"The front end adds {sizes['waveform model'] - sizes['image model']:,}"
          f" bytes (target: at most 300 KB) and {full / image - 1:.0%} to the "
          'image model\'s latency (target: at most 50%).']


def width_chart(rows: List[Dict[str, Any]]) -> str:
  """Part 9's chart as SVG: AUC and accuracy (mean, with the seeds' spread)
  and pushed bytes against width."""
  left, top, width, height = 60, 20, 420, 160
  widths = sorted(r['width'] for r in rows)
  lows = [min(r['auc'] - r['auc_spread'], r['accuracy'] -
              r['accuracy_spread']) for r in rows]
  low = max(0.0, math.floor(min(lows) * 50) / 50)
  most = max(r['pushed_bytes'] for r in rows)

  def x(value):
    return left + (value - widths[0]) / (widths[-1] - widths[0] or 1) * width

  def y(value, lo=low, hi=1.0):
    return top + height - (value - lo) / (hi - lo or 1) * height

  parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 70}"'
           f' height="{top + height + 50}" font-family="sans-serif" '
           'font-size="11">',
           f'<rect x="{left}" y="{top}" width="{width}" height="{height}" '
           'fill="none" stroke="#999"/>']
  for key, colour in (('auc', '#c0392b'), ('accuracy', '#2c6fbb')):
    points = ' '.join(f'{x(r["width"]):.1f},{y(r[key]):.1f}'
                      for r in sorted(rows, key=lambda r: r['width']))
    parts.append(f'<polyline points="{points}" fill="none" '
                 f'stroke="{colour}" stroke-width="2"/>')
    for r in rows:
      parts.append(f'<line x1="{x(r["width"]):.1f}" x2="{x(r["width"]):.1f}" '
                   f'y1="{y(r[key] - r[key + "_spread"] / 2):.1f}" '
                   f'y2="{y(r[key] + r[key + "_spread"] / 2):.1f}" '
                   f'stroke="{colour}"/>')
  bytes_points = ' '.join(
      f'{x(r["width"]):.1f},{y(r["pushed_bytes"], 0, most):.1f}'
      for r in sorted(rows, key=lambda r: r['width']))
  parts.append(f'<polyline points="{bytes_points}" fill="none" '
               'stroke="#777" stroke-dasharray="4 3"/>')
  for value in widths:
    parts.append(f'<text x="{x(value):.1f}" y="{top + height + 15}" '
                 f'text-anchor="middle">{value:g}</text>')
  for value in (low, (low + 1) / 2, 1.0):
    parts.append(f'<text x="{left - 5}" y="{y(value) + 4:.1f}" '
                 f'text-anchor="end">{value:.2f}</text>')
  parts.append(f'<text x="{left + width + 5}" y="{top + 10}">'
               f'{most / 1000:,.0f} kB</text>')
  parts.append(f'<text x="{left + width / 2}" y="{top + height + 35}" '
               'text-anchor="middle">width (red: AUC, blue: accuracy, '
               'bars: spread over seeds; dashed: pushed bytes)</text>')
  parts.append('</svg>')
  return '\n'.join(parts) + '\n'


def _width_lines(study: Dict[str, Any]) -> List[str]:
  """Part 9's section of the report."""
  lines = ['', '## 9. Width study', '',
           f"Every width the model search offers, on the 1x default data at "
           f"{study['steps'] or 'the default'} steps, {study['seeds']} seeds "
           f"each (measured {study['measured']}); means over the seeds, "
           'spread = max - min. Every model was let through the gates to be '
           'measured.', '',
           '| width | AUC | AUC spread | accuracy | accuracy spread | pushed '
           'bytes | latency ms | Trainer s | peak MiB |',
           '|---|---|---|---|---|---|---|---|---|']
  for r in study['rows']:
    lines.append(
        f"| {r['width']:g} | {r['auc']:.4f} | {r['auc_spread']:.4f} | "
        f"{r['accuracy']:.4f} | {r['accuracy_spread']:.4f} | "
        f"{r['pushed_bytes']:,.0f} | {r['latency_ms']:.3f} | "
        f"{r['trainer_seconds']:.1f} | "
        f"{r['peak_rss_bytes'] / 2 ** 20:,.0f} |")
  lines += ['', f"The rule: {WIDTH_RULE}. It picks width "
            f"**{chosen_width(study['rows']):g}**.", '',
            '![AUC, accuracy and bytes against width](width_study.svg)']
  return lines


def _transform_paths(workspace: str) -> Tuple[str, str]:
  """The newest Transform graph and its train split's files."""
  root = os.path.join(workspace, 'tfx', 'Transform')
  graph = max(glob.glob(os.path.join(root, 'transform_graph', '*')),
              key=os.path.getmtime)
  examples = max(glob.glob(os.path.join(root, 'transformed_examples', '*')),
                 key=os.path.getmtime)
  return graph, os.path.join(examples, 'Split-train', '*')


def part_input_throughput(workspace: str, data_dir: str, out: str,
                          steps: int, batches: int) -> Dict[str, Any]:
  """Part 2: images per second into training, without the model.

  Our side is measured as the Trainer uses it: `steps` batches from a fresh
  input, so the first pass (which decodes the PNGs and fills the on-disk
  cache of decoded images) is included; the steady state after that pass is
  reported too. `flow_from_directory` has no such first pass; its rate is
  steady from the start and measured over `batches` batches.
  """
  import tempfile  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from components.modules import trainer  # pylint: disable=g-import-not-at-top
  graph, pattern = _transform_paths(workspace)
  output = tft.TFTransformOutput(graph)
  train_examples = sum(1 for _ in tf.data.TFRecordDataset(
      tf.io.gfile.glob(pattern), compression_type='GZIP'))
  first_pass = -(-train_examples // 32)
  result: Dict[str, Any] = {'steps': steps, 'batch_size': 32,
                            'train_examples': train_examples,
                            'flow_batches': batches}
  for augment in (False, True):
    cache = tempfile.mkdtemp(prefix='input-cache-', dir=out)
    dataset = trainer.make_dataset([pattern], output, 32, 128, 3,
                                   training=True, seed=0, augment=augment,
                                   cache_dir=cache)
    iterator = iter(dataset)
    started = time.perf_counter()
    marks = []
    for index in range(steps):
      next(iterator)
      if index + 1 in (first_pass, first_pass + 1):
        marks.append(time.perf_counter())
    total = time.perf_counter() - started
    key = 'ours_augmented' if augment else 'ours'
    result[f'{key}_images_per_second'] = steps * 32 / total
    if len(marks) == 2 and steps > first_pass + 1:
      result[f'{key}_first_pass_images_per_second'] = (
          first_pass * 32 / (marks[0] - started))
      result[f'{key}_steady_images_per_second'] = (
          (steps - first_pass - 1) * 32 / (started + total - marks[1]))
    del iterator, dataset
    shutil.rmtree(cache, ignore_errors=True)
    log(f"part 2: {key}: {result[f'{key}_images_per_second']:.0f} images/s "
        f'over {steps} batches')
  generator = tf.keras.preprocessing.image.ImageDataGenerator(rescale=1 / 255)
  flow = generator.flow_from_directory(
      data_dir, target_size=(128, 128), batch_size=32, classes=list(CLASSES),
      class_mode='binary', seed=0)
  for _ in range(5):
    next(flow)
  started = time.perf_counter()
  for _ in range(batches):
    next(flow)
  result['flow_from_directory_images_per_second'] = batches * 32 / (
      time.perf_counter() - started)
  log('part 2: flow_from_directory: '
      f"{result['flow_from_directory_images_per_second']:.0f} images/s")
  flow_rate = result['flow_from_directory_images_per_second']
  result['ratio'] = result['ours_images_per_second'] / flow_rate
  result['ratio_augmented'] = (result['ours_augmented_images_per_second'] /
                               flow_rate)
  return result


def part_pushed_model(workspace: str, invokes: int) -> Dict[str, Any]:
  """Part 3: each quantization mode against the Keras model."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.tflite import conversion  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  model_dir = max(glob.glob(os.path.join(workspace, 'tfx', 'Trainer', 'model',
                                         '*', 'Format-Serving')),
                  key=os.path.getmtime)
  _, pattern = _transform_paths(workspace)
  eval_pattern = pattern.replace('Split-train', 'Split-eval')
  images, labels = conversion.load_images(
      eval_pattern, features.IMAGE_PNG_KEY, features.LABEL_KEY, 128, 3)
  calibration, _ = conversion.load_images(
      pattern, features.IMAGE_PNG_KEY, features.LABEL_KEY, 128, 3,
      limit=300, seed=0)
  signature = 'serving_image'
  modes, classifiers = {}, {}
  for mode in ('none', 'dynamic', 'int8', 'float16'):
    model, proof = conversion.convert_and_check(
        model_dir, signature, mode, images, labels,
        representative_images=calibration if mode == 'int8' else None,
        latency_runs=20)
    figures = proof.to_figures()
    modes[mode] = {k: figures[k] for k in (
        'tflite_bytes', 'size_ratio', 'tflite_accuracy', 'tflite_auc',
        'savedmodel_accuracy', 'savedmodel_auc', 'agreement')}
    classifiers[mode] = conversion.TFLiteClassifier(model, num_threads=1)
    log(f"part 3: {mode}: {figures['tflite_bytes']} bytes")
  # Latency in interleaved rounds, so a slow spell of a shared machine does
  # not fall on one mode: the median of the rounds' medians.
  rounds: Dict[str, List[float]] = {mode: [] for mode in classifiers}
  for _ in range(LATENCY_ROUNDS):
    for mode, classifier in classifiers.items():
      rounds[mode].append(classifier.median_latency_ms(
          images[0].astype(np.float32), runs=invokes, warmup=20))
  for mode, values in rounds.items():
    modes[mode]['latency_ms_median'] = median(values)
    modes[mode]['latency_ms_rounds'] = values
    log(f'part 3: {mode}: {median(values):.3f} ms (rounds: '
        + ', '.join(f'{v:.3f}' for v in values) + ')')

  keras_model = tf.keras.models.load_model(model_dir, compile=False)
  one = images[:1].astype(np.float32)
  times = []
  for index in range(5 + 50):
    started = time.perf_counter()
    keras_model.predict(one, verbose=0)
    if index >= 5:
      times.append((time.perf_counter() - started) * 1000.0)
  batch = tf.constant(images[:32], tf.float32)
  batched = []
  for index in range(3 + 30):
    started = time.perf_counter()
    keras_model(batch, training=False)
    if index >= 3:
      batched.append((time.perf_counter() - started) * 1000.0)
  single_call = []
  one_tensor = tf.constant(one)
  for index in range(5 + invokes):
    started = time.perf_counter()
    keras_model(one_tensor, training=False)
    if index >= 5:
      single_call.append((time.perf_counter() - started) * 1000.0)
  keras = {'predict_one_ms': median(times),
           'call_one_ms': median(single_call),
           'call_batch32_ms': median(batched),
           'call_batch32_per_image_ms': median(batched) / 32,
           'threads': 'TensorFlow default (all cores)'}
  log(f"part 3: keras predict one image {keras['predict_one_ms']:.2f} ms")
  return {'eval_images': int(len(labels)), 'invokes': invokes,
          'modes': modes, 'keras': keras,
          'int8_vs_keras_predict': keras['predict_one_ms'] /
                                   modes['int8']['latency_ms_median'],
          'int8_vs_float32': modes['none']['latency_ms_median'] /
                             modes['int8']['latency_ms_median'],
          'numpy': np.__version__}


def part_scale(out: str, one_x: Dict[str, Any], factors: List[int],
               keep: bool, per_class: int) -> Dict[str, Any]:
  """Part 4: the pipeline at larger multiples of the default data."""
  logs = os.path.join(out, 'logs')
  first = one_x['cold_runs'][0]
  rows = {1: {'images': 2 * per_class,
              'run_seconds': first['run_seconds'],
              'ingest_seconds': first['ingest_seconds'],
              'peak_rss_bytes': first['peak_rss_bytes'],
              'components': first['components'],
              'bytes_per_transformed_example': one_x.get('transformed_bytes')}}
  for factor in factors:
    if factor == 1:
      continue
    folder = os.path.join(out, f'data-{factor}x')
    log(f'part 4: making {factor}x data')
    synth(folder, per_class * factor, 0, logs)
    workspace = os.path.join(out, f'ws-{factor}x')
    shutil.rmtree(workspace, ignore_errors=True)
    log(f'part 4: pipeline at {factor}x')
    result = pipeline_run(workspace, folder, logs, f'scale{factor}')
    rows[factor] = {
        'images': 2 * per_class * factor,
        'run_seconds': result['run_seconds'],
        'ingest_seconds': result['ingest_seconds'],
        'peak_rss_bytes': result['peak_rss_bytes'],
        'components': result['components'],
        'bytes_per_transformed_example': _bytes_per_example(
            result['summary'])}
    log(f"  run {result['run_seconds']:.1f} s, peak "
        f"{result['peak_rss_bytes'] / 2**20:.0f} MiB")
    if not keep:
      shutil.rmtree(workspace, ignore_errors=True)
      shutil.rmtree(folder, ignore_errors=True)
  return {'rows': rows}


def part_history(out: str, spans: int, keep: bool, per_class: int,
                 repeats: int) -> Dict[str, Any]:
  """Part 5: spans ingested and run one after another, default window.

  The runs of the history are measured once each, so one slow Trainer skews
  a ratio between two of them. After the history, the workspace as it stood
  after each run in `compare` is put back in place (at the same path, as
  ML Metadata holds absolute URIs) and run again with the cache off,
  `repeats` times each, the two taking turns; the ratio of the medians is
  the figure.
  """
  compare = (min(3, spans), spans)  # The first full window, and the last.
  logs = os.path.join(out, 'logs')
  workspace = os.path.join(out, 'ws-history')
  snapshots = {span: os.path.join(out, f'ws-history-after{span}')
               for span in compare}
  for path in [workspace, *snapshots.values()]:
    shutil.rmtree(path, ignore_errors=True)
  rows = []
  for span in range(1, spans + 1):
    folder = os.path.join(out, f'data-span{span}')
    synth(folder, per_class, span, logs)
    log(f'part 5: span {span} of {spans}')
    result = pipeline_run(workspace, folder, logs, f'history{span}')
    rows.append({'span': span, 'window': result['summary'].get('spans'),
                 'run_seconds': result['run_seconds'],
                 'ingest_seconds': result['ingest_seconds'],
                 'peak_rss_bytes': result['peak_rss_bytes'],
                 'components': result['components']})
    log(f"  run {result['run_seconds']:.1f} s, peak "
        f"{result['peak_rss_bytes'] / 2**20:.0f} MiB, window "
        f"{rows[-1]['window']}")
    if span in snapshots:
      shutil.copytree(workspace, snapshots[span], symlinks=True)
    if not keep:
      shutil.rmtree(folder, ignore_errors=True)
  reruns: Dict[int, List[Dict[str, Any]]] = {span: [] for span in snapshots}
  for repeat in range(repeats if len(snapshots) == 2 else 0):
    order = list(compare) if repeat % 2 == 0 else list(reversed(compare))
    for span in order:
      log(f'part 5: run {span} again without the cache '
          f'({repeat + 1} of {repeats})')
      shutil.rmtree(workspace, ignore_errors=True)
      shutil.copytree(snapshots[span], workspace, symlinks=True)
      result = pipeline_run(workspace, '', logs, f'history{span}-again',
                            ingest=False, extra=('--enable-cache', 'false'))
      reruns[span].append({'run_seconds': result['run_seconds'],
                           'run_cpu_seconds': result['run_cpu_seconds'],
                           'peak_rss_bytes': result['peak_rss_bytes'],
                           'components': result['components']})
      log(f"  run {result['run_seconds']:.1f} s, peak "
          f"{result['peak_rss_bytes'] / 2**20:.0f} MiB")
  if not keep:
    for path in [workspace, *snapshots.values()]:
      shutil.rmtree(path, ignore_errors=True)
  return {'rows': rows, 'reruns': {str(k): v for k, v in reruns.items()},
          'measured': datetime.datetime.now().astimezone()
          .isoformat(timespec='seconds')}


def rerun_medians(history: Dict[str, Any]) -> Dict[int, Dict[str, float]]:
  """Per compared run: median seconds, peak memory and component times."""
  medians = {}
  for span, runs in (history.get('reruns') or {}).items():
    if not runs:
      continue
    components = sorted({c for run in runs for c in run['components']})
    medians[int(span)] = {
        'run_seconds': median([run['run_seconds'] for run in runs]),
        'peak_rss_bytes': median([run['peak_rss_bytes'] for run in runs]),
        'run_cpu_seconds': median([run.get('run_cpu_seconds', float('nan'))
                                   for run in runs]),
        'repeats': len(runs),
        'components': {c: median([run['components'].get(c, 0.0)
                                  for run in runs]) for c in components}}
  return medians


def turn_ratios(history: Dict[str, Any], first: int, last: int
                ) -> List[float]:
  """Run `last`'s seconds over run `first`'s, per turn of the reruns (the
  two ran one after the other in each turn)."""
  reruns = history.get('reruns') or {}
  return [b['run_seconds'] / a['run_seconds'] for a, b in
          zip(reruns.get(str(first), []), reruns.get(str(last), []))]


# ----------------------------------------------------------------- report


def machine() -> Dict[str, Any]:
  import apache_beam  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tfx  # pylint: disable=g-import-not-at-top
  return {'cores': os.cpu_count(), 'machine': platform.machine(),
          'system': platform.platform(), 'python': platform.python_version(),
          'tensorflow': tf.__version__, 'tfx': tfx.__version__,
          'apache_beam': apache_beam.__version__,
          'keras': tf.keras.__version__ if hasattr(tf.keras, '__version__')
                   else 'tf-keras',
          'date': datetime.datetime.now().astimezone().isoformat(
              timespec='seconds')}


TARGETS = (
    ('cold pipeline (ingest + run) vs notebook script', 'cold_vs_notebook',
     '<=', 2.0),
    ('cached rerun vs cold run', 'cached_vs_cold', '<=', 0.1),
    ('training input vs flow_from_directory (images/s, like for like)',
     'input_ratio', '>=', 5.0),
    ('int8 single image vs Keras predict (speed-up)', 'int8_vs_keras', '>=',
     20.0),
    ('int8 vs float32 TFLite (speed-up)', 'int8_vs_float32', '>', 1.0),
    ('dynamic file vs float32 file', 'dynamic_size', '<=', 0.3),
    ('int8 file vs float32 file', 'int8_size', '<=', 0.3),
    ('wall time 8x vs 4x', 'time_8x_vs_4x', '<=', 2.2),
    ('peak memory 8x vs 4x', 'memory_8x_vs_4x', '<=', 1.25),
    ('bytes per transformed example', 'bytes_per_example', '<=', 49152),
    ('wall time run 8 vs run 3 (window of 3; median of the turns)',
     'time_run8_vs_run3', '<=',
     1.1),
    ('peak memory run 8 vs run 3 (window of 3)', 'memory_run8_vs_run3', '<=',
     1.05),
    ('cold default run vs before the storage layer', 'storage_vs_baseline',
     '<=', 1.05),
    ('searched model bytes vs the size budget', 'search_bytes_vs_budget',
     '<=', 1.0),
    ('AUC of the default model minus the searched one', 'search_auc_loss',
     '<=', 0.01),
    ('accuracy at 16 kHz minus the worst of 44.1 kHz stereo and 48 kHz',
     'rate_accuracy_loss', '<=', 0.01),
    ('predict --stream real-time factor, one core, 60 min of audio',
     'stream_real_time_factor', '>=', 50.0),
    ('stream peak memory, 60 min vs 6 min of audio', 'stream_memory_growth',
     '<=', 1.05),
    ('image model minus MediaPipe AudioClassifier, worst held-out rate',
     'mediapipe_accuracy_loss', '<=', 0.01),
    ('bytes the front end adds to the waveform model', 'waveform_added_bytes',
     '<=', 300_000),
    ('latency the front end adds, vs the image model', 'waveform_added_latency',
     '<=', 0.5),
    ('searched int8 model\'s TFLM arena vs the arena budget',
     'board_arena_vs_budget', '<=', 1.0),
)


def ratios(results: Dict[str, Any]) -> Dict[str, Optional[float]]:
  one = results.get('pipeline_vs_notebook', {})
  model = results.get('pushed_model', {})
  scale = results.get('scale', {}).get('rows', {})
  values: Dict[str, Optional[float]] = {}
  if one:
    values['cold_vs_notebook'] = (one['cold_total_seconds'] /
                                  one['notebook_seconds'])
    values['cached_vs_cold'] = (one['cached_run_seconds'] /
                                one['cold_total_seconds'])
    values['bytes_per_example'] = one.get('transformed_bytes')
  if results.get('input_throughput'):
    values['input_ratio'] = results['input_throughput']['ratio']
  if model:
    values['int8_vs_keras'] = model['int8_vs_keras_predict']
    values['int8_vs_float32'] = model['int8_vs_float32']
    values['dynamic_size'] = model['modes']['dynamic']['size_ratio']
    values['int8_size'] = model['modes']['int8']['size_ratio']
  four, eight = scale.get(4) or scale.get('4'), scale.get(8) or scale.get('8')
  if four and eight:
    values['time_8x_vs_4x'] = eight['run_seconds'] / four['run_seconds']
    values['memory_8x_vs_4x'] = (eight['peak_rss_bytes'] /
                                 four['peak_rss_bytes'])
  history = rerun_medians(results.get('history', {})) or {
      row['span']: row for row in results.get('history', {}).get('rows', [])}
  if 3 in history and 8 in history:
    turns = turn_ratios(results['history'], 3, 8)
    # Ratios measured within one turn: the machine's speed drifts between
    # turns by more than the bound (see part 5's section).
    values['time_run8_vs_run3'] = (median(turns) if turns else
                                   history[8]['run_seconds'] /
                                   history[3]['run_seconds'])
    values['memory_run8_vs_run3'] = (history[8]['peak_rss_bytes'] /
                                     history[3]['peak_rss_bytes'])
  search = results.get('search')
  if search:
    default, tuned = search['runs']['default'], search['runs']['tuned']
    if tuned.get('pushed_bytes'):
      values['search_bytes_vs_budget'] = (tuned['pushed_bytes'] /
                                          search['budget'])
    if default.get('evaluator_auc') and tuned.get('evaluator_auc'):
      values['search_auc_loss'] = (default['evaluator_auc'] -
                                   tuned['evaluator_auc'])
  audio = results.get('audio')
  if audio:
    accuracy = audio['held_out_accuracy']
    values['rate_accuracy_loss'] = accuracy['16 kHz mono'] - min(
        value for name, value in accuracy.items() if name != '16 kHz mono')
    streams = sorted(audio['streams'].values(),
                     key=lambda row: row['audio_seconds'])
    values['stream_real_time_factor'] = streams[-1]['real_time_factor']
    values['stream_memory_growth'] = (streams[-1]['peak_rss_bytes'] /
                                      streams[0]['peak_rss_bytes'])
    losses = [row['image model'] - row['MediaPipe AudioClassifier']
              for row in (audio.get('client_accuracy') or {}).values()
              if 'MediaPipe AudioClassifier' in row]
    if losses:
      values['mediapipe_accuracy_loss'] = max(losses)
  wave = results.get('waveform')
  if wave:
    values['waveform_added_bytes'] = (wave['bytes']['waveform model'] -
                                      wave['bytes']['image model'])
    values['waveform_added_latency'] = (
        wave['latency_ms']['waveform model'] /
        wave['latency_ms']['image model'] - 1)
  board = results.get('board')
  if board and (board['runs'].get('searched') or {}).get('arena_bytes'):
    values['board_arena_vs_budget'] = (
        board['runs']['searched']['arena_bytes'] / board['budget'])
  storage = results.get('storage_layer', {}).get('medians')
  if storage:
    values['storage_vs_baseline'] = (storage['current']['total_seconds'] /
                                     storage['baseline']['total_seconds'])
  return values


def _met(value: Optional[float], op: str, bound: float) -> str:
  if value is None:
    return 'not measured'
  ok = {'<=': value <= bound, '>=': value >= bound, '>': value > bound}[op]
  return 'met' if ok else '**missed**'


def targets_table(results: Dict[str, Any]) -> List[str]:
  """The targets' table (Markdown lines): each ratio measured, its bound,
  met or missed; RESULTS.md and the README both show it."""
  lines = ['| target | measured | bound | |', '|---|---|---|---|']
  values = ratios(results)
  for label, key, op, bound in TARGETS:
    value = values.get(key)
    shown = 'n/a' if value is None else (f'{value:,.0f}' if bound > 100
                                         else f'{value:.3g}')
    lines.append(f'| {label} | {shown} | {op} {bound:g} | '
                 f'{_met(value, op, bound)} |')
  return lines


README_BEGIN = '<!-- bench:targets:begin -->'
README_END = '<!-- bench:targets:end -->'


def readme_with_targets(readme: str, results: Dict[str, Any]) -> str:
  """`readme` with the block between its bench markers replaced by the
  targets' table of `results` and the date they were measured."""
  start = readme.index(README_BEGIN) + len(README_BEGIN)
  end = readme.index(README_END)
  block = [f"Measured {results['machine']['date'][:10]} on "
           f"{results['machine']['cores']} cores:", '',
           *targets_table(results)]
  return readme[:start] + '\n' + '\n'.join(block) + '\n' + readme[end:]


def markdown(results: Dict[str, Any]) -> str:
  """The report, as Markdown."""
  info = results['machine']
  lines = ['# Benchmark results', '',
           f"Measured {info['date']} by `make bench` on {info['cores']} cores "
           f"({info['machine']}, {info['system']}); Python {info['python']}, "
           f"TensorFlow {info['tensorflow']}, TFX {info['tfx']}, Beam "
           f"{info['apache_beam']}. The suite took "
           f"{results['bench_seconds'] / 60:.1f} min.", '',
           '## Targets', '', *targets_table(results)]

  one = results.get('pipeline_vs_notebook')
  if one:
    lines += ['', '## 1. Pipeline vs notebook', '',
              f"Same {one['images']:,} images, same model, "
              f"{one['notebook_steps']} training steps of 32 on both sides; "
              f"median of {one['repeats']} runs, each a new process.", '',
              '| | seconds |', '|---|---|',
              f"| pipeline, cold: ingest | {one['cold_ingest_seconds']:.1f} |",
              f"| pipeline, cold: run | {one['cold_run_seconds']:.1f} |",
              f"| **pipeline, cold: total** | **{one['cold_total_seconds']:.1f}"
              '** |',
              f"| pipeline, second run (Evaluator and pusher run again, "
              f"against the new baseline) | {one['second_run_seconds']:.1f} |",
              f"| **pipeline, cached rerun** | "
              f"**{one['cached_run_seconds']:.1f}** |",
              f"| **notebook script** | **{one['notebook_seconds']:.1f}** |",
              '', 'Time per component of the cold run (median):', '',
              '| component | seconds |', '|---|---|']
    lines += [f'| {c} | {s:.1f} |' for c, s in one['components'].items()]
    phases = one['notebook_phases']
    lines += ['', 'The notebook script by phase (median): ' + ', '.join(
        f"{k.replace('_seconds', '').replace('_', ' ')} {v:.1f} s"
        for k, v in phases.items()) + '.', '',
              'What each side gives: the notebook ends with a `.tflite` file '
              f"({one['notebook_tflite_bytes']:,} bytes; Keras accuracy "
              f"{one['notebook_accuracy']:.3f}, TFLite accuracy "
              f"{one['notebook_tflite_accuracy']:.3f} on its 20% "
              'validation subset). The pipeline also computes statistics, '
              'validates them against the schema, stops on bad data, '
              'evaluates against thresholds and the previous model, checks '
              'the TFLite model against the SavedModel before pushing it '
              'atomically with a manifest, records everything in ML Metadata, '
              'and reruns from its cache: evaluation '
              + ', '.join(f'{k} {v}' for k, v in sorted(
                  (one.get('pipeline_metrics') or {}).items())) + '.']

  throughput = results.get('input_throughput')
  if throughput:
    def rates(key):
      row = f"{throughput[f'{key}_images_per_second']:,.0f}"
      if f'{key}_first_pass_images_per_second' in throughput:
        row += (f" | {throughput[f'{key}_first_pass_images_per_second']:,.0f}"
                f" | {throughput[f'{key}_steady_images_per_second']:,.0f}")
      else:
        row += ' | | '
      return row
    flow = throughput['flow_from_directory_images_per_second']
    lines += ['', '## 2. Input throughput', '',
              'Images per second delivered in batches of 32, no model. Ours: '
              f"{throughput['steps']} batches from a fresh input, as the "
              'Trainer draws them (its first pass over the '
              f"{throughput['train_examples']:,} training examples decodes "
              'the PNGs and caches the 8-bit pixels on disk; later passes '
              'read that cache). `flow_from_directory`: '
              f"{throughput['flow_batches']} batches after 5 of warm-up.", '',
              '| input | images/s over the run | first pass | after it |',
              '|---|---|---|---|',
              f"| Trainer input, transformed examples through tf.data "
              f"| {rates('ours')} |",
              f"| the same, with the Trainer's augmentation (random shift "
              f"and masked bands) | {rates('ours_augmented')} |",
              f'| `flow_from_directory` over the same PNGs (no augmentation) '
              f'| {flow:,.0f} | | |', '',
              f"Like for like (no augmentation on either side), our input "
              f"delivers {throughput['ratio']:.1f}x the images per second of "
              f"`flow_from_directory`; with the augmentation the Trainer "
              f"applies, {throughput['ratio_augmented']:.1f}x."]

  model = results.get('pushed_model')
  if model:
    lines += ['', '## 3. The pushed model', '',
              f"Eval split ({model['eval_images']} images). Latency: one "
              f"image, one interpreter thread, after warm-up; the median of "
              f"{LATENCY_ROUNDS} rounds, each the median of "
              f"{model['invokes']} invokes, the modes taking turns.", '',
              '| mode | bytes | vs float32 | accuracy | AUC | agreement with '
              'SavedModel | latency ms |', '|---|---|---|---|---|---|---|']
    for mode, row in model['modes'].items():
      name = 'float32 (no quantization)' if mode == 'none' else mode
      lines.append(
          f"| {name} | {row['tflite_bytes']:,} | {row['size_ratio']:.3f} | "
          f"{row['tflite_accuracy']:.4f} | {row['tflite_auc']:.4f} | "
          f"{row['agreement']:.4f} | {row['latency_ms_median']:.3f} |")
    keras = model['keras']
    lines += ['', f"The Keras model (SavedModel, TensorFlow threads: all "
              f"cores): `predict` on one image {keras['predict_one_ms']:.2f} "
              f"ms; `model(x)` on one image {keras['call_one_ms']:.2f} ms; "
              f"`model(x)` on a batch of 32 {keras['call_batch32_ms']:.1f} ms "
              f"({keras['call_batch32_per_image_ms']:.2f} ms per image)."]

  scale = results.get('scale', {}).get('rows')
  if scale:
    factors = sorted(scale, key=int)
    components = list(scale[factors[0]]['components'])
    lines += ['', '## 4. Scale', '',
              'The default settings (500 training steps) on 1x, 4x and 8x the '
              'default data; one run each.', '',
              '| | ' + ' | '.join(f'{f}x' for f in factors) + ' |',
              '|---' * (len(factors) + 1) + '|',
              '| images | ' + ' | '.join(f"{scale[f]['images']:,}"
                                         for f in factors) + ' |',
              '| ingest s | ' + ' | '.join(
                  f"{scale[f]['ingest_seconds']:.1f}" for f in factors) + ' |',
              '| **run s** | ' + ' | '.join(
                  f"**{scale[f]['run_seconds']:.1f}**" for f in factors)
              + ' |']
    for component in components:
      lines.append(f'| {component} s | ' + ' | '.join(
          f"{scale[f]['components'].get(component, 0):.1f}"
          for f in factors) + ' |')
    lines += ['| **peak memory MiB** | ' + ' | '.join(
        f"**{scale[f]['peak_rss_bytes'] / 2**20:,.0f}**" for f in factors)
              + ' |',
              '| bytes per transformed example | ' + ' | '.join(
                  f"{scale[f]['bytes_per_transformed_example'] or 0:,.0f}"
                  for f in factors) + ' |']
  history = results.get('history', {}).get('rows')
  if history:
    lines += ['', '## 5. History', '',
              'Spans of 1x each, ingested and run one after another in one '
              'workspace with the default window of 3 spans; one run each'
              + (f" (measured {results['history']['measured']})"
                 if results['history'].get('measured') else '') + '.',
              '', '| run | window | ingest s | run s | peak memory MiB |',
              '|---|---|---|---|---|']
    for row in history:
      lines.append(
          f"| {row['span']} | {', '.join(map(str, row['window'] or []))} | "
          f"{row['ingest_seconds']:.1f} | {row['run_seconds']:.1f} | "
          f"{row['peak_rss_bytes'] / 2**20:,.0f} |")
    again = rerun_medians(results['history'])
    if len(again) == 2:
      first, last = sorted(again)
      repeats = min(again[first]['repeats'], again[last]['repeats'])
      lines += ['', f'One run each is noisy, so the workspace as it stood '
                f'after run {first} and after run {last} was put back and '
                f'run again with the cache off, {repeats} times each, the '
                'two taking turns. Medians; the targets use these:', '',
                f'| | run {first} | run {last} | ratio |', '|---|---|---|---|']
      components = sorted(set(again[first]['components'])
                          | set(again[last]['components']),
                          key=lambda c: -again[last]['components'].get(c, 0))
      for component in components:
        a = again[first]['components'].get(component, 0.0)
        b = again[last]['components'].get(component, 0.0)
        if max(a, b) >= 0.5:
          lines.append(f'| {component} s | {a:.1f} | {b:.1f} | '
                       f'{b / a if a else float("nan"):.2f} |')
      a, b = again[first]['run_seconds'], again[last]['run_seconds']
      lines.append(f'| **run s** | **{a:.1f}** | **{b:.1f}** | '
                   f'**{b / a:.2f}** |')
      a, b = again[first]['run_cpu_seconds'], again[last]['run_cpu_seconds']
      if a == a and b == b:  # Not NaN: measured since CPU time was recorded.
        lines.append(f'| run CPU s (user + system) | {a:.1f} | {b:.1f} | '
                     f'{b / a:.2f} |')
      a, b = again[first]['peak_rss_bytes'], again[last]['peak_rss_bytes']
      lines.append(f'| **peak memory MiB** | **{a / 2**20:,.0f}** | '
                   f'**{b / 2**20:,.0f}** | **{b / a:.2f}** |')
      turns = turn_ratios(results['history'], first, last)
      lines += ['', f'Run {last} against run {first} in each turn (run '
                'seconds): ' + ', '.join(f'{t:.2f}' for t in turns) +
                f'; median **{median(turns):.2f}**, the target\'s figure. '
                'The ratio of the medians above compares runs from '
                'different turns, and this machine\'s speed drifts between '
                'turns by more than the bound; the CPU seconds show the '
                'work each run does.']
  storage = results.get('storage_layer')
  if storage:
    lines += ['', '## 6. Storage layer', '',
              f"A cold default run (ingest + run, local disk, SQLite) of this "
              f"checkout and of commit {storage['baseline']}, before the "
              "storage layer and the metadata URL, taking turns, "
              f"{storage['repeats']} times each (measured "
              f"{storage['measured']}). Medians:", '',
              '| | before | now | ratio |', '|---|---|---|---|']
    before, now = storage['medians']['baseline'], storage['medians']['current']
    for key, label in (('ingest_seconds', 'ingest s'), ('run_seconds',
                                                        'run s'),
                       ('total_seconds', '**ingest + run s**')):
      lines.append(f'| {label} | {before[key]:.1f} | {now[key]:.1f} | '
                   f'{now[key] / before[key]:.3f} |')
    # The Trainer runs the same code on a local disk before and after, and
    # its time alone varies most on this machine (see part 5).
    rest = {side: median([r['total_seconds'] - r['components'].get(
        'Trainer', 0.0) for r in rows])
            for side, rows in storage['runs'].items()}
    trainer = {side: median([r['components'].get('Trainer', 0.0)
                             for r in rows])
               for side, rows in storage['runs'].items()}
    lines.append(f"| Trainer s | {trainer['baseline']:.1f} | "
                 f"{trainer['current']:.1f} | "
                 f"{trainer['current'] / trainer['baseline']:.3f} |")
    lines.append(f"| ingest + run without the Trainer s | "
                 f"{rest['baseline']:.1f} | {rest['current']:.1f} | "
                 f"{rest['current'] / rest['baseline']:.3f} |")
    lines.append(f"| peak memory MiB | {before['peak_rss_bytes'] / 2**20:,.0f}"
                 f" | {now['peak_rss_bytes'] / 2**20:,.0f} | "
                 f"{now['peak_rss_bytes'] / before['peak_rss_bytes']:.3f} |")
  beam = results.get('beam_profiles')
  if beam:
    lines += ['', '## 7. Beam profiles', '',
              'A cold run (ingest + run) with `--beam local` (in-process) '
              'and `--beam portable` (a worker pool; every DoFn in separate '
              'SDK worker processes, as on Dataflow), one run each, taking '
              f"turns (measured {beam['measured']}). Peak memory is the "
              "whole process tree's: runner, pool and workers.", '',
              '| data | profile | ingest s | run s | portable / local run '
              '| peak MiB | portable / local peak |',
              '|---|---|---|---|---|---|---|']
    for factor in beam['factors']:
      local = beam['rows'].get(f'local-{factor}x')
      for profile in ('local', 'portable'):
        row = beam['rows'].get(f'{profile}-{factor}x')
        if not row:
          continue
        time_ratio = peak_ratio = ''
        if profile == 'portable' and local:
          time_ratio = f"{row['run_seconds'] / local['run_seconds']:.2f}"
          peak = row['peak_rss_bytes'] / local['peak_rss_bytes']
          peak_ratio = f'{peak:.2f}'
        lines.append(
            f"| {factor}x ({row['images']:,} images) | {profile} | "
            f"{row['ingest_seconds']:.1f} | {row['run_seconds']:.1f} | "
            f"{time_ratio} | {row['peak_rss_bytes'] / 2**20:,.0f} | "
            f'{peak_ratio} |')
    components = sorted({c for row in beam['rows'].values()
                         for c in row['components']})
    names = [f'{profile}-{factor}x' for factor in beam['factors']
             for profile in ('local', 'portable')
             if f'{profile}-{factor}x' in beam['rows']]
    lines += ['', 'Seconds per component:', '',
              '| component | ' + ' | '.join(names) + ' |',
              '|---|' + '---|' * len(names)]
    for component in components:
      lines.append(f'| {component} | ' + ' | '.join(
          f"{beam['rows'][n]['components'].get(component, 0.0):.1f}"
          for n in names) + ' |')
  search = results.get('search')
  if search:
    lines += _search_lines(search)
  study = results.get('width_study')
  if study:
    lines += _width_lines(study)
  if results.get('width_side_by_side'):
    lines += _side_lines(results['width_side_by_side'])
  if results.get('audio'):
    lines += _audio_lines(results['audio'])
  if results.get('waveform'):
    lines += _waveform_lines(results['waveform'])
  if results.get('board'):
    lines += _board_lines(results['board'])
  return '\n'.join(lines) + '\n'


def _search_lines(search: Dict[str, Any]) -> List[str]:
  """Part 8's section of the report."""
  runs = search['runs']
  default, tuned = runs['default'], runs['tuned']
  done = [t for t in search['trials'] if t.get('auc') is not None]
  seconds = [t['seconds'] for t in done]
  lines = ['', '## 8. Model search', '',
           f"The 1x default data: a default run, and a run with `--tune true "
           f"--tune-trials {len(search['trials'])} --max-tflite-bytes "
           f"{search['budget']}` (measured {search['measured']}). The search "
           f"took {tuned.get('search_seconds') or 0:.1f} s, "
           f"{median(seconds):.1f} s per trial (median; each trains the "
           'trial\'s short number of steps, then exports, converts and times '
           'its model).', '',
           '| trial | width | dropout | learning rate | TFLite bytes | '
           'latency ms | AUC (short training) | within budget |',
           '|---|---|---|---|---|---|---|---|']
  for t in search['trials']:
    hp = t.get('hyperparameters', {})
    mark = ' (chosen)' if t['trial_id'] == search['chosen_trial'] else ''
    lines.append(
        f"| {t['trial_id']}{mark} | {hp.get('width')} | {hp.get('dropout')} "
        f"| {hp.get('learning_rate', 0):.2e} | "
        f"{t.get('tflite_bytes', 0):,} | "
        f"{t.get('latency_ms_median', float('nan')):.3f} | "
        f"{t.get('auc', float('nan')):.4f} | "
        f"{'yes' if t.get('within_budget') else 'no'} |")

  def cell(figures, key, form):
    value = figures.get(key)
    return 'n/a' if value is None else format(value, form)

  lines += ['', 'The pushed models (the chosen settings trained the full '
            'number of steps; latency: both files side by side, one thread, '
            'the median of 5 rounds of 300 invokes, taking turns):', '',
            '| | default | searched | searched / default |',
            '|---|---|---|---|']
  for key, label, form in (('pushed_bytes', 'TFLite bytes', ',.0f'),
                           ('latency_ms', 'latency ms', '.3f'),
                           ('evaluator_auc', 'AUC (Evaluator)', '.4f'),
                           ('tflite_auc', 'AUC (TFLite, pusher)', '.4f'),
                           ('accuracy', 'accuracy (Evaluator)', '.4f'),
                           ('trainer_seconds', 'Trainer s', '.1f'),
                           ('run_seconds', 'run s', '.1f')):
    a, b = default.get(key), tuned.get(key)
    ratio = (f'{b / a:.3f}' if a and b is not None
             and key not in ('evaluator_auc', 'tflite_auc', 'accuracy')
             else (f'{b - a:+.4f}' if a is not None and b is not None
                   else 'n/a'))
    lines.append(f'| {label} | {cell(default, key, form)} | '
                 f'{cell(tuned, key, form)} | {ratio} |')
  lines += ['', 'AUC and accuracy rows give the difference (searched minus '
            'default), not a ratio.']
  return lines


def write_reports(results: Dict[str, Any], folder: str) -> str:
  """Writes `folder`/RESULTS.md and the README's targets' table from
  `results`; returns the RESULTS.md text."""
  text = markdown(results)
  with open(os.path.join(folder, 'RESULTS.md'), 'w', encoding='utf-8') as f:
    f.write(text)
  if results.get('width_study'):
    with open(os.path.join(folder, 'width_study.svg'), 'w',
              encoding='utf-8') as f:
      f.write(width_chart(results['width_study']['rows']))
  readme_path = os.path.join(ROOT, 'README.md')
  with open(readme_path, encoding='utf-8') as f:
    readme = f.read()
  with open(readme_path, 'w', encoding='utf-8') as f:
    f.write(readme_with_targets(readme, results))
  return text


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default=os.path.join(ROOT, 'bench', 'out'))
  parser.add_argument('--results', default=os.path.join(ROOT, 'bench'),
                      help='folder of RESULTS.md and results.json')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--invokes', type=int, default=300)
  parser.add_argument('--batches', type=int, default=150)
  parser.add_argument('--steps', type=int, default=500)
  parser.add_argument('--scale', default='1,4,8',
                      help='multiples of the default data (default %(default)s)')
  parser.add_argument('--parts', default='1,2,3,4,5,6,7,8,9,10,11,12,13')
  parser.add_argument('--side-width', type=float, default=0.5,
                      help='the narrower width part 10 runs beside the '
                      'default (default %(default)s)')
  parser.add_argument('--audio-per-class', type=int, default=100,
                      help='clips per class of part 11 (default %(default)s)')
  parser.add_argument('--stream-seconds', default='360,3600',
                      help="part 11's stream lengths in seconds (default "
                      '%(default)s)')
  parser.add_argument('--beam-scale', default='1,8',
                      help='multiples of the default data for part 7 '
                      '(default %(default)s)')
  parser.add_argument('--baseline', default='84ec98d',
                      help='commit part 6 compares with (default %(default)s, '
                      'the last before the storage layer)')
  parser.add_argument('--history-spans', type=int, default=8,
                      help='spans of part 5 (default %(default)s)')
  parser.add_argument('--per-class', type=int, default=DEFAULT_PER_CLASS,
                      help='images per class of the 1x data (default '
                      '%(default)s, the default data set)')
  parser.add_argument('--search-trials', type=int, default=6,
                      help='trials of part 8 (default %(default)s)')
  parser.add_argument('--search-budget', type=int, default=0,
                      help="part 8's --max-tflite-bytes (default: half the "
                      "default model's bytes)")
  parser.add_argument('--arena-budget', type=int, default=262_144,
                      help='part 13: the arena budget of the search '
                      '(default %(default)s, 256 KB)')
  parser.add_argument('--width-seeds', type=int, default=3,
                      help='seeds per width of part 9 (default %(default)s)')
  parser.add_argument('--keep', action='store_true',
                      help='keep the scaled workspaces and data')
  parser.add_argument('--readme', action='store_true',
                      help='only write RESULTS.md and the README\'s table '
                      'from the committed results.json, measuring nothing')
  args = parser.parse_args(argv)
  if args.readme:
    with open(os.path.join(args.results, 'results.json'),
              encoding='utf-8') as f:
      results = json.load(f)
    write_reports(results, args.results)
    return 0
  parts = {int(p) for p in args.parts.split(',')}
  RUN_ARGS[:] = ['--train-steps', str(args.steps)]
  started = time.time()
  os.makedirs(os.path.join(args.out, 'logs'), exist_ok=True)
  data_dir = os.path.join(args.out, 'data-1x')
  if parts & {1, 2, 3, 4, 6, 8, 9, 10, 13}:
    log(f'making the default data in {data_dir}')
    synth(data_dir, args.per_class, 0, os.path.join(args.out, 'logs'))
  results: Dict[str, Any] = {}
  previous = os.path.join(args.results, 'results.json')
  if parts != set(range(1, 14)) and os.path.exists(previous):
    # A partial bench replaces only the parts it measured.
    with open(previous, encoding='utf-8') as f:
      results = json.load(f)
    log(f'keeping the figures of the parts not run from {previous}')
  # The header's date and suite time stay those of the last full bench; a
  # part run alone says when it was measured in its own section.
  merged = 'machine' in results
  results.setdefault('machine', machine())
  workspace = os.path.join(args.out, 'ws-1x')
  if 1 in parts:
    results['pipeline_vs_notebook'] = part_pipeline_vs_notebook(
        data_dir, args.out, args.repeats, args.steps, args.per_class)
  elif parts & {2, 3, 4} and not os.path.isdir(workspace):
    log('preparing a workspace for parts 2-4')
    one = pipeline_run(workspace, data_dir, os.path.join(args.out, 'logs'),
                       'prepare')
    results['pipeline_vs_notebook'] = {
        'cold_runs': [{k: v for k, v in one.items() if k != 'summary'}],
        'transformed_bytes': _bytes_per_example(one['summary'])}
  if 2 in parts:
    results['input_throughput'] = part_input_throughput(
        workspace, data_dir, args.out, args.steps, args.batches)
  if 3 in parts:
    results['pushed_model'] = part_pushed_model(workspace, args.invokes)
  if 4 in parts:
    factors = [int(f) for f in args.scale.split(',')]
    results['scale'] = part_scale(args.out, results['pipeline_vs_notebook'],
                                  factors, args.keep, args.per_class)
  if 5 in parts:
    results['history'] = part_history(args.out, args.history_spans,
                                      args.keep, args.per_class, args.repeats)
  if 6 in parts:
    results['storage_layer'] = part_storage_layer(
        data_dir, args.out, args.repeats, args.baseline)
  if 7 in parts:
    results['beam_profiles'] = part_beam_profiles(
        args.out, [int(f) for f in args.beam_scale.split(',')],
        args.per_class, args.keep)
  if 8 in parts:
    results['search'] = part_search(data_dir, args.out, args.search_trials,
                                    args.search_budget, args.keep)
  if 9 in parts:
    results['width_study'] = part_width_study(data_dir, args.out,
                                              args.width_seeds, args.keep)
  if 10 in parts:
    results['width_side_by_side'] = part_width_side_by_side(
        data_dir, args.out, args.repeats, args.steps, args.keep,
        args.side_width)
  if 12 in parts:
    log('part 12: the waveform model against the image model')
    results['waveform'] = part_waveform(args.out)
  if 13 in parts:
    results['board'] = part_board(data_dir, args.out, args.search_trials,
                                  args.arena_budget, args.keep)
  if 11 in parts:
    results['audio'] = part_audio(
        data_dir, args.out, args.audio_per_class,
        tuple(int(s) for s in args.stream_seconds.split(',')))
  if not merged:
    results['bench_seconds'] = time.time() - started
  results['ratios'] = ratios(results)
  os.makedirs(args.results, exist_ok=True)
  with open(os.path.join(args.results, 'results.json'), 'w',
            encoding='utf-8') as f:
    json.dump(results, f, indent=2, default=str)
  print(write_reports(results, args.results))
  log(f"done in {(time.time() - started) / 60:.1f} min; wrote "
      f"{os.path.join(args.results, 'RESULTS.md')}")
  return 0


if __name__ == '__main__':
  sys.exit(main())
