#!/usr/bin/env bash
# MediaPipe's and KServe's environments (scripts/ensure_mediapipe.sh,
# scripts/ensure_kserve.sh), made side by side: on a fresh clone each is a
# minute of unpacking wheels, and neither needs the other. Fails if either
# does, after both have ended.
set -uo pipefail
HERE="$(dirname "${BASH_SOURCE[0]}")"
bash "$HERE/ensure_mediapipe.sh" & mediapipe=$!
bash "$HERE/ensure_kserve.sh" & kserve=$!
wait "$mediapipe"; first=$?
wait "$kserve"; second=$?
[ "$first" = 0 ] && [ "$second" = 0 ]
