"""The int8 model in TensorFlow Lite Micro: the arena it needs, and its
outputs against LiteRT's.

A microcontroller runs the model with TFLM's interpreter in a tensor arena
of fixed size that must fit beside the firmware, so the arena, not the
file, is the limit that decides first. :func:`measure` runs the model in
TFLM's Python interpreter (PyPI `tflite-micro`) in child processes: TFLM
prints on C-level stderr only (its `print_allocations()` report is where
the arena it used is read), and it aborts or crashes on some models and
arenas instead of failing (a softmax whose input range is too narrow; an
arena too small for its own bookkeeping), which must not take the pusher
down.

The first child runs the inputs in a generous arena and reports what TFLM
allocated (TFLM allocates every tensor and scratch buffer before the first
invoke); the next ones, each in a fresh process, prove that an arena of
exactly that size, rounded up to :data:`ARENA_STEP`, allocates and
invokes, growing it by a step at a time when it does not.

Usage of the child::

  python -m components.tflite.micro run MODEL INPUTS.npy OUT.npy
  python -m components.tflite.micro allocates MODEL ARENA_BYTES
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np

from components.common import errors
from components.ondevice import runtime
from components.tflite import results

# Arenas are measured to this many bytes (TFLM aligns its allocations to
# 16).
ARENA_STEP = 16
# The arena the model first runs in, to measure what it uses.
GENEROUS_ARENA = 64 << 20
# Steps an arena may grow past what TFLM reported before giving up.
MAX_STEPS = 64
# Seconds the child running the inputs may take (its reference kernels
# take tens of ms an image at 128 x 128).
RUN_TIMEOUT = 1800.0
# What TFLM says when the model holds an operator it has no kernel for.
_MISSING_OP = re.compile(
    r"(?:Didn't find op for builtin opcode '([A-Z0-9_]+)'|"
    r'Failed to get registration from op code ([A-Z0-9_]+))')
_ARENA_TOTAL = re.compile(r'Arena allocation total (\d+) bytes')
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class MicroError(errors.PipelineError, RuntimeError):
  """Raised when TFLite Micro is not installed."""


def _runtime():
  try:
    from tflite_micro import runtime  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise MicroError('TensorFlow Lite Micro is not installed (PyPI '
                     '`tflite-micro`, in requirements.lock; run make '
                     f'setup): {e}') from e
  return runtime


def _child_run(model_path: str, inputs_path: str, outputs_path: str) -> None:
  """Runs the inputs in :data:`GENEROUS_ARENA`; prints the latency as JSON
  and TFLM's allocation report on stderr."""
  with open(model_path, 'rb') as f:
    model = f.read()
  interpreter = _runtime().Interpreter.from_bytes(model,
                                                  arena_size=GENEROUS_ARENA)
  outputs, times = [], []
  for example in np.load(inputs_path):
    interpreter.set_input(example[None], 0)
    started = time.perf_counter()
    interpreter.invoke()
    times.append(time.perf_counter() - started)
    outputs.append(np.array(interpreter.get_output(0))[0])
  np.save(outputs_path, np.stack(outputs))
  interpreter.print_allocations()
  print(json.dumps({'latency_ms_median': 1000 * statistics.median(times)}),
        flush=True)


def _child_allocates(model_path: str, arena: str) -> None:
  """Allocates the model in `arena` bytes and invokes it once on zeros;
  exits 0 when both succeed."""
  with open(model_path, 'rb') as f:
    model = f.read()
  interpreter = _runtime().Interpreter.from_bytes(model,
                                                  arena_size=int(arena))
  detail = interpreter.get_input_details(0)
  interpreter.set_input(np.zeros(detail['shape'], detail['dtype']), 0)
  interpreter.invoke()


def _child(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, '-m', 'components.tflite.micro', *args],
      capture_output=True, text=True, timeout=timeout, check=False,
      cwd=_ROOT)


def allocates(model_path: str, arena: int) -> bool:
  """Whether TFLM allocates and invokes the model in `arena` bytes (in a
  child process: too small an arena can crash it, or hang it)."""
  try:
    return _child('allocates', model_path, str(arena)).returncode == 0
  except subprocess.TimeoutExpired:
    return False


def _why_not(ran: subprocess.CompletedProcess) -> Dict[str, Any]:
  missing = sorted({name for match in _MISSING_OP.findall(ran.stderr)
                    for name in match if name})
  if missing:
    return {'error': 'TensorFlow Lite Micro has no kernel for '
                     f'{", ".join(missing)}', 'missing_ops': missing}
  how = ({6: 'it aborted', 11: 'it crashed'}.get(
      -ran.returncode, f'signal {-ran.returncode}') if ran.returncode < 0
         else f'exit {ran.returncode}')
  lines = [line for line in ran.stderr.strip().splitlines()
           if 'Warning' not in line][-2:]
  return {'error': f'TensorFlow Lite Micro could not run the model ({how})'
                   + (f': {" ".join(lines)}' if lines else '')}


