"""Deploying a pushed phase-two version to a Vertex AI endpoint.

Vertex AI runs the project's image (the Dockerfile's, which holds KServe's
environment) as a custom serving container: `python -m pipeline serve` on
the version Vertex AI copied from the bucket (`$(AIP_STORAGE_URI)`), on
every address at Vertex's port, with the predict and health routes of
TensorFlow Serving's REST API that `serve` answers. TFX's own Vertex pusher
passes only the image, so those routes would be Vertex's defaults, which
this server does not answer.

`deploy` uploads the version as a Vertex AI Model and deploys it to the
endpoint named by `endpoint` (made when absent) with all its traffic; the
version before it stays deployed until Vertex AI has moved the traffic.
"""

import dataclasses
from typing import Any, Dict, List, Optional

from components.common import errors

PORT = 8080
DEFAULT_MACHINE_TYPE = 'n1-standard-2'


class VertexDeployError(errors.PipelineError, RuntimeError):
  """Raised when Vertex AI refuses the upload or the deployment."""


@dataclasses.dataclass(frozen=True)
class Target:
  """Where a version is deployed: project, region, endpoint display name,
  the serving image and machine type."""
  project: str
  region: str
  endpoint: str
  image: str
  machine_type: str = DEFAULT_MACHINE_TYPE

  def problems(self) -> List[str]:
    return [f'{name} is needed to deploy to the Vertex AI endpoint '
            f'{self.endpoint!r}' for name, value in (
                ('gcp_project', self.project), ('region', self.region),
                ('image', self.image)) if not value]


def predict_route(model_name: str) -> str:
  return f'/v1/models/{model_name}:predict'


def health_route(model_name: str) -> str:
  return f'/v1/models/{model_name}'


def container(model_name: str) -> Dict[str, Any]:
  """The serving container's command, arguments, port and routes, as
  `aiplatform.Model.upload` takes them."""
  return {
      'serving_container_command': ['python', '-m', 'pipeline', 'serve'],
      'serving_container_args': [
          '--model', '$(AIP_STORAGE_URI)', '--served-model-name', model_name,
          '--host', '0.0.0.0', '--port', str(PORT)],
      'serving_container_ports': [PORT],
      'serving_container_predict_route': predict_route(model_name),
      'serving_container_health_route': health_route(model_name),
  }


def deploy(target: Target, model_name: str, version: int, version_dir: str,
           labels: Optional[Dict[str, str]] = None,
           aiplatform: Any = None) -> Dict[str, str]:
  """Uploads `version_dir` (on a bucket) as a Vertex AI Model and deploys it
  to the target endpoint with all traffic.

  Args:
    target: project, region, endpoint, image, machine type.
    model_name: the served model's name (its routes).
    version: the pushed version number.
    version_dir: the version's folder on the bucket.
    labels: Vertex AI labels for the model.
    aiplatform: the `google.cloud.aiplatform` module (a stand-in in tests).

  Returns:
    `endpoint` and `model` resource names.

  Raises:
    VertexDeployError: on missing settings or Vertex AI's refusal.
  """
  problems = target.problems()
  if problems:
    raise VertexDeployError('; '.join(problems))
  if aiplatform is None:
    from google.cloud import aiplatform  # pylint: disable=g-import-not-at-top
  try:
    aiplatform.init(project=target.project, location=target.region)
    found = aiplatform.Endpoint.list(
        filter=f'display_name="{target.endpoint}"')
    endpoint = (found[0] if found else aiplatform.Endpoint.create(
        display_name=target.endpoint))
    model = aiplatform.Model.upload(
        display_name=f'{model_name}-v{version}', artifact_uri=version_dir,
        serving_container_image_uri=target.image, labels=labels or {},
        **container(model_name))
    endpoint.deploy(model=model, machine_type=target.machine_type,
                    min_replica_count=1, max_replica_count=1,
                    traffic_percentage=100, sync=True)
  except Exception as e:  # pylint: disable=broad-except
    raise VertexDeployError(
        f'Vertex AI refused the deployment of {model_name} version {version} '
        f'to the endpoint {target.endpoint!r}: '
        f'{str(e).splitlines()[0] if str(e) else type(e).__name__}') from e
  return {'endpoint': endpoint.resource_name, 'model': model.resource_name}
