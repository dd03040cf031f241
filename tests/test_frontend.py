"""The audio front end (components/frontend/): every sample format and
rate to the same picture, windows at known places, the stream equal to the
whole clip, and the settings' errors."""

import io
import json
import os

import numpy as np
import pytest

import audio_files
from pipeline.data import decode
from components import frontend
from components.frontend import windowing
from components.frontend import melscale
from pipeline.data import spectrogram
from pipeline.data import synth
from pipeline.settings import config as config_lib

FRONT_END = frontend.FrontEnd()


def _resampled(audio, rate):
  from scipy import signal  # pylint: disable=g-import-not-at-top
  return signal.resample_poly(audio, *windowing._ratio(16000, rate))  # pylint: disable=protected-access


def _images(data, front_end=FRONT_END, max_windows=None):
  sources = decode.read_sources(io.BytesIO(data), 'clip.wav', front_end,
                                max_windows=max_windows)
  return [np.asarray(_decode_png(s.data)) for s in sources], sources


def _decode_png(data):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return Image.open(io.BytesIO(data)).convert('RGB')


def test_the_default_front_end_draws_the_synthesized_clips_as_before():
  for label in (0, 1):
    for index in range(4):
      _, audio = synth.make_clip(3, label, index)
      assert np.array_equal(windowing.render(audio, FRONT_END),
                            melscale.spectrogram_image(audio, 16000))


