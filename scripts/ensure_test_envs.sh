#!/usr/bin/env bash
# Every environment `make test` needs, made side by side: the project's
# (scripts/setup_env.sh) and the side environments of MediaPipe and KServe
# (scripts/ensure_side_envs.sh), which need only the interpreter the
# project's is made with. On a fresh clone that is two or three minutes of
# unpacking wheels each; nothing is made twice. Fails if either does, after
# both have ended.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup_env.sh .venv & main=$!
# The side environments start once .venv's interpreter runs (it is made
# first, before any package is installed into it).
until .venv/bin/python -c '' 2>/dev/null; do
  if ! kill -0 "$main" 2>/dev/null; then
    wait "$main"; exit $?
  fi
  sleep 0.2
done
bash scripts/ensure_side_envs.sh & side=$!
wait "$main"; first=$?
wait "$side"; second=$?
[ "$first" = 0 ] && [ "$second" = 0 ]
