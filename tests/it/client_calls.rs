//! The client-level calls against the in-process emulator: statuses and
//! committed tokens by name (bulk, more than 100), drop by name, flush everything, wait for
//! everything to commit.

use crate::common;
use snowpipe_streaming::{Positions, Rows};

use std::time::Duration;

use snowpipe_emulator::Emulator;
use snowpipe_streaming::{Error, OffsetToken, StreamingIngestClient};

const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DB;
CREATE SCHEMA IF NOT EXISTS SCH;
CREATE OR REPLACE TABLE T (ID NUMBER);
";
const PIPE: &str = "T-STREAMING";

async fn start(commit_delay: Duration) -> (Emulator, StreamingIngestClient) {
    let emu =
        Emulator::start(common::emulator::config_with_ddl(DDL).with_commit_delay(commit_delay))
            .await
            .unwrap();
    let client = common::emulator::builder(&emu)
        .max_client_lag(Duration::from_secs(60))
        .commit_poll_interval(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    (emu, client)
}

#[derive(serde::Serialize)]
struct Row {
    #[serde(rename = "ID")]
    id: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_and_tokens_of_many_channels_by_name() {
    let (emu, client) = start(Duration::ZERO).await;
    // 120 channels, more than one bulk request holds; each commits token i.
    let mut names = Vec::new();
    for i in 0..120u64 {
        let name = format!("c{i}");
        let ch = client
            .table_pipe("DB", "SCH", "T")
            .open_channel(&name)
            .await
            .unwrap();
        ch.append(
            Rows::serde([&Row { id: i }]),
            Positions::at(OffsetToken::from(i)),
        )
        .await
        .unwrap();
        ch.close().await.unwrap();
        names.push(name);
    }
    names.push("never-opened".into());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let statuses = client
        .pipe("DB", "SCH", PIPE)
        .channel_statuses(&refs)
        .await
        .unwrap();
    assert_eq!(statuses.len(), 120, "the unknown channel is absent");
    assert_eq!(statuses["c7"].rows_inserted, 1);
    assert_eq!(statuses["c7"].status_code.as_deref(), Some("SUCCESS"));
    let tokens = client
        .pipe("DB", "SCH", PIPE)
        .latest_committed_offset_tokens(&refs)
        .await
        .unwrap();
    for i in 0..120u64 {
        assert_eq!(tokens[&format!("c{i}")], Some(OffsetToken::from(i)));
    }
    assert!(!tokens.contains_key("never-opened"));
    let bulk_requests = emu
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == snowpipe_emulator::Endpoint::BulkStatus && r.status == 200)
        .count();
    assert!(
        bulk_requests >= 4,
        "two calls of two requests each: {bulk_requests}"
    );
    client.close().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_by_name_refuses_open_channels_and_drops_closed_ones() {
    let (emu, client) = start(Duration::ZERO).await;
    let ch = client
        .table_pipe("DB", "SCH", "T")
        .open_channel("gone")
        .await
        .unwrap();
    ch.append(
        Rows::serde([&Row { id: 1 }]),
        Positions::at(OffsetToken::from(1u64)),
    )
    .await
    .unwrap();
    let err = client
        .pipe("DB", "SCH", PIPE)
        .drop_channel("GONE")
        .await
        .expect_err("open in this client (in another case)");
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    ch.close().await.unwrap();
    let last = client
        .pipe("DB", "SCH", PIPE)
        .drop_channel("gone")
        .await
        .unwrap();
    assert_eq!(last, Some(OffsetToken::from(1u64)));
    let statuses = client
        .pipe("DB", "SCH", PIPE)
        .channel_statuses(&["gone"])
        .await
        .unwrap();
    assert!(statuses.is_empty(), "dropped: {statuses:?}");
    assert!(client
        .pipe("DB", "SCH", PIPE)
        .drop_channel("ELASTIC")
        .await
        .is_err());
    client.close().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_and_wait_for_commit_cover_every_open_channel() {
    let (emu, client) = start(Duration::from_millis(300)).await;
    let a = client
        .table_pipe("DB", "SCH", "T")
        .open_channel("a")
        .await
        .unwrap();
    let b = client
        .table_pipe("DB", "SCH", "T")
        .open_channel("b")
        .await
        .unwrap();
    a.append(
        Rows::serde((0..5).map(|id| Row { id })),
        Positions::span(OffsetToken::from(0u64)..=OffsetToken::from(4u64)),
    )
    .await
    .unwrap();
    b.append(
        Rows::serde([&Row { id: 100 }]),
        Positions::at(OffsetToken::from(100u64)),
    )
    .await
    .unwrap();
    // max_client_lag is 60 s: nothing is sent until flushed.
    client.flush().await.unwrap();
    let acknowledged = emu
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == snowpipe_emulator::Endpoint::AppendRows && r.status == 200)
        .count();
    assert_eq!(
        acknowledged, 2,
        "one request per channel, acknowledged before flush returned"
    );
    // The commit delay is 300 ms: a 50 ms wait times out, a long one sees both commits.
    let err = client
        .wait_for_commit(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    client
        .wait_for_commit(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        a.latest_committed_offset_token(),
        Some(OffsetToken::from(4u64))
    );
    assert_eq!(
        b.latest_committed_offset_token(),
        Some(OffsetToken::from(100u64))
    );
    assert_eq!(
        emu.query("SELECT COUNT(*) FROM \"DB.SCH.T\"").unwrap()[0][0],
        serde_json::json!(6)
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
    client.close().await.unwrap();
    emu.shutdown().await;
}
