#!/usr/bin/env python3
"""The Python peer of the snowpipe-kafka bench: a Kafka consumer-group sink written the way
Snowflake's examples write one, on confluent-kafka and the official Snowpipe Streaming SDK
(PyPI `snowpipe-streaming`, pinned in requirements.txt beside this file).

    python_peer.py --brokers HOST:PORT[,...] --topic T[,T...] --group G --database D --schema S --pipe P \
                   --expect N --profile PROFILE_JSON [--ca CA_PEM] [--batch 10000]

What it does (the same contract as snowpipe-kafka):
  * one StreamingIngestClient on D.S.P, one channel per partition of each topic (--topic: one
    or several, comma-separated, all to the pipe P) named `<G>_<T>_<partition>`, each row's
    offset token its Kafka offset (a decimal string);
  * on assign: open the partition's channel and start the partition at its latest committed
    offset token + 1 (the beginning when it has none); on revoke/lost: flush those channels,
    wait (bounded) until they committed what was appended, close them;
  * `consume()` batches, `json.loads` each value, one `append_rows` per partition per batch;
  * stops once it appended N rows and every channel's committed token is the last offset it
    appended there; closes channels and client; prints ONE JSON line, last on stdout:
      {"rows": n, "window_s": first append -> all seen committed,
       "append_s": first append -> last append (its intake, apart from the lag and commit),
       "cpu_s": time.process_time() over that window (all threads, the SDK's Rust core's too),
       "cpu_s_total": process CPU since start,
       "page_faults": minor page faults over the window (pages touched for the first time)}
  Everything else (the SDK's log, librdkafka's log, errors) goes to stderr.

PROFILE_JSON is the official SDK's profile.json, passed to it as is (`profile_json=`):
  account      account identifier (any name for the emulator, e.g. "ACME")
  user         user name (the JWT's subject)
  url          the account URL. For a local emulator: "https://127.0.0.1:PORT", exactly as the
               emulator prints it ("listening on https://127.0.0.1:PORT"); no trailing path.
               Plain http is not usable (the SDK refuses http:// URLs, then retries for minutes
               with growing backoff instead of failing): run the emulator with --tls and pass
               its ca.pem with --ca (the SDK's rustls reads SSL_CERT_FILE; --ca sets it).
  private_key_file  path of the PKCS#8 PEM private key (or "private_key": the PEM text itself);
               the emulator gets the public half with --public-key
  role         optional
  max_buffered_kb_for_rowset_mode: "300000" and max_rowset_payload_size_mb: "16"
               keep the SDK in rowset mode, the path the sink takes too, so both sides are
               measured on it (the emulator also serves file mode: docs/protocol-wire.md §4.6).
               Harmless against Snowflake.
  Optional latency knobs (any official SDK property may be added):
    max_append_request_buffer_duration_ms  the SDK's flush interval (default 1000), the
               counterpart of snowpipe-kafka's --max-client-lag;
    channel_status_cache_refresh_interval_seconds  the SDK serves committed tokens from a cache
               refreshed about every second (one bulk-status request); 0 = ask on every poll.
Example:
  {"account": "ACME", "user": "KAFKA", "role": "KAFKA", "url": "https://127.0.0.1:41234",
   "private_key_file": "/tmp/bench/rsa_key.p8",
   "max_buffered_kb_for_rowset_mode": "300000", "max_rowset_payload_size_mb": "16"}
"""

import argparse
import json
import os
import resource
import sys
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
for flag in ("--brokers", "--topic", "--group", "--database", "--schema", "--pipe", "--profile"):
    ap.add_argument(flag, required=True)
ap.add_argument("--expect", type=int, required=True, help="rows to append before stopping")
ap.add_argument("--ca", help="CA certificate (PEM) the SDK must trust, e.g. the emulator's ca.pem")
ap.add_argument("--batch", type=int, default=10_000, help="num_messages per consume()")
args = ap.parse_args()
topics = args.topic.split(",")

# Before the SDK is imported: its Rust core reads these once, at import.
if args.ca:
    os.environ["SSL_CERT_FILE"] = args.ca
os.environ.setdefault("SS_LOG_LEVEL", "warn")
os.environ.setdefault("SS_LOG_TARGET", "stderr")  # its default is stdout, which is ours

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException  # noqa: E402
from snowflake.ingest.streaming import (  # noqa: E402
    StreamingIngestClient,
    StreamingIngestError,
    StreamingIngestErrorCode,
)

BACKPRESSURE = {
    StreamingIngestErrorCode.RECEIVER_SATURATED,
    StreamingIngestErrorCode.MEMORY_THRESHOLD_EXCEEDED,
    StreamingIngestErrorCode.MEMORY_THRESHOLD_EXCEEDED_IN_CONTAINER,
}


def log(*parts):
    print("python_peer:", *parts, file=sys.stderr, flush=True)


client = StreamingIngestClient(
    f"{args.group}_{topics[0]}_python_peer", args.database, args.schema, args.pipe,
    profile_json=args.profile,
)
channels = {}  # (topic, partition) -> channel
last_appended = {}  # (topic, partition) -> last offset appended on its channel (int)


