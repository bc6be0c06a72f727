//! A snapshot over four lanes (`--snapshot-lanes`, `cdc/snapshot_lanes.rs`), read by four
//! readers (`--snapshot-readers`, `cdc/snapshot_ranges.rs`) or by one, while a seeded
//! workload updates, deletes and inserts rows across the whole key range, the real binary
//! SIGKILLed twice in the middle of the read, then run to the end with `--snapshot-lanes 1
//! --snapshot-readers 1` (the recorded count and plan win). Each page is read in a transaction
//! of its own (MariaDB), so the workload's changes fall between pages. In the end no key has
//! two snapshot rows, no binlog change is written twice, and `verify --changes` finds source
//! and implied state equal, value by value. Skipped without `mariadbd` except under
//! `CI=true`. `CDC_SEED=N` explores; `CDC_LANES_ROWS=1000000` is the done-means run.
#![cfg(unix)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, count_where, follow_cmd, kill_at_rows, new_database,
    start_binlog_or_skip, verify_changes, written_twice,
};
use snowpipe_apps::table_replay::source;

const TABLE: &str = "wide";
const CHANGES: &str = "\"REPLAY.PUBLIC.WIDE_CHANGES\"";
/// The table's rows: 30,000, or `CDC_LANES_ROWS` (the done-means run: 1,000,000).
fn rows() -> u64 {
    std::env::var("CDC_LANES_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000)
}

/// Updates (60 %), deletes (20 %) and inserts (20 %) anywhere in the key range until `stop`.
async fn workload(url: String, seed: u64, stop: Arc<AtomicBool>) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut next_id, mut steps) = (rows(), 0u64);
    let mut conn = source::connect(&url).await.unwrap();
    while !stop.load(Ordering::Relaxed) {
        let id = rng.gen_range(1..=next_id);
        let done = match rng.gen_range(0..10) {
            0..=5 => {
                conn.exec_drop(
                    format!("UPDATE {TABLE} SET v = v + 1, note = ? WHERE id = ?"),
                    (format!("u{}", rng.gen::<u32>()), id),
                )
                .await
            }
            6..=7 => {
                conn.exec_drop(format!("DELETE FROM {TABLE} WHERE id = ?"), (id,))
                    .await
            }
            _ => {
                next_id += 1;
                conn.exec_drop(
                    format!("INSERT INTO {TABLE} VALUES (?, 1, 'new', 0.25)"),
                    (next_id,),
                )
                .await
            }
        };
        done.unwrap();
        steps += 1;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..2))).await;
    }
    steps
}

/// The change table's row count once it stopped moving (what a killed run sent is committed
/// after it died).
async fn settled(emulator: &snowpipe_emulator::Emulator) -> u64 {
    let mut last = count_where(emulator, CHANGES, "1 = 1");
    loop {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let now = count_where(emulator, CHANGES, "1 = 1");
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_over_four_lanes_killed_twice_mid_read_loses_and_doubles_nothing() {
    killed_twice(4).await;
}

/// One reader over four lanes: its rows spread by key, the way a snapshot begun before
/// readers (or on MySQL) goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reader_over_four_lanes_killed_twice_mid_read_loses_and_doubles_nothing() {
    killed_twice(1).await;
}

/// The scenario above with `readers` readers; the last run asks for one lane and one reader,
/// and the recorded count and plan win.
async fn killed_twice(readers: usize) {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let seed = std::env::var("CDC_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    eprintln!("snapshot lanes test: seed {seed} (CDC_SEED explores)");
    let bin = &common::bin::table_replay_bin();
    let rows = rows();
    eprintln!("snapshot lanes test: {rows} rows (CDC_LANES_ROWS sets it)");
    let (url, mut conn) = new_database(&db, &format!("lanes{readers}")).await;
    conn.query_drop(format!(
        "CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, v INT, note VARCHAR(40), amt DECIMAL(10,2))"
    ))
    .await
    .unwrap();
    conn.query_drop(format!(
        "INSERT INTO {TABLE} SELECT seq, seq % 1000, CONCAT('r', seq), seq / 100 \
         FROM seq_1_to_{rows}"
    ))
    .await
    .unwrap();
    drop(conn);
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(workload(url.clone(), seed, stop.clone()));
    let mut logs = Vec::new();
    // Each run is killed once another tenth of the table landed: mid-read, with appends in
    // flight on every lane.
    for _ in 0..2 {
        let at = settled(&emulator).await + rows / 10;
        let mut follow = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "1h");
        follow.args([
            "--snapshot-lanes",
            "4",
            "--snapshot-readers",
            &readers.to_string(),
        ]);
        let log = kill_at_rows(follow, &emulator, (CHANGES, at), Duration::from_secs(120))
            .await
            .unwrap();
        let read = settled(&emulator).await;
        eprintln!("SIGKILLed at {at} rows; {read} snapshot rows committed");
        assert!(
            read < rows * 9 / 10,
            "the kill came after the snapshot ({read} rows)"
        );
        logs.push(log);
    }
    stop.store(true, Ordering::Relaxed);
    eprintln!("workload: {} steps", load.await.unwrap());
    let mut last = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "3s");
    last.args(["--snapshot-lanes", "1", "--snapshot-readers", "1"]);
    let out = last.output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the last follow failed:\n{text}");
    logs.push(text);

    for (run, log) in logs.iter().enumerate() {
        assert!(
            log.contains("wide: snapshot over 4 lanes")
                && match readers {
                    1 => !log.contains("readers"),
                    n => log.contains(&format!("read by {n} readers")),
                },
            "run {run} did not take four lanes and {readers} readers:\n{log}"
        );
    }
    assert!(
        logs[1].contains("resuming after committed") || logs[2].contains("resuming after"),
        "no run resumed:\n{}",
        logs.join("\n---\n")
    );
    let twice = emulator
        .query(&format!(
            "SELECT ID, COUNT(*) FROM {CHANGES} WHERE _OP = 'r' GROUP BY ID HAVING COUNT(*) > 1"
        ))
        .unwrap();
    assert_eq!(
        twice,
        Vec::<Vec<serde_json::Value>>::new(),
        "snapshot rows twice"
    );
    assert_eq!(
        written_twice(&emulator, CHANGES),
        Vec::<Vec<serde_json::Value>>::new()
    );
    // A transaction a page: the pages' rows are at many positions, the workload's changes
    // between them.
    let positions = count_where(
        &emulator,
        &format!("(SELECT DISTINCT _BINLOG_FILE, _BINLOG_POS FROM {CHANGES} WHERE _OP = 'r')"),
        "1 = 1",
    );
    assert!(positions > 10, "snapshot rows at {positions} positions");
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));
    emulator.shutdown().await;
}
