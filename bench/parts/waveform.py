"""Bench part 12, the waveform model: bytes and single-window latency of the
waveform model against the image model and the NumPy front end's time, in
dynamic and int8 modes.
"""

import argparse
import datetime
import os
import shutil
import time
from typing import Any, Dict, List

from bench.parts.common import Context
from bench.parts.common import log
from bench.parts.common import median
from bench.parts.common import synth

NUMBER = 12
# The part's figures in results.json.
KEY = 'waveform'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = False
NEEDS_WORKSPACE = False


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


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 12's section of RESULTS.md (none when not measured)."""
  return _waveform_lines(results[KEY]) if results.get(KEY) else []


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  del parser  # none


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 12; its figures."""
  log('part 12: the waveform model against the image model')
  return part_waveform(ctx.out)
