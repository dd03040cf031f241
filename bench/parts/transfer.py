"""Bench part 14, transfer across sample sets: the default data made from
one soundfont and three flite voices train a default run; the pushed model
then scores held-out clips made from the other soundfont and the other two
voices (another seed too), as a user's real recordings would come from
instruments and speakers the model never heard. Phase one's accuracy and
AUC, and recall per instrument family and per kind of other sound; phase
two's accuracy per family on the same clips, from KServe's model server;
the run is made twice from scratch, to show how far its figures move.
"""

import argparse
import collections
import datetime
import json
import os
import shutil
from typing import Any, Dict, List

from bench import cascade as bench_cascade
from bench import window_rule
from bench.parts.common import cli
from bench.parts.common import Context
from bench.parts.common import log
from bench.parts.common import pipeline_run
from bench.parts.common import run_process

NUMBER = 14
# The part's figures in results.json.
KEY = 'transfer'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = False
NEEDS_WORKSPACE = False
# The two sides, kept apart: soundfont (by file) and flite voices.
TRAIN_SET = {'fonts': ('/usr/share/sounds/sf2/TimGM6mb.sf2',),
             'voices': ('kal', 'awb', 'rms')}
HELD_OUT_SET = {'fonts': ('/usr/share/sounds/sf3/MuseScore_General.sf3',),
                'voices': ('slt', 'kal16')}
# The class scored as positive, as `predict --json` names its scores.
POSITIVE = 'instrument'


def _synth(folder: str, per_class: int, seed: int,
           subset: Dict[str, Any]) -> None:
  from pipeline.data import synth  # pylint: disable=g-import-not-at-top
  synth.synthesize(folder, per_class=per_class, seed=seed, file_format='wav',
                   source='sampled', subset=subset, replace=True,
                   progress=False)


def score(predictions: List[Dict[str, Any]]) -> Dict[str, Any]:
  """Accuracy, AUC and recall per sub-folder (family or kind) of `predict
  --json` answers on files laid out as `<class>/<sub-folder>/<file>`."""
  from components.common import metrics  # pylint: disable=g-import-not-at-top
  labels, scores = [], []
  groups: Dict[str, List[int]] = collections.defaultdict(lambda: [0, 0])
  for answer in predictions:
    truth, group = answer['path'].split(os.sep)[-3:-1]
    labels.append(int(truth == POSITIVE))
    scores.append(float(answer['scores'][POSITIVE]))
    groups[f'{truth}/{group}'][0] += int(answer['label'] == truth)
    groups[f'{truth}/{group}'][1] += 1
  found = metrics.binary_metrics(labels, scores)
  return {'accuracy': found['accuracy'], 'auc': found['auc'],
          'examples': len(labels),
          'recall': {name: hits / total
                     for name, (hits, total) in sorted(groups.items())}}


def score_phase_two(base: str, files: List[str]) -> Dict[str, Any]:
  """Phase two's answers from KServe's model server (as `serve` runs it)
  on the held-out clips: each clip's windows of PCM are sent in one
  request and the clip takes the class of the mean scores. Accuracy over
  the families and `not_instrument`, and accuracy per family or kind (for
  class 0's kinds: answered `not_instrument`)."""
  import base64  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from components.cloud import launch  # pylint: disable=g-import-not-at-top
  from components.cloud import push  # pylint: disable=g-import-not-at-top
  from components.frontend import melscale  # pylint: disable=g-import-not-at-top
  from components.frontend import windowing  # pylint: disable=g-import-not-at-top
  from pipeline.data import spectrogram  # pylint: disable=g-import-not-at-top
  version = push.versions(base)[-1]
  manifest = push.read_manifest(os.path.join(base, str(version)))
  front_end = manifest.front_end
  reject = manifest.classes[0]
  groups: Dict[str, List[int]] = collections.defaultdict(lambda: [0, 0])
  with launch.Server(base, manifest.model_name) as server:
    server.wait_ready()
    for path in files:
      truth, group = path.split(os.sep)[-3:-1]
      with open(path, 'rb') as f:
        audio, rate, _ = spectrogram.read_audio(f, path)
      windows = [melscale.pcm16_bytes(window) for _, _, window in
                 windowing.sample_windows(audio, rate, front_end, 32)]
      status, answer = launch.post(server.predict_url(), {'instances': [
          {'b64': base64.b64encode(data).decode()} for data in windows]})
      if status != 200:
        raise RuntimeError(f'{path}: the server answered {status}: {answer}')
      scores = np.mean([row['scores'] for row in answer['predictions']],
                       axis=0)
      said = manifest.classes[int(np.argmax(scores))]
      wanted = group if truth == POSITIVE else reject
      groups[f'{truth}/{group}'][0] += int(said == wanted)
      groups[f'{truth}/{group}'][1] += 1
  hits = sum(h for h, _ in groups.values())
  total = sum(t for _, t in groups.values())
  return {'accuracy': hits / total, 'examples': total, 'version': version,
          'classes': manifest.classes,
          'accuracy_by_group': {name: h / t for name, (h, t)
                                in sorted(groups.items())}}


