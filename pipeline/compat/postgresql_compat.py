"""ML Metadata 1.16 on PostgreSQL: two work-arounds, installed per process.

1. **Backslashes.** ml-metadata 1.16 writes a string value that holds a
   backslash to PostgreSQL as `'E'...'`, which PostgreSQL refuses as a
   syntax error (libpq quotes such a literal as `E'...'` and ML Metadata
   quotes it once more). TFX writes such strings whenever an execution
   fails (its result is JSON with escaped newlines), including on every
   first run, where a resolver that finds nothing yet is a failed
   execution; so without this a TFX pipeline cannot run on PostgreSQL.
   While installed, every request to a PostgreSQL store carries each
   backslash of its strings (property values, URIs, names) as U+29F5
   (REVERSE SOLIDUS OPERATOR) and every response turns it back, so values
   round-trip unchanged through any process that installed it. Another
   program reading the database directly sees U+29F5 where a backslash was.

2. **Order of `get_*_by_id`.** On SQLite and MySQL, artifacts, executions
   and contexts fetched by id come back in id order; on PostgreSQL in the
   table's physical order, where a row updated after it was written (an
   artifact marked LIVE when its execution ends) moves to the back. TFX's
   cache lookup (`cache_utils._get_outputs_of_execution`, 1.16) pairs a
   cached execution's output events with `get_artifacts_by_id` of their
   artifact ids by position, so on PostgreSQL a cached Transform's
   `transformed_examples` could be recorded as its transform graph, and
   the Trainer of the cached run then found no examples. While installed,
   those responses are sorted by id, as the other back ends return them.

`tests/test_shared_metadata.py` shows both with the bare API (the canary
tests). Stores on SQLite or MySQL are untouched. :func:`install` is called
explicitly where a PostgreSQL store is opened: by the runner, before TFX's
components run and write in its process, and by `mlmd.open_store` for the
readers. It refuses versions of ml-metadata and TFX it was not written for
(:data:`WRITTEN_FOR`), and fails loudly if the private code it patches is
gone.
"""

import functools

from ml_metadata.metadata_store import metadata_store

from pipeline.compat import versions

# The releases whose bugs this works around (and whose private
# `MetadataStore._call` and `_config` it relies on).
WRITTEN_FOR = {'ml-metadata': '1.16.0', 'tfx': '1.16.0'}
CANARY = 'tests/test_shared_metadata.py::test_ml_metadata_on_postgresql_*'

BACKSLASH = '\\'
STAND_IN = '\u29f5'

# Response field listed in id order by SQLite and MySQL, per request.
_BY_ID = {
    'GetArtifactsByID': 'artifacts',
    'GetExecutionsByID': 'executions',
    'GetContextsByID': 'contexts',
}


def _replace(message, old: str, new: str) -> None:
  """Replaces `old` by `new` in every string field of `message`, deeply
  (property values, URIs, names, queries)."""
  for field, value in message.ListFields():
    if field.type == field.TYPE_STRING:
      if field.label == field.LABEL_REPEATED:
        value[:] = [item.replace(old, new) for item in value]
      elif old in value:
        setattr(message, field.name, value.replace(old, new))
    elif field.message_type is None:
      continue
    elif field.message_type.GetOptions().map_entry:
      target = field.message_type.fields_by_name['value']
      if target.message_type is not None:
        for item in value.values():
          _replace(item, old, new)
      elif target.type == target.TYPE_STRING:
        for key in list(value):
          value[key] = value[key].replace(old, new)
    elif field.label == field.LABEL_REPEATED:
      for item in value:
        _replace(item, old, new)
    else:
      _replace(value, old, new)


def _sort_by_id(entities) -> None:
  """Sorts a repeated field of artifacts, executions or contexts by id."""
  entities.sort(key=lambda entity: entity.id)


def _is_postgresql(store) -> bool:
  config = getattr(store, '_config', None)
  if config is None or not hasattr(config, 'HasField'):
    raise versions.CompatError(
        'pipeline/compat/postgresql_compat.py: ml-metadata\'s MetadataStore '
        'no longer keeps its ConnectionConfig in `_config`; the work-around '
        'cannot tell a PostgreSQL store, and must be updated.')
  return config.HasField('postgresql')


def install() -> None:
  """Routes every ML Metadata call of this process through the
  work-arounds (for PostgreSQL stores only). Installing twice does nothing
  more.

  Raises:
    versions.CompatError: on versions other than :data:`WRITTEN_FOR`, or
      when the patched private method is gone.
  """
  versions.require('pipeline/compat/postgresql_compat.py', WRITTEN_FOR,
                   CANARY)
  original = getattr(metadata_store.MetadataStore, '_call', None)
  if original is None:
    raise versions.CompatError(
        'pipeline/compat/postgresql_compat.py: ml-metadata\'s '
        'MetadataStore._call is gone; the work-around must be updated.')
  if getattr(original, 'postgresql_compat', False):
    return

  @functools.wraps(original)
  def call(self, method_name, request, response, extra_options=None):
    if not _is_postgresql(self):
      return original(self, method_name, request, response, extra_options)
    if BACKSLASH in str(request):  # Rare: leave the request as it is else.
      copy = type(request)()
      copy.CopyFrom(request)
      _replace(copy, BACKSLASH, STAND_IN)
      request = copy
    result = original(self, method_name, request, response, extra_options)
    _replace(response, STAND_IN, BACKSLASH)
    if method_name in _BY_ID:
      _sort_by_id(getattr(response, _BY_ID[method_name]))
    return result

  call.postgresql_compat = True
  metadata_store.MetadataStore._call = call  # pylint: disable=protected-access
