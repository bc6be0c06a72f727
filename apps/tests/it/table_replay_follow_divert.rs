//! `table_replay follow` through an `ALTER TABLE … MODIFY COLUMN` the change table cannot
//! take (`INT` → `VARCHAR(10)`), against a private MariaDB with its binlog on (skipped
//! without `mariadbd`, except under `CI=true`): the table is diverted, not a stop. Its
//! changes from the `ALTER` on are dead letters in `<TABLE>_DLQ`, each once across a SIGKILL
//! in the middle, their reason naming the column, both types, the `ALTER`'s binlog position
//! and the fix; the other table's changes land; `follow --until-idle` exits non-zero naming
//! the diverted table, its JSON line says which; `verify --changes` says it is diverted.
//! Made while `follow` runs, and while it is down.
#![cfg(unix)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, binlog_position, change_destination, count_where, dead_letters, follow_cmd,
    follow_until_idle, kill_at_rows, new_database, start_binlog_or_skip, verify_changes,
    written_twice,
};
use snowpipe_emulator::Emulator;

const A: &str = "diva";
const B: &str = "divb";
const A_CHANGES: &str = "\"REPLAY.PUBLIC.DIVA_CHANGES\"";
const A_DLQ: &str = "\"REPLAY.PUBLIC.DIVA_DLQ\"";
const B_CHANGES: &str = "\"REPLAY.PUBLIC.DIVB_CHANGES\"";

/// The changes made after the `MODIFY`: five on A (each its own transaction, so its own
/// dead-letter commit), two on B.
const AFTER: [&str; 7] = [
    "UPDATE diva SET n = 'three' WHERE id = 3",
    "UPDATE divb SET n = 300 WHERE id = 3",
    "INSERT INTO diva VALUES (11, 'eleven')",
    "DELETE FROM diva WHERE id = 4",
    "UPDATE diva SET n = 'five' WHERE id = 5",
    "INSERT INTO divb VALUES (11, 11)",
    "UPDATE diva SET n = 'six' WHERE id = 6",
];

/// The keys of A's changes in `AFTER`.
const A_KEYS: [u64; 5] = [3, 4, 5, 6, 11];

async fn tables(conn: &mut mysql_async::Conn) {
    for sql in [
        "CREATE TABLE diva (id BIGINT PRIMARY KEY, n INT)",
        "CREATE TABLE divb (id BIGINT PRIMARY KEY, n INT)",
        "INSERT INTO diva SELECT seq, seq FROM seq_1_to_10",
        "INSERT INTO divb SELECT seq, seq FROM seq_1_to_10",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
}

/// After the kill: a run to idle exits non-zero naming A, and every table holds what it must.
async fn assert_diverted(
    bin: &Path,
    url: &str,
    conn: &mut mysql_async::Conn,
    (emulator, key): (&Emulator, &Path),
) {
    let out = follow_cmd(bin, url, &[A, B], (emulator, key), "3s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "follow exited 0:\n{err}");
    assert!(
        err.contains("diva: diverted, its changes are dead letters in DIVA_DLQ"),
        "the exit names no diverted table:\n{err}"
    );
    assert!(!err.contains("divb: diverted"), "{err}");
    assert!(
        !err.contains("moved past them"),
        "no change was rejected:\n{err}"
    );
    let line: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(line["followed"][A]["diverted"].is_string(), "{line}");
    assert!(line["followed"][B]["diverted"].is_null(), "{line}");

    // A's changes since the MODIFY: dead letters, each once, none in its change table.
    let alter = binlog_position(conn, "MODIFY n VARCHAR(10)").await;
    let dead = dead_letters(emulator, A_DLQ, A);
    let keys: Vec<u64> = dead.iter().map(|d| d.0).collect();
    assert_eq!(keys, A_KEYS, "{dead:?}");
    for (_, reason) in &dead {
        for part in [
            &format!("MODIFY COLUMN on followed table diva at {alter}:"),
            "column n ",
            "is varchar(10) (VARCHAR(10)) now and NUMBER(10,0) in the change table",
            "ALTER TABLE DIVA_CHANGES RENAME TO DIVA_CHANGES_HISTORY; DROP PIPE DIVA_CHANGES_PIPE",
        ] {
            assert!(reason.contains(part), "{part:?} missing from {reason}");
        }
    }
    assert_eq!(count_where(emulator, A_CHANGES, "_OP <> 'r'"), 0);
    // B went on: its changes landed, once.
    assert_eq!(count_where(emulator, B_CHANGES, "ID = 3 AND N = 300"), 1);
    assert_eq!(count_where(emulator, B_CHANGES, "ID = 11 AND _OP = 'c'"), 1);
    assert!(written_twice(emulator, B_CHANGES).is_empty());
    assert_equal(&verify_changes(bin, url, B, emulator, key));
    let v = verify_changes(bin, url, A, emulator, key);
    let report = String::from_utf8_lossy(&v.stdout);
    assert!(!v.status.success(), "verify of a diverted table exited 0");
    assert!(
        report.contains("RESULT: DIVERTED (not compared): diva is diverted: column n is")
            && !report.contains("every value equal"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modify_the_change_table_cannot_take_diverts_that_table_while_running() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "divrun").await;
    tables(&mut conn).await;
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[A, B], dir.path()).await;
    follow_until_idle(bin, &url, &[A, B], &emulator, &key);

    // follow runs: the MODIFY, then changes on A and B; SIGKILLed at A's first dead letter.
    let mut child = follow_cmd(bin, &url, &[A, B], (&emulator, &key), "1h")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    conn.query_drop("ALTER TABLE diva MODIFY n VARCHAR(10)")
        .await
        .unwrap();
    for sql in AFTER {
        conn.query_drop(sql).await.unwrap();
    }
    let start = Instant::now();
    while count_where(&emulator, A_DLQ, "1 = 1") == 0 {
        assert!(child.try_wait().unwrap().is_none(), "follow stopped");
        assert!(start.elapsed() < Duration::from_secs(60), "no dead letter");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("warning: diva: diverted").count(),
        1,
        "one warning line when diverted:\n{err}"
    );
    assert_diverted(bin, &url, &mut conn, (&emulator, &key)).await;
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modify_the_change_table_cannot_take_made_while_follow_was_down_diverts_that_table() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "divdown").await;
    tables(&mut conn).await;
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[A, B], dir.path()).await;
    follow_until_idle(bin, &url, &[A, B], &emulator, &key);

    // follow is down: the MODIFY and the changes; the next start is SIGKILLed in the middle.
    conn.query_drop("ALTER TABLE diva MODIFY n VARCHAR(10)")
        .await
        .unwrap();
    for sql in AFTER {
        conn.query_drop(sql).await.unwrap();
    }
    let follow = follow_cmd(bin, &url, &[A, B], (&emulator, &key), "1h");
    kill_at_rows(follow, &emulator, (A_DLQ, 1), Duration::from_secs(60))
        .await
        .unwrap();
    assert_diverted(bin, &url, &mut conn, (&emulator, &key)).await;
    emulator.shutdown().await;
}
