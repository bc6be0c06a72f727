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

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::producer::FutureRecord;
use snowpipe_emulator::{EmulatorConfig, Endpoint, FaultAction, FaultRule};
use snowpipe_kafka::demo::Lab;

const TOPIC: &str = "reload";
const PARTITIONS: i32 = 2;
const PER_PARTITION: i64 = 10;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_snowpipe-kafka"))
}

fn run(lab: &Lab, extra: &[&str]) {
    let out = lab
        .instance(&bin(), TOPIC, "reloads")
        .args(["--until-idle", "3s", "--max-client-lag", "200ms"])
        .args(extra)
        .output()
        .expect("run the sink");
    assert!(
        out.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_whose_channels_open_late_start_where_snowflake_says() {
    // The first run's two channel opens go through; every later one takes 3 s, longer than the
    // second run's hand-over timeout of 1 s.
    let slow = FaultRule::new(Endpoint::OpenChannel, FaultAction::Latency { ms: 3_000 })
        .after(u64::try_from(PARTITIONS).expect("count"));
    let mut config = EmulatorConfig::for_tests().with_commit_delay(Duration::from_millis(100));
    config.faults.rules.push(slow);
    let lab = Lab::start_with(&[(TOPIC, PARTITIONS)], config)
        .await
        .expect("lab");
    let producer = lab.producer().expect("producer");
    for p in 0..PARTITIONS {
        for n in 0..PER_PARTITION {
            let v = format!(r#"{{"id":{},"kind":"k"}}"#, i64::from(p) * 1000 + n);
            producer
                .send(
                    FutureRecord::to(TOPIC).partition(p).key("k").payload(&v),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("delivered");
        }
    }
    let all = usize::try_from(i64::from(PARTITIONS) * PER_PARTITION).expect("count");
    // First run: every message lands, and the group's Kafka offsets move to the end.
    run(&lab, &[]);
    assert_eq!(lab.landed_offsets().expect("table").len(), all);
    // The reload: new channels (no token), from the earliest offset, the same group.
    run(
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
