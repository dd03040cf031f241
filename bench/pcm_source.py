"""Raw 16-bit little-endian PCM on standard output, for `predict --stream -`.

Usage: python bench/pcm_source.py SECONDS [RATE] [CHANNELS]

One synthesized clip per second (pipeline/data/synth.py, the two classes in
turn), resampled to RATE and copied to CHANNELS, written a second at a
time: an endless microphone, made as it is read, so the stream's memory is
the reader's alone.
"""

import sys

import numpy as np

from components.frontend import windowing
from pipeline.data import synth


def main(argv):
  seconds = int(argv[0])
  rate = int(argv[1]) if len(argv) > 1 else synth.SAMPLE_RATE
  channels = int(argv[2]) if len(argv) > 2 else 1
  out = sys.stdout.buffer
  # Made once, a class each, then repeated with a changing gain: the
  # clip's cost stays out of the reader's timing.
  clips = [windowing.resample(synth.make_clip(0, label, 0)[1],
                             synth.SAMPLE_RATE, rate) for label in (0, 1)]
  for second in range(seconds):
    clip = clips[second % 2] * (0.5 + 0.5 * ((second // 2) % 2))
    pcm = np.round(np.clip(clip, -1, 1) * 32767).astype('<i2')
    out.write(np.repeat(pcm[:, None], channels, axis=1).tobytes())
  out.flush()


if __name__ == '__main__':
  main(sys.argv[1:])
