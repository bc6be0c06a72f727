//! The silent binlog connection, as the hostile suite generates it: the real
//! `table_replay follow` reads a private MariaDB through a loopback proxy that silences every
//! open connection without closing it (a firewall or NAT that dropped their state), at a
//! moment and with a workload the case's seed decides: while nothing is committed, in the
//! middle of a stream of commits, or twice in a row. Asserted: `follow` ends by itself
//! (`--until-idle`, which heartbeats never extend) with exit 0, names the silence, writes no
//! binlog change twice, and `verify --changes` finds the source equal (every change committed
//! behind a silence landed).

use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use snowpipe_apps::table_replay::mariadb::MariaDb;
use snowpipe_hostile::{Case, Rng, Suite};

use crate::common;
use crate::common::table_replay_follow::{
    change_destination, count_where, exit_of, follow_cmd, new_database, proxied, spawn_logged,
    start_binlog_or_skip, verify_changes, written_twice,
};

/// When the connection goes silent.
#[derive(Debug, Clone, Copy)]
enum Silence {
    /// With nothing being committed; the changes come after it.
    Idle,
    /// In the middle of a stream of commits.
    UnderLoad,
    /// Twice: once idle, once again soon after the reconnect.
    Twice,
}

const CLASSES: [Silence; 3] = [Silence::Idle, Silence::UnderLoad, Silence::Twice];

/// `n` random changes on `table` (keys 1..=40): inserts of new keys, updates, deletes.
async fn changes(conn: &mut mysql_async::Conn, table: &str, n: u64, rng: &mut Rng) {
    for _ in 0..n {
        let k = rng.range(1, 40);
        let sql = match rng.below(3) {
            0 => format!(
                "INSERT INTO {table} VALUES ({k}, {}) ON DUPLICATE KEY UPDATE v = v + 1",
                rng.below(1000)
            ),
            1 => format!("UPDATE {table} SET v = v + 7 WHERE id = {k}"),
            _ => format!("DELETE FROM {table} WHERE id = {k}"),
        };
        conn.query_drop(sql).await.unwrap();
    }
}

/// Waits (60 s at most) until the file at `path` holds `line` `n` times.
async fn wait_for_line(path: &std::path::Path, line: &str, n: usize) {
    let start = std::time::Instant::now();
    while std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(line)
        .count()
        < n
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{line:?} ×{n}: not in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mariadb_silences() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let suite = Suite::from_env("mariadb_silences", CLASSES.len());
    let mut failures = Vec::new();
    for mut case in suite.cases(&CLASSES) {
        failures.extend(one_case(&db, &mut case).await.err());
    }
    suite.finish(failures);
}

/// One case on its own database, emulator and proxy.
async fn one_case(db: &MariaDb, case: &mut Case<Silence>) -> Result<(), String> {
    let bin = &common::bin::table_replay_bin();
    let database = format!("silence{}", case.index);
    let table = "t";
    let (url, mut conn) = new_database(db, &database).await;
    conn.query_drop(format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, v INT)"
    ))
    .await
    .unwrap();
    conn.query_drop(format!(
        "INSERT INTO {table} SELECT seq, seq FROM seq_1_to_20"
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[table], dir.path()).await;
    let (proxy, via_proxy) = proxied(db, &database).await;
    let mut cmd = follow_cmd(bin, &via_proxy, &[table], (&emulator, &key), "4s");
    cmd.args(["--heartbeat", "200ms"]);
    let (child, log) = spawn_logged(cmd);
    let changes_table = "\"REPLAY.PUBLIC.T_CHANGES\"";
    let started = std::time::Instant::now();
    while count_where(&emulator, changes_table, "1 = 1") < 20 {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("{}: no snapshot in 60 s", case.context()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The silence is the binlog connection's: it is open once follow says so (the snapshot's
    // rows are committed before it opens).
    wait_for_line(log.path(), "following the binlog from", 1).await;
    let rng = &mut case.rng;
    let (before, after) = (rng.range(0, 30), rng.range(1, 60));
    changes(&mut conn, table, before, rng).await;
    let silences = match case.class {
        Silence::Idle => {
            tokio::time::sleep(Duration::from_millis(rng.range(0, 500))).await;
            proxy.blackhole();
            changes(&mut conn, table, after, rng).await;
            1
        }
        Silence::UnderLoad => {
            let cut = rng.range(0, after);
            changes(&mut conn, table, cut, rng).await;
            proxy.blackhole();
            changes(&mut conn, table, after - cut, rng).await;
            1
        }
        Silence::Twice => {
            proxy.blackhole();
            changes(&mut conn, table, after, rng).await;
            // Soon after the reconnect: once the first silence is named and the binlog is
            // followed again.
            wait_for_line(log.path(), "following the binlog from", 2).await;
            tokio::time::sleep(Duration::from_millis(rng.range(300, 1_000))).await;
            proxy.blackhole();
            changes(&mut conn, table, rng.range(1, 20), rng).await;
            2
        }
    };
    let (ok, stderr) = exit_of(child, &log, Duration::from_secs(120)).await;
    let named = stderr.matches("the connection went silent").count();
    let out = verify_changes(bin, &url, table, &emulator, &key);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let twice = written_twice(&emulator, changes_table);
    emulator.shutdown().await;
    if !ok {
        return Err(format!("{}: follow failed:\n{stderr}", case.context()));
    }
    if named < silences {
        return Err(format!(
            "{}: {silences} silences, {named} named:\n{stderr}",
            case.context()
        ));
    }
    if !out.status.success() || !report.contains("RESULT: every source row arrived exactly once") {
        return Err(format!(
            "{}: verify --changes:\n{report}\n{stderr}",
            case.context()
        ));
    }
    if !twice.is_empty() {
        return Err(format!(
            "{}: changes written twice: {twice:?}",
            case.context()
        ));
    }
    Ok(())
}
