//! `table_replay follow` against an emulator in sink mode (`--sink`: rows counted, not
//! stored), the cheap destination a snapshot's measurement needs (issue 96, item 4): it reads
//! its change and dead-letter tables' columns at start (`SELECT … LIMIT 0`), streams the
//! snapshot and then the binlog's changes, a restart resumes from the committed tokens, and a
//! column added at the source is added to the change table (`ALTER TABLE … ADD COLUMN`); the
//! emulator's counters hold every change once. Skipped without `mariadbd` except under
//! `CI=true`.
#![cfg(unix)]

use mysql_async::prelude::Queryable as _;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay_follow::{
    follow_until_idle, new_database, sink_change_destination, start_binlog_or_skip,
};

const TABLE: &str = "sunk";
const CHANGES: &str = "\"REPLAY.PUBLIC.SUNK_CHANGES\"";

fn sink_rows(emulator: &Emulator) -> u64 {
    emulator.status()["sink"]["rows"].as_u64().unwrap()
}

/// The change table's columns, as the sink emulator's catalog holds them.
fn change_columns(emulator: &Emulator) -> Vec<String> {
    let (names, rows) = emulator
        .query_with_columns(&format!("SELECT * FROM {CHANGES} LIMIT 0"))
        .unwrap();
    assert!(rows.is_empty());
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_streams_into_a_sink_mode_emulator_and_resumes() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "sink").await;
    conn.query_drop(format!(
        "CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, v INT, note VARCHAR(20))"
    ))
    .await
    .unwrap();
    conn.query_drop(format!(
        "INSERT INTO {TABLE} SELECT seq, seq, 'n' FROM seq_1_to_300"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = sink_change_destination(bin, &url, &[TABLE], dir.path()).await;

    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(sink_rows(&emulator), 300, "the snapshot's rows");
    conn.query_drop(format!("UPDATE {TABLE} SET v = v + 1 WHERE id <= 50"))
        .await
        .unwrap();
    conn.query_drop(format!("DELETE FROM {TABLE} WHERE id > 290"))
        .await
        .unwrap();
    // A restart resumes after what the first run committed: the 60 changes, once.
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(
        sink_rows(&emulator),
        360,
        "the snapshot and 60 changes, once"
    );

    // A column added at the source while follow is down: follow reads the change table's
    // columns (LIMIT 0), adds the new one (ALTER) and streams the changes that carry it.
    let before = change_columns(&emulator);
    assert!(!before.iter().any(|c| c == "EXTRA"), "{before:?}");
    conn.query_drop(format!("ALTER TABLE {TABLE} ADD COLUMN extra INT"))
        .await
        .unwrap();
    conn.query_drop(format!("UPDATE {TABLE} SET extra = 7 WHERE id <= 10"))
        .await
        .unwrap();
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    let after = change_columns(&emulator);
    assert_eq!(after.len(), before.len() + 1, "{before:?} → {after:?}");
    assert!(after.iter().any(|c| c == "EXTRA"), "{after:?}");
    assert_eq!(
        sink_rows(&emulator),
        370,
        "the snapshot, 60 changes and 10 with the new column, once"
    );
    emulator.shutdown().await;
}
