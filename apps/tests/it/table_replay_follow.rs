//! `table_replay follow` against a private MariaDB with its binlog on (skipped without
//! `mariadbd`, except under `CI=true`): the snapshot, then binlog changes of every type
//! compared value by value with the snapshot's, and `verify --changes` equal.
#![cfg(unix)]

use mysql_async::prelude::Queryable as _;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, follow_until_idle, new_database, start_binlog_or_skip,
    verify_changes,
};
use snowpipe_apps::table_replay::sample;

const CHANGES: &str = "\"REPLAY.PUBLIC.REPLAY_SAMPLE_CHANGES\"";

/// Every source column of the change rows with operation `op`, by key, the key shifted back
/// by `shift`.
fn rows_of(emulator: &Emulator, op: &str, shift: u64) -> Vec<Vec<serde_json::Value>> {
    let cols =
        "FLAG, SMALL_I, INT_U, BIG_I, BIG_U, PRICE, RATIO, F32, F64, DAY, AT_DT, AT_TS, DUR, \
                YR, CODE, NAME, NOTE, RAW, BLOB_B, FIXED_B, DOC, STATUS, TAGS, BITS";
    emulator
        .query(&format!(
            "SELECT ID - {shift}, {cols} FROM {CHANGES} WHERE _OP = '{op}' ORDER BY ID"
        ))
        .unwrap()
}

/// Asserts `got` equals `want` row by row, naming the first differing cells.
fn same(got: &[Vec<serde_json::Value>], want: &[Vec<serde_json::Value>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: row counts differ");
    let diffs: Vec<String> = got
        .iter()
        .zip(want)
        .flat_map(|(g, w)| {
            g.iter()
                .zip(w)
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(move |(i, (a, b))| format!("key {} column {i}: binlog {a} snapshot {b}", w[0]))
        })
        .take(12)
        .collect();
    assert!(
        diffs.is_empty(),
        "{what} rows differ from the snapshot's:\n{}",
        diffs.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_changes_of_every_type_land_as_the_snapshot_does() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    sample::create(&mut conn, 40).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[sample::TABLE], dir.path()).await;

    // The snapshot: every row as 'r'.
    follow_until_idle(bin, &url, &[sample::TABLE], &emulator, &key);
    let snapshot = rows_of(&emulator, "r", 0);
    assert_eq!(snapshot.len(), 45);

    // Every row again through the binlog: a key-changing UPDATE (a delete of the old key and
    // the row under its new key) and an INSERT … SELECT copy, each of every type.
    conn.query_drop("UPDATE replay_sample SET id = id + 1000000")
        .await
        .unwrap();
    conn.query_drop(
        "INSERT INTO replay_sample SELECT id + 1000000, flag, small_i, int_u, big_i, big_u, price, \
         ratio, f32, f64, day, at_dt, at_ts, dur, yr, code, name, note, raw, blob_b, fixed_b, doc, \
         status, tags, bits FROM replay_sample",
    )
    .await
    .unwrap();
    follow_until_idle(bin, &url, &[sample::TABLE], &emulator, &key);
    same(&rows_of(&emulator, "u", 1_000_000), &snapshot, "update");
    same(&rows_of(&emulator, "c", 2_000_000), &snapshot, "insert");
    assert_eq!(
        rows_of(&emulator, "d", 0).len(),
        45,
        "one delete per old key"
    );

    assert_equal(&verify_changes(bin, &url, sample::TABLE, &emulator, &key));
    emulator.shutdown().await;
}
