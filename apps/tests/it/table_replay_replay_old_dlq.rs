//! `table_replay replay` into a dead-letter table an earlier version created, without
//! `SOURCE_KEY_TEXT`: the replay adds the column at start (as `follow` does) and says so, the
//! table's earlier row is kept (NULL there), each new dead letter has its key in it, and a
//! second run finds the column there. Against a private MariaDB (skipped without `mariadbd`,
//! except under `CI=true`).
#![cfg(unix)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use mysql_async::prelude::Queryable as _;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay::{at_destination, ddl_printed, destination, earlier_dead_letter};
use snowpipe_apps::table_replay::{mariadb, source};

const DLQ: &str = "\"REPLAY.PUBLIC.OLDDL_DLQ\"";

fn replay(bin: &Path, url: &str, emulator: &Emulator, key: &Path) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(["replay", "--table", "olddl", "--max-client-lag", "50ms"])
        .env("TABLE_REPLAY_SOURCE", url)
        .stdin(Stdio::null());
    at_destination(&mut cmd, emulator, key);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// An earlier version's dead letter (no `SOURCE_KEY_TEXT`).
fn earlier_row() -> serde_json::Value {
    serde_json::json!({
        "SOURCE_TABLE": "olddl",
        "SOURCE_KEY": 9,
        "REASON": "key 9: column born (date): invalid date",
        "RAW_VALUES": {"id": 9, "born": "2024-02-31"},
        "DEAD_LETTERED_AT": "2026-01-01T00:00:00.000+00:00",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_adds_source_key_text_to_a_dead_letter_table_of_an_earlier_version() {
    let Some(db) = mariadb::start_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let mut admin = source::connect(&format!("{}/mysql", db.server_url()))
        .await
        .unwrap();
    admin.query_drop("CREATE DATABASE olddl").await.unwrap();
    let url = db.url("olddl");
    let mut conn = source::connect(&url).await.unwrap();
    conn.query_drop("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE olddl (id BIGINT UNSIGNED PRIMARY KEY, born DATE NULL)",
        "INSERT INTO olddl VALUES (1, '2024-02-29'), (2, '2024-02-30'), (3, NULL), \
         (4, '2023-02-29')",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let out = Command::new(bin)
        .args(["ddl", "--table", "olddl"])
        .env("TABLE_REPLAY_SOURCE", &url)
        .output()
        .unwrap();
    let new = ddl_printed(out, "OLDDL_DLQ_PIPE");
    assert!(new.contains("    SOURCE_KEY_TEXT VARCHAR,\n"), "{new}");
    // The DDL of an earlier version: the dead-letter table without SOURCE_KEY_TEXT.
    let old = new.replace("    SOURCE_KEY_TEXT VARCHAR,\n", "");
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = destination(old, dir.path()).await;
    earlier_dead_letter(&emulator, "OLDDL_DLQ_PIPE", earlier_row(), 9).await;
    assert!(emulator
        .query(&format!("SELECT SOURCE_KEY_TEXT FROM {DLQ}"))
        .is_err());

    let out = replay(bin, &url, &emulator, &key);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("olddl: added column SOURCE_KEY_TEXT to OLDDL_DLQ"),
        "no migration said:\n{err}"
    );
    let rows = emulator
        .query(&format!(
            "SELECT SOURCE_KEY, SOURCE_KEY_TEXT FROM {DLQ} ORDER BY SOURCE_KEY"
        ))
        .unwrap();
    let got: Vec<(u64, Option<String>)> = rows
        .iter()
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_str().map(str::to_owned)))
        .collect();
    assert_eq!(
        got,
        [
            (2, Some("[2]".to_owned())),
            (4, Some("[4]".to_owned())),
            (9, None)
        ],
        "the earlier dead letter kept (NULL key text), each new one with its key"
    );

    // A second run finds the column there and says nothing of it.
    let out = replay(bin, &url, &emulator, &key);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("added column"), "{err}");
    emulator.shutdown().await;
}
