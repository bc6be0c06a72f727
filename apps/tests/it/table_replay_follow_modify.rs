//! `table_replay follow` through `ALTER TABLE … MODIFY COLUMN` made while `follow` was not
//! running, against a private MariaDB with its binlog on (skipped without `mariadbd`,
//! except under `CI=true`): a widening (`DECIMAL(10,2)` → `DECIMAL(14,2)`, `VARCHAR(20)` →
//! `VARCHAR(200)`, `INT` → `BIGINT`) widens the change table's columns at the next start and
//! the changes made after it land, values too wide for the old columns among them, with
//! `verify --changes` equal; a `MODIFY` the change table cannot take (`INT` →
//! `VARCHAR(10)`) diverts the table at the next start: its change is a dead letter naming
//! the column, both types and the fix, and `follow` exits non-zero naming the table
//! (`table_replay_follow_divert.rs` has the rest).
#![cfg(unix)]

use mysql_async::prelude::Queryable as _;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, count_where, dead_letters, follow_cmd, follow_until_idle,
    new_database, start_binlog_or_skip, verify_changes, written_twice,
};

const TABLE: &str = "modi";
const CHANGES: &str = "\"REPLAY.PUBLIC.MODI_CHANGES\"";
const DLQ: &str = "\"REPLAY.PUBLIC.MODI_DLQ\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modify_made_while_follow_was_down_widens_or_diverts_at_the_next_start() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    for sql in [
        "CREATE TABLE modi (id BIGINT PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(20), \
         n INT)",
        "INSERT INTO modi SELECT seq, seq + 0.25, CONCAT('n', seq), seq FROM seq_1_to_20",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);

    // follow is down: a change in the old types, the MODIFY, changes only the new types hold.
    let long = "x".repeat(150);
    for sql in [
        "UPDATE modi SET note = 'before' WHERE id = 1".to_owned(),
        "ALTER TABLE modi MODIFY amount DECIMAL(14,2), MODIFY note VARCHAR(200), MODIFY n BIGINT"
            .to_owned(),
        format!("INSERT INTO modi VALUES (21, 123456789012.34, '{long}', 9000000000)"),
        "UPDATE modi SET amount = 99999999999.99 WHERE id = 2".to_owned(),
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let err = follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert!(
        err.contains("widened from NUMBER(10,2) to NUMBER(14,2)")
            && err.contains("widened from VARCHAR(20) to VARCHAR(200)")
            && err.contains("widened from NUMBER(10,0) to NUMBER(19,0)"),
        "the start names no widening:\n{err}"
    );
    assert_eq!(
        count_where(
            &emulator,
            CHANGES,
            &format!("ID = 21 AND _OP = 'c' AND NOTE = '{long}' AND N = 9000000000")
        ),
        1
    );
    assert_eq!(
        count_where(&emulator, CHANGES, "ID = 1 AND NOTE = 'before'"),
        1
    );
    assert_eq!(count_where(&emulator, CHANGES, "ID = 2 AND _OP = 'u'"), 1);
    // Value by value: the amounts wider than DECIMAL(10,2) among them.
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));
    // Run again: the columns hold, nothing is widened twice or written twice.
    let err = follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert!(!err.contains("widened"), "widened again:\n{err}");
    let twice = written_twice(&emulator, CHANGES);
    assert!(twice.is_empty(), "changes written twice: {twice:?}");

    // A MODIFY the change table cannot take, made while follow is down: the next start
    // diverts the table, its change a dead letter, and exits non-zero naming it.
    let before = count_where(&emulator, CHANGES, "1 = 1");
    for sql in [
        "ALTER TABLE modi MODIFY n VARCHAR(10)",
        "UPDATE modi SET n = 'ten' WHERE id = 3",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let out = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "2s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "follow exited 0 diverted:\n{err}");
    assert!(
        err.contains("modi: diverted, its changes are dead letters in MODI_DLQ")
            && err.contains("MODIFY COLUMN on followed table modi")
            && err.contains("varchar(10) (VARCHAR(10)) now and NUMBER(19,0) in the change table")
            && err.contains("table_replay ddl --changes"),
        "the exit names no diverted table, column, types or fix:\n{err}"
    );
    let dead = dead_letters(&emulator, DLQ, TABLE);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0, 3);
    assert!(dead[0]
        .1
        .contains("MODIFY COLUMN on followed table modi at "));
    assert_eq!(count_where(&emulator, CHANGES, "1 = 1"), before);
    emulator.shutdown().await;
}
