"""Benchmark figures are generated from bench/results.json, never typed:
RESULTS.md and the README's targets' table are what the generator makes
of the committed results."""

import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bench():
  spec = importlib.util.spec_from_file_location(
      'run_bench', os.path.join(ROOT, 'bench', 'run_bench.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _read(*parts):
  with open(os.path.join(ROOT, *parts), encoding='utf-8') as f:
    return f.read()


def test_results_md_and_the_readme_table_are_generated_from_results_json():
  bench = _bench()
  results = json.loads(_read('bench', 'results.json'))
  assert _read('bench', 'RESULTS.md') == bench.markdown(results)
  readme = _read('README.md')
  assert bench.readme_with_targets(readme, results) == readme
  # The table is there, with a figure the results hold.
  ratio = results['ratios']['cached_vs_cold']
  assert f'| cached rerun vs cold run | {ratio:.3g} |' in readme


def test_a_retyped_figure_in_the_readme_is_told_apart():
  bench = _bench()
  results = json.loads(_read('bench', 'results.json'))
  readme = _read('README.md')
  ratio = f"{results['ratios']['cached_vs_cold']:.3g}"
  edited = readme.replace(f'| cached rerun vs cold run | {ratio} |',
                          '| cached rerun vs cold run | 0.05 |')
  assert bench.readme_with_targets(edited, results) != edited


def test_the_readme_stays_short():
  assert len(_read('README.md').encode('utf-8')) <= 12 * 1024
