#!/usr/bin/env bash
# MediaPipe Tasks (the client no one here wrote) in its own environment,
# .venv-mediapipe, from requirements-mediapipe.lock: it wants numpy 2,
# which TFX 1.16 cannot have beside it. Made once; made again when the
# lock changes (its hash is kept in the environment).
set -euo pipefail

VENV="${1:-.venv-mediapipe}"
LOCK=requirements-mediapipe.lock
# The interpreter behind the project's environment (scripts/setup_env.sh
# found a Python 3.10 for it).
BASE="$(.venv/bin/python -c 'import os, sys; print(os.path.realpath(sys.executable))')"
WANT="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.lock-sha256" 2>/dev/null)" = "$WANT" ]; then
  exit 0
fi
echo "setup: making $VENV (MediaPipe Tasks, for the AudioClassifier test; about 150 MB)"
rm -rf "$VENV.partial"
"$BASE" -m venv "$VENV.partial"
"$VENV.partial/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
  -r "$LOCK" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV.partial/bin/python" -c "from mediapipe.tasks.python import audio" || {
  echo "setup: MediaPipe Tasks does not import in $VENV.partial" >&2; exit 1; }
echo "$WANT" > "$VENV.partial/.lock-sha256"
rm -rf "$VENV"
mv "$VENV.partial" "$VENV"