@pytest.mark.parametrize('kind', audio_files.FORMATS)
@pytest.mark.parametrize('rate', [8000, 22050, 96000, 192000])
def test_every_sample_format_and_rate_is_read(kind, rate):
  audio = 0.4 * np.sin(2 * np.pi * 440 * np.arange(rate // 2) / rate)
  data = audio_files.wav_bytes(audio, rate, kind)
  samples, read_rate = spectrogram.read_wav(data)
  assert read_rate == rate
  assert np.abs(samples - audio).max() < (0.01 if kind == 'u8' else 1e-4)
  # The stream's reader gives the same samples from the header alone.
  header = spectrogram.read_wav_header(io.BytesIO(data))
  streamed = spectrogram.pcm_to_float(
      data[header.data_offset:header.data_offset +
           header.frames * header.block_align], header)
  assert np.abs(streamed[:, 0] - samples).max() < 1e-9
  images, _ = _images(data)
  assert len(images) == 1 and images[0].shape == (128, 128, 3)


def test_wave_format_extensible_is_read_like_plain_pcm():
  audio = 0.4 * np.sin(2 * np.pi * 300 * np.arange(8000) / 16000)
  for kind in ('i16', 'i24', 'f32'):
    plain, _ = _images(audio_files.wav_bytes(audio, 16000, kind))
    extensible, _ = _images(audio_files.wav_bytes(audio, 16000, kind,
                                                  extensible=True))
    assert np.array_equal(plain[0], extensible[0])


@pytest.mark.parametrize('make', [audio_files.chord, audio_files.noise])
def test_the_same_sound_at_any_rate_mono_or_stereo_gives_nearly_the_same_image(
    make):
  reference, _ = _images(audio_files.wav_bytes(make(1.0, 16000), 16000))
  for rate, channels, kind in ((44100, 2, 'i16'), (48000, 1, 'i24'),
                               (48000, 2, 'f32'), (22050, 1, 'i16')):
    sound = make(1.0, rate)
    samples = np.stack([sound] * channels, axis=1)
    images, _ = _images(audio_files.wav_bytes(samples, rate, kind))
    difference = np.abs(images[0].astype(float) - reference[0]).mean()
    assert difference < 2.0, (rate, channels, kind, difference)


def test_without_resampling_a_44k_clip_would_be_another_picture():
  # What the bound above guards against: the mel bands drawn up to the
  # file's own Nyquist frequency, as before the front end resampled.
  sound = audio_files.chord(1.0, 44100)
  old = melscale.spectrogram_image(sound, 44100)
  images, _ = _images(audio_files.wav_bytes(audio_files.chord(1.0, 16000),
                                            16000))
  assert np.abs(old.astype(float) - images[0]).mean() > 10


def test_a_short_clip_is_padded_with_silence_at_the_end():
  data = audio_files.wav_bytes(audio_files.chord(0.4, 16000), 16000)
  images, sources = _images(data)
  sound, _ = spectrogram.read_wav(data)
  padded = np.concatenate([sound, np.zeros(16000 - sound.size)])
  assert len(images) == 1
  assert np.array_equal(images[0], windowing.render(padded, FRONT_END))
  assert (sources[0].start, sources[0].end) == (0.0, 0.4)


def _sixty_seconds(rate=16000):
  """60 s of silence with tones in known places: (samples, tone spans)."""
  spans = [(3.0, 5.5), (20.25, 21.0), (40.0, 47.0), (59.5, 60.0)]
  samples = np.zeros(60 * rate)
  for start, end in spans:
    t = np.arange(int(start * rate), int(end * rate))
    samples[t] = 0.3 * np.sin(2 * np.pi * 660 * t / rate)
  return samples, spans


def test_a_sixty_second_recording_is_cut_at_known_boundaries():
  samples, spans = _sixty_seconds()
  front_end = frontend.FrontEnd(hop_seconds=0.5, max_windows=0)
  windows = list(windowing.clip_windows(samples, 16000, front_end))
  assert len(windows) == 119
  assert [(w.start, w.end) for w in windows[:3]] == [(0.0, 1.0), (0.5, 1.5),
                                                     (1.0, 2.0)]
  assert (windows[-1].start, windows[-1].end) == (59.0, 60.0)
  for window in windows:
    sounding = any(start < window.end and window.start < end
                   for start, end in spans)
    # A silent window is one flat colour; one holding a tone is not.
    assert (len(np.unique(window.image.reshape(-1, 3), axis=0)) > 1) == \
        sounding, (window.start, window.end)


def test_windows_are_bounded_per_file_and_spread_over_it():
  samples, _ = _sixty_seconds()
  front_end = frontend.FrontEnd(max_windows=7)
  starts = [w.start for w in windowing.clip_windows(samples, 16000, front_end)]
  assert starts == [0.0, 10.0, 20.0, 30.0, 39.0, 49.0, 59.0]
  # The tail shorter than a hop gets a window of its own, padded.
  tail = windowing.window_starts(16000 * 3 + 100, frontend.FrontEnd())
  assert tail == [0, 16000, 32000, 48000]


def test_the_stream_gives_the_windows_of_the_whole_clip():
  rng = np.random.default_rng(1)
  front_end = frontend.FrontEnd(hop_seconds=0.75, max_windows=0)
  for rate in (16000, 44100):
    clip = np.stack([audio_files.chord(4.3, rate),
                     audio_files.noise(4.3, rate)], axis=1)
    whole = list(windowing.clip_windows(clip, rate, front_end))
    cutter = windowing.StreamWindows(front_end, rate)
    streamed, done = [], 0
    while done < clip.shape[0]:
      size = int(rng.integers(1, 7000))
      streamed += list(cutter.push(clip[done:done + size]))
      done += size
    streamed += list(cutter.finish())
    assert [(s, e) for s, e, _ in streamed] == [(w.start, w.end)
                                                for w in whole]
    for (_, _, samples), window in zip(streamed, whole):
      assert np.array_equal(windowing.render(samples, front_end), window.image)


def test_the_stream_holds_one_window_and_one_block_whatever_the_length():
  front_end = frontend.FrontEnd()
  cutter = windowing.StreamWindows(front_end, 44100)
  block = np.zeros((11025, 2))
  most, count = 0, 0
  for _ in range(4 * 600):  # ten minutes
    count += len(list(cutter.push(block)))
    most = max(most, cutter._buffer.size,  # pylint: disable=protected-access
               cutter._resampler._buffer.size)  # pylint: disable=protected-access
  count += len(list(cutter.finish()))
  assert count == 600
  assert most < front_end.window_samples + 44100


def test_the_record_round_trips_and_names_every_step():
  front_end = frontend.FrontEnd(sample_rate=22050, fft_size=1024,
                                mel_max_hz=9000, colormap='gray',
                                image_size=64, max_windows=0)
  record = json.loads(json.dumps(front_end.to_record()))
  assert frontend.FrontEnd.from_record(record) == front_end
  for key in ('sample_rate', 'window_samples', 'hop_samples', 'fft_size',
              'frame_hop_samples', 'mel_min_hz', 'mel_max_hz', 'top_db',
              'colormap', 'padding', 'resampler'):
    assert key in record
  assert record['mel_max_hz'] == 9000.0
  assert frontend.FrontEnd().to_record()['mel_max_hz'] == 8000.0
  with pytest.raises(frontend.FrontEndError, match='version'):
    frontend.FrontEnd.from_record(dict(record, version=99))


def test_the_gray_colormap_repeats_the_value():
  image = windowing.render(audio_files.chord(1.0, 16000),
                          frontend.FrontEnd(colormap='gray'))
  assert np.array_equal(image[..., 0], image[..., 1])
  assert image.max() == 255


@pytest.mark.parametrize('settings, message', [
    (dict(fft_size=1000), 'fft_size must be a power of two'),
    (dict(sample_rate=500), 'sample_rate 500 Hz'),
    (dict(mel_max_hz=9000), 'mel bands must lie in 0..8000'),
    (dict(clip_window_seconds=0.001), 'clip_window_seconds'),
    (dict(clip_hop_seconds=0), 'clip_hop_seconds'),
    (dict(colormap='viridis'), 'colormap must be one of'),
    (dict(max_windows_per_clip=-1), 'max_windows_per_clip'),
])
def test_front_end_settings_are_checked_by_name(settings, message):
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.PipelineConfig(**settings)


def test_a_clip_too_short_after_resampling_is_refused():
  data = audio_files.wav_bytes(np.ones(1100) * 0.1, 96000)  # 11 ms
  with pytest.raises(decode.UnreadableFile, match='too short'):
    decode.read_sources(io.BytesIO(data), 'clip.wav', FRONT_END)


def test_ingest_writes_a_window_per_example_with_its_source_and_start(
    tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from pipeline.data import ingest  # pylint: disable=g-import-not-at-top
  src = tmp_path / 'src'
  for name, make in (('not_instrument', audio_files.noise),
                     ('instrument', audio_files.chord)):
    os.makedirs(src / name)
    (src / name / 'long.wav').write_bytes(audio_files.wav_bytes(
        np.stack([make(3.5, 44100)] * 2, axis=1), 44100))
    (src / name / 'short.wav').write_bytes(audio_files.wav_bytes(
        make(0.6, 16000), 16000))
  front_end = frontend.FrontEnd(image_size=32, max_windows=3)
  result = ingest.ingest(str(src), str(tmp_path / 'data'), progress=False,
                         front_end=front_end)
  assert result.counts == {"not_instrument": 4, "instrument": 4}
  report = ingest.read_report(result.span_dir)
  assert report['front_end'] == front_end.to_record()
  assert report['recordings'] == {'not_instrument': 2, 'instrument': 2}
  found = {}
  for path in tf.io.gfile.glob(os.path.join(result.span_dir, '*.gz')):
    for record in tf.data.TFRecordDataset(path, compression_type='GZIP'):
      example = tf.train.Example.FromString(record.numpy())
      feature = example.features.feature
      filename = feature['filename'].bytes_list.value[0].decode()
      found.setdefault(filename, []).append(
          feature['window_start'].float_list.value[0])
  assert {k: sorted(v) for k, v in found.items()} == {
      'not_instrument/long.wav': [0.0, 2.0, 3.0],
      'not_instrument/short.wav': [0.0],
      'instrument/long.wav': [0.0, 2.0, 3.0],
      'instrument/short.wav': [0.0]}


def test_image_spans_record_no_front_end(tmp_path, small_spectrograms):
  from pipeline.data import ingest  # pylint: disable=g-import-not-at-top
  result = ingest.ingest(small_spectrograms, str(tmp_path / 'data'),
                         progress=False)
  report = ingest.read_report(result.span_dir)
  assert report['front_end'] is None and report['recordings'] is None


def _encoded(samples, rate, fmt, subtype):
  import soundfile  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  soundfile.write(buffer, samples, rate, format=fmt, subtype=subtype)
  return buffer.getvalue()


@pytest.mark.parametrize('fmt, subtype', [('FLAC', 'PCM_16'),
                                           ('FLAC', 'PCM_24')])
def test_flac_recordings_draw_the_wav_picture(fmt, subtype):
  sound = np.stack([audio_files.chord(2.0, 44100)] * 2, axis=1)
  reference, _ = _images(audio_files.wav_bytes(sound, 44100))
  images, sources = _images(_encoded(sound, 44100, fmt, subtype))
  assert len(images) == len(reference) == 2
  assert sources[0].summary['source_format'] == fmt
  for image, expected in zip(images, reference):
    assert np.abs(image.astype(float) - expected).mean() < 0.05


def _log_mel(data):
  samples, rate, _ = spectrogram.read_audio(io.BytesIO(data))
  window = windowing.resample(samples, rate, 16000)[:16000]
  return melscale.log_mel(window, 16000, 128, hop=FRONT_END.frame_hop)


@pytest.mark.parametrize('fmt, subtype', [
    ('OGG', 'VORBIS'), ('OGG', 'OPUS'), ('MP3', 'MPEG_LAYER_III')])
def test_lossy_recordings_keep_the_loud_part_of_the_picture(fmt, subtype):
  # Lossy codecs drop what masking hides, so the quiet part (more than
  # 40 dB below the peak) differs; within 40 dB it stays within 1 dB.
  sound = np.stack([audio_files.chord(1.0, 48000)] * 2, axis=1)
  reference = _log_mel(audio_files.wav_bytes(sound, 48000))
  values = _log_mel(_encoded(sound, 48000, fmt, subtype))
  loud = reference >= 0.5
  assert loud.mean() > 0.1
  assert np.abs(values - reference)[loud].mean() < 1 / 80


def test_a_damaged_or_too_long_compressed_recording_is_refused_by_name():
  data = _encoded(audio_files.chord(2.0, 16000), 16000, 'FLAC', 'PCM_16')
  with pytest.raises(decode.UnreadableFile, match='not a readable FLAC file'):
    decode.read_sources(io.BytesIO(data[:60]), 'clip.flac', FRONT_END)
  with pytest.raises(decode.UnreadableFile, match='over the limit of 1 s'):
    decode.read_sources(io.BytesIO(data), 'clip.flac', FRONT_END,
                        decode.FileLimits(max_clip_seconds=1))


def test_the_stream_reads_compressed_files_block_by_block():
  from pipeline.serving import predict  # pylint: disable=g-import-not-at-top
  sound = audio_files.noise(3.0, 22050)
  data = _encoded(sound, 22050, 'FLAC', 'PCM_16')
  rate, blocks = predict._file_blocks(io.BytesIO(data), 'clip.flac')  # pylint: disable=protected-access
  streamed = np.concatenate(list(blocks))
  samples, read_rate, kind = spectrogram.read_audio(io.BytesIO(data))
  assert (rate, read_rate, kind) == (22050, 22050, 'FLAC')
  assert np.array_equal(streamed[:, 0], samples)


def test_a_bounded_sample_of_recordings_keeps_its_first_windows_samples(
    tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.frontend import melscale  # pylint: disable=g-import-not-at-top
  from pipeline.data import ingest  # pylint: disable=g-import-not-at-top
  src = tmp_path / 'src'
  clips = {}
  for name, make in (('not_instrument', audio_files.noise),
                     ('instrument', audio_files.chord)):
    os.makedirs(src / name)
    for index in range(4):
      data = audio_files.wav_bytes(make(2.5, 44100, seed=index), 44100)
      clips[f'{name}/{index}.wav'] = data
      (src / name / f'{index}.wav').write_bytes(data)
  front_end = frontend.FrontEnd(image_size=32)

  def kept(proof_windows, data, keep_samples=False, key='proof_windows'):
    result = ingest.ingest(str(src), str(tmp_path / data), progress=False,
                           front_end=front_end, proof_windows=proof_windows,
                           keep_samples=keep_samples)
    found = {}
    for path in tf.io.gfile.glob(os.path.join(result.span_dir, '*.gz')):
      for record in tf.data.TFRecordDataset(path, compression_type='GZIP'):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        if 'audio_pcm' in feature:
          found[(feature['filename'].bytes_list.value[0].decode(),
                 feature['window_start'].float_list.value[0])] = (
                     feature['audio_pcm'].bytes_list.value[0])
    return found, ingest.read_report(result.span_dir)[key]

  found, report = kept(3, 'data')
  # Three recordings, each its first window only, at the front end's rate.
  assert len(found) == 3 and {start for _, start in found} == {0.0}
  assert report == {'windows': 3, 'limit': 3, 'bytes': 3 * 2 * 16000}
  for (filename, _), pcm in found.items():
    samples = melscale.pcm16_samples(pcm)
    expected = decode.read_sources(io.BytesIO(clips[filename]), filename,
                                   front_end)[0].samples
    assert samples.shape == expected.shape == (16000,)
    assert np.abs(samples - expected).max() <= 0.5 / 32768 + 1e-9
  # The sample depends on the paths only: a larger one holds the smaller.
  larger, _ = kept(5, 'more')
  assert set(found) < set(larger) and len(larger) == 5
  none, report = kept(0, 'none')
  assert none == {} and report['windows'] == 0
  # By default every window of every recording keeps its samples, each
  # the window its picture was drawn from.
  every, report = kept(0, 'every', keep_samples=True, key='samples')
  windows = {filename: decode.read_sources(io.BytesIO(data), filename,
                                           front_end)
             for filename, data in clips.items()}
  assert len(every) == sum(map(len, windows.values())) > len(clips)
  assert report == {'windows': len(every), 'every_window': True,
                    'bytes': len(every) * 2 * 16000}
  for filename, sources in windows.items():
    for source in sources:
      samples = melscale.pcm16_samples(every[(filename, source.start)])
      assert np.abs(samples - source.samples).max() <= 0.5 / 32768 + 1e-9
