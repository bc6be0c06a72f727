//! `table_replay follow --resnapshot TABLE`: a copy found wrong is read again. Two tables are
//! followed; rows of one are updated and deleted with the binlog off (`sql_log_bin = 0`:
//! changes `follow` can never see), so `verify --changes` finds its copy wrong, and no binlog
//! event comes after: the first snapshot's rows are at the binlog's end, where its lanes'
//! tokens still name their keys, so `follow --resnapshot` waits for the binlog to move (a
//! write to the other table) before it reads. That write lands while A's new read waits for a
//! write lock on A: the binlog goes on for B alongside A's snapshot. The run is SIGKILLed in
//! the middle of the new read; changes to both tables come through the binlog; run again
//! with the flag, the snapshot under way goes on (one `p` row, not two). Then both tables are
//! equal value by value, every binlog change once, and a run without the flag adds nothing.
//! A table that is not followed is refused by name. Skipped without `mariadbd` except under
//! `CI=true`.
#![cfg(unix)]

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, count_where, follow_cmd, follow_until_idle, kill_at_rows,
    new_database, start_binlog_or_skip, verify_changes, written_twice,
};
use snowpipe_apps::table_replay::source;

const ROWS: u64 = 20_000;
const A: &str = "rs_a";
const B: &str = "rs_b";
const A_CHANGES: &str = "\"REPLAY.PUBLIC.RS_A_CHANGES\"";
const B_CHANGES: &str = "\"REPLAY.PUBLIC.RS_B_CHANGES\"";

