//! The numbers of `docs/PERFORMANCE.md` for `table_replay follow` (ignored: run it on
//! purpose): 8 tables, a mix of 60 % updates, 30 % inserts, 10 % deletes.
//!
//! 1. Throughput: a backlog of `CDC_PERF_CHANGES` statements (default 40,000) committed while
//!    `follow` is stopped, then one `follow --until-idle 2s` reads it: changes/s (wall time
//!    less the idle wait) and CPU (user + system of the process) per 1,000 changes.
//! 2. Latency: `follow` running, a steady workload; for every 6th insert the time
//!    from MariaDB's commit returning to the row being visible in the emulator's change table
//!    (polled every 5 ms): p50/p99.
//!
//! ```text
//! cargo build --release -p snowpipe-apps --bin table_replay
//! CDC_BIN=target/release/table_replay cargo test -p snowpipe-apps --test it table_replay_follow_perf -- --ignored --nocapture
//! ```
#![cfg(unix)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay_follow::{
    change_destination, follow_cmd, new_database, start_binlog_or_skip,
};

const TABLES: [&str; 8] = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"];

/// One change of the mix; returns the inserted key when it was an insert.
async fn change(
    conn: &mut mysql_async::Conn,
    rng: &mut ChaCha8Rng,
    next: &mut u64,
) -> Option<(usize, u64)> {
    let i = rng.gen_range(0..TABLES.len());
    let t = TABLES[i];
    let id = rng.gen_range(1..*next);
    match rng.gen_range(0..100) {
        0..=59 => conn
            .exec_drop(
                format!("UPDATE {t} SET v = v + 1, note = ? WHERE id = ?"),
                (format!("u{id}"), id),
            )
            .await
            .map(|()| None),
        60..=89 => {
            *next += 1;
            conn.exec_drop(
                format!("INSERT INTO {t} VALUES (?, 1, 'new', 1.25)"),
                (*next,),
            )
            .await
            .map(|()| Some((i, *next)))
        }
        _ => conn
            .exec_drop(format!("DELETE FROM {t} WHERE id = ?"), (id,))
            .await
            .map(|()| None),
    }
    .unwrap()
}

fn cpu_of_children() -> Duration {
    snowpipe_cli_support::process::rusage(snowpipe_cli_support::process::Who::Children).cpu
}

