#!/usr/bin/env python3
"""One Parquet file into one table three ways, back to back, on one emulator (issue 74, item 4).

    benches/load_head_to_head.sh [--rows 1000000] [--file FILE.parquet] [--no-paced] [--load-args ARGS]

(the wrapper creates the venv with `pip install snowpipe-streaming cryptography pyarrow` and
builds the release binaries; this file can also be run directly with that venv's python.)

The file: --rows rows of mixed types written once with pyarrow (seeded, so the same file each
time; kept and reused when it exists): ID int64, QTY int32, SCORE float64, AMOUNT
decimal128(18,2) → NUMBER(18,2), NAME utf8 (2 % nulls) → VARCHAR, SEEN timestamp[µs,
Europe/Paris] → TIMESTAMP_TZ, DAY date32 → DATE, PLACE struct<city, floor> → OBJECT;
row groups of 131,072 rows, snappy.

The emulator: one `snowpipe-emulator --tls --sink --commit-delay 0s`, key-pair auth, in its
own process (sink mode counts rows and NDJSON bytes, stores nothing).

The sides, each its own process, each from process start to its last row committed:
  (a)  `snowpipe load FILE --table EVENTS` (release build): the parquet crate's Arrow reader,
       `Channel::append_record_batch`. Run unpaced (a profile with max_requests_per_second 0
       and max_bytes_per_second 0, as the throughput harness runs the client) and, unless
       --no-paced, again as it ships: the SDK's default per-channel pacing (10 requests/s,
       20 MB/s: Snowflake's per-channel limits) and the default --channels (the file's ranges
       on up to 16 channels, issue 83); during that run the emulator's per-channel
       rows_inserted are sampled every 0.5 s, and each channel's fastest 2 s window (its rows
       times the file's NDJSON bytes per row) is printed: the pace honoured on every channel;
  (b)  `load/examples/parquet_serde_rows.rs` (release): the same reader, each row copied into
       a serde struct (decimal, timestamp and date formatted as text), `append_rows` per
       batch of 8,192 rows; unpaced;
  (c)  the official Python SDK (rowset mode, as benches/official_sdk_head_to_head.py):
       `pyarrow.parquet.ParquetFile.iter_batches(batch_size=--py-batch)`, each batch's
       `to_pylist()` (dicts of int, float, Decimal, str, datetime with its zone, date, dict)
       given to `append_rows` with its offset tokens, retried on ReceiverSaturated /
       MemoryThresholdExceeded; then `wait_for_flush` and `wait_for_commit`.

Measured from outside (os.wait4): wall time from spawn to exit, the process's own user+system
CPU (all its threads; nothing subtracted), peak RSS. Each side's rows are checked twice: its
own count, and the emulator's sink row counter, which must grow by exactly --rows. CPU-s per
GB divides by the file's rows as NDJSON as side (a) writes them (the sink's byte count).
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
import uuid

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "emulator/scripts"))
from emulator_process import prepare, start  # noqa: E402

DB, SCHEMA, TABLE = "BENCH", "PUBLIC", "EVENTS"
PIPE = f"{TABLE}-STREAMING"
DDL = f"""CREATE DATABASE {DB};
CREATE SCHEMA IF NOT EXISTS {DB}.{SCHEMA};
CREATE TABLE {DB}.{SCHEMA}.{TABLE} (
  ID NUMBER(19,0), QTY NUMBER(10,0), SCORE FLOAT, AMOUNT NUMBER(18,2), NAME VARCHAR,
  SEEN TIMESTAMP_TZ, DAY DATE, PLACE OBJECT);
