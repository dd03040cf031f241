"""Bench part 15, phase two across sample sets: each of the default data's
sample sets (soundfonts) held out in turn. Phase two's classifier, with the
default run's ears (`phase_two_encoder`), steps, batch size and learning
rate, is trained on clips rendered from the other sets and scored on clips
of the held-out one: family accuracy over its instruments, recall per
family, and how many of its other sounds it rejects. It runs phase two's
own code (`components.modules.phase_two_audio`), not a whole pipeline, so
it measures phase two alone; the cascade end to end on a held-out set is
part 14's.

A recording longer than a window reaches the cloud as several windows, and
`predict --cascade` answers a segment of flagged windows with the highest
mean of their scores (the client combines them: it alone knows which
windows are one segment, and a server answers each request by itself). The
part measures that rule's gain: the held-out set's clips of one family,
taken three at a time as the windows of one recording, are answered by
their mean score (`three_window_accuracy`) against one window each.
"""

import argparse
import datetime
import os
import time
from typing import Any, Dict, List, Tuple

from bench.parts.common import Context
from bench.parts.common import log

NUMBER = 15
# The part's figures in results.json.
KEY = 'sample_sets'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = False
NEEDS_WORKSPACE = False
SEED = 15


def _render(font: str, seed: int, per_family: int, others: int):
  """(float32 [n, samples] clips, family or '' per clip) of one sample
  set: `per_family` clips of every family and `others` other sounds, as the
  default data renders them (nuisances included). Each set has its own
  `seed`: with one seed, clip i of every set plays the same notes on the
  same program with the same nuisances, and a held-out clip's twins in
  the training sets flattered the figures (0.91 against 0.68 in a pilot
  here)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from pipeline.data import sampled  # pylint: disable=g-import-not-at-top
  from pipeline.data import synth  # pylint: disable=g-import-not-at-top
  sampled.fresh(fonts=(font,))
  clips, families = [], []
  count = per_family * len(sampled.INSTRUMENT_FAMILIES)
  for label, total in ((1, count), (0, others)):
    for index in range(total):
      folder, audio = synth.make_sampled_clip(seed, label, index)
      clips.append(audio.astype(np.float32))
      families.append(folder.split('/')[0] if label else '')
  sampled.fresh()
  return np.stack(clips), families


def _score(head, embedded, labels, names) -> Dict[str, Any]:
  """Family accuracy over the instruments, recall per family, reject
  recall over the other sounds."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  scores = head.predict(embedded, verbose=0)
  predicted = np.argmax(scores, axis=1)
  instruments = labels > 0
  recall = {name: round(float(np.mean(predicted[labels == index] == index)), 4)
            for index, name in enumerate(names)
            if index and np.any(labels == index)}
  right = []
  for index in range(1, len(names)):
    rows = np.flatnonzero(labels == index)
    for start in range(0, len(rows) - 2, 3):
      mean = scores[rows[start:start + 3]].mean(axis=0)
      right.append(int(np.argmax(mean) == index))
  return {
      'family_accuracy': round(float(np.mean(
          predicted[instruments] == labels[instruments])), 4),
      'three_window_accuracy': round(float(np.mean(right)), 4),
      'mean_family_recall': round(float(np.mean(list(recall.values()))), 4),
      'reject_recall': round(float(np.mean(predicted[~instruments] == 0)),
                             4),
      'recall': recall, 'instruments': int(instruments.sum()),
      'others': int((~instruments).sum())}


def part_sample_sets(per_family: int, others: int) -> Dict[str, Any]:
  """Part 15 (see the module's docstring); its figures."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from components.modules import phase_two_audio  # pylint: disable=g-import-not-at-top
  from components.music import musicnn  # pylint: disable=g-import-not-at-top
  from pipeline.data import sampled  # pylint: disable=g-import-not-at-top
  from pipeline.settings import config as config_lib  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  config = config_lib.PipelineConfig()
  settings = config.phase_two_settings()
  fonts = [font for font in sampled.SOUNDFONTS if os.path.isfile(font)]
  names = [config.class_names[0]] + sorted(sampled.INSTRUMENT_FAMILIES)
  encoder = musicnn.SequenceEncoder(settings.encoder)
  run = tf.function(lambda x: tf.cast(encoder(x), tf.float16),
                    autograph=False)
  sets: Dict[str, Tuple[Any, Any]] = {}
  started = time.time()
  for number, font in enumerate(fonts):
    clips, families = _render(font, SEED + number, per_family, others)
    embedded = np.concatenate([run(clips[i:i + 64]).numpy()
                               for i in range(0, len(clips), 64)])
    labels = np.array([names.index(f) if f else 0 for f in families])
    sets[os.path.basename(font)] = (embedded, labels)
    log(f'part 15: {os.path.basename(font)}: {len(clips)} clips heard '
        f'({time.time() - started:.0f} s)')
  held_out: Dict[str, Any] = {}
  for name, (embedded, labels) in sets.items():
    others_sets = [value for key, value in sets.items() if key != name]
    train = (np.concatenate([e for e, _ in others_sets]),
             np.concatenate([l for _, l in others_sets]).astype(np.int32))
    tf.keras.utils.set_random_seed(settings.seed)
    head = phase_two_audio.train_head(
        train, len(names), settings.head_steps, settings.batch_size,
        settings.learning_rate, settings.seed)
    held_out[name] = _score(head, embedded, labels, names)
    log(f"part 15: {name} held out: family accuracy "
        f"{held_out[name]['family_accuracy']:.4f}, reject "
        f"{held_out[name]['reject_recall']:.4f}")
  return {'measured': f'{datetime.date.today()}',
          'encoder': list(settings.encoder), 'per_family': per_family,
          'others': others, 'steps': settings.head_steps,
          'held_out': held_out}


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 15's section of RESULTS.md (none when not measured)."""
  found = results.get(KEY)
  if not found:
    return []
  sets = list(found['held_out'])
  lines = ['', '## 15. Phase two across sample sets', '',
           f"Phase two's classifier on {' + '.join(found['encoder'])} "
           f"({found['steps']:,} steps), trained on every sample set but "
           f"one ({found['per_family']} clips per family and "
           f"{found['others']} other sounds each) and scored on the one "
           f"held out (measured {found['measured']}).", '',
           '| held out | family accuracy | three windows of one recording '
           '| mean family recall | reject recall |', '|---|---|---|---|---|']
  for name in sets:
    row = found['held_out'][name]
    lines.append(f"| {name} | **{row['family_accuracy']:.4f}** | "
                 f"{row['three_window_accuracy']:.4f} | "
                 f"{row['mean_family_recall']:.4f} | "
                 f"{row['reject_recall']:.4f} |")
  families = sorted(found['held_out'][sets[0]]['recall'])
  lines += ['', 'Recall per family, by the set held out:', '',
            '| family | ' + ' | '.join(sets) + ' |',
            '|---|' + '---|' * len(sets)]
  lines += [f'| {family} | ' + ' | '.join(
      f"{found['held_out'][name]['recall'].get(family, float('nan')):.2f}"
      for name in sets) + ' |' for family in families]
  return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--sample-set-clips', type=int, default=100,
                      help='part 15: clips per family of each sample set '
                      '(default %(default)s)')
  parser.add_argument('--sample-set-others', type=int, default=300,
                      help='part 15: other sounds of each sample set '
                      '(default %(default)s)')


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 15; its figures."""
  del ctx
  return part_sample_sets(args.sample_set_clips, args.sample_set_others)
