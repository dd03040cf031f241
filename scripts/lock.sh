#!/usr/bin/env bash
# Re-resolve requirements.in in a scratch venv and write requirements.lock.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$("$ROOT/.venv/bin/python" -c 'import sys; print(sys.base_prefix)')/bin/python3.10"
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
"$PY" -m venv "$SCRATCH/venv"
"$SCRATCH/venv/bin/pip" install --quiet "pip==24.2"
"$SCRATCH/venv/bin/pip" install --quiet -r "$ROOT/requirements.in"
{
  echo "# Complete lock of every package in .venv (Python 3.10, TFX 1.16.0)."
  echo "# Regenerate with: make lock   (see README: 'Updating the lock')."
  echo "pip==24.2"
  echo "setuptools==69.5.1"
  echo "wheel==0.43.0"
  "$SCRATCH/venv/bin/pip" freeze --all | grep -v '^\(pip\|setuptools\|wheel\)=='
} > "$ROOT/requirements.lock"
echo "wrote $ROOT/requirements.lock"
