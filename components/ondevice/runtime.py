"""Runs a TFLite classifier the way an app does, with LiteRT's interpreter.

`ai-edge-litert` is LiteRT's interpreter without TensorFlow (about 44 MB
resident against TensorFlow's 520 MB, and no 6 s import). Before it builds
an interpreter LiteRT verifies the flatbuffer, so truncated or bit-flipped
bytes are refused with a `ValueError`, never run.
"""

import contextlib
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, Optional, Sequence

import numpy as np


@contextlib.contextmanager
def native_stderr_filtered(drop: Optional[Sequence[str]] = None
                           ) -> Iterator[None]:
  """Holds back what is written to file descriptor 2 inside the block
  (native code writes there, past Python's `sys.stderr`), then writes back
  every line that holds none of `drop`, in order (None drops every line:
  native errors still reach Python as exceptions).

  Args:
    drop: what marks a line as noise.
  """
  try:
    saved = os.dup(2)
  except OSError:
    yield
    return
  with (open(os.devnull, 'wb') if drop is None
        else tempfile.TemporaryFile()) as held:
    sys.stderr.flush()
    os.dup2(held.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      if drop is not None:
        held.seek(0)
        kept = [line for line in held.read().splitlines(keepends=True)
                if not any(word.encode() in line for word in drop)]
        if kept:
          os.write(2, b''.join(kept))


def litert_interpreter(**kwargs):
  """LiteRT's `Interpreter` (imported on first use), its tensors allocated
  and its default delegate applied without a line on stderr."""
  from ai_edge_litert import interpreter  # pylint: disable=g-import-not-at-top
  with native_stderr_filtered():
    built = interpreter.Interpreter(**kwargs)
    built.allocate_tensors()
  return built


def _quantization(detail: Dict[str, Any]) -> Optional[Dict[str, float]]:
  scale, zero_point = detail['quantization']
  if not scale:
    return None
  return {'scale': float(scale), 'zero_point': int(zero_point)}


class Classifier:
  """A TFLite classifier with one input and one output of class scores.

  Creates the interpreter, allocates tensors, reads the input and output
  details, quantizes the input where the model is integer and dequantizes
  the output.

  Args:
    model: the TFLite model's bytes, or a path to a `.tflite` file.
    num_threads: interpreter threads.
    interpreter: builds the interpreter from `model_content` or
      `model_path` and `num_threads` (default: LiteRT's; the pusher's
      proofs pass TensorFlow's, which the converter was built with).

  Raises:
    ValueError: for bytes that are not a TFLite model (LiteRT's verifier),
      or a model it cannot allocate.
  """

  def __init__(self, model, num_threads: int = 1,
               interpreter: Callable[..., Any] = litert_interpreter):
    if isinstance(model, (bytes, bytearray)):
      self.interpreter = interpreter(model_content=bytes(model),
                                     num_threads=num_threads)
    else:
      self.interpreter = interpreter(model_path=str(model),
                                     num_threads=num_threads)
    self.interpreter.allocate_tensors()
    self.input = self.interpreter.get_input_details()[0]
    self.output = self.interpreter.get_output_details()[0]

  def describe(self) -> Dict[str, Any]:
    """Name, shape, dtype and quantization of the input and output."""
    return {
        role: {'name': detail['name'],
               'shape': [int(d) for d in detail['shape']],
               'dtype': np.dtype(detail['dtype']).name,
               'quantization': _quantization(detail)}
        for role, detail in (('input', self.input), ('output', self.output))}

  def quantize_input(self, pixels: np.ndarray) -> np.ndarray:
    """`pixels` in the input tensor's dtype: as they are for a float
    input, else quantized with its scale and zero point and clipped."""
    dtype = self.input['dtype']
    if np.issubdtype(dtype, np.floating):
      return pixels.astype(dtype)
    scale, zero_point = self.input['quantization']
    info = np.iinfo(dtype)
    values = np.round(pixels / scale + zero_point) if scale else pixels
    return np.clip(values, info.min, info.max).astype(dtype)

  def scores(self, pixels: np.ndarray) -> np.ndarray:
    """Class probabilities of one input.

    Args:
      pixels: one input without its batch axis: float [size, size,
        channels] pixel values in 0..255 for an image model, or float
        [window_samples] samples for a waveform model.

    Returns:
      float32 array with one probability per class.
    """
    self.interpreter.set_tensor(self.input['index'],
                                self.quantize_input(pixels[None, ...]))
    self.interpreter.invoke()
    raw = self.interpreter.get_tensor(self.output['index'])[0]
    scale, zero_point = self.output['quantization']
    if scale and not np.issubdtype(raw.dtype, np.floating):
      return ((raw.astype(np.float32) - zero_point) * scale).astype(np.float32)
    return raw.astype(np.float32)

  def median_latency_ms(self, pixels: np.ndarray, runs: int = 50,
                        warmup: int = 5) -> float:
    """Median wall time of one invoke on one input, after warm-up."""
    data = self.quantize_input(pixels[None, ...])
    for _ in range(warmup):
      self.interpreter.set_tensor(self.input['index'], data)
      self.interpreter.invoke()
    times = []
    for _ in range(max(1, runs)):
      self.interpreter.set_tensor(self.input['index'], data)
      started = time.perf_counter()
      self.interpreter.invoke()
      times.append((time.perf_counter() - started) * 1000.0)
    return float(statistics.median(times))
