"""How a recording's windows become its answer, measured: the padding of
a recording's last window and the rule over its windows' scores, on
held-out recordings longer than one window.

`python bench/window_rule.py --model PUSHED --data DIR [--lengths 1.25,1.5,2.5] [--json OUT]`

Recordings of each length are made by joining `DIR`'s one-window clips of
one class (`<class>/<group>/<file>`, as `python -m pipeline synth` writes
them) and cutting the join to the length, so a recording's class is known
and its tail is a part of a window. Phase one's pushed model (the waveform
model when the version has one, run as `predict` runs it, on LiteRT) scores
every window under two paddings of the last window:

- `zeros`: windows every hop from the start, the last padded with digital
  silence (the front end's rule today);
- `end-aligned`: the same, but the last window ends where the recording
  ends (overlapping the one before), so no window of a recording at least
  one window long holds silence it did not have.

and three rules turn the windows' positive scores into the recording's:
its most positive window (`predict`'s rule today), the mean, and the first
window. A recording is positive when that score reaches the version's
threshold. The figures are each combination's accuracy, false-positive and
false-negative rates, and how many false positives the padded window alone
caused.
"""

import argparse
import collections
import json
import os
import sys
from typing import Any, Dict, List, Sequence

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
RULES = ('max', 'mean', 'first')
PADDINGS = ('zeros', 'end-aligned')
LENGTHS = (1.25, 1.5, 2.5)


def class_clips(folder: str) -> Dict[str, List[str]]:
  """The clips of each class folder, sorted."""
  found = collections.defaultdict(list)
  for top, _, names in os.walk(folder):
    parts = os.path.relpath(top, folder).split(os.sep)
    if len(parts) == 2:
      found[parts[0]].extend(os.path.join(top, name) for name in names)
  return {name: sorted(paths) for name, paths in found.items()}


def recordings(clips: Sequence[np.ndarray], samples: int,
               rng: np.random.Generator, count: int) -> List[np.ndarray]:
  """`count` recordings of `samples` samples, each joined from randomly
  chosen clips and cut to length."""
  made = []
  for _ in range(count):
    joined, total = [], 0
    while total < samples:
      clip = clips[int(rng.integers(len(clips)))]
      joined.append(clip)
      total += clip.size
    made.append(np.concatenate(joined)[:samples])
  return made


def windows(recording: np.ndarray, window: int, hop: int,
            padding: str) -> List[np.ndarray]:
  """The recording's windows under `padding` (see the module's
  docstring)."""
  count = 1 + max(0, int(np.ceil((recording.size - window) / hop)))
  starts = [index * hop for index in range(count)]
  if padding == 'end-aligned' and recording.size >= window:
    starts[-1] = recording.size - window
  cut = []
  for start in starts:
    piece = recording[start:start + window]
    cut.append(np.pad(piece, (0, window - piece.size)))
  return cut


def decide(scores: Sequence[float], rule: str) -> float:
  return {'max': max, 'mean': lambda s: float(np.mean(s)),
          'first': lambda s: s[0]}[rule](list(scores))


def measure(model, data: str, lengths: Sequence[float], per_class: int,
            seed: int = 0) -> Dict[str, Any]:
  """Every padding and rule at every length (see the module's docstring)."""
  from pipeline.data import spectrogram  # pylint: disable=g-import-not-at-top
  front_end = model.front_end
  rate = front_end.sample_rate
  negative, positive = model.labels[0], model.labels[-1]
  clips = {}
  for name, paths in class_clips(data).items():
    loaded = []
    for path in paths:
      with open(path, 'rb') as f:
        audio, clip_rate, _ = spectrogram.read_audio(f, path)
      if clip_rate != rate:
        raise ValueError(f'{path}: {clip_rate} Hz; the front end takes {rate}')
      loaded.append(np.asarray(audio, np.float32).reshape(-1))
    clips[name] = loaded
  rng = np.random.default_rng(seed)
  found: Dict[str, Any] = {'threshold': model.threshold,
                           'per_class': per_class, 'lengths': {}}
  for length in lengths:
    made = {name: recordings(clips[name], int(round(length * rate)), rng,
                             per_class) for name in (negative, positive)}
    table = {}
    for padding in PADDINGS:
      scored = {name: [[float(model.waveform.scores(w)[-1]) if model.waveform
                        is not None else model.window_prediction(
                            0.0, 0.0, w)['scores'][positive]
                        for w in windows(r, front_end.window_samples,
                                         front_end.hop_samples, padding)]
                       for r in made[name]] for name in made}
      for rule in RULES:
        false_pos = sum(int(decide(s, rule) >= model.threshold)
                        for s in scored[negative])
        false_neg = sum(int(decide(s, rule) < model.threshold)
                        for s in scored[positive])
        by_tail = sum(int(max(s[:-1] or [0.0]) < model.threshold <= s[-1])
                      for s in scored[negative]) if rule == 'max' else None
        table[f'{padding}/{rule}'] = {
            'accuracy': 1 - (false_pos + false_neg) / (2 * per_class),
            'false_positive_rate': false_pos / per_class,
            'false_negative_rate': false_neg / per_class,
            'false_positives_from_the_last_window': by_tail}
    found['lengths'][str(length)] = table
  return found


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', required=True,
                      help='a pushed version folder or push destination')
  parser.add_argument('--data', required=True,
                      help='one-window clips as <class>/<group>/<file>')
  parser.add_argument('--lengths', default=','.join(map(str, LENGTHS)),
                      help='recording lengths in seconds (default '
                      '%(default)s)')
  parser.add_argument('--per-class', type=int, default=150,
                      help='recordings per class and length (default '
                      '%(default)s)')
  parser.add_argument('--json', help='write the figures here too')
  args = parser.parse_args()
  from pipeline.serving import predict  # pylint: disable=g-import-not-at-top
  model = predict.PushedModel(args.model)
  found = measure(model, args.data,
                  [float(x) for x in args.lengths.split(',')], args.per_class)
  print(f"phase one v{model.manifest.version} at {found['threshold']:.4g}; "
        f"{args.per_class} recordings per class and length from {args.data}")
  print(f"{'length':>7} {'padding/rule':>18} {'accuracy':>9} {'FPR':>7} "
        f"{'FNR':>7} {'FP from tail':>13}")
  for length, table in found['lengths'].items():
    for name, row in table.items():
      tail = row['false_positives_from_the_last_window']
      print(f"{length:>7} {name:>18} {row['accuracy']:>9.4f} "
            f"{row['false_positive_rate']:>7.4f} "
            f"{row['false_negative_rate']:>7.4f} "
            f"{'' if tail is None else tail:>13}")
  if args.json:
    with open(args.json, 'w', encoding='utf-8') as f:
      json.dump(found, f, indent=2)
      f.write('\n')


if __name__ == '__main__':
  main()
