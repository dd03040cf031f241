#!/usr/bin/env bash
# Create or re-sync the project's virtual environment from requirements.lock.
#
# Finds a Python 3.10 (TFX 1.16 supports 3.9-3.10; 3.10 is the one we lock
# for), creates .venv once, and re-installs only when requirements.lock or
# setup.py changed since the last sync. Safe to call before every command.
#
# Usage: scripts/setup_env.sh [VENV_DIR]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
LOCK="$ROOT/requirements.lock"
STAMP="$VENV/.synced-lock"

is_py310() {
  [ -x "$1" ] && [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "3.10" ]
}

find_python310() {
  local candidate
  if [ -n "${PYTHON310:-}" ]; then
    if is_py310 "$PYTHON310"; then echo "$PYTHON310"; return 0; fi
    echo "PYTHON310=$PYTHON310 is not a Python 3.10 interpreter." >&2
    return 1
  fi
  # PATH first; a pyenv shim refuses python3.10 unless PYENV_VERSION selects
  # it, so is_py310 rejects a shim that does not run, and we look further.
  for candidate in python3.10 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && is_py310 "$(command -v "$candidate")"; then
      command -v "$candidate"; return 0
    fi
  done
  local pyenv_root="${PYENV_ROOT:-}"
  if [ -z "$pyenv_root" ] && command -v pyenv >/dev/null 2>&1; then
    pyenv_root="$(pyenv root)"
  fi
  [ -n "$pyenv_root" ] || pyenv_root="$HOME/.pyenv"
  for candidate in $(ls -d "$pyenv_root"/versions/3.10*/bin/python3.10 2>/dev/null | sort -V -r) \
                   /usr/bin/python3.10 /usr/local/bin/python3.10; do
    if is_py310 "$candidate"; then echo "$candidate"; return 0; fi
  done
  return 1
}

# tflite-support's native library, which embeds labels and normalisation in
# the TFLite model, needs libusb-1.0. Install it where we may (root with apt);
# elsewhere the pusher works without it and records that nothing was embedded.
ensure_libusb() {
  if ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing libusb-1.0-0 (for TFLite metadata embedding)"
    if ! apt-get -o DPkg::Lock::Timeout=600 install -y -qq libusb-1.0-0 >/dev/null 2>&1; then
      apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1 || true
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq libusb-1.0-0 >/dev/null 2>&1 || \
        echo "setup: could not install libusb-1.0-0; TFLite models will be pushed without embedded metadata" >&2
    fi
  else
    echo "setup: note: libusb-1.0 is missing; TFLite models will be pushed without embedded metadata (install libusb-1.0-0 to embed it)" >&2
  fi
}

lock_hash() {
  cat "$LOCK" "$ROOT/setup.py" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(lock_hash)" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi
ensure_libusb

if [ ! -x "$VENV/bin/python" ]; then
  if ! PY="$(find_python310)"; then
    cat >&2 <<'EOF'
No Python 3.10 interpreter was found (looked on PATH and in pyenv's versions).
This project needs Python 3.10: TFX 1.16 installs only on 3.9-3.10.
Install one, for example:
  pyenv install 3.10.13          (with pyenv), or
  apt-get install python3.10 python3.10-venv   (where your distribution has it)
or point at an existing one with PYTHON310=/path/to/python3.10 make run
EOF
    exit 1
  fi
  echo "setup: creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi

# pip, its "WARNING: Location ... is ignored" lines left out (they come
# from this machine's pip settings, one per package, hundreds a setup);
# pip's own exit status is kept.
quiet_pip() {
  local log status=0
  log="$(mktemp)"
  "$VENV/bin/python" -m pip "$@" >"$log" 2>&1 || status=$?
  grep -v '^WARNING: Location' "$log" >&2 || true
  rm -f "$log"
  return "$status"
}

echo "setup: installing the locked packages into $VENV (first time: a few minutes, about 3.4 GB)"
quiet_pip install --quiet --disable-pip-version-check "pip==24.2"
# Compiled here, once. With pip's --no-compile a fresh clone's test suite
# ran 792 s against about 590 s, its tests that start many fresh processes
# 3 to 10 times slower (importing TensorFlow and TFX uncompiled costs about
# 4 s more a process until the bytecode is written).
quiet_pip install --quiet --disable-pip-version-check --no-deps -r "$LOCK"
quiet_pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT"
quiet_pip check
lock_hash > "$STAMP"
echo "setup: $VENV is in sync with requirements.lock"