def channel_name(key):
    topic, partition = key
    return f"{args.group}_{topic}_{partition}"


def on_assign(consumer, partitions):
    for tp in partitions:
        key = (tp.topic, tp.partition)
        channel, status = client.open_channel(channel_name(key))
        channels[key] = channel
        token = status.latest_committed_offset_token
        tp.offset = int(token) + 1 if token is not None else OFFSET_BEGINNING
        if token is not None:
            last_appended[key] = int(token)
        log(f"assigned {key}: committed token {token}, start at {tp.offset}")
    consumer.assign(partitions)  # with the offsets just set: the channel, not Kafka, is the truth


def on_revoke(consumer, partitions):
    revoked = [(tp.topic, tp.partition) for tp in partitions if (tp.topic, tp.partition) in channels]
    for p in revoked:
        channels[p].initiate_flush()
    # Hand over: what was appended is committed before the channel closes, so the next owner
    # (which starts at the committed token + 1) neither skips nor repeats a row.
    wait_committed(revoked, timeout=60)
    for p in revoked:
        channels.pop(p).close()
        last_appended.pop(p, None)
    log(f"revoked partitions {revoked}")


def append(channel, rows, first, last):
    """append_rows, retried while the SDK pushes back (its documented 429-style errors)."""
    while True:
        try:
            channel.append_rows(rows, start_offset_token=str(first), end_offset_token=str(last))
            return
        except StreamingIngestError as e:
            if e.error_code not in BACKPRESSURE:
                raise
            time.sleep(0.005)


def minor_faults():
    """This process's minor page faults so far (all threads)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def wait_committed(partitions, timeout):
    """Polls until each partition's channel has committed the last offset appended on it."""
    want = {channel_name(p): str(last_appended[p]) for p in partitions if p in last_appended}
    deadline = time.perf_counter() + timeout
    while want:
        tokens = client.get_latest_committed_offset_tokens(list(want))
        want = {name: token for name, token in want.items() if tokens.get(name) != token}
        if want and time.perf_counter() > deadline:
            raise TimeoutError(f"not committed after {timeout} s: {want}")
        if want:
            time.sleep(0.05)


consumer = Consumer({
    "bootstrap.servers": args.brokers,
    "group.id": args.group,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
})
consumer.subscribe(topics, on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)

appended = 0
t_first = cpu_first = faults_first = None
try:
    # 1. Consume and append until --expect rows are in (and the partitions are assigned).
    while appended < args.expect or not channels:
        msgs = consumer.consume(num_messages=args.batch, timeout=0.1)
        # Group the batch by partition (it keeps each partition's order), then one append per
        # partition: batch appends with start/end offset tokens, as a throughput-minded user
        # writes it (Snowflake's minimal examples call append_row per row, one token each).
        by_partition = {}
        for msg in msgs:
            if msg.error():
                log("kafka error:", msg.error())
                continue
            by_partition.setdefault((msg.topic(), msg.partition()), []).append(msg)
        for partition, batch in by_partition.items():
            channel = channels.get(partition)
            if channel is None:  # revoked while the batch was in flight
                continue
            if t_first is None:
                t_first, cpu_first = time.perf_counter(), time.process_time()
                faults_first = minor_faults()
            rows = [json.loads(m.value()) for m in batch]
            first, last = batch[0].offset(), batch[-1].offset()
            if last - first + 1 == len(batch):  # contiguous: one call, tokens first..last
                append(channel, rows, first, last)
            else:  # gaps (compaction, transaction markers): one row, one token each
                for row, m in zip(rows, batch):
                    append(channel, [row], m.offset(), m.offset())
            last_appended[partition] = last
            appended += len(rows)
    t_appended = time.perf_counter()
    log(f"appended {appended} rows in {t_appended - (t_first or t_appended):.3f} s")
    # 2. Wait until Snowflake committed the last offset appended on every channel.
    wait_committed(list(last_appended), timeout=300)
    t_done, cpu_done = time.perf_counter(), time.process_time()
    faults_done = minor_faults()
    if t_first is None:  # nothing to append (everything was committed before)
        t_first, cpu_first, faults_first = t_done, cpu_done, faults_done
        t_appended = t_done
    # Snowflake holds the truth; commit Kafka's group offsets too, for lag tools.
    done = [tp for tp in consumer.assignment() if (tp.topic, tp.partition) in last_appended]
    for tp in done:
        tp.offset = last_appended[(tp.topic, tp.partition)] + 1
    if done:
        try:
            consumer.commit(offsets=done, asynchronous=False)
        except KafkaException as e:  # e.g. a rebalance in progress: Kafka's offsets are advisory
            log("kafka commit failed:", e)
finally:
    for channel in channels.values():
        channel.close()
    channels.clear()
    consumer.close()
    client.close()

print(json.dumps({
    "rows": appended,
    "window_s": round(t_done - t_first, 3),
    "append_s": round(t_appended - t_first, 3),
    "cpu_s": round(cpu_done - cpu_first, 3),
    "cpu_s_total": round(time.process_time(), 3),
    "page_faults": faults_done - faults_first,
}), flush=True)
