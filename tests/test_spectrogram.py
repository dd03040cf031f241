"""Tests for pipeline.data.spectrogram."""

import io
import struct

import numpy as np
import pytest

from components.frontend import melscale
from pipeline.data import spectrogram

RATE = 16000


def _tone(freq, seconds=1.0):
  t = np.arange(int(RATE * seconds)) / RATE
  return 0.5 * np.sin(2 * np.pi * freq * t)


def test_image_is_square_rgb_uint8_for_any_clip_length():
  for seconds in (0.05, 1.0, 3.7):
    image = melscale.spectrogram_image(_tone(440, seconds), RATE, 128)
    assert image.shape == (128, 128, 3)
    assert image.dtype == np.uint8


def test_higher_tone_lights_a_higher_row():
  def brightest_row(freq):
    values = melscale.log_mel(_tone(freq), RATE, 64)
    return int(np.argmax(values.mean(axis=1)))

  low, high = brightest_row(300), brightest_row(3000)
  assert high > low
  # In the image, low frequencies are at the bottom (row index high).
  image = melscale.spectrogram_image(_tone(300), RATE, 64)
  assert image[:, :, 0].mean(axis=1).argmax() > 32


def test_log_mel_is_scaled_to_unit_range_with_peak_at_one():
  values = melscale.log_mel(_tone(1000), RATE, 128)
  assert values.max() == pytest.approx(1.0)
  assert values.min() >= 0.0


def test_mel_filterbank_has_no_empty_band():
  bank = melscale.mel_filterbank(RATE, 2048, 128)
  assert bank.shape == (128, 1025)
  assert np.all(bank.sum(axis=1) > 0)


@pytest.mark.parametrize('audio, message', [
    (np.zeros(0), 'no samples'),
    (np.array([0.0, np.nan, 0.1]), 'NaN'),
])
def test_bad_audio_raises_audio_error(audio, message):
  with pytest.raises(spectrogram.AudioError, match=message):
    melscale.spectrogram_image(audio, RATE)


def test_wav_round_trip_preserves_samples_and_rate():
  audio = _tone(440, 0.25)
  samples, rate = spectrogram.read_wav(spectrogram.wav_bytes(audio, 8000))
  assert rate == 8000
  np.testing.assert_allclose(samples, audio, atol=1e-4)


def test_read_wav_names_the_file_on_garbage():
  with pytest.raises(spectrogram.AudioError, match='clip.wav'):
    spectrogram.read_wav(b'RIFF not really a wav', 'clip.wav')


def test_colorize_is_monotonic_in_brightness():
  rgb = melscale.colorize(np.linspace(0, 1, 50)).astype(int)
  brightness = rgb.sum(axis=1)
  assert np.all(np.diff(brightness) >= -2)
  assert brightness[-1] > brightness[0] + 400


class _CountingReader(io.BytesIO):
  """A file that counts the bytes read from it."""

  def __init__(self, data):
    super().__init__(data)
    self.bytes_read = 0

  def read(self, size=-1):
    data = super().read(size)
    self.bytes_read += len(data)
    return data


def test_an_hour_long_clip_is_refused_from_its_header():
  hour = spectrogram.wav_bytes(np.zeros(1000 * 3600), 1000)
  stream = _CountingReader(hour)
  with pytest.raises(spectrogram.AudioError,
                     match=r'clip is 3600.0 s long, over the limit of 600 s'):
    spectrogram.read_wav(stream, 'hour.wav', max_seconds=600)
  assert stream.bytes_read < 100


@pytest.mark.parametrize('header, message', [
    (dict(channels=0), 'declares 0 channels'),
    (dict(rate=0), 'sample rate 0 Hz is outside'),
    (dict(align=0), 'in 0-byte blocks'),
    (dict(bits=4095), 'ValueError: Unsupported bit depth'),
])
def test_malformed_fmt_chunks_are_audio_errors_naming_the_field(header,
                                                                 message):
  values = dict(tag=1, channels=1, rate=16000, align=2, bits=16)
  values.update(header)
  wav = spectrogram.wav_bytes(np.zeros(4000), 16000)
  fmt = struct.pack('<HHIIHH', values['tag'], values['channels'],
                    values['rate'], values['rate'] * values['align'],
                    values['align'], values['bits'])
  with pytest.raises(spectrogram.AudioError, match=message):
    spectrogram.read_wav(wav[:20] + fmt + wav[36:], 'clip.wav')


def test_a_clip_shorter_than_half_a_window_is_refused():
  with pytest.raises(spectrogram.AudioError, match='too short'):
    spectrogram.read_wav(spectrogram.wav_bytes(np.ones(100), 16000))
  audio, _ = spectrogram.read_wav(spectrogram.wav_bytes(
      np.ones(spectrogram.MIN_CLIP_SAMPLES) * 0.5, 16000))
  assert audio.size == spectrogram.MIN_CLIP_SAMPLES