def part_transfer(out: str, per_class: int, held_out: int, runs: int,
                  keep: bool) -> Dict[str, Any]:
  """Part 14: trained on one sample set, scored on the other, `runs`
  times from scratch (a run repeats for a seed: the figures should not
  move between them)."""
  logs = os.path.join(out, 'logs')
  train_dir = os.path.join(out, 'transfer-train')
  held_dir = os.path.join(out, 'transfer-held-out')
  log(f'part 14: {per_class} clips per class from {TRAIN_SET}')
  _synth(train_dir, per_class, 0, TRAIN_SET)
  log(f'part 14: {held_out} held-out clips per class from {HELD_OUT_SET}')
  _synth(held_dir, held_out, 1, HELD_OUT_SET)
  files = sorted(os.path.join(folder, name)
                 for folder, _, names in os.walk(held_dir)
                 for name in names if name.endswith('.wav'))
  from pipeline.settings import config as config_lib  # pylint: disable=g-import-not-at-top
  steps = config_lib.PipelineConfig().train_steps
  measured = []
  for number in range(1, runs + 1):
    workspace = os.path.join(out, f'ws-transfer-{number}')
    shutil.rmtree(workspace, ignore_errors=True)
    # The default run's steps, whatever --steps the other parts use.
    run = pipeline_run(workspace, train_dir, logs, f'transfer-{number}',
                       extra=('--train-steps', str(steps)))
    answered = run_process(
        cli('predict', '--model', os.path.join(workspace, 'pushed'),
            '--json', *files),
        os.path.join(logs, f'transfer-{number}-predict.log'))
    found = score(json.loads(answered['stdout']))
    found.update(eval_split=run['summary'].get('metrics') or {},
                 run_seconds=run['run_seconds'])
    # Phase two, served as `python -m pipeline serve` serves it.
    cloud = run['summary'].get('phase_two') or {}
    if (cloud.get('pushed') or {}).get('pushed'):
      found['phase_two'] = dict(
          score_phase_two(os.path.join(workspace, 'served', 'instruments'),
                          files),
          eval_split=cloud.get('metrics') or {})
      log(f"part 14: run {number}: phase two held-out accuracy "
          f"{found['phase_two']['accuracy']:.4f}")
      # The pair, as a device runs it: `predict --cascade`'s client.
      found['cascade'] = bench_cascade.run(workspace, held_dir)
      log(f"part 14: run {number}: the cascade's held-out accuracy at 20% "
          f"instruments {found['cascade']['cascade']['accuracy_pi_0.2']:.4f}")
    # How a recording longer than one window is answered.
    from pipeline.serving import predict  # pylint: disable=g-import-not-at-top
    found['window_rule'] = window_rule.measure(
        predict.PushedModel(os.path.join(workspace, 'pushed')), held_dir,
        window_rule.LENGTHS, held_out)
    measured.append(found)
    if not keep:
      shutil.rmtree(workspace, ignore_errors=True)
    log(f"part 14: run {number}: held-out accuracy {found['accuracy']:.4f},"
        f" AUC {found['auc']:.4f}")
  accuracies = [found['accuracy'] for found in measured]
  return dict(measured[0], runs=measured,
              accuracy_spread=max(accuracies) - min(accuracies),
              measured=datetime.date.today().isoformat(),
              per_class=per_class, held_out_per_class=held_out,
              train_steps=steps,
              train_set=TRAIN_SET, held_out_set=HELD_OUT_SET)


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 14's section of RESULTS.md (none when not measured)."""
  found = results.get(KEY)
  if not found:
    return []
  fonts = {side: ', '.join(os.path.basename(font)
                           for font in found[side]['fonts'])
           for side in ('train_set', 'held_out_set')}
  lines = ['', '## 14. Transfer across sample sets', '',
           f"Trained on {found['per_class']:,} clips per class rendered from "
           f"{fonts['train_set']} and flite's "
           f"{', '.join(found['train_set']['voices'])}; scored on "
           f"{found['held_out_per_class']:,} held-out clips per class from "
           f"{fonts['held_out_set']} and "
           f"{', '.join(found['held_out_set']['voices'])}"
           + (f", the default run's {found['train_steps']:,} training steps"
              if found.get('train_steps') else '')
           + f" (measured {found['measured']}).", '',
           '| | accuracy | AUC |', '|---|---|---|']
  for number, run in enumerate(found.get('runs') or [found], start=1):
    lines += [f"| run {number}: its own eval split | "
              f"{run['eval_split'].get('binary_accuracy', float('nan')):.4f}"
              f" | {run['eval_split'].get('auc', float('nan')):.4f} |",
              f"| **run {number}: held-out sample set** | "
              f"**{run['accuracy']:.4f}** | **{run['auc']:.4f}** |"]
  if found.get('runs'):
    lines += ['', f"Held-out accuracy moved by {found['accuracy_spread']:.4f}"
              f" between the {len(found['runs'])} runs from scratch."]
  lines += ['', 'Recall on the held-out set (run 1):', '',
            '| family or kind | recall |', '|---|---|']
  lines += [f'| {name} | {recall:.2f} |'
            for name, recall in found['recall'].items()]
  cloud = found.get('phase_two')
  if cloud:
    lines += ['', f"Phase two (the cloud model), served by KServe's model "
              f"server as `serve` runs it, on the same held-out clips (run 1;"
              f" each clip's windows in one request, the mean of their "
              f"scores): accuracy over the families and "
              f"{cloud['classes'][0]} **{cloud['accuracy']:.4f}** on "
              f"{cloud['examples']} clips; its own eval split "
              f"{cloud['eval_split'].get('sparse_categorical_accuracy', float('nan')):.4f}.",
              '', '| family or kind | phase two right |', '|---|---|']
    lines += [f'| {name} | {share:.2f} |'
              for name, share in cloud['accuracy_by_group'].items()]
  pair = found.get('cascade')
  if pair:
    lines += ['', f"The cascade on the same clips as a device runs it "
              f"(`predict --cascade` against `serve`; phase one at "
              f"{pair['threshold']:.4g}), reweighted to 20% instruments "
              '(`bench/cascade.py`):', '',
              '| | accuracy at 20% instruments | cloud share |',
              '|---|---|---|',
              f"| cascade | **{pair['cascade']['accuracy_pi_0.2']:.4f}** | "
              f"{pair['cascade']['cloud_share_pi_0.2']:.4f} |",
              f"| device alone | {pair['device_alone']['accuracy_pi_0.2']:.4f}"
              ' | 0 |',
              f"| cloud alone | {pair['cloud_alone']['accuracy_pi_0.2']:.4f} |"
              ' 1 |']
  rule = found.get('window_rule')
  if rule:
    lines += ['', 'Recordings longer than one window, joined from the same '
              'held-out clips (`bench/window_rule.py`): accuracy of each rule '
              'over the windows, the last window padded with silence or '
              'aligned to the end.', '',
              '| length | ' + ' | '.join(rule['lengths'][next(iter(
                  rule['lengths']))]) + ' |',
              '|---|' + '---|' * len(rule['lengths'][next(iter(
                  rule['lengths']))])]
    for length, table in rule['lengths'].items():
      lines.append(f'| {length} s | ' + ' | '.join(
          f"{row['accuracy']:.4f}" for row in table.values()) + ' |')
  return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--transfer-per-class', type=int, default=1000,
                      help='training clips per class of part 14 (default '
                      '%(default)s)')
  parser.add_argument('--transfer-held-out', type=int, default=150,
                      help='held-out clips per class of part 14 (default '
                      '%(default)s)')
  parser.add_argument('--transfer-runs', type=int, default=2,
                      help='runs from scratch of part 14, to show a run '
                      'repeats (default %(default)s)')


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 14; its figures."""
  return part_transfer(ctx.out, args.transfer_per_class,
                       args.transfer_held_out, args.transfer_runs, args.keep)
