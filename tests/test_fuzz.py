"""Hostile files never stop an ingest or a prediction: a seeded mutation
fuzz over PNG, JPEG, BMP and WAV files (see tests/fuzz.py)."""

import json
import os
import subprocess
import sys

import fuzz

CASES = 420
# Peak memory the whole fuzz may add over reading the first few files. An
# image decoded past the child's 4-megapixel limit, or a clip read past its
# 30 s limit, needs more than this.
MEMORY_BOUND_MIB = 160
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_child(tmp_path, cases):
  cases_dir = tmp_path / 'cases'
  for index, (name, data, _) in enumerate(cases):
    folder = cases_dir / fuzz.CLASS_NAMES[index % 2]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
  for name, (_, data) in fuzz.seed_files().items():
    for folder in fuzz.CLASS_NAMES:
      (cases_dir / folder / f'valid-{name}').write_bytes(data)
  out = tmp_path / 'outcomes.json'
  env = dict(os.environ, PYTHONPATH=REPO_ROOT)
  child = subprocess.run(
      [sys.executable, os.path.join(REPO_ROOT, 'tests', 'fuzz.py'),
       str(cases_dir), str(tmp_path / 'model'), str(out)],
      env=env, capture_output=True, text=True, timeout=600, check=False)
  assert child.returncode == 0, (
      f'the fuzz child died ({child.returncode}); last lines:\n'
      f'{child.stderr[-3000:]}')
  return json.loads(out.read_text())


def test_every_mutant_is_ingested_or_skipped_with_a_reason_and_predict_answers(
    tmp_path):
  cases = fuzz.mutants(CASES)
  described = {name: description for name, _, description in cases}
  result = _run_child(tmp_path, cases)

  escaped = []
  for relpath, outcome in sorted(result['cases'].items()):
    name = os.path.basename(relpath)
    for step in ('ingest', 'predict'):
      status, value = outcome[step]
      if status != 'ok':
        escaped.append(f'{step} {described.get(name, name)}:\n{value}')
  assert not escaped, (f'{len(escaped)} exception(s) escaped; first:\n' +
                       '\n'.join(escaped[:3]))

  verdicts = [outcome['ingest'][1] for outcome in result['cases'].values()]
  assert all(v == 'ingested' or (v.startswith('skipped: ') and
                                  len(v) > len('skipped: ') + 5)
             for v in verdicts)
  # Both kinds happen: the fuzz reaches past the first check.
  assert sum(v == 'ingested' for v in verdicts) > CASES // 20
  assert sum(v != 'ingested' for v in verdicts) > CASES // 4

  status, span = result['span']
  assert status == 'ok', span
  assert span['created']
  assert sum(span['counts'].values()) + len(span['skipped']) == len(verdicts)
  assert sum(span['counts'].values()) == sum(
      v == 'ingested' for v in verdicts)
  assert os.path.isfile(os.path.join(span['span_dir'], 'ingest.json'))

  grown = result['peak_mib'] - result['baseline_mib']
  assert grown < MEMORY_BOUND_MIB, (
      f'peak memory grew by {grown:.0f} MiB while reading the mutants')


def test_mutants_are_a_pure_function_of_seed_and_index():
  assert fuzz.mutants(30, seed=5) == fuzz.mutants(30, seed=5)
  assert fuzz.mutants(30, seed=5) != fuzz.mutants(30, seed=6)
