"""Bench part 2, input throughput: images per second delivered by the
Trainer's input (transformed examples through tf.data) and by
flow_from_directory over the same images, without the model.
"""

import argparse
import shutil
import time
from typing import Any, Dict, List

from bench.parts.common import CLASSES
from bench.parts.common import Context
from bench.parts.common import log
from bench.parts.common import transform_paths

NUMBER = 2
# The part's figures in results.json.
KEY = 'input_throughput'
# Whether it needs the 1x default data, and a workspace run on it.
NEEDS_DATA = True
NEEDS_WORKSPACE = True



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
  graph, pattern = transform_paths(workspace)
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


def report_lines(results: Dict[str, Any]) -> List[str]:
  """Part 2's section of RESULTS.md (none when not measured)."""
  throughput = results.get('input_throughput')
  if not throughput:
    return []
  lines: List[str] = []
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
  return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The part's own flags."""
  parser.add_argument('--batches', type=int, default=150)


def run(args: argparse.Namespace, ctx: Context) -> Dict[str, Any]:
  """Measures part 2; its figures."""
  return part_input_throughput(ctx.workspace, ctx.data_dir, ctx.out,
                               args.steps, args.batches)
