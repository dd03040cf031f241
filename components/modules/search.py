"""Tuner module: search the Trainer's hyperparameters under a device budget.

TFX's Tuner calls :func:`tuner_fn` by its dotted name. Each trial builds
the Trainer's own architecture (:func:`trainer.build_model`) with the
trial's width and dropout, trains it for the Tuner's short number of steps
at the trial's learning rate, then measures what matters on a device: it
exports the model, converts it to TFLite in the pipeline's quantization
mode, and times one single-image invoke with one interpreter thread.

The objective is the eval AUC of trials within the budget. KerasTuner
maximises one number, so a trial's `score` is its AUC when it fits and its
AUC minus 1 when it does not: every trial within budget ranks above every
trial over it, and the figures of all trials are recorded either way.
"""

import os
import shutil
import tempfile
import time
from typing import Dict, List, Optional

import keras_tuner
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from keras_tuner.engine import base_tuner
from tfx.components.tuner.component import TunerFnResult

from components.modules import features
from components.modules import trainer
from components.modules.search_settings import SearchSettings
from components.tflite import conversion
from components.tflite import micro
from components.tflite import Quantization

OBJECTIVE = 'score'
# The hyperparameters and their ranges, within the Trainer's architecture.
WIDTHS = (0.25, 0.35, 0.5, 0.6, 0.75, 1.0)
DROPOUT_RANGE = (0.0, 0.4, 0.1)  # min, max, step
LEARNING_RATE_RANGE = (5e-4, 5e-3)  # log scale
# Figures each trial records beside its score, as trial metrics.
FIGURES = ('auc', 'accuracy', 'tflite_bytes', 'latency_ms_median',
           'arena_bytes', 'within_budget', 'seconds')


def search_space() -> keras_tuner.HyperParameters:
  """The hyperparameters a trial sets: `width`, `dropout`, `learning_rate`.

  Width multiplies every layer's filter count, so it sets the model's size
  and most of its latency; dropout and learning rate set how well a model
  of that size learns.
  """
  hp = keras_tuner.HyperParameters()
  hp.Choice('width', list(WIDTHS), ordered=True)
  hp.Float('dropout', DROPOUT_RANGE[0], DROPOUT_RANGE[1],
           step=DROPOUT_RANGE[2])
  hp.Float('learning_rate', LEARNING_RATE_RANGE[0], LEARNING_RATE_RANGE[1],
           sampling='log')
  return hp


def trial_score(auc: float, fits: bool) -> float:
  """The number the search maximises: AUC within budget, AUC - 1 over it.

  A NaN AUC (the eval split holds one class) counts as 0.
  """
  auc = 0.0 if auc != auc else auc  # pylint: disable=comparison-with-itself
  return auc if fits else auc - 1.0


