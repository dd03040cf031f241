"""The benchmark suite: our pipeline against the notebook way, side by side.

`make bench` runs it on this machine and writes `bench/RESULTS.md` and
`bench/results.json`. Each part is a module of `bench/parts/` with its own
flags, its measurement and its section of the report; this runner chooses
the parts (`--parts`), prepares the data they share and writes the reports.
Fourteen parts:

1. Pipeline vs notebook: wall time of a cold pipeline run (ingest + run, in
   a fresh workspace, as a new process), of the reruns served from the
   cache, and of `bench/notebook.py` (flow_from_directory, fit, TFLite
   conversion, interpreter predictions) on the same images, the same model
   and the same number of steps; medians of `--repeats` runs; time per
   component.
2. Input throughput: images per second delivered by the Trainer's input
   (transformed examples through tf.data) and by flow_from_directory over
   the same images, without the model.
3. The pushed model per quantization mode: size, accuracy and AUC on the
   eval split, single-image latency (one thread, after warm-up, median of
   `--invokes` invokes), beside the Keras model's `predict` on one image and
   a batched `model(x)` call.
4. Scale: the pipeline at 1x, 4x and 8x the default data: time per
   component, bytes per transformed example, peak memory of the run's
   process tree.
5. History: 8 spans of 1x each (the synthesizer with seeds 1 to 8),
   ingested and run one after another in one workspace with the default
   window of 3 spans. Once the window is full, history must cost nothing:
   run 8's time and peak memory against run 3's (both train on 3 spans).
6. Storage layer: a cold default run (ingest + run, local disk, SQLite) of
   this checkout against the same of `--baseline`, the commit before every
   file went through `components/common/storage.py` and ML Metadata through a URL;
   the two take turns, `--repeats` times each, on the same data. The local
   default must stay within 5%.
7. Beam profiles: a cold run (ingest + run) with `--beam local` and with
   `--beam portable` (every DoFn in SDK worker processes of a worker pool)
   at 1x and 8x the default data, taking turns: time per component and
   peak memory of the whole process tree (runner, pool and its workers).
   No target; it shows what the portable profile costs on one machine.

8. Model search: on the 1x default data, a default run and a run with
   `--tune true --tune-trials 6` under a size budget (`--search-budget`,
   default half the default model's bytes): time per trial, and the chosen
   model against the default one in bytes, AUC and latency (both pushed
   files timed side by side, taking turns).
9. Width study: every width the search offers, trained on the 1x default
   data at the default steps with `--width-seeds` seeds each, in one
   workspace (Transform runs once; each run trains, evaluates and pushes):
   eval AUC and accuracy (mean and spread), pushed bytes, latency, Trainer
   seconds and the run's peak memory, per width, and the width the
   default's rule (:data:`WIDTH_RULE`) picks from them; a chart in
   `bench/width_study.svg`.
10. Width side by side: cold runs of the default width and of a narrower
   one (`--side-width`), and `bench/notebook.py` building the narrower
   model, taking turns; both pushed files' bytes and latency side by side.
11. Audio: ingest throughput at 16 kHz and 44.1 kHz stereo against a plain
   SciPy read and render loop; a model trained on 16 kHz recordings scored
   on held-out clips at 16, 44.1 (stereo) and 48 kHz; `predict --stream`'s
   real-time factor on one core and its memory over 6 and 60 minutes.
12. The waveform model: bytes and single-window latency against the image
   model and the NumPy front end's time, in dynamic and int8 modes.
13. The board: the default model in int8 and the search under a 256 KB
   arena budget; TensorFlow Lite Micro's arena and latency per image, the
   outputs against LiteRT's, the C array compiled.
14. Transfer across sample sets: a default run on sampled data from one
   soundfont and three flite voices, scored on held-out clips from the
   other soundfont and the other two voices; accuracy, AUC and recall per
   family and kind.

Every timed run is a separate process, so each pays for its own start-up,
as a user's does. Work files go to `bench/out/` (git-ignored).
"""

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

# pylint: disable=wrong-import-position
from bench import parts as parts_lib  # noqa: E402
from bench import targets  # noqa: E402
from bench.parts import common  # noqa: E402
from bench.parts import pipeline_vs_notebook  # noqa: E402
from bench.parts import width_study  # noqa: E402
# pylint: enable=wrong-import-position

readme_with_targets = targets.readme_with_targets


