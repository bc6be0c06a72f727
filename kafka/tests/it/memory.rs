//! The sink holds what `--memory-budget` allows, however large the messages and however slow
//! Snowflake is: 1 MB messages, an emulator that takes 1.5 s to answer each append and 2 s more
//! to commit, a 64 MiB budget. The sink process's peak resident memory stays within the budget
//! plus what the process costs empty (measured here, the same way, and printed), and every
//! message lands once.
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use rdkafka::producer::FutureRecord;
use snowpipe_emulator::{EmulatorConfig, Endpoint, FaultAction, FaultRule};

use crate::common::{bin, deliver, lab_with};

const TOPIC: &str = "blobs";
const PARTITIONS: i32 = 12;
const BUDGET: u64 = 64 << 20;

/// The peak resident set of process `pid` so far, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs an instance until it exits, sampling its peak RSS; returns (peak, stdout, stderr).
fn run_sampled(mut cmd: std::process::Command) -> (u64, std::process::Output) {
    let child = cmd
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the sink");
    let pid = child.id();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = std::sync::Arc::clone(&peak);
        std::thread::spawn(move || {
            while let Some(p) = peak_rss(pid) {
                peak.fetch_max(p, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let out = child.wait_with_output().expect("wait");
    let _ = sampler.join();
    (peak.load(std::sync::atomic::Ordering::Relaxed), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_megabyte_messages_and_a_slow_snowflake_stay_within_the_budget() {
    let slow = FaultRule::new(Endpoint::AppendRows, FaultAction::Latency { ms: 1_500 });
    let mut config = EmulatorConfig::for_tests().with_commit_delay(Duration::from_secs(2));
    config.faults.rules.push(slow);
    let lab = lab_with(&[(TOPIC, PARTITIONS), ("empty", 1)], config).await;
    let bin = bin();
    // What the process costs with nothing to do: the same binary on an empty topic.
    let (empty, out) = run_sampled({
        let mut c = lab.instance(&bin, "empty", "idle");
        c.args(["--until-idle", "2s", "--memory-budget", "64MiB"]);
        c
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 4 messages of 1 MB per partition: the mock keeps at most 5 MiB a partition.
    let producer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", lab.brokers())
        .set("message.max.bytes", "2000000")
        .create::<rdkafka::producer::FutureProducer>()
        .expect("producer");
    let pad = "x".repeat(1_000_000);
    let count = 4 * PARTITIONS;
    for n in 0..count {
        let v = format!(r#"{{"id":{n},"kind":"{pad}"}}"#);
        let record = FutureRecord::to(TOPIC)
            .partition(n % PARTITIONS)
            .key("k")
            .payload(&v);
        deliver(&producer, record).await;
    }
    let started = Instant::now();
    let (peak, out) = run_sampled({
        let mut c = lab.instance(&bin, TOPIC, "blobs");
        c.args(["--until-idle", "5s", "--memory-budget", "64MiB"])
            .args(["-X", "message.max.bytes=2000000"]);
        c
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let mut landed = lab.landed_offsets().expect("table");
    landed.sort_unstable();
    landed.dedup();
    assert_eq!(
        landed.len(),
        usize::try_from(count).unwrap(),
        "every message once"
    );
    let mib = |b: u64| b >> 20;
    println!(
        "peak RSS {} MiB with {} MiB of messages ({} MiB empty, budget {} MiB) in {:?}",
        mib(peak),
        count,
        mib(empty),
        mib(BUDGET),
        started.elapsed()
    );
    assert!(
        peak <= BUDGET + empty,
        "peak RSS {} MiB over the budget {} MiB + the empty process's {} MiB",
        mib(peak),
        mib(BUDGET),
        mib(empty)
    );
}
