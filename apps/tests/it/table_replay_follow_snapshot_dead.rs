//! `table_replay follow` meeting values the type mapping refuses in the **snapshot** (an
//! invalid date MariaDB keeps under `ALLOW_INVALID_DATES`, a JSON column holding no JSON),
//! against a private MariaDB with its binlog on (skipped without `mariadbd`, except under
//! `CI=true`): each refused row is one row of `<TABLE>_DLQ` naming `snapshot`, its key and
//! column, the rest of the table lands, a SIGKILL mid-snapshot and reruns write no dead letter
//! twice, and `verify --changes` reports the keys as dead-lettered, the rest equal.
#![cfg(unix)]

use std::time::Duration;

use mysql_async::prelude::Queryable as _;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal_but_dead, change_destination, changes_ddl, count_where, dead_letters, follow_cmd,
    follow_until_idle, kill_at_rows, new_database, sql_api_statements, start_binlog_or_skip,
    written_twice,
};

const TABLE: &str = "sd";
const CHANGES: &str = "\"REPLAY.PUBLIC.SD_CHANGES\"";
const DLQ: &str = "\"REPLAY.PUBLIC.SD_DLQ\"";

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
    let follow = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "1h");
    kill_at_rows(follow, &emulator, (DLQ, 1), Duration::from_secs(60))
        .await
        .unwrap();
    let snapshotted = count_where(&emulator, CHANGES, "_OP = 'r'");
    assert!(
        snapshotted < 2997,
        "the kill came after the snapshot ({snapshotted} rows)"
    );
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    // Once more: the snapshot's last row was refused, so no `S:` token marks it complete.
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);

    let dead = dead_letters(&emulator, DLQ, TABLE);
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
    assert_eq!(dead_letters(&emulator, DLQ, TABLE).len(), 3);

    assert_equal_but_dead(bin, &url, TABLE, (&emulator, &key), 3);
    emulator.shutdown().await;
}

/// The fix a diverted table, a rejected change or a dropped table names: a new snapshot (the
/// change pipe and table dropped and made again, `follow` run again). The new snapshot's
/// refused rows are dead letters of their own, whatever the dead-letter channel committed
/// before: its committed token (here a binlog change's, after the first snapshot) names the
/// first snapshot, not this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_snapshot_writes_its_own_dead_letters() {
    const T: &str = "sn";
    const T_CHANGES: &str = "\"REPLAY.PUBLIC.SN_CHANGES\"";
    const T_DLQ: &str = "\"REPLAY.PUBLIC.SN_DLQ\"";
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "snapnew").await;
    conn.query_drop("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE sn (id BIGINT PRIMARY KEY, day DATE NULL, n INT)",
        "INSERT INTO sn SELECT seq, '2024-02-29', seq FROM seq_1_to_1000",
        "UPDATE sn SET day = '2024-02-30' WHERE id IN (150, 900)",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[T], dir.path()).await;
    follow_until_idle(bin, &url, &[T], &emulator, &key);
    // A refused change after the snapshot: the dead-letter channel commits a binlog token.
    conn.query_drop("UPDATE sn SET day = '2024-02-31' WHERE id = 500")
        .await
        .unwrap();
    follow_until_idle(bin, &url, &[T], &emulator, &key);
    let first: Vec<u64> = dead_letters(&emulator, T_DLQ, T)
        .iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(first, [150, 500, 900]);
    // The new snapshot, as the fix says, history discarded (the emulator does not rename
    // tables): drop the change pipe and table, make them again.
    let sql = snowpipe_streaming::StreamingIngestClient::builder()
        .account("REPLAY")
        .user("REPLAY")
        .url(emulator.url())
        .private_key_file(&key)
        .build_sql()
        .unwrap()
        .database("REPLAY")
        .schema("PUBLIC");
    let ddl = changes_ddl(bin, &url, T, None);
    // The drops exactly as the fix prints them (`T_CHANGES` is the emulator's storage name,
    // a SQL API name only of a table literally named `REPLAY.PUBLIC.SN_CHANGES`).
    let fix = snowpipe_apps::table_replay::cdc::changes::new_snapshot_fix([T]);
    let drops = fix
        .split_once("(or, to discard the history: ")
        .and_then(|(_, f)| f.split_once("), create"))
        .map(|(d, _)| d)
        .unwrap_or_else(|| panic!("the fix names no drops: {fix}"));
    assert_eq!(drops, "DROP PIPE SN_CHANGES_PIPE; DROP TABLE SN_CHANGES;");
    for statement in drops.split(';').chain(sql_api_statements(&ddl)) {
        if !statement.trim().is_empty() {
            sql.query(statement.trim()).await.unwrap();
        }
    }
    // Meanwhile one more row is refused, its key before every key committed before.
    conn.query_drop("UPDATE sn SET day = '2023-04-31' WHERE id = 30")
        .await
        .unwrap();
    follow_until_idle(bin, &url, &[T], &emulator, &key);
    let snapshot_keys: Vec<u64> = dead_letters(&emulator, T_DLQ, T)
        .into_iter()
        .filter(|(_, reason)| reason.starts_with("snapshot key"))
        .map(|d| d.0)
        .collect();
    // The first snapshot's 150 and 900, the new one's 30, 150, 500 and 900.
    assert_eq!(
        snapshot_keys,
        [30, 150, 150, 500, 900, 900],
        "the new snapshot's refused rows are not all dead letters"
    );
    assert_eq!(count_where(&emulator, T_CHANGES, "_OP = 'r'"), 996);
    assert_equal_but_dead(bin, &url, T, (&emulator, &key), 4);
    emulator.shutdown().await;
}
