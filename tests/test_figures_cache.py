"""Figures computed from an artifact's files are computed once."""

import json

from pipeline.metadata import figures_cache


def test_a_figure_is_computed_once_per_artifact_and_kept_in_the_workspace(
    tmp_path):
  calls = []

  def compute():
    calls.append(1)
    return {'examples': 3}

  workspace = str(tmp_path / 'ws')  # not made yet
  for _ in range(2):
    assert figures_cache.cached(workspace, 'sizes', ['/a/1'],
                                compute) == {'examples': 3}
  assert len(calls) == 1
  # Another artifact, or another kind of figure, is computed again.
  figures_cache.cached(workspace, 'sizes', ['/a/2'], compute)
  figures_cache.cached(workspace, 'scores', ['/a/1'], compute)
  assert len(calls) == 3
  [kept] = [p for p in (tmp_path / 'ws' / 'cache').iterdir()
            if p.name.startswith('scores-')]
  assert json.loads(kept.read_text()) == {'examples': 3}


def test_an_unreadable_entry_is_computed_again(tmp_path):
  figures_cache.cached(str(tmp_path), 'sizes', ['/a/1'], lambda: 1)
  [entry] = (tmp_path / 'cache').iterdir()
  entry.write_text('{not json')
  assert figures_cache.cached(str(tmp_path), 'sizes', ['/a/1'],
                              lambda: 2) == 2
