"""Where musicnn's trained weights live, and the check that they are the
ones PyPI's `musicnn` 0.1.0 wheel ships (ISC licence, Music Technology
Group, Universitat Pompeu Fabra, 2019).

`scripts/ensure_music_weights.sh` downloads the wheel (its SHA-256 pinned),
and unpacks only the checkpoint files of the models below into
`<venv>/share/musicnn/<model>/`: the wheel's own code pins numpy<1.17 and
TensorFlow 1, and none of it is installed or imported. A checkpoint's files
are named by its folder alone (`MSD_musicnn/.index`), so the prefix a
checkpoint reader takes is the folder with a trailing separator.

No TensorFlow here: the Trainer, the proof test and the setup script's
check read this module alike.

Example:

    prefix = weights.checkpoint_prefix('MSD_musicnn')
"""

import dataclasses
import hashlib
import os
import sys
from typing import Dict, Optional

from components.common import errors

# The environment variable that points at a folder holding the model
# folders, in place of `<sys.prefix>/share/musicnn`.
HOME_ENV = 'MUSICNN_HOME'
# The wheel the weights come from, as the setup script fetches it.
WHEEL = 'musicnn==0.1.0'
WHEEL_SHA256 = ('f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88'
                'beb65cfa')


@dataclasses.dataclass(frozen=True)
class Checkpoint:
  """One of the wheel's trained musicnn models.

  Attributes:
    name: its folder in the wheel (`MTT_musicnn`, `MSD_musicnn`).
    tags: how many tags its output layer scores.
    files: each checkpoint file's name to its SHA-256.
  """
  name: str
  tags: int
  files: Dict[str, str]


# MagnaTagATune's 50 tags and the Million Song Dataset's 50 tags: two
# models of one architecture, trained on different music.
CHECKPOINTS = {
    'MTT_musicnn': Checkpoint('MTT_musicnn', 50, {
        '.index': ('da2d7bb670b2b31e9bc441bb1bd75eca31b5b061f963cc1f9630c1'
                   'aff3238f57'),
        '.data-00000-of-00001': ('041f3935e981a65cea739842d30c188d3a7d2adf'
                                 '4410955c8668eb3de4a5acab'),
    }),
    'MSD_musicnn': Checkpoint('MSD_musicnn', 50, {
        '.index': ('87f3e0f3550c8d3bafc840374003e5c8af5eeb5ecf6add61af09a7'
                   '822d3282c8'),
        '.data-00000-of-00001': ('8579734ee6388f799ed0def4bbd0d1fdcbeaf213'
                                 'ef2a9dc860917bd76a303de6'),
    }),
}


class WeightsError(errors.PipelineError, FileNotFoundError):
  """Raised when a model's checkpoint is missing, unknown or not the
  wheel's."""


def home() -> str:
  """The folder holding the model folders: `$MUSICNN_HOME`, else
  `<sys.prefix>/share/musicnn`."""
  return os.environ.get(HOME_ENV) or os.path.join(sys.prefix, 'share',
                                                  'musicnn')


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def checkpoint_prefix(name: str, folder: Optional[str] = None,
                      verify: bool = True) -> str:
  """The checkpoint prefix of model `name`, its files checked.

  Args:
    name: a key of :data:`CHECKPOINTS`.
    folder: the folder holding the model folders (default :func:`home`).
    verify: compare each file's SHA-256 with the wheel's.

  Returns:
    `<folder>/<name>/`, the prefix a checkpoint reader takes.

  Raises:
    WeightsError: for an unknown model, a missing file (naming it and the
      command that installs it) or a file that is not the wheel's.
  """
  if name not in CHECKPOINTS:
    raise WeightsError(f'unknown musicnn model {name!r}; expected one of '
                       f'{", ".join(sorted(CHECKPOINTS))}')
  model_dir = os.path.join(folder or home(), name)
  for file_name, digest in CHECKPOINTS[name].files.items():
    path = os.path.join(model_dir, file_name)
    if not os.path.isfile(path):
      raise WeightsError(
          f'musicnn weights missing: {path} (install them with '
          f'`bash scripts/ensure_music_weights.sh`, or set {HOME_ENV} to a '
          f'folder holding {name}/)')
    if verify and _sha256(path) != digest:
      raise WeightsError(f'{path} is not the file {WHEEL} ships (SHA-256 '
                         'differs); reinstall it with '
                         '`bash scripts/ensure_music_weights.sh`')
  return model_dir + os.sep
