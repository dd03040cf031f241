#!/usr/bin/env bash
# Everything `make test` needs, made side by side: the project's environment
# (scripts/setup_env.sh), the side environments of MediaPipe and KServe
# (scripts/ensure_side_envs.sh), which need only the interpreter the
# project's is made with, and the Debian packages the tests use (the
# default data's sounds, chromium, the database servers; one after another,
# as apt takes one install at a time, and each waits for the lock of the
# other's). On a fresh clone that is two or three minutes of unpacking
# wheels while apt downloads and unpacks its own; nothing is made twice.
# Fails if any does, after all have ended.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup_env.sh .venv & main=$!
( bash scripts/ensure_sounds.sh && bash scripts/ensure_browser.sh &&
  bash scripts/ensure_databases.sh ) & system=$!
# The side environments start once .venv's interpreter runs (it is made
# first, before any package is installed into it).
until .venv/bin/python -c '' 2>/dev/null; do
  if ! kill -0 "$main" 2>/dev/null; then
    wait "$main"; first=$?
    wait "$system"
    exit "$first"
  fi
  sleep 0.2
done
bash scripts/ensure_side_envs.sh & side=$!
wait "$main"; first=$?
# musicnn's weights (phase two's ears) and the original musicnn the proof
# test runs need .venv's packages.
if [ "$first" = 0 ]; then
  bash scripts/ensure_music_weights.sh .venv && \
    bash scripts/ensure_musicnn_reference.sh || first=1
fi
wait "$side"; second=$?
wait "$system"; third=$?
[ "$first" = 0 ] && [ "$second" = 0 ] && [ "$third" = 0 ]
