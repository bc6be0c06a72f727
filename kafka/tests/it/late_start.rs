//! Channels that open slower than `--hand-over-timeout`: the rebalance callback cannot wait for
//! the start offsets Snowflake's committed tokens give, so the partitions are assigned paused
//! and start once their channels are open, where the tokens say, not at the group's Kafka
//! offsets.
//!
//! The case that lost rows: a user reloads a topic under a new `--channel-prefix` with
//! `--start earliest`, in the same consumer group. The group's Kafka offsets are at the end
//! (the first run committed them), the new channels have no token; a partition that started at
//! the group offset skipped every message.
#![cfg(unix)]

use snowpipe_emulator::{Endpoint, FaultAction, FaultRule};
use snowpipe_kafka_lab::demo::Lab;

use crate::common::{bin, emulator, lab_with, produce_per_partition, run};

const TOPIC: &str = "reload";
const PARTITIONS: i32 = 2;
const PER_PARTITION: i64 = 10;

fn run_sink(lab: &Lab, extra: &[&str]) {
    let out = run(lab
        .instance(&bin(), TOPIC, "reloads")
        .args(["--until-idle", "3s", "--max-client-lag", "200ms"])
        .args(extra));
    assert!(out.success, "{extra:?}: {}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_whose_channels_open_late_start_where_snowflake_says() {
    // The first run's two channel opens go through; every later one takes 3 s, longer than the
    // second run's hand-over timeout of 1 s.
    let slow = FaultRule::new(Endpoint::OpenChannel, FaultAction::Latency { ms: 3_000 })
        .after(u64::try_from(PARTITIONS).expect("count"));
    let mut config = emulator();
    config.faults.rules.push(slow);
    let lab = lab_with(&[(TOPIC, PARTITIONS)], config).await;
    let all = produce_per_partition(&lab, TOPIC, PARTITIONS, PER_PARTITION)
        .await
        .len();
    // First run: every message lands, and the group's Kafka offsets move to the end.
    run_sink(&lab, &[]);
    assert_eq!(lab.landed_offsets().expect("table").len(), all);
    // The reload: new channels (no token), from the earliest offset, the same group.
    run_sink(
        &lab,
        &[
            "--channel-prefix",
            "reload2",
            "--start",
            "earliest",
            "--hand-over-timeout",
            "1s",
        ],
    );
    let mut landed = lab.landed_offsets().expect("table");
    landed.sort_unstable();
    let mut expected: Vec<(i32, i64)> = (0..PARTITIONS)
        .flat_map(|p| (0..PER_PARTITION).flat_map(move |o| [(p, o), (p, o)]))
        .collect();
    expected.sort_unstable();
    assert_eq!(landed, expected, "each message once per run");
}

/// A new group told to start at the end, on partitions that already hold messages and receive
/// none: nothing is read, so librdkafka never knows a consumer lag (it has no position to
/// measure from), yet every partition is at its end. `--until-idle` must see that and end with
/// success, rows untouched; it waited for ever before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_from_latest_ends_when_nothing_arrives() {
    let lab = lab_with(&[(TOPIC, PARTITIONS)], emulator()).await;
    produce_per_partition(&lab, TOPIC, PARTITIONS, PER_PARTITION).await;
    let mut child = lab
        .instance(&bin(), TOPIC, "latest-and-quiet")
        .args(["--until-idle", "2s", "--start", "latest"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the sink");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "--until-idle never ended on quiet partitions: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        lab.landed_offsets().expect("table").is_empty(),
        "nothing read, nothing landed"
    );
}
