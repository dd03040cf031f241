"""Tests of the one file layer for local disks and buckets."""

import pytest

from components.common import storage


def test_uris_and_local_paths_are_told_apart_and_joined_their_way():
  assert storage.is_uri('s3://bucket/a') and storage.is_uri('gs://b')
  assert not storage.is_uri('/srv/data') and not storage.is_uri('data')
  assert not storage.is_uri('C:/data')
  assert storage.join('s3://bucket/root/', 'span-1', 'x.gz') == \
      's3://bucket/root/span-1/x.gz'
  assert storage.join('/srv', 'span-1') == '/srv/span-1'
  assert storage.scheme('S3://Bucket/x') == 's3' and storage.scheme('/x') == ''


@pytest.mark.parametrize('given, expected', [
    ({'S3_ENDPOINT': 'http://127.0.0.1:9000'},
     {'AWS_ENDPOINT_URL': 'http://127.0.0.1:9000'}),
    ({'S3_ENDPOINT': 'minio.lan:9000', 'S3_USE_HTTPS': '0'},
     {'AWS_ENDPOINT_URL': 'http://minio.lan:9000'}),
    ({'S3_ENDPOINT': 'minio.lan:9000'},
     {'AWS_ENDPOINT_URL': 'https://minio.lan:9000'}),
    ({'AWS_ENDPOINT_URL': 'http://127.0.0.1:9000'},
     {'S3_ENDPOINT': 'http://127.0.0.1:9000', 'S3_USE_HTTPS': '0'}),
    ({'AWS_ENDPOINT_URL': 'https://s3.lan', 'S3_ENDPOINT': 'https://other'},
     {'AWS_ENDPOINT_URL': 'https://s3.lan', 'S3_ENDPOINT': 'https://other'}),
    ({}, {}),
])
def test_one_s3_endpoint_setting_serves_tensorflow_and_beam(given, expected):
  environ = dict(given)
  storage.share_s3_endpoint(environ)
  assert {k: v for k, v in environ.items() if k in expected} == expected
  assert set(environ) == set(given) | set(expected)


@pytest.mark.parametrize('root', ['local', 'ram'])
def test_files_are_written_listed_and_read_alike_on_disk_and_bucket(
    root, tmp_path):
  base = (str(tmp_path) if root == 'local'
          else f'ram://{tmp_path.name}-storage')
  folder = storage.join(base, 'span-1')
  storage.makedirs(folder)
  storage.write_bytes(storage.join(folder, 'a.tfrecord.gz'), b'data')
  storage.write_bytes(storage.join(folder, 'ingest.json'), '{"span": 1}')
  assert storage.listdir(base) == ['span-1']
  assert sorted(storage.listdir(folder)) == ['a.tfrecord.gz', 'ingest.json']
  assert storage.glob(storage.join(base, 'span-*', '*.gz')) == [
      storage.join(folder, 'a.tfrecord.gz')]
  assert storage.isfile(storage.join(folder, 'ingest.json'))
  assert not storage.isfile(folder)
  assert storage.read_text(storage.join(folder, 'ingest.json')) == \
      '{"span": 1}'
  with storage.open_binary(storage.join(folder, 'a.tfrecord.gz')) as f:
    assert f.read(2) == b'da'
  assert storage.listdir(storage.join(base, 'nowhere')) == []
  storage.remove(storage.join(folder, 'a.tfrecord.gz'))
  assert storage.listdir(folder) == ['ingest.json']
  with pytest.raises(OSError, match='nowhere'):
    storage.read_bytes(storage.join(base, 'nowhere', 'x'))
