#!/usr/bin/env bash
# The shared-metadata tests start private MariaDB and PostgreSQL servers
# (tests/db_servers.py) from Debian's packages. Install them where we may
# (root with apt); elsewhere say how. Nothing is started here, and the
# packages' own services stay stopped.
set -euo pipefail

missing=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} = 0 ]; then exit 0; fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${missing[*]} (the shared-metadata tests run real database servers)"
  # A policy-rc.d that says no keeps the packages' services from starting.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  if ! apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1 || true
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
      echo "setup: could not install ${missing[*]} with apt" >&2; exit 1; }
  fi
else
  echo "setup: note: ${missing[*]} not installed; the shared-metadata tests will be skipped (install Debian's mariadb-server and postgresql)" >&2
fi
