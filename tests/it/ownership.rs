//! Two writers of one channel over the wire: the newer opener fences the older one, which
//! must stop (`Error::OwnershipLost`) and never take the channel back; a hand-over passes the
//! channel on at the committed token. The cases are the conformance suite's
//! (`snowpipe_streaming::test_util::conformance`), run here against the emulator, whose
//! count of fenced appends is checked too.
//!
//! * `cargo test -p snowpipe-streaming --test it ownership::`: the CI run.
//!
//! The same with two real processes (the `ecommerce` application, rolling deploys and
//! paused processes) is `apps/tests/it/ownership.rs`; the in-process property test with
//! random interleavings of two writers is `src/channel/ownership_tests.rs`.
#![cfg(unix)]

use std::sync::Arc;

use snowpipe_streaming::test_util::conformance;

use crate::common::conformance::EmulatorTarget;

fn fenced_appends(target: &EmulatorTarget, channel: &str) -> u64 {
    target.server_channel(channel)["fenced_appends"]
        .as_u64()
        .unwrap()
}

/// The suite's fencing case; the emulator counts the fenced append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_opener_fences_the_first_over_the_wire() {
    let target = EmulatorTarget::start(30, 0).await;
    conformance::the_second_opener_fences_the_first(Arc::clone(&target) as _).await;
    assert_eq!(fenced_appends(&target, "c"), 1);
}

/// The suite's hand-over case; nobody was fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_passes_the_channel_on_at_the_committed_token() {
    let target = EmulatorTarget::start(30, 0).await;
    conformance::a_hand_over_passes_the_channel_on(Arc::clone(&target) as _).await;
    assert_eq!(fenced_appends(&target, "p3"), 0);
}

/// A writer that dies with its open in flight (read whole by the server, held by the
/// service's latency) leaves a ghost: the server applies that open after the writer's
/// successor opened, and the successor is fenced (`OwnershipLost`) by a process that no longer
/// exists. That is the service's rule (a request read whole is applied although its client
/// is gone), not a fault of the SDK: the successor stops, as it must for a live rival, a
/// supervisor restarts it, and the restart owns the channel with nothing lost or doubled.
/// (The chaos suite meets this at random: `apps/tests/it/chaos.rs`, `ghost_open`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_writers_late_open_fences_its_successor_and_a_restart_recovers() {
    use snowpipe_emulator::{Emulator, Endpoint, FaultAction, FaultRule};
    use snowpipe_streaming::{OffsetToken, Positions, Rows};
    use std::time::Duration;

    let emu = Emulator::start(crate::common::emulator::config_with_ddl(
        "CREATE DATABASE IF NOT EXISTS DB; CREATE SCHEMA IF NOT EXISTS SCH; \
         CREATE OR REPLACE TABLE T (ID NUMBER);",
    ))
    .await
    .expect("emulator");
    let client = || async {
        crate::common::emulator::builder(&emu)
            .build()
            .await
            .unwrap()
    };
    let rows = |ids: std::ops::RangeInclusive<u64>| {
        let v: Vec<serde_json::Value> = ids.map(|id| serde_json::json!({ "ID": id })).collect();
        v
    };
    // The dead writer: its open is held 1.5 s by the server, and it dies meanwhile (its
    // future dropped: the connection closes with the request read whole).
    emu.faults()
        .add(FaultRule::new(Endpoint::OpenChannel, FaultAction::Latency { ms: 1_500 }).times(1));
    let dead = client().await;
    let dying = tokio::spawn(async move {
        let _ = dead
            .pipe("DB", "SCH", "T-STREAMING")
            .open_channel("c")
            .await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    dying.abort();
    // Its successor opens and appends at once.
    let successor = client().await;
    let ch = successor
        .pipe("DB", "SCH", "T-STREAMING")
        .open_channel("c")
        .await
        .expect("the successor opens");
    ch.append(
        Rows::serde(rows(1..=5)),
        Positions::from(OffsetToken::from(5u64)),
    )
    .await
    .expect("buffered");
    ch.wait_for_commit(&OffsetToken::from(5u64), Duration::from_secs(10))
        .await
        .expect("the successor's first rows commit");
    // The ghost open lands: the successor's next append is fenced.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    ch.append(
        Rows::serde(rows(6..=8)),
        Positions::from(OffsetToken::from(8u64)),
    )
    .await
    .ok();
    let fenced = ch.flush().await.expect_err("fenced by the ghost open");
    assert!(fenced.is_ownership_lost(), "{fenced}");
    drop(ch);
    // The restart resumes at what committed and writes the rest once.
    let restart = client().await;
    let ch = restart
        .pipe("DB", "SCH", "T-STREAMING")
        .open_channel("c")
        .await
        .expect("the restart opens");
    assert_eq!(
        ch.latest_committed_offset_token(),
        Some(OffsetToken::from(5u64))
    );
    ch.append(
        Rows::serde(rows(6..=8)),
        Positions::from(OffsetToken::from(8u64)),
    )
    .await
    .expect("buffered");
    ch.wait_for_commit(&OffsetToken::from(8u64), Duration::from_secs(10))
        .await
        .expect("the restart's rows commit");
    let counted = emu
        .query("SELECT COUNT(*), COUNT(DISTINCT ID) FROM \"DB.SCH.T\"")
        .expect("count");
    assert_eq!(counted[0][0].as_i64(), Some(8), "{counted:?}");
    assert_eq!(counted[0][1].as_i64(), Some(8), "{counted:?}");
    emu.shutdown().await;
}
