"""Source files to the images the pipeline stores: the decoders that
`ingest` and `predict` share.

A file's format is read from its bytes, not its name; an image declaring
more than `FileLimits.max_pixels` and a clip longer than
`FileLimits.max_clip_seconds` are refused from their headers, before any
pixel or sample is decoded; a WAV clip is rendered with the project's
spectrogram (:mod:`pipeline.data.spectrogram`). Every refusal is an
:class:`UnreadableFile` that says why.
"""

import contextlib
import dataclasses
import io
import warnings
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
from PIL import Image
from PIL import ImageOps

from components.common import errors
from components.modules import features
from components import frontend
from components.frontend import windowing
from pipeline.data import spectrogram

_KEEP_AS_IS = {'PNG': ('L', 'LA', 'RGB', 'RGBA', 'P', 'I;16'),
               'JPEG': ('L', 'RGB')}


class UnreadableFile(errors.PipelineError, ValueError):
  """Raised for one file that is not a usable image or WAV clip."""


@dataclasses.dataclass(frozen=True)
class FileLimits:
  """How much work one source file may cause; the settings' one home.

  Attributes:
    max_side: images with a larger side are shrunk to it before storing.
    max_pixels: images declaring more pixels (width x height) are refused
      from their header, before any pixel is decoded.
    max_clip_seconds: longer WAV clips are refused from their header,
      before their samples are read.
  """
  max_side: int = 1024
  max_pixels: int = 50_000_000
  max_clip_seconds: float = 600.0


@dataclasses.dataclass(frozen=True)
class SourceImage:
  """What one source file becomes.

  Attributes:
    data: the encoded image stored (PNG or JPEG).
    reencoded: whether `data` differs from the file's bytes.
    summary: the image summary features by name (`features.IMAGE_WIDTH_KEY`
      and the others), see :func:`image_summary`.
    start: for a window of a clip, its start in the source, in seconds.
    end: its end (capped at the clip's end).
    samples: for a window, its mono samples at the front end's rate,
      zero-padded: what the image was drawn from.
  """
  data: bytes
  reencoded: bool
  summary: Dict[str, Any]
  start: Optional[float] = None
  end: Optional[float] = None
  samples: Optional[np.ndarray] = None


def image_summary(image: Image.Image, source_format: str) -> Dict[str, Any]:
  """Width, height, and luminance mean, std and saturated share of `image`.

  The pixel figures are computed on a copy at most 256 pixels on a side:
  they describe the picture, not its resolution, and cost little.

  Args:
    image: a decoded image.
    source_format: the file's format (PNG, JPEG, ..., WAV).

  Returns:
    {feature name: value} for the summary features of `features`.
  """
  luminance = image.convert('L')
  luminance.thumbnail((256, 256))
  pixels = np.asarray(luminance, dtype=np.float64)
  return {
      features.IMAGE_WIDTH_KEY: int(image.width),
      features.IMAGE_HEIGHT_KEY: int(image.height),
      features.PIXEL_MEAN_KEY: float(pixels.mean()),
      features.PIXEL_STD_KEY: float(pixels.std()),
      features.SATURATED_SHARE_KEY: float(np.mean((pixels <= 0) |
                                                  (pixels >= 255))),
      features.SOURCE_FORMAT_KEY: source_format,
  }


@contextlib.contextmanager
def _pillow_pixel_limit(max_pixels: Optional[int]) -> Iterator[None]:
  """Pillow's own bomb checks (also run inside GIF, ICO and TIFF decoders)
  use `max_pixels` (None: off) inside the block, and its warning is an
  error; a module global is Pillow's only knob."""
  saved = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = max_pixels
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('error', Image.DecompressionBombWarning)
      yield
  finally:
    Image.MAX_IMAGE_PIXELS = saved


def _library_failure(e: Exception) -> str:
  return f'{type(e).__name__}: {e}' if str(e) else type(e).__name__


