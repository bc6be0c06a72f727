#!/usr/bin/env python3
"""Conformance check: the official Snowpipe Streaming Python SDK streams into the emulator.

Run by hand (not in CI; it needs PyPI):

    python3 -m venv /tmp/sdk-venv
    /tmp/sdk-venv/bin/pip install snowpipe-streaming cryptography
    cargo build -p snowpipe-emulator
    /tmp/sdk-venv/bin/python emulator/scripts/official_sdk_check.py [--rows 10000]

What it does:
  1. generates an RSA key pair (PKCS#8 private key, SPKI public key);
  2. starts `snowpipe-emulator --tls --data-dir DIR --ddl apps/src/ski_resort/sql/setup.sql
     --public-key PUB --commit-delay 0.5s` and reads `listening on https://127.0.0.1:PORT`;
  3. with SSL_CERT_FILE=DIR/ca.pem, creates a StreamingIngestClient on
     STREAMING_INGEST.STREAMING_INGEST.LIFT_RIDE_PIPE (properties that keep the SDK in rowset mode),
     opens a channel, appends the rows with offset tokens 1..N in batches, waits until the
     committed offset token is N, closes the channel, drops a second channel, closes the client,
     then appends 100 rows through the elastic channel of the default pipe (from_table);
     With --kill-restart it instead commits half the rows, gets a quarter more accepted, kills
     the emulator with SIGKILL, restarts it on the same port and data directory, and resumes
     with a new client from the committed offset token;
  4. appends one row with Python bytes (CA FE) to the BINARY column of a table of its own
     (BYTES_CHECK, its default pipe): the SDK encodes bytes as `:pipe-info`'s
     binary_input_format says, so they must land as CA FE whichever format the emulator runs
     with (`--binary-format hex|base64`, passed through);
  5. checks with `snowpipe-emulator query` that exactly those rows landed (count, distinct ids,
     min/max, a sample row) and prints a JSON summary. Exit status 0 means success.
"""

import argparse
import datetime
import json
import os
import pathlib
import sys
import time
import uuid

from emulator_process import REPO, prepare, query, start

TABLE = '"STREAMING_INGEST.STREAMING_INGEST.LIFT_RIDE"'


BYTES_DDL = """
USE DATABASE STREAMING_INGEST; USE SCHEMA STREAMING_INGEST;
CREATE OR REPLACE TABLE BYTES_CHECK (ID NUMBER, B BINARY);
"""


