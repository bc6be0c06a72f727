//! `table_replay follow` across a failover: a primary (binlog, GTIDs) and a replica
//! replicating it (`log_slave_updates`, its own binlog, laid out differently: the primary's
//! binlog has been rotated, the replica's has not). `follow` reads the primary, commits
//! changes and is SIGKILLed; the primary takes more changes and stops; the replica is
//! promoted (`STOP SLAVE; RESET SLAVE ALL`) and takes more; `follow` pointed at the replica
//! resumes by GTID: every change once, the ones read from the replica in a later `_EPOCH`,
//! and `verify --changes` against the replica equal (the latest row per key is the
//! replica's, though its binlog positions compare below the primary's). Loopback only;
//! skipped without `mariadbd`, except under `CI=true`.
#![cfg(unix)]

use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use snowpipe_apps::table_replay::source;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, caught_up, change_destination, count_where, follow_cmd, follow_until_idle,
    kill_at_rows, new_database, start_binlog_or_skip, start_replica_of, verify_changes, wait_until,
};

const TABLE: &str = "moved";
const CHANGES: &str = "\"REPLAY.PUBLIC.MOVED_CHANGES\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failover_follow_resumes_on_the_promoted_replica_by_gtid() {
    let Some(primary) = start_binlog_or_skip() else {
        return;
    };
    let (replica, replica_admin) = start_replica_of(&primary).await;
    let primary_admin = format!("{}/mysql", primary.server_url());
    let mut p = source::connect(&primary_admin).await.unwrap();
    // The primary's binlog files are numbered past the replica's: positions do not compare.
    for _ in 0..3 {
        p.query_drop("FLUSH BINARY LOGS").await.unwrap();
    }

    let bin = &common::bin::table_replay_bin();
    let (primary_url, mut conn) = new_database(&primary, "cdc").await;
    for sql in [
        "CREATE TABLE moved (id BIGINT PRIMARY KEY, v INT, s VARCHAR(20))",
        "INSERT INTO moved SELECT seq, seq, 'first' FROM seq_1_to_200",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    wait_until("the replica has the table", || {
        caught_up(&primary_admin, &replica_admin)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &primary_url, &[TABLE], dir.path()).await;
    follow_until_idle(bin, &primary_url, &[TABLE], &emulator, &key);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'r'"), 200);

    // Changes on the primary, committed by a follow that is then SIGKILLed: 41 changes.
    for sql in [
        "UPDATE moved SET v = v + 1, s = 'primary' WHERE id <= 30",
        "INSERT INTO moved SELECT 1000 + seq, seq, 'new' FROM seq_1_to_10",
        "DELETE FROM moved WHERE id = 200",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let cmd = follow_cmd(bin, &primary_url, &[TABLE], (&emulator, &key), "1h");
    kill_at_rows(cmd, &emulator, (CHANGES, 241), Duration::from_secs(60))
        .await
        .unwrap();

    // More on the primary while follow is down (31), then the primary stops.
    for sql in [
        "UPDATE moved SET v = v + 1, s = 'late' WHERE id BETWEEN 31 AND 60",
        "DELETE FROM moved WHERE id = 199",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    wait_until("the replica catches up", || {
        caught_up(&primary_admin, &replica_admin)
    })
    .await;
    drop((conn, p));
    drop(primary);

    // The replica is promoted and takes changes of its own (51), some on the same keys.
    let mut r = source::connect(&replica_admin).await.unwrap();
    r.query_drop("STOP SLAVE").await.unwrap();
    r.query_drop("RESET SLAVE ALL").await.unwrap();
    let replica_url = replica.url("cdc");
    let mut rc = source::connect(&replica_url).await.unwrap();
    for sql in [
        "UPDATE moved SET v = v * 10, s = 'replica' WHERE id <= 40",
        "INSERT INTO moved SELECT 2000 + seq, seq, 'replica' FROM seq_1_to_10",
        "DELETE FROM moved WHERE id = 198",
    ] {
        rc.query_drop(sql).await.unwrap();
    }

    let err = follow_until_idle(bin, &replica_url, &[TABLE], &emulator, &key);
    assert!(
        err.contains("GTID"),
        "follow did not resume by GTID:\n{err}"
    );
    // Every change once: 20 inserts, 100 updates, 3 deletes.
    let ops = emulator
        .query(&format!(
            "SELECT _OP, COUNT(*) FROM {CHANGES} GROUP BY _OP ORDER BY _OP"
        ))
        .unwrap();
    let ops: Vec<(String, u64)> = ops
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_u64().unwrap()))
        .collect();
    let want = [("c", 20), ("d", 3), ("r", 200), ("u", 100)].map(|(o, n)| (o.to_owned(), n));
    assert_eq!(ops, want, "changes lost or written twice:\n{err}");
    let twice = emulator
        .query(&format!(
            "SELECT _GTID, ID, _OP, COUNT(*) FROM {CHANGES} WHERE _OP <> 'r' \
             GROUP BY _GTID, ID, _OP HAVING COUNT(*) > 1"
        ))
        .unwrap();
    assert!(twice.is_empty(), "changes written twice: {twice:?}");
    // What was read from the replica is in the next epoch; what was read before is not.
    assert_eq!(count_where(&emulator, CHANGES, "_EPOCH = 1"), 82);
    assert_eq!(count_where(&emulator, CHANGES, "_EPOCH IS NULL"), 241);
    assert_equal(&verify_changes(bin, &replica_url, TABLE, &emulator, &key));
    emulator.shutdown().await;
}

/// `follow` pointed at a server that is not a replica of the one it read (its own binlog,
/// its own GTIDs): a clear non-zero exit naming both servers, not a purge, nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_a_replica_is_refused_by_name() {
    let Some(primary) = start_binlog_or_skip() else {
        return;
    };
    let other = snowpipe_apps::table_replay::mariadb::MariaDb::start_with(&[
        "--log-bin=binlog",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--binlog-row-metadata=FULL",
        "--server-id=3",
    ])
    .expect("start the other server");
    let bin = &common::bin::table_replay_bin();
    let (primary_url, mut conn) = new_database(&primary, "cdc").await;
    let (other_url, mut oc) = new_database(&other, "cdc").await;
    for c in [&mut conn, &mut oc] {
        for sql in [
            "CREATE TABLE moved (id BIGINT PRIMARY KEY, v INT, s VARCHAR(20))",
            "INSERT INTO moved SELECT seq, seq, 'first' FROM seq_1_to_100",
        ] {
            c.query_drop(sql).await.unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &primary_url, &[TABLE], dir.path()).await;
    follow_until_idle(bin, &primary_url, &[TABLE], &emulator, &key);
    for id in 1..=5 {
        conn.query_drop(format!("UPDATE moved SET v = 0 WHERE id = {id}"))
            .await
            .unwrap();
    }
    follow_until_idle(bin, &primary_url, &[TABLE], &emulator, &key);
    let before = count_where(&emulator, CHANGES, "1 = 1");
    assert_eq!(before, 105);

    let out = follow_cmd(bin, &other_url, &[TABLE], (&emulator, &key), "2s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "follow succeeded:\n{err}");
    assert!(
        err.contains("read from server 1; this server (3)") && err.contains("not a replica"),
        "the error does not name both servers:\n{err}"
    );
    assert!(!err.contains("purged"), "not a purge:\n{err}");
    assert_eq!(count_where(&emulator, CHANGES, "1 = 1"), before);
    emulator.shutdown().await;
}