class BudgetTuner(base_tuner.BaseTuner):
  """Trains, converts and measures one model per trial.

  Args:
    oracle: the KerasTuner oracle that proposes the trials.
    settings: the search's settings (the training settings, the search's
      own and the device budget).
    steps: training steps per trial.
    directory: KerasTuner's project folder (the Tuner's temp folder).
  """

  def __init__(self, oracle, settings: SearchSettings, steps: int,
               directory: str):
    super().__init__(oracle, directory=directory,
                     project_name='device_search', overwrite=True)
    self.settings = settings
    self.steps = steps
    self.budget = settings.budget

  def run_trial(self, trial, train_files: List[str], eval_files: List[str],
                transform_output: str,
                representative: Optional[np.ndarray] = None
                ) -> Dict[str, float]:
    """Trains and measures the trial's model; returns its figures.

    Raises:
      keras_tuner FatalError: on any failure, with the trial's settings, so
        a broken trial stops the search instead of being skipped silently.
    """
    try:
      return self._measure(trial, train_files, eval_files, transform_output,
                           representative)
    except Exception as e:  # pylint: disable=broad-except
      raise keras_tuner.errors.FatalError(
          f'trial {trial.trial_id} ({trial.hyperparameters.values}) '
          f'failed: {e}') from e

  def _measure(self, trial, train_files, eval_files, transform_output,
               representative) -> Dict[str, float]:
    started = time.time()
    values = trial.hyperparameters.values
    settings = self.settings.training
    image_size, channels = settings.image_size, settings.channels
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(settings.seed)
    print(f'search: trial {trial.trial_id}: ' + ', '.join(
        f'{k} {v:.4g}' for k, v in values.items()), flush=True)
    model = trainer.build_model(image_size, channels,
                                width=float(values['width']),
                                dropout=float(values['dropout']))
    tf_transform_output = tft.TFTransformOutput(transform_output)
    scratch = tempfile.mkdtemp(prefix='trial-', dir=self.project_dir)
    try:
      train_ds = trainer.make_dataset(
          train_files, tf_transform_output, settings.batch_size,
          image_size, channels, training=True, seed=settings.seed,
          augment=settings.augment, cache_dir=scratch)
      trainer.train(model, train_ds, self.steps,
                    float(values['learning_rate']),
                    log_every=max(1, self.steps // 2))
      del train_ds
      eval_ds = trainer.make_dataset(
          eval_files, tf_transform_output, settings.batch_size,
          image_size, channels, training=False)
      quality = trainer.evaluate(model, eval_ds)
      export_dir = os.path.join(scratch, 'model')
      trainer.export_model(model, export_dir, image_size, channels)
      mode = self.settings.quantization
      tflite = conversion.convert(export_dir,
                                  features.SERVING_IMAGE_SIGNATURE, mode,
                                  representative)
      probe = np.full((image_size, image_size, channels), 128.0, np.float32)
      classifier = conversion.TFLiteClassifier(tflite)
      latency = classifier.median_latency_ms(
          probe, runs=self.settings.latency_runs)
      arena = None
      if self.budget.runs_micro(mode):
        # The arena does not depend on the pixels: one probe image.
        found = micro.measure(tflite, classifier.quantize_input(probe)[None])
        arena = found.get('arena_bytes')
        if arena is None:
          print(f"search: trial {trial.trial_id}: {found['error']}",
                flush=True)
    finally:
      shutil.rmtree(scratch, ignore_errors=True)
    breaches = self.budget.breaches(len(tflite), latency, arena)
    figures = {
        OBJECTIVE: trial_score(quality['auc'], not breaches),
        'auc': quality['auc'],
        'accuracy': quality['accuracy'],
        'tflite_bytes': float(len(tflite)),
        'latency_ms_median': latency,
        # -1: not measured (not int8 and no arena limit) or TFLM failed.
        'arena_bytes': float(arena) if arena is not None else -1.0,
        'within_budget': 0.0 if breaches else 1.0,
        'seconds': time.time() - started,
    }
    print(f"search: trial {trial.trial_id}: auc {quality['auc']:.4f}, "
          f'{len(tflite):,} bytes, {latency:.3f} ms, ' +
          (f'arena {arena:,} bytes, ' if arena is not None else '') +
          ('; '.join(b.describe() for b in breaches) or 'within budget') +
          f" ({figures['seconds']:.0f} s)", flush=True)
    return figures


def representative_images(train_files: List[str], settings: SearchSettings
                          ) -> Optional[np.ndarray]:
  """Calibration images for `int8` trials (None for the other modes)."""
  if settings.quantization != Quantization.INT8:
    return None
  images, labels = [], []
  per_pattern = max(1, settings.representative_examples //
                    max(1, len(train_files)))
  for pattern in train_files:
    pixels, label = conversion.load_images(
        pattern, features.IMAGE_PNG_KEY, features.LABEL_KEY,
        settings.training.image_size, settings.training.channels,
        per_pattern)
    images.append(pixels)
    labels.append(label)
  return np.concatenate(images)


def tuner_fn(fn_args) -> TunerFnResult:
  """Builds the budget-aware search; called by the TFX Tuner.

  `fn_args.custom_config` holds the :class:`SearchSettings`;
  `fn_args.train_steps` is the short training of each trial.

  Returns:
    The tuner and the arguments of its `run_trial`.
  """
  settings = SearchSettings.from_custom_config(fn_args.custom_config)
  oracle = keras_tuner.oracles.RandomSearchOracle(
      objective=keras_tuner.Objective(OBJECTIVE, direction='max'),
      max_trials=settings.tune_trials,
      hyperparameters=search_space(),
      # KerasTuner replaces a seed of 0 (our default) with a random one.
      seed=settings.training.seed + 1,
      allow_new_entries=False,
      tune_new_entries=False)
  tuner = BudgetTuner(oracle, settings, max(1, int(fn_args.train_steps or 1)),
                      directory=fn_args.working_dir)
  return TunerFnResult(tuner=tuner, fit_kwargs={
      'train_files': fn_args.train_files,
      'eval_files': fn_args.eval_files,
      'transform_output': fn_args.transform_graph_path,
      'representative': representative_images(fn_args.train_files, settings),
  })