"""


def generate(path, rows, seed=74):
    """Writes the bench's Parquet file (deterministic for a given rows and seed)."""
    import datetime
    import decimal
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    rnd = random.Random(seed)
    words = ["alpine", "summit", "powder", "glacier", "chairlift", "mogul", "piste", "cornice",
             "avalanche", "telemark", "slalom", "gondola", "apres", "freeride", "couloir"]
    ids = list(range(rows))
    qty = [rnd.randrange(0, 1000) for _ in ids]
    score = [rnd.random() * 1000.0 for _ in ids]
    amount = [decimal.Decimal(rnd.randrange(-500_000, 5_000_000)).scaleb(-2) for _ in ids]
    name = [None if rnd.random() < 0.02 else
            f"{rnd.choice(words)} {rnd.choice(words)} #{rnd.randrange(100_000)}" for _ in ids]
    base = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs
    seen = [base + i * 1_000_123 + rnd.randrange(1_000_000) for i in ids]
    day = [datetime.date(2025, 1, 1) + datetime.timedelta(days=rnd.randrange(730)) for _ in ids]
    city = [f"city-{rnd.randrange(500)}" for _ in ids]
    floor = [rnd.randrange(40) for _ in ids]
    table = pa.table({
        "ID": pa.array(ids, pa.int64()),
        "QTY": pa.array(qty, pa.int32()),
        "SCORE": pa.array(score, pa.float64()),
        "AMOUNT": pa.array(amount, pa.decimal128(18, 2)),
        "NAME": pa.array(name, pa.string()),
        "SEEN": pa.array(seen, pa.timestamp("us", tz="Europe/Paris")),
        "DAY": pa.array(day, pa.date32()),
        "PLACE": pa.StructArray.from_arrays(
            [pa.array(city, pa.string()), pa.array(floor, pa.int64())], names=["city", "floor"]),
    })
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, row_group_size=131_072, compression="snappy")
    tmp.rename(path)


def official_worker(a):
    """Runs in its own process: the official SDK loads the file; prints one JSON line."""
    os.environ.setdefault("SS_LOG_LEVEL", "warn")
    import pyarrow.parquet as pq
    from snowflake.ingest.streaming import StreamingIngestClient

    t0 = time.perf_counter()
    props = {
        "account": "ACME", "user": "STREAMING_INGEST", "role": "STREAMING_INGEST",
        "private_key": open(a.key).read(), "url": a.url,
        "max_buffered_kb_for_rowset_mode": "300000", "max_rowset_payload_size_mb": "16",
    }
    client = StreamingIngestClient(f"lh2h-{uuid.uuid4().hex[:8]}", DB, SCHEMA, PIPE,
                                   properties=props)
    ch, _ = client.open_channel("OFFICIAL_SDK")
    saturated = 0
    sent = 0
    for batch in pq.ParquetFile(a.file).iter_batches(batch_size=a.py_batch):
        rows = batch.to_pylist()
        n = len(rows)
        while True:
            try:
                ch.append_rows(rows, start_offset_token=str(sent + 1),
                               end_offset_token=str(sent + n))
                break
            except Exception as e:  # ReceiverSaturated / MemoryThresholdExceeded: retry
                if not any(k in str(e) for k in ("Saturated", "429", "MemoryThreshold")):
                    raise
                saturated += 1
                time.sleep(0.005)
        sent += n
    ch.wait_for_flush(600)
    ch.wait_for_commit(lambda tok: tok is not None and int(tok) >= sent, timeout_seconds=300)
    seconds = time.perf_counter() - t0
    ch.close()
    client.close()
    print(json.dumps({"ok": True, "rows": sent, "seconds": round(seconds, 3),
                      "saturated_retries": saturated}))


def sink_counts(url, ctx):
    with urllib.request.urlopen(url + "/", context=ctx, timeout=30) as r:
        s = json.load(r)["sink"]
    return s["rows"], s["bytes"]


def proc_cpu(pid):
    """User+system CPU seconds of a running process (the emulator's)."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


class PaceSampler:
    """Samples every channel's rows_inserted (GET /) every 0.5 s until stopped."""

    def __init__(self, url, ctx, prefix):
        import threading
        self.url, self.ctx, self.prefix = url, ctx, prefix
        self.samples = []  # (t, {channel: rows})
        self.error = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url + "/?channels_limit=100", context=self.ctx,
                                            timeout=30) as r:
                    chans = json.load(r)["channels"]
                rows = {c["channel_name"]: c["rows_inserted"] for c in chans
                        if c["channel_name"].startswith(self.prefix)}
                self.samples.append((time.perf_counter(), rows))
            except Exception as e:  # noqa: BLE001 (a missed sample only widens a window)
                self.error = repr(e)
            self.stop.wait(0.5)

    def finish(self, bytes_per_row, window=2.0):
        """Each channel's rows and fastest `window`-second rate in MB/s."""
        self.stop.set()
        self.thread.join()
        out = {}
        if self.error:
            print(f"pace sampler: {len(self.samples)} samples, last error {self.error}")
        names = {n for _, rows in self.samples for n in rows}
        for name in sorted(names):
            series = [(t, rows.get(name, 0)) for t, rows in self.samples]
            best = 0.0
            for i, (t0, r0) in enumerate(series):
                for t1, r1 in series[i + 1:]:
                    if t1 - t0 >= window:
                        best = max(best, (r1 - r0) * bytes_per_row / (t1 - t0) / 1e6)
                        break
            out[name] = {"rows": series[-1][1], "max_mb_per_s_2s": round(best, 1)}
        return out


