"""Executor of the TFLite converter: reads artifacts, calls the stages and
writes the candidate version, recording every figure.

Each stage is a plain function returning a typed result
(`components.tflite.results`): the conversion and its proof against the
SavedModel (`conversion`), the file a device downloads (`stages.package`),
phase one's threshold (`components.tflite.threshold`), TensorFlow Lite
Micro (`micro.prove`), the device budget, the waveform model
(`waveform.build`), the firmware source and the manifest (`stages`). The
push (`executor`) reads what this writes.
"""

import os
import time
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import numpy as np
from tfx import types
from tfx.components.util import model_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import contracts
from components.common import artifact_properties
from components.common import pairing
from components.common import span_layout
from components.common import storage
from components.modules import features
from components.ondevice import candidate as candidate_lib
from components.tflite import conversion
from components.tflite import micro
from components.tflite import results
from components.tflite import threshold as threshold_lib
from components.tflite import Quantization
from components.tflite_pusher import stages
from components.tflite_pusher import waveform as waveform_lib
from components.tflite_pusher.settings import PushSettings

C = contracts.TFLiteConverter
MODEL_KEY = C.MODEL
MODEL_BLESSING_KEY = C.MODEL_BLESSING
EXAMPLES_KEY = C.EXAMPLES
SPAN_EXAMPLES_KEY = C.SPAN_EXAMPLES


def _span_record(input_dict: Dict[str, List[types.Artifact]]
                 ) -> Optional[Dict[str, Any]]:
  """The front-end record the window carries, as written; None without the
  window or for spans of images."""
  artifacts = input_dict.get(SPAN_EXAMPLES_KEY) or []
  if not artifacts:
    return None
  return span_layout.window_property(artifacts[0],
                                     span_layout.FRONT_END_PROPERTY) or None


def _front_end(input_dict: Dict[str, List[types.Artifact]]
               ) -> Dict[str, Any]:
  """The audio front end the window's examples were drawn with, as the
  manifest records it: the span's record, or why there is none."""
  if not input_dict.get(SPAN_EXAMPLES_KEY):
    return {'recorded': False,
            'reason': 'the pusher was not given the window\'s examples'}
  record = _span_record(input_dict)
  if record:
    return dict(record, recorded=True)
  return {'recorded': False,
          'reason': 'the spans hold images, not recordings: the model takes '
                    'images as they are'}


def _families(input_dict: Dict[str, List[types.Artifact]]
              ) -> Optional[List[str]]:
  """The families of the window's examples ([] when they give none, and
  for a window written before families were recorded), or None without
  the window."""
  artifacts = input_dict.get(SPAN_EXAMPLES_KEY) or []
  if not artifacts:
    return None
  return span_layout.window_property(
      artifacts[0], span_layout.FAMILIES_PROPERTY) or []


def _span_windows(input_dict: Dict[str, List[types.Artifact]],
                  settings: PushSettings):
  """Reads a split's windows that kept their samples from the window's
  raw examples (see :func:`waveform.span_windows`): a function of the
  split, None without them."""
  artifacts = input_dict.get(SPAN_EXAMPLES_KEY) or []

  def read(split: str) -> Optional[waveform_lib.Windows]:
    if not artifacts:
      return None
    pattern = storage.join(artifact_utils.get_split_uri(artifacts, split),
                           '*')
    return waveform_lib.span_windows(pattern, settings.sample_size(split),
                                     settings.channels)

  return read


def _images(input_dict: Dict[str, List[types.Artifact]],
            settings: PushSettings, split: str):
  """A sample of a split's transformed images and labels: the eval split's
  for the proofs (`validation_examples`), the train split's for `int8`
  calibration (`representative_examples`)."""
  examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
  pattern = os.path.join(artifact_utils.get_split_uri([examples], split), '*')
  return conversion.load_images(
      pattern, features.IMAGE_PNG_KEY, features.LABEL_KEY,
      settings.image_size, settings.channels, settings.sample_size(split))


def _convert(input_dict: Dict[str, List[types.Artifact]],
             settings: PushSettings, model_path: str, eval_images,
             eval_labels
             ) -> Tuple[bytes, results.ImageProof, np.ndarray]:
  """The SavedModel converted in the settings' mode (`int8` calibrated on
  the train split) and proved on the eval images; prints the proof.
  Returns the model, its proof and its scores of the eval images."""
  started = time.time()
  representative = (_images(input_dict, settings, 'train')[0]
                    if settings.quantization == Quantization.INT8 else None)
  converted, proof, scores = conversion.convert_and_check(
      model_path, features.SERVING_IMAGE_SIGNATURE, settings.quantization,
      eval_images, eval_labels, representative, settings.latency_runs)
  print(f'tflite_converter: {proof.describe()} ({time.time() - started:.0f} s)',
        flush=True)
  return converted, proof, scores


def threshold_properties(chosen: threshold_lib.Threshold) -> Dict[str, Any]:
  """The chosen threshold's figures as PushedModel properties."""
  return dict(zip(contracts.TFLitePusher.THRESHOLD_FIGURES, (
      chosen.value, chosen.recall, chosen.recall_lower_bound,
      chosen.false_positive_rate, chosen.target_recall, chosen.met,
      chosen.recording_rule)))


