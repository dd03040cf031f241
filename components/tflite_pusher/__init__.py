"""The TFLite pusher: its component, its settings (one typed value), a thin
executor, the stages it calls (`stages`) and the waveform model's
conversion and proofs (`waveform`). The on-device library it uses
(conversion, the device budget, TensorFlow Lite Micro, firmware source,
model metadata, the typed results) is `components.tflite`; the model folder
and the manifest it writes are `components.ondevice`."""