def measure(model: bytes, inputs: np.ndarray) -> Dict[str, Any]:
  """Runs `model` in TensorFlow Lite Micro on `inputs` (the input tensor's
  own dtype, [n, ...]).

  Returns:
    `arena_bytes` (the smallest arena, to :data:`ARENA_STEP`, from what
    TFLM reported, that allocates and invokes), `arena_reported` (TFLM's
    own total), `latency_ms_median` (one invoke, TFLM's reference kernels
    on this machine) and `outputs` (the raw output tensors); or, when TFLM
    cannot run it, `error` naming why (the operators it has no kernel for,
    by name, in `missing_ops`).

  Raises:
    MicroError: when TFLite Micro is not installed.
  """
  _runtime()
  with tempfile.TemporaryDirectory(prefix='tflm-') as folder:
    model_path, inputs_path, outputs_path = (
        os.path.join(folder, name)
        for name in ('model.tflite', 'inputs.npy', 'outputs.npy'))
    with open(model_path, 'wb') as f:
      f.write(model)
    np.save(inputs_path, inputs)
    try:
      ran = _child('run', model_path, inputs_path, outputs_path,
                   timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
      return {'error': f'TensorFlow Lite Micro took over {RUN_TIMEOUT:g} s '
                       f'for {len(inputs)} inputs; stopped'}
    reported = _ARENA_TOTAL.search(ran.stderr)
    if ran.returncode != 0 or not reported:
      return _why_not(ran)
    answer = json.loads(ran.stdout.strip().splitlines()[-1])
    answer['outputs'] = np.load(outputs_path)
    answer['arena_reported'] = int(reported.group(1))
    arena = -(-answer['arena_reported'] // ARENA_STEP) * ARENA_STEP
    for _ in range(MAX_STEPS):
      if allocates(model_path, arena):
        answer['arena_bytes'] = arena
        return answer
      arena += ARENA_STEP
    return {'error': f'TensorFlow Lite Micro reported an arena of '
                     f'{answer["arena_reported"]:,} bytes but did not run in '
                     f'{arena:,}'}


def litert_outputs(model: bytes, inputs: np.ndarray, xnnpack: bool = False
                   ) -> np.ndarray:
  """The raw output tensors LiteRT's interpreter gives on `inputs`: with
  its builtin kernels (which TFLM's reproduce bit for bit), or with the
  XNNPACK delegate it applies by default, as on a phone (its int8 kernels
  round differently, by a unit or two of the output's scale)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  resolver = tf.lite.experimental.OpResolverType
  interpreter = tf.lite.Interpreter(
      model_content=model, num_threads=1,
      experimental_op_resolver_type=(
          resolver.AUTO if xnnpack
          else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
  interpreter.allocate_tensors()
  source = interpreter.get_input_details()[0]['index']
  target = interpreter.get_output_details()[0]['index']
  outputs: List[np.ndarray] = []
  for example in inputs:
    interpreter.set_tensor(source, example[None])
    interpreter.invoke()
    outputs.append(interpreter.get_tensor(target)[0].copy())
  return np.stack(outputs)


def prove(model: bytes, classifier: runtime.Classifier, images: np.ndarray,
          limit: int) -> results.MicroProof:
  """The model run in TensorFlow Lite Micro on the first `limit` of
  `images` (at least one): the arena it needs, its latency, and its
  outputs against LiteRT's builtin kernels (bit for bit) and against
  LiteRT with its default XNNPACK delegate (in units of the output's
  scale); or why TFLM cannot run it. `classifier` is LiteRT's interpreter
  of `model`, which quantizes the images as the input requires."""
  inputs = np.stack([classifier.quantize_input(image)
                     for image in images[:max(1, limit)]])
  try:
    found = measure(model, inputs)
  except MicroError as e:
    return results.MicroProof(micro_error=str(e))
  if 'error' in found:
    return results.MicroProof(
        micro_error=found['error'],
        micro_missing_ops=','.join(found['missing_ops'])
        if found.get('missing_ops') else None)
  outputs = found['outputs']
  builtin = litert_outputs(model, inputs)
  xnnpack = litert_outputs(model, inputs, xnnpack=True)
  return results.MicroProof(
      arena_bytes=int(found['arena_bytes']),
      micro_arena_reported=int(found['arena_reported']),
      micro_latency_ms_median=float(found['latency_ms_median']),
      micro_examples=int(len(inputs)),
      micro_identical=float(np.mean(np.all(
          (outputs == builtin).reshape(len(inputs), -1), axis=1))),
      micro_max_difference_xnnpack=int(np.abs(
          outputs.astype(np.int64) - xnnpack.astype(np.int64)).max()))


if __name__ == '__main__':
  {'run': _child_run, 'allocates': _child_allocates}[sys.argv[1]](
      *sys.argv[2:])
