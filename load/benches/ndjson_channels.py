#!/usr/bin/env python3
"""A large NDJSON file through `snowpipe load --channels N` (issue 83, "Measured").

    load/benches/ndjson_channels.sh [--gb 10] [--channels 16] [--file F.ndjson] [--keep]

(the wrapper builds the release binaries; this file needs only Python 3 and `cryptography`.)

The file: --gb GB of NDJSON rows {"ID", "NAME", "NOTE", "QTY"} (about 120 bytes a row),
written once (kept with --keep, reused when it exists at --file). The emulator: one release
`snowpipe-emulator --tls --sink --commit-delay 0s` (counts rows and bytes, stores nothing).
The load: the release `snowpipe load FILE --table EVENTS --channels N` as it ships (the SDK's
pacing: 20 MB/s and 10 requests/s a channel; the default memory budget, 256 MiB), measured
from outside with wait4: wall time, its own user+system CPU, peak RSS. Prints rows/s, MB/s,
CPU-s per GB, peak RSS against the budget, and the sink's row count (must be every row).
"""

import argparse
import json
import os
import pathlib
import ssl
import subprocess
import sys
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "emulator/scripts"))
from emulator_process import prepare, start  # noqa: E402

DB, SCHEMA, TABLE = "BENCH", "PUBLIC", "EVENTS"
DDL = f"""CREATE DATABASE {DB};
CREATE SCHEMA IF NOT EXISTS {DB}.{SCHEMA};
CREATE TABLE {DB}.{SCHEMA}.{TABLE} (ID NUMBER(19,0), NAME VARCHAR, NOTE VARCHAR, QTY NUMBER(10,0));
"""
BUDGET_MB = 256 * 1024 * 1024 / 1e6


def generate(path, gb):
    """Writes about `gb` GB of rows; returns the row count."""
    target = int(gb * 1e9)
    tmp = path.with_suffix(".tmp")
    rows = 0
    written = 0
    with open(tmp, "wb", buffering=8 << 20) as f:
        while written < target:
            block = "".join(
                f'{{"ID":{i},"NAME":"name {i} of the bench","NOTE":"a note about row {i}, '
                f'with some text","QTY":{i % 1000}}}\n'
                for i in range(rows, rows + 100_000)).encode()
            f.write(block)
            written += len(block)
            rows += 100_000
    tmp.rename(path)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=10.0)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--file", help="the NDJSON file (default /tmp/load-ndjson-<gb>gb.ndjson)")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument("--emulator", default=str(REPO / "target/release/snowpipe-emulator"))
    ap.add_argument("--snowpipe", default=str(REPO / "target/release/snowpipe"))
    a = ap.parse_args()
    path = pathlib.Path(a.file or f"/tmp/load-ndjson-{a.gb:g}gb.ndjson")
    made = not path.exists()
    if made:
        t = time.perf_counter()
        generate(path, a.gb)
        print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in "
              f"{time.perf_counter() - t:.0f} s", flush=True)
    size = path.stat().st_size
    with open(path, "rb") as f:
        rows = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(8 << 20), b""))

    w = prepare([a.emulator, a.snowpipe], "lndj-", "load/benches/ndjson_channels.sh")
    (w.dir / "ddl.sql").write_text(DDL)
    proc, url = start([a.emulator, "--tls", "--sink", "--data-dir", w.data, "--ddl",
                       w.dir / "ddl.sql", "--public-key", w.public_key, "--commit-delay", "0s"],
                      w.data / "emulator.log")
    ca = w.data / "ca.pem"
    ctx = ssl.create_default_context(cafile=str(ca))
    env = dict(os.environ, SNOWFLAKE_URL=url, SNOWFLAKE_ACCOUNT="ACME",
               SNOWFLAKE_USER="STREAMING_INGEST", SNOWFLAKE_ROLE="STREAMING_INGEST",
               SNOWFLAKE_PRIVATE_KEY_FILE=str(w.private_key), SSL_CERT_FILE=str(ca),
               RUST_LOG="warn")
    cmd = [a.snowpipe, "load", path, "--database", DB, "--schema", SCHEMA, "--table", TABLE,
           "--no-progress", "--channels", str(a.channels)]
    try:
        out = open(w.dir / "load.out", "w")
        t0 = time.perf_counter()
        p = subprocess.Popen([str(c) for c in cmd], env=env, stdout=out,
                             stderr=open(w.dir / "load.err", "w"))
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        with urllib.request.urlopen(url + "/?channels_limit=1", context=ctx, timeout=30) as r:
            sink = json.load(r)["sink"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    summary = json.loads((w.dir / "load.out").read_text().strip().splitlines()[-1])
    code = os.waitstatus_to_exitcode(status)
    cpu = ru.ru_utime + ru.ru_stime
    peak = ru.ru_maxrss * 1024 / 1e6
    gb = size / 1e9
    result = {
        "file_gb": round(gb, 3), "rows": rows, "exit": code, "summary_rows": summary["rows"],
        "sink_rows": sink["rows"], "channels": a.channels,
        "ranges": summary["per_file"][0].get("ranges", 1),
        "wall_s": round(wall, 2), "rows_per_s": round(rows / wall),
        "mb_per_s": round(size / 1e6 / wall, 1), "cpu_s": round(cpu, 2),
        "cpu_s_per_gb": round(cpu / gb, 2), "peak_rss_mb": round(peak, 1),
        "budget_mb": round(BUDGET_MB, 1),
    }
    print(json.dumps(result))
    print(f"| {gb:.2f} GB NDJSON, {rows:,} rows, --channels {a.channels} | "
          f"{result['rows_per_s']:,} rows/s | {result['mb_per_s']} MB/s | "
          f"{result['cpu_s_per_gb']} CPU-s/GB | peak RSS {peak:.0f} MB (budget {BUDGET_MB:.0f} MB) |")
    if made and not a.keep:
        path.unlink()
    ok = code == 0 and sink["rows"] == rows and summary["rows"] == rows
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
