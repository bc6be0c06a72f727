//! A partition whose commits stop while messages wait: the sink says so (a warning naming the
//! partition and channel, `snowpipe_kafka_partition_stalled` 1, `/readyz` 503 listing it)
//! within `--stall-after`, and takes it back once commits move again. The emulator stops
//! showing commits by answering its status polls slowly.
#![cfg(unix)]

use std::time::{Duration, Instant};

use snowpipe_emulator::{Endpoint, FaultAction, FaultRule};

use crate::common::{lab, produce_per_partition, signal, wait_landed};
use crate::operations::{get, sample, with_metrics_and_log};
use snowpipe_cli_support::process::Signal;

const TOPIC: &str = "stalling";

/// Polls `check` every 200 ms until it holds or `limit` passes; whether it held.
pub(crate) async fn within(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    check()
}

fn stalled_gauge(addr: &str) -> Option<f64> {
    let (_, body) = get(addr, "/metrics");
    sample(
        &body,
        "snowpipe_kafka_partition_stalled",
        &["topic=\"stalling\"", "partition=\"0\""],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_whose_commits_stop_is_reported_stalled_and_recovers() {
    let lab = lab(&[(TOPIC, 1)]).await;
    let (mut child, addr, log) = with_metrics_and_log(
        &lab,
        TOPIC,
        "stalls",
        &["--stall-after", "2s", "--max-client-lag", "200ms"],
    );
    let first = produce_per_partition(&lab, TOPIC, 1, 10).await.len();
    wait_landed(&lab, first, Duration::from_secs(60)).await;
    assert!(
        within(Duration::from_secs(30), || get(&addr, "/readyz").0 == 200).await,
        "ready once the first rows are committed: {:?}",
        get(&addr, "/readyz")
    );
    assert_eq!(stalled_gauge(&addr), Some(0.0));

    // Commits stop being seen: every status poll takes 10 s.
    lab.emulator().faults().add(FaultRule::new(
        Endpoint::BulkStatus,
        FaultAction::Latency { ms: 10_000 },
    ));
    produce_per_partition(&lab, TOPIC, 1, 10).await;
    assert!(
        within(Duration::from_secs(30), || {
            let (status, body) = get(&addr, "/readyz");
            status == 503 && body.contains("stalled: stalling/0 (nothing committed for")
        })
        .await,
        "readiness names the stall: {:?}",
        get(&addr, "/readyz")
    );
    assert_eq!(stalled_gauge(&addr), Some(1.0));
    let warned = log.lock().expect("log").iter().any(|l| {
        l.contains("partition stalled") && l.contains("topic=stalling") && l.contains("channel=")
    });
    assert!(warned, "a warning names the partition: {:?}", log.lock());

    // Commits are seen again: the stall ends by itself.
    lab.emulator().faults().clear();
    assert!(
        within(Duration::from_secs(60), || get(&addr, "/readyz").0 == 200).await,
        "ready again once commits move: {:?}",
        get(&addr, "/readyz")
    );
    assert_eq!(stalled_gauge(&addr), Some(0.0));
    wait_landed(&lab, first * 2, Duration::from_secs(60)).await;
    signal(&child, Signal::Term);
    assert!(child.wait().expect("wait").success());
}
