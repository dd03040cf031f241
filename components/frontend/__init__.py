"""The audio front end's one home: how a recording becomes the pictures a
model takes, for every model and every runtime.

- :mod:`spec`: :class:`FrontEnd`, the typed, frozen description; its
  `to_record` is the JSON spans and manifests carry, `from_record` reads it
  back.
- :mod:`melscale`: the picture in NumPy (filterbank, log-mel, colour map).
- :mod:`windowing`: mono, one rate, windows, whole clips or streams.
- :mod:`graph`: the same picture as TensorFlow ops (TFLite builtins only),
  and the pixel check that holds it to NumPy. It is the one module here that
  imports TensorFlow; import it by name.

Ingest, `predict`, the TFLite pusher and a cloud model import this package;
it imports nothing of the project but `components.common`.
"""

from components.frontend.spec import FrontEnd
from components.frontend.spec import FrontEndError
from components.frontend.spec import VERSION
