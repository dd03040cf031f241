"""The pipeline for Vertex AI Pipelines and Kubeflow Pipelines v2.

The same `pipeline_def.create_pipeline` the local run uses, compiled by
TFX's `KubeflowV2DagRunner` into a KFP v2 pipeline job spec (JSON) that
Vertex AI's `PipelineJob` or a KFP v2 cluster runs. Every task runs in one
container image (the repository's `Dockerfile`) that holds this project
installed, so:

- Transform and Trainer name their functions by dotted path, as in a
  local run (nothing is packaged at compile time, so compiling needs no
  credentials for a `gs://` pipeline root);
- the schema is the image's copy of `schema/` (:data:`IMAGE_SCHEMA_DIR`);
- the custom components (DataGate, AcceptSpan, SpanWindow, TFLitePusher)
  run through TFX's `kubeflow_v2_run_executor` by executor class path.

Compiling reads nothing but the module folder (for its version) and writes
nothing but the output file: no data, no bucket, no network. Vertex AI
keeps its own ML Metadata, so `--metadata` is not used there.
"""

import dataclasses
import json
import os
import re
from typing import Any, Dict, List

from components.common import storage
from pipeline.settings import config as config_lib
from components.common import errors

# Where the Dockerfile copies schema/ in the image.
IMAGE_SCHEMA_DIR = '/opt/on-device-classifier/schema'
# Kubeflow Pipelines' rule for pipeline names.
PIPELINE_NAME = re.compile(r'[a-z0-9][a-z0-9-]{0,127}\Z')
# The roots tasks write to: in a container, a local folder is lost.
_ROOT_SETTINGS = ('pipeline_root', 'data_root', 'push_destination',
                  'serving_destination')


class CompileError(errors.PipelineError, ValueError):
  """Raised when settings cannot be compiled for the target; names the
  setting."""


def check_settings(config: config_lib.PipelineConfig,
                   default_schema_dir: str = config_lib.SCHEMA_DIR) -> None:
  """Refuses settings that cannot work in a container.

  Args:
    config: the settings.
    default_schema_dir: the schema folder the image holds a copy of.

  Raises:
    CompileError: naming the first setting that cannot be compiled.
  """
  if not config.image:
    raise CompileError('compile needs --image, the container image that '
                       'holds this project (see the Dockerfile)')
  for name in _ROOT_SETTINGS:
    if not storage.is_uri(getattr(config, name)):
      raise CompileError(
          f'{name} must be a bucket URI (gs://...) to compile: a folder in '
          f'a task\'s container is gone when the task ends; got '
          f'{getattr(config, name)}')
  if os.path.abspath(config.schema_dir) != os.path.abspath(
      default_schema_dir):
    raise CompileError(
        f'schema_dir {config.schema_dir}: a compiled pipeline reads the '
        f"image's copy of schema/ ({IMAGE_SCHEMA_DIR}); edit schema/ and "
        'rebuild the image instead')
  if config.vertex_endpoint and not (config.gcp_project and config.region):
    raise CompileError(
        f'vertex_endpoint {config.vertex_endpoint!r} needs --gcp-project and '
        '--region, where the endpoint is')
  if config.beam == 'portable':
    raise CompileError(
        'beam portable starts a worker pool on this machine; compile with '
        '--beam local, multiprocess or dataflow')


def kfp_pipeline_name(name: str) -> str:
  """`name` as Kubeflow accepts it: lower case, `_` and other characters
  as `-` (`on_device_classifier` becomes `on-device-classifier`).

  Raises:
    CompileError: for a name with no letter or digit.
  """
  kfp_name = re.sub(r'[^a-z0-9-]+', '-', name.lower()).strip('-')[:128]
  if not PIPELINE_NAME.match(kfp_name):
    raise CompileError(f'pipeline_name {name!r} has no letter or digit '
                       'for a Kubeflow pipeline name')
  return kfp_name


def compile_pipeline(config: config_lib.PipelineConfig) -> Dict[str, Any]:
  """The KFP v2 pipeline job spec of `config`'s pipeline.

  Args:
    config: every setting, as for a local run; see :func:`check_settings`.
      The pipeline is named by :func:`kfp_pipeline_name`.

  Returns:
    The pipeline job as a JSON-able dict.

  Raises:
    CompileError: for settings that cannot run in a container.
  """
  check_settings(config)
  config = dataclasses.replace(
      config, pipeline_name=kfp_pipeline_name(config.pipeline_name))
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline_def  # pylint: disable=g-import-not-at-top
  # The image is built from this checkout: its module code has this
  # version, and the schema is its copy of schema/.
  code = pipeline_def.UserCode.of_modules(
      f'{IMAGE_SCHEMA_DIR}/{os.path.basename(config.schema_path)}')
  pipeline = pipeline_def.create_pipeline(
      config, code, beam_pipeline_args=config.beam_settings().pipeline_args())
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          default_image=config.image))
  return runner.run(pipeline, write_out=False)


def tasks(job: Dict[str, Any]) -> List[str]:
  """The task names of a compiled pipeline job."""
  return sorted(job['pipelineSpec']['root']['dag']['tasks'])


def write_job(job: Dict[str, Any], out: str) -> None:
  """Writes the job as JSON to `out` (a local file, written whole, or a
  bucket URI)."""
  storage.write_bytes(out, json.dumps(job, indent=2, sort_keys=True) + '\n')
