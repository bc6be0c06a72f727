//! `table_replay follow` through shape changes that once stopped it or grew the change table
//! without bound, against a private MariaDB with its binlog on (skipped without `mariadbd`,
//! except under `CI=true`): an `ADD COLUMN` and a widening `MODIFY` made while `follow` is
//! behind, in either order, widen and go on (`verify --changes` equal, exit 0); a column
//! dropped and added again 300 times is one column of the change table; a `GEOMETRY`
//! column (added, and added then dropped while `follow` is down) is followed as its bytes;
//! a DDL storm past `--max-change-columns` diverts the table with a reason naming the cap,
//! and so does a column type with no mapping (`UUID`) met while `follow` runs;
//! a diverted table's dead letters do not hold back a healthy table's changes.
#![cfg(unix)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, count_where, follow_cmd, follow_cmd_lag, follow_until_idle,
    new_database, start_binlog_or_skip, verify_changes, written_twice,
};

/// The change table's columns, as the destination holds them.
fn columns(emulator: &Emulator, changes: &str) -> usize {
    let (names, _) = emulator
        .query_with_columns(&format!("SELECT * FROM {changes} LIMIT 0"))
        .unwrap();
    names.len()
}

async fn run_all(conn: &mut mysql_async::Conn, sql: &[String]) {
    for s in sql {
        conn.query_drop(s).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_and_a_widening_modify_made_while_follow_is_behind_widen_in_either_order() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "evadd").await;
    let changes = "\"REPLAY.PUBLIC.EVW_CHANGES\"";
    run_all(
        &mut conn,
        &[
            "CREATE TABLE evw (id BIGINT PRIMARY KEY, note VARCHAR(20), n INT)".into(),
            "INSERT INTO evw SELECT seq, CONCAT('n', seq), seq FROM seq_1_to_10".into(),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &["evw"], dir.path()).await;
    follow_until_idle(bin, &url, &["evw"], &emulator, &key);

    // follow is down: ADD, a change with the new column, then a widening MODIFY of an old
    // column and of the new one, and changes only the wider types hold.
    let long = "x".repeat(150);
    run_all(
        &mut conn,
        &[
            "ALTER TABLE evw ADD COLUMN c INT".into(),
            "INSERT INTO evw VALUES (11, 'eleven', 11, 1)".into(),
            "ALTER TABLE evw MODIFY note VARCHAR(200), MODIFY c BIGINT".into(),
            format!("INSERT INTO evw VALUES (12, '{long}', 12, 9000000000)"),
        ],
    )
    .await;
    let err = follow_until_idle(bin, &url, &["evw"], &emulator, &key);
    assert!(
        err.contains("widened from VARCHAR(20) to VARCHAR(200)"),
        "no widening named:\n{err}"
    );
    assert_eq!(
        count_where(
            &emulator,
            changes,
            &format!("ID = 12 AND NOTE = '{long}' AND C = 9000000000")
        ),
        1
    );
    assert_equal(&verify_changes(bin, &url, "evw", &emulator, &key));

    // The other order: MODIFY first, then ADD, while down.
    run_all(
        &mut conn,
        &[
            "ALTER TABLE evw MODIFY n BIGINT".into(),
            "INSERT INTO evw VALUES (13, 'thirteen', 9000000001, 13)".into(),
            "ALTER TABLE evw ADD COLUMN d VARCHAR(5)".into(),
            "INSERT INTO evw VALUES (14, 'fourteen', 9000000002, 14, 'd')".into(),
            "ALTER TABLE evw MODIFY d VARCHAR(50)".into(),
            format!(
                "INSERT INTO evw VALUES (15, 'fifteen', 15, 15, '{}')",
                "d".repeat(40)
            ),
        ],
    )
    .await;
    follow_until_idle(bin, &url, &["evw"], &emulator, &key);
    assert_equal(&verify_changes(bin, &url, "evw", &emulator, &key));

    // While follow runs: an ALTER made from another database's session (its binlog event
    // names that one), so the next rows event's table map is where the new column and the
    // wider types are met.
    let (_, mut other) = new_database(&db, "evother").await;
    let running = follow_cmd(bin, &url, &["evw"], (&emulator, &key), "3s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    run_all(
        &mut other,
        &[
            "ALTER TABLE evadd.evw ADD COLUMN e INT, MODIFY note VARCHAR(400), MODIFY c DECIMAL(30,0)"
                .into(),
            format!(
                "INSERT INTO evadd.evw VALUES (16, '{}', 16, 123456789012345678901234, 'e', 16)",
                "y".repeat(350)
            ),
        ],
    )
    .await;
    let out = running.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "follow stopped:\n{err}");
    assert!(
        err.contains("widened from VARCHAR(200) to VARCHAR(400)"),
        "no widening named:\n{err}"
    );
    assert_equal(&verify_changes(bin, &url, "evw", &emulator, &key));
    assert!(written_twice(&emulator, changes).is_empty());
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_dropped_and_added_again_300_times_is_one_change_table_column() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "evcyc").await;
    let changes = "\"REPLAY.PUBLIC.EVC_CHANGES\"";
    run_all(
        &mut conn,
        &[
            "CREATE TABLE evc (id BIGINT PRIMARY KEY, n INT)".into(),
            "INSERT INTO evc SELECT seq, seq FROM seq_1_to_5".into(),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &["evc"], dir.path()).await;
    follow_until_idle(bin, &url, &["evc"], &emulator, &key);
    let before = columns(&emulator, changes);

    // follow is down: 300 cycles of ADD, a change carrying the column, DROP.
    for i in 0..300u32 {
        run_all(
            &mut conn,
            &[
                "ALTER TABLE evc ADD COLUMN c INT".into(),
                format!("UPDATE evc SET c = {i}, n = n + 1 WHERE id = {}", 1 + i % 5),
                "ALTER TABLE evc DROP COLUMN c".into(),
            ],
        )
        .await;
    }
    follow_until_idle(bin, &url, &["evc"], &emulator, &key);
    assert_eq!(
        columns(&emulator, changes),
        before + 1,
        "the change table grew past one column for the one name"
    );
    assert_eq!(count_where(&emulator, changes, "C = 299"), 1);
    assert_equal(&verify_changes(bin, &url, "evc", &emulator, &key));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_geometry_column_is_followed_as_its_bytes() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "evgeo").await;
    let changes = "\"REPLAY.PUBLIC.EVG_CHANGES\"";
    run_all(
        &mut conn,
        &[
            "CREATE TABLE evg (id BIGINT PRIMARY KEY, n INT, p POINT)".into(),
            "INSERT INTO evg SELECT seq, seq, POINT(seq, seq) FROM seq_1_to_5".into(),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &["evg"], dir.path()).await;
    follow_until_idle(bin, &url, &["evg"], &emulator, &key);

    // follow is down: a GEOMETRY column added and written; a POLYGON added, written, dropped.
    run_all(
        &mut conn,
        &[
            "ALTER TABLE evg ADD COLUMN g GEOMETRY".into(),
            "INSERT INTO evg VALUES (6, 6, POINT(6, 6), ST_GeomFromText('LINESTRING(0 0, 1 1)'))"
                .into(),
            "UPDATE evg SET g = ST_GeomFromText('POINT(1 2)', 4326) WHERE id = 1".into(),
            "ALTER TABLE evg ADD COLUMN q POLYGON".into(),
            "INSERT INTO evg VALUES (7, 7, NULL, NULL, \
             ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))'))"
                .into(),
            "ALTER TABLE evg DROP COLUMN q".into(),
            "INSERT INTO evg VALUES (8, 8, POINT(8, 8), POINT(8, 8))".into(),
        ],
    )
    .await;
    follow_until_idle(bin, &url, &["evg"], &emulator, &key);
    // The bytes `SELECT g` reads (SRID + WKB), as hex (the emulator shows BINARY upper case).
    let want: String = conn
        .query_first("SELECT HEX(g) FROM evg WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    let got = emulator
        .query(&format!(
            "SELECT G FROM {changes} WHERE ID = 1 AND _OP = 'u'"
        ))
        .unwrap();
    assert_eq!(
        got,
        vec![vec![serde_json::Value::String(want.clone())]],
        "the GEOMETRY value is not the bytes the table holds ({want})"
    );
    assert_eq!(
        count_where(&emulator, changes, "ID = 7 AND Q IS NOT NULL"),
        1
    );
    assert_equal(&verify_changes(bin, &url, "evg", &emulator, &key));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ddl_storm_past_the_cap_diverts_the_table_naming_the_cap() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "evcap").await;
    let changes = "\"REPLAY.PUBLIC.EVS_CHANGES\"";
    run_all(
        &mut conn,
        &[
            "CREATE TABLE evs (id BIGINT PRIMARY KEY, n INT)".into(),
            "CREATE TABLE evh (id BIGINT PRIMARY KEY, n INT)".into(),
            "INSERT INTO evs SELECT seq, seq FROM seq_1_to_5".into(),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &["evs", "evh"], dir.path()).await;
    let cap = columns(&emulator, changes) + 10;
    let cap_arg = cap.to_string();
    let follow = |emulator: &Emulator, key: &Path| {
        let mut cmd = follow_cmd(bin, &url, &["evs", "evh"], (emulator, key), "2s");
        cmd.args(["--max-change-columns", &cap_arg]);
        cmd.output().unwrap()
    };
    assert!(follow(&emulator, &key).status.success());

    // follow is down: 30 new column names, each added, written and dropped.
    for i in 0..30u32 {
        run_all(
            &mut conn,
            &[
                format!("ALTER TABLE evs ADD COLUMN c{i} INT"),
                format!("UPDATE evs SET c{i} = {i} WHERE id = 1"),
                format!("ALTER TABLE evs DROP COLUMN c{i}"),
                format!("INSERT INTO evh VALUES ({i}, {i})"),
            ],
        )
        .await;
    }
    for _ in 0..2 {
        let out = follow(&emulator, &key);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "follow exited 0:\n{err}");
        assert!(
            err.contains("evs: diverted") && err.contains(&format!("--max-change-columns {cap}")),
            "the exit names no cap:\n{err}"
        );
        assert!(!err.contains("evh: diverted"), "{err}");
        assert!(columns(&emulator, changes) <= cap);
    }
    let dlq = "\"REPLAY.PUBLIC.EVS_DLQ\"";
    assert!(count_where(&emulator, dlq, "REASON LIKE '%--max-change-columns%'") > 0);
    // The other table went on.
    assert_equal(&verify_changes(bin, &url, "evh", &emulator, &key));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverted_table_holds_back_no_healthy_table() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "evdead").await;
    let healthy = "\"REPLAY.PUBLIC.EVB_CHANGES\"";
    run_all(
        &mut conn,
        &[
            "CREATE TABLE eva (id BIGINT PRIMARY KEY, n INT)".into(),
            "CREATE TABLE evb (id BIGINT PRIMARY KEY, n INT)".into(),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &["eva", "evb"], dir.path()).await;
    follow_until_idle(bin, &url, &["eva", "evb"], &emulator, &key);

    // The default client lag (1 s): each commit wait is one flush.
    let mut child = follow_cmd_lag(bin, &url, &["eva", "evb"], (&emulator, &key), ("1h", "1s"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // eva is diverted; then 20 inserts to each table, interleaved, each its own transaction.
    conn.query_drop("ALTER TABLE eva MODIFY n VARCHAR(10)")
        .await
        .unwrap();
    const N: u64 = 20;
    let start = Instant::now();
    for i in 1..=N {
        conn.query_drop(format!("INSERT INTO eva VALUES ({i}, '{i}')"))
            .await
            .unwrap();
        conn.query_drop(format!("INSERT INTO evb VALUES ({i}, {i})"))
            .await
            .unwrap();
    }
    while count_where(&emulator, healthy, "_OP = 'c'") < N {
        assert!(child.try_wait().unwrap().is_none(), "follow stopped");
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the healthy table's changes did not land"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    eprintln!("{N} inserts to the healthy table landed in {took:?} beside a diverted table");
    let _ = child.kill();
    let _ = child.wait();
    // Generous: one commit wait per dead letter took about 2.2 s each (45 s for 20).
    assert!(
        took < Duration::from_secs(20),
        "{N} inserts to the healthy table took {took:?}"
    );
    // Every dead letter lands once, after a run to idle.
    let out = follow_cmd(bin, &url, &["eva", "evb"], (&emulator, &key), "2s")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let dlq = "\"REPLAY.PUBLIC.EVA_DLQ\"";
    assert_eq!(count_where(&emulator, dlq, "1 = 1"), N);
    assert_equal(&verify_changes(bin, &url, "evb", &emulator, &key));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_type_with_no_mapping_met_while_running_diverts_the_table() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "evinet").await;
    run_all(
        &mut conn,
        &[
            "CREATE TABLE evi (id BIGINT PRIMARY KEY, n INT)".into(),
            "CREATE TABLE evj (id BIGINT PRIMARY KEY, n INT)".into(),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &["evi", "evj"], dir.path()).await;
    follow_until_idle(bin, &url, &["evi", "evj"], &emulator, &key);

    let running = follow_cmd(bin, &url, &["evi", "evj"], (&emulator, &key), "3s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    run_all(
        &mut conn,
        &[
            "ALTER TABLE evi ADD COLUMN u UUID".into(),
            "INSERT INTO evi VALUES (1, 1, UUID())".into(),
            "INSERT INTO evj VALUES (1, 1)".into(),
        ],
    )
    .await;
    let out = running.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "follow exited 0:\n{err}");
    assert!(
        err.contains("evi: diverted") && err.contains("column u has type uuid"),
        "the exit names neither the table nor the column:\n{err}"
    );
    assert!(!err.contains("evj: diverted"), "{err}");
    let dlq = "\"REPLAY.PUBLIC.EVI_DLQ\"";
    assert_eq!(count_where(&emulator, dlq, "SOURCE_KEY = 1"), 1);
    assert_equal(&verify_changes(bin, &url, "evj", &emulator, &key));
    emulator.shutdown().await;
}
