"""ModelSearch: TFX's Tuner, keeping only models that fit the device.

`trials.py` (plain Python, light enough for the command line and the
report) reads and ranks the trial table the search writes; the component
and its executor wrap TFX's Tuner around the budget-aware search of
`components/modules/search.py`.
"""
