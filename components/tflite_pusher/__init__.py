"""The TFLite pusher: component, executor, and the plain functions they use.

`QUANTIZATION_MODES` lives here, free of TensorFlow, so the command line can
check the setting without loading it; `conversion` documents each mode.
"""

QUANTIZATION_MODES = ('none', 'dynamic', 'float16', 'int8')
