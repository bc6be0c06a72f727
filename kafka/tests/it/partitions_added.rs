//! Partitions added while the group runs: the instances subscribe to two topics, one of which
//! does not exist yet; when it is created (librdkafka's mock cluster cannot grow a topic, so a
//! new topic is how partitions are added here: the same metadata change, the same rebalance),
//! its partitions are assigned, their channels opened, and every message of both topics lands
//! once, through one SIGKILL after the addition.
#![cfg(unix)]

use std::collections::HashSet;
use std::process::Child;
use std::time::{Duration, Instant};

use snowpipe_kafka_lab::demo::Lab;

use crate::common::{bin, lab, produce_events, signal};
use snowpipe_cli_support::process::Signal;

const OLD: &str = "orders";
const NEW: &str = "returns";

fn instance(lab: &Lab) -> Child {
    lab.instance(&bin(), OLD, "grow")
        .args(["--topic", NEW])
        .args(["-X", "topic.metadata.refresh.interval.ms=1000"])
        .spawn()
        .expect("spawn snowpipe-kafka")
}

async fn wait_for(
    lab: &Lab,
    what: &str,
    limit: Duration,
    done: impl Fn(&[(String, i32, i64)]) -> bool,
) {
    let until = Instant::now() + limit;
    loop {
        let landed = lab.landed_by_topic().expect("table");
        if done(&landed) {
            return;
        }
        assert!(
            Instant::now() < until,
            "{what} within {limit:?}: {} rows",
            landed.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_added_while_running_are_assigned_and_land_once() {
    let lab = lab(&[(OLD, 3)]).await;
    let producer = lab.producer().expect("producer");
    let mut a = instance(&lab);
    let mut b = instance(&lab);
    let mut written = produce_events(&producer, OLD, 0..600).await;
    wait_for(
        &lab,
        "the old topic streams",
        Duration::from_secs(60),
        |l| !l.is_empty(),
    )
    .await;

    lab.create_topic(NEW, 3).expect("new topic");
    written.extend(produce_events(&producer, NEW, 600..1_200).await);
    wait_for(
        &lab,
        "the new partitions are assigned and stream",
        Duration::from_secs(60),
        |l| l.iter().any(|(t, _, _)| t == NEW),
    )
    .await;

    // One instance dies right after the addition; the other takes every partition.
    signal(&a, Signal::Kill);
    let _ = a.wait();
    written.extend(produce_events(&producer, OLD, 1_200..1_500).await);
    written.extend(produce_events(&producer, NEW, 1_500..1_800).await);
    let want: HashSet<(String, i32, i64)> = written.into_iter().collect();
    let n = want.len();
    wait_for(&lab, "every message lands", Duration::from_secs(90), |l| {
        l.iter().collect::<HashSet<_>>().len() >= n
    })
    .await;
    signal(&b, Signal::Term);
    let status = b.wait().expect("wait");
    assert!(status.success(), "the surviving instance failed: {status}");

    let landed = lab.landed_by_topic().expect("table");
    let mut seen = HashSet::new();
    let dups: Vec<_> = landed
        .iter()
        .filter(|r| !seen.insert((*r).clone()))
        .collect();
    assert!(
        dups.is_empty(),
        "landed twice: {:?}",
        &dups[..dups.len().min(10)]
    );
    assert_eq!(seen, want, "lost or unexpected rows");
    let new_parts: HashSet<i32> = seen
        .iter()
        .filter(|(t, _, _)| t == NEW)
        .map(|(_, p, _)| *p)
        .collect();
    assert_eq!(
        new_parts.len(),
        3,
        "every new partition was assigned: {new_parts:?}"
    );
}
