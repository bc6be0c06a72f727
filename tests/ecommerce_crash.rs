//! Crash test of the ecommerce example: the emulator and every instance run as separate
//! processes (`ecommerce emulator`, `ecommerce stream --instance I`); instances are killed
//! with SIGKILL at seeded random moments and restarted, and in the end the emulator's tables
//! must hold every ORDER_ID and ORDER_ITEM_ID exactly once, with every order's items.
//!
//! `ECOMMERCE_CRASH_LONG=1` runs a longer version (more orders, more kills);
//! `ECOMMERCE_CRASH_SEED=N` picks the kill schedule's seed (default 2025).
#![cfg(unix)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;

/// Order ids of instance i are i × this + 1, 2, … (the example's documented ID scheme).
const ORDER_ID_SPACE: i64 = 100_000_000;
const INSTANCES: u32 = 3;
const SEED: &str = "11";

/// Kills the process when dropped, so a failing test leaves nothing running.
use common::example::{start_emulator, Guard};

fn long() -> bool {
    std::env::var_os("ECOMMERCE_CRASH_LONG").is_some_and(|v| v != "0")
}

struct Setup {
    bin: PathBuf,
    url: String,
    key: PathBuf,
    config: PathBuf,
    orders: u64,
}

fn stream(setup: &Setup, instance: u32) -> Guard {
    let child = Command::new(&setup.bin)
        .args(["stream", "--quiet", "--seed", SEED, "--rate", "1000"])
        .args(["--orders", &setup.orders.to_string()])
        .args(["--instance", &instance.to_string()])
        .args(["--instances", &INSTANCES.to_string()])
        .arg("--config")
        .arg(&setup.config)
        .env("SNOWFLAKE_URL", &setup.url)
        .env("SNOWFLAKE_ACCOUNT", "AUTOMATED_INTELLIGENCE")
        .env("SNOWFLAKE_USER", "AUTOMATED_INTELLIGENCE")
        .env("SNOWFLAKE_PRIVATE_KEY_FILE", &setup.key)
        .env_remove("SNOWFLAKE_PRIVATE_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ecommerce stream");
    Guard(child)
}

/// The `{"generated": {...}}` line of a finished instance.
fn finish(mut child: Guard, instance: u32) -> serde_json::Value {
    let status = child.0.wait().unwrap();
    assert!(status.success(), "instance {instance} exited with {status}");
    let mut out = String::new();
    std::io::Read::read_to_string(child.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("instance {instance}: {last:?}: {e}"))
}

fn query(conn: &rusqlite::Connection, sql: &str) -> Vec<Vec<i64>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, i64>(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn instances_killed_repeatedly_land_every_id_exactly_once() {
    let seed: u64 = std::env::var("ECOMMERCE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2025);
    let (orders, rounds) = if long() { (30_000, 12) } else { (4_500, 4) };
    let bin = common::example::ecommerce_bin();
    let dir = tempfile::tempdir().unwrap();
    let (data_dir, key) = (dir.path().join("emulator"), dir.path().join("key.p8"));
    std::fs::create_dir_all(&data_dir).unwrap();
    let config = dir.path().join("config.properties");
    std::fs::write(
        &config,
        "orders.batch.size=50\nmax.client.lag=1\nnum.orders.per.batch=10\n",
    )
    .unwrap();
    let (mut emulator, url) = start_emulator(&bin, &data_dir, &key);
    let setup = Setup {
        bin: bin.clone(),
        url,
        key,
        config,
        orders,
    };

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
                (at, i, stream(&setup, i))
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
        .map(|i| (i, stream(&setup, i)))
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
    // SAFETY: signalling a child we spawned and have not reaped.
    unsafe { libc::kill(emulator.0.id() as i32, libc::SIGTERM) };
    let _ = emulator.0.wait();
    let conn = snowpipe_emulator::storage::open_read_only(&data_dir).unwrap();
    let o = "\"AUTOMATED_INTELLIGENCE.RAW.ORDERS\"";
    let it = "\"AUTOMATED_INTELLIGENCE.RAW.ORDER_ITEMS\"";

    // Every ORDER_ID once: exactly 1..=n of each instance's ID space.
    let ids: Vec<i64> = query(&conn, &format!("SELECT ORDER_ID FROM {o}"))
        .into_iter()
        .map(|r| r[0])
        .collect();
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate orders landed");
    let mut want = HashSet::new();
    let mut total_orders = 0;
    for i in 0..INSTANCES {
        let n = generated[&i]["generated"]["ORDERS"].as_u64().unwrap();
        // The plan splits orders evenly, the first `orders % instances` get one more.
        let share = orders / u64::from(INSTANCES) + u64::from(u64::from(i) < orders % 3);
        assert_eq!(n, share, "instance {i} totals");
        total_orders += n;
        want.extend((1..=n as i64).map(|s| i64::from(i) * ORDER_ID_SPACE + s));
    }
    assert_eq!(total_orders, orders);
    let missing = want.difference(&unique).count();
    let extra = unique.difference(&want).count();
    assert!(
        missing == 0 && extra == 0,
        "{missing} orders lost, {extra} unexpected"
    );

    // Every ORDER_ITEM_ID once; each order has exactly its ITEM_COUNT lines, ids
    // ORDER_ID * 10 + 1..=ITEM_COUNT, and line totals adding up to the order total.
    let items = query(
        &conn,
        &format!(
            "SELECT ORDER_ITEM_ID, ORDER_ID, CAST(ROUND(LINE_TOTAL * 100) AS INTEGER) FROM {it}"
        ),
    );
    let item_ids: HashSet<i64> = items.iter().map(|r| r[0]).collect();
    assert_eq!(item_ids.len(), items.len(), "duplicate items landed");
    let mut by_order: HashMap<i64, (Vec<i64>, i64)> = HashMap::new();
    for r in &items {
        let e = by_order.entry(r[1]).or_default();
        e.0.push(r[0]);
        e.1 += r[2];
    }
    let orders_rows = query(
        &conn,
        &format!(
            "SELECT ORDER_ID, ITEM_COUNT, CAST(ROUND(TOTAL_AMOUNT * 100) AS INTEGER) FROM {o}"
        ),
    );
    for r in &orders_rows {
        let (id, count, total) = (r[0], r[1], r[2]);
        let (mut lines, sum) = by_order.remove(&id).unwrap_or_default();
        lines.sort_unstable();
        let want: Vec<i64> = (1..=count).map(|l| id * 10 + l).collect();
        assert_eq!(lines, want, "order {id}: items");
        assert_eq!(sum, total, "order {id}: line totals vs order total");
    }
    assert!(
        by_order.is_empty(),
        "items without an order: {}",
        by_order.len()
    );
    let items_generated: u64 = generated
        .values()
        .map(|g| g["generated"]["ORDER_ITEMS"].as_u64().unwrap())
        .sum();
    assert_eq!(items.len() as u64, items_generated);
    eprintln!(
        "{kills} kills with work left: {} orders and {} items, each once",
        ids.len(),
        items.len()
    );

    // The example's own report agrees.
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
