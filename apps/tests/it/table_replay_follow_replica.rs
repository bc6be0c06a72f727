//! `table_replay follow` against a replica that lags: a second private MariaDB replicates the
//! first (`MASTER_USE_GTID=slave_pos`, `log_slave_updates` so it writes its own binlog),
//! `follow` reads the replica's binlog, the replica's SQL thread is stopped while the primary
//! takes a workload (`follow` sees none of it), then started: `follow` writes every change
//! once, in the primary's GTID order, and `verify --changes` against the primary is equal.
//! Loopback only; skipped without `mariadbd`, except under `CI=true`.
#![cfg(unix)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;
use snowpipe_apps::table_replay::source;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, caught_up, change_destination, count_where, follow_cmd, follow_until_idle,
    new_database, start_binlog_or_skip, start_replica_of, verify_changes, wait_until,
    written_twice,
};

const TABLE: &str = "lag";
const CHANGES: &str = "\"REPLAY.PUBLIC.LAG_CHANGES\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_on_a_lagging_replica_writes_every_change_once_in_order() {
    let Some(primary) = start_binlog_or_skip() else {
        return;
    };
    let (replica, replica_admin) = start_replica_of(&primary).await;
    let mut r = source::connect(&replica_admin).await.unwrap();

    let bin = &common::bin::table_replay_bin();
    let (primary_url, mut conn) = new_database(&primary, "cdc").await;
    for sql in [
        "CREATE TABLE lag (id BIGINT PRIMARY KEY, v INT, s VARCHAR(20))",
        "INSERT INTO lag SELECT seq, seq, 'first' FROM seq_1_to_100",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let primary_admin = format!("{}/mysql", primary.server_url());
    wait_until("the replica has the table", || {
        caught_up(&primary_admin, &replica_admin)
    })
    .await;
    let replica_url = replica.url("cdc");

    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &replica_url, &[TABLE], dir.path()).await;
    follow_until_idle(bin, &replica_url, &[TABLE], &emulator, &key);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'r'"), 100);

    // The replica stops applying; the primary takes 20 transactions.
    r.query_drop("STOP SLAVE SQL_THREAD").await.unwrap();
    let mut child = follow_cmd(bin, &replica_url, &[TABLE], (&emulator, &key), "1h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for t in 0..20u64 {
        conn.query_drop("BEGIN").await.unwrap();
        conn.query_drop(format!(
            "INSERT INTO lag SELECT 1000 + {} + seq, seq, 'new' FROM seq_1_to_5",
            t * 5
        ))
        .await
        .unwrap();
        conn.query_drop(format!(
            "UPDATE lag SET v = v + 1, s = 'updated' WHERE id BETWEEN {} AND {}",
            t * 3 + 1,
            t * 3 + 3
        ))
        .await
        .unwrap();
        conn.query_drop(format!("DELETE FROM lag WHERE id = {}", 100 - t))
            .await
            .unwrap();
        conn.query_drop("COMMIT").await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count_where(&emulator, CHANGES, "_OP <> 'r'"),
        0,
        "follow wrote changes the replica had not applied"
    );

    // The replica catches up: follow sees every change, late.
    r.query_drop("START SLAVE").await.unwrap();
    wait_until("the replica catches up", || {
        caught_up(&primary_admin, &replica_admin)
    })
    .await;
    let start = Instant::now();
    while count_where(&emulator, CHANGES, "_OP <> 'r'") < 180 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "follow wrote {} of 180 changes in 60 s",
            count_where(&emulator, CHANGES, "_OP <> 'r'")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    follow_until_idle(bin, &replica_url, &[TABLE], &emulator, &key);

    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'c'"), 100);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'u'"), 60);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'd'"), 20);
    let twice = written_twice(&emulator, CHANGES);
    assert!(twice.is_empty(), "changes written twice: {twice:?}");
    // In order: the primary's GTIDs (server 1), their sequence rising with the replica's
    // binlog position.
    let gtids = emulator
        .query(&format!(
            "SELECT _GTID FROM {CHANGES} WHERE _OP <> 'r' ORDER BY _BINLOG_FILE, _BINLOG_POS, _ROW"
        ))
        .unwrap();
    let seqs: Vec<u64> = gtids
        .iter()
        .map(|g| {
            let g = g[0].as_str().expect("a change without its GTID");
            let parts: Vec<&str> = g.split('-').collect();
            assert_eq!(parts[1], "1", "{g} is not the primary's GTID");
            parts[2].parse().unwrap()
        })
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] <= w[1]),
        "changes out of the primary's order: {seqs:?}"
    );
    let distinct: std::collections::BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(distinct.len(), 20, "one GTID per primary transaction");

    assert_equal(&verify_changes(bin, &primary_url, TABLE, &emulator, &key));
    emulator.shutdown().await;
}
