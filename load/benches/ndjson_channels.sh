#!/usr/bin/env bash
# A large NDJSON file through `snowpipe load --channels N` against a release emulator in sink
# mode (issue 83): rows/s, CPU-s per GB, peak RSS against the memory budget. Run by hand.
#   load/benches/ndjson_channels.sh [--gb 10] [--channels 16] [--file F.ndjson] [--keep]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --release -p snowpipe-load --bin snowpipe
cargo build -q --release --bin snowpipe-emulator -p snowpipe-emulator
exec python3 load/benches/ndjson_channels.py "$@"
