"""Phase one's way to devices: the TFLite converter (convert, prove, choose
the threshold, write the candidate version; `convert_executor`) and the
TFLite pusher (push a ready candidate the cascade blessed; a thin
`executor`), their components (`component`), their settings (one typed
value), the stages the converter calls (`stages`) and the waveform model's
conversion and proofs (`waveform`). The on-device library they use
(conversion, the device budget, TensorFlow Lite Micro, firmware source,
model metadata, the typed results) is `components.tflite`; the model folder
and the manifest they write are `components.ondevice`."""
