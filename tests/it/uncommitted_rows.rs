//! Opening a channel that still has rows in flight (another writer's, or a killed process's):
//! by default those rows commit and the open returns their token, as the official SDK does
//! (`fail_on_uncommitted_rows: true`, its 409 retried, then forced). `Some(false)` discards
//! them at once; `Some(true)` fails rather than discard (issue 39; docs/protocol.md
//! "Ownership").

use snowpipe_streaming::{Positions, Rows};
use std::time::Duration;

use snowpipe_emulator::Emulator;
use snowpipe_streaming::{OffsetToken, OpenChannelOptions, RetryConfig, StreamingIngestClient};

use crate::common::emulator::{builder, config_with_ddl, DB, DDL, PIPE, SCHEMA};

#[derive(serde::Serialize)]
struct Row {
    #[serde(rename = "ID")]
    id: u64,
}

/// An emulator that commits `delay` after each append.
async fn emulator(delay: Duration) -> Emulator {
    Emulator::start(config_with_ddl(DDL).with_commit_delay(delay))
        .await
        .expect("emulator starts")
}

/// Writer A appends ten rows, acknowledged but (for `delay`) not committed, and vanishes
/// without closing. Returns A's client, kept alive so nothing else touches the channel.
async fn rows_in_flight(emu: &Emulator) -> StreamingIngestClient {
    let a = builder(emu).build().await.unwrap();
    let ch = a.pipe(DB, SCHEMA, PIPE).open_channel("c").await.unwrap();
    let positions = Positions::per_row((0..10u64).map(OffsetToken::from));
    ch.append(Rows::serde((0..10u64).map(|id| Row { id })), positions)
        .await
        .unwrap();
    ch.flush().await.unwrap();
    assert_eq!(
        ch.latest_committed_offset_token(),
        None,
        "not committed yet"
    );
    std::mem::forget(ch); // a process that died: no close, no drop-time flush
    a
}

fn count(emu: &Emulator) -> u64 {
    emu.query("SELECT COUNT(*) FROM \"DB.SCH.T\"").unwrap()[0][0]
        .as_u64()
        .unwrap()
}

/// A retry budget long enough for a 1.5 s commit delay.
fn patient() -> RetryConfig {
    RetryConfig::default()
        .initial_backoff(Duration::from_millis(100))
        .max_backoff(Duration::from_millis(400))
        .max_attempts(30)
        .total_budget(Duration::from_secs(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_reopen_lets_rows_in_flight_commit_instead_of_discarding_them() {
    let emu = emulator(Duration::from_millis(1500)).await;
    let _a = rows_in_flight(&emu).await;
    let b = builder(&emu).retry(patient()).build().await.unwrap();
    let ch = b.pipe(DB, SCHEMA, PIPE).open_channel("c").await.unwrap();
    assert_eq!(
        ch.latest_committed_offset_token(),
        Some(OffsetToken::from(9u64)),
        "A's rows committed before B's open"
    );
    assert_eq!(count(&emu), 10);
    ch.close().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn false_discards_rows_in_flight_and_true_fails_rather_than_discard() {
    let emu = emulator(Duration::from_secs(3600)).await;
    let _a = rows_in_flight(&emu).await;
    // Some(true): the 409 is retried within the (short) budget, then the open fails.
    let b = builder(&emu).build().await.unwrap();
    let err = b
        .pipe(DB, SCHEMA, PIPE)
        .open_channel_with(
            "c",
            OpenChannelOptions::default().fail_on_uncommitted_rows(true),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.snowflake_code(),
        Some("ERR_CHANNEL_HAS_UNCOMMITTED_DATA"),
        "{err}"
    );
    // The default, once its retries are spent: forced open, rows discarded.
    let ch = b.pipe(DB, SCHEMA, PIPE).open_channel("c").await.unwrap();
    assert_eq!(ch.latest_committed_offset_token(), None);
    ch.close().await.unwrap();
    assert_eq!(count(&emu), 0);
    emu.shutdown().await;

    // Some(false): discarded at once, even with time to commit.
    let emu = emulator(Duration::from_millis(1500)).await;
    let _a = rows_in_flight(&emu).await;
    let b = builder(&emu).retry(patient()).build().await.unwrap();
    let ch = b
        .pipe(DB, SCHEMA, PIPE)
        .open_channel_with(
            "c",
            OpenChannelOptions::default().fail_on_uncommitted_rows(false),
        )
        .await
        .unwrap();
    assert_eq!(ch.latest_committed_offset_token(), None);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&emu), 0, "nothing of A's lands");
    ch.close().await.unwrap();
    emu.shutdown().await;
}
