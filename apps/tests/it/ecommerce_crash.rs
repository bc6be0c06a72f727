//! Crash test of the ecommerce application: the emulator and every instance run as separate
//! processes (`ecommerce emulator`, `ecommerce stream --instance I`); instances are killed
//! with SIGKILL at seeded random moments and restarted, and in the end the emulator's tables
//! must hold every ORDER_ID and ORDER_ITEM_ID exactly once, with every order's items.
//!
//! `ECOMMERCE_CRASH_LONG=1` runs a longer version (more orders, more kills);
//! `ECOMMERCE_CRASH_SEED=N` picks the kill schedule's seed (default 2025).
#![cfg(unix)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common;

use crate::common::bin::{start_emulator, Guard};
use crate::common::ecommerce::{assert_every_id_once, finish, Setup, SEED};
use snowpipe_cli_support::process::{signal, Signal};

const INSTANCES: u32 = 3;

fn long() -> bool {
    std::env::var_os("ECOMMERCE_CRASH_LONG").is_some_and(|v| v != "0")
}

#[test]
fn instances_killed_repeatedly_land_every_id_exactly_once() {
    let seed: u64 = std::env::var("ECOMMERCE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2025);
    let (orders, rounds) = if long() { (30_000, 12) } else { (4_500, 4) };
    let bin = common::bin::ecommerce_bin();
    let dir = tempfile::tempdir().unwrap();
    let (data_dir, key) = (dir.path().join("emulator"), dir.path().join("key.p8"));
    std::fs::create_dir_all(&data_dir).unwrap();
    let (mut emulator, url) = start_emulator(&bin, &data_dir, &key);
    let setup = Setup::new(bin.clone(), url, key, dir.path(), orders, INSTANCES);

    // Each round starts every unfinished instance and SIGKILLs each at its own random moment.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut generated: BTreeMap<u32, serde_json::Value> = BTreeMap::new();
    let mut kills = 0;
    for round in 0..rounds {
        let started = Instant::now();
        let mut running: Vec<(Duration, u32, Guard)> = (0..INSTANCES)
            .filter(|i| !generated.contains_key(i))
            .map(|i| {
                let at = Duration::from_millis(rng.gen_range(300..1500));
                (at, i, setup.stream(i, Stdio::inherit()))
            })
            .collect();
        running.sort_by_key(|r| r.0);
        for (at, i, mut child) in running {
            std::thread::sleep(at.saturating_sub(started.elapsed()));
            if child.0.try_wait().unwrap().is_none() {
                child.0.kill().unwrap(); // SIGKILL
                let _ = child.0.wait();
                kills += 1;
                eprintln!("round {round}: SIGKILL instance {i} at {at:?}");
            } else {
                generated.insert(i, finish(child, i));
            }
        }
    }
    assert!(
        kills >= 2 * rounds,
        "instances were killed with work left only {kills} times"
    );

    // Restart the unfinished instances once more and let them finish.
    let deadline = Instant::now() + Duration::from_secs(if long() { 300 } else { 60 });
    let last: Vec<(u32, Guard)> = (0..INSTANCES)
        .filter(|i| !generated.contains_key(i))
        .map(|i| (i, setup.stream(i, Stdio::inherit())))
        .collect();
    for (i, mut child) in last {
        while child.0.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "instance {i} did not finish in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        generated.insert(i, finish(child, i));
    }

    // SIGTERM the emulator so its database is complete, then read it.
    signal(emulator.0.id(), Signal::Term).expect("signal the child");
    let _ = emulator.0.wait();
    let (orders_landed, items_landed) = assert_every_id_once(&data_dir, &setup, &generated);
    eprintln!(
        "{kills} kills with work left: {} orders and {} items, each once",
        orders_landed, items_landed
    );

    // The application's own report agrees.
    let report = Command::new(&bin)
        .args(["report", "--json", "--seed", SEED])
        .args(["--orders", &orders.to_string()])
        .args(["--instances", &INSTANCES.to_string()])
        .arg("--data-dir")
        .arg(&data_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "report: {stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["exact"], true, "{v}");
}
