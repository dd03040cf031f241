"""What the bench's parts share: the repository's root, the progress log,
runs of the command line as separate processes with their peak memory,
the default data, medians, and the run context a part is given.
"""

import dataclasses
import datetime
import glob
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import pipeline  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position


DEFAULT_PER_CLASS = 1000
LATENCY_ROUNDS = 5
# Settings every `python -m pipeline run` of the suite gets (see main).
RUN_ARGS: List[str] = []
CLASSES = ('not_instrument', 'instrument')


def log(message: str) -> None:
  print(f'[{datetime.datetime.now():%H:%M:%S}] bench: {message}', flush=True)


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
  summary = last_json(ran['stdout'])
  result.update(run_seconds=ran['seconds'],
                run_cpu_seconds=ran['cpu_seconds'],
                peak_rss_bytes=ran['peak_rss_bytes'],
                components={c['node']: c['seconds']
                            for c in summary['components']},
                summary=summary)
  return result


def bytes_per_example(summary: Dict[str, Any]) -> Optional[float]:
  return (summary.get('transformed') or {}).get('disk_bytes_per_example')


def last_json(stdout: str) -> Dict[str, Any]:
  """The JSON document printed last (progress lines come before it)."""
  lines = stdout.splitlines()
  start = max(i for i, line in enumerate(lines) if line == '{')
  return json.loads('\n'.join(lines[start:]))


def median(values: List[float]) -> float:
  return float(statistics.median(values)) if values else float('nan')


def pushed_figures(summary: Dict[str, Any]) -> Dict[str, Any]:
  pushed = summary.get('pushed') or {}
  return {'pushed': bool(pushed.get('pushed')),
          'pushed_bytes': pushed.get('pushed_bytes'),
          'tflite_auc': pushed.get('tflite_auc'),
          'evaluator_auc': (summary.get('metrics') or {}).get('auc'),
          'accuracy': (summary.get('metrics') or {}).get('binary_accuracy'),
          'destination': pushed.get('pushed_destination')}


def latency_side_by_side(files: Dict[str, str], rounds: int = 5,
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


def transform_paths(workspace: str) -> Tuple[str, str]:
  """The newest Transform graph and its train split's files."""
  root = os.path.join(workspace, 'tfx', 'Transform')
  graph = max(glob.glob(os.path.join(root, 'transform_graph', '*')),
              key=os.path.getmtime)
  examples = max(glob.glob(os.path.join(root, 'transformed_examples', '*')),
                 key=os.path.getmtime)
  return graph, os.path.join(examples, 'Split-train', '*')


@dataclasses.dataclass
class Context:
  """What the runner gives every part.

  Attributes:
    out: the work folder (`bench/out/`).
    data_dir: the 1x default data (made when a part needs it).
    workspace: a workspace run once on it (parts 2-4).
    results: the figures so far, by part key (part 4 reads part 1's).
  """
  out: str
  data_dir: str
  workspace: str
  results: Dict[str, Any]