def markdown(results: Dict[str, Any]) -> str:
  """The report, as Markdown: the header, the targets, then each part's
  section in the order of their numbers."""
  info = results['machine']
  lines = ['# Benchmark results', '',
           f"Measured {info['date']} by `make bench` on {info['cores']} cores "
           f"({info['machine']}, {info['system']}); Python {info['python']}, "
           f"TensorFlow {info['tensorflow']}, TFX {info['tfx']}, Beam "
           f"{info['apache_beam']}. The suite took "
           f"{results['bench_seconds'] / 60:.1f} min.", '',
           '## Targets', '', *targets.targets_table(results)]
  for number in sorted(parts_lib.BY_NUMBER):
    lines += parts_lib.BY_NUMBER[number].report_lines(results)
  return '\n'.join(lines) + '\n'


def write_reports(results: Dict[str, Any], folder: str) -> str:
  """Writes `folder`/RESULTS.md, and the README's targets' table when
  `folder` is `bench/` (a scratch folder leaves the README alone), from
  `results`; returns the RESULTS.md text."""
  text = markdown(results)
  with open(os.path.join(folder, 'RESULTS.md'), 'w', encoding='utf-8') as f:
    f.write(text)
  if results.get('width_study'):
    with open(os.path.join(folder, 'width_study.svg'), 'w',
              encoding='utf-8') as f:
      f.write(width_study.width_chart(results['width_study']['rows']))
  if os.path.abspath(folder) == os.path.join(ROOT, 'bench'):
    # The README's table shows the committed results only.
    readme_path = os.path.join(ROOT, 'README.md')
    with open(readme_path, encoding='utf-8') as f:
      readme = f.read()
    with open(readme_path, 'w', encoding='utf-8') as f:
      f.write(readme_with_targets(readme, results))
  return text


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default=os.path.join(ROOT, 'bench', 'out'))
  parser.add_argument('--results', default=os.path.join(ROOT, 'bench'),
                      help='folder of RESULTS.md and results.json')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--steps', type=int, default=500)
  parser.add_argument('--parts', default=','.join(
      str(n) for n in sorted(parts_lib.BY_NUMBER)))
  parser.add_argument('--per-class', type=int,
                      default=common.DEFAULT_PER_CLASS,
                      help='images per class of the 1x data (default '
                      '%(default)s, the default data set)')
  parser.add_argument('--keep', action='store_true',
                      help='keep the scaled workspaces and data')
  parser.add_argument('--readme', action='store_true',
                      help='only write RESULTS.md and the README\'s table '
                      'from the committed results.json, measuring nothing')
  for part in parts_lib.PARTS:
    part.add_arguments(parser)
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  """Runs the chosen parts and writes the reports."""
  args = _parser().parse_args(argv)
  previous = os.path.join(args.results, 'results.json')
  if args.readme:
    with open(previous, encoding='utf-8') as f:
      write_reports(json.load(f), args.results)
    return 0
  chosen = [part for part in parts_lib.PARTS
            if part.NUMBER in {int(p) for p in args.parts.split(',')}]
  common.RUN_ARGS[:] = ['--train-steps', str(args.steps)]
  started = time.time()
  logs = os.path.join(args.out, 'logs')
  os.makedirs(logs, exist_ok=True)
  ctx = common.Context(out=args.out,
                       data_dir=os.path.join(args.out, 'data-1x'),
                       workspace=os.path.join(args.out, 'ws-1x'),
                       results={})
  if any(part.NEEDS_DATA for part in chosen):
    common.log(f'making the default data in {ctx.data_dir}')
    common.synth(ctx.data_dir, args.per_class, 0, logs)
  if len(chosen) != len(parts_lib.PARTS) and os.path.exists(previous):
    # A partial bench replaces only the parts it measured.
    with open(previous, encoding='utf-8') as f:
      ctx.results = json.load(f)
    common.log(f'keeping the figures of the parts not run from {previous}')
  # The header's date and suite time stay those of the last full bench; a
  # part run alone says when it was measured in its own section.
  merged = 'machine' in ctx.results
  ctx.results.setdefault('machine', common.machine())
  if pipeline_vs_notebook not in chosen and any(
      part.NEEDS_WORKSPACE for part in chosen) and not os.path.isdir(
          ctx.workspace):
    ctx.results[pipeline_vs_notebook.KEY] = pipeline_vs_notebook.prepare(ctx)
  for part in chosen:
    ctx.results[part.KEY] = part.run(args, ctx)
  results = ctx.results
  if not merged:
    results['bench_seconds'] = time.time() - started
  results['ratios'] = targets.ratios(results)
  os.makedirs(args.results, exist_ok=True)
  with open(previous, 'w', encoding='utf-8') as f:
    json.dump(results, f, indent=2, default=str)
  print(write_reports(results, args.results))
  common.log(f"done in {(time.time() - started) / 60:.1f} min; wrote "
             f"{os.path.join(args.results, 'RESULTS.md')}")
  return 0


if __name__ == '__main__':
  sys.exit(main())
