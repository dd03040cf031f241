#!/usr/bin/env bash
# MediaPipe Tasks (the client no one here wrote) in its own environment,
# .venv-mediapipe, from requirements-mediapipe.lock: it wants numpy 2,
# which TFX 1.16 cannot have beside it.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure_side_env.sh" \
  "${1:-.venv-mediapipe}" requirements-mediapipe.lock \
  'from mediapipe.tasks.python import audio' \
  'MediaPipe Tasks, for the AudioClassifier test; about 150 MB'
