#!/usr/bin/env bash
# Head-to-head with the official Python SDK, run by hand (not in CI: it installs from PyPI).
#   benches/official_sdk_head_to_head.sh [--rows N] [--channels 1,8] [--batch 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SDK_VENV:-/tmp/snowpipe-sdk-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q snowpipe-streaming cryptography
fi
cargo build -q --release --bin throughput -p snowpipe-apps
cargo build -q --release --bin snowpipe-emulator -p snowpipe-emulator
exec "$VENV/bin/python" benches/official_sdk_head_to_head.py "$@"
