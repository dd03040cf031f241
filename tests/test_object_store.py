"""The pipeline on a bucket: data root, pipeline root and push destination
on `s3://`.

moto's S3 server stands in for the bucket (tests/s3_server.py: MinIO is
not packaged here). Every command runs in its own process, as a user runs
them, with the S3 settings in its environment; the workspace keeps only
ML Metadata, logs and reports.
"""

import json
import os
import subprocess
import sys

import pytest

import s3_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The wiring, not the model: see test_e2e.py.
RUN_FLAGS = ['--image-size', '32', '--train-steps', '4', '--batch-size', '8',
             '--min-auc', '0', '--min-accuracy', '0', '--max-auc-drop', '1',
             '--max-accuracy-drop', '1', '--window-spans', '3']


def _cli(s3, *args):
  result = subprocess.run([sys.executable, '-m', 'pipeline', *args], cwd=ROOT,
                          env=s3.environ(), capture_output=True, text=True,
                          timeout=1800, check=False)
  return result.returncode, result.stdout, result.stderr


@pytest.mark.e2e
def test_the_pipeline_runs_on_a_bucket_past_a_half_uploaded_span(
    s3, small_spectrograms, tmp_path):
  bucket = f's3://{s3_server.BUCKET}'
  workspace = ['--workspace', str(tmp_path / 'ws')]
  data = ['--data-root', f'{bucket}/data']
  for span in (1, 2):
    code, out, err = _cli(s3, 'ingest', *workspace, *data, '--force',
                          small_spectrograms)
    assert code == 0, err[-3000:]
    assert f'wrote span {span} to {bucket}/data/span-{span}' in out
  assert 'data/span-2/ingest.json' in s3.keys('data/span-2/')
  # An ingest killed mid-upload leaves shards without the span's record;
  # ImportExampleGen alone would take that folder for the newest span.
  s3.client().put_object(Bucket=s3_server.BUCKET,
                         Key='data/span-3/examples-00000.tfrecord.gz',
                         Body=b'half an upload')

  code, out, err = _cli(s3, 'run', *workspace, *data, '--pipeline-root',
                        f'{bucket}/tfx', '--push-destination',
                        f'{bucket}/models', '--json', *RUN_FLAGS)
  assert code == 0, err[-5000:]
  summary = json.loads(out[out.index('{\n'):])
  # Span 2 (span 1 holds the same files, so the window counts it once);
  # span 3's half an upload, unreadable as examples, was never read.
  assert summary['spans'] == [2]
  assert {c['state'] for c in summary['components']} <= {
      'ran', 'cached', 'empty'}  # empty: a first run's resolvers
  assert summary['pushed']['pushed_version'] == '1', summary['pushed']
  assert 'models/1/manifest.json' in s3.keys('models/')
  assert any(key.startswith('tfx/Trainer/model/') for key in s3.keys('tfx/'))
  # Nothing of the data, the artifacts or the push went to the local disk
  # (the cache holds the figures readers computed from the artifacts).
  assert sorted(os.listdir(tmp_path / 'ws')) == [
      '.run.lock', 'cache', 'last_run.json', 'logs', 'metadata.sqlite',
      'reports']
  assert 'is not found' not in err  # TFX's talk of empty bucket folders

  # The next ingest goes past the leftover, never mixing into it.
  code, out, err = _cli(s3, 'ingest', *workspace, *data, '--force',
                        small_spectrograms)
  assert code == 0, err[-3000:]
  assert f'wrote span 4 to {bucket}/data/span-4' in out

  images = [os.path.join(small_spectrograms, name, sorted(os.listdir(
      os.path.join(small_spectrograms, name)))[0])
            for name in ('not_instrument', 'instrument')]
  # An image in the bucket is read from there, as local ones are.
  with open(images[1], 'rb') as f:
    s3.client().put_object(Bucket=s3_server.BUCKET, Key='inbox/clip.png',
                           Body=f.read())
  images.append(f'{bucket}/inbox/clip.png')
  code, out, err = _cli(s3, 'predict', *workspace, f'{bucket}/models',
                        *images, '--json')
  assert code == 0, err[-3000:]
  answers = json.loads(out)
  assert [a['path'] for a in answers] == images
  assert all(a['label'] in ('not_instrument', 'instrument') for a in answers)
  assert answers[2]['scores'] == answers[1]['scores']
