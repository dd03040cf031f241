"""Where ML Metadata lives, written as one URL.

`--metadata` takes `sqlite:///PATH` (or a bare file path), the default being
the workspace's `metadata.sqlite`; `mysql://USER[:PASSWORD]@HOST[:PORT]/DB`
for MySQL or MariaDB; `postgresql://USER[:PASSWORD]@HOST[:PORT]/DB`. A
password left out of the URL is read from the environment variable named by
:data:`PASSWORD_ENV`, so it need not sit in a crontab or a settings file.
Whatever is shown or recorded (messages, the settings stored in ML Metadata,
reports) uses :meth:`MetadataUrl.redacted`, never the password.

Plain parsing, no I/O: light enough for the command line to import.
"""

import dataclasses
import os
import urllib.parse
from typing import Optional
from components.common import errors

PASSWORD_ENV = 'PIPELINE_METADATA_PASSWORD'
SCHEMES = ('sqlite', 'mysql', 'postgresql')
_DEFAULT_PORTS = {'mysql': 3306, 'postgresql': 5432}
_ALIASES = {'mariadb': 'mysql', 'postgres': 'postgresql'}


class MetadataUrlError(errors.PipelineError, ValueError):
  """Raised for a metadata URL that cannot name a store; says why."""


@dataclasses.dataclass(frozen=True)
class MetadataUrl:
  """A parsed metadata URL.

  Attributes:
    scheme: 'sqlite', 'mysql' or 'postgresql'.
    path: the SQLite file (absolute); empty for servers.
    host, port, user, database: the server's; empty or 0 for SQLite.
    password: from the URL or the environment; never shown.
  """
  scheme: str
  path: str = ''
  host: str = ''
  port: int = 0
  user: str = ''
  database: str = ''
  password: str = dataclasses.field(default='', repr=False)

  @property
  def is_sqlite(self) -> bool:
    return self.scheme == 'sqlite'

  def redacted(self) -> str:
    """The URL as it may be shown: any password replaced by `***`."""
    if self.is_sqlite:
      return f'sqlite://{self.path}'
    secret = ':***' if self.password else ''
    return (f'{self.scheme}://{self.user}{secret}@{self.host}:{self.port}/'
            f'{self.database}')

  def without_password(self) -> str:
    """The URL with no password at all, as settings are recorded: read back
    with `--config`, it takes the password from the environment."""
    if self.is_sqlite:
      return self.redacted()
    return (f'{self.scheme}://{self.user}@{self.host}:{self.port}/'
            f'{self.database}')

  def hide(self, text: str) -> str:
    """`text` (an error message, a log line) with the password as `***`."""
    return text.replace(self.password, '***') if self.password else text

  def connection_config(self, create_database: bool = True):
    """The ML Metadata `ConnectionConfig` of this store.

    Args:
      create_database: let ML Metadata create a missing database (a run);
        False for readers, so a mistyped database name is an error.

    Returns:
      A `metadata_store_pb2.ConnectionConfig`. A PostgreSQL store needs
      `pipeline.compat.postgresql_compat` installed in any process that
      opens it; the runner and `mlmd.open_store` install it.
    """
    from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
    config = metadata_store_pb2.ConnectionConfig()
    if self.is_sqlite:
      config.sqlite.filename_uri = self.path
      config.sqlite.connection_mode = (
          metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
    elif self.scheme == 'mysql':
      config.mysql.host = self.host
      config.mysql.port = self.port
      config.mysql.user = self.user
      config.mysql.password = self.password
      config.mysql.database = self.database
      config.mysql.skip_db_creation = not create_database
    else:
      config.postgresql.host = self.host
      config.postgresql.port = str(self.port)
      config.postgresql.user = self.user
      config.postgresql.password = self.password
      config.postgresql.dbname = self.database
      config.postgresql.skip_db_creation = not create_database
    return config


def parse(text: str, default_path: str = '',
          environ: Optional[dict] = None) -> MetadataUrl:
  """Parses `--metadata`.

  Args:
    text: the URL, a bare SQLite file path, or '' for `default_path`.
    default_path: the SQLite file used when `text` is empty.
    environ: where :data:`PASSWORD_ENV` is looked up (os.environ).

  Returns:
    The parsed URL.

  Raises:
    MetadataUrlError: naming the (redacted) URL and what is wrong with it.
  """
  text = (text or '').strip() or default_path
  if not text:
    raise MetadataUrlError('--metadata is empty and there is no default '
                           'SQLite file')
  if '://' not in text:
    return MetadataUrl('sqlite', path=os.path.abspath(os.path.expanduser(text)))
  parts = urllib.parse.urlsplit(text)
  scheme = _ALIASES.get(parts.scheme.lower(), parts.scheme.lower())
  shown = _without_password(text)
  if scheme not in SCHEMES:
    raise MetadataUrlError(
        f'--metadata {shown}: unknown scheme {parts.scheme!r}; use '
        'sqlite:///PATH, mysql://USER@HOST:PORT/DATABASE or '
        'postgresql://USER@HOST:PORT/DATABASE')
  if scheme == 'sqlite':
    path = urllib.parse.unquote(parts.netloc + parts.path)
    if not path or path == '/':
      raise MetadataUrlError(f'--metadata {shown}: no SQLite file path '
                             '(write sqlite:///absolute/path.sqlite)')
    return MetadataUrl('sqlite', path=os.path.abspath(path))
  if parts.query or parts.fragment:
    raise MetadataUrlError(f'--metadata {shown}: options after ? or # are '
                           'not supported')
  database = urllib.parse.unquote(parts.path.lstrip('/'))
  try:
    port = parts.port or _DEFAULT_PORTS[scheme]
  except ValueError as e:
    raise MetadataUrlError(f'--metadata {shown}: bad port ({e})') from e
  if not parts.hostname or not parts.username or not database or (
      '/' in database):
    raise MetadataUrlError(
        f'--metadata {shown}: a {scheme} URL needs a user, a host and one '
        f'database: {scheme}://USER[:PASSWORD]@HOST[:PORT]/DATABASE')
  password = parts.password
  if password is None:
    password = (os.environ if environ is None else environ).get(
        PASSWORD_ENV, '')
  return MetadataUrl(scheme, host=parts.hostname, port=port,
                     user=urllib.parse.unquote(parts.username),
                     database=database,
                     password=urllib.parse.unquote(password))


def _without_password(text: str) -> str:
  """`text` with the password of its user-info part hidden."""
  head, sep, tail = text.partition('://')
  netloc, slash, path = tail.partition('/')
  if not sep or '@' not in netloc:
    return text
  userinfo, _, hostport = netloc.rpartition('@')
  user = userinfo.split(':', 1)[0]
  secret = ':***' if ':' in userinfo else ''
  return f'{head}://{user}{secret}@{hostport}{slash}{path}'
