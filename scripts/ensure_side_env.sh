#!/usr/bin/env bash
# A tool whose dependencies TFX 1.16 refuses, in an environment of its own
# made from its lock file with the project's Python 3.10. Made once; made
# again when the lock changes (its hash is kept in the environment). Built
# beside the old one and renamed into place, so an interrupted build leaves
# the old environment (or none), never half of one.
#
# Usage: scripts/ensure_side_env.sh VENV LOCK 'IMPORT CHECK' 'WHAT (SIZE)'
set -euo pipefail

VENV="$1"; LOCK="$2"; CHECK="$3"; WHAT="$4"
# The interpreter behind the project's environment (scripts/setup_env.sh
# found a Python 3.10 for it).
BASE="$(.venv/bin/python -c 'import os, sys; print(os.path.realpath(sys.executable))')"
WANT="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.lock-sha256" 2>/dev/null)" = "$WANT" ]; then
  exit 0
fi
echo "setup: making $VENV ($WHAT)"
rm -rf "$VENV.partial"
"$BASE" -m venv "$VENV.partial"
# --no-compile: the tool compiles what it imports when first run; all of
# TensorFlow's 2 GB up front cost a third of the environment's making.
"$VENV.partial/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
  --no-compile -r "$LOCK" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV.partial/bin/python" -c "$CHECK" || {
  echo "setup: '$CHECK' fails in $VENV.partial (from $LOCK)" >&2; exit 1; }
echo "$WANT" > "$VENV.partial/.lock-sha256"
rm -rf "$VENV"
mv "$VENV.partial" "$VENV"
