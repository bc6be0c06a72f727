#!/usr/bin/env python3
"""The official Snowpipe Streaming Python SDK in file mode against the emulator.

Run by hand (not in CI; it installs the SDK from PyPI): `emulator/scripts/official_sdk_file_mode.sh`.

The official SDK leaves row mode on its own: for a flush batch over
`max_buffered_kb_for_rowset_mode` (1 MiB by default), after repeated 429s, or when a rows
request is answered 429/503 `SWITCH_TO_FILE_MODE` (docs/protocol-wire.md §4.6). It then uploads
encrypted zstd files to the stage `:pipe-info` names and registers them with
`POST …/filebuffer`. This check drives it there twice, with default client properties:

  --mode load   many channels, each appending batches of ~1 KB rows larger than 1 MiB, plus
                an elastic channel (table mode) doing the same: file mode by size;
  --mode fault  small batches, and a fault plan that answers the first rows request 429
                SWITCH_TO_FILE_MODE, fails one upload (500), slows two, and loses the answer to
                one registration (the emulator runs with --idempotent-retries): file mode by
                the server's word, through a failed upload and a replayed registration.

Each time it waits until every channel's committed offset token is its last, then checks
through the SQL API (POST /api/v2/statements with a key-pair JWT) that every row landed exactly
once, that files were uploaded and registered (the request log), that no channel went invalid
(the SDK raises on an invalid channel, and every channel's status is SUCCESS), and that the
stage is empty afterwards (`GET /`: every file landed and was removed). Exit status 0: PASS.
"""

import argparse
import base64
import hashlib
import json
import os
import pathlib
import ssl
import sys
import threading
import time
import urllib.request
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import official_sdk_check as base  # noqa: E402
from emulator_process import prepare  # noqa: E402

DB, SCHEMA, TABLE = "STREAMING_INGEST", "STREAMING_INGEST", "FILE_MODE"
PIPE = f"{TABLE}-STREAMING"
QUALIFIED = f"{DB}.{SCHEMA}.{TABLE}"
DDL = f"""
CREATE DATABASE IF NOT EXISTS {DB}; USE DATABASE {DB};
CREATE SCHEMA IF NOT EXISTS {SCHEMA}; USE SCHEMA {SCHEMA};
CREATE OR REPLACE TABLE {TABLE} (TXID VARCHAR, CH VARCHAR, SEQ NUMBER, PAYLOAD VARCHAR);
"""

FAULTS = {"rules": [
    {"endpoint": "append_rows", "action": {"kind": "status", "status": 429, "code": "SWITCH_TO_FILE_MODE",
                                           "message": "switch to file mode (injected)"}, "max_times": 1},
    {"endpoint": "stage_upload", "action": {"kind": "status", "status": 500, "code": "InternalError"},
     "after": 1, "max_times": 1},
    {"endpoint": "stage_upload", "action": {"kind": "latency", "ms": 1500}, "after": 3, "max_times": 2},
    {"endpoint": "file_buffer", "action": {"kind": "lost_ack"}, "after": 2, "max_times": 1},
]}


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def keypair_jwt(private_pem, account="ACME", user="STREAMING_INGEST"):
    """A Snowflake key-pair JWT (RS256), as the SQL API takes it."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    fp = base64.b64encode(hashlib.sha256(der).digest()).decode()
    now = int(time.time())
    claims = {"iss": f"{account}.{user}.SHA256:{fp}", "sub": f"{account}.{user}", "iat": now, "exp": now + 3000}
    head = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64url(sig)}"


class Api:
    """The emulator's SQL API and `GET /`, over TLS with its CA."""

    def __init__(self, url, ca, private_pem):
        self.url, self.private_pem = url, private_pem
        self.ctx = ssl.create_default_context(cafile=str(ca))

    def sql(self, statement):
        req = urllib.request.Request(
            self.url + "/api/v2/statements",
            data=json.dumps({"statement": statement, "timeout": 60}).encode(),
            headers={"Authorization": "Bearer " + keypair_jwt(self.private_pem),
                     "X-Snowflake-Authorization-Token-Type": "KEYPAIR_JWT",
                     "Content-Type": "application/json", "Accept": "application/json"},
            method="POST")
        with urllib.request.urlopen(req, context=self.ctx, timeout=120) as r:
            return json.load(r)["data"]

    def status(self):
        with urllib.request.urlopen(self.url + "/", context=self.ctx, timeout=30) as r:
            return json.load(r)


