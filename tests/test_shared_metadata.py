"""ML Metadata on a database server that several machines share.

The URL tests are plain. The rest run real servers from Debian's packages
(`scripts/ensure_databases.sh` installs them; `tests/db_servers.py` starts
private instances on loopback and stops them): the pipeline runs three
times against MariaDB and against PostgreSQL, as the golden workspace was
made, and every reader answers as it does on the golden workspace's SQLite
store; two processes from two workspaces on one MariaDB store run
one at a time, and a killed holder frees the lock.
"""

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from unittest import mock

import pytest

import db_servers
from conftest import golden_flags
from pipeline.cli import commands as cli
from pipeline.settings import config as config_lib
from pipeline.settings import metadata_url
from pipeline.runners import store_lock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = 'Hunter-2-not-shown'


# ------------------------------------------------------------------ URLs


def test_a_metadata_url_names_a_sqlite_file_a_mysql_or_a_postgresql_store(
    tmp_path):
  default = str(tmp_path / 'ws' / 'metadata.sqlite')
  assert metadata_url.parse('', default) == metadata_url.MetadataUrl(
      'sqlite', path=default)
  assert metadata_url.parse(f'sqlite://{default}').path == default
  assert metadata_url.parse(str(tmp_path / 'm.db')).path == str(
      tmp_path / 'm.db')
  mysql = metadata_url.parse('mysql://ml@db.example:3307/mlmd', environ={})
  assert (mysql.scheme, mysql.host, mysql.port, mysql.user, mysql.database,
          mysql.password) == ('mysql', 'db.example', 3307, 'ml', 'mlmd', '')
  assert metadata_url.parse('mariadb://ml@db/mlmd').port == 3306
  postgres = metadata_url.parse('postgres://ml:p%40ss@db/mlmd')
  assert (postgres.scheme, postgres.port, postgres.password) == (
      'postgresql', 5432, 'p@ss')
  config = postgres.connection_config(create_database=False)
  assert config.postgresql.dbname == 'mlmd'
  assert config.postgresql.port == '5432'
  assert config.postgresql.skip_db_creation


def test_a_password_may_come_from_the_environment_and_is_never_shown(
    tmp_path):
  store = metadata_url.parse(
      'mysql://ml@db:3306/mlmd', environ={metadata_url.PASSWORD_ENV: SECRET})
  assert store.password == SECRET
  in_url = metadata_url.parse(f'mysql://ml:{SECRET}@db/mlmd')
  for shown in (store.redacted(), in_url.redacted(), repr(in_url)):
    assert SECRET not in shown
  assert in_url.redacted() == 'mysql://ml:***@db:3306/mlmd'
  config = config_lib.PipelineConfig(workspace=str(tmp_path / 'ws'),
                                     metadata=f'mysql://ml:{SECRET}@db/m')
  assert config.to_dict()['metadata'] == 'mysql://ml@db:3306/m'
  assert config.metadata_path == ''
  assert config.metadata_url().password == SECRET


@pytest.mark.parametrize('url, says', [
    ('mongodb://ml@db/m', "unknown scheme 'mongodb'"),
    (f'mysql://ml:{SECRET}@db', 'needs a user, a host and one database'),
    ('postgresql://db/mlmd', 'needs a user'),
    ('mysql://ml@db:port/m', 'bad port'),
    ('mysql://ml@db/m?ssl=1', 'options after'),
    ('sqlite://', 'no SQLite file path'),
])
def test_a_bad_metadata_url_is_refused_naming_it(tmp_path, url, says):
  with pytest.raises(config_lib.ConfigError, match=re.escape(says)) as error:
    config_lib.PipelineConfig(workspace=str(tmp_path), metadata=url)
  assert SECRET not in str(error.value)
  assert '--metadata ' in str(error.value)


def test_every_command_that_reads_metadata_takes_metadata(capsys):
  for command in ('run', 'schedule', 'inspect', 'report'):
    with pytest.raises(SystemExit):
      cli.main([command, '--help'])
    assert '--metadata URL' in capsys.readouterr().out, command


