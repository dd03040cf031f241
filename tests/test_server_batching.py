"""The model server's batching (components/cloud/server.py's Batcher):
requests that arrive while the model is busy share its next call, each
gets its own answers back, none waits past its bound, and one bad request
fails no other. The model is a stand-in that records its calls; the real
server's answers under concurrent clients are test_serve.py's."""

import asyncio
import time

import numpy as np
import pytest

from components.cloud import server
from pipeline.cli import commands


class _Model:
  """A model call that takes `seconds` and answers each window with its
  first byte; a window starting with `!` makes the call fail as a bad
  request would."""

  def __init__(self, seconds=0.05):
    self.seconds, self.calls = seconds, []

  def __call__(self, version, data):
    self.calls.append((version, len(data)))
    time.sleep(self.seconds)
    if any(window.startswith(b'!') for window in data):
      raise server.RequestError('the model cannot take the request')
    first = np.array([window[0] for window in data], np.float32)
    return {'scores': np.stack([first, -first], axis=1),
            'label': np.array([str(int(v)).encode() for v in first])}


def _windows(*firsts):
  return [bytes([value]) * 4 for value in firsts]


async def _together(batcher, requests, gap=0.0):
  """Sends (version, windows) requests `gap` seconds apart; their answers
  or errors, in order."""
  tasks = []
  for version, windows in requests:
    tasks.append(asyncio.ensure_future(batcher.answer(version, windows)))
    await asyncio.sleep(gap)
  return await asyncio.gather(*tasks, return_exceptions=True)


def test_requests_that_wait_share_one_call_and_get_their_own_answers():
  model = _Model()
  batcher = server.Batcher(max_windows=64, call=model)
  requests = [('v1', _windows(1))] + [('v1', _windows(10 + i, 20 + i))
                                      for i in range(5)]
  answers = asyncio.run(_together(batcher, requests, gap=0.001))
  # The first ran alone at once; the five that came while it ran, together.
  assert model.calls == [('v1', 1), ('v1', 10)]
  assert answers[0]['scores'][:, 0].tolist() == [1]
  for i, answer in enumerate(answers[1:]):
    assert answer['scores'][:, 0].tolist() == [10 + i, 20 + i]
    assert answer['label'].tolist() == [str(10 + i).encode(),
                                        str(20 + i).encode()]


def test_a_call_takes_at_most_max_windows_and_never_splits_a_request():
  model = _Model()
  batcher = server.Batcher(max_windows=5, call=model)
  requests = [('v1', _windows(1))] + [('v1', _windows(*range(i, i + 3)))
                                      for i in range(4)]
  answers = asyncio.run(_together(batcher, requests, gap=0.001))
  assert [count for _, count in model.calls] == [1, 3, 3, 3, 3]
  assert [a['scores'].shape[0] for a in answers] == [1, 3, 3, 3, 3]


def test_versions_are_never_mixed_in_a_call():
  model = _Model()
  batcher = server.Batcher(call=model)
  requests = [('v1', _windows(1)), ('v1', _windows(2)), ('v2', _windows(3)),
              ('v2', _windows(4)), ('v1', _windows(5))]
  asyncio.run(_together(batcher, requests, gap=0.001))
  assert model.calls == [('v1', 1), ('v1', 1), ('v2', 2), ('v1', 1)]


def test_one_bad_request_fails_no_other():
  model = _Model()
  batcher = server.Batcher(call=model)
  requests = [('v1', _windows(1)), ('v1', _windows(2)),
              ('v1', [b'!bad']), ('v1', _windows(3))]
  answers = asyncio.run(_together(batcher, requests, gap=0.001))
  assert isinstance(answers[2], server.RequestError)
  assert [answers[i]['scores'][0, 0] for i in (0, 1, 3)] == [1, 2, 3]


def test_a_lone_request_runs_at_once_or_waits_no_longer_than_its_bound():
  model = _Model(seconds=0.0)

  async def timed(batcher):
    started = time.monotonic()
    await batcher.answer('v1', _windows(1))
    return time.monotonic() - started

  assert asyncio.run(timed(server.Batcher(call=model))) < 0.05
  waited = asyncio.run(timed(server.Batcher(max_wait=0.2, call=model)))
  assert 0.19 <= waited < 0.5
  # Company that fills the call ends the wait.
  model.calls.clear()
  batcher = server.Batcher(max_windows=2, max_wait=5.0, call=model)
  started = time.monotonic()
  asyncio.run(_together(batcher, [('v1', _windows(1)), ('v1', _windows(2))]))
  assert time.monotonic() - started < 1.0 and model.calls == [('v1', 2)]


@pytest.mark.parametrize('flags,said', [
    (['--batch-windows', '0'], '--batch-windows 0: expected 1 to 1024'),
    (['--batch-wait-ms', 'nan'], '--batch-wait-ms nan: expected 0 to 1000'),
    (['--batch-wait-ms', '-1'], '--batch-wait-ms -1: expected 0 to 1000'),
])
def test_serve_s_batching_flags_are_checked_and_default_to_the_server_s(
    flags, said, capsys):
  assert commands.build_parser().parse_args(['serve']).batch_windows == (
      server.DEFAULT_BATCH_WINDOWS)
  assert commands.main(['serve', '--port', '18080'] + flags) == 2
  assert said in capsys.readouterr().err
