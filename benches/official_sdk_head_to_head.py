#!/usr/bin/env python3
"""Head-to-head: this client vs the official Snowpipe Streaming Python SDK, run by hand.

    benches/official_sdk_head_to_head.sh [--rows 2000000] [--channels 1,8]

(the wrapper creates a venv with `pip install snowpipe-streaming cryptography` and builds the
release binaries; this file can also be run directly with that venv's python.)

Same workload, same emulator, same machine, back to back:
  * the rows: `throughput --write-rows` writes a pool of ski-resort rows (≈339 B of NDJSON
    each) once; both sides read that file into native rows before the clock starts (Rust
    structs / Python dicts) and cycle through it, serializing every row they send;
  * the emulator: one `snowpipe-emulator --tls --sink --commit-delay 0s`, key-pair auth;
  * the official SDK in rowset mode (`max_buffered_kb_for_rowset_mode=300000`,
    `max_rowset_payload_size_mb=16`), one thread per channel, `append_rows` of --batch rows,
    retrying after 5 ms on `ReceiverSaturated` (its documented backpressure) and on
    `MemoryThresholdExceeded` (what its users must write: with many channels it refuses
    appends above its memory threshold);
  * ours: `target/release/throughput --input ROWS` with the same channel count,
    rows and batch size, configured through the SNOWFLAKE_* variables.
Each side runs in its own process; CPU is that process's user+system time over the streaming
window (for the SDK, `time.process_time()`: its Rust core's threads included), RSS its peak.
rows/s counts rows until every channel reported all rows acknowledged (our `flush()`, the
SDK's `wait_for_flush()`).
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import threading
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "emulator/scripts"))
from emulator_process import prepare, start  # noqa: E402

DB, SCHEMA, PIPE = "STREAMING_INGEST", "STREAMING_INGEST", "RESORT_TICKET_PIPE"


def start_emulator(binary, data_dir, pub_path):
    args = [
        str(binary), "--tls", "--sink", "--data-dir", str(data_dir),
        "--ddl", str(REPO / "apps/src/ski_resort/sql/setup.sql"),
        "--public-key", str(pub_path), "--commit-delay", "0s",
    ]
    return start(args, data_dir / "emulator.log")


def official_worker(a):
    """Runs in its own process: the official SDK streams the workload, prints one JSON line."""
    os.environ.setdefault("SS_LOG_LEVEL", "warn")
    from snowflake.ingest.streaming import StreamingIngestClient

    pool = [json.loads(l) for l in open(a.input) if l.strip()]
    sizes = [len(json.dumps(r, separators=(",", ":"))) + 1 for r in pool]
    props = {
        "account": "ACME", "user": "STREAMING_INGEST", "role": "STREAMING_INGEST",
        "private_key": open(a.key).read(), "url": a.url,
        "max_buffered_kb_for_rowset_mode": "300000", "max_rowset_payload_size_mb": "16",
    }
    client = StreamingIngestClient(f"h2h-{uuid.uuid4().hex[:8]}", DB, SCHEMA, PIPE, properties=props)
    run = uuid.uuid4().hex[:8]
    channels = [client.open_channel(f"PY_{run}_{i}")[0] for i in range(a.channels)]
    saturated = [0] * a.channels
    nbytes = [0] * a.channels
    errors = []

    def produce(i):
        try:
            ch = channels[i]
            p = len(pool)
            offset = i * p // a.channels
            sent = 0
            while sent < a.rows:
                n = min(a.batch, a.rows - sent)
                first = offset + sent
                rows = [pool[(first + j) % p] for j in range(n)]
                nbytes[i] += sum(sizes[(first + j) % p] for j in range(n))
                while True:
                    try:
                        ch.append_rows(rows, start_offset_token=str(sent + 1), end_offset_token=str(sent + n))
                        break
                    except Exception as e:  # ReceiverSaturated / MemoryThresholdExceeded: retry
                        if not any(k in str(e) for k in ("Saturated", "429", "MemoryThreshold")):
                            raise
                        saturated[i] += 1
                        time.sleep(0.005)
                sent += n
            ch.wait_for_flush(600)
        except Exception as e:
            errors.append(repr(e))

    cpu0, t0 = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=produce, args=(i,)) for i in range(a.channels)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flushed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    total = a.rows * a.channels
    target = str(a.rows)
    for ch in channels:
        ch.wait_for_commit(lambda tok: tok is not None and int(tok) >= int(target), timeout_seconds=120)
    committed = time.perf_counter() - t0
    for ch in channels:
        ch.close()
    client.close()
    if errors:
        raise SystemExit("official SDK failed: " + "; ".join(errors))
    # Bytes are counted with Python's compact json.dumps of the same rows (the file's bytes).
    b = sum(nbytes)
    print(json.dumps({
        "rows": total, "seconds": round(flushed, 3), "rows_per_s": round(total / flushed),
        "mb_per_s": round(b / 1e6 / flushed, 1), "cpu_s": round(cpu, 3),
        "cpu_s_per_gb": round(cpu / (b / 1e9), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6, 1),
        "committed_seen_s": round(committed, 3), "saturated_retries": sum(saturated),
    }))


def last_json(out):
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit("no JSON line in:\n" + out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows per channel")
    ap.add_argument("--channels", default="1,8", help="comma-separated channel counts")
    ap.add_argument("--batch", type=int, default=1000, help="rows per append_rows call")
    ap.add_argument("--pool", type=int, default=100_000, help="distinct rows in the NDJSON file")
    ap.add_argument("--emulator", default=str(REPO / "target/release/snowpipe-emulator"))
    ap.add_argument("--throughput", default=str(REPO / "target/release/throughput"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--key", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        a.channels = int(a.channels)
        return official_worker(a)

    w = prepare([a.emulator, a.throughput], "h2h-", "cargo build --release --bins")
    work, data, key, pub = w.dir, w.data, w.private_key, w.public_key
    rows_file = work / "rows.ndjson"
    subprocess.run([a.throughput, "--write-rows", str(rows_file), "--pool", str(a.pool)], check=True)
    proc, url = start_emulator(a.emulator, data, pub)
    env = dict(os.environ, SNOWFLAKE_URL=url, SNOWFLAKE_ACCOUNT="ACME", SNOWFLAKE_USER="STREAMING_INGEST",
               SNOWFLAKE_ROLE="STREAMING_INGEST", SNOWFLAKE_PRIVATE_KEY_FILE=str(key),
               SSL_CERT_FILE=str(data / "ca.pem"), SS_LOG_LEVEL="warn")
    results = []
    try:
        for n in [int(x) for x in a.channels.split(",")]:
            common = ["--channels", str(n), "--rows", str(a.rows), "--batch", str(a.batch)]
            ours = subprocess.run([a.throughput, "--input", str(rows_file)] + common,
                                  env=env, check=True, capture_output=True, text=True)
            print(ours.stdout, end="")
            o = last_json(ours.stdout)
            sdk = subprocess.run([sys.executable, __file__, "--worker", "--url", url, "--key", str(key),
                                  "--input", str(rows_file)] + common,
                                 env=env, check=True, capture_output=True, text=True)
            s = last_json(sdk.stdout)
            print("official SDK:", json.dumps(s))
            results.append((n, o, s))
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    print()
    print(f"{a.rows} rows per channel, {a.batch} rows per append_rows, same NDJSON rows, same emulator (TLS, sink)")
    print(f"{'channels':>8} | {'ours rows/s':>12} {'SDK rows/s':>12} {'ratio':>6} | {'ours CPU-s/GB':>13} {'SDK CPU-s/GB':>12} {'CPU ratio':>9} | {'ours RSS MB':>11} {'SDK RSS MB':>10}")
    summary = []
    for n, o, s in results:
        r = o["rows_per_s"] / s["rows_per_s"]
        c = o["cpu_s_per_gb"] / s["cpu_s_per_gb"]
        print(f"{n:>8} | {o['rows_per_s']:>12,.0f} {s['rows_per_s']:>12,.0f} {r:>5.2f}x | {o['cpu_s_per_gb']:>13.2f} {s['cpu_s_per_gb']:>12.2f} {c:>8.2f}x | {o['peak_rss_mb']:>11.1f} {s['peak_rss_mb']:>10.1f}")
        summary.append({"channels": n, "ours": o, "official": s, "rows_per_s_ratio": round(r, 2), "cpu_per_row_ratio": round(c, 2)})
    print(json.dumps(summary))
    import shutil
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
