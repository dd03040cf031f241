"""The cascade on held-out recordings, as a device runs it: phase one
(the pushed TFLite version) on each window, the windows it flags sent to
phase two in KServe's model server through `predict --cascade`'s client
(`pipeline/serving/cascade.py`); each file takes the cascade's answer.

`python bench/cascade.py --workspace W --data DIR [--json OUT]`

`DIR` is laid out as `<class>/<family or kind>/<file>`: `instrument/bass/`,
`not_instrument/speech/`, ... (what `python -m pipeline synth` writes). A
file is answered right when the cascade names its family, or
`not_instrument` for class 0. The same files are also answered by the
device alone (phase one, no family: right only for class 0) and by the
cloud alone (every window sent). The figures are reweighted to 20%
instruments, the share the pipeline's CascadeEvaluator and its gate
judge at, beside the folder's own share.
"""

import argparse
import collections
import json
import os
import sys
import time
from typing import Any, Dict, List, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PI = 0.2


def labelled_files(folder: str) -> List[str]:
  """Every file under `<class>/<group>/` of `folder`, sorted."""
  found = []
  for top, _, names in os.walk(folder):
    if os.path.relpath(top, folder).count(os.sep) == 1:
      found.extend(os.path.join(top, name) for name in names)
  return sorted(found)


def _truth(path: str) -> Sequence[str]:
  return path.split(os.sep)[-3:-1]


def answer(push_destination: str, url: str, name: str, files: List[str],
           threshold=None) -> Dict[str, Any]:
  """The cascade's answer for each file (`threshold` 0: every window to
  the cloud), and its summary."""
  from pipeline.serving import predict  # pylint: disable=g-import-not-at-top
  model = predict.PushedModel(push_destination, keep_input=True,
                              threshold=threshold)
  router = predict.open_cascade(model, url, name, wait=None, block=True)
  results, summary = predict.cascade_files(model, files, router)
  failed = [r for r in results if r.error]
  if failed:
    raise RuntimeError(f'{failed[0].path}: {failed[0].error}')
  return {'results': results, 'summary': summary, 'model': model}


def score(results, reject: str, positive: str) -> Dict[str, Any]:
  """Accuracy over the families and `reject`, by group and reweighted to
  20% instruments; the share of files sent to the cloud."""
  groups: Dict[str, List[int]] = collections.defaultdict(lambda: [0, 0])
  sent = collections.Counter()
  for result in results:
    truth, group = _truth(result.path)
    wanted = group if truth == positive else reject
    groups[f'{truth}/{group}'][0] += int(result.label == wanted)
    groups[f'{truth}/{group}'][1] += 1
    sent[truth] += int(bool(result.cascade and result.cascade['sent']))

  def rate(cls):
    hits = sum(h for k, (h, _) in groups.items() if k.startswith(cls + '/'))
    total = sum(t for k, (_, t) in groups.items() if k.startswith(cls + '/'))
    return hits / total if total else None, total

  instruments, n_pos = rate(positive)
  others, n_neg = rate(reject)
  return {
      'files': n_pos + n_neg,
      'accuracy': (sum(h for h, _ in groups.values()) /
                   sum(t for _, t in groups.values())),
      f'accuracy_pi_{PI}': PI * instruments + (1 - PI) * others,
      'instrument_accuracy': instruments, 'not_instrument_accuracy': others,
      f'cloud_share_pi_{PI}': (PI * sent[positive] / n_pos +
                               (1 - PI) * sent[reject] / n_neg),
      'by_group': {k: round(h / t, 4) for k, (h, t) in sorted(groups.items())}}


def device_alone(results, reject: str, positive: str) -> Dict[str, Any]:
  """Phase one alone: right on class 0 when not flagged; an instrument is
  never named."""
  hits = collections.Counter()
  totals = collections.Counter()
  for result in results:
    truth, _ = _truth(result.path)
    totals[truth] += 1
    flagged = result.cascade and result.cascade['sent']
    hits[truth] += int(truth == reject and not flagged)
  others = hits[reject] / totals[reject]
  return {f'accuracy_pi_{PI}': (1 - PI) * others,
          'not_instrument_accuracy': others}


def run(workspace: str, data: str) -> Dict[str, Any]:
  """Serves the workspace's phase two, runs the cascade and both
  baselines on `data`; the figures."""
  from components.cloud import launch  # pylint: disable=g-import-not-at-top
  from components.cloud import push as cloud_push  # pylint: disable=g-import-not-at-top
  from pipeline.settings import config as config_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.PipelineConfig(workspace=workspace)
  base = cloud_push.model_base(config.serving_destination,
                               config.served_model_name)
  files = labelled_files(data)
  with launch.Server(base, config.served_model_name) as server:
    server.wait_ready()
    started = time.perf_counter()
    pair = answer(config.push_destination, server.url,
                  config.served_model_name, files)
    seconds = time.perf_counter() - started
    cloud = answer(config.push_destination, server.url,
                   config.served_model_name, files, threshold=0.0)
  model = pair['model']
  reject, positive = model.labels[0], model.labels[-1]
  return {
      'data': data, 'files': len(files),
      'phase_one_version': model.manifest.version,
      'threshold': model.threshold,
      'phase_two_version': cloud_push.versions(base)[-1],
      'cascade': dict(score(pair['results'], reject, positive),
                      summary=pair['summary'], seconds=round(seconds, 1)),
      'device_alone': device_alone(pair['results'], reject, positive),
      'cloud_alone': score(cloud['results'], reject, positive)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workspace', required=True,
                      help='a workspace `make run` pushed both phases in')
  parser.add_argument('--data', required=True,
                      help='held-out files as <class>/<group>/<file>')
  parser.add_argument('--json', help='write the figures here too')
  args = parser.parse_args()
  found = run(args.workspace, args.data)
  pair, alone, cloud = (found['cascade'], found['device_alone'],
                        found['cloud_alone'])
  key, share = f'accuracy_pi_{PI}', f'cloud_share_pi_{PI}'
  print(f"{found['files']} held-out files from {args.data}: phase one "
        f"v{found['phase_one_version']} at {found['threshold']:.4g}, phase "
        f"two v{found['phase_two_version']}")
  print(f"{'':14} {'at 20%':>8} {'as is':>8} {'cloud share':>12}")
  print(f"{'cascade':14} {pair[key]:>8.4f} {pair['accuracy']:>8.4f} "
        f"{pair[share]:>12.4f}")
  print(f"{'device alone':14} {alone[key]:>8.4f} {'':>8} {0.0:>12.4f}")
  print(f"{'cloud alone':14} {cloud[key]:>8.4f} {cloud['accuracy']:>8.4f} "
        f"{1.0:>12.4f}")
  for group, value in pair['by_group'].items():
    print(f'  {group:34} {value:.4f} (cloud alone '
          f"{cloud['by_group'][group]:.4f})")
  if args.json:
    with open(args.json, 'w', encoding='utf-8') as f:
      json.dump(found, f, indent=2, sort_keys=True, default=str)
      f.write('\n')


if __name__ == '__main__':
  main()
