#!/usr/bin/env bash
# The default data are rendered from sampled instruments and spoken by a
# speech synthesizer (pipeline/data/sampled.py): FluidSynth, three General
# MIDI soundfonts (three sample sets) and flite, all Debian packages.
# Install them where we may (root with apt); elsewhere say which to
# install: `synth` then falls back to the procedural generator and says so.
set -euo pipefail

missing=()
ls /usr/lib/*/libfluidsynth.so.3 >/dev/null 2>&1 || missing+=(libfluidsynth3)
[ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || missing+=(timgm6mb-soundfont)
[ -f /usr/share/sounds/sf3/MuseScore_General.sf3 ] || missing+=(musescore-general-soundfont-small)
[ -f /usr/share/sounds/sf2/sf_GMbank.sf2 ] || missing+=(csound-soundfont)
command -v flite >/dev/null 2>&1 || missing+=(flite)
if [ ${#missing[@]} = 0 ]; then exit 0; fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${missing[*]} (the default data's instruments and speech)"
  if ! apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1 || true
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || \
      echo "setup: note: could not install ${missing[*]} with apt; synth will use the procedural generator" >&2
  fi
else
  echo "setup: note: ${missing[*]} not installed; synth will use the procedural generator (install Debian's ${missing[*]} for sampled instruments and real speech)" >&2
fi
