//! The broker deleted messages before they landed (retention ran while the sink was down): the
//! sink does not stop, does not load anything twice, resumes at the log start and says which
//! offsets were lost, in its log and in its closing report.
//!
//! librdkafka's mock cluster keeps at most 5 MiB per partition (`mpart->max_size` in
//! `rdkafka_mock.c`) and deletes the oldest message sets beyond it, like `retention.bytes`.
#![cfg(unix)]

use std::collections::HashSet;

use rdkafka::producer::{FutureProducer, FutureRecord};
use snowpipe_kafka_lab::demo::Lab;

use crate::common::{bin, deliver_all, lab, run, Run};

const TOPIC: &str = "events";

/// Produces ids `first..first + count`, each value padded to about `size` bytes; returns the
/// offsets.
async fn produce(producer: &FutureProducer, first: i64, count: i64, size: usize) -> Vec<i64> {
    let pad = "r".repeat(size);
    let values: Vec<String> = (first..first + count)
        .map(|id| format!(r#"{{"id":{id},"kind":"k","pad":"{pad}"}}"#))
        .collect();
    let records = values
        .iter()
        .map(|v| FutureRecord::to(TOPIC).key("k").payload(v));
    deliver_all(producer, records)
        .await
        .into_iter()
        .map(|d| d.offset)
        .collect()
}

fn run_until_idle(lab: &Lab) -> (Run, serde_json::Value) {
    let out = run(lab
        .instance(&bin(), TOPIC, "retention")
        .args(["--until-idle", "2s"]))
    .ok();
    let report = out.report();
    (out, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_deleted_before_they_landed_are_reported_and_the_rest_lands_once() {
    let lab = lab(&[(TOPIC, 1)]).await;
    let producer = lab.producer().expect("producer");

    // The sink loads the first 20 messages and stops.
    let early = produce(&producer, 0, 20, 10).await;
    let (_, first) = run_until_idle(&lab);
    assert_eq!(first["consumed"]["events/0"]["committed"], "19", "{first}");
    // The closing line's intake span: the 20 rows, from the start of the first append to
    // the end of the last, which came well before the 2 s of idleness that ended the run.
    assert_eq!(first["appended"]["rows"], 20, "{first}");
    assert!(
        first["appended"]["seconds"]
            .as_f64()
            .is_some_and(|s| s > 0.0 && s < 2.0),
        "{first}"
    );

    // While it is down, 7 MiB more: the mock cluster deletes the oldest message sets.
    let late = produce(&producer, 20, 7_000, 1_024).await;
    let high = late.last().copied().expect("offsets") + 1;

    let (out, second) = run_until_idle(&lab);
    let stderr = out.stderr;
    let part = &second["consumed"]["events/0"];
    let lost = part["lost_to_retention"]
        .as_u64()
        .expect("lost_to_retention");
    let rows = part["rows"].as_u64().expect("rows");
    assert!(lost > 0, "nothing reported lost: {second}\n{stderr}");
    assert_eq!(
        lost + rows,
        u64::try_from(high - 20).expect("count"),
        "every offset after the first run is either landed or reported lost: {second}"
    );
    assert_eq!(part["committed"], (high - 1).to_string(), "{second}");
    assert_eq!(second["appended"]["rows"], rows, "{second}");
    assert!(
        second["appended"]["seconds"]
            .as_f64()
            .is_some_and(|s| s > 0.0),
        "{second}"
    );
    assert!(
        stderr.contains(&format!("offsets 20..={} were deleted", 20 + lost - 1)),
        "the log names the lost offsets: {stderr}"
    );

    // In the table: the first 20, then every offset from the log start on, each once.
    let landed = lab.landed_offsets().expect("table");
    let distinct: HashSet<_> = landed.iter().collect();
    assert_eq!(distinct.len(), landed.len(), "an offset landed twice");
    let start = 20 + i64::try_from(lost).expect("lost");
    let expected: HashSet<(i32, i64)> = early
        .iter()
        .copied()
        .chain(start..high)
        .map(|o| (0, o))
        .collect();
    let landed: HashSet<(i32, i64)> = landed.into_iter().collect();
    assert_eq!(landed, expected);
}
