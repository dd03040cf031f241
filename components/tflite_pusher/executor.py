"""Executor of the TFLite pusher: adapts artifacts to the plain functions.

It extends TFX's Pusher executor to reuse its blessing check and its
`pushed` marking; conversion, validation and the versioned write live in
`conversion`, `model_metadata` and `push`.
"""

import json
import os
import time
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components import contracts
from components import span_window
from components.common import run_guard
from components.common import storage
from components import frontend
from components.frontend import graph
from components.tflite import budget as budget_lib
from components.modules import features
from components.tflite import conversion
from components.tflite import firmware
from components.tflite import micro
from components.tflite import model_metadata
from components.ondevice import push
from components.tflite_pusher import waveform as waveform_lib
from components.tflite import Quantization

MODEL_KEY = contracts.TFLitePusher.MODEL
MODEL_BLESSING_KEY = contracts.TFLitePusher.MODEL_BLESSING
EXAMPLES_KEY = contracts.TFLitePusher.EXAMPLES
SPAN_EXAMPLES_KEY = contracts.TFLitePusher.SPAN_EXAMPLES
PUSHED_MODEL_KEY = contracts.TFLitePusher.PUSHED_MODEL

NORMALIZATION = ('RGB (or grayscale) pixel values 0..255, not scaled: the '
                 'model divides by 255 itself')


def _set_properties(artifact: types.Artifact, values: Dict[str, Any]) -> None:
  for name, value in values.items():
    if isinstance(value, bool):
      artifact.set_int_custom_property(name, int(value))
    elif isinstance(value, int):
      artifact.set_int_custom_property(name, value)
    elif isinstance(value, float):
      artifact.set_float_custom_property(name, value)
    else:
      artifact.set_string_custom_property(name, str(value))


def _front_end(input_dict: Dict[str, List[types.Artifact]]
               ) -> Dict[str, Any]:
  """The audio front end the window's examples were drawn with, as the
  manifest records it: the span's record, or why there is none."""
  artifacts = input_dict.get(SPAN_EXAMPLES_KEY) or []
  if not artifacts:
    return {'recorded': False,
            'reason': 'the pusher was not given the window\'s examples'}
  artifact = artifacts[0]
  if artifact.has_custom_property(span_window.FRONT_END_PROPERTY):
    record = json.loads(artifact.get_string_custom_property(
        span_window.FRONT_END_PROPERTY))
    return dict(record, recorded=True)
  return {'recorded': False,
          'reason': 'the spans hold images, not recordings: the model takes '
                    'images as they are'}


def _span_windows(input_dict: Dict[str, List[types.Artifact]], limit: int,
                  channels: int, split: str = 'eval'):
  """A split's windows that kept their samples, from the window's raw
  examples (see :func:`waveform.span_windows`), or None without them."""
  artifacts = input_dict.get(SPAN_EXAMPLES_KEY) or []
  if not artifacts:
    return None
  pattern = storage.join(artifact_utils.get_split_uri(artifacts, split), '*')
  return waveform_lib.span_windows(pattern, limit, channels)


