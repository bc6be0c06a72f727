//! The ecommerce application as processes, for the tests that run it (`ecommerce_crash`,
//! `ownership`): starting an instance, reading its closing line, and checking the emulator's
//! tables against the plan.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::bin::Guard;

/// Order ids of instance i are i × this + 1, 2, … (the application's documented ID scheme).
pub const ORDER_ID_SPACE: i64 = 100_000_000;
/// The generator's seed every test uses.
pub const SEED: &str = "11";

/// Where the instances stream to, and what they stream.
pub struct Setup {
    pub bin: PathBuf,
    pub url: String,
    pub key: PathBuf,
    pub config: PathBuf,
    pub orders: u64,
    pub instances: u32,
}

impl Setup {
    /// Writes the application's config file (small batches, 1 s client lag) into `dir`.
    pub fn new(
        bin: PathBuf,
        url: String,
        key: PathBuf,
        dir: &Path,
        orders: u64,
        instances: u32,
    ) -> Self {
        let config = dir.join("config.properties");
        std::fs::write(
            &config,
            "orders.batch.size=50\nmax.client.lag=1\nnum.orders.per.batch=10\n",
        )
        .unwrap();
        Setup {
            bin,
            url,
            key,
            config,
            orders,
            instances,
        }
    }

    /// Starts `ecommerce stream --instance I` (stdout piped, stderr as `stderr`).
    pub fn stream(&self, instance: u32, stderr: Stdio) -> Guard {
        let child = Command::new(&self.bin)
            .args(["stream", "--quiet", "--seed", SEED, "--rate", "1000"])
            .args(["--orders", &self.orders.to_string()])
            .args(["--instance", &instance.to_string()])
            .args(["--instances", &self.instances.to_string()])
            .arg("--config")
            .arg(&self.config)
            .env("SNOWFLAKE_URL", &self.url)
            .env("SNOWFLAKE_ACCOUNT", "AUTOMATED_INTELLIGENCE")
            .env("SNOWFLAKE_USER", "AUTOMATED_INTELLIGENCE")
            .env("SNOWFLAKE_PRIVATE_KEY_FILE", &self.key)
            .env_remove("SNOWFLAKE_PRIVATE_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn ecommerce stream");
        Guard(child)
    }
}

/// The `{"generated": {...}}` line of a finished instance.
pub fn finish(mut child: Guard, instance: u32) -> serde_json::Value {
    let status = child.0.wait().unwrap();
    assert!(status.success(), "instance {instance} exited with {status}");
    let mut out = String::new();
    std::io::Read::read_to_string(child.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("instance {instance}: {last:?}: {e}"))
}

/// Runs `sql` on the emulator's stopped database; every column an integer.
pub fn query(conn: &rusqlite::Connection, sql: &str) -> Vec<Vec<i64>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, i64>(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Checks the tables of the stopped emulator in `data_dir` against the plan: every ORDER_ID
/// of every instance once (`generated`: each instance's closing line), every order's items
/// once with line totals adding up to the order's total. Returns (orders, items) landed.
pub fn assert_every_id_once(
    data_dir: &Path,
    setup: &Setup,
    generated: &BTreeMap<u32, serde_json::Value>,
) -> (usize, usize) {
    let conn = snowpipe_emulator::offline::open_read_only(data_dir).unwrap();
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
    for i in 0..setup.instances {
        let n = generated[&i]["generated"]["ORDERS"].as_u64().unwrap();
        // The plan splits orders evenly, the first `orders % instances` get one more.
        let share = setup.orders / u64::from(setup.instances)
            + u64::from(u64::from(i) < setup.orders % u64::from(setup.instances));
        assert_eq!(n, share, "instance {i} totals");
        total_orders += n;
        want.extend((1..=n as i64).map(|s| i64::from(i) * ORDER_ID_SPACE + s));
    }
    assert_eq!(total_orders, setup.orders);
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
    (ids.len(), items.len())
}
