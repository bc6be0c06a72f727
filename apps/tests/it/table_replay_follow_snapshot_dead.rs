//! `table_replay follow` meeting values the type mapping refuses in the **snapshot** (an
//! invalid date MariaDB keeps under `ALLOW_INVALID_DATES`, a JSON column holding no JSON),
//! against a private MariaDB with its binlog on (skipped without `mariadbd`, except under
//! `CI=true`): each refused row is one row of `<TABLE>_DLQ` naming `snapshot`, its key and
//! column, the rest of the table lands, a SIGKILL mid-snapshot and reruns write no dead letter
//! twice, and `verify --changes` reports the keys as dead-lettered, the rest equal.
#![cfg(unix)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, count_where, follow_cmd, follow_until_idle, new_database,
    start_binlog_or_skip, verify_changes, written_twice,
};

const TABLE: &str = "sd";
const CHANGES: &str = "\"REPLAY.PUBLIC.SD_CHANGES\"";
const DLQ: &str = "\"REPLAY.PUBLIC.SD_DLQ\"";

/// Every dead letter: key and reason, in key and reason order.
fn dead_letters(emulator: &Emulator) -> Vec<(u64, String)> {
    emulator
        .query(&format!(
            "SELECT SOURCE_KEY, REASON FROM {DLQ} WHERE SOURCE_TABLE = '{TABLE}' \
             ORDER BY SOURCE_KEY, REASON"
        ))
        .unwrap()
        .into_iter()
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_snapshot_values_are_dead_letters_once_and_the_table_lands() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "snapdl").await;
    // 3,000 rows (30 snapshot pages of 100); refused values at keys 150 (a date), 1234 (not
    // JSON) and 3000 (a date, the table's last row: the snapshot's last page).
    conn.query_drop("SET SESSION sql_mode = 'ALLOW_INVALID_DATES', check_constraint_checks = 0")
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE sd (id BIGINT PRIMARY KEY, day DATE NULL, doc JSON NULL, n INT)",
        "INSERT INTO sd SELECT seq, '2024-02-29', '{\"k\": 1}', seq FROM seq_1_to_3000",
        "UPDATE sd SET day = '2024-02-30' WHERE id = 150",
        "UPDATE sd SET doc = '{not json' WHERE id = 1234",
        "UPDATE sd SET day = '2023-04-31' WHERE id = 3000",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;

    // SIGKILLed once its first dead letter is committed (mid-snapshot: 28 pages to go).
    let mut child = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "1h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while count_where(&emulator, DLQ, "1 = 1") == 0 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("follow stopped at a refused snapshot value ({status})");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no dead letter in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let snapshotted = count_where(&emulator, CHANGES, "_OP = 'r'");
    assert!(
        snapshotted < 2997,
        "the kill came after the snapshot ({snapshotted} rows)"
    );
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    // Once more: the snapshot's last row was refused, so no `S:` token marks it complete.
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);

    let dead = dead_letters(&emulator);
    let keys: Vec<u64> = dead.iter().map(|d| d.0).collect();
    assert_eq!(
        keys,
        [150, 1234, 3000],
        "one dead letter per refused row: {dead:?}"
    );
    for (k, reason) in &dead {
        let column = if *k == 1234 {
            "column doc"
        } else {
            "column day"
        };
        assert!(
            reason.starts_with(&format!("snapshot key {k} ")) && reason.contains(column),
            "key {k}: the reason names no snapshot, key or column: {reason}"
        );
    }
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'r'"), 2997);
    let twice = written_twice(&emulator, CHANGES);
    assert!(twice.is_empty(), "changes written twice: {twice:?}");

    // The binlog after the snapshot still lands.
    conn.query_drop("UPDATE sd SET n = n + 1 WHERE id <= 10")
        .await
        .unwrap();
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'u'"), 10);
    assert_eq!(dead_letters(&emulator).len(), 3);

    let out = verify_changes(bin, &url, TABLE, &emulator, &key);
    assert_equal(&out);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("but for 3 dead-lettered keys"),
        "verify does not report the dead-lettered keys:\n{report}"
    );
    emulator.shutdown().await;
}
