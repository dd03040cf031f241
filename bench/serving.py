"""Phase two's model server under load: requests per second and latency of
one KServe model server (`python -m pipeline serve`'s) under 1, 4 and 16
concurrent clients on 127.0.0.1.

`python bench/serving.py [--model DIR] [--requests N] [--json OUT]`

Each client sends N requests of one window each (TensorFlow Serving's V1
shape, base64 PCM), one after another, in a bounded loop; the figures are
the wall time of all clients' requests, and each request's latency (p50,
p95). Without `--model` (a folder of numbered versions, as the phase-two
pusher writes it) an untrained phase two of the default front end is
pushed first: the default's ears (the pretrained musicnn models) and a
classifier of the default's size, so its cost is the default's, while its
answers mean nothing.

Each is measured twice, the server answering every request alone (one
model call a request) and batching as `serve` does by default (requests
that arrive while the model is busy share its next call).

The same machine runs clients and server: with more clients than cores,
latency grows with the queue, and requests per second shows what one
server process on this machine gives. Compare the ratios in one run.
"""

import argparse
import base64
import json
import os
import sys
import tempfile
import threading
import time
from typing import Dict, List

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
CLIENTS = (1, 4, 16)


def _push_small(destination: str, name: str) -> str:
  """An untrained phase two of the default ears, size and front end,
  pushed as version 1 of `name`; returns its base path."""
  os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
  from components import frontend  # pylint: disable=g-import-not-at-top
  from components.cloud import push  # pylint: disable=g-import-not-at-top
  from components.cloud import serving_model  # pylint: disable=g-import-not-at-top
  from components.modules import phase_two  # pylint: disable=g-import-not-at-top
  from components.modules import phase_two_audio  # pylint: disable=g-import-not-at-top
  from components.music import musicnn  # pylint: disable=g-import-not-at-top
  from pipeline.settings import config as config_lib  # pylint: disable=g-import-not-at-top
  classes = ['not_instrument', 'bass', 'brass', 'piano', 'strings']
  front_end = frontend.FrontEnd()
  size = front_end.image_size
  encoder = musicnn.SequenceEncoder(
      config_lib.PipelineConfig().phase_two_encoder_models())
  head = phase_two_audio.build_head(encoder.size, len(classes),
                                    np.zeros(encoder.size, np.float32),
                                    np.ones(encoder.size, np.float32))
  with tempfile.TemporaryDirectory() as scratch:
    phase_two.export_heard(phase_two_audio.Heard(encoder, head),
                           os.path.join(scratch, 'model'), classes,
                           front_end.window_samples)
    serving = os.path.join(scratch, 'serving')
    serving_model.build(os.path.join(scratch, 'model'), serving, front_end,
                        size, 3)
    push.write_version(destination, serving, push.CloudManifest(
        model_name=name, classes=classes, families=classes[1:],
        request=serving_model.PCM_INPUT, front_end=front_end.to_record(),
        figures={}, source={'bench': 'untrained'}, created='bench'))
  return push.model_base(destination, name)


def _window(base: str) -> bytes:
  from components.cloud import push  # pylint: disable=g-import-not-at-top
  newest = push.versions(base)[-1]
  manifest = push.read_manifest(os.path.join(base, str(newest)))
  front_end = manifest.front_end
  rng = np.random.default_rng(0)
  samples = rng.uniform(-0.3, 0.3, front_end.window_samples)
  return (samples * 32767).astype('<i2').tobytes()


def load(url: str, body: dict, clients: int, requests: int) -> Dict:
  """`clients` threads, each sending `requests` requests in turn."""
  from components.cloud import launch  # pylint: disable=g-import-not-at-top
  latencies: List[float] = []
  failures: List[int] = []
  lock = threading.Lock()

  def client():
    for _ in range(requests):
      began = time.perf_counter()
      status, _ = launch.post(url, body, timeout=120)
      took = time.perf_counter() - began
      with lock:
        latencies.append(took)
        if status != 200:
          failures.append(status)

  threads = [threading.Thread(target=client) for _ in range(clients)]
  began = time.perf_counter()
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  wall = time.perf_counter() - began
  return {'clients': clients, 'requests': len(latencies),
          'failed': len(failures),
          'requests_per_second': round(len(latencies) / wall, 1),
          'p50_ms': round(1000 * float(np.percentile(latencies, 50)), 1),
          'p95_ms': round(1000 * float(np.percentile(latencies, 95)), 1)}


# How the server batches, each measured in turn on the same model: every
# request alone (one model call a request, as before batching), `serve`'s
# defaults, and a request waiting up to 2 ms for company.
SETTINGS = (('unbatched', 1, 0.0), ('batched (default)', None, None),
            ('batched, wait 2 ms', None, 2.0))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', help='a folder of numbered versions')
  parser.add_argument('--name', default='instruments')
  parser.add_argument('--requests', type=int, default=50,
                      help='requests per client (default %(default)s)')
  parser.add_argument('--json', help='write the figures here too')
  args = parser.parse_args()
  from components.cloud import launch  # pylint: disable=g-import-not-at-top
  rows = []
  with tempfile.TemporaryDirectory(prefix='bench-serving-') as scratch:
    base = args.model or _push_small(scratch, args.name)
    body = {'instances': [{'b64': base64.b64encode(_window(base)).decode()}]}
    for setting, windows, wait_ms in SETTINGS:
      started = time.perf_counter()
      with launch.Server(base, args.name, batch_windows=windows,
                         batch_wait_ms=wait_ms) as server:
        server.wait_ready()
        ready = time.perf_counter() - started
        url = server.predict_url()
        load(url, body, 1, 5)  # warm
        rows += [dict(load(url, body, clients, args.requests),
                      batching=setting) for clients in CLIENTS]
  print(f'KServe model server on {base}: ready in {ready:.1f} s; one window '
        'per request')
  print(f"{'batching':>18} {'clients':>8} {'requests':>9} {'failed':>7} "
        f"{'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
  for row in rows:
    print(f"{row['batching']:>18} {row['clients']:>8} {row['requests']:>9} "
          f"{row['failed']:>7} {row['requests_per_second']:>8} "
          f"{row['p50_ms']:>8} {row['p95_ms']:>8}")
  if args.json:
    with open(args.json, 'w', encoding='utf-8') as f:
      json.dump({'model': args.model or 'untrained, default size',
                 'ready_seconds': round(ready, 1), 'cpu_count': os.cpu_count(),
                 'rows': rows}, f, indent=2)
      f.write('\n')


if __name__ == '__main__':
  main()
