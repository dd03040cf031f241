"""Runs the original musicnn (the wheel's own extractor, librosa and its
TensorFlow 1 graph through tf.compat.v1) on WAV files, in a process of its
own: `python tests/musicnn_original.py OUT.npz MODEL[,MODEL] WAV...`, with
`.musicnn-reference` first on PYTHONPATH. Writes, for each file `i`, its
log-mel (`mel_i`, what librosa gave the network) and for each model the
extractor's `MODEL/max_pool_i`, `mean_pool_i`, `penultimate_i` and
`taggram_i`.

A window of 1 s at 16 kHz is 63 frames in the port; the extractor cuts
patches of `time_to_frames(input_length) + 1` frames, so 1.01 s gives one
patch of all 63.
"""

import sys

import numpy as np

# librosa 0.8.1 (the last release that pads its STFT by reflection, as the
# releases musicnn was trained with did) names numpy's type aliases that
# numpy 1.24 removed (`np.complex` at import); they were the builtins.
for _alias, _builtin in (('complex', complex), ('float', float),
                         ('int', int), ('bool', bool)):
  if not hasattr(np, _alias):
    setattr(np, _alias, _builtin)

from musicnn import configuration  # pylint: disable=g-import-not-at-top,wrong-import-position
from musicnn import extractor  # pylint: disable=g-import-not-at-top,wrong-import-position

INPUT_LENGTH = 1.01


def main(out: str, models: str, paths):
  found = {}
  for index, path in enumerate(paths):
    _, mel = extractor.batch_data(path, 63, 63)
    found[f'mel_{index}'] = mel.astype(np.float32)
    for model in models.split(','):
      taggram, _, features = extractor.extractor(
          path, model=model, input_length=INPUT_LENGTH,
          extract_features=True)
      found[f'{model}/taggram_{index}'] = taggram
      for key in ('max_pool', 'mean_pool', 'penultimate'):
        found[f'{model}/{key}_{index}'] = features[key]
  found['sample_rate'] = np.array(configuration.SR)
  np.savez(out, **found)


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2], sys.argv[3:])