def _waveform(model_path: str, image_model: bytes, front_end: Dict[str, Any],
              mode: str, channels: int, exec_properties: Dict[str, Any],
              input_dict: Dict[str, List[types.Artifact]]):
  """The waveform model for spans of recordings (in `int8`, calibrated on
  the train split's kept windows), proved on probe windows and on the eval
  split's kept windows (:func:`_span_windows`), and held to the device
  budget: (its bytes or None, its manifest entry, which says why when
  there is none)."""
  if not front_end.get('recorded'):
    return None, {'file': None, 'recordings': False,
                  'reason': front_end.get('reason')}
  drawn_with = frontend.FrontEnd.from_record(front_end)
  representative = None
  if mode == Quantization.INT8:
    # Calibrated on the train split's kept windows (probe windows without).
    train = _span_windows(input_dict, int(
        exec_properties['representative_examples']), channels, 'train')
    representative = train[0] if train is not None else None
  try:
    model = waveform_lib.convert(model_path, drawn_with, mode, channels,
                                 representative)
  except waveform_lib.WaveformError as e:
    return None, {'file': None, 'recordings': True, 'reason': str(e)}
  proof = waveform_lib.check(model, image_model, drawn_with)
  samples = graph.probe_windows(drawn_with)[0].astype('float32')
  latency = conversion.TFLiteClassifier(model).median_latency_ms(
      samples, runs=int(exec_properties['latency_runs']))
  # MediaPipe's AudioClassifier needs the metadata; the budget counts it.
  model, problem = model_metadata.embed_audio(
      model, json.loads(exec_properties['class_names']),
      drawn_with.sample_rate)
  entry = dict(proof, recordings=True, bytes=len(model),
               latency_ms_median=latency,
               metadata_embedded=problem is None, metadata_problem=problem,
               input={'shape': [1, drawn_with.window_samples],
                      'dtype': 'float32',
                      'sample_rate': drawn_with.sample_rate,
                      'channels': 1, 'meaning': (
                          'one window of mono samples in -1..1 at the '
                          'front end\'s rate, zero-padded at the end')},
               output={'meaning': 'probability of each class, in '
                                  'labels.txt order'})
  max_drop = float(exec_properties['max_accuracy_drop'])
  windows = _span_windows(input_dict, int(
      exec_properties['validation_examples']), channels)
  problems = []

  def check_pixels(error: float, where: str) -> None:
    if error > graph.MAX_PIXEL_ERROR:
      problems.append(f'{where}its front end is {error:g} off the NumPy '
                      f'picture (at most {graph.MAX_PIXEL_ERROR:g} '
                      'allowed)')

  if windows is not None and len(windows[0]):
    entry.update(waveform_lib.check_span_windows(
        model, model_path, drawn_with, *windows))
    check_pixels(entry['eval_front_end_max_pixel_error'],
                 "on the eval split's windows ")
    if entry['eval_accuracy_drop'] > max_drop:
      problems.append(
          f"on {entry['eval_windows']} eval windows its accuracy is "
          f"{entry['eval_accuracy']:.4f} against the SavedModel's "
          f"{entry['eval_savedmodel_accuracy']:.4f}, a drop of "
          f"{entry['eval_accuracy_drop'] * 100:.2f} points (at most "
          f'{max_drop * 100:.2f} allowed by max_accuracy_drop)')
  else:
    entry.update(eval_windows=0, eval_proof=(
        'no window of the eval split kept its samples (spans ingested '
        'with proof_windows 0, or before windows kept them): proved on '
        'test signals only'))
  check_pixels(proof['front_end_max_pixel_error'], '')
  disagreement = waveform_lib.probe_problem(proof, mode)
  if disagreement:
    problems.append(disagreement)
  problems += [breach.describe() for breach in budget_lib.Budget.from_dict(
      exec_properties).for_phone().breaches(len(model), latency)]
  if problems:
    return None, dict(entry, file=None, reason='; '.join(problems))
  return model, dict(entry, file=waveform_lib.WAVEFORM_FILE,
                     sha256=conversion.sha256(model))


def budget_figures(breaches: List[budget_lib.Breach]) -> Dict[str, Any]:
  """What a PushedModel records of a model over budget: the limits broken
  (`budget_exceeded`, comma-separated) and, per limit, how far over
  (`over_max_tflite_bytes` and `over_max_arena_bytes` in bytes, -1 for an
  arena TFLM could not measure; `over_max_latency_ms` in ms)."""
  figures: Dict[str, Any] = {'budget_exceeded': ','.join(
      breach.limit_name for breach in breaches)}
  for breach in breaches:
    excess = breach.excess
    if breach.limit_name == budget_lib.MAX_LATENCY_MS:
      figures[f'over_{breach.limit_name}'] = float(excess)
    else:
      figures[f'over_{breach.limit_name}'] = (
          -1 if excess == float('inf') else int(excess))
  return figures


