#!/usr/bin/env bash
# KServe's model server and the TensorFlow it runs phase two on, in their
# own environment, .venv-kserve, from requirements-kserve.lock: every KServe
# release wants a protobuf or pandas that TFX 1.16 refuses.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure_side_env.sh" \
  "${1:-.venv-kserve}" requirements-kserve.lock \
  'import kserve, tensorflow' \
  'KServe model server with TensorFlow 2.16, for serve; about 2 GB'
