//! `table_replay follow` meeting values the type mapping refuses (an invalid date MariaDB
//! keeps under `ALLOW_INVALID_DATES`, a JSON column holding no JSON), against a private MariaDB
//! with its binlog on (skipped without `mariadbd`, except under `CI=true`): each refused
//! change is one row of `<TABLE>_DLQ` naming its position, column and reason, the changes
//! after it land, a SIGKILL and reruns write no dead letter twice, and `verify --changes`
//! reports the keys as dead-lettered, the rest equal.
#![cfg(unix)]

use std::time::Duration;

use mysql_async::prelude::Queryable as _;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal_but_dead, change_destination, count_where, dead_letters, follow_cmd,
    follow_until_idle, kill_at_rows, new_database, start_binlog_or_skip, written_twice,
};

const TABLE: &str = "dl";
const CHANGES: &str = "\"REPLAY.PUBLIC.DL_CHANGES\"";
const DLQ: &str = "\"REPLAY.PUBLIC.DL_DLQ\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_values_are_dead_letters_once_and_follow_goes_on() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    for sql in [
        "CREATE TABLE dl (id BIGINT PRIMARY KEY, day DATE NULL, doc JSON NULL, n INT)",
        "INSERT INTO dl SELECT seq, '2024-02-29', '{\"k\": 1}', seq FROM seq_1_to_20",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'r'"), 20);

    // Refused changes among good ones: an insert and an update with an invalid date, an
    // insert whose JSON is no JSON, then enough good transactions for a kill to land among.
    conn.query_drop("SET SESSION sql_mode = 'ALLOW_INVALID_DATES', check_constraint_checks = 0")
        .await
        .unwrap();
    for sql in [
        "INSERT INTO dl VALUES (21, '2024-01-01', NULL, 21), (22, '2024-02-30', NULL, 22), \
         (23, '2024-01-03', NULL, 23)",
        "UPDATE dl SET day = '2023-04-31' WHERE id = 5",
        "INSERT INTO dl VALUES (24, NULL, '{not json', 24)",
        "UPDATE dl SET n = n + 100 WHERE id <= 3",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    for t in 0..40 {
        conn.query_drop(format!(
            "INSERT INTO dl SELECT 1000 + {t} * 50 + seq, '2024-03-01', NULL, seq FROM seq_1_to_50"
        ))
        .await
        .unwrap();
    }
    // SIGKILLed once its first dead letter is committed, then run again until idle.
    let follow = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "1h");
    kill_at_rows(follow, &emulator, (DLQ, 1), Duration::from_secs(60))
        .await
        .unwrap();
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);

    let dead = dead_letters(&emulator, DLQ, TABLE);
    let keys: Vec<u64> = dead.iter().map(|d| d.0).collect();
    assert_eq!(
        keys,
        [5, 22, 24],
        "one dead letter per refused change: {dead:?}"
    );
    for (k, reason) in &dead {
        let column = if *k == 24 { "column doc" } else { "column day" };
        assert!(
            reason.starts_with("binlog binlog.") && reason.contains(column),
            "key {k}: the reason names no position or column: {reason}"
        );
    }
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'c'"), 2 + 2000);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'u'"), 3);

    // A refused change as the binlog's last: every rerun reads it again and skips it.
    conn.query_drop("UPDATE dl SET day = '2024-06-31' WHERE id = 7")
        .await
        .unwrap();
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    let keys: Vec<u64> = dead_letters(&emulator, DLQ, TABLE)
        .iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(keys, [5, 7, 22, 24]);
    let twice = written_twice(&emulator, CHANGES);
    assert!(twice.is_empty(), "changes written twice: {twice:?}");

    assert_equal_but_dead(bin, &url, TABLE, (&emulator, &key), 4);
    emulator.shutdown().await;
}
