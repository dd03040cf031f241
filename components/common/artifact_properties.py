"""Figures recorded on a TFX artifact as custom properties, by type."""

from typing import Any, Dict


def record(artifact, values: Dict[str, Any]) -> None:
  """Sets each value as the artifact's custom property: bools and ints as
  ints, floats as floats, anything else as text; None is left out.

  Args:
    artifact: a `tfx.types.Artifact`.
    values: property name -> value.
  """
  for name, value in values.items():
    if value is None:
      continue
    if isinstance(value, bool):
      artifact.set_int_custom_property(name, int(value))
    elif isinstance(value, int):
      artifact.set_int_custom_property(name, value)
    elif isinstance(value, float):
      artifact.set_float_custom_property(name, value)
    else:
      artifact.set_string_custom_property(name, str(value))
