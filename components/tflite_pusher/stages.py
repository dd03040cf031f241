"""The pusher's stages after conversion, as plain functions over typed
values: the file a device downloads, the firmware source, the version's
files and its manifest. The executor calls them in order
(`executor.Executor.Do`); each is tested without TFX.
"""

import time
from typing import Any, Dict, Optional, Sequence, Tuple

from absl import logging

from components.ondevice import push
from components.ondevice.manifest import AudioFrontEnd
from components.ondevice.manifest import DecisionThreshold
from components.ondevice.manifest import Families
from components.ondevice.manifest import Manifest
from components.ondevice.manifest import WaveformEntry
from components.tflite import conversion
from components.tflite import firmware
from components.tflite import model_metadata
from components.tflite import results
from components.tflite_pusher.settings import PushSettings

NORMALIZATION = ('RGB (or grayscale) pixel values 0..255, not scaled: the '
                 'model divides by 255 itself')


def package(model: bytes, class_names: Sequence[str],
            threshold: Optional[float] = None
            ) -> Tuple[bytes, results.Packaging]:
  """The image model as a device downloads it: with TFLite metadata
  (labels, normalisation and phase one's `threshold` as the score threshold)
  embedded where tflite-support loads, and its :class:`results.Packaging`."""
  packaged, problem = model_metadata.embed(model, list(class_names),
                                           threshold)
  if problem:
    logging.warning('TFLite metadata not embedded: %s', problem)
  return packaged, results.Packaging(
      sha256=conversion.sha256(packaged), metadata_embedded=problem is None,
      pushed_bytes=len(packaged), metadata_problem=problem)


def firmware_source(model: bytes, packaging: results.Packaging,
                    description: Dict[str, Any], micro: results.MicroProof,
                    class_names: Sequence[str]
                    ) -> Tuple[Dict[str, bytes], Dict[str, Any]]:
  """The C++ source of a model TensorFlow Lite Micro ran: (its files, the
  manifest's `firmware` entry); no files, and the entry saying why, for a
  model it did not run. `description` is
  :meth:`conversion.TFLiteClassifier.describe` of `model`."""
  if not micro.ran:
    return {}, {'source': None, 'reason': micro.micro_error or (
        'the model was not run in TensorFlow Lite Micro (int8 mode, or a '
        'max_arena_bytes limit, runs it)')}
  quantization = {role: description[role]['quantization'] or
                  {'scale': 0.0, 'zero_point': 0}
                  for role in ('input', 'output')}
  files = firmware.sources(
      model, micro.arena_bytes, list(class_names),
      *((quantization[role]['scale'], quantization[role]['zero_point'])
        for role in ('input', 'output')),
      f'{push.MODEL_FILE} ({len(model):,} bytes, SHA-256 '
      f'{packaging.sha256}) as C++')
  return files, {'source': firmware.SOURCE_FILE,
                 'header': firmware.HEADER_FILE, 'array': firmware.ARRAY,
                 'arena_bytes': micro.arena_bytes,
                 'input_quantization': quantization['input'],
                 'output_quantization': quantization['output']}


def model_files(model: bytes, class_names: Sequence[str],
                waveform_model: Optional[bytes]) -> Dict[str, bytes]:
  """The version's models and `labels.txt` (one class a line, in output
  order)."""
  files = {push.MODEL_FILE: model,
           push.LABELS_FILE: ('\n'.join(class_names) + '\n').encode('utf-8')}
  if waveform_model:
    files[push.WAVEFORM_FILE] = waveform_model
  return files


def manifest(settings: PushSettings, converted_sha256: str,
             packaging: results.Packaging, description: Dict[str, Any],
             front_end: Dict[str, Any], proofs: Sequence[results.Figures],
             waveform: results.WaveformProof,
             firmware_entry: Dict[str, Any],
             source: Dict[str, Any],
             families: Optional[Sequence[str]] = None,
             threshold: Optional[Dict[str, Any]] = None,
             pairing_key: Optional[str] = None) -> Manifest:
  """The version's manifest.

  Args:
    settings: the pusher's settings.
    converted_sha256: the converter's output's digest, before metadata.
    packaging: the downloaded model's.
    description: its input and output tensors (`describe()`).
    front_end: the recorded front end, or why there is none.
    proofs: the image model's results; their figures are `validation`.
    waveform: the waveform model's proof.
    firmware_entry: from :func:`firmware_source`.
    source: the model artifact and run it came from.
    families: the window's families ([] when it gives none; None when the
      pusher was not given the window).
    threshold: phase one's chosen threshold (`Threshold.to_json()`).
    pairing_key: the key of the phase-two versions it pairs with
      (`components.common.pairing`).
  """
  validation: Dict[str, Any] = {}
  for proof in proofs:
    validation.update(proof.to_figures())
  waveform_figures = waveform.to_figures()
  return Manifest(
      model_file=push.MODEL_FILE, labels_file=push.LABELS_FILE,
      image_size=settings.image_size, channels=settings.channels,
      class_names=list(settings.class_names), sha256=packaging.sha256,
      converted_sha256=converted_sha256, bytes=packaging.pushed_bytes,
      quantization=settings.quantization,
      input_tensor=dict(description['input'], normalization=NORMALIZATION,
                        normalization_options=(
                            model_metadata.normalization_options(
                                settings.channels))),
      audio_front_end=AudioFrontEnd.from_json(front_end),
      output=dict(description['output'], meaning=(
          'probability of each class, in labels.txt order')),
      metadata_embedded=packaging.metadata_embedded,
      metadata_problem=packaging.metadata_problem, validation=validation,
      waveform=WaveformEntry(
          file=waveform.file, sha256=waveform.sha256, reason=waveform.reason,
          proof={key: value for key, value in waveform_figures.items()
                 if key not in ('file', 'sha256', 'reason')}),
      firmware=firmware_entry, source=source,
      families=families_entry(families, pairing_key),
      threshold=(None if threshold is None
                 else DecisionThreshold.from_json(threshold)),
      created=time.strftime('%Y-%m-%dT%H:%M:%S%z'))


def families_entry(families: Optional[Sequence[str]],
                   pairing_key: Optional[str] = None) -> Families:
  """The manifest's `families`: the names the spans gave and the key of
  the phase-two versions this one pairs with, or why none."""
  if families:
    return Families(True, tuple(sorted(families)),
                    pairing_key=pairing_key or None)
  return Families(False, reason=(
      'the pusher was not given the window\'s examples' if families is None
      else 'no family was given: the positive class\'s files lie in its '
      'folder, not in family sub-folders (instrument/<family>/), so this '
      'model pairs with no cloud phase'))


def outcome_properties(proofs: Sequence[results.Figures],
                       extra: Optional[Dict[str, Any]] = None
                       ) -> Dict[str, Any]:
  """What the PushedModel records: every result's properties, then
  `extra` (the reason, the digest of what devices have)."""
  found: Dict[str, Any] = {}
  for proof in proofs:
    found.update(proof.to_properties())
  found.update(extra or {})
  return found
