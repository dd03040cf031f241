#!/usr/bin/env bash
# The run report's test loads it in a real headless browser: Debian's
# chromium. Install it where we may (root with apt); elsewhere say how.
set -euo pipefail

if [ -n "${CHROMIUM:-}" ] && [ -x "$CHROMIUM" ]; then exit 0; fi

for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing chromium (the report test loads the report in headless chromium)"
  if ! apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null 2>&1; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1 || true
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || {
      echo "setup: could not install chromium with apt" >&2; exit 1; }
  fi
else
  echo "setup: note: no chromium found; the report's browser test will be skipped (install Debian's chromium, or set CHROMIUM=/path/to/chrome)" >&2
fi