def row(channel, seq, pad):
    return {"TXID": f"{channel}:{seq}", "CH": channel, "SEQ": seq, "PAYLOAD": pad}


def append_all(ch, name, rows, batch, pad, pace):
    """Appends rows 1..rows with their offset tokens, `pace` seconds apart, backing off while
    the SDK is saturated."""
    sent = 0
    while sent < rows:
        n = min(batch, rows - sent)
        data = [row(name, sent + i + 1, pad) for i in range(n)]
        while True:
            try:
                ch.append_rows(data, start_offset_token=str(sent + 1), end_offset_token=str(sent + n))
                break
            except Exception as e:  # ReceiverSaturated: the SDK wants the caller to back off
                if "Saturated" not in str(e):
                    raise
                time.sleep(0.2)
        sent += n
        time.sleep(pace)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["load", "fault"], required=True)
    ap.add_argument("--binary", default=str(base.REPO / "target/release/snowpipe-emulator"))
    ap.add_argument("--channels", type=int, default=None, help="load: 24; fault: 4")
    ap.add_argument("--rows", type=int, default=None, help="rows per channel (load: 6000; fault: 3000)")
    ap.add_argument("--batch", type=int, default=None, help="rows per append_rows (load: 2000; fault: 100)")
    ap.add_argument("--row-bytes", type=int, default=None, help="about this many bytes a row (load: 1000; fault: 200)")
    ap.add_argument("--pace", type=float, default=None,
                    help="seconds between a channel's appends (load: 0; fault: 0.25, so flushes follow the switch)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds to wait for the commits")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    load = args.mode == "load"
    channels = args.channels or (24 if load else 4)
    rows = args.rows or (6000 if load else 3000)
    batch = args.batch or (2000 if load else 100)
    pace = args.pace if args.pace is not None else (0.0 if load else 0.25)
    pad = "x" * max(0, (args.row_bytes or (1000 if load else 200)) - 70)
    binary = pathlib.Path(args.binary)
    w = prepare([binary], "emu-sdk-file-mode-", "cargo build --release -p snowpipe-emulator")
    work, data_dir, private_key, pub_path = w.dir, w.data, w.private_pem, w.public_key
    ddl = work / "file_mode.sql"
    ddl.write_text(DDL)
    extra = ["--ddl", str(ddl)]
    if not load:
        plan = work / "faults.json"
        plan.write_text(json.dumps(FAULTS))
        extra += ["--faults", str(plan), "--seed", "7", "--idempotent-retries"]
    proc, url = base.start_emulator(pathlib.Path(binary), data_dir, pub_path, "0.5s", extra)
    api = Api(url, data_dir / "ca.pem", private_key)
    names = [f"file_mode_{i}" for i in range(channels)]
    summary = {"mode": args.mode, "url": url, "channels": channels, "rows_per_channel": rows,
               "rows_per_append": batch, "row_bytes": len(json.dumps(row("file_mode_0", 1, pad)))}
    errors = []
    t0 = time.time()
    try:
        os.environ["SSL_CERT_FILE"] = str(data_dir / "ca.pem")
        os.environ.setdefault("SS_LOG_LEVEL", "warn")
        from snowflake.ingest.streaming import StreamingIngestClient

        props = {"account": "ACME", "user": "STREAMING_INGEST", "private_key": private_key, "url": url,
                 "role": "STREAMING_INGEST", "enable_telemetry_reporting": "false"}
        client = StreamingIngestClient("file-mode", DB, SCHEMA, PIPE, properties=props)
        opened = [client.open_channel(n)[0] for n in names]

        def feed(ch, name):
            try:
                append_all(ch, name, rows, batch, pad, pace)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{name}: {e}")

        threads = [threading.Thread(target=feed, args=(c, n)) for c, n in zip(opened, names)]
        elastic_rows = rows if load else 0
        if load:
            table_client = StreamingIngestClient.from_table("file-mode-elastic", DB, SCHEMA, TABLE, properties=props)
            elastic = table_client.get_elastic_channel()
            def feed_elastic():
                try:
                    for start in range(0, elastic_rows, batch):
                        data = [row("ELASTIC", start + i + 1, pad) for i in range(min(batch, elastic_rows - start))]
                        elastic.append_rows_with_wait(data, f"elastic-{start}").result(timeout=args.timeout)
                    elastic.wait_for_flush(args.timeout)
                except Exception as e:  # noqa: BLE001
                    errors.append(f"ELASTIC: {e}")
            threads.append(threading.Thread(target=feed_elastic))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        summary["seconds_to_append"] = round(time.time() - t0, 1)
        for ch, name in zip(opened, names):
            try:
                ch.wait_for_commit(lambda tok: tok is not None and int(tok) >= rows, timeout_seconds=args.timeout)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{name}: {e}")
        summary["seconds_to_commit"] = round(time.time() - t0, 1)
        statuses = {n: ch.get_channel_status().status_code for ch, n in zip(opened, names)}
        summary["sdk_channel_status"] = sorted(set(statuses.values()))
        for ch in opened:
            ch.close()
        client.close()
        if load:
            table_client.close()
        # Let the last commits (and the elastic channel's) reach the table.
        time.sleep(2)

        landed = api.sql(f"SELECT CH, COUNT(*), COUNT(DISTINCT SEQ), MIN(SEQ), MAX(SEQ) FROM {QUALIFIED} GROUP BY CH ORDER BY CH")
        per = {r[0]: (int(r[1]), int(r[2])) for r in landed if int(r[3]) == 1 and int(r[4]) == int(r[1])}
        want = {n: (rows, rows) for n in names}
        if load:
            want["ELASTIC"] = (elastic_rows, elastic_rows)
        summary["landed"] = {k: {"rows": v[0], "distinct": v[1]} for k, v in per.items()}
        status = api.status()
        summary["stage"] = status["stage"]
        summary["server_channels"] = sorted({c["channel_status_code"] for c in status["channels"]})
        summary["row_errors"] = sum(c["rows_error_count"] for c in status["channels"])
        requests = [json.loads(line) for line in (data_dir / "requests.jsonl").read_text().splitlines()]
        by = {}
        for r in requests:
            k = (r["endpoint"], r["status"])
            by[f"{k[0]} {k[1]}"] = by.get(f"{k[0]} {k[1]}", 0) + 1
        summary["requests"] = by
        summary["faults_fired"] = sorted({f for r in requests for f in r.get("faults", [])})
        uploads = sum(1 for r in requests if r["endpoint"] == "stage_upload" and r["status"] == 200)
        registrations = sum(1 for r in requests if r["endpoint"] == "file_buffer" and r["status"] == 200)
        checks = {
            "every row landed exactly once": per == want and summary["row_errors"] == 0,
            "files were uploaded and registered": uploads > 0 and registrations > 0,
            "no channel went invalid": not errors and summary["sdk_channel_status"] == ["SUCCESS"]
            and summary["server_channels"] == ["SUCCESS"],
            "the stage is empty": status["stage"]["files"] == 0 and status["stage"]["expired_files"] == 0,
        }
        if not load:
            checks["the faults fired"] = len(summary["faults_fired"]) == len(FAULTS["rules"])
        summary["checks"] = checks
        summary["errors"] = errors[:10]
        ok = all(checks.values())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    summary["result"] = "PASS" if ok else "FAIL"
    print(json.dumps(summary, indent=2, default=str))
    if ok and not args.keep:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
