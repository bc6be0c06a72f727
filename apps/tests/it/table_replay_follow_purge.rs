//! `table_replay follow` resuming at a binlog position the server no longer has: `follow`
//! commits some changes and is SIGKILLed, the binlog is rotated and purged up to the newest
//! file (`FLUSH BINARY LOGS`, `PURGE BINARY LOGS TO`), more changes are written, and the
//! real binary run again must exit non-zero, naming the missing position and the fix (a new
//! snapshot), writing nothing and losing none of the changes already committed; run with
//! `--resnapshot-purged` it takes a new snapshot of the table into the same change table
//! (history kept) and `verify --changes` is equal. Skipped without `mariadbd` except under
//! `CI=true`.
#![cfg(unix)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, follow_cmd, follow_until_idle, new_database,
    start_binlog_or_skip, verify_changes,
};
use snowpipe_apps::table_replay::source;

const TABLE: &str = "purged";
const CHANGES: &str = "\"REPLAY.PUBLIC.PURGED_CHANGES\"";

/// Every change row: operation, key, value and binlog place, in a stable order.
fn all_changes(emulator: &Emulator) -> Vec<Vec<serde_json::Value>> {
    emulator
        .query(&format!(
            "SELECT _OP, ID, V, _BINLOG_FILE, _BINLOG_POS, _ROW FROM {CHANGES} \
             ORDER BY _OP, ID, _BINLOG_FILE, _BINLOG_POS, _ROW"
        ))
        .unwrap()
}

fn count_op(emulator: &Emulator, op: &str) -> u64 {
    let rows = emulator
        .query(&format!(
            "SELECT COUNT(*) FROM {CHANGES} WHERE _OP = '{op}'"
        ))
        .unwrap();
    rows[0][0].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_resume_position_is_a_clear_error_that_writes_and_loses_nothing() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    let mut admin = source::connect(&format!("{}/mysql", db.server_url()))
        .await
        .unwrap();
    conn.query_drop(format!(
        "CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, v INT)"
    ))
    .await
    .unwrap();
    conn.query_drop(format!(
        "INSERT INTO {TABLE} SELECT seq, seq FROM seq_1_to_500"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;

    // The snapshot, then binlog changes committed by a follow that is SIGKILLed.
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(count_op(&emulator, "r"), 500);
    conn.query_drop(format!("UPDATE {TABLE} SET v = v + 1 WHERE id <= 50"))
        .await
        .unwrap();
    let mut child = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "1h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while count_op(&emulator, "u") < 50 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "follow committed {} of 50 updates in 60 s",
            count_op(&emulator, "u")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let committed = all_changes(&emulator);
    assert_eq!(committed.len(), 550);
    let resume_file = committed.iter().find(|r| r[0] == "u").unwrap()[3]
        .as_str()
        .unwrap()
        .to_owned();

    // The position follow would resume from is purged; more changes follow.
    admin.query_drop("FLUSH BINARY LOGS").await.unwrap();
    let logs: Vec<(String, u64)> = admin.query("SHOW BINARY LOGS").await.unwrap();
    let newest = &logs.last().unwrap().0;
    // The server keeps a file while a dump thread (the killed follow's, until the server
    // sees its connection gone) or the binlog checkpoint still needs it: purge again.
    for attempt in 0.. {
        admin
            .query_drop(format!("PURGE BINARY LOGS TO '{newest}'"))
            .await
            .unwrap();
        let left: Vec<(String, u64)> = admin.query("SHOW BINARY LOGS").await.unwrap();
        if left.iter().all(|(f, _)| f != &resume_file) {
            break;
        }
        assert!(
            attempt < 300,
            "{resume_file} was not purged in 30 s: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conn.query_drop(format!("UPDATE {TABLE} SET v = v + 1 WHERE id > 450"))
        .await
        .unwrap();
    conn.query_drop(format!("DELETE FROM {TABLE} WHERE id = 7"))
        .await
        .unwrap();

    let began = Instant::now();
    let out = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "2s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "follow at a purged position, {:.1}s:\n{err}",
        began.elapsed().as_secs_f64()
    );
    assert!(!out.status.success(), "follow succeeded:\n{err}");
    assert!(
        err.contains(&format!("the binlog at {resume_file}:")) && err.contains("purged"),
        "the error does not name the missing position {resume_file}:\n{err}"
    );
    assert!(
        err.contains(&format!("the oldest file the server has is {newest}"))
            && err.contains(&format!("cannot be read for {TABLE} (committed c:")),
        "the error does not name the oldest file kept and the table that lost changes:\n{err}"
    );
    assert!(
        err.contains("table_replay ddl --changes") && err.contains("new snapshot"),
        "the error does not name the fix (a new snapshot, and how):\n{err}"
    );
    assert!(
        !err.contains("connecting again"),
        "a purged position is not a lost connection to retry:\n{err}"
    );
    // Nothing written, nothing lost.
    assert_eq!(all_changes(&emulator), committed);
    assert!(
        err.contains("--resnapshot-purged"),
        "the error does not name --resnapshot-purged:\n{err}"
    );

    // With --resnapshot-purged: a new snapshot of the table after a `p` row, the history
    // kept, the current state equal (id 7, deleted during the gap, gone from it).
    let out = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "2s")
        .arg("--resnapshot-purged")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "follow --resnapshot-purged failed:\n{err}"
    );
    let after = all_changes(&emulator);
    assert!(
        committed.iter().all(|r| after.contains(r)),
        "the history before the purge was lost"
    );
    assert_eq!(count_op(&emulator, "p"), 1);
    assert_eq!(count_op(&emulator, "r"), 500 + 499);
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));
    // Again: nothing more (the binlog goes on from the new snapshot).
    conn.query_drop(format!("UPDATE {TABLE} SET v = 0 WHERE id = 8"))
        .await
        .unwrap();
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(count_op(&emulator, "p"), 1);
    assert_eq!(count_op(&emulator, "r"), 999);
    assert_eq!(all_changes(&emulator).len(), after.len() + 1);
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));
    emulator.shutdown().await;
}
