//! `table_replay follow` SIGKILLed inside a large transaction: one `UPDATE` of every row in
//! one transaction (issue 84's 100,000 rows by default; `CDC_BIG_ROWS=N` changes it), its
//! changes split over many appends; the real binary is killed once the change table holds
//! some but not all of them, then run again. In the end every change of the transaction is
//! in the change table exactly once (by `(_BINLOG_FILE, _BINLOG_POS, _ROW)`) and `verify
//! --changes` finds source and implied state equal. Skipped without `mariadbd` except under
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

const TABLE: &str = "big";
const CHANGES: &str = "\"REPLAY.PUBLIC.BIG_CHANGES\"";

fn one_number(emulator: &Emulator, sql: &str) -> u64 {
    emulator.query(sql).unwrap()[0][0].as_u64().unwrap()
}

fn updates(emulator: &Emulator) -> u64 {
    one_number(
        emulator,
        &format!("SELECT COUNT(*) FROM {CHANGES} WHERE _OP = 'u'"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_killed_inside_a_large_transaction_writes_each_change_once() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let rows: u64 = std::env::var("CDC_BIG_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    conn.query_drop(format!(
        "CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, v INT, note VARCHAR(24))"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    // The (empty) snapshot, then the rows through the binlog.
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    conn.query_drop(format!(
        "INSERT INTO {TABLE} SELECT seq, seq % 1000, CONCAT('r', seq) FROM seq_1_to_{rows}"
    ))
    .await
    .unwrap();
    let began = Instant::now();
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    eprintln!(
        "{rows} inserts followed in {:.1}s (2 s idle included)",
        began.elapsed().as_secs_f64()
    );

    // One transaction changes every row; follow is killed while appending it.
    conn.query_drop(format!(
        "UPDATE {TABLE} SET v = v + 1, note = CONCAT('u', id)"
    ))
    .await
    .unwrap();
    let mut child = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "1h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let began = Instant::now();
    let at_kill = loop {
        let n = updates(&emulator);
        if n > 0 {
            break n;
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "follow committed none of the transaction's changes in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    eprintln!("follow SIGKILLed with {at_kill} of {rows} updates committed");

    let began = Instant::now();
    let err = follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    eprintln!(
        "the rest followed in {:.1}s:\n{err}",
        began.elapsed().as_secs_f64()
    );
    assert!(err.contains("resuming after committed c:"), "{err}");
    // The run after the kill resumed inside the transaction: it wrote some of it, not all.
    let written: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("follow: ")?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no `follow: N changes` line:\n{err}"));
    assert!(
        written > 0 && written < rows,
        "the restart wrote {written} of {rows} changes: the kill was not inside the transaction"
    );
    // Each change of the transaction once: as many rows as distinct positions as rows.
    let changes = format!("FROM {CHANGES} WHERE _OP = 'u'");
    assert_eq!(updates(&emulator), rows, "update rows in the change table");
    let distinct = one_number(
        &emulator,
        &format!(
            "SELECT COUNT(*) FROM (SELECT DISTINCT _BINLOG_FILE, _BINLOG_POS, _ROW {changes})"
        ),
    );
    assert_eq!(
        distinct, rows,
        "distinct (file, position, row) of the updates"
    );
    let keys = one_number(&emulator, &format!("SELECT COUNT(DISTINCT ID) {changes}"));
    assert_eq!(keys, rows, "keys updated");
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));
    emulator.shutdown().await;
}