async fn binlog_end(conn: &mut mysql_async::Conn) -> (String, u64) {
    let row: Option<mysql_async::Row> = conn.query_first("SHOW MASTER STATUS").await.unwrap();
    let row = row.expect("the binlog is on");
    (row.get(0).unwrap(), row.get(1).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resnapshot_reads_a_wrong_copy_again_and_resumes_when_killed() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "resnap").await;
    for (table, rows) in [(A, ROWS), (B, 200)] {
        conn.query_drop(format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, v INT, note VARCHAR(20))"
        ))
        .await
        .unwrap();
        conn.query_drop(format!(
            "INSERT INTO {table} SELECT seq, seq, CONCAT('n', seq) FROM seq_1_to_{rows}"
        ))
        .await
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[A, B], dir.path()).await;
    follow_until_idle(bin, &url, &[A, B], &emulator, &key);
    assert_eq!(count_where(&emulator, A_CHANGES, "_OP = 'r'"), ROWS);
    let first_at = binlog_end(&mut conn).await;

    // The copy goes wrong: changes the binlog never sees.
    conn.query_drop("SET SESSION sql_log_bin = 0")
        .await
        .unwrap();
    conn.query_drop(format!("UPDATE {A} SET v = -v WHERE id % 7 = 0"))
        .await
        .unwrap();
    conn.query_drop(format!("DELETE FROM {A} WHERE id % 11 = 0"))
        .await
        .unwrap();
    conn.query_drop("SET SESSION sql_log_bin = 1")
        .await
        .unwrap();
    assert_eq!(binlog_end(&mut conn).await, first_at, "a binlog event came");
    let wrong = verify_changes(bin, &url, A, &emulator, &key);
    assert!(!wrong.status.success(), "verify found the wrong copy equal");

    // A table not followed is refused by name, before anything is read.
    let out = follow_cmd(bin, &url, &[A, B], (&emulator, &key), "1s")
        .args(["--resnapshot", "rs_c"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "--resnapshot rs_c was taken:\n{err}");
    assert!(
        err.contains("--resnapshot rs_c: not a followed table (--table rs_a,rs_b)"),
        "{err}"
    );

    // Read again, SIGKILLed in the middle of the read. It waits for the binlog to move (the
    // old snapshot's rows are at its position): a write to the other table, a second in. A
    // write lock on A holds the new read back (the span of A's key is its first read of A),
    // and B's change lands meanwhile: the binlog goes on for B alongside A's snapshot.
    let mut lock = source::connect(&url).await.unwrap();
    lock.query_drop(format!("LOCK TABLES {A} WRITE"))
        .await
        .unwrap();
    let mut run = follow_cmd(bin, &url, &[A, B], (&emulator, &key), "1h");
    run.args(["--resnapshot", A]);
    let alongside = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut conn = source::connect(&url).await.unwrap();
        conn.query_drop(format!("UPDATE {B} SET note = 'tick' WHERE id = 200"))
            .await
            .unwrap();
        let began = Instant::now();
        let landed = loop {
            if count_where(&emulator, B_CHANGES, "_OP = 'u'") == 1 {
                break Ok(count_where(&emulator, A_CHANGES, "_OP = 'r'") - ROWS);
            }
            if began.elapsed() > Duration::from_secs(60) {
                break Err("B's change did not land while A's snapshot waited for its lock");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        lock.query_drop("UNLOCK TABLES").await.unwrap();
        landed
    };
    let killed = kill_at_rows(
        run,
        &emulator,
        (A_CHANGES, ROWS + 1 + ROWS / 10),
        Duration::from_secs(120),
    );
    let (log, landed) = tokio::join!(killed, alongside);
    let log = log.unwrap();
    assert_eq!(
        landed,
        Ok(0),
        "A's new rows read while it was locked:\n{log}"
    );
    assert!(
        log.contains("the binlog goes on for rs_b while rs_a is snapshotted"),
        "{log}"
    );
    assert!(log.contains("rs_a: read again (--resnapshot)"), "{log}");
    assert!(
        log.contains("waiting for the source's binlog to move"),
        "{log}"
    );
    assert_eq!(count_where(&emulator, A_CHANGES, "_OP = 'p'"), 1);
    let reread = count_where(&emulator, A_CHANGES, "_OP = 'r'") - ROWS;
    eprintln!("SIGKILLed with {reread} rows of the new snapshot committed");
    assert!(
        reread < ROWS * 9 / 10,
        "the kill came after the new snapshot ({reread} rows)"
    );

    // Changes through the binlog to both tables, then the flag again: the read goes on.
    conn.query_drop(format!("UPDATE {B} SET v = v + 1 WHERE id <= 50"))
        .await
        .unwrap();
    conn.query_drop(format!("DELETE FROM {B} WHERE id = 3"))
        .await
        .unwrap();
    conn.query_drop(format!(
        "UPDATE {A} SET note = 'late' WHERE id IN (5, 19999)"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("DELETE FROM {A} WHERE id = 6"))
        .await
        .unwrap();
    let out = follow_cmd(bin, &url, &[A, B], (&emulator, &key), "3s")
        .args(["--resnapshot", A])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "follow --resnapshot failed:\n{err}");
    assert!(
        err.contains("rs_a: its snapshot under way goes on (--resnapshot)"),
        "{err}"
    );
    assert_eq!(count_where(&emulator, A_CHANGES, "_OP = 'p'"), 1);
    for table in [A, B] {
        assert_equal(&verify_changes(bin, &url, table, &emulator, &key));
    }
    for changes in [A_CHANGES, B_CHANGES] {
        assert_eq!(
            written_twice(&emulator, changes),
            Vec::<Vec<serde_json::Value>>::new()
        );
    }
    assert_eq!(count_where(&emulator, B_CHANGES, "_OP = 'u'"), 51);
    assert_eq!(count_where(&emulator, B_CHANGES, "_OP = 'd'"), 1);
    assert_eq!(count_where(&emulator, B_CHANGES, "_OP = 'r'"), 200);

    // Without the flag: nothing more.
    let total = |t| count_where(&emulator, t, "1 = 1");
    let before = (total(A_CHANGES), total(B_CHANGES));
    follow_until_idle(bin, &url, &[A, B], &emulator, &key);
    assert_eq!((total(A_CHANGES), total(B_CHANGES)), before);
    emulator.shutdown().await;
}
