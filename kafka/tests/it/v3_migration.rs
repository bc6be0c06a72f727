//! Moving from Snowflake's Kafka connector v3: v3 committed each partition's offset in a
//! Snowpipe Streaming Classic channel (`<topic>_<partition>`), which the emulator is seeded
//! with (`--classic-channel`); `snowpipe-kafka --connector-name … --migrate-v3-offsets` opens
//! the new channels, has `SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET` copy v3's offset into each, and
//! resumes after it: the table gets exactly the messages v3 had not written, once.
#![cfg(unix)]

use std::collections::{BTreeMap, HashMap};

use snowpipe_emulator::ClassicChannel;
use snowpipe_kafka_lab::demo::{Lab, TABLE};

use crate::common::{bin, emulator, lab_with, produce_per_partition, run, Run};

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 2;
/// Messages 0..PER on each partition.
const PER: i64 = 20;
/// The connector's `name`.
const CONNECTOR: &str = "snowflake-sink";

/// A lab whose emulator has v3's classic channels `specs` (`partition → offset`) for the
/// lab's table, and `PER` messages on each partition of [`TOPIC`] from a test-side producer.
async fn lab_with_classic(classic: &[(i32, i64)]) -> Lab {
    let mut config = emulator();
    for (p, offset) in classic {
        config = config.with_classic_channel(ClassicChannel {
            table: TABLE.to_owned(),
            channel: format!("{TOPIC}_{p}"),
            offset: Some(*offset),
        });
    }
    let lab = lab_with(&[(TOPIC, PARTITIONS)], config).await;
    produce_per_partition(&lab, TOPIC, PARTITIONS, PER).await;
    lab
}

/// Runs the sink on the lab's topic with `mode`.
fn run_sink(lab: &Lab, mode: &str) -> Run {
    run(lab
        .instance(&bin(), TOPIC, "orders-to-snowflake")
        .args(["--connector-name", CONNECTOR, "--migrate-v3-offsets", mode])
        .args(["--until-idle", "3s"]))
}

/// The offsets landed per partition, asserting none landed twice.
fn landed_once(lab: &Lab) -> BTreeMap<i32, Vec<i64>> {
    let mut seen: HashMap<(i32, i64), ()> = HashMap::new();
    let mut out: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (p, o) in lab.landed_offsets().expect("table") {
        assert!(seen.insert((p, o), ()).is_none(), "{p}/{o} landed twice");
        out.entry(p).or_default().push(o);
    }
    for offsets in out.values_mut() {
        offsets.sort_unstable();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_resumes_each_partition_after_v3s_offset_once() {
    // v3 got to offset 11 on partition 0 and 4 on partition 1.
    let lab = lab_with_classic(&[(0, 11), (1, 4)]).await;
    let stderr = run_sink(&lab, "strict").ok().stderr;
    let expected: BTreeMap<i32, Vec<i64>> =
        BTreeMap::from([(0, (12..PER).collect()), (1, (5..PER).collect())]);
    assert_eq!(landed_once(&lab), expected, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_stops_naming_a_classic_channel_that_is_not_there() {
    // No classic channel for partition 1 (a topic v3 never read, or the wrong name).
    let lab = lab_with_classic(&[(0, 11)]).await;
    let out = run_sink(&lab, "strict");
    let stderr = out.stderr;
    assert!(!out.success, "the sink went on: {stderr}");
    assert!(
        stderr.contains("classic channel orders_1 not found"),
        "names the channel: {stderr}"
    );
    // Nothing of partition 1 was written from a guessed position.
    assert!(
        !landed_once(&lab).contains_key(&1),
        "partition 1 was written: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_effort_goes_on_without_a_classic_channel() {
    let lab = lab_with_classic(&[(0, 11)]).await;
    let stderr = run_sink(&lab, "best-effort").ok().stderr;
    // Partition 0 resumes after v3; partition 1, without a classic channel, from --start
    // (earliest).
    let expected: BTreeMap<i32, Vec<i64>> =
        BTreeMap::from([(0, (12..PER).collect()), (1, (0..PER).collect())]);
    assert_eq!(landed_once(&lab), expected, "{stderr}");
}
