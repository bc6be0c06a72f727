#!/bin/sh
# One logical stream over 1, 4 and 16 lanes (the SDK's LaneStream) against the in-process
# emulator in sink mode, with the service's per-channel pacing (10 requests/s, 20 MB/s
# uncompressed, the SDK's defaults) and without; beside one plain channel. Prints each run's
# JSON line and a table: MB/s, client CPU-s per GB, and MB/s over one paced lane's.
#   sh benches/lane_stream.sh            (release build first: about 2 minutes of runs)
set -eu
cargo build --release -q -p snowpipe-apps --bin throughput
bin=target/release/throughput
paced="--max-requests-per-second 10 --max-bytes-per-second 20000000"
unpaced="--max-requests-per-second 0 --max-bytes-per-second 0"
out=$(mktemp)
run() { # label, rows, flags...
    label=$1 rows=$2; shift 2
    line=$("$bin" --rows "$rows" --batch 1000 "$@" | tail -n 1)
    echo "$label $line" | tee -a "$out"
}
run "channel paced" 1000000 --channels 1 $paced
run "channel unpaced" 1000000 --channels 1 $unpaced
for n in 1 4 16; do
    rows=$((n == 1 ? 1000000 : n == 4 ? 2000000 : 3000000))
    run "lanes=$n paced" $rows --lanes $n $paced
    run "lanes=$n unpaced" $rows --lanes $n $unpaced
done
echo
echo "| run | MB/s | CPU-s per GB | MB/s over 1 lane paced |"
echo "|---|---|---|---|"
base=$(grep '^lanes=1 paced' "$out" | sed 's/^[^{]*//' | python3 -c 'import json,sys; print(json.load(sys.stdin)["mb_per_s"])')
sed 's/^\([^{]*\) \({.*\)$/\1\t\2/' "$out" | while IFS="$(printf '\t')" read -r label json; do
    echo "$json" | python3 -c "import json,sys; j=json.load(sys.stdin); print('| $label | %.1f | %.2f | %.2fx |' % (j['mb_per_s'], j['cpu_s_per_gb'], j['mb_per_s']/$base))"
done
rm -f "$out"
