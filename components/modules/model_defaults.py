"""The default model's size, shared by the settings and the trainer.

`DEFAULT_WIDTH` follows a stated rule applied to the width study (bench
part 9, `bench/RESULTS.md`): the narrowest width whose mean eval AUC and
mean accuracy over three seeds are each within the larger of 0.005 and the
widest model's own seed-to-seed spread of the widest's means, and whose
spreads are no larger. On the default data that is 0.5: about a third of
width 1.0's bytes and latency, within 0.002 AUC. `--model-width 1.0` keeps
the earlier model. `tests/test_bench_reports.py` checks that this value is
the one the rule picks from the committed study.
"""

DEFAULT_WIDTH = 0.5
