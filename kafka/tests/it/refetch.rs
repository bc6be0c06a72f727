//! A backlog four times `--memory-budget`, read while Snowflake is slow, keeps the budget full
//! most of the run: librdkafka must fetch each message once. A sink that paused partitions
//! against a full budget made librdkafka drop what it had fetched for them (a pause bumps the
//! partition's op version) and fetch it again on resume; the closing report's `source` says
//! what librdkafka fetched (its statistics: messages), against what was produced. A sink that
//! paused every partition holding far more than its share still fetched 1.5× the messages:
//! its workers were slow, not stuck. One partition whose appends hang must still not starve
//! the others.

use std::process::Stdio;
use std::time::{Duration, Instant};

use rdkafka::producer::FutureRecord;
use snowpipe_emulator::{EmulatorConfig, Endpoint, FaultAction, FaultRule};

use crate::common::{bin, deliver_all, lab_with};

const TOPIC: &str = "backlog";
/// The mock keeps at most 5 MiB a partition: 4 MiB each.
const PARTITIONS: i32 = 32;
const PER_PARTITION: i32 = 64;
const VALUE_BYTES: usize = 64 << 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_four_times_the_budget_is_fetched_once() {
    let slow = FaultRule::new(Endpoint::AppendRows, FaultAction::Latency { ms: 300 });
    let mut config = EmulatorConfig::for_tests().with_commit_delay(Duration::from_secs(1));
    config.faults.rules.push(slow);
    let lab = lab_with(&[(TOPIC, PARTITIONS)], config).await;
    let producer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", lab.brokers())
        .set("linger.ms", "20")
        .create::<rdkafka::producer::FutureProducer>()
        .expect("producer");
    let pad = "x".repeat(VALUE_BYTES);
    let values: Vec<(i32, String)> = (0..PARTITIONS * PER_PARTITION)
        .map(|n| (n % PARTITIONS, format!(r#"{{"id":{n},"kind":"{pad}"}}"#)))
        .collect();
    let produced: u64 = values.iter().map(|(_, v)| v.len() as u64).sum();
    assert!(
        produced >= 4 * (32 << 20),
        "{produced} bytes: 4× the budget"
    );
    deliver_all(
        &producer,
        values
            .iter()
            .map(|(p, v)| FutureRecord::to(TOPIC).partition(*p).key("k").payload(v)),
    )
    .await;
    let out = lab
        .instance(&bin(), TOPIC, "refetch")
        .args(["--until-idle", "5s", "--memory-budget", "32MiB"])
        .output()
        .expect("run the sink");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let mut landed = lab.landed_offsets().expect("table");
    let rows = landed.len();
    landed.sort_unstable();
    landed.dedup();
    assert_eq!(landed.len(), values.len(), "every message");
    assert_eq!(rows, values.len(), "once");
    // With RUST_LOG=snowpipe_kafka::source=debug, each pause: the partition's held bytes
    // against its share, and whether its worker was stuck.
    for l in stderr.lines().filter(|l| l.contains("paused")) {
        println!("{l}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a closing line")).expect("JSON");
    let source = &report["source"];
    let fetched = source["fetched_messages"]
        .as_u64()
        .expect("fetched_messages");
    let fetched_bytes = source["fetched_bytes"].as_u64().expect("fetched_bytes");
    println!(
        "{} messages ({produced} bytes) produced; librdkafka fetched {fetched} ({fetched_bytes} \
         bytes); {source}",
        values.len()
    );
    // Messages: what the report's `fetched_bytes` counts also includes the keys.
    let count = values.len() as u64;
    assert!(
        fetched * 10 <= count * 11,
        "fetched {fetched} messages for {count} produced: more than 1.1× ({source})"
    );
    assert!(fetched >= count, "{source}");
}

const HANGING: &str = "hanging";

/// Partition 0's appends hang (its channel's appends are answered in ten minutes) while more
/// than the whole budget arrives for it; the messages of the seven others, produced after,
/// all land while it hangs: its partition was paused (its worker completed no append, or it
/// held five eighths of the budget), and the rest of the budget kept the others reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_whose_appends_hang_does_not_starve_the_others() {
    let hang = FaultRule::new(Endpoint::AppendRows, FaultAction::Latency { ms: 600_000 })
        .on_channel("stuck_hanging_0");
    let mut config = EmulatorConfig::for_tests();
    config.faults.rules.push(hang);
    let lab = lab_with(&[(HANGING, 8)], config).await;
    let mut sink = lab
        .instance(&bin(), HANGING, "stuck")
        .args(["--memory-budget", "32MiB"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the sink");
    let producer = lab.producer().expect("producer");
    let pad = "x".repeat(VALUE_BYTES);
    // 40 MiB for partition 0, in chunks the mock keeps (5 MiB a partition): more than the
    // whole budget.
    for chunk in 0..10 {
        let values: Vec<String> = (0..PER_PARTITION)
            .map(|n| format!(r#"{{"id":{},"kind":"{pad}"}}"#, chunk * 100 + n))
            .collect();
        deliver_all(
            &producer,
            values
                .iter()
                .map(|v| FutureRecord::to(HANGING).partition(0).key("k").payload(v)),
        )
        .await;
    }
    let others: Vec<(i32, String)> = (1..8)
        .flat_map(|p| {
            (0..50).map(move |n| (p, format!(r#"{{"id":{},"kind":"k"}}"#, p * 1_000 + n)))
        })
        .collect();
    deliver_all(
        &producer,
        others
            .iter()
            .map(|(p, v)| FutureRecord::to(HANGING).partition(*p).key("k").payload(v)),
    )
    .await;
    let until = Instant::now() + Duration::from_secs(120);
    let landed = loop {
        let landed = lab.landed_offsets().expect("table");
        let theirs = landed.iter().filter(|(p, _)| *p != 0).count();
        if theirs >= others.len() || Instant::now() > until {
            break landed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = sink.kill();
    let _ = sink.wait();
    let mut theirs: Vec<(i32, i64)> = landed.iter().copied().filter(|(p, _)| *p != 0).collect();
    theirs.sort_unstable();
    theirs.dedup();
    assert_eq!(
        theirs.len(),
        others.len(),
        "the other partitions' messages, within 120 s, while partition 0 hangs"
    );
    assert!(
        landed.iter().all(|(p, _)| *p != 0),
        "partition 0's appends hang: none of its rows lands"
    );
}
