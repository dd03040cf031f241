"""Hostile requests for phase two's model server (`python -m pipeline
serve`): a seeded mix of what a broken client, a proxy or an attacker
sends, each a (method, path, headers, body) to put on the wire by hand.

The kinds: valid bodies with bytes flipped, cut short or stretched; every
V1 and V2 field given the wrong type; windows of the wrong length and not
base64; too many instances; JSON nested deep, NaN, huge strings and keys;
content types a client may send; chunked bodies, lying lengths; unknown
models, paths and methods. `send` puts one on the wire and returns the
status and the answer's bytes.
"""

import base64
import http.client
import json
import os
import random
from typing import Dict, Iterator, List, Tuple

Request = Tuple[str, str, Dict[str, str], object]

CONTENT_TYPES = ('application/json', 'application/json; charset=utf-8',
                 'text/plain', 'application/x-www-form-urlencoded', '',
                 'application/octet-stream', 'multipart/form-data; b=x')


def _valid_v1(window: bytes, count: int) -> dict:
  return {'instances': [{'audio_pcm': {'b64': base64.b64encode(
      window).decode()}} for _ in range(count)]}


def _valid_v2(window: bytes, count: int) -> dict:
  return {'inputs': [{'name': 'audio_pcm', 'shape': [count],
                      'datatype': 'BYTES',
                      'data': [base64.b64encode(window).decode()] * count}]}


def _wrong_types(rng: random.Random, window: bytes) -> object:
  """A V1 or V2 body with one field of the wrong type or value."""
  b64 = base64.b64encode(window).decode()
  odd = rng.choice([None, 7, -1.5, True, 'text', [], {}, [[[]]],
                    float('nan'), 'x' * 20000, {'b64': 7}, [b64] * 2])
  return rng.choice([
      {'instances': odd},
      {'instances': [odd]},
      {'instances': [{'audio_pcm': odd}]},
      {'instances': [{'audio_pcm': {'b64': odd}}]},
      {'inputs': odd},
      {'inputs': {'audio_pcm': odd}},
      {'instances': [{'audio_pcm': {'b64': b64}}], 'pairing_key': odd},
      {'inputs': [{'name': 'audio_pcm', 'shape': odd, 'datatype': 'BYTES',
                   'data': [b64]}]},
      {'inputs': [{'name': odd, 'shape': [1], 'datatype': 'BYTES',
                   'data': [b64]}]},
      {'inputs': [{'name': 'audio_pcm', 'shape': [1], 'datatype': odd,
                   'data': [b64]}]},
      {'inputs': [{'name': 'audio_pcm', 'shape': [1], 'datatype': 'BYTES',
                   'data': odd}]},
      {'inputs': [{'name': 'audio_pcm', 'shape': [1], 'datatype': 'BYTES',
                   'data': [b64]}], 'parameters': {'pairing_key': odd}},
  ])


def _mutated(rng: random.Random, data: bytes) -> bytes:
  data = bytearray(data)
  for _ in range(rng.randint(1, 8)):
    choice = rng.random()
    at = rng.randrange(len(data)) if data else 0
    if choice < 0.4 and data:
      data[at] = rng.randrange(256)
    elif choice < 0.6:
      del data[at:at + rng.randint(1, 64)]
    elif choice < 0.8:
      data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:
      data = data[:at]
  return bytes(data)


