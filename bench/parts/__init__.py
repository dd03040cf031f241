"""The bench's parts, one module each. A part has a number (its section in
RESULTS.md), a key (its figures in results.json), `add_arguments` (its own
flags), `run` (measures; returns its figures) and `report_lines` (its
section of RESULTS.md, from the figures alone). A new part is a new module
added to :data:`PARTS`.
"""

from bench.parts import audio
from bench.parts import beam_profiles
from bench.parts import board
from bench.parts import history
from bench.parts import input_throughput
from bench.parts import pipeline_vs_notebook
from bench.parts import pushed_model
from bench.parts import sample_sets
from bench.parts import scale
from bench.parts import search
from bench.parts import storage_layer
from bench.parts import transfer
from bench.parts import waveform
from bench.parts import width_side_by_side
from bench.parts import width_study

# In the order they run: the audio part last, as it has run since it came.
PARTS = (pipeline_vs_notebook, input_throughput, pushed_model, scale,
         history, storage_layer, beam_profiles, search, width_study,
         width_side_by_side, waveform, board, audio, transfer, sample_sets)
BY_NUMBER = {part.NUMBER: part for part in PARTS}