def test_an_unreachable_store_is_named_without_its_password(tmp_path,
                                                            capsys):
  url = f'mysql://ml:{SECRET}@127.0.0.1:{db_servers.free_port()}/mlmd'
  assert cli.main(['inspect', 'runs', '--workspace', str(tmp_path),
                   '--metadata', url]) == 2
  err = capsys.readouterr().err
  assert 'cannot reach the ML Metadata store mysql://ml:***@127.0.0.1' in err
  assert SECRET not in err


# --------------------------------------------------------- real servers


# The wiring, not the model: see test_e2e.py.
RUN_FLAGS = ['--image-size', '32', '--train-steps', '4', '--batch-size', '8',
             '--min-auc', '0', '--min-accuracy', '0', '--max-auc-drop', '1',
             '--max-accuracy-drop', '1']


def _cli(*args):
  """Runs a command in this process; returns its code, stdout and stderr."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = cli.main(list(args))
  return code, out.getvalue(), err.getvalue()


def _run_as_golden(workspace, data, metadata_flags):
  """Ingests `data` and runs three times, as the golden workspace was made;
  returns each run's output and states."""
  assert _cli('ingest', '--workspace', workspace, data)[0] == 0
  outputs, states = [], []
  for _ in range(3):
    code, out, err = _cli('run', '--workspace', workspace, '--json',
                          *golden_flags(), *metadata_flags)
    assert code == 0, err
    summary = json.loads(out[out.index('{\n'):])
    outputs.append(out + err)
    states.append({c['node']: c['state'] for c in summary['components']})
  return outputs, states


def _answers(workspace, metadata_flags, folder):
  """What every reader says, as JSON or HTML."""
  answers = {}
  for what in ('runs', 'artifacts', 'lineage', 'metrics', 'settings'):
    code, out, err = _cli('inspect', what, '--json', '--workspace',
                          workspace, *metadata_flags)
    assert code == 0, err
    answers[what] = json.loads(out)
  path = os.path.join(str(folder),
                      f'report-{os.path.basename(os.path.dirname(workspace))}'
                      '.html')
  code, _, err = _cli('report', '--workspace', workspace, '--out', path,
                      *metadata_flags)
  assert code == 0, err
  with open(path, encoding='utf-8') as f:
    answers['report'] = f.read()
  return answers


# What may differ between two stores, or two runs of the same pipeline:
# ids, times and durations, float figures of training (threads reorder
# sums), images of misclassified examples, the workspace and the store,
# and the model files' sizes: a converted file's bytes vary by some dozens
# with the trained weights (seen between two runs of one setting).
_VOLATILE_KEYS = {'id', 'artifact_id', 'execution_id', 'run_id', 'run',
                  'started', 'seconds', 'created', 'create_time', 'time',
                  'metadata', 'workspace', 'data_root', 'pipeline_root',
                  'push_destination', 'ingested', 'tflite_bytes',
                  'float_bytes', 'pushed_bytes', 'sha256'}
# Lists whose order follows ids: a graph's nodes and edges.
_UNORDERED_KEYS = {'nodes', 'edges'}


def _normalized(value, workspace):
  if isinstance(value, dict):
    return {k: '*' if k in _VOLATILE_KEYS else
            sorted(_normalized(v, workspace), key=json.dumps)
            if k in _UNORDERED_KEYS else _normalized(v, workspace)
            for k, v in value.items()}
  if isinstance(value, list):
    return [_normalized(v, workspace) for v in value]
  if isinstance(value, float):
    return '*'
  if isinstance(value, str):
    return _normalized_text(value, workspace)
  return value


def _normalized_text(text, workspace):
  text = text.replace(workspace, 'WS')
  # The misclassified examples: which and how many depend on the model.
  text = re.sub(r'<figure><img(?:(?!</figure>).)*score(?:(?!</figure>).)*'
                r'</figure>', '', text)
  # ... and whether there is any: a model without mistakes has no block.
  text = re.sub(r'<div class="samples"></div><p><small>Most confident '
                r'mistakes first[^<]*</small></p>', '', text)
  text = re.sub(r'data:image/png;base64,[A-Za-z0-9+/=]+', 'IMG', text)
  text = re.sub(r'points="[^"]*"', 'points="*"', text)  # the ROC curve
  text = re.sub(r'(sqlite|mysql|postgresql)://[^<"\s]*', 'STORE', text)
  # A figure of the tiny model may be undefined on one side (precision
  # without a positive prediction), shown as n/a: a number all the same.
  text = text.replace('<td>n/a</td>', '<td>#</td>')
  return re.sub(r'-?\d+(?:\.\d+)?', '#', text)


