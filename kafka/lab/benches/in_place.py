#!/usr/bin/env python3
"""Where the sink's CPU goes, measured in place: `bench` run as given, each round's sink and
floor processes followed by thread (`/proc/PID/task/*/stat`) and, with `perf` on the PATH, by
symbol (`perf record -e cpu-clock -F 999 -g -p PID`, one file a process). Prints, beside the
bench's own medians, each part's CPU-s per GB: its share of the sink's samples (or of the
floor's CPU ticks) times the median CPU-s per GB the bench printed.

    python3 kafka/lab/benches/in_place.py OUTDIR target/release/snowpipe-kafka \
        --sizes 1024 --topics 24 --partitions 4 --rounds 3 --rebalance-partitions 0

The process-wide samples include each process's start and end, which the bench's window
leaves out: the shares are approximate by that much. See docs/log/performance/2026-11-28-kafka-in-place-against-alone.md.
"""

import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

# Symbol families, first match wins; the kernel's split by what it was doing.
PARTS = [
    ("zstd", r"ZSTD_|HUF_|FSE_|HIST_"),
    ("the JSON check", r"json_check"),
    ("memmove/memcpy", r"memmove|memcpy|memset"),
    ("kernel: page faults, mm", r"clear_page|do_anonymous|handle_mm_fault|page_fault|folio|"
     r"alloc_pages|rmqueue|mem_cgroup|memcg|zap_|unmap_page|free_unref|pte|lru_"),
    ("kernel: switches, futex", r"finish_task_switch|schedule|_raw_spin_unlock_irq|futex|"
     r"try_to_wake|pick_next|update_curr|enqueue|dequeue"),
    ("kernel: socket", r"copy_to_iter|copy_from_iter|tcp_|sock|skb|ip_|loopback"),
    ("librdkafka", r"^rd_"),
    ("malloc/free", r"malloc|free|_int_|realloc|tcache"),
    ("TLS", r"rustls|ring_core|ring::|aes_gcm|sha256|sha512"),
    ("tokio, locks", r"tokio::|parking_lot|std::sync|pthread_"),
    ("the sink's own", r"snowpipe_kafka::"),
    ("the SDK's own, HTTP", r"snowpipe_streaming::|hyper|h2::|http"),
]


def thread_kind(comm):
    comm = re.sub(r"\d+$", "", comm)
    return "rdk:broker*" if comm.startswith("rdk:broker") else comm


def follow(out, bench, use_perf):
    """Samples each sink and floor child of `bench` until it ends; returns their kinds."""
    seen, ticks, perfs = {}, collections.defaultdict(dict), []
    while bench.poll() is None:
        for pid in subprocess.run(["pgrep", "-P", str(bench.pid)], capture_output=True,
                                  text=True).stdout.split():
            if pid in seen:
                continue
            try:
                cmd = open(f"/proc/{pid}/cmdline").read()
            except OSError:
                continue
            kind = "floor" if "--floor" in cmd else "sink" if "--pipe" in cmd else None
            seen[pid] = kind
            if kind and use_perf:
                perfs.append(subprocess.Popen(
                    ["perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-p", pid,
                     "-o", f"{out}/perf-{kind}-{pid}.data"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for pid, kind in seen.items():
            if kind is None or not os.path.isdir(f"/proc/{pid}/task"):
                continue
            for tid in os.listdir(f"/proc/{pid}/task"):
                try:
                    stat = open(f"/proc/{pid}/task/{tid}/stat").read()
                except OSError:
                    continue
                comm = stat[stat.index("(") + 1:stat.rindex(")")]
                f = stat[stat.rindex(")") + 2:].split()
                # Threads end before their process: keep each one's largest count.
                ticks[pid][tid] = (comm, int(f[11]) + int(f[12]))
        time.sleep(0.1)
    for p in perfs:
        p.wait()
    return seen, ticks


def perf_parts(path):
    """(thread kind, part) -> per cent of the file's samples."""
    text = subprocess.run(
        ["perf", "report", "-i", path, "--no-children", "--sort", "comm,dso,sym", "-g", "none",
         "-q", "--percent-limit", "0", "-F", "overhead,comm,dso,sym"],
        capture_output=True, text=True).stdout
    shares = collections.Counter()
    for line in text.splitlines():
        f = line.split()
        if len(f) < 5 or not f[0].endswith("%"):
            continue
        sym = " ".join(f[4:])
        part = next((n for n, rx in PARTS if re.search(rx, sym)), None)
        if part is None:
            part = "kernel: other" if "kernel" in f[2] else "other"
        shares[(thread_kind(f[1]), part)] += float(f[0][:-1])
    return shares


def main():
    out, binary, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    use_perf = shutil.which("perf") is not None
    with open(f"{out}/bench.out", "w") as stdout:
        bench = subprocess.Popen([binary, "bench", *args], stdout=stdout)
        seen, ticks = follow(out, bench, use_perf)
    rows = [json.loads(l) for l in open(f"{out}/bench.out") if l.startswith("{")]
    stages = next(r for r in rows if r["side"].startswith("stages"))
    medians = {k: statistics.median(r["cpu_s_per_gb"] for r in rows if r["side"].startswith(s))
               for k, s in (("sink", "snowpipe-kafka"), ("floor", "floor"))}
    least = medians["floor"] + stages["check_cpu_s_per_gb"] + stages["zstd_cpu_s_per_gb"]
    print(f"sink {medians['sink']:.2f}, least {least:.2f} (floor {medians['floor']:.2f}, "
          f"check {stages['check_cpu_s_per_gb']}, zstd {stages['zstd_cpu_s_per_gb']}), "
          f"{medians['sink'] / least:.2f}x; CPU-s per GB below")
    for kind in ("sink", "floor"):
        shares = collections.defaultdict(list)
        for pid, k in seen.items():
            if k != kind or not ticks[pid]:
                continue
            total = sum(t for _, t in ticks[pid].values())
            by = collections.Counter()
            for comm, t in ticks[pid].values():
                by[thread_kind(comm)] += t
            for name in by:
                shares[name].append(by[name] / max(total, 1))
        print(f"{kind}, by thread (/proc, mean of rounds):")
        for name, v in sorted(shares.items(), key=lambda kv: -statistics.mean(kv[1])):
            m = statistics.mean(v)
            print(f"  {name:<40} {100 * m:5.1f} %  {m * medians[kind]:5.2f}")
    if not use_perf:
        return
    for kind in ("sink", "floor"):
        files = [f"{out}/perf-{kind}-{pid}.data" for pid, k in seen.items() if k == kind]
        every = [perf_parts(f) for f in files if os.path.exists(f)]
        if not every:
            continue
        for level in ("part", "thread, part"):
            merged = collections.Counter()
            for s in every:
                for (thread, part), v in s.items():
                    merged[part if level == "part" else f"{thread}: {part}"] += v / len(every)
            print(f"{kind}, by {level} (perf, mean of rounds):")
            for name, v in merged.most_common():
                if v >= 0.5:
                    print(f"  {name:<40} {v:5.1f} %  {v * medians[kind] / 100:5.2f}")


if __name__ == "__main__":
    main()