def micro_figures(model: bytes, classifier: conversion.TFLiteClassifier,
                  images, limit: int) -> Dict[str, Any]:
  """The model run in TensorFlow Lite Micro on the first `limit` of the
  eval `images` (see :mod:`micro`): `arena_bytes`, `micro_arena_reported`,
  `micro_latency_ms_median`, `micro_examples`, `micro_identical` (the
  share of examples whose output tensor equals LiteRT's builtin kernels'
  bit for bit) and `micro_max_difference_xnnpack` (the largest difference
  from LiteRT with its default XNNPACK delegate, in units of the output's
  scale); or `micro_error` (and `micro_missing_ops`) when TFLM cannot run
  it. `classifier` is LiteRT's interpreter of `model`, which quantizes
  the images as the input requires."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  inputs = np.stack([classifier.quantize_input(image)
                     for image in images[:max(1, limit)]])
  try:
    found = micro.measure(model, inputs)
  except micro.MicroError as e:
    return {'micro_error': str(e)}
  if 'error' in found:
    return {'micro_error': found['error'],
            **({'micro_missing_ops': ','.join(found['missing_ops'])}
               if found.get('missing_ops') else {})}
  outputs = found['outputs']
  builtin = micro.litert_outputs(model, inputs)
  xnnpack = micro.litert_outputs(model, inputs, xnnpack=True)
  return {
      'arena_bytes': int(found['arena_bytes']),
      'micro_arena_reported': int(found['arena_reported']),
      'micro_latency_ms_median': float(found['latency_ms_median']),
      'micro_examples': int(len(inputs)),
      'micro_identical': float(np.mean(np.all(
          (outputs == builtin).reshape(len(inputs), -1), axis=1))),
      'micro_max_difference_xnnpack': int(np.abs(
          outputs.astype(np.int64) - xnnpack.astype(np.int64)).max()),
  }


class Executor(pusher_executor.Executor):
  """Converts the blessed model to TFLite, proves it, and pushes it."""

  def _firmware(self, files: Dict[str, bytes], model: bytes, digest: str,
                description: Dict[str, Any], figures: Dict[str, Any],
                class_names: List[str]) -> Dict[str, Any]:
    """Adds the C source of an integer model TFLM ran to `files`; returns
    the manifest's `firmware` entry (or why there is none). `digest` and
    `description` are the model's SHA-256 and
    :meth:`conversion.TFLiteClassifier.describe`."""
    if 'arena_bytes' not in figures:
      return {'source': None, 'reason': figures.get(
          'micro_error', 'the model was not run in TensorFlow Lite Micro '
          '(int8 mode, or a max_arena_bytes limit, runs it)')}
    quantization = {role: description[role]['quantization'] or
                    {'scale': 0.0, 'zero_point': 0}
                    for role in ('input', 'output')}
    files.update(firmware.sources(
        model, figures['arena_bytes'], class_names,
        *((quantization[role]['scale'], quantization[role]['zero_point'])
          for role in ('input', 'output')),
        f'{push.MODEL_FILE} ({len(model):,} bytes, SHA-256 {digest}) as '
        'C++'))
    return {'source': firmware.SOURCE_FILE, 'header': firmware.HEADER_FILE,
            'array': firmware.ARRAY, 'arena_bytes': figures['arena_bytes'],
            'input_quantization': quantization['input'],
            'output_quantization': quantization['output']}

  def _mark_not_pushed(self, artifact: types.Artifact, reason: str,
                       figures: Dict[str, Any]) -> None:
    logging.warning('TFLite model not pushed: %s', reason)
    print(f'tflite_pusher: not pushed: {reason}', flush=True)
    self._MarkNotPushed(artifact)
    _set_properties(artifact, dict(figures, reason=reason))

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Pushes a quantized TFLite model if blessed and faithful.

    Args:
      input_dict: `model` (Trainer), `model_blessing` (Evaluator, optional),
        `examples` (Transform's transformed examples with `train` and `eval`
        splits).
      output_dict: `pushed_model`, a PushedModel artifact recording the
        outcome and every figure.
      exec_properties: see `TFLitePusherSpec.PARAMETERS`.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    pushed = artifact_utils.get_single_instance(
        output_dict[PUSHED_MODEL_KEY])
    mode = conversion.check_mode(exec_properties['quantization'])
    if not self.CheckBlessing(input_dict):
      self._mark_not_pushed(pushed, 'the model was not blessed by the '
                            'Evaluator', {'mode': mode})
      return

    image_size = int(exec_properties['image_size'])
    channels = int(exec_properties['channels'])
    class_names = json.loads(exec_properties['class_names'])
    examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])

    def split_images(split: str, limit: int):
      pattern = os.path.join(artifact_utils.get_split_uri([examples], split),
                             '*')
      return conversion.load_images(pattern, features.IMAGE_PNG_KEY,
                                    features.LABEL_KEY, image_size, channels,
                                    limit)

    eval_images, eval_labels = split_images(
        'eval', int(exec_properties['validation_examples']))
    representative = None
    if mode == Quantization.INT8:
      representative, _ = split_images(
          'train', int(exec_properties['representative_examples']))

    model_path = self.GetModelPath(input_dict)
    started = time.time()
    model, figures = conversion.convert_and_check(
        model_path, features.SERVING_IMAGE_SIGNATURE, mode, eval_images,
        eval_labels, representative, int(exec_properties['latency_runs']))
    print('tflite_pusher: ' + ', '.join(
        f'{k} {v:.4g}' if isinstance(v, float) else f'{k} {v}'
        for k, v in figures.items()) + f' ({time.time() - started:.0f} s)',
          flush=True)

    reason = conversion.parity_verdict(
        figures, float(exec_properties['max_accuracy_drop']))
    if reason:
      self._mark_not_pushed(pushed, reason, figures)
      return

    converted_digest = conversion.sha256(model)
    image_model = model
    model, metadata_problem = model_metadata.embed(model, class_names)
    if metadata_problem:
      logging.warning('TFLite metadata not embedded: %s', metadata_problem)
    # The budget applies to the file a device downloads, metadata included.
    figures['pushed_bytes'] = len(model)
    classifier = conversion.TFLiteClassifier(model)
    budget = budget_lib.Budget.from_dict(exec_properties)
    if budget.runs_micro(mode):
      started = time.time()
      figures.update(micro_figures(model, classifier, eval_images,
                                   int(exec_properties['micro_examples'])))
      print('tflite_pusher: TensorFlow Lite Micro: ' + (
          f"arena {figures['arena_bytes']:,} bytes, "
          f"{figures['micro_latency_ms_median']:.3g} ms, outputs identical "
          f"to LiteRT's on {figures['micro_identical']:.0%} of "
          f"{figures['micro_examples']} images"
          if 'arena_bytes' in figures else figures['micro_error']) +
            f' ({time.time() - started:.0f} s)', flush=True)
    breaches = budget.breaches(len(model), figures['latency_ms_median'],
                               figures.get('arena_bytes'))
    if breaches:
      self._mark_not_pushed(
          pushed, 'over the device budget: ' + '; '.join(
              breach.describe() for breach in breaches),
          dict(figures, **budget_figures(breaches)))
      return
    front_end = _front_end(input_dict)
    files = {push.MODEL_FILE: model,
             push.LABELS_FILE: ('\n'.join(class_names) + '\n').encode('utf-8')}
    waveform_model, waveform_entry = _waveform(
        model_path, image_model, front_end, mode, channels, exec_properties,
        input_dict)
    digest = conversion.sha256(model)
    description = classifier.describe()
    firmware_entry = self._firmware(files, model, digest, description,
                                    figures, class_names)
    if waveform_model:
      files[waveform_lib.WAVEFORM_FILE] = waveform_model
      print(f"tflite_pusher: waveform model {len(waveform_model)} bytes, "
            f"{waveform_entry['latency_ms_median']:.3g} ms, front end "
            f"{waveform_entry['front_end_max_pixel_error']:g} off the NumPy "
            'picture on test signals' + (
                f", {waveform_entry['eval_front_end_max_pixel_error']:g} on "
                f"{waveform_entry['eval_windows']} eval windows, accuracy "
                f"{waveform_entry['eval_accuracy']:.4f} (SavedModel "
                f"{waveform_entry['eval_savedmodel_accuracy']:.4f})"
                if waveform_entry.get('eval_windows') else ''), flush=True)
    else:
      print(f"tflite_pusher: no waveform model: {waveform_entry['reason']}",
            flush=True)
    destination = exec_properties['push_destination']
    source = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
    manifest = {
        'model_file': push.MODEL_FILE,
        'labels_file': push.LABELS_FILE,
        'sha256': digest,
        'converted_sha256': converted_digest,
        'bytes': len(model),
        'quantization': mode,
        'input': dict(description['input'], normalization=NORMALIZATION,
                      normalization_options=(
                          model_metadata.normalization_options(channels)),
                      image_size=image_size, channels=channels,
                      audio_front_end=front_end),
        'output': dict(description['output'], meaning=(
            'probability of each class, in labels.txt order')),
        'class_names': class_names,
        'metadata_embedded': metadata_problem is None,
        'metadata_problem': metadata_problem,
        'validation': figures,
        'waveform': waveform_entry,
        'firmware': firmware_entry,
        'source': {
            'model_artifact_id': source.id,
            'model_uri': source.uri,
            'pipeline_run_id': getattr(self._context, 'pipeline_run_id',
                                       None) if self._context else None,
        },
        'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
    }

    version = push.find_identical(destination, converted_digest)
    if version is None:
      run_guard.before_push()
      version, version_dir = push.write_version(destination, files, manifest)
      print(f'tflite_pusher: pushed version {version} to {version_dir}',
            flush=True)
    else:
      # Keep the artifact consistent with what devices already have.
      version_dir = storage.join(destination, str(version))
      model = storage.read_bytes(storage.join(version_dir, push.MODEL_FILE))
      digest = conversion.sha256(model)
      print(f'tflite_pusher: version {version} already holds this model; '
            'nothing new pushed', flush=True)

    io_utils.write_bytes_file(os.path.join(pushed.uri, push.MODEL_FILE), model)
    self._MarkPushed(pushed, pushed_destination=version_dir,
                     pushed_version=str(version))
    _set_properties(pushed, dict(
        figures, sha256=digest, metadata_embedded=metadata_problem is None,
        **{f'waveform_{key}': value for key, value in waveform_entry.items()
           if isinstance(value, (int, float, str)) and key != 'file'}))