def _micro(settings: PushSettings, model: bytes,
           classifier: conversion.TFLiteClassifier,
           eval_images) -> results.MicroProof:
  """The model in TensorFlow Lite Micro when the budget says so (int8, or
  an arena limit), else an empty proof; prints what it found."""
  if not settings.budget.runs_micro(settings.quantization):
    return results.MicroProof()
  started = time.time()
  proof = micro.prove(model, classifier, eval_images, settings.micro_examples)
  print(f'tflite_converter: TensorFlow Lite Micro: {proof.describe()} '
        f'({time.time() - started:.0f} s)', flush=True)
  return proof


class Executor(base_executor.BaseExecutor):
  """Converts the blessed model to TFLite, proves it, chooses its
  threshold and writes the version devices would get."""

  def _not_ready(self, artifact: types.Artifact, reason: str,
                 proofs: List[results.Figures], **extra: Any) -> None:
    logging.warning('TFLite model not ready: %s', reason)
    print(f'tflite_converter: not ready: {reason}', flush=True)
    artifact_properties.record(artifact, stages.outcome_properties(
        proofs, dict(extra, reason=reason, **{C.READY: 0})))

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """Writes the candidate version if the model is blessed, faithful and
    within the device budget; records every figure, or why it is not
    ready.

    Args:
      input_dict: `model` (Trainer), `model_blessing` (Evaluator, optional),
        `examples` (Transform's transformed examples with `train` and `eval`
        splits), `span_examples` (the window's raw examples, optional).
      output_dict: `candidate`, a Model artifact holding the version's files
        and manifest, with every figure and `ready` recorded.
      exec_properties: see `TFLiteConverterSpec.PARAMETERS`.
    """
    self._log_startup(input_dict, output_dict, exec_properties)
    candidate = artifact_utils.get_single_instance(output_dict[C.CANDIDATE])
    settings = PushSettings.from_exec_properties(exec_properties)
    blessing = input_dict.get(C.MODEL_BLESSING) or []
    if blessing and not model_utils.is_model_blessed(blessing[0]):
      return self._not_ready(candidate, 'the model was not blessed by '
                             'the Evaluator', [], mode=settings.quantization)
    trained = artifact_utils.get_single_instance(input_dict[C.MODEL])
    model_path = path_utils.serving_model_path(
        trained.uri, path_utils.is_old_model_artifact(trained))
    eval_images, eval_labels = _images(input_dict, settings, 'eval')
    converted, image, scores = _convert(input_dict, settings, model_path,
                                        eval_images, eval_labels)
    problem = image.parity_problem(settings.max_accuracy_drop)
    if problem:
      return self._not_ready(candidate, problem, [image])
    # The threshold is chosen on the converted model's scores of the eval
    # images, as its proof measured them (its metadata does not change
    # them), and recorded there as its score threshold.
    chosen = threshold_lib.choose(eval_labels, scores[:, -1],
                                  settings.phase_one_recall)
    print(f'tflite_converter: {chosen.describe()}', flush=True)
    model, packaging = stages.package(converted, settings.class_names,
                                      chosen.value)
    classifier = conversion.TFLiteClassifier(model)
    tflm = _micro(settings, model, classifier, eval_images)
    proofs = [image, packaging, tflm]
    verdict = results.BudgetVerdict.of(settings.budget.breaches(
        len(model), image.latency_ms_median, tflm.arena_bytes))
    if not verdict.fits:
      return self._not_ready(candidate, verdict.describe(),
                             proofs + [verdict])
    front_end = _front_end(input_dict)
    families = _families(input_dict)
    waveform_model, wave = waveform_lib.build(
        model_path, converted, front_end, settings,
        _span_windows(input_dict, settings), chosen.value)
    print(f'tflite_converter: {waveform_lib.describe(wave)}', flush=True)
    description = classifier.describe()
    files, firmware_entry = stages.firmware_source(
        model, packaging, description, tflm, settings.class_names)
    files.update(stages.model_files(model, settings.class_names,
                                    waveform_model))
    manifest = stages.manifest(
        settings, conversion.sha256(converted), packaging, description,
        front_end, proofs, wave, firmware_entry, self._source(input_dict),
        families, chosen.to_json(), pairing.key(
            settings.class_names[0], families or [], _span_record(input_dict)))
    candidate_lib.write(candidate.uri, files, manifest)
    artifact_properties.record(candidate, stages.outcome_properties(
        proofs + [wave], {'sha256': conversion.sha256(model), C.READY: 1,
                          **threshold_properties(chosen)}))

  def _source(self, input_dict: Dict[str, List[types.Artifact]]
              ) -> Dict[str, Any]:
    """The manifest's `source`: the model artifact and the run."""
    model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
    return {'model_artifact_id': model.id, 'model_uri': model.uri,
            'pipeline_run_id': getattr(self._context, 'pipeline_run_id',
                                       None) if self._context else None}
