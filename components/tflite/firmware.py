"""The int8 model as C++ source for firmware: the bytes as an aligned
array, with its size, the arena TensorFlow Lite Micro measured, the labels
and the input's and output's quantization.

What TFLM's examples do by hand (`xxd -i model.tflite`, then an arena size
guessed and tuned) written from what the pusher measured. The array is
`alignas(16)`: TFLM reads the flatbuffer in place and needs it aligned.
A firmware build adds `model_data.cc` to its sources and includes
`model_data.h`::

  #include "model_data.h"
  alignas(16) static uint8_t tensor_arena[kTensorArenaSize];
  const tflite::Model* model = tflite::GetModel(g_model_data);
  // ... interpreter(model, resolver, tensor_arena, kTensorArenaSize)
  // input: int8/uint8 value = round(pixel / kInputScale) + kInputZeroPoint
"""

import re
from typing import Dict, List, Sequence, Tuple

SOURCE_FILE = 'model_data.cc'
HEADER_FILE = 'model_data.h'
ARRAY = 'g_model_data'
BYTES_PER_LINE = 12


def _c_string(text: str) -> str:
  """A C string literal of `text` (UTF-8; quotes, backslashes and control
  characters escaped)."""
  out = []
  for byte in text.encode('utf-8'):
    char = chr(byte)
    if char in '"\\':
      out.append('\\' + char)
    elif 32 <= byte < 127:
      out.append(char)
    else:
      out.append(f'\\{byte:03o}')
  return '"' + ''.join(out) + '"'


def sources(model: bytes, arena_bytes: int, class_names: Sequence[str],
            input_quantization: Tuple[float, int],
            output_quantization: Tuple[float, int],
            description: str) -> Dict[str, bytes]:
  """`model_data.cc` and `model_data.h` for `model`.

  Args:
    model: the `.tflite` file's bytes, as pushed.
    arena_bytes: the tensor arena TFLM ran it in (`kTensorArenaSize`).
    class_names: the labels, in output order.
    input_quantization: (scale, zero point) of the input tensor.
    output_quantization: (scale, zero point) of the output tensor.
    description: one line for the files' head comment (version, source).

  Returns:
    File name to bytes.
  """
  description = re.sub(r'[\r\n]+', ' ', description).replace('*/', '* /')
  rows: List[str] = []
  for start in range(0, len(model), BYTES_PER_LINE):
    rows.append('    ' + ', '.join(
        f'0x{byte:02x}' for byte in model[start:start + BYTES_PER_LINE]) + ',')
  head = (f'// {description}\n// Written by the TFLite pusher '
          '(components/tflite/firmware.py); do not edit.\n')
  header = head + f"""#ifndef ON_DEVICE_CLASSIFIER_MODEL_DATA_H_
#define ON_DEVICE_CLASSIFIER_MODEL_DATA_H_

#include <cstddef>
#include <cstdint>

// The .tflite file, 16-byte aligned as TensorFlow Lite Micro requires.
extern const unsigned char {ARRAY}[];
extern const unsigned int {ARRAY}_len;

// The smallest tensor arena TensorFlow Lite Micro ran this model in.
constexpr size_t kTensorArenaSize = {int(arena_bytes)};

// Classes in output order.
constexpr int kNumLabels = {len(class_names)};
extern const char* const kLabels[kNumLabels];

// Quantized value = round(real / scale) + zero_point.
constexpr float kInputScale = {float(input_quantization[0])!r}f;
constexpr int kInputZeroPoint = {int(input_quantization[1])};
constexpr float kOutputScale = {float(output_quantization[0])!r}f;
constexpr int kOutputZeroPoint = {int(output_quantization[1])};

#endif  // ON_DEVICE_CLASSIFIER_MODEL_DATA_H_
"""
  labels = ', '.join(_c_string(name) for name in class_names)
  source = head + f"""#include "{HEADER_FILE}"

alignas(16) const unsigned char {ARRAY}[] = {{
{chr(10).join(rows)}
}};
const unsigned int {ARRAY}_len = {len(model)};

const char* const kLabels[kNumLabels] = {{{labels}}};
"""
  return {SOURCE_FILE: source.encode('utf-8'),
          HEADER_FILE: header.encode('utf-8')}
