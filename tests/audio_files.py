"""WAV files of every sample format the front end reads, written byte by
byte here (SciPy's writer has no 24-bit), and test sounds."""

import struct

import numpy as np

FORMATS = ('u8', 'i16', 'i24', 'i32', 'f32', 'f64')


def wav_bytes(samples, rate, kind='i16', extensible=False):
  """[frames] or [frames, channels] floats in [-1, 1] as a WAV file."""
  samples = np.asarray(samples, dtype=np.float64)
  if samples.ndim == 1:
    samples = samples[:, None]
  channels = samples.shape[1]
  flat = np.clip(samples, -1.0, 1.0).reshape(-1)
  if kind == 'u8':
    data, bits, tag = np.round(flat * 127 + 128).astype('u1').tobytes(), 8, 1
  elif kind == 'i16':
    data, bits, tag = np.round(flat * 32767).astype('<i2').tobytes(), 16, 1
  elif kind == 'i24':
    values = np.round(flat * (2 ** 23 - 1)).astype('<i4')
    data = b''.join(int(v).to_bytes(3, 'little', signed=True)
                    for v in values)
    bits, tag = 24, 1
  elif kind == 'i32':
    data = np.round(flat * (2 ** 31 - 1)).astype('<i4').tobytes()
    bits, tag = 32, 1
  elif kind == 'f32':
    data, bits, tag = flat.astype('<f4').tobytes(), 32, 3
  elif kind == 'f64':
    data, bits, tag = flat.astype('<f8').tobytes(), 64, 3
  else:
    raise ValueError(kind)
  block = channels * bits // 8
  if extensible:
    fmt = struct.pack('<HHIIHHHHIH14s', 0xFFFE, channels, rate, rate * block,
                      block, bits, 22, bits, 0, tag,
                      b'\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x008\x9bq')
  else:
    fmt = struct.pack('<HHIIHH', tag, channels, rate, rate * block, block,
                      bits)
  body = (b'WAVE' + b'fmt ' + struct.pack('<I', len(fmt)) + fmt + b'data' +
          struct.pack('<I', len(data)) + data + (b'\x00' if len(data) & 1
                                                 else b''))
  return b'RIFF' + struct.pack('<I', len(body)) + body


def chord(seconds, rate, base=220.0, seed=0):
  """A decaying harmonic chord, an instrument-like sound, at `rate`."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * rate)) / rate
  sound = np.zeros_like(t)
  for ratio in (1.0, 1.25, 1.5):
    for harmonic in range(1, 8):
      freq = base * ratio * harmonic
      if freq < min(rate / 2 - 100, 7000):
        sound += np.sin(2 * np.pi * freq * t + rng.uniform(0, 6)) / harmonic
  envelope = np.exp(-1.5 * (t % 1.0))
  return 0.3 * sound / np.abs(sound).max() * envelope


def noise(seconds, rate, seed=0):
  """A noise-like sound: 400 partials at random frequencies (50 Hz to
  7 kHz) and phases, under a random envelope. Defined in continuous time,
  so it is the same sound sampled at any rate."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * rate)) / rate
  freqs = rng.uniform(50, 7000, 400)
  phases = rng.uniform(0, 2 * np.pi, 400)
  sound = np.zeros_like(t)
  for freq, phase in zip(freqs, phases):
    sound += np.sin(2 * np.pi * freq * t + phase)
  bumps = rng.uniform(0, seconds, 6)
  envelope = 0.2 + sum(np.exp(-((t - b) / 0.05) ** 2) for b in bumps)
  shaped = sound * envelope
  return 0.3 * shaped / np.abs(shaped).max()


def front_end_windows(front_end):
  """Windows at a front end's rate that test its picture: a chord, quiet
  noise, silence, and a short chord padded with zeros."""
  rate, seconds = front_end.sample_rate, front_end.window_seconds
  yield chord(seconds, rate, base=130)
  yield noise(seconds, rate, seed=3) * 1e-3  # quiet
  yield np.zeros(front_end.window_samples)  # silence
  short = chord(seconds / 3, rate, base=400)
  yield np.pad(short, (0, front_end.window_samples - short.size))  # padded