def start_emulator(binary, data_dir, pub_path, commit_delay, extra, with_ddl=True):
    args = [
        str(binary), "--tls", "--data-dir", str(data_dir),
        "--public-key", str(pub_path), "--commit-delay", commit_delay,
        "--request-log", str(data_dir / "requests.jsonl"),
    ] + extra
    if with_ddl:
        bytes_ddl = data_dir / "bytes_check.sql"
        bytes_ddl.write_text(BYTES_DDL)
        args += ["--ddl", str(REPO / "apps/src/ski_resort/sql/setup.sql"), "--ddl", str(bytes_ddl)]
    # Appended to: a restart (--kill-restart) keeps the first run's log.
    return start(args, data_dir / "emulator.log", "a")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--binary", default=str(REPO / "target/debug/snowpipe-emulator"))
    ap.add_argument("--commit-delay", default="0.5s")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--flush-each-batch", action="store_true",
                    help="initiate_flush() after every batch, so each batch is its own request")
    ap.add_argument("--kill-restart", action="store_true",
                    help="kill -9 the emulator mid-stream, restart it, resume from the committed token")
    ap.add_argument("--faults", help="fault plan (JSON) passed to the emulator")
    ap.add_argument("--binary-format", choices=["hex", "base64"],
                    help="pass --binary-format to the emulator (default: the emulator's, hex)")
    ap.add_argument("--idempotent-retries", action="store_true",
                    help="pass --idempotent-retries (needed to survive lost_ack faults)")
    args = ap.parse_args()
    binary = pathlib.Path(args.binary)
    w = prepare([binary], "emu-sdk-check-", "cargo build -p snowpipe-emulator")
    work, data_dir, private_key, pub_path = w.dir, w.data, w.private_pem, w.public_key
    extra = []
    if args.faults:
        extra += ["--faults", str(pathlib.Path(args.faults).resolve()), "--seed", "7"]
    if args.idempotent_retries:
        extra.append("--idempotent-retries")
    if args.binary_format:
        extra += ["--binary-format", args.binary_format]
    summary_binary_format = args.binary_format or "hex (default)"
    proc, url = start_emulator(binary, data_dir, pub_path, args.commit_delay, extra)
    summary = {"url": url, "data_dir": str(data_dir), "rows_sent": args.rows,
               "binary_format": summary_binary_format}
    try:
        # rustls in the SDK reads SSL_CERT_FILE when it builds its HTTP client.
        os.environ["SSL_CERT_FILE"] = str(data_dir / "ca.pem")
        os.environ.setdefault("SS_LOG_LEVEL", "warn")
        from snowflake.ingest.streaming import StreamingIngestClient

        props = {
            "account": "ACME",
            "user": "STREAMING_INGEST",
            "private_key": private_key,
            "url": url,
            "role": "STREAMING_INGEST",
            "max_buffered_kb_for_rowset_mode": "300000",
            "max_rowset_payload_size_mb": "16",
        }
        t0 = time.time()
        client = StreamingIngestClient(
            "sdk-check", "STREAMING_INGEST", "STREAMING_INGEST", "LIFT_RIDE_PIPE", properties=props
        )
        channel, status = client.open_channel("sdk_check_channel")
        summary["open_status"] = status.status_code
        summary["open_committed_token"] = status.latest_committed_offset_token
        def append_range(ch, first, last):
            """Appends rows with offset tokens first..last (inclusive) in batches."""
            base = datetime.datetime(2026, 1, 1, 9, 0, 0)
            sent = first - 1
            while sent < last:
                n = min(args.batch, last - sent)
                batch = [
                    {
                        "TXID": str(uuid.UUID(int=sent + i + 1)),
                        "RFID": f"0x{sent + i + 1:012x}",
                        "RESORT": "Emulator Peak",
                        "LIFT": f"Lift {(sent + i) % 7}",
                        "RIDE_TIME": (base + datetime.timedelta(seconds=sent + i)).isoformat(),
                        "ACTIVATION_DAY_COUNT": (sent + i) % 5 + 1,
                    }
                    for i in range(n)
                ]
                ch.append_rows(batch, start_offset_token=str(sent + 1), end_offset_token=str(sent + n))
                sent += n
                if args.flush_each_batch:
                    ch.initiate_flush()

        if args.kill_restart:
            # Commit the first half, get a quarter accepted but (likely) not committed, then
            # kill -9 the emulator, restart it on the same port and data dir, and resume with
            # a new client from the committed offset token (exactly-once by offset tokens).
            half, three_q = args.rows // 2, args.rows * 3 // 4
            append_range(channel, 1, half)
            channel.wait_for_commit(lambda tok: tok is not None and int(tok) >= half, timeout_seconds=60)
            append_range(channel, half + 1, three_q)
            channel.wait_for_flush(60)
            proc.kill()
            proc.wait()
            client.close(wait_for_flush=False, timeout_seconds=5)
            port = url.rsplit(":", 1)[1]
            proc, url2 = start_emulator(binary, data_dir, pub_path, args.commit_delay,
                                        ["--port", port], with_ddl=False)
            assert url2 == url, (url, url2)
            client = StreamingIngestClient(
                "sdk-check-2", "STREAMING_INGEST", "STREAMING_INGEST", "LIFT_RIDE_PIPE", properties=props
            )
            channel, status = client.open_channel("sdk_check_channel")
            resume = int(status.latest_committed_offset_token)
            summary["kill_restart"] = {"committed_before_kill": half, "accepted_before_kill": three_q,
                                       "committed_after_restart": resume}
            append_range(channel, resume + 1, args.rows)
        else:
            append_range(channel, 1, args.rows)
        t_appended = time.time()
        target = args.rows
        channel.wait_for_commit(lambda tok: tok is not None and int(tok) >= target, timeout_seconds=60)
        t_committed = time.time()
        st = channel.get_channel_status()
        summary["final_status"] = {
            "status_code": st.status_code,
            "latest_committed_offset_token": st.latest_committed_offset_token,
            "rows_inserted_count": st.rows_inserted_count,
            "rows_parsed_count": st.rows_parsed_count,
            "rows_error_count": st.rows_error_count,
        }
        channel.close()
        # A second channel exercising open with an offset token and drop.
        ch2, st2 = client.open_channel("sdk_check_drop", offset_token="41")
        summary["second_open_token"] = st2.latest_committed_offset_token
        ch2.append_row({"TXID": "drop-me", "RESORT": "x"}, offset_token="42")
        ch2.wait_for_commit(lambda tok: tok == "42", timeout_seconds=30)
        ch2.close(drop=True)
        # (The SDK serves this from its client-side cache, so the dropped channel may still show.)
        summary["tokens_after_drop"] = client.get_latest_committed_offset_tokens(["sdk_check_channel", "sdk_check_drop"])
        client.close()
        # Table mode: the default pipe LIFT_RIDE-STREAMING and its implicit ELASTIC channel.
        table_client = StreamingIngestClient.from_table(
            "sdk-check-elastic", "STREAMING_INGEST", "STREAMING_INGEST", "LIFT_RIDE", properties=props
        )
        elastic = table_client.get_elastic_channel()
        elastic.append_rows_with_wait(
            [{"TXID": f"elastic-{i}", "RESORT": "elastic"} for i in range(100)], "elastic-batch-1"
        ).result(timeout=30)
        elastic.wait_for_flush(30)
        table_client.close()
        # Bytes through the BINARY column: the SDK renders them per :pipe-info.
        bytes_client = StreamingIngestClient(
            "sdk-check-bytes", "STREAMING_INGEST", "STREAMING_INGEST", "BYTES_CHECK-STREAMING",
            properties=props,
        )
        bytes_channel, _ = bytes_client.open_channel("bytes_check")
        bytes_channel.append_row({"ID": 1, "B": b"\xca\xfe"}, offset_token="1")
        bytes_channel.wait_for_commit(lambda tok: tok == "1", timeout_seconds=30)
        bytes_channel.close()
        bytes_client.close()
        summary["seconds_to_append"] = round(t_appended - t0, 2)
        summary["seconds_to_commit"] = round(t_committed - t0, 2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    count, distinct, lo, hi = query(
        binary, data_dir,
        f"SELECT COUNT(*), COUNT(DISTINCT TXID), MIN(ACTIVATION_DAY_COUNT), MAX(ACTIVATION_DAY_COUNT) FROM {TABLE} WHERE TXID <> 'drop-me' AND RESORT <> 'elastic'",
    )[0]
    sample = query(binary, data_dir, f"SELECT * FROM {TABLE} WHERE RFID = '0x000000000001'")
    dropped = query(binary, data_dir, f"SELECT COUNT(*) FROM {TABLE} WHERE TXID = 'drop-me'")[0][0]
    elastic_rows = query(binary, data_dir, f"SELECT COUNT(*) FROM {TABLE} WHERE RESORT = 'elastic'")[0][0]
    summary["landed"] = {"elastic_rows": elastic_rows, "rows": count, "distinct_txid": distinct, "min_days": lo, "max_days": hi,
                         "sample": sample, "drop_channel_rows": dropped}
    summary["bytes_hex"] = query(binary, data_dir, "SELECT HEX(B) FROM \"STREAMING_INGEST.STREAMING_INGEST.BYTES_CHECK\"")
    summary["channels_on_server"] = [r[0] for r in query(binary, data_dir, "SELECT channel FROM _emulator_channels WHERE channel NOT IN ('ELASTIC', 'bytes_check') ORDER BY 1")]
    requests = [json.loads(l) for l in (data_dir / "requests.jsonl").read_text().splitlines()]
    by_endpoint = {}
    for r in requests:
        by_endpoint[r["endpoint"]] = by_endpoint.get(r["endpoint"], 0) + 1
    summary["requests"] = by_endpoint
    summary["non_2xx"] = [(r["endpoint"], r["status"], r.get("error_code"), r.get("retry_count")) for r in requests if not 200 <= r["status"] < 300]
    summary["faults_fired"] = [(r["endpoint"], f) for r in requests for f in r.get("faults", [])]

    # An elastic channel is at-least-once: the server dedupes nothing, so an elastic append
    # whose acknowledgement was lost (a lost_ack fault) and that the SDK retried is applied
    # twice. Expect 100 rows per elastic append the emulator applied (answered 200, or its
    # answer dropped by lost_ack).
    elastic_applied = sum(
        1 for r in requests
        if r["endpoint"] == "append_rows" and r.get("channel") == "ELASTIC"
        and (r["status"] == 200 or any("lost_ack" in f for f in r.get("faults", [])))
    )
    summary["landed"]["elastic_appends_applied"] = elastic_applied
    ok = (
        count == args.rows and distinct == args.rows and dropped == 1
        and elastic_rows == 100 * elastic_applied and elastic_applied >= 1
        and summary["final_status"]["latest_committed_offset_token"] == str(args.rows)
        and summary["final_status"]["rows_inserted_count"] == args.rows
        and summary["final_status"]["rows_error_count"] == 0
        and summary["channels_on_server"] == ["sdk_check_channel"]
        and summary["bytes_hex"] == [["CAFE"]]
    )
    summary["result"] = "PASS" if ok else "FAIL"
    print(json.dumps(summary, indent=2, default=str))
    if not args.keep and ok:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
