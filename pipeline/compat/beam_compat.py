"""TFX 1.16's Beam components on runners whose workers already hold TFX.

Whenever a Beam component gets any Beam argument, TFX 1.16
(`dependency_utils.make_beam_dependency_flags`, called by every
`BaseBeamExecutor`) copies its own source tree into a new temporary folder,
builds a source package of it and adds `--extra_package=` to the Beam
arguments, unless one of `--extra_packages`, `--setup_file`,
`--requirements_file` or a container image is given. The package serves
remote workers that lack TFX. On the runners this project starts itself
(the in-process and multi-process DirectRunner, and a PortableRunner whose
workers run in this machine's environment) nothing reads it, yet it costs
about 3 s and 49 MB of temporary disk per Beam component per run, and TFX
never deletes the folder: a schedule that runs every few minutes fills a
disk in days.

While installed, Beam arguments that name such a local runner are passed
through unchanged; any other runner (Dataflow, a Docker environment) gets
TFX's own behaviour. TFX skips the package by itself when a component gets
no Beam argument at all, which is why the `local` profile passes none (its
runner's defaults are what it wants); `multiprocess`, `portable` and any
`--beam-args` need this. :func:`install` is called by `run.run_pipeline`,
in the process where LocalDagRunner runs the executors, whenever the run
has Beam arguments. It refuses TFX versions it was not written for.
"""

import functools
from typing import List, Sequence

from pipeline.compat import versions

# The release whose `dependency_utils.make_beam_dependency_flags` this
# wraps.
WRITTEN_FOR = {'tfx': '1.16.0'}
CANARY = ('tests/test_beam_compat.py::'
          'test_without_the_work_around_tfx_leaves_its_package_in_the_temp_folder')

# Runners whose SDK workers run in this machine's Python environment.
LOCAL_RUNNERS = frozenset({'', 'direct', 'directrunner',
                           'bundlebaseddirectrunner',
                           'switchingdirectrunner'})
# Portable environments whose workers this machine starts from its venv.
LOCAL_ENVIRONMENTS = frozenset({'external', 'loopback', 'process'})
_MARK = '_on_device_local_runners_pass_through'


def workers_hold_tfx(beam_args: Sequence[str]) -> bool:
  """True when `beam_args` name a runner whose workers run in this
  machine's Python environment, where TFX is installed already.

  Args:
    beam_args: Beam pipeline arguments (`--runner=...` and the rest).
  """
  from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
  options = pipeline_options.PipelineOptions(flags=list(beam_args))
  runner = options.view_as(pipeline_options.StandardOptions).runner
  runner = (runner if isinstance(runner, str)
            else type(runner).__name__ if runner else '').lower()
  if runner in LOCAL_RUNNERS:
    return True
  if runner in ('portablerunner', 'portable'):
    environment = options.view_as(
        pipeline_options.PortableOptions).environment_type or 'docker'
    return environment.lower() in LOCAL_ENVIRONMENTS
  return False


def install() -> None:
  """Makes TFX skip its throw-away source package for local runners, in
  this process (idempotent).

  Raises:
    versions.CompatError: on a TFX other than :data:`WRITTEN_FOR`.
  """
  versions.require('pipeline/compat/beam_compat.py', WRITTEN_FOR, CANARY)
  from tfx.utils import dependency_utils  # pylint: disable=g-import-not-at-top
  original = dependency_utils.make_beam_dependency_flags
  if getattr(original, _MARK, False):
    return

  @functools.wraps(original)
  def make_beam_dependency_flags(beam_pipeline_args: List[str]) -> List[str]:
    if workers_hold_tfx(beam_pipeline_args):
      return beam_pipeline_args
    return original(beam_pipeline_args)

  setattr(make_beam_dependency_flags, _MARK, True)
  dependency_utils.make_beam_dependency_flags = make_beam_dependency_flags
