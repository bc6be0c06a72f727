#!/usr/bin/env bash
# Runs the throughput harness (snowpipe-apps, apps/src/throughput) against a separately started TLS sink emulator, so the figures are
# the client process's own (CPU, minor page faults, peak RSS), and prints the emulator's CPU.
# Run by hand; builds the release binaries first.
#
#   benches/throughput_vs_emulator.sh [--slow] [throughput args...]
#
#   benches/throughput_vs_emulator.sh --channels 1 --rows 3000000
#   benches/throughput_vs_emulator.sh --slow --channels 8 --rows 300000 --memory-budget-mb 256
#
# --slow makes the server slower than the producer (150 ms added to every append, commits 1 s
# later): the memory check ("RSS <= budget + 50 MB"). Compare peak_rss_mb - baseline_rss_mb in
# the JSON line with the budget. Set PERF=1 to record a `perf` profile (perf.data in the
# current directory; build with CARGO_PROFILE_RELEASE_DEBUG=line-tables-only for symbols;
# PERF_CALLGRAPH=dwarf for callers through code built without frame pointers).
# THROUGHPUT_BIN=path runs another build of the harness (A/B against an older commit).
set -euo pipefail
cd "$(dirname "$0")/.."
emu_args=(--commit-delay 0s)
# EMU_ARGS adds emulator flags, e.g. EMU_ARGS="--limits snowflake" (the service's per-channel
# limits: 10 appends/s and 20 MB/s, answered with 429) with --max-requests-per-second 10.
if [ "${1:-}" = "--slow" ]; then
  emu_args=(--commit-delay 1s --fault append_rows:latency=150)
  shift
fi
read -r -a extra <<<"${EMU_ARGS:-}"
emu_args+=("${extra[@]}")
cargo build -q --release --bin throughput -p snowpipe-apps
cargo build -q --release --bin snowpipe-emulator -p snowpipe-emulator
dir=$(mktemp -d)
trap 'kill "$emu" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
target/release/snowpipe-emulator --tls --sink --accept-any-key --data-dir "$dir" \
  --ddl apps/src/ski_resort/sql/setup.sql "${emu_args[@]}" >"$dir/out" 2>"$dir/err" &
emu=$!
for _ in $(seq 100); do grep -q "listening on" "$dir/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on //p' "$dir/out" | head -1)
[ -n "$url" ] || { cat "$dir/err" >&2; exit 1; }
export SNOWFLAKE_URL="$url" SNOWFLAKE_ACCOUNT=ACME SNOWFLAKE_USER=STREAMING_INGEST \
  SNOWFLAKE_ROLE=STREAMING_INGEST SNOWFLAKE_PRIVATE_KEY_FILE="$PWD/tests/fixtures/test_key.p8" \
  SSL_CERT_FILE="$dir/ca.pem"
ticks() { awk '{print $14 + $15}' "/proc/$emu/stat"; }
t0=$(ticks)
bin=${THROUGHPUT_BIN:-target/release/throughput}
if [ -n "${PERF:-}" ]; then
  perf record -F 999 --call-graph "${PERF_CALLGRAPH:-fp}" -o perf.data "$bin" "$@"
else
  /usr/bin/time -f "client: minor page faults %R, user %U s, system %S s" "$bin" "$@"
fi
t1=$(ticks)
echo "emulator CPU: $(( (t1 - t0) * 1000 / $(getconf CLK_TCK) )) ms"
