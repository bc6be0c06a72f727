//! `table_replay follow` through `ALTER TABLE … ADD/DROP/MODIFY COLUMN` of a followed table,
//! against a private MariaDB with its binlog on and `binlog_row_metadata=FULL` (skipped
//! without `mariadbd`, except under `CI=true`): an added column becomes a column of the
//! change table before the first change carrying it, a dropped one stays (NULL from then
//! on), a run that starts after an `ALTER` adds the column first, `verify --changes` follows
//! the new shape; under a running `follow`, a widening `MODIFY` widens the change table's
//! column (a value only the new type holds lands), and a `MODIFY` to another Snowflake type
//! diverts the table: its changes from there are dead letters naming the column, both types
//! and the fix, and `follow` exits non-zero naming it (`table_replay_follow_divert.rs` has
//! the rest).
#![cfg(unix)]

use mysql_async::prelude::Queryable as _;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, count_where, dead_letters, follow_cmd, follow_until_idle,
    new_database, start_binlog_or_skip, verify_changes, written_twice,
};

const TABLE: &str = "evo";
const CHANGES: &str = "\"REPLAY.PUBLIC.EVO_CHANGES\"";
const DLQ: &str = "\"REPLAY.PUBLIC.EVO_DLQ\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_table_evolves_with_add_and_drop_column() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    for sql in [
        "CREATE TABLE evo (id BIGINT PRIMARY KEY, v INT, gone VARCHAR(10))",
        "INSERT INTO evo SELECT seq, seq, 'g' FROM seq_1_to_30",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);

    // Changes before, an added column, changes with it, a dropped column, changes without it:
    // one follow reads them all.
    for sql in [
        "UPDATE evo SET v = v + 100 WHERE id <= 5",
        "ALTER TABLE evo ADD COLUMN note VARCHAR(20) NULL",
        "INSERT INTO evo VALUES (31, 31, 'g', 'with note')",
        "UPDATE evo SET note = CONCAT('n', id) WHERE id BETWEEN 6 AND 10",
        "ALTER TABLE evo DROP COLUMN gone",
        "INSERT INTO evo VALUES (32, 32, 'after drop')",
        "DELETE FROM evo WHERE id = 1",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(
        count_where(
            &emulator,
            CHANGES,
            "ID = 31 AND NOTE = 'with note' AND GONE = 'g'"
        ),
        1
    );
    assert_eq!(
        count_where(&emulator, CHANGES, "_OP = 'u' AND NOTE IS NOT NULL"),
        5
    );
    assert_eq!(
        count_where(
            &emulator,
            CHANGES,
            "ID = 32 AND NOTE = 'after drop' AND GONE IS NULL"
        ),
        1,
        "a dropped column is NULL from then on"
    );
    assert_eq!(
        count_where(&emulator, CHANGES, "_OP = 'r' AND GONE = 'g'"),
        30
    );
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));

    // An ALTER, then a run that sees only the ALTER (no rows event: its token stays before
    // it), then a change with the new column: the next run adds the column first. Run twice
    // more: nothing twice.
    conn.query_drop("ALTER TABLE evo ADD COLUMN w INT NULL")
        .await
        .unwrap();
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    conn.query_drop("UPDATE evo SET w = id * 2 WHERE id > 28")
        .await
        .unwrap();
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(count_where(&emulator, CHANGES, "W IS NOT NULL"), 4);
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));
    let twice = written_twice(&emulator, CHANGES);
    assert!(twice.is_empty(), "changes written twice: {twice:?}");

    // Under a running follow: a MODIFY that widens (VARCHAR(20) → VARCHAR(200)) widens the
    // change table's column and a value only the new type holds lands; then a MODIFY to
    // another Snowflake type diverts the table: what follows it is a dead letter.
    let long = "y".repeat(120);
    let child = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "5s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    for sql in [
        "ALTER TABLE evo MODIFY COLUMN note VARCHAR(200) NULL".to_owned(),
        format!("UPDATE evo SET note = '{long}' WHERE id = 2"),
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    // The widened column took the long note before the MODIFY below.
    let landed = format!("ID = 2 AND NOTE = '{long}'");
    for _ in 0..600 {
        if count_where(&emulator, CHANGES, &landed) == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count_where(&emulator, CHANGES, &landed), 1);
    let before = count_where(&emulator, CHANGES, "1 = 1");
    conn.query_drop("ALTER TABLE evo MODIFY COLUMN v VARCHAR(10) NULL")
        .await
        .unwrap();
    conn.query_drop("UPDATE evo SET v = 'ten' WHERE id = 3")
        .await
        .unwrap();
    // It ends when idle, non-zero, naming the diverted table.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "follow exited 0 diverted:\n{err}");
    assert!(
        err.contains("widened from VARCHAR(20) to VARCHAR(200)"),
        "no widening said:\n{err}"
    );
    assert!(
        err.contains("warning: evo: diverted")
            && err.contains("MODIFY COLUMN on followed table evo")
            && err.contains(
                "column v was int(11), is varchar(10) (VARCHAR(10)) now and NUMBER(10,0) in the \
                 change table"
            )
            && err.contains("table_replay ddl --changes")
            && err.contains("evo: diverted, its changes are dead letters in EVO_DLQ"),
        "the warning and the exit name no column, types or fix:\n{err}"
    );
    assert_eq!(count_where(&emulator, CHANGES, "1 = 1"), before);
    let dead = dead_letters(&emulator, DLQ, TABLE);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0, 3);
    emulator.shutdown().await;
}
