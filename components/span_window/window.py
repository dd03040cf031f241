"""The window's rules, without TFX or TensorFlow: which spans make the
window that ends with a span, and what they must agree on (the audio front
end, the families). The SpanWindow component's executor applies them, and
`pipeline run` checks them before any component starts, so it need not
import an executor."""

import json
import os
from typing import Any, Dict, List, NamedTuple, Optional

from components.common import errors
from components.common import span_layout
from components.common import storage


class SpanWindowError(errors.PipelineError, RuntimeError):
  """Raised when the window cannot be assembled from the data root."""


class WindowSpan(NamedTuple):
  """One span of a window: its number, file pattern and ingest record."""
  span: int
  pattern: str
  report: Dict[str, Any]


def read_span_report(data_root: str, span: int) -> Dict[str, Any]:
  """A span's ingest record (source folder, fingerprint, counts)."""
  path = os.path.join(data_root, span_layout.span_folder_name(span),
                      span_layout.REPORT_NAME)
  try:
    return json.loads(storage.read_text(path))
  except (OSError, ValueError) as e:
    raise SpanWindowError(f'cannot read the ingest record {path}: {e}') from e


def choose_window(data_root: str, pattern: str, newest: int,
                  num_spans: int) -> List[WindowSpan]:
  """The spans of the window that ends with span `newest`, oldest first.

  Walks back from `newest` over the complete span folders and keeps up to
  `num_spans` of them. A span ingested again from an identical source (the
  same fingerprint as a newer span of the window) is left out, so no data
  counts twice.

  Args:
    data_root: folder (or URI) of the `span-N` folders.
    pattern: the span file pattern with `{SPAN}`, relative to `data_root`.
    newest: the newest span, the one ImportExampleGen read.
    num_spans: K, the most spans in the window.

  Returns:
    The chosen spans with their file patterns and ingest records.

  Raises:
    SpanWindowError: when span `newest` is not a complete span folder or a
      chosen span holds no example file.
  """
  spans = [span for span in span_layout.list_spans(data_root)
           if span <= newest]
  if newest not in spans:
    raise SpanWindowError(
        f'span {newest} is not a complete span folder under {data_root}')
  chosen: List[WindowSpan] = []
  fingerprints = set()
  for span in reversed(spans):
    if len(chosen) == num_spans:
      break
    report = read_span_report(data_root, span)
    fingerprint = report.get('fingerprint')
    if fingerprint and fingerprint in fingerprints:
      continue
    fingerprints.add(fingerprint)
    span_pattern = pattern.replace('{SPAN}', str(span))
    if not storage.glob(os.path.join(data_root, span_pattern)):
      folder = os.path.join(data_root, span_layout.span_folder_name(span))
      raise SpanWindowError(
          f'span folder {folder} holds no file matching {span_pattern}; '
          'remove it or ingest the data again')
    chosen.append(WindowSpan(span, span_pattern, report))
  return list(reversed(chosen))


def window_front_end(window: List[WindowSpan]) -> Optional[Dict[str, Any]]:
  """The audio front end the window's recordings were drawn with (None when
  no span recorded one: images only).

  Raises:
    SpanWindowError: when two spans of the window were drawn with different
      front ends; it names both and says to ingest again.
  """
  chosen: Optional[WindowSpan] = None
  for entry in window:
    record = entry.report.get('front_end')
    if not record:
      continue
    if chosen is None:
      chosen = entry
      continue
    first = chosen.report['front_end']
    differ = [f'{key} {first.get(key)} against {record.get(key)}'
              for key in span_layout.COMPARED_FRONT_END
              if first.get(key) != record.get(key)]
    if differ:
      raise SpanWindowError(
          f'the window mixes spans drawn with different audio front ends: '
          f'span {chosen.span} and span {entry.span} differ in '
          f'{"; ".join(differ)}. A model cannot learn from both: ingest the '
          f'recordings of span {chosen.span} again with the front end '
          'settings of the newer span (or set --window-spans so the window '
          'holds one front end).')
  return chosen.report['front_end'] if chosen else None


def window_families(window: List[WindowSpan]) -> List[str]:
  """The families every span of the window gives its positive class
  (sorted; [] when none: phase one alone).

  A span ingested before families were recorded gives none.

  Raises:
    SpanWindowError: when two spans give different families, naming both
      spans and the families only one of them has, like a front end change.
  """
  first: Optional[WindowSpan] = None
  for entry in window:
    if first is None:
      first = entry
      continue
    old = set(first.report.get('families') or [])
    new = set(entry.report.get('families') or [])
    if old != new:
      only = '; '.join(
          f'only span {span} has {", ".join(sorted(names))}'
          for span, names in ((first.span, old - new),
                              (entry.span, new - old)) if names)
      raise SpanWindowError(
          f'the window mixes spans with different families: span '
          f'{first.span} and span {entry.span} differ ({only}). Phase two '
          'learns one set of families: ingest the older span again from '
          'folders with the newer family folders (or set --window-spans so '
          'the window holds one family set).')
  return sorted((first.report.get('families') or []) if first else [])


def span_sources(window: List[WindowSpan]) -> Dict[str, Dict[str, Any]]:
  """What the window records per span: source folder, counts (and per
  sub-folder of each class: families, kinds), ingest time."""
  return {str(entry.span): {'source': entry.report.get('source'),
                            'counts': entry.report.get('counts'),
                            'groups': entry.report.get('groups'),
                            'ingested': entry.report.get('created'),
                            'fingerprint': entry.report.get('fingerprint')}
          for entry in window}
