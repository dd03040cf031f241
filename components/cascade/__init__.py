"""CascadeEvaluator: the two phases judged together, as the Two-Phase
Predictions pattern runs them: phase one's pushed TFLite model routes eval
examples at its chosen threshold, phase two's SavedModel names the routed
ones (`figures.py` says how the pair is scored)."""
