"""The targets the README states, as ratios measured within one run of the
bench, and the README's table of them, generated from results.json.
"""

from typing import Any, Dict, List, Optional

from bench.parts.common import median
from bench.parts.history import rerun_medians
from bench.parts.history import turn_ratios


TARGETS = (
    ('cold pipeline (ingest + run) vs notebook script', 'cold_vs_notebook',
     '<=', 2.0),
    ('cached rerun vs cold run', 'cached_vs_cold', '<=', 0.1),
    ('training input vs flow_from_directory (images/s, like for like)',
     'input_ratio', '>=', 5.0),
    ('int8 single image vs Keras predict (speed-up)', 'int8_vs_keras', '>=',
     20.0),
    ('int8 vs float32 TFLite (speed-up)', 'int8_vs_float32', '>', 1.0),
    ('dynamic file vs float32 file', 'dynamic_size', '<=', 0.3),
    ('int8 file vs float32 file', 'int8_size', '<=', 0.3),
    ('wall time 8x vs 4x', 'time_8x_vs_4x', '<=', 2.2),
    ('peak memory 8x vs 4x', 'memory_8x_vs_4x', '<=', 1.25),
    ('bytes per transformed example', 'bytes_per_example', '<=', 49152),
    ('wall time run 8 vs run 3 (window of 3; median of the turns)',
     'time_run8_vs_run3', '<=',
     1.1),
    ('peak memory run 8 vs run 3 (window of 3)', 'memory_run8_vs_run3', '<=',
     1.05),
    ('cold default run vs before the storage layer', 'storage_vs_baseline',
     '<=', 1.05),
    ('searched model bytes vs the size budget', 'search_bytes_vs_budget',
     '<=', 1.0),
    ('AUC of the default model minus the searched one', 'search_auc_loss',
     '<=', 0.01),
    ('accuracy at 16 kHz minus the worst of 44.1 kHz stereo and 48 kHz',
     'rate_accuracy_loss', '<=', 0.01),
    ('predict --stream real-time factor, one core, 60 min of audio',
     'stream_real_time_factor', '>=', 50.0),
    ('stream peak memory, 60 min vs 6 min of audio', 'stream_memory_growth',
     '<=', 1.05),
    ('image model minus MediaPipe AudioClassifier, worst held-out rate',
     'mediapipe_accuracy_loss', '<=', 0.01),
    ('bytes the front end adds to the waveform model', 'waveform_added_bytes',
     '<=', 300_000),
    ('latency the front end adds, vs the image model', 'waveform_added_latency',
     '<=', 0.5),
    ('searched int8 model\'s TFLM arena vs the arena budget',
     'board_arena_vs_budget', '<=', 1.0),
)


