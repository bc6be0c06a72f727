//! Two writers of one channel over the wire: the newer opener fences the older one, which
//! must stop (`Error::OwnershipLost`) and never take the channel back; a hand-over passes the
//! channel on at the committed token.
//!
//! * `cargo test -p snowpipe-streaming --test it ownership::`: the CI run.
//!
//! The same with two real processes (the `ecommerce` application, rolling deploys and
//! paused processes) is `apps/tests/it/ownership.rs`; the in-process property test with
//! random interleavings of two writers is `src/channel/ownership_tests.rs`.
#![cfg(unix)]

use crate::common;

use std::time::Duration;

use serde::Serialize;
use snowpipe_emulator::Emulator;
use snowpipe_streaming::{OffsetToken, StreamingIngestClient};

#[derive(Serialize)]
struct Row {
    id: u64,
    name: String,
}

async fn emulator() -> Emulator {
    Emulator::start(
        common::emulator::config_with_ddl(
            "CREATE DATABASE IF NOT EXISTS DB; CREATE SCHEMA IF NOT EXISTS SCH;
             CREATE OR REPLACE TABLE T (ID NUMBER, NAME VARCHAR(100));",
        )
        .with_commit_delay(Duration::from_millis(30)),
    )
    .await
    .unwrap()
}

fn rows(ids: std::ops::Range<u64>) -> impl Iterator<Item = Row> {
    ids.map(|id| Row {
        id,
        name: format!("row {id}"),
    })
}

fn ids(emu: &Emulator) -> Vec<u64> {
    emu.query(r#"SELECT ID FROM "DB.SCH.T" ORDER BY ID"#)
        .unwrap()
        .iter()
        .map(|r| r[0].as_u64().unwrap())
        .collect()
}

fn fenced_appends(emu: &Emulator, channel: &str) -> u64 {
    common::emulator::server_channel(emu, channel)["fenced_appends"]
        .as_u64()
        .unwrap()
}

/// Over the wire, two clients (two processes as far as the server can tell): the second
/// open fences the first, whose next append fails with `OwnershipLost` naming the channel and
/// the committed token, and stays failed; the second resumes after the committed token; the
/// emulator counts the fenced append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_opener_fences_the_first_over_the_wire() {
    let emu = emulator().await;
    let first = common::emulator::builder(&emu).build().await.unwrap();
    let second: StreamingIngestClient = common::emulator::builder(&emu).build().await.unwrap();
    let a = first
        .table_pipe("DB", "SCH", "T")
        .open_channel("c")
        .await
        .unwrap();
    a.append_rows(rows(0..100), Some(0u64.into()), Some(99u64.into()))
        .await
        .unwrap();
    a.wait_for_commit(&OffsetToken::from(99u64), Duration::from_secs(30))
        .await
        .unwrap();

    let b = second
        .table_pipe("DB", "SCH", "T")
        .open_channel("c")
        .await
        .unwrap();
    assert_eq!(b.latest_committed_offset_token(), Some(99u64.into()));
    a.append_rows(rows(100..150), Some(100u64.into()), Some(149u64.into()))
        .await
        .unwrap();
    let err = a.flush().await.unwrap_err();
    assert!(err.is_ownership_lost(), "{err}");
    assert_eq!(err.last_committed_offset_token(), Some(&99u64.into()));
    assert!(err.to_string().contains("channel c"), "{err}");
    let err = a
        .append_rows(rows(150..160), Some(150u64.into()), Some(159u64.into()))
        .await
        .unwrap_err();
    assert!(err.is_ownership_lost(), "{err}");

    b.append_rows(rows(100..200), Some(100u64.into()), Some(199u64.into()))
        .await
        .unwrap();
    b.wait_for_commit(&OffsetToken::from(199u64), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(ids(&emu), (0..200).collect::<Vec<_>>());
    assert_eq!(fenced_appends(&emu, "c"), 1);
    assert!(a.close().await.unwrap_err().is_ownership_lost());
    b.close().await.unwrap();
    first.close().await.unwrap_or(());
    second.close().await.unwrap();
    emu.shutdown().await;
}

/// The hand-over recipe over the wire: the old owner flushes, waits for the commit and closes
/// (`hand_over`), reporting the committed token; the new owner opens and resumes after it.
/// Nobody is fenced while appending, and every row lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_passes_the_channel_on_at_the_committed_token() {
    let emu = emulator().await;
    let old = common::emulator::builder(&emu).build().await.unwrap();
    let new = common::emulator::builder(&emu).build().await.unwrap();
    let a = old
        .table_pipe("DB", "SCH", "T")
        .open_channel("p3")
        .await
        .unwrap();
    for k in 0..5u64 {
        a.append_rows(
            rows(k * 40..k * 40 + 40),
            Some((k * 40).into()),
            Some((k * 40 + 39).into()),
        )
        .await
        .unwrap();
    }
    let handed = a.hand_over(Duration::from_secs(30)).await.unwrap();
    assert_eq!(handed, Some(199u64.into()));

    let b = new
        .table_pipe("DB", "SCH", "T")
        .open_channel("p3")
        .await
        .unwrap();
    let resume = b.latest_committed_offset_token().unwrap().as_u64().unwrap() + 1;
    assert_eq!(resume, 200);
    b.append_rows(rows(resume..300), Some(resume.into()), Some(299u64.into()))
        .await
        .unwrap();
    b.wait_for_commit(&OffsetToken::from(299u64), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(ids(&emu), (0..300).collect::<Vec<_>>());
    assert_eq!(fenced_appends(&emu, "p3"), 0);
    b.close().await.unwrap();
    old.close().await.unwrap();
    new.close().await.unwrap();
    emu.shutdown().await;
}
