#!/usr/bin/env python3
"""End-to-end check of python_peer.py, run by hand (not in CI; it needs PyPI):

    python3 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install -r kafka/lab/benches/requirements.txt
    cargo build -p snowpipe-emulator
    /tmp/peer-venv/bin/python kafka/lab/benches/python_peer_check.py [--messages 20000] [--partitions 8]
        [--resume] [--sink] [--commit-delay 1s] [--compression none|lz4|zstd]
        [--sdk-property KEY=VALUE]... [--binary target/debug/snowpipe-emulator] [--keep]

  1. starts librdkafka's mock cluster (3 brokers) in this process, through ctypes on the
     librdkafka that confluent-kafka bundles (the mock has no CreateTopics and auto-creates
     topics with 4 partitions, so the topic is made with rd_kafka_mock_topic_create);
  2. produces --messages JSON values of ~1 KB ({"id", "kind", "amount", "pad"}) round-robin
     over the partitions (the mock keeps 5 MiB of message sets per partition, as stored:
     --compression lz4 fits ~20x more of these compressible values);
  3. starts `snowpipe-emulator --tls` with DEMO.KAFKA.EVENTS (default pipe EVENTS-STREAMING),
     writes the profile.json python_peer.py documents and runs it (--resume: twice, the first
     run stopping half way, the second resuming from the committed offset tokens);
  4. checks with `snowpipe-emulator query` that every message landed exactly once (not with
     --sink, where the emulator stores nothing) and prints a JSON summary. Exit 0 = PASS.
"""

import argparse
import ctypes
import glob
import json
import pathlib
import shutil
import subprocess
import sys
import time

import confluent_kafka

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "emulator/scripts"))
from emulator_process import prepare, query, start  # noqa: E402

DDL = """CREATE DATABASE IF NOT EXISTS DEMO; CREATE SCHEMA IF NOT EXISTS DEMO.KAFKA;
CREATE OR REPLACE TABLE DEMO.KAFKA.EVENTS (ID NUMBER, KIND VARCHAR, AMOUNT NUMBER, PAD VARCHAR);
"""
TOPIC, GROUP = "events", "peer"


def mock_cluster(brokers, topic, partitions):
    """librdkafka's mock cluster with `topic` of `partitions` partitions: (bootstraps, keep-alive)."""
    libdir = pathlib.Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
    lib = ctypes.CDLL(glob.glob(str(libdir / "librdkafka*.so*"))[0])
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
    lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_topic_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    err = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    lib.rd_kafka_conf_set(conf, b"log_level", b"4", err, 512)  # quiet: it has no bootstrap.servers
    rk = lib.rd_kafka_new(0, conf, err, 512)  # a producer handle that owns the mock cluster
    mc = lib.rd_kafka_mock_cluster_new(rk, brokers)
    if not mc:
        raise SystemExit("cannot start the mock cluster: " + err.value.decode())
    if lib.rd_kafka_mock_topic_create(mc, topic.encode(), partitions, 1) != 0:
        raise SystemExit("cannot create the topic on the mock cluster")
    return lib.rd_kafka_mock_cluster_bootstraps(mc).decode(), (lib, rk, mc)


def produce(bootstraps, n, partitions, compression):
    p = confluent_kafka.Producer({"bootstrap.servers": bootstraps, "linger.ms": 20,
                                  "compression.type": compression})
    kinds = ["view", "click", "buy"]
    value_bytes = 0
    for i in range(1, n + 1):
        v = json.dumps({"id": i, "kind": kinds[i % 3], "amount": i % 100, "pad": "x" * 960}).encode()
        value_bytes += len(v)
        while True:
            try:
                p.produce(TOPIC, v, partition=i % partitions)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    if p.flush(60) != 0:
        raise SystemExit("could not produce every message")
    return value_bytes


def start_emulator(binary, work, pub, commit_delay, sink):
    (work / "events.sql").write_text(DDL)
    cmd = [str(binary), "--tls", "--data-dir", str(work / "data"), "--ddl", str(work / "events.sql"),
           "--public-key", str(pub), "--commit-delay", commit_delay,
           "--request-log", str(work / "requests.jsonl")] + (["--sink"] if sink else [])
    return start(cmd, work / "emulator.log")


