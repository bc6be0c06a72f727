#!/usr/bin/env bash
# One Parquet file loaded three ways on one TLS sink emulator, back to back (issue 74, item 4):
# `snowpipe load`, our SDK from serde rows (load/examples/parquet_serde_rows.rs) and the
# official Python SDK reading the file with pyarrow. Run by hand (not in CI: it installs from
# PyPI); the numbers are in docs/PERFORMANCE.md, "Loading files".
#   benches/load_head_to_head.sh [--rows 1000000] [--file F.parquet] [--py-batch 10000] [--no-paced]
#     [--load-args "--max-client-lag 50ms"]   (more arguments for `snowpipe load`)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SDK_VENV:-/tmp/snowpipe-sdk-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import pyarrow, cryptography, snowflake.ingest.streaming' 2>/dev/null; then
  "$VENV/bin/pip" install -q snowpipe-streaming cryptography pyarrow
fi
cargo build -q --release -p snowpipe-load --bin snowpipe --example parquet_serde_rows
cargo build -q --release --bin snowpipe-emulator -p snowpipe-emulator
exec "$VENV/bin/python" benches/load_head_to_head.py "$@"
