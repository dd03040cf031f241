"""The cloud phase's library, no component: phase two's model as a model
server takes it (`serving_model.py`) and its numbered versions in the
layout TensorFlow Serving and KServe read (`push.py`)."""
