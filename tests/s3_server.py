"""A private S3-compatible server for the tests: moto's, a stand-in.

MinIO is not packaged for this machine; moto's standalone server (from
PyPI, in the lock) speaks the S3 protocol well enough for TensorFlow's
`s3://` filesystem (tensorflow-io) and boto3. It is a stand-in, not an
object store: it keeps everything in memory and checks no credentials.
Each test starts one on a free loopback port and stops it.
"""

import os
import subprocess
import sys
import tempfile
from typing import Dict

import db_servers

BUCKET = 'pipeline-tests'


class S3Server:
  """A running moto S3 server with one bucket, :data:`BUCKET`.

  Attributes:
    port: its loopback port.
    endpoint: its URL.
  """

  def __init__(self, port: int, process: subprocess.Popen, log: str):
    self.port = port
    self.endpoint = f'http://127.0.0.1:{port}'
    self._process = process
    self._log = log

  def environ(self) -> Dict[str, str]:
    """What a process needs in its environment to use this server, as a
    user would set it for theirs (see README: 'Object stores')."""
    return dict(os.environ, AWS_ACCESS_KEY_ID='test-key',
                AWS_SECRET_ACCESS_KEY='test-secret', AWS_REGION='us-east-1',
                S3_ENDPOINT=self.endpoint, S3_USE_HTTPS='0',
                S3_VERIFY_SSL='0')

  def client(self):
    """A boto3 client of this server, to look at or tamper with objects."""
    import boto3  # pylint: disable=g-import-not-at-top
    return boto3.client('s3', endpoint_url=self.endpoint,
                        region_name='us-east-1',
                        aws_access_key_id='test-key',
                        aws_secret_access_key='test-secret')

  def keys(self, prefix: str = '') -> list:
    """Object keys in the bucket under `prefix`, sorted."""
    listing = self.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item['Key'] for item in listing.get('Contents', []))

  def stop(self) -> None:
    db_servers.stop_process(self._process)
    os.unlink(self._log)


def start() -> S3Server:
  """Starts moto's S3 server and creates :data:`BUCKET`."""
  port = db_servers.free_port()
  handle, log = tempfile.mkstemp(prefix='pipeline-s3-', suffix='.log')
  with os.fdopen(handle, 'w') as out:
    process = subprocess.Popen(
        [sys.executable, '-m', 'moto.server', '-H', '127.0.0.1', '-p',
         str(port)], stdout=out, stderr=subprocess.STDOUT)
  server = S3Server(port, process, log)
  try:
    db_servers.wait_for_port(port, process, log)
    server.client().create_bucket(Bucket=BUCKET)
  except Exception:
    server.stop()
    raise
  return server
