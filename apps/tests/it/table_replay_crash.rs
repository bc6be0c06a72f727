//! Crash test of `table_replay replay`: a private MariaDB holds the sample table, the emulator
//! runs in this process, and the real application binary is SIGKILLed at seeded random moments
//! during the replay and restarted; in the end the destination must hold every source row
//! exactly once (checked in the emulator's SQLite, and by `table_replay verify`).
//! Needs `mariadbd` (`apt-get install mariadb-server`): skipped without it, except under
//! `CI=true`. `TABLE_REPLAY_CRASH_SEED=N` reproduces a run, `TABLE_REPLAY_CRASH_ROWS=N` runs
//! a bigger table.
#![cfg(unix)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay::{at_destination, ddl_printed, destination, wait_until_replaying};
use snowpipe_apps::table_replay::{mariadb, sample, source};

const TABLE: &str = "\"REPLAY.PUBLIC.REPLAY_SAMPLE\"";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn landed(emulator: &Emulator) -> Vec<u64> {
    emulator
        .query(&format!("SELECT ID FROM {TABLE} ORDER BY ID"))
        .unwrap()
        .into_iter()
        .map(|r| r[0].as_u64().unwrap())
        .collect()
}

fn landed_count(emulator: &Emulator) -> u64 {
    emulator
        .query(&format!("SELECT COUNT(*) FROM {TABLE}"))
        .unwrap()[0][0]
        .as_u64()
        .unwrap()
}

fn replay_cmd(bin: &Path, url: &str, emulator: &Emulator, key: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["replay", "--source", url, "--table", sample::TABLE])
        .args([
            "--database",
            "REPLAY",
            "--schema",
            "PUBLIC",
            "--batch",
            "250",
        ])
        .args(["--max-client-lag", "200ms"])
        .stdin(Stdio::null());
    at_destination(&mut cmd, emulator, key);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_killed_repeatedly_lands_every_row_exactly_once() {
    let Some(db) = mariadb::start_or_skip() else {
        return;
    };
    let seed = env_u64("TABLE_REPLAY_CRASH_SEED", 16);
    let rows = env_u64("TABLE_REPLAY_CRASH_ROWS", 10_000);
    eprintln!("crash test: seed {seed}, {rows} rows (TABLE_REPLAY_CRASH_SEED reproduces)");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let bin = &common::bin::table_replay_bin();

    let mut admin = source::connect(&format!("{}/mysql", db.server_url()))
        .await
        .unwrap();
    admin.query_drop("CREATE DATABASE crash").await.unwrap();
    let url = db.url("crash");
    let mut conn = source::connect(&url).await.unwrap();
    sample::create(&mut conn, rows).await.unwrap();

    // The destination DDL comes from the binary's `ddl` subcommand, as a user would run it.
    let ddl = Command::new(bin)
        .args(["ddl", "--source", &url, "--table", sample::TABLE])
        .output()
        .unwrap();
    let ddl = ddl_printed(ddl, "REPLAY_SAMPLE_PIPE");
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = destination(ddl, dir.path()).await;

    let total = rows + 5;
    let mut partial_kills = 0;
    for round in 0..8u64 {
        let mut child = replay_cmd(bin, &url, &emulator, &key)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Kill during the replay: a seeded moment after it has started appending.
        let stderr = child.stderr.take().unwrap();
        wait_until_replaying(stderr, round);
        // Kill once the table has grown past a seeded point between what it held and the whole
        // table (or after 30 s): the kill lands while rows are being committed, however fast
        // this machine is.
        let before = landed_count(&emulator);
        let target = before + (total - before) * rng.gen_range(10..60) / 100;
        let killed_at = Instant::now();
        while landed_count(&emulator) < target.max(before + 1)
            && killed_at.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let wait = killed_at.elapsed();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let now = landed(&emulator);
        eprintln!(
            "round {round}: killed {wait:?} into the replay; {} of {total} rows landed",
            now.len()
        );
        if !now.is_empty() && (now.len() as u64) < total {
            partial_kills += 1;
        }
        if now.len() as u64 == total || partial_kills >= 3 {
            break;
        }
    }

    let started = Instant::now();
    let out = replay_cmd(bin, &url, &emulator, &key).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["replayed"]["table"], sample::TABLE);
    assert_eq!(
        last["replayed"]["committed"],
        sample::key_of(rows - 1).to_string()
    );
    eprintln!("final run: {:?}, {stdout}", started.elapsed());

    // Exactly once: the landed keys are the source keys, none twice.
    let keys: Vec<u64> = conn
        .query("SELECT id FROM replay_sample ORDER BY id")
        .await
        .unwrap();
    let landed = landed(&emulator);
    let unique: BTreeSet<u64> = landed.iter().copied().collect();
    assert_eq!(unique.len(), landed.len(), "a row landed twice");
    assert_eq!(landed, keys, "landed keys differ from the source keys");
    assert!(
        partial_kills >= 1,
        "no kill interrupted the replay midway: raise the waits"
    );

    // And every value, through the SQL API, with the binary's verify.
    let out = at_destination(
        Command::new(bin)
            .args(["verify", "--source", &url, "--table", sample::TABLE])
            .args([
                "--database",
                "REPLAY",
                "--schema",
                "PUBLIC",
                "--dest-table",
                "REPLAY_SAMPLE",
            ]),
        &emulator,
        &key,
    )
    .output()
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("RESULT: every source row arrived exactly once"),
        "{report}"
    );
    emulator.shutdown().await;
}
