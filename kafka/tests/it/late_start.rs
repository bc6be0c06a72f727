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
use snowpipe_kafka::demo::Lab;

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
