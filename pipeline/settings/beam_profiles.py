"""Beam profiles: where the Beam components' work runs.

- `local` (the default): Beam's in-process DirectRunner, one worker; the
  lightest on memory.
- `multiprocess`: the DirectRunner with one worker process per CPU.
- `portable`: Beam's PortableRunner with an EXTERNAL environment: a worker
  pool on this machine (`apache_beam.runners.worker.worker_pool_main`,
  started and stopped around each run) runs every DoFn in separate SDK
  worker processes, as Dataflow, Flink and Spark workers do. It catches
  what the in-process runner lets pass (DoFns that do not pickle, imports
  missing in a worker). The workers use this environment's Python, as a
  Dataflow custom container would hold the project: nothing is staged.
- `dataflow`: Google Cloud Dataflow with the project's container image
  (`--image`) as the SDK container; it needs `--gcp-project`, `--region`
  and a `gs://` `--temp-location`.

`--beam-args` are appended to the profile's, so they override or extend it.
"""

import dataclasses
from typing import List, Optional, Sequence, Tuple

from components.common import errors

PROFILES = ('local', 'multiprocess', 'portable', 'dataflow')
# Settings the dataflow profile needs, by the name of their flags.
DATAFLOW_SETTINGS = ('gcp_project', 'region', 'temp_location', 'image')


class BeamProfileError(errors.PipelineError, RuntimeError):
  """Raised when a profile lacks a setting or its worker pool cannot
  start; names the setting or the pool's log."""


def missing_settings(profile: str, **settings: str) -> List[str]:
  """The settings `profile` needs that are empty in `settings`."""
  if profile != 'dataflow':
    return []
  return [name for name in DATAFLOW_SETTINGS if not settings.get(name)]


def pipeline_args(profile: str, extra: Sequence[str] = (), *,
                  worker_pool: Optional[str] = None,
                  gcp_project: str = '', region: str = '',
                  temp_location: str = '', image: str = '') -> List[str]:
  """The Beam pipeline arguments of `profile`, then `extra`.

  Args:
    profile: one of :data:`PROFILES`.
    extra: raw Beam arguments appended (later flags win).
    worker_pool: `host:port` of a running worker pool (`portable` only;
      see `pipeline.runners.worker_pool`).
    gcp_project, region, temp_location, image: the `dataflow` profile's
      project, region, `gs://` temporary folder and SDK container image.

  Returns:
    The arguments, without any path of this machine.

  Raises:
    BeamProfileError: for an unknown profile, `portable` without a pool,
      or `dataflow` without its settings.
  """
  if profile == 'local':
    # Beam's defaults: the in-memory DirectRunner with one worker. Passing
    # them would make TFX package itself for every Beam component.
    args = []
  elif profile == 'multiprocess':
    # 0 workers: one per CPU of the machine that runs the component.
    args = ['--direct_running_mode=multi_processing',
            '--direct_num_workers=0']
  elif profile == 'portable':
    if not worker_pool:
      raise BeamProfileError(
          'the portable Beam profile runs only with a worker pool on this '
          'machine (python -m pipeline run starts one); to run at scale, '
          'use --beam dataflow')
    args = ['--runner=PortableRunner', '--job_endpoint=embed',
            '--environment_type=EXTERNAL',
            f'--environment_config={worker_pool}']
  elif profile == 'dataflow':
    missing = missing_settings(profile, gcp_project=gcp_project,
                               region=region, temp_location=temp_location,
                               image=image)
    if missing:
      raise BeamProfileError(
          'the dataflow Beam profile needs ' +
          ', '.join('--' + name.replace('_', '-') for name in missing))
    args = ['--runner=DataflowRunner', f'--project={gcp_project}',
            f'--region={region}', f'--temp_location={temp_location}',
            f'--sdk_container_image={image}']
  else:
    raise BeamProfileError(f'unknown Beam profile {profile!r}; choose one '
                           f'of {", ".join(PROFILES)}')
  return args + list(extra)


@dataclasses.dataclass(frozen=True)
class BeamSettings:
  """The run-and-Beam section of the settings, as the runner takes it.

  Attributes:
    profile: one of :data:`PROFILES`.
    extra: more Beam arguments, after the profile's.
    gcp_project, region, temp_location, image: the `dataflow` profile's.
  """
  profile: str = 'local'
  extra: Tuple[str, ...] = ()
  gcp_project: str = ''
  region: str = ''
  temp_location: str = ''
  image: str = ''

  def missing(self) -> List[str]:
    """The settings the profile needs that are empty."""
    return missing_settings(self.profile, **{
        name: getattr(self, name) for name in DATAFLOW_SETTINGS})

  def pipeline_args(self, worker_pool: Optional[str] = None) -> List[str]:
    """The Beam arguments of the profile, then `extra` (see
    :func:`pipeline_args`)."""
    return pipeline_args(self.profile, self.extra, worker_pool=worker_pool,
                         **{name: getattr(self, name)
                            for name in DATAFLOW_SETTINGS})