def requests(count: int, window: bytes, name: str, seed: int = 0
             ) -> Iterator[Tuple[str, Request]]:
  """`count` hostile requests for the model `name` that takes `window`-
  sized windows, as (kind, request), the same for a seed."""
  rng = random.Random(seed)
  v1 = f'/v1/models/{name}:predict'
  v2 = f'/v2/models/{name}/infer'
  for _ in range(count):
    kind = rng.choice(['mutated', 'types', 'length', 'many', 'deep', 'nan',
                       'huge_key', 'content_type', 'chunked', 'lying_length',
                       'path', 'method', 'valid'])
    headers = {'Content-Type': 'application/json'}
    version = rng.choice(['v1', 'v2'])
    path = v1 if version == 'v1' else v2
    valid = (_valid_v1 if version == 'v1' else _valid_v2)(
        window, rng.randint(1, 3))
    if kind == 'mutated':
      body = _mutated(rng, json.dumps(valid).encode())
    elif kind == 'types':
      body = json.dumps(_wrong_types(rng, window)).encode()
    elif kind == 'length':
      cut = window[:rng.randrange(len(window))] + bytes(rng.choice([0, 1, 3]))
      body = json.dumps((_valid_v1 if version == 'v1' else _valid_v2)(
          cut, 1)).encode()
    elif kind == 'many':
      body = json.dumps((_valid_v1 if version == 'v1' else _valid_v2)(
          window[:64], rng.randint(33, 400))).encode()
    elif kind == 'deep':
      depth = rng.choice([1000, 20000, 100000])
      body = b'{"instances": ' + b'[' * depth + b']' * depth + b'}'
    elif kind == 'nan':
      body = b'{"instances": [NaN, Infinity, -Infinity]}'
    elif kind == 'huge_key':
      body = json.dumps({'k' * rng.randint(1000, 200000): 1,
                         **valid}).encode()
    elif kind == 'content_type':
      body = json.dumps(valid).encode()
      headers = {'Content-Type': rng.choice(CONTENT_TYPES)}
    elif kind == 'chunked':
      data = rng.choice([json.dumps(valid).encode(),
                         _mutated(rng, json.dumps(valid).encode())])
      step = rng.randint(1, 4096)
      body = [data[i:i + step] for i in range(0, len(data), step)]
      headers['Transfer-Encoding'] = 'chunked'
    elif kind == 'lying_length':
      data = json.dumps(valid).encode()
      # Says more than it sends: the server must not wait forever for it,
      # and the client gives up first.
      body = data
      headers['Content-Length'] = str(len(data) - rng.randint(1, 50))
    elif kind == 'path':
      path = rng.choice([f'/v1/models/{"x" * rng.randint(1, 3000)}:predict',
                         f'/v2/models/{name}x/infer', '/v1/models/:predict',
                         f'/v1/models/{name}:classify', '/', '/%00%ff',
                         f'/v2/models/{name}/versions/999/infer'])
      body = json.dumps(valid).encode()
    elif kind == 'method':
      method = rng.choice(['PUT', 'DELETE', 'PATCH', 'GET'])
      yield kind, (method, path, headers, json.dumps(valid).encode())
      continue
    else:
      body = json.dumps(valid).encode()
    yield kind, ('POST', path, headers, body)


def send(port: int, request: Request, timeout: float = 30.0
         ) -> Tuple[int, bytes]:
  """Puts one request on the wire; (status, answer bytes)."""
  method, path, headers, body = request
  connection = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
  try:
    connection.putrequest(method, path, skip_accept_encoding=True)
    for key, value in headers.items():
      if value:
        connection.putheader(key, value)
    if isinstance(body, list):
      connection.endheaders()
      for chunk in body:
        connection.send(b'%x\r\n%s\r\n' % (len(chunk), chunk))
      connection.send(b'0\r\n\r\n')
    else:
      if 'Content-Length' not in headers:
        connection.putheader('Content-Length', str(len(body)))
      connection.endheaders()
      connection.send(body)
    response = connection.getresponse()
    return response.status, response.read()
  finally:
    connection.close()


def rss_mib(pid: int) -> float:
  """The resident memory of `pid` and every process under it, in MiB."""
  total, seen, todo = 0, set(), [pid]
  while todo:
    current = todo.pop()
    if current in seen:
      continue
    seen.add(current)
    try:
      with open(f'/proc/{current}/status', encoding='ascii') as f:
        for line in f:
          if line.startswith('VmRSS:'):
            total += int(line.split()[1])
      children: List[int] = []
      for task in os.listdir(f'/proc/{current}/task'):
        with open(f'/proc/{current}/task/{task}/children',
                  encoding='ascii') as f:
          children += [int(child) for child in f.read().split()]
      todo += children
    except OSError:
      continue
  return total / 1024
