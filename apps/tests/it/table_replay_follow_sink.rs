//! `table_replay follow` against an emulator in sink mode (`--sink`: rows counted, not
//! stored), the cheap destination a snapshot's measurement needs (issue 96, item 4): it reads
//! its change and dead-letter tables' columns at start (`SELECT … LIMIT 0`), streams the
//! snapshot and then the binlog's changes, and a restart resumes from the committed tokens;
//! the emulator's counters hold every change once. Skipped without `mariadbd` except under
//! `CI=true`.
#![cfg(unix)]

use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use snowpipe_emulator::{Emulator, EmulatorConfig};

use crate::common;
use crate::common::table_replay_follow::{
    changes_ddl, follow_until_idle, new_database, start_binlog_or_skip,
};

const TABLE: &str = "sunk";

fn sink_rows(emulator: &Emulator) -> u64 {
    emulator.status()["sink"]["rows"].as_u64().unwrap()
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
    let key = dir.path().join("key.p8");
    std::fs::write(&key, common::TEST_KEY).unwrap();
    let mut config = EmulatorConfig::default();
    config.ddl = vec![
        "CREATE DATABASE IF NOT EXISTS REPLAY; CREATE SCHEMA IF NOT EXISTS REPLAY.PUBLIC;".into(),
        changes_ddl(bin, &url, TABLE, None),
    ];
    config.public_keys = vec![common::TEST_PUBLIC_KEY.into()];
    config.commit_delay = Duration::from_millis(150);
    config.strict_offsets = true;
    config.sink = true;
    let emulator = Emulator::start(config).await.unwrap();

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
    emulator.shutdown().await;
}
