#!/usr/bin/env bash
# The original musicnn, for the proof test only (tests/test_music_encoder.py):
# the wheel's own code and the librosa it computes its input with, from
# requirements-musicnn-reference.lock, installed into a folder of their own
# (.musicnn-reference) that the test puts before .venv's packages in a
# process of its own. Made once; made again when the lock changes; built
# beside the old one and renamed into place.
set -euo pipefail
DIR="${1:-.musicnn-reference}"
LOCK=requirements-musicnn-reference.lock
WANT="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ "$(cat "$DIR/.lock-sha256" 2>/dev/null)" = "$WANT" ]; then
  exit 0
fi
echo "setup: making $DIR (the original musicnn and librosa 0.8.1, for the proof test; about 200 MB)"
rm -rf "$DIR.partial"
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
  --no-compile --target "$DIR.partial" -r "$LOCK" 2>&1 | grep -v "^WARNING: Location" || true
[ -f "$DIR.partial/musicnn/extractor.py" ] || {
  echo "setup: $LOCK did not install musicnn into $DIR.partial" >&2; exit 1; }
echo "$WANT" > "$DIR.partial/.lock-sha256"
rm -rf "$DIR"
mv "$DIR.partial" "$DIR"
