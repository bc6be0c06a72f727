//! The SDK against the in-process emulator on protocol details
//! (docs/protocol.md): quoted default pipes, channel-name case, the reserved `ELASTIC` name,
//! the role and sticky sessions.

use crate::common;
use snowpipe_streaming::{Positions, Rows};

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
CREATE OR REPLACE TABLE DOCS (ID NUMBER, DOC VARCHAR);
CREATE OR REPLACE TABLE TIMES (ID NUMBER, TS TIMESTAMP_NTZ, OK BOOLEAN);
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
    ch.append(
        Rows::serde(rows(ids.clone())),
        Positions::span(OffsetToken::from(ids.start)..=OffsetToken::from(last)),
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
    let c = common::emulator::server_channel(&emu, "c");
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

/// The service's 4 MB cap is on the request as sent, after compression; values go to 16 MB.
/// A 6 MB document that compresses to a few KB goes alone in one request and commits, in
/// typed rows and in raw NDJSON alike, between ordinary rows that keep their batches
/// (issue 39). Before, any row over ~4 MB uncompressed was `RowTooLarge`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_six_megabyte_row_that_compresses_into_a_request_commits() {
    #[derive(Serialize)]
    struct Doc {
        #[serde(rename = "ID")]
        id: u64,
        #[serde(rename = "DOC")]
        doc: String,
    }
    let emu = emulator(EmulatorConfig::for_tests()).await;
    let client = builder(&emu).build().await.unwrap();
    let ch = client
        .table_pipe("DB", "SCH", "DOCS")
        .open_channel("c")
        .await
        .unwrap();
    let big: String = (0..6_000_000u32)
        .map(|i| char::from(b'a' + (i / 7 % 26) as u8))
        .collect();
    let small = |id| Doc {
        id,
        doc: "short".into(),
    };
    let rows = [
        small(1),
        Doc {
            id: 2,
            doc: big.clone(),
        },
        small(3),
    ];
    ch.append(Rows::serde(rows), Positions::numbered(1..=3).unwrap())
        .await
        .unwrap();
    let raw = format!("{{\"ID\":4,\"DOC\":\"{big}\"}}\n{{\"ID\":5,\"DOC\":\"x\"}}\n");
    ch.append(
        Rows::ndjson(bytes::Bytes::from(raw)),
        Positions::span(OffsetToken::from(4u64)..=OffsetToken::from(5u64)),
    )
    .await
    .unwrap();
    ch.wait_for_commit(&OffsetToken::from(5u64), Duration::from_secs(30))
        .await
        .unwrap();
    ch.close().await.unwrap();
    client.close().await.unwrap();
    let lengths: Vec<i64> = emu
        .query("SELECT LENGTH(DOC) FROM \"DB.SCH.DOCS\" ORDER BY ID")
        .unwrap()
        .into_iter()
        .map(|r| r[0].as_i64().unwrap())
        .collect();
    assert_eq!(lengths, [5, 6_000_000, 5, 6_000_000, 1]);
    emu.shutdown().await;
}

/// What a default emulator stores is what a default account stores: an epoch into
/// TIMESTAMP_NTZ is the wall clock in the account's time zone (America/Los_Angeles unless
/// set), and BOOLEAN does not take 0/1 (the service drops such rows, so the emulator reports
/// them as row errors rather than storing them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_land_in_the_accounts_time_zone_and_booleans_refuse_numbers() {
    let emu = emulator(EmulatorConfig::for_tests()).await;
    let client = builder(&emu).build().await.unwrap();
    let ch = client
        .table_pipe("DB", "SCH", "TIMES")
        .open_channel("c")
        .await
        .unwrap();
    let mut events = ch.events();
    let rows = [
        serde_json::json!({"ID": 1, "TS": 1_705_312_800, "OK": true}),
        serde_json::json!({"ID": 2, "TS": "2024-01-15 10:00:00", "OK": 1}),
    ];
    ch.append(Rows::serde(rows), Positions::numbered(1..=2).unwrap())
        .await
        .unwrap();
    ch.wait_for_commit(&OffsetToken::from(2u64), Duration::from_secs(10))
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("the BOOLEAN row error is reported")
        .unwrap();
    assert!(format!("{event:?}").contains("BOOLEAN"), "{event:?}");
    ch.close().await.unwrap();
    client.close().await.unwrap();
    let rows = emu
        .query("SELECT ID, TS FROM \"DB.SCH.TIMES\" ORDER BY ID")
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0][1]
            .as_str()
            .unwrap()
            .starts_with("2024-01-15 02:00:00"),
        "{rows:?}"
    );
    emu.shutdown().await;
}