@pytest.mark.e2e
@pytest.mark.parametrize('kind', ['mariadb', 'postgresql'])
def test_the_pipeline_runs_on_a_server_store_and_reads_as_on_sqlite(
    kind, request, tmp_path, small_spectrograms, monkeypatch):
  server = request.getfixturevalue(kind)
  reference = request.getfixturevalue('sqlite_reference')
  workspace = str(tmp_path / 'ws')
  if kind == 'mariadb':
    flags = ['--metadata', server.url('mlmd_runs')]
  else:  # The password from the environment, as a crontab would pass it.
    monkeypatch.setenv(metadata_url.PASSWORD_ENV, db_servers.PASSWORD)
    flags = ['--metadata', server.url('mlmd_runs', password=False)]
  outputs, states = _run_as_golden(workspace, small_spectrograms, flags)
  # Everything ran; the resolvers found no baseline yet.
  assert set(states[0].values()) == {'ran', 'empty'}
  assert states[0]['Trainer'] == 'ran'
  for node in ('ImportExampleGen', 'StatisticsGen', 'SpanWindow',
               'Transform', 'Trainer'):
    assert states[1][node] == 'cached', (node, states[1])
  assert {state for node, state in states[2].items()
          if not node.endswith('_resolver')} == {'cached'}, states[2]
  assert not os.path.exists(os.path.join(workspace, 'metadata.sqlite'))

  answers = _answers(workspace, flags, tmp_path)
  ref_workspace, ref_answers = reference
  for what, answer in answers.items():
    ours = _normalized(answer, workspace)
    theirs = _normalized(ref_answers[what], ref_workspace)
    if what == 'artifacts':  # Outputs of one execution, in either order.
      ours, theirs = (sorted(rows, key=json.dumps) for rows in (ours, theirs))
    if what == 'report':  # The same elements; the graph's in id order.
      ours, theirs = (sorted(page.split('><')) for page in (ours, theirs))
    if ours != theirs:  # Both kept for a diff.
      for name, value in (('server', ours), ('sqlite', theirs)):
        (tmp_path / f'{what}-{name}.json').write_text(
            json.dumps(value, indent=1, sort_keys=True))
    assert ours == theirs, f'{what}: diff {tmp_path}/{what}-*.json'
  assert answers['settings']['settings']['metadata'] == server.url(
      'mlmd_runs', password=False)

  # The password is in no output, log, report or recorded setting.
  leaks = [text for text in outputs + [json.dumps(answers)]
           if db_servers.PASSWORD in text]
  for folder, _, names in os.walk(workspace):
    for name in names:
      with open(os.path.join(folder, name), 'rb') as f:
        if db_servers.PASSWORD.encode() in f.read():
          leaks.append(os.path.join(folder, name))
  assert leaks == []


@pytest.fixture(scope='module')
def sqlite_reference(tmp_path_factory, golden):
  """Every reader's answer after the same three runs on the default SQLite
  store: the golden workspace's."""
  folder = tmp_path_factory.mktemp('sqlite-reference')
  return golden.workspace, _answers(golden.workspace, [], folder)


