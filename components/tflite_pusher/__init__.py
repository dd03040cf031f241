"""The TFLite pusher: its component, its executor and the waveform model's
conversion and proofs. The on-device library it uses (conversion, the
device budget, TensorFlow Lite Micro, firmware source, model metadata)
is `components.tflite`; the model folder it writes is
`components.ondevice`."""