def run_peer(bootstraps, profile, ca, expect, log, extra=()):
    cmd = [sys.executable, str(HERE / "python_peer.py"), "--brokers", bootstraps, "--topic", TOPIC,
           "--group", GROUP, "--database", "DEMO", "--schema", "KAFKA", "--pipe", "EVENTS-STREAMING",
           "--expect", str(expect), "--profile", str(profile), "--ca", str(ca), *extra]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=open(log, "a"), text=True, timeout=600)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise SystemExit(f"python_peer.py failed ({out.returncode}); see {log}")
    return json.loads(lines[-1]), len(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--binary", default=str(REPO / "target/debug/snowpipe-emulator"))
    ap.add_argument("--commit-delay", default="1s")
    ap.add_argument("--compression", default="none",
                    help="producer compression.type; lz4 fits far more than 5 MiB of values per partition")
    ap.add_argument("--sink", action="store_true", help="emulator --sink: measure only, no landing check")
    ap.add_argument("--resume", action="store_true", help="stop the peer half way and start it again")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--sdk-property", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra official-SDK property for profile.json (repeatable)")
    args = ap.parse_args()

    work = prepare([args.binary], "python-peer-check-", "cargo build -p snowpipe-emulator").dir

    bootstraps, _keep_alive = mock_cluster(3, TOPIC, args.partitions)
    t0 = time.time()
    value_bytes = produce(bootstraps, args.messages, args.partitions, args.compression)
    summary = {"work": str(work), "brokers": bootstraps, "messages": args.messages,
               "partitions": args.partitions, "value_bytes": value_bytes,
               "produce_s": round(time.time() - t0, 2)}
    emulator, url = start_emulator(args.binary, work, work / "rsa_key.pub", args.commit_delay, args.sink)
    profile = work / "profile.json"
    profile.write_text(json.dumps({
        "account": "ACME", "user": "KAFKA", "role": "KAFKA", "url": url,
        "private_key_file": str(work / "rsa_key.p8"),
        "max_buffered_kb_for_rowset_mode": "300000", "max_rowset_payload_size_mb": "16",
        **dict(kv.split("=", 1) for kv in args.sdk_property),
    }, indent=2))
    summary["url"] = url
    try:
        runs = []
        expect = args.messages // 2 if args.resume else args.messages
        # --resume: small consume() batches, so the first run stops near half way.
        extra = ["--batch", "500"] if args.resume else []
        result, stdout_lines = run_peer(bootstraps, profile, work / "data/ca.pem", expect, work / "peer.log", extra)
        runs.append(result)
        if args.resume:
            result, _ = run_peer(bootstraps, profile, work / "data/ca.pem",
                                 args.messages - result["rows"], work / "peer.log")
            runs.append(result)
        summary["runs"] = runs
        summary["stdout_lines"] = stdout_lines
        r = runs[-1] if not args.resume else runs[0]
        summary["cpu_s_per_gb"] = round(r["cpu_s"] / (value_bytes * r["rows"] / args.messages / 1e9), 1)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)

    requests = {}
    for line in (work / "requests.jsonl").read_text().splitlines():
        r = json.loads(line)
        key = f'{r["endpoint"]} {r["status"]}'
        requests[key] = requests.get(key, 0) + 1
    summary["requests"] = requests
    ok = sum(r["rows"] for r in runs) == args.messages and stdout_lines == 1
    if not args.sink:
        count, distinct, lo, hi = query(args.binary, work / "data",
                                        'SELECT COUNT(*), COUNT(DISTINCT ID), MIN(ID), MAX(ID) FROM "DEMO.KAFKA.EVENTS"')[0]
        channels = query(args.binary, work / "data",
                         "SELECT channel, committed_offset_token FROM _emulator_channels ORDER BY 1")
        summary["landed"] = {"rows": count, "distinct_id": distinct, "min_id": lo, "max_id": hi,
                             "channels": dict(channels)}
        ok = ok and count == distinct == args.messages and (lo, hi) == (1, args.messages)
    summary["result"] = "PASS" if ok else "FAIL"
    print(json.dumps(summary, indent=2, default=str))
    if ok and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