def encode_image(stream: BinaryIO, limits: FileLimits = FileLimits(),
                 allow_blank: bool = False,
                 tensorflow_check: bool = True) -> SourceImage:
  """Checks an image file and returns what to store for it.

  The one place images are decoded (Pillow). The header is read first: an
  image declaring more than `limits.max_pixels` pixels is refused before any
  pixel is decoded, so memory stays bounded whatever a file declares. Any
  failure of the decoder, of whatever exception type, is an
  :class:`UnreadableFile` with the decoder's message.

  Args:
    stream: the open file (seekable, binary).
    limits: the :class:`FileLimits`.
    allow_blank: accept an image whose pixels all have one value (`predict`
      classifies it; `ingest` skips it, there is nothing to learn).
    tensorflow_check: also decode a file stored as it is with TensorFlow,
      as Transform will (`ingest`); `predict` decodes with Pillow and
      imports no TensorFlow.

  Returns:
    The :class:`SourceImage` to store.

  Raises:
    UnreadableFile: if the bytes are not a complete, decodable image within
      the limits.
  """
  try:
    # The header and the file's structure, no pixel decoded: our limit, with
    # its message, comes before Pillow's.
    with _pillow_pixel_limit(None):
      with Image.open(stream) as probe:
        _check_pixels(probe.size, limits.max_pixels)
        probe.verify()
    stream.seek(0)
    with _pillow_pixel_limit(limits.max_pixels):
      image = Image.open(stream)
      image.load()
      rotated = image.getexif().get(0x0112, 1) not in (0, 1)
      frames = getattr(image, 'n_frames', 1)
      summary = image_summary(image, image.format or 'unknown')
  except UnreadableFile:
    raise
  except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
    raise UnreadableFile(f'too many pixels ({e}); the limit is '
                         f'--max-image-pixels {limits.max_pixels}') from e
  # Pillow's decoders fail in many ways on malformed files (OSError,
  # SyntaxError, struct.error, ValueError, IndexError, ...).
  except Exception as e:  # pylint: disable=broad-except
    raise UnreadableFile(f'not a readable image ({_library_failure(e)})'
                         ) from e
  if image.width < 1 or image.height < 1:
    raise UnreadableFile(f'image has no pixels ({image.width}x{image.height})')
  if not allow_blank and is_blank(image):
    raise UnreadableFile('blank image: every pixel has the same value')
  keep = (image.format in _KEEP_AS_IS and image.mode in
          _KEEP_AS_IS[image.format] and not rotated and
          max(image.size) <= limits.max_side and frames == 1)
  if keep:
    stream.seek(0)
    data = stream.read()
    if tensorflow_check:
      _check_tensorflow_decodes(data)
    return SourceImage(data, False, summary)
  try:
    return SourceImage(_as_png(image, limits.max_side), True, summary)
  except Exception as e:  # pylint: disable=broad-except
    raise UnreadableFile(f'image cannot be converted to PNG '
                         f'({_library_failure(e)})') from e


def _check_tensorflow_decodes(data: bytes) -> None:
  """Transform decodes stored images with TensorFlow, which refuses some
  damaged PNG and JPEG data that Pillow decodes; such a file would stop
  the run, so it is skipped here."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    tf.io.decode_image(data, expand_animations=False)
  except tf.errors.OpError as e:
    # The op's message starts with its function node in braces and ends
    # with the op name: keep the reason between them.
    reason = e.message.split('[Op:')[0].split('}} ')[-1].strip()
    raise UnreadableFile('damaged image data that TensorFlow cannot decode '
                         f'({reason})') from e


def _check_pixels(size: Tuple[int, int], max_pixels: int) -> None:
  width, height = size
  if width * height > max_pixels:
    raise UnreadableFile(
        f'image declares {width}x{height} pixels ({width * height / 1e6:.1f} '
        f'megapixels), over the limit of {max_pixels / 1e6:g} megapixels '
        '(--max-image-pixels); not decoded')


def _as_png(image: Image.Image, max_side: int) -> bytes:
  """Upright, RGB or grayscale, at most `max_side`, encoded as PNG."""
  image = ImageOps.exif_transpose(image)
  if image.mode not in ('L', 'RGB'):
    image = image.convert('RGBA' if 'A' in image.mode else 'RGB')
    if image.mode == 'RGBA':
      background = Image.new('RGB', image.size, (0, 0, 0))
      background.paste(image, mask=image.getchannel('A'))
      image = background
  if max(image.size) > max_side:
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
  buffer = io.BytesIO()
  image.save(buffer, format='PNG')
  return buffer.getvalue()


def is_blank(image: Image.Image) -> bool:
  """True when every pixel of every band has one value (nothing to learn)."""
  extrema = image.getextrema()
  if not isinstance(extrema[0], tuple):
    extrema = (extrema,)
  return all(low == high for low, high in extrema)


def _front_end(front_end: Union[int, 'frontend.FrontEnd']
               ) -> 'frontend.FrontEnd':
  if isinstance(front_end, frontend.FrontEnd):
    return front_end
  return frontend.FrontEnd(image_size=int(front_end))


def check_long_enough(frames: int, rate: int,
                      front_end: 'frontend.FrontEnd') -> None:
  """Refuses (AudioError) a recording of `frames` at `rate` too short for
  half an analysis frame at the front end's rate."""
  needed = front_end.fft_size // 2
  if frames * front_end.sample_rate < rate * needed:
    raise spectrogram.AudioError(
        f'clip too short for a spectrogram: {1000 * frames / rate:.1f} ms; '
        f'at least {needed} samples at the front end\'s '
        f'{front_end.sample_rate} Hz are needed (half an analysis frame)')


