#!/usr/bin/env bash
# The official SDK in file mode against the emulator, by hand (not in CI: it installs from PyPI).
#   emulator/scripts/official_sdk_file_mode.sh --mode load    # file mode by size, 24 channels + elastic
#   emulator/scripts/official_sdk_file_mode.sh --mode fault   # file mode by SWITCH_TO_FILE_MODE, with faults
# SDK_VENV names a venv that already has snowpipe-streaming and cryptography.
set -euo pipefail
cd "$(dirname "$0")/../.."
source emulator/scripts/sdk_venv.sh
cargo build -q --release -p snowpipe-emulator
exec "$VENV/bin/python" emulator/scripts/official_sdk_file_mode.py \
  --binary "${CARGO_TARGET_DIR:-target}/release/snowpipe-emulator" "$@"
