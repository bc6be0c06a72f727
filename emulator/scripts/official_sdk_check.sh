#!/usr/bin/env bash
# Runs the official-SDK conformance check by hand (not in CI: it installs from PyPI).
#   emulator/scripts/official_sdk_check.sh [--rows N] [--faults emulator/scripts/sdk_faults.json --idempotent-retries --flush-each-batch]
#   BINARY_FORMAT=base64 emulator/scripts/official_sdk_check.sh   # the emulator with --binary-format base64
# SDK_VENV names a venv that already has snowpipe-streaming and cryptography.
set -euo pipefail
cd "$(dirname "$0")/../.."
source emulator/scripts/sdk_venv.sh
cargo build -q -p snowpipe-emulator
args=(--binary "${CARGO_TARGET_DIR:-target}/debug/snowpipe-emulator")
if [ -n "${BINARY_FORMAT:-}" ]; then
  args+=(--binary-format "$BINARY_FORMAT")
fi
exec "$VENV/bin/python" emulator/scripts/official_sdk_check.py "${args[@]}" "$@"
