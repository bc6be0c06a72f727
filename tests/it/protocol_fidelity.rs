//! The SDK against the in-process emulator on protocol details
//! (docs/protocol.md): quoted default pipes, channel-name case, the reserved `ELASTIC` name,
//! the role and sticky sessions.

use crate::common;

use std::time::Duration;

use crate::common::*;
use serde::Serialize;
use snowpipe_emulator::{Emulator, EmulatorConfig};
use snowpipe_streaming::{ClientBuilder, OffsetToken};

const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DB;
CREATE SCHEMA IF NOT EXISTS SCH;
CREATE OR REPLACE TABLE T (ID NUMBER, NAME VARCHAR(100));
CREATE OR REPLACE TABLE \"Mixed Case\" (ID NUMBER, NAME VARCHAR(100));
";

#[derive(Serialize)]
struct Row {
    id: u64,
    name: String,
}

async fn emulator(config: EmulatorConfig) -> Emulator {
    Emulator::start(
        config
            .with_ddl(DDL)
            .with_public_key(TEST_PUBLIC_KEY)
            .with_commit_delay(Duration::from_millis(10)),
    )
    .await
    .unwrap()
}

fn builder(emu: &Emulator) -> ClientBuilder {
    common::emulator::builder(emu)
}

fn rows(ids: std::ops::Range<u64>) -> Vec<Row> {
    ids.map(|id| Row {
        id,
        name: format!("n{id}"),
    })
    .collect()
}

fn count(emu: &Emulator, sql: &str) -> i64 {
    emu.query(sql).unwrap()[0][0].as_i64().unwrap()
}

/// Appends `ids` with dense numeric tokens and waits for the commit.
async fn append_committed(ch: &snowpipe_streaming::Channel, ids: std::ops::Range<u64>) {
    let last = ids.end - 1;
    ch.append_rows(
        rows(ids.clone()),
        Some(OffsetToken::from(ids.start)),
        Some(OffsetToken::from(last)),
    )
    .await
    .unwrap();
    ch.wait_for_commit(&OffsetToken::from(last), Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quoted_mixed_case_table_streams_through_its_quoted_default_pipe() {
    let emu = emulator(EmulatorConfig::for_tests()).await;
    let client = builder(&emu).build().await.unwrap();
    let ch = client
        .table_pipe("DB", "SCH", "\"Mixed Case\"")
        .open_channel("c1")
        .await
        .unwrap();
    append_committed(&ch, 0..10).await;
    ch.close().await.unwrap();
    assert_eq!(
        count(&emu, "SELECT COUNT(*) FROM \"DB.SCH.Mixed Case\""),
        10
    );
    let pipes = emu.status()["pipes"].clone();
    assert!(
        pipes
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Mixed Case-STREAMING"),
        "{pipes}"
    );
    client.close().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_channel_under_two_cases_is_refused_as_already_open() {
    let emu = emulator(EmulatorConfig::for_tests()).await;
    let client = builder(&emu).build().await.unwrap();
    let ch = client
        .table_pipe("DB", "SCH", "T")
        .open_channel("Orders")
        .await
        .unwrap();
    let err = client
        .table_pipe("DB", "SCH", "T")
        .open_channel("ORDERS")
        .await
        .expect_err("ORDERS is the channel Orders on the server");
    assert!(err.to_string().contains("already open"), "{err}");
    // Database, schema and pipe names are case-insensitive too: `db.sch.t-streaming/Orders`
    // is the same channel, and opening it would have invalidated `ch` on the server.
    let err = client
        .table_pipe("db", "sch", "t")
        .open_channel("orders")
        .await
        .expect_err("db.sch.t/orders is DB.SCH.T/Orders on the server");
    assert!(err.to_string().contains("already open"), "{err}");
    append_committed(&ch, 0..5).await;
    ch.close().await.unwrap();
    client.close().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_role_reaches_the_emulator_and_decides_access() {
    let emu = emulator(EmulatorConfig::for_tests().with_role_grant("LOADER", "DB")).await;
    let client = builder(&emu).role("loader").build().await.unwrap();
    let ch = client
        .table_pipe("DB", "SCH", "T")
        .open_channel("c")
        .await
        .unwrap();
    append_committed(&ch, 0..3).await;
    ch.close().await.unwrap();
    client.close().await.unwrap();
    let other = builder(&emu).role("OTHER").build().await.unwrap();
    let err = other
        .table_pipe("DB", "SCH", "T")
        .open_channel("c")
        .await
        .expect_err("OTHER has no grant on DB");
    assert_eq!(
        err.snowflake_code(),
        Some("ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"),
        "{err}"
    );
    other.close().await.unwrap();
    assert_eq!(count(&emu, "SELECT COUNT(*) FROM \"DB.SCH.T\""), 3);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_echoes_the_emulators_session_per_channel_incarnation() {
    let emu = emulator(EmulatorConfig::for_tests()).await;
    let client = builder(&emu).build().await.unwrap();
    let ch = client
        .table_pipe("DB", "SCH", "T")
        .open_channel("c")
        .await
        .unwrap();
    for i in 0..3 {
        append_committed(&ch, i * 10..i * 10 + 10).await;
    }
    ch.close().await.unwrap();
    let ch = client
        .table_pipe("DB", "SCH", "T")
        .open_channel("c")
        .await
        .unwrap();
    append_committed(&ch, 30..40).await;
    ch.close().await.unwrap();
    client.close().await.unwrap();
    let channels = emu.status()["channels"].clone();
    let c = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel_name"] == "c")
        .unwrap()
        .clone();
    // The first append of each incarnation has none to echo; every later one echoes.
    assert_eq!(
        c["sessions"],
        serde_json::json!({"echoed": 2, "missing": 2, "stale": 0}),
        "{c}"
    );
    let sessions: Vec<_> = emu
        .requests()
        .into_iter()
        .filter_map(|r| r.session)
        .collect();
    assert_eq!(sessions, ["missing", "echoed", "echoed", "missing"]);
    emu.shutdown().await;
}
