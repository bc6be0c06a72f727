//! Crash test of `table_replay follow`: a seeded random workload (inserts, updates, deletes,
//! multi-table transactions, a whole-table UPDATE in one transaction) runs against a private
//! MariaDB from before the first snapshot to the end, while the real binary is SIGKILLed at
//! seeded instants (the first while it takes the snapshot, with changes committing during
//! it) and MariaDB itself is killed and restarted once mid-stream. In the end `verify
//! --changes` finds source and implied state equal, value by value, and the change tables
//! hold each binlog change once (by position). Skipped without `mariadbd` except under
//! `CI=true`. `CDC_KILLS=N` (default 5) and `CDC_SEED=N` explore.
#![cfg(unix)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, follow_cmd, follow_until_idle, new_database,
    start_binlog_or_skip, verify_changes,
};
use snowpipe_apps::table_replay::source;

const TABLES: [&str; 2] = ["acct_a", "acct_b"];
const ROWS: u64 = 3_000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One random unit of work: a statement, or a transaction over both tables.
async fn one_step(
    conn: &mut mysql_async::Conn,
    rng: &mut ChaCha8Rng,
    next_id: &mut u64,
) -> mysql_async::Result<()> {
    let t = TABLES[rng.gen_range(0..2)];
    let id = rng.gen_range(1..*next_id);
    match rng.gen_range(0..100) {
        0..=29 => {
            *next_id += 1;
            conn.exec_drop(
                format!("INSERT INTO {t} VALUES (?, ?, ?, ?)"),
                (
                    *next_id,
                    rng.gen_range(0..1000),
                    format!("n{}", rng.gen::<u32>()),
                    "12.50",
                ),
            )
            .await
        }
        30..=79 => {
            conn.exec_drop(
                format!("UPDATE {t} SET v = v + 1, note = ?, amt = amt + 0.01 WHERE id = ?"),
                (format!("u{}", rng.gen::<u16>()), id),
            )
            .await
        }
        80..=89 => {
            conn.exec_drop(format!("DELETE FROM {t} WHERE id = ?"), (id,))
                .await
        }
        90..=98 => {
            let mut tx = conn.start_transaction(Default::default()).await?;
            for _ in 0..rng.gen_range(2..20) {
                let t = TABLES[rng.gen_range(0..2)];
                tx.exec_drop(
                    format!("UPDATE {t} SET v = v * 2 % 1000 WHERE id BETWEEN ? AND ?"),
                    (id, id + 5),
                )
                .await?;
            }
            *next_id += 1;
            tx.exec_drop("INSERT INTO acct_b VALUES (?, 1, 'tx', 0.00)", (*next_id,))
                .await?;
            tx.commit().await
        }
        // A whole table in one transaction: an event stream split over many appends.
        _ => conn.query_drop(format!("UPDATE {t} SET v = v + 7")).await,
    }
}

/// Runs the workload until `stop`; reconnects while the server restarts.
async fn workload(url: String, seed: u64, stop: Arc<AtomicBool>) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut next_id, mut steps) = (ROWS, 0u64);
    let mut conn = source::connect(&url).await.unwrap();
    while !stop.load(Ordering::Relaxed) {
        if one_step(&mut conn, &mut rng, &mut next_id).await.is_err() {
            // The server restarts: connect again (a step lost or not, verify compares states).
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Ok(c) = source::connect(&url).await {
                conn = c;
            }
            continue;
        }
        steps += 1;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..4))).await;
    }
    steps
}

/// Waits (60 s at most) until the follow writing `log` has printed `mark`.
async fn wait_for_line(log: &std::path::Path, mark: &str) {
    for _ in 0..6000 {
        if std::fs::read_to_string(log).is_ok_and(|t| t.contains(mark)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("follow did not print {mark:?} within 60 s");
}

/// Binlog changes written more than once on one position: none expected.
fn duplicates(emulator: &Emulator, table: &str) -> Vec<Vec<serde_json::Value>> {
    let t = format!("\"REPLAY.PUBLIC.{}_CHANGES\"", table.to_uppercase());
    emulator
        .query(&format!(
            "SELECT _BINLOG_FILE, _BINLOG_POS, _ROW, _OP, ID, COUNT(*) FROM {t} WHERE _OP <> 'r' \
             GROUP BY _BINLOG_FILE, _BINLOG_POS, _ROW, _OP, ID HAVING COUNT(*) > 1"
        ))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_killed_at_random_instants_writes_every_change_exactly_once() {
    let Some(mut db) = start_binlog_or_skip() else {
        return;
    };
    let (seed, kills) = (env_u64("CDC_SEED", 84), env_u64("CDC_KILLS", 5));
    eprintln!("follow crash test: seed {seed}, {kills} kills (CDC_SEED, CDC_KILLS explore)");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    for t in TABLES {
        conn.query_drop(format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v INT, note VARCHAR(40), amt DECIMAL(10,2))"
        ))
        .await
        .unwrap();
        conn.query_drop(format!(
            "INSERT INTO {t} SELECT seq, seq % 1000, CONCAT('r', seq), seq / 100 FROM seq_1_to_{ROWS}"
        ))
        .await
        .unwrap();
    }
    drop(conn);
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &TABLES, dir.path()).await;

    // The workload runs from before the first snapshot: changes commit during it.
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(workload(url.clone(), seed, stop.clone()));
    let mut resumed = 0;
    for k in 0..kills {
        let log = dir.path().join(format!("follow-{k}.log"));
        let mut child = follow_cmd(bin, &url, &TABLES, (&emulator, &key), "1h")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        // The first kill lands in the snapshot; later ones anywhere in the stream.
        let (mark, wait) = if k == 0 {
            ("snapshot at", rng.gen_range(0..150))
        } else {
            ("following the binlog", rng.gen_range(100..2500))
        };
        wait_for_line(&log, mark).await;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if k == kills / 2 {
            eprintln!("kill {k}: MariaDB killed and restarted under the running follow");
            db.restart().unwrap();
            // The running follow connects again and goes on from its last appended change.
            wait_for_line(&log, "connecting again").await;
            tokio::time::sleep(Duration::from_millis(rng.gen_range(1500..3000))).await;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("resuming after committed") {
            resumed += 1;
        }
        let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        eprintln!("kill {k}: follow SIGKILLed {wait} ms after {mark:?}; its last line: {last}");
    }
    // The runs found their predecessors' committed changes (the first has none; the second
    // may not, when the first was killed before its snapshot rows committed).
    assert!(
        resumed + 2 >= kills,
        "only {resumed} of {kills} runs resumed: the kills hit no work"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let steps = load.await.unwrap();
    eprintln!("workload: {steps} steps");
    let err = follow_until_idle(bin, &url, &TABLES, &emulator, &key);
    eprintln!("final follow:\n{err}");
    assert!(
        err.contains("resuming after committed"),
        "the final run started over:\n{err}"
    );

    for t in TABLES {
        assert_eq!(
            duplicates(&emulator, t),
            Vec::<Vec<serde_json::Value>>::new(),
            "{t}: a change written twice"
        );
        assert_equal(&verify_changes(bin, &url, t, &emulator, &key));
    }
    emulator.shutdown().await;
}
