"""Drift thresholds set on the curated schema, without TFX or TensorFlow:
the data gate applies them to each run's schema, and `pipeline run` checks
them before any component starts (a name the schema does not compare is
refused there, not half-way through a run)."""

from typing import Dict

from tensorflow_metadata.proto.v0 import schema_pb2

# Threshold key meaning every feature that has a drift comparator.
ALL_FEATURES = '*'


def apply_thresholds(schema: schema_pb2.Schema,
                     thresholds: Dict[str, float]) -> schema_pb2.Schema:
  """A copy of `schema` with drift thresholds replaced.

  Args:
    schema: the curated schema, with `drift_comparator`s.
    thresholds: {feature name or `*`: threshold}; `*` applies to every
      feature with a comparator, a name overrides it for one feature.

  Returns:
    The changed copy.

  Raises:
    ValueError: for a name that has no drift comparator in the schema.
  """
  schema = schema_pb2.Schema.FromString(schema.SerializeToString())
  compared = {feature.name: feature for feature in schema.feature
              if feature.HasField('drift_comparator')}
  unknown = sorted(set(thresholds) - set(compared) - {ALL_FEATURES})
  if unknown:
    raise ValueError(
        f'--drift-thresholds names {", ".join(unknown)}, which the schema '
        'does not compare between spans; features with a drift comparator: '
        f'{", ".join(sorted(compared))}')
  for name, feature in compared.items():
    value = thresholds.get(name, thresholds.get(ALL_FEATURES))
    if value is None:
      continue
    comparator = feature.drift_comparator
    for kind in ('infinity_norm', 'jensen_shannon_divergence'):
      if comparator.HasField(kind):
        getattr(comparator, kind).threshold = value
  return schema