fn visible(emulator: &Emulator, table: usize, id: u64) -> bool {
    let t = format!("\"REPLAY.PUBLIC.{}_CHANGES\"", TABLES[table].to_uppercase());
    !emulator
        .query(&format!("SELECT 1 FROM {t} WHERE ID = {id} AND _OP = 'c'"))
        .unwrap()
        .is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it on purpose (docs/PERFORMANCE.md)"]
async fn follow_changes_per_second_and_commit_to_commit_latency() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin =
        std::env::var("CDC_BIN").map_or_else(|_| common::bin::table_replay_bin(), PathBuf::from);
    let changes: u64 = std::env::var("CDC_PERF_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000);
    let (url, mut conn) = new_database(&db, "perf").await;
    for t in TABLES {
        conn.query_drop(format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v INT, note VARCHAR(40), amt DECIMAL(10,2))"
        ))
        .await
        .unwrap();
        conn.query_drop(format!(
            "INSERT INTO {t} SELECT seq, seq, 'r', 1.00 FROM seq_1_to_1000"
        ))
        .await
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(&bin, &url, &TABLES, dir.path()).await;
    let run = |idle: &str| follow_cmd(&bin, &url, &TABLES, (&emulator, &key), idle);
    assert!(
        run("1s").output().unwrap().status.success(),
        "the snapshot run failed"
    );

    // 1. Throughput over a backlog (in transactions of 20 changes, to build it fast).
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut next = 1000;
    for _ in 0..changes / 20 {
        conn.query_drop("BEGIN").await.unwrap();
        for _ in 0..20 {
            change(&mut conn, &mut rng, &mut next).await;
        }
        conn.query_drop("COMMIT").await.unwrap();
    }
    let (cpu0, t0) = (cpu_of_children(), Instant::now());
    let out = run("2s").output().unwrap();
    let wall = t0.elapsed().saturating_sub(Duration::from_secs(2));
    let cpu = cpu_of_children() - cpu0;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    // What follow wrote (statements that matched no row write nothing): its JSON line.
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let written: u64 = line["followed"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["changes"].as_u64().unwrap())
        .sum();
    eprintln!(
        "throughput: {changes} statements, {written} binlog changes in {wall:?}: {:.0} changes/s; \
         CPU {cpu:?}: {:.1} ms per 1,000 changes",
        written as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1000.0 / (written as f64 / 1000.0)
    );

    // 2. Latency, follow running, ~100 autocommit changes/s for 20 s.
    let mut child = run("1h")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut pending: Vec<(usize, u64, Instant)> = Vec::new();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(20) || !pending.is_empty() {
        if started.elapsed() < Duration::from_secs(20) {
            if let Some((t, id)) = change(&mut conn, &mut rng, &mut next).await {
                n += 1;
                if n % 6 == 0 {
                    pending.push((t, id, Instant::now()));
                }
            }
        }
        pending.retain(|(t, id, at)| {
            if visible(&emulator, *t, *id) {
                latencies.push(at.elapsed());
                false
            } else {
                true
            }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "changes never became visible"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    eprintln!(
        "latency over {} inserts: p50 {:?}, p99 {:?} (max_client_lag 200ms, emulator commit delay 150ms)",
        latencies.len(),
        p(0.5),
        p(0.99)
    );
    emulator.shutdown().await;
}

/// 3. The first copy: `CDC_PERF_SNAPSHOT_ROWS` rows (default 1,000,000) of about 200 bytes of
///    mixed types, snapshotted by one `follow --until-idle 2s` into the emulator in sink mode
///    (rows counted, not stored: the destination costs little), beside the `mariadb` client
///    reading the same rows with `--quick` into nothing (the least any snapshot costs): rows/s
///    and CPU-s per million rows of each (the children's user + system time).
///    `CDC_PERF_SNAPSHOT_LANES=N` sets `--snapshot-lanes` (default: the binary's),
///    `CDC_PERF_SNAPSHOT_READERS=N` `--snapshot-readers`;
///    `CDC_PERF_SNAPSHOT_WORKLOAD=1` updates and deletes random rows all through the snapshot.
///
/// ```text
/// cargo build --release -p snowpipe-apps --bin table_replay
/// CDC_BIN=target/release/table_replay cargo test -p snowpipe-apps --test it \
///     follow_snapshot_rows_per_second -- --ignored --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it on purpose (docs/PERFORMANCE.md)"]
async fn follow_snapshot_rows_per_second() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin =
        std::env::var("CDC_BIN").map_or_else(|_| common::bin::table_replay_bin(), PathBuf::from);
    let rows: u64 = std::env::var("CDC_PERF_SNAPSHOT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (url, mut conn) = new_database(&db, "snap").await;
    conn.query_drop(
        "CREATE TABLE snap (id BIGINT PRIMARY KEY, qty INT, name VARCHAR(60), \
         amount DECIMAL(12,2), at DATETIME(3), ratio DOUBLE, note VARCHAR(80), flag TINYINT)",
    )
    .await
    .unwrap();
    // In chunks, so no one statement holds the whole table in the server's memory.
    let chunk = 100_000u64;
    let mut from = 1;
    while from <= rows {
        let to = (from + chunk - 1).min(rows);
        conn.query_drop(format!(
            "INSERT INTO snap SELECT seq, seq % 1000, CONCAT('customer-', seq, '-', MD5(seq)), \
             seq / 7, TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq SECOND, seq / 3.0, \
             CONCAT('a note of some length for row ', seq, ' ', SHA1(seq)), seq % 2 \
             FROM seq_{from}_to_{to}"
        ))
        .await
        .unwrap();
        from = to + 1;
    }
    let avg: Option<f64> = conn
        .query_first(
            "SELECT AVG_ROW_LENGTH FROM information_schema.TABLES WHERE TABLE_NAME = 'snap'",
        )
        .await
        .unwrap();

    // The least: the client reading every row into nothing.
    let (cpu0, t0) = (cpu_of_children(), Instant::now());
    let status = std::process::Command::new("mariadb")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            &db.port().to_string(),
            "-u",
            "root",
            "--quick",
        ])
        .args(["-e", "SELECT * FROM snap.snap"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the mariadb client");
    let (client_wall, client_cpu) = (t0.elapsed(), cpu_of_children() - cpu0);
    assert!(status.success(), "mariadb --quick: {status}");

    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) =
        common::table_replay_follow::sink_change_destination(&bin, &url, &["snap"], dir.path())
            .await;
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(["follow", "--source", &url, "--table", "snap"])
        .args(["--database", "REPLAY", "--schema", "PUBLIC"])
        .args(["--until-idle", "2s"])
        .stdin(std::process::Stdio::null());
    if let Ok(lanes) = std::env::var("CDC_PERF_SNAPSHOT_LANES") {
        cmd.args(["--snapshot-lanes", &lanes]);
    }
    if let Ok(readers) = std::env::var("CDC_PERF_SNAPSHOT_READERS") {
        cmd.args(["--snapshot-readers", &readers]);
    }
    common::table_replay::at_destination(&mut cmd, &emulator, &key);
    let log = tempfile::NamedTempFile::new().unwrap();
    cmd.stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap());
    let (cpu0, t0) = (cpu_of_children(), Instant::now());
    let mut child = cmd.spawn().unwrap();
    // `CDC_PERF_SNAPSHOT_WORKLOAD=1`: updates and deletes at random keys all through the
    // snapshot, stopped when it ends (then the binlog's changes are read, within the time).
    let workload = std::env::var("CDC_PERF_SNAPSHOT_WORKLOAD").is_ok_and(|v| v == "1");
    let changes = if workload {
        snapshot_workload(&url, rows, log.path()).await
    } else {
        0
    };
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let wall = t0.elapsed().saturating_sub(Duration::from_secs(2));
    let cpu = cpu_of_children() - cpu0;
    let stderr = std::fs::read_to_string(log.path()).unwrap();
    assert!(status.success(), "{stderr}");
    let counted = emulator.status()["sink"].to_string();
    let per_m = |d: Duration| d.as_secs_f64() * 1e6 / rows as f64;
    eprintln!(
        "snapshot of {rows} rows (average {:.0} bytes in InnoDB, lanes {}): follow {:.0} rows/s, \
         {:.2} CPU-s per million rows; mariadb --quick {:.0} rows/s, {:.2} CPU-s per million rows; \
         CPU ratio {:.2}; {changes} updates and deletes during it; sink counted {counted}",
        avg.unwrap_or(0.0),
        ["LANES", "READERS"]
            .map(|v| std::env::var(format!("CDC_PERF_SNAPSHOT_{v}")).unwrap_or("default".into()))
            .join(", readers "),
        rows as f64 / wall.as_secs_f64(),
        per_m(cpu),
        rows as f64 / client_wall.as_secs_f64(),
        per_m(client_cpu),
        cpu.as_secs_f64() / client_cpu.as_secs_f64(),
    );
    emulator.shutdown().await;
}

/// Updates (80 %) and deletes of random keys of `snap` (keys 1 to `rows`) until the
/// `follow` writing `log` says its snapshot is read; how many.
async fn snapshot_workload(url: &str, rows: u64, log: &std::path::Path) -> u64 {
    let mut conn = snowpipe_apps::table_replay::source::connect(url)
        .await
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut n = 0;
    while !std::fs::read_to_string(log).is_ok_and(|t| t.contains("snapshot rows")) {
        let id = rng.gen_range(1..=rows);
        let sql = if rng.gen_range(0..10) < 8 {
            "UPDATE snap SET qty = qty + 1, note = CONCAT(note, '+') WHERE id = ?"
        } else {
            "DELETE FROM snap WHERE id = ?"
        };
        conn.exec_drop(sql, (id,)).await.unwrap();
        n += 1;
    }
    n
}
