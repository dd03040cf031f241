"""Connections to a metadata server, through the Python drivers.

ML Metadata's C++ client opens its own connections; these are for what it
does not do: name why a server refuses (a wrong password, an unknown
database: its client says only "connection pointer is NULL"), and hold the
run lock (:mod:`pipeline.runners.store_lock`). The drivers (PyMySQL,
psycopg2) are imported only when a server is used.
"""

from components.common import errors
from pipeline.settings import metadata_url

CONNECT_TIMEOUT_SECONDS = 10
_MYSQL_UNKNOWN_DATABASE = 1049


class ServerError(errors.PipelineError, RuntimeError):
  """Raised when the server cannot be reached or refuses; names the
  redacted URL and the server's answer."""


def connect(store: metadata_url.MetadataUrl, create_database: bool = True):
  """A DB-API connection to the store's database (autocommit).

  Args:
    store: a MySQL or PostgreSQL metadata URL.
    create_database: create the database when it is missing (as ML
      Metadata does on a run's first connection).

  Raises:
    ServerError: naming the redacted URL and the server's answer.
  """
  try:
    if store.scheme == 'mysql':
      return _connect_mysql(store, create_database)
    return _connect_postgresql(store, create_database)
  except ServerError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # Both drivers raise their own error classes; the text is what matters.
    raise ServerError(f'cannot reach the ML Metadata store '
                         f'{store.redacted()}: {describe_error(e, store)}') from None


def describe_error(error: BaseException,
                   store: metadata_url.MetadataUrl) -> str:
  """The error's text on one line, with the store's password hidden."""
  text = ' '.join(str(error).split())
  return store.hide(text)


def _connect_mysql(store: metadata_url.MetadataUrl, create_database: bool):
  import pymysql  # pylint: disable=g-import-not-at-top

  def open_database(name):
    return pymysql.connect(
        host=store.host, port=store.port, user=store.user,
        password=store.password, database=name,
        connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True)

  try:
    return open_database(store.database)
  except pymysql.err.OperationalError as e:
    if not create_database or e.args[0] != _MYSQL_UNKNOWN_DATABASE:
      raise
  # The database is new (a user allowed to use but not to create an
  # existing one never gets here).
  connection = open_database(None)
  with connection.cursor() as cursor:
    cursor.execute(
        f'CREATE DATABASE IF NOT EXISTS `{_mysql_name(store.database)}`')
    cursor.execute(f'USE `{_mysql_name(store.database)}`')
  return connection


def _mysql_name(name: str) -> str:
  return name.replace('`', '``')


def _connect_postgresql(store: metadata_url.MetadataUrl,
                        create_database: bool):
  import psycopg2  # pylint: disable=g-import-not-at-top

  def open_database(name):
    connection = psycopg2.connect(
        host=store.host, port=store.port, user=store.user,
        password=store.password, dbname=name,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name='pipeline run lock')
    connection.autocommit = True
    return connection

  try:
    return open_database(store.database)
  except psycopg2.OperationalError as e:
    if not create_database or 'does not exist' not in str(e):
      raise
  # The database is new: create it from the maintenance database.
  maintenance = open_database('postgres')
  try:
    with maintenance.cursor() as cursor:
      cursor.execute('SELECT 1 FROM pg_database WHERE datname = %s',
                     (store.database,))
      if cursor.fetchone() is None:
        name = store.database.replace('"', '""')
        try:
          cursor.execute(f'CREATE DATABASE "{name}"')
        except psycopg2.errors.DuplicateDatabase:
          pass  # Another runner created it meanwhile.
  finally:
    maintenance.close()
  return open_database(store.database)