def last_json(text):
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def measured(name, cmd, env, work, url, ctx, emu_pid, want_rows):
    """Runs `cmd` to its end: wall, own CPU and peak RSS (wait4), and the sink's row count."""
    rows0, bytes0 = sink_counts(url, ctx)
    emu0 = proc_cpu(emu_pid)
    out, err = work / f"{name}.out", work / f"{name}.err"
    t0 = time.perf_counter()
    p = subprocess.Popen([str(c) for c in cmd], env=env, stdout=open(out, "w"),
                         stderr=open(err, "w"))
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    rows1, bytes1 = sink_counts(url, ctx)
    emu1 = proc_cpu(emu_pid)
    summary = last_json(out.read_text())
    if p.returncode != 0 or summary is None:
        raise SystemExit(f"{name} failed (exit {p.returncode}):\n{out.read_text()[-2000:]}\n"
                         f"{err.read_text()[-4000:]}")
    own_rows = summary.get("rows")
    landed = rows1 - rows0
    ok = own_rows == want_rows and landed == want_rows and summary.get("ok", True)
    r = {"side": name, "rows": own_rows, "sink_rows": landed, "ndjson_bytes": bytes1 - bytes0,
         "wall_s": round(wall, 3), "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
         "user_s": round(ru.ru_utime, 3), "sys_s": round(ru.ru_stime, 3),
         "peak_rss_mb": round(ru.ru_maxrss * 1024 / 1e6, 1),
         "emulator_cpu_s": round(emu1 - emu0, 3), "all_rows_landed": ok,
         "own_seconds": summary.get("seconds")}
    print(f"{name}: {json.dumps(r)}", flush=True)
    if not ok:
        raise SystemExit(f"{name}: {own_rows} rows reported, {landed} counted by the sink, "
                         f"{want_rows} expected")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--file", help="the Parquet file (default: /tmp/load-h2h-<rows>.parquet; "
                                   "generated when missing)")
    ap.add_argument("--py-batch", type=int, default=10_000,
                    help="rows per pyarrow batch and official append_rows call")
    ap.add_argument("--rust-batch", type=int, default=8192,
                    help="rows per Parquet batch and append_rows call on side (b)")
    ap.add_argument("--no-paced", action="store_true",
                    help="skip the run of `snowpipe load` as it ships (default pacing)")
    ap.add_argument("--sides", default="a,b,c",
                    help="the sides to run besides the paced one: a, b, c (comma-separated)")
    ap.add_argument("--load-args", default="",
                    help="more arguments for `snowpipe load` (e.g. \"--max-client-lag 50ms\")")
    ap.add_argument("--emulator", default=str(REPO / "target/release/snowpipe-emulator"))
    ap.add_argument("--snowpipe", default=str(REPO / "target/release/snowpipe"))
    ap.add_argument("--serde-rows", default=str(REPO / "target/release/examples/parquet_serde_rows"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--key", help=argparse.SUPPRESS)
    a = ap.parse_args()
    path = pathlib.Path(a.file or f"/tmp/load-h2h-{a.rows}.parquet")
    if a.worker:
        a.file = str(path)
        return official_worker(a)

    if not path.exists():
        t = time.perf_counter()
        generate(path, a.rows)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
    import pyarrow.parquet as pq
    n_rows = pq.ParquetFile(path).metadata.num_rows
    if n_rows != a.rows:
        raise SystemExit(f"{path} holds {n_rows} rows, not --rows {a.rows}")

    sides = set(a.sides.split(","))
    binaries = [a.emulator, a.snowpipe] + ([a.serde_rows] if "b" in sides else [])
    w = prepare(binaries, "lh2h-",
                "benches/load_head_to_head.sh (it builds them)")
    work, data, key, pub = w.dir, w.data, w.private_key, w.public_key
    (work / "ddl.sql").write_text(DDL)
    proc, url = start([a.emulator, "--tls", "--sink", "--data-dir", data, "--ddl",
                       work / "ddl.sql", "--public-key", pub, "--commit-delay", "0s"],
                      data / "emulator.log")
    ca = data / "ca.pem"
    ctx = ssl.create_default_context(cafile=str(ca))
    env = dict(os.environ, SNOWFLAKE_URL=url, SNOWFLAKE_ACCOUNT="ACME",
               SNOWFLAKE_USER="STREAMING_INGEST", SNOWFLAKE_ROLE="STREAMING_INGEST",
               SNOWFLAKE_PRIVATE_KEY_FILE=str(key), SSL_CERT_FILE=str(ca), SS_LOG_LEVEL="warn",
               RUST_LOG="warn")
    profile = work / "unpaced.json"
    profile.write_text(json.dumps({
        "account": "ACME", "user": "STREAMING_INGEST", "role": "STREAMING_INGEST", "url": url,
        "private_key_file": str(key), "root_ca_file": str(ca),
        "max_requests_per_second": 0, "max_bytes_per_second": 0}))
    load = [a.snowpipe, "load", path, "--database", DB, "--schema", SCHEMA, "--table", TABLE,
            "--no-progress"] + a.load_args.split()
    results = {}
    try:
        m = lambda name, cmd: measured(name, cmd, env, work, url, ctx, proc.pid, a.rows)  # noqa: E731
        if "a" in sides:
            results["a"] = m("a: snowpipe load", load + ["--channel", "LOAD_UNPACED",
                                                        "--profile", profile])
        if "b" in sides:
            results["b"] = m("b: serde rows", [a.serde_rows, path, "--database", DB, "--schema",
                                               SCHEMA, "--table", TABLE, "--batch",
                                               str(a.rust_batch), "--unpaced"])
        if "c" in sides:
            results["c"] = m("c: official SDK", [sys.executable, __file__, "--worker", "--url",
                                                 url, "--key", key, "--file", path, "--rows",
                                                 str(a.rows), "--py-batch", str(a.py_batch)])
        if not a.no_paced:
            sampler = PaceSampler(url, ctx, "LOAD_")
            try:
                results["a_paced"] = m("a: snowpipe load as it ships", load)
            finally:
                pace = sampler.finish(results.get("a_paced", {}).get("ndjson_bytes", 0) / a.rows)
            print("per-channel pace (fastest 2 s window, MB/s as NDJSON):", json.dumps(pace))
            results["a_paced"]["channels"] = pace
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    first = next(iter(results.values()))
    gb = first["ndjson_bytes"] / 1e9
    print()
    print(f"{a.rows:,} rows, {path.stat().st_size / 1e6:.1f} MB of Parquet, "
          f"{gb * 1e3:.1f} MB as NDJSON (the sink's bytes: the CPU-s/GB denominator for all)")
    labels = {"a": "(a) snowpipe load (append_record_batch), unpaced",
              "b": "(b) our SDK, serde rows (append_rows), unpaced",
              "c": "(c) official Python SDK, pyarrow to_pylist + append_rows",
              "a_paced": "(a) snowpipe load as it ships (paced 20 MB/s a channel, default --channels)"}
    print(f"| side | rows/s | wall s | CPU-s | CPU-s per GB | peak RSS MB | emulator CPU-s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k, r in results.items():
        r["rows_per_s"] = round(a.rows / r["wall_s"])
        r["cpu_s_per_gb"] = round(r["cpu_s"] / gb, 2)
        print(f"| {labels[k]} | {r['rows_per_s']:,} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | "
              f"{r['cpu_s_per_gb']:.2f} | {r['peak_rss_mb']:.0f} | {r['emulator_cpu_s']:.2f} |")
    ratios = {}
    for x, y in (("a", "c"), ("a_paced", "c"), ("a", "b")):
        if x in results and y in results:
            ratios[f"{x}/{y} rows/s"] = round(results[x]["rows_per_s"] / results[y]["rows_per_s"], 2)
            ratios[f"{x}/{y} CPU"] = round(results[x]["cpu_s"] / results[y]["cpu_s"], 3)
    print()
    print("ratios:", ", ".join(f"{k} {v}×" for k, v in ratios.items()))
    print("targets: a_paced/c rows/s ≥ 5×, a_paced/c CPU ≤ 0.2× (issue 83); a/b rows/s ≥ 1.5×")
    print(json.dumps({"rows": a.rows, "ndjson_bytes": first["ndjson_bytes"],
                      "results": results, "ratios": ratios}))
    import shutil
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
