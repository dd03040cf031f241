"""SpanWindow: the latest K ingested spans as one Examples artifact
(`component.py`, `executor.py`). The layout of the data root it reads is
`components.common.span_layout`."""
