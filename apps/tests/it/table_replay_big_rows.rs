//! No row stops the stream (issue 94): rows of 1 KB, 5 MB, 8 MB and 15 MB text values and
//! 11 MiB of control characters (`common/big_values.rs`), between normal rows, against a
//! private MariaDB (skipped without `mariadbd`, except under `CI=true`) and the real binary.
//! `follow`: inserted before the snapshot and after it (binlog); `replay`: one table. A row
//! the SDK can send lands whole; one it cannot (measured before the append by the SDK's own
//! rule) is exactly one dead letter naming the column, its size, the row's and the limit; the
//! normal rows land, a rerun writes nothing twice; `verify --changes` reports the
//! dead-lettered keys, and `verify` of the replay (which reads no dead letters) the rows it
//! lacks.
#![cfg(unix)]

use std::process::{Command, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::big_values::{allow_large_packets, value, SIZES};
use crate::common::table_replay::{at_destination, ddl_printed, destination};
use crate::common::table_replay_follow::{
    assert_equal_but_dead, change_destination, count_where, dead_letters, follow_cmd,
    follow_until_idle, kill_at_rows, new_database, start_binlog_or_skip, written_twice,
};

const TABLE: &str = "big";
const CHANGES: &str = "\"REPLAY.PUBLIC.BIG_CHANGES\"";
const DLQ: &str = "\"REPLAY.PUBLIC.BIG_DLQ\"";

/// Inserts the large rows at keys `first..` (one transaction each, a normal row after
/// each); returns the keys that must be dead letters.
async fn insert_large(conn: &mut mysql_async::Conn, first: u64, normal: u64) -> Vec<u64> {
    let mut dead = Vec::new();
    for (i, (kind, bytes, lands)) in SIZES.iter().enumerate() {
        let k = first + i as u64;
        let v = value(*kind, *bytes, k);
        conn.exec_drop("INSERT INTO big VALUES (?, 'large', ?)", (k, v.as_bytes()))
            .await
            .unwrap();
        conn.query_drop(format!(
            "INSERT INTO big VALUES ({}, 'normal', 'n')",
            normal + i as u64
        ))
        .await
        .unwrap();
        if !lands {
            dead.push(k);
        }
    }
    dead
}

/// Asserts each dead letter names the column, its size, the row's size and the limit: the
/// compressed size over a request for text, the JSON size over 64 MiB for control bytes.
fn assert_reasons(dead: &[(u64, String)], control: &[u64]) {
    for (k, reason) in dead {
        assert!(
            reason.contains("row too large to send: column body (longtext) is ")
                && reason.contains("bytes as JSON; the row is "),
            "key {k}: the reason names no column or sizes: {reason}"
        );
        let limit = if control.contains(k) {
            "past the 67,108,864-byte limit on a row"
        } else {
            "compressed, past the 3,984,119-byte request"
        };
        assert!(reason.contains(limit), "key {k}: {reason}");
    }
}

/// The lengths of `BODY` of the large rows that landed, by key.
fn landed_lengths(emulator: &Emulator, table: &str, cond: &str) -> Vec<(u64, u64)> {
    emulator
        .query(&format!(
            "SELECT ID, LENGTH(BODY) FROM {table} WHERE NOTE = 'large' {cond} ORDER BY ID"
        ))
        .unwrap()
        .into_iter()
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_dead_letters_rows_too_large_to_send_and_goes_on() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    allow_large_packets(&db.server_url()).await;
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    conn.query_drop(
        "CREATE TABLE big (id BIGINT PRIMARY KEY, note VARCHAR(10) NOT NULL, body LONGTEXT NULL)",
    )
    .await
    .unwrap();
    conn.query_drop("INSERT INTO big SELECT seq, 'normal', 'n' FROM seq_1_to_10")
        .await
        .unwrap();
    let mut dead = insert_large(&mut conn, 11, 100).await;
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'r'"), 10 + 5 + 2);

    // The same after the snapshot, from the binlog; SIGKILLed once its first binlog dead
    // letter is committed, then run again until idle, twice.
    dead.extend(insert_large(&mut conn, 21, 200).await);
    let follow = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "1h");
    kill_at_rows(follow, &emulator, (DLQ, 4), Duration::from_secs(120))
        .await
        .unwrap();
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);

    let letters = dead_letters(&emulator, DLQ, TABLE);
    let keys: Vec<u64> = letters.iter().map(|d| d.0).collect();
    assert_eq!(keys, dead, "one dead letter per row too large: {letters:?}");
    assert_reasons(&letters, &[15, 25]);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'c'"), 5 + 2);
    assert_eq!(
        landed_lengths(&emulator, CHANGES, ""),
        [(11, 1_000), (12, 5_000_000), (21, 1_000), (22, 5_000_000)]
    );
    let twice = written_twice(&emulator, CHANGES);
    assert!(twice.is_empty(), "changes written twice: {twice:?}");
    assert_equal_but_dead(bin, &url, TABLE, (&emulator, &key), 6);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_dead_letters_rows_too_large_to_send_and_goes_on() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    allow_large_packets(&db.server_url()).await;
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "rep").await;
    conn.query_drop(
        "CREATE TABLE big (id BIGINT PRIMARY KEY, note VARCHAR(10) NOT NULL, body LONGTEXT NULL)",
    )
    .await
    .unwrap();
    conn.query_drop("INSERT INTO big SELECT seq, 'normal', 'n' FROM seq_1_to_10")
        .await
        .unwrap();
    let dead = insert_large(&mut conn, 11, 100).await;
    let ddl = Command::new(bin)
        .args(["ddl", "--table", TABLE])
        .env("TABLE_REPLAY_SOURCE", &url)
        .output()
        .unwrap();
    let ddl = ddl_printed(ddl, "BIG_DLQ_PIPE");
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = destination(ddl, dir.path()).await;
    let replay = || {
        let mut cmd = Command::new(bin);
        cmd.args(["replay", "--table", TABLE, "--batch", "4"])
            .args(["--database", "REPLAY", "--schema", "PUBLIC"])
            .args(["--max-client-lag", "200ms"])
            .env("TABLE_REPLAY_SOURCE", &url)
            .stdin(Stdio::null());
        at_destination(&mut cmd, &emulator, &key);
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "replay failed:\n{err}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = replay();
    assert!(first.contains("\"dead_lettered\":3"), "{first}");
    // A rerun: nothing new, the dead letters stay once.
    let again = replay();
    assert!(again.contains("\"dead_lettered\":0"), "{again}");

    const ROWS: &str = "\"REPLAY.PUBLIC.BIG\"";
    const BIG_DLQ: &str = "\"REPLAY.PUBLIC.BIG_DLQ\"";
    let letters = dead_letters(&emulator, BIG_DLQ, TABLE);
    let keys: Vec<u64> = letters.iter().map(|d| d.0).collect();
    assert_eq!(keys, dead, "one dead letter per row too large: {letters:?}");
    assert_reasons(&letters, &[15]);
    assert_eq!(count_where(&emulator, ROWS, "NOTE = 'normal'"), 10 + 5);
    assert_eq!(
        landed_lengths(&emulator, ROWS, ""),
        [(11, 1_000), (12, 5_000_000)]
    );
    let verify = at_destination(
        Command::new(bin)
            .args(["verify", "--table", TABLE])
            .args(["--database", "REPLAY", "--schema", "PUBLIC"])
            .env("TABLE_REPLAY_SOURCE", &url),
        &emulator,
        &key,
    )
    .output()
    .unwrap();
    // `verify` of a replay does not read the dead letters (as for every bad row): the
    // table lacks exactly the three keys, and it says DIFFERENT.
    let report = String::from_utf8_lossy(&verify.stdout);
    let rows = report
        .lines()
        .find(|l| l.trim_start().starts_with("rows "))
        .unwrap_or_default();
    assert_eq!(
        rows.split_whitespace().collect::<Vec<_>>(),
        ["rows", "20", "17", "DIFFERENT"],
        "{report}"
    );
    assert!(!verify.status.success(), "{report}");
    emulator.shutdown().await;
}