def read_recording(stream: BinaryIO, name: str,
                   front_end: 'frontend.FrontEnd',
                   max_seconds: Optional[float] = None) -> Tuple[Any, int, str]:
  """A recording's mono samples at the front end's rate, with that rate and
  the recording's kind; refused (as :class:`UnreadableFile`) when
  unreadable, too long (or over `spectrogram.MAX_DECODED_SAMPLES`), with
  NaN or infinite samples, or too short for one analysis frame.

  Read a block at a time, downmixed and resampled as it is read
  (:class:`windowing.StreamResampler`, equal to resampling the whole clip
  up to rounding), so memory holds the clip at the front end's rate (10
  min at 16 kHz: 77 MB) and one block, whatever the file's rate and
  channels.
  """
  try:
    rate, kind, blocks = spectrogram.recording_blocks(stream, name,
                                                      max_seconds)
    resampler = windowing.StreamResampler(rate, front_end.sample_rate)
    pieces, frames = [], 0
    for block in blocks:
      frames += block.shape[0]
      pieces.append(resampler.push(windowing.to_mono(block)))
    pieces.append(resampler.flush())
    spectrogram.check_length(frames, rate, name, max_seconds)
    check_long_enough(frames, rate, front_end)
  except spectrogram.AudioError as e:
    raise UnreadableFile(str(e).replace(f'{name}: ', '')) from e
  return np.concatenate(pieces), front_end.sample_rate, kind


def audio_windows(stream: BinaryIO, name: str,
                front_end: Union[int, 'frontend.FrontEnd'],
                max_seconds: Optional[float] = None,
                max_windows: Optional[int] = None) -> List[SourceImage]:
  """Renders a recording's windows (WAV, FLAC, Ogg or MP3) as spectrogram
  PNGs.

  Args:
    stream: the open recording (seekable, binary).
    name: the file's path, for error messages.
    front_end: the :class:`frontend.FrontEnd` (or just an image size, with
      the default front end).
    max_seconds: refuse longer clips before reading their samples.
    max_windows: most windows (None: the front end's bound; 0: all).

  Returns:
    One :class:`SourceImage` per window, in time order, with its `start`
    and `end` in seconds of the source.

  Raises:
    UnreadableFile: if the clip cannot be read or rendered, or is too short
      or too long.
  """
  front_end = _front_end(front_end)
  audio, rate, kind = read_recording(stream, name, front_end, max_seconds)
  try:
    windows = list(windowing.clip_windows(audio, rate, front_end, max_windows))
  except spectrogram.AudioError as e:
    raise UnreadableFile(str(e).replace(f'{name}: ', '')) from e
  sources = []
  for window in windows:
    image = Image.fromarray(window.image)
    sources.append(SourceImage(png_bytes(image), True,
                               image_summary(image, kind), window.start,
                               window.end, window.samples))
  return sources


def png_bytes(image: Union[Image.Image, np.ndarray]) -> bytes:
  """A rendered spectrogram (an image or uint8 pixels) as the PNG stored."""
  if isinstance(image, np.ndarray):
    image = Image.fromarray(image)
  buffer = io.BytesIO()
  image.save(buffer, format='PNG')
  return buffer.getvalue()


def read_sources(stream: BinaryIO, name: str,
                 front_end: Union[int, 'frontend.FrontEnd'],
                 limits: FileLimits = FileLimits(),
                 allow_blank: bool = False,
                 max_windows: Optional[int] = None,
                 tensorflow_check: bool = True) -> List[SourceImage]:
  """One source file, image or WAV clip, to the encoded images stored for
  it: one for an image, one per window for a clip.

  The format is read from the bytes, not the name. `ingest` and `predict`
  both read files through here, so a file is accepted, refused or turned
  into pixels the same way at training and at serving time.

  Args:
    stream: the open file (seekable, binary).
    name: the file's path, for error messages.
    front_end: the :class:`frontend.FrontEnd` WAV clips are rendered with
      (or an image size, with the default front end).
    limits: the :class:`FileLimits`.
    allow_blank: see :func:`encode_image`.
    max_windows: see :func:`audio_windows`.
    tensorflow_check: see :func:`encode_image`.

  Returns:
    :class:`SourceImage` objects: PNG or JPEG bytes, whether they differ
    from the file's bytes, and the image's summary features.

  Raises:
    UnreadableFile: naming why the file is not used.
  """
  head = stream.read(12)
  stream.seek(0)
  if not head:
    raise UnreadableFile('empty file (0 bytes)')
  if spectrogram.audio_kind(head):
    return audio_windows(stream, name, front_end, limits.max_clip_seconds,
                       max_windows)
  return [encode_image(stream, limits, allow_blank, tensorflow_check)]


def read_source(stream: BinaryIO, name: str,
                front_end: Union[int, 'frontend.FrontEnd'],
                limits: FileLimits = FileLimits(),
                allow_blank: bool = False,
                tensorflow_check: bool = True) -> SourceImage:
  """The first image :func:`read_sources` makes of a file (a clip's first
  window)."""
  return read_sources(stream, name, front_end, limits, allow_blank,
                      max_windows=1, tensorflow_check=tensorflow_check)[0]