def ratios(results: Dict[str, Any]) -> Dict[str, Optional[float]]:
  one = results.get('pipeline_vs_notebook', {})
  model = results.get('pushed_model', {})
  scale = results.get('scale', {}).get('rows', {})
  values: Dict[str, Optional[float]] = {}
  if one:
    values['cold_vs_notebook'] = (one['cold_total_seconds'] /
                                  one['notebook_seconds'])
    values['cached_vs_cold'] = (one['cached_run_seconds'] /
                                one['cold_total_seconds'])
    values['bytes_per_example'] = one.get('transformed_bytes')
  if results.get('input_throughput'):
    values['input_ratio'] = results['input_throughput']['ratio']
  if model:
    values['int8_vs_keras'] = model['int8_vs_keras_predict']
    values['int8_vs_float32'] = model['int8_vs_float32']
    values['dynamic_size'] = model['modes']['dynamic']['size_ratio']
    values['int8_size'] = model['modes']['int8']['size_ratio']
  four, eight = scale.get(4) or scale.get('4'), scale.get(8) or scale.get('8')
  if four and eight:
    values['time_8x_vs_4x'] = eight['run_seconds'] / four['run_seconds']
    values['memory_8x_vs_4x'] = (eight['peak_rss_bytes'] /
                                 four['peak_rss_bytes'])
  history = rerun_medians(results.get('history', {})) or {
      row['span']: row for row in results.get('history', {}).get('rows', [])}
  if 3 in history and 8 in history:
    turns = turn_ratios(results['history'], 3, 8)
    # Ratios measured within one turn: the machine's speed drifts between
    # turns by more than the bound (see part 5's section).
    values['time_run8_vs_run3'] = (median(turns) if turns else
                                   history[8]['run_seconds'] /
                                   history[3]['run_seconds'])
    values['memory_run8_vs_run3'] = (history[8]['peak_rss_bytes'] /
                                     history[3]['peak_rss_bytes'])
  search = results.get('search')
  if search:
    default, tuned = search['runs']['default'], search['runs']['tuned']
    if tuned.get('pushed_bytes'):
      values['search_bytes_vs_budget'] = (tuned['pushed_bytes'] /
                                          search['budget'])
    if default.get('evaluator_auc') and tuned.get('evaluator_auc'):
      values['search_auc_loss'] = (default['evaluator_auc'] -
                                   tuned['evaluator_auc'])
  audio = results.get('audio')
  if audio:
    accuracy = audio['held_out_accuracy']
    values['rate_accuracy_loss'] = accuracy['16 kHz mono'] - min(
        value for name, value in accuracy.items() if name != '16 kHz mono')
    streams = sorted(audio['streams'].values(),
                     key=lambda row: row['audio_seconds'])
    values['stream_real_time_factor'] = streams[-1]['real_time_factor']
    values['stream_memory_growth'] = (streams[-1]['peak_rss_bytes'] /
                                      streams[0]['peak_rss_bytes'])
    losses = [row['image model'] - row['MediaPipe AudioClassifier']
              for row in (audio.get('client_accuracy') or {}).values()
              if 'MediaPipe AudioClassifier' in row]
    if losses:
      values['mediapipe_accuracy_loss'] = max(losses)
  wave = results.get('waveform')
  if wave:
    values['waveform_added_bytes'] = (wave['bytes']['waveform model'] -
                                      wave['bytes']['image model'])
    values['waveform_added_latency'] = (
        wave['latency_ms']['waveform model'] /
        wave['latency_ms']['image model'] - 1)
  board = results.get('board')
  if board and (board['runs'].get('searched') or {}).get('arena_bytes'):
    values['board_arena_vs_budget'] = (
        board['runs']['searched']['arena_bytes'] / board['budget'])
  storage = results.get('storage_layer', {}).get('medians')
  if storage:
    values['storage_vs_baseline'] = (storage['current']['total_seconds'] /
                                     storage['baseline']['total_seconds'])
  return values


def _met(value: Optional[float], op: str, bound: float) -> str:
  if value is None:
    return 'not measured'
  ok = {'<=': value <= bound, '>=': value >= bound, '>': value > bound}[op]
  return 'met' if ok else '**missed**'


def targets_table(results: Dict[str, Any]) -> List[str]:
  """The targets' table (Markdown lines): each ratio measured, its bound,
  met or missed; RESULTS.md and the README both show it."""
  lines = ['| target | measured | bound | |', '|---|---|---|---|']
  values = ratios(results)
  for label, key, op, bound in TARGETS:
    value = values.get(key)
    shown = 'n/a' if value is None else (f'{value:,.0f}' if bound > 100
                                         else f'{value:.3g}')
    lines.append(f'| {label} | {shown} | {op} {bound:g} | '
                 f'{_met(value, op, bound)} |')
  return lines


README_BEGIN = '<!-- bench:targets:begin -->'


README_END = '<!-- bench:targets:end -->'


def readme_with_targets(readme: str, results: Dict[str, Any]) -> str:
  """`readme` with the block between its bench markers replaced by the
  targets' table of `results` and the date they were measured."""
  start = readme.index(README_BEGIN) + len(README_BEGIN)
  end = readme.index(README_END)
  block = [f"Measured {results['machine']['date'][:10]} on "
           f"{results['machine']['cores']} cores:", '',
           *targets_table(results)]
  return readme[:start] + '\n' + '\n'.join(block) + '\n' + readme[end:]