@pytest.mark.e2e
def test_two_workspaces_sharing_a_mariadb_store_run_one_at_a_time(
    mariadb, tmp_path, small_spectrograms):
  url = mariadb.url('mlmd_shared')
  workspaces = [str(tmp_path / 'machine-a'), str(tmp_path / 'machine-b')]
  for workspace in workspaces:
    assert _cli('ingest', '--workspace', workspace, small_spectrograms)[0] == 0
  env = dict(os.environ, PYTHONPATH=ROOT, TF_USE_LEGACY_KERAS='1',
             TF_CPP_MIN_LOG_LEVEL='3')
  command = [sys.executable, '-m', 'pipeline', 'run', '--metadata', url,
             *RUN_FLAGS]
  first = subprocess.Popen(command + ['--workspace', workspaces[0]],
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
  try:
    # Components run only under the lock.
    db_servers.wait_for_line(first.stderr, 'Component ImportExampleGen is running', 300)
    second = subprocess.run(command + ['--workspace', workspaces[1]],
                            cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert first.poll() is None  # Refused while the first still runs.
    assert second.returncode == 2, second.stderr
    assert (f'Another pipeline run (pid {first.pid} on ' in second.stderr
            and f'workspace {workspaces[0]})' in second.stderr), second.stderr
    assert 'mysql://pipeline:***@127.0.0.1' in second.stderr
    assert db_servers.PASSWORD not in second.stderr + second.stdout
    pipeline_root = os.path.join(workspaces[1], 'tfx')
    assert not os.path.isdir(pipeline_root) or not os.listdir(pipeline_root)
  finally:
    # A real kill: the server drops the holder's connection, and its lock.
    first.send_signal(signal.SIGKILL)
    first.wait()
  deadline = time.time() + 30
  while True:
    try:
      with store_lock.held(metadata_url.parse(url), 'on_device_classifier',
                           'the test'):
        break
    except store_lock.StoreLockError:
      if time.time() > deadline:
        raise
      time.sleep(0.5)


# ML Metadata 1.16 as it is: a store on a PostgreSQL URL, no work-arounds.
_BARE_PREAMBLE = '''
import sys
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb
from pipeline.settings import metadata_url
url = metadata_url.parse(sys.argv[1])
config = pb.ConnectionConfig()  # Built here: connection_config() mends.
config.postgresql.host = url.host
config.postgresql.port = str(url.port)
config.postgresql.user = url.user
config.postgresql.password = url.password
config.postgresql.dbname = url.database
store = metadata_store.MetadataStore(config)
'''

_BARE_PUT = _BARE_PREAMBLE + '''
type_id = store.put_artifact_type(pb.ArtifactType(name='Note'))
artifact = pb.Artifact(type_id=type_id)
artifact.custom_properties['text'].string_value = sys.argv[2]
store.put_artifacts([artifact])
'''


def test_ml_metadata_on_postgresql_needs_its_backslashes_carried(
    postgresql):
  url = postgresql.url('mlmd_backslash')
  # ML Metadata 1.16 alone: a string with a backslash is a syntax error.
  bare = subprocess.run([sys.executable, '-c', _BARE_PUT, url, 'a\\b'],
                        cwd=ROOT, capture_output=True, text=True,
                        env=dict(os.environ, PYTHONPATH=ROOT), check=False)
  assert bare.returncode != 0
  assert "syntax error at or near \"a\"" in bare.stderr, bare.stderr[-2000:]

  # With the work-around every string round-trips.
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  from pipeline.metadata import mlmd  # pylint: disable=g-import-not-at-top
  store = mlmd.open_store(metadata_url.parse(url))
  type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(
      name='Note'))
  texts = ['a\\b', '{"message": "line\\nline \\"quoted\\""}', 'C:\\data\\',
           "it's", 'plain']
  artifacts = []
  for text in texts:
    artifact = metadata_store_pb2.Artifact(type_id=type_id, uri=f'/x/{text}')
    artifact.custom_properties['text'].string_value = text
    artifacts.append(artifact)
  ids = store.put_artifacts(artifacts)
  read = {a.id: a for a in store.get_artifacts_by_id(ids)}
  assert [read[i].custom_properties['text'].string_value
          for i in ids] == texts
  assert [read[i].uri for i in ids] == [f'/x/{text}' for text in texts]
  [found] = store.get_artifacts_by_uri('/x/a\\b')
  assert found.id == ids[0]


_BARE_ORDER = _BARE_PREAMBLE + '''
type_id = store.put_artifact_type(pb.ArtifactType(name='Ordered'))
ids = store.put_artifacts([pb.Artifact(type_id=type_id,
                                       state=pb.Artifact.PENDING)
                           for _ in range(4)])
[first] = store.get_artifacts_by_id([ids[0]])
first.state = pb.Artifact.LIVE
store.put_artifacts([first])
print(' '.join(str(a.id) for a in store.get_artifacts_by_id(ids)))
'''


def _put_two_outputs(store):
  """An execution with outputs `a` (type A) and `b` (type B), published
  the way TFX does: artifacts PENDING first, then LIVE, `a` last."""
  from ml_metadata.proto import metadata_store_pb2 as pb  # pylint: disable=g-import-not-at-top
  types = {key: store.put_artifact_type(pb.ArtifactType(name=f'Out{key}'))
           for key in 'ab'}
  execution_type = store.put_execution_type(pb.ExecutionType(name='Node'))
  pairs = []
  for key in 'ab':
    event = pb.Event(type=pb.Event.OUTPUT)
    event.path.steps.add().key = key
    event.path.steps.add().index = 0
    pairs.append((pb.Artifact(type_id=types[key], uri=f'/out/{key}',
                              state=pb.Artifact.PENDING), event))
  execution_id, artifact_ids, _ = store.put_execution(
      pb.Execution(type_id=execution_type,
                   last_known_state=pb.Execution.COMPLETE), pairs, [])
  for artifact_id in reversed(artifact_ids):
    [artifact] = store.get_artifacts_by_id([artifact_id])
    artifact.state = pb.Artifact.LIVE
    store.put_artifacts([artifact])
  return execution_id, artifact_ids


def test_ml_metadata_on_postgresql_answers_by_id_in_id_order_so_tfx_cache_keys_hold(
    postgresql, tmp_path):
  url = postgresql.url('mlmd_order')
  # ML Metadata 1.16 alone: the row updated last comes back last.
  bare = subprocess.run([sys.executable, '-c', _BARE_ORDER, url], cwd=ROOT,
                        capture_output=True, text=True,
                        env=dict(os.environ, PYTHONPATH=ROOT), check=False)
  assert bare.returncode == 0, bare.stderr[-2000:]
  order = [int(i) for i in bare.stdout.split()]
  assert order != sorted(order), order

  # With the work-around, TFX's cache lookup gives each key its own
  # artifact, on PostgreSQL as on SQLite.
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.portable import cache_utils  # pylint: disable=g-import-not-at-top
  for store_url in [postgresql.url('mlmd_cache_keys'),
                    f'sqlite:///{tmp_path}/keys.sqlite']:
    config = metadata_url.parse(store_url).connection_config()
    with metadata.Metadata(config) as handle:
      execution_id, artifact_ids = _put_two_outputs(handle.store)
      assert [a.id for a in handle.store.get_artifacts_by_id(
          list(reversed(artifact_ids)))] == sorted(artifact_ids)
      outputs = cache_utils._get_outputs_of_execution(  # pylint: disable=protected-access
          handle, execution_id)
      assert {key: [a.uri for a in artifacts]
              for key, artifacts in outputs.items()} == {
                  'a': ['/out/a'], 'b': ['/out/b']}, store_url


def test_the_postgresql_work_around_refuses_versions_it_was_not_written_for():
  from pipeline.compat import postgresql_compat  # pylint: disable=g-import-not-at-top
  from pipeline.compat import versions  # pylint: disable=g-import-not-at-top
  found = {'ml-metadata': '1.17.0', 'tfx': '1.16.0'}
  with mock.patch.object(versions.metadata, 'version',
                         side_effect=found.__getitem__):
    with pytest.raises(versions.CompatError) as refused:
      postgresql_compat.install()
  message = str(refused.value)
  assert ('postgresql_compat.py works around ml-metadata 1.16.0, but '
          'ml-metadata 1.17.0 is installed') in message
  assert 'tests/test_shared_metadata.py' in message


def test_the_postgresql_work_around_fails_loudly_without_the_private_config():
  from ml_metadata.metadata_store import metadata_store  # pylint: disable=g-import-not-at-top
  from pipeline.compat import postgresql_compat  # pylint: disable=g-import-not-at-top
  from pipeline.compat import versions  # pylint: disable=g-import-not-at-top
  postgresql_compat.install()
  store = metadata_store.MetadataStore.__new__(metadata_store.MetadataStore)
  with pytest.raises(versions.CompatError, match='_config'):
    store._call('GetArtifactsByID', None, None)  # pylint: disable=protected-access
