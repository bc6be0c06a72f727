//! `table_replay follow` through `TRUNCATE`s of a followed table, against a private MariaDB
//! with its binlog on (skipped without `mariadbd`, except under `CI=true`): each truncate is
//! one `t` change row, the current state drops every row before the latest one, a rerun
//! that reads the truncate again skips it, and `verify --changes` finds the source equal after
//! each step.
#![cfg(unix)]

use mysql_async::prelude::Queryable as _;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, count_where, follow_until_idle, new_database,
    start_binlog_or_skip, verify_changes, written_twice,
};

const TABLE: &str = "trunc";
const CHANGES: &str = "\"REPLAY.PUBLIC.TRUNC_CHANGES\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_is_one_change_and_the_state_after_it_is_equal() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    for sql in [
        "CREATE TABLE trunc (id BIGINT PRIMARY KEY, v INT, s VARCHAR(20))",
        "INSERT INTO trunc SELECT seq, seq, CONCAT('old-', seq) FROM seq_1_to_50",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'r'"), 50);

    // Changes before the truncate, the truncate, and rows under the same keys after it.
    for sql in [
        "UPDATE trunc SET v = v + 1000 WHERE id <= 10",
        "TRUNCATE TABLE trunc",
        "INSERT INTO trunc SELECT seq, seq * 2, CONCAT('new-', seq) FROM seq_1_to_20",
        "DELETE FROM trunc WHERE id = 5",
        "UPDATE trunc SET s = 'changed' WHERE id = 6",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 't'"), 1);
    assert_eq!(
        count_where(&emulator, CHANGES, "_OP = 't' AND ID IS NULL AND V IS NULL"),
        1,
        "a truncate's row carries no source column"
    );
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));

    // A truncate as the last change: the rerun reads it again (its transaction is where the
    // binlog resumes) and must not write it twice; the emptied table verifies equal.
    conn.query_drop("INSERT INTO trunc SELECT seq, seq, 'x' FROM seq_100_to_110")
        .await
        .unwrap();
    conn.query_drop("TRUNCATE trunc").await.unwrap();
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 't'"), 2);
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));
    let before = count_where(&emulator, CHANGES, "1 = 1");
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(
        count_where(&emulator, CHANGES, "1 = 1"),
        before,
        "a rerun with nothing new wrote changes again"
    );

    conn.query_drop("INSERT INTO trunc SELECT seq, seq, 'y' FROM seq_300_to_305")
        .await
        .unwrap();
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));
    let twice = written_twice(&emulator, CHANGES);
    assert!(twice.is_empty(), "changes written twice: {twice:?}");
    emulator.shutdown().await;
}
