//! Tests against the emulator: the pipes of `sql/setup.sql` accept every generated row, the
//! report's SQL works on what the emulator stores, and a whole run (with instances aborted
//! and restarted) lands every ID exactly once.

use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use snowpipe_emulator::offline::OfflineTables;
use snowpipe_emulator::{Emulator, EmulatorConfig};
use snowpipe_streaming::StreamingIngestClient;

use crate::ecommerce::generator::Plan;
use crate::ecommerce::report::{self, Reconciliation};
use crate::ecommerce::run::SETUP_SQL;
use crate::ecommerce::streamer::{
    stream_instance, InstanceStats, ItemIndex, StreamOptions, DATABASE, SCHEMA,
};

#[test]
fn setup_sql_declares_the_tables_and_short_form_pipes() {
    let tables = OfflineTables::from_ddl(SETUP_SQL).expect("setup.sql applies");
    for (pipe, table) in [
        ("ORDERS_PIPE", "ORDERS"),
        ("ORDER_ITEMS_PIPE", "ORDER_ITEMS"),
    ] {
        assert_eq!(tables.pipe_table(DATABASE, SCHEMA, pipe).unwrap(), table);
    }
    assert!(tables.has_table(DATABASE, SCHEMA, "CUSTOMERS"));
}

fn insert_all(tables: &OfflineTables, conn: &rusqlite::Connection, pipe: &str, json: &str) {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let nulls = tables
        .insert(conn, DATABASE, SCHEMA, pipe, value.as_object().unwrap())
        .unwrap_or_else(|e| panic!("emulator rejects {json}: {e}"));
    assert!(nulls.is_empty(), "NULL in {json}");
}

#[test]
fn emulator_accepts_every_row_and_the_report_catches_damage() {
    let tables = OfflineTables::from_ddl(SETUP_SQL).unwrap();
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    for t in ["ORDERS", "ORDER_ITEMS"] {
        tables.create_table(&conn, DATABASE, SCHEMA, t).unwrap();
    }
    let plan = Plan {
        seed: 3,
        orders: 600,
        instances: 3,
        customers: 300,
    };
    let mut first_items = String::new();
    for i in 0..3 {
        for seq in 1..=plan.orders_of(i) {
            let (o, items) = plan.order(i, seq);
            insert_all(
                &tables,
                &conn,
                "ORDERS_PIPE",
                &serde_json::to_string(&o).unwrap(),
            );
            for it in items {
                let json = serde_json::to_string(&it).unwrap();
                if first_items.is_empty() {
                    first_items = json.clone();
                }
                insert_all(&tables, &conn, "ORDER_ITEMS_PIPE", &json);
            }
        }
    }
    let recs = report::reconcile(&conn, Some(&plan)).unwrap();
    assert_eq!(recs.len(), 3);
    assert!(recs.iter().all(Reconciliation::exact), "{recs:?}");
    let segs = report::segments(&conn).unwrap();
    assert_eq!(segs.iter().map(|s| s.orders).sum::<u64>(), 600);
    let revenue: i64 = recs.iter().map(|r| r.revenue_cents).sum();
    assert_eq!(segs.iter().map(|s| s.revenue_cents).sum::<i64>(), revenue);
    assert!(revenue > 0);

    // A duplicated item makes its instance a mismatch; so does a lost order.
    insert_all(&tables, &conn, "ORDER_ITEMS_PIPE", &first_items);
    let o = report::landed("ORDERS");
    let recs = report::reconcile(&conn, Some(&plan)).unwrap();
    assert_eq!(recs[0].duplicate_items, 1);
    assert!(!recs[0].exact() && recs[1].exact());
    conn.execute(&format!("DELETE FROM {o} WHERE ORDER_ID = 100000005"), [])
        .unwrap();
    let recs = report::reconcile(&conn, Some(&plan)).unwrap();
    assert_eq!(
        (recs[1].missing_orders, recs[1].orphan_items > 0),
        (1, true)
    );
    assert!(!recs[1].exact());
    // The last order of an instance missing is caught only against the plan.
    conn.execute(&format!("DELETE FROM {o} WHERE ORDER_ID = 200000200"), [])
        .unwrap();
    let recs = report::reconcile(&conn, Some(&plan)).unwrap();
    assert_eq!(recs[2].missing_orders, 1);
}

async fn client(url: &str, private_pem: &str) -> StreamingIngestClient {
    StreamingIngestClient::builder()
        .account("AUTOMATED_INTELLIGENCE")
        .user("AUTOMATED_INTELLIGENCE")
        .url(url)
        .private_key_pem(private_pem)
        .max_client_lag(Duration::from_millis(20))
        .commit_poll_interval(Duration::from_millis(20))
        .build()
        .await
        .unwrap()
}

/// Streams the instances of `stats` as tasks until all are committed.
async fn run(client: StreamingIngestClient, opts: StreamOptions, stats: Vec<Arc<InstanceStats>>) {
    let mut tasks = tokio::task::JoinSet::new();
    for s in stats {
        let (client, opts) = (client.clone(), opts.clone());
        tasks.spawn(async move {
            let index = ItemIndex::new(&opts.plan, s.instance);
            stream_instance(&client, &opts, &index, s).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
}

/// In-process version of the crash test: each round runs the instances on a runtime of their
/// own, which is shut down at a seeded random moment (every task, the SDK's included, stops
/// at once, as in a crash); a last round runs to the end. Every ID lands once and every order
/// has all its items.
#[test]
fn crashed_and_restarted_instances_land_every_id_once() {
    let emu_rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = EmulatorConfig::for_tests();
    config.ddl = vec![SETUP_SQL.to_string()];
    config.commit_delay = Duration::from_millis(30);
    let (emu, key) = emu_rt
        .block_on(Emulator::start_with_new_key(config))
        .unwrap();
    let private_pem = key.private_key_pem().to_owned();
    let plan = Plan {
        seed: 5,
        orders: 3000,
        instances: 3,
        customers: 900,
    };
    let opts = StreamOptions {
        plan,
        batch: 40,
        rate: 1000.0,
        channel_suffix: String::new(),
        commit_timeout: Duration::from_secs(30),
        max_failures: 5,
    };
    let stats = || -> Vec<Arc<InstanceStats>> {
        (0..plan.instances)
            .map(|i| {
                Arc::new(InstanceStats {
                    instance: i,
                    ..Default::default()
                })
            })
            .collect()
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let mut crashed_with_work = 0;
    for _ in 0..4 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let task = rt.spawn({
            let (url, pem, opts, s) = (emu.url(), private_pem.clone(), opts.clone(), stats());
            async move { run(client(&url, &pem).await, opts, s).await }
        });
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..350)));
        if !task.is_finished() {
            crashed_with_work += 1;
        }
        rt.shutdown_background();
    }
    assert!(
        crashed_with_work >= 3,
        "only {crashed_with_work} crashes hit a running stream"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        run(
            client(&emu.url(), &private_pem).await,
            opts.clone(),
            stats(),
        )
        .await
    });
    let recs = report::reconcile(&emu, Some(&plan)).unwrap();
    assert_eq!(recs.len(), 3);
    for r in &recs {
        assert!(r.exact(), "{r:?}");
        assert_eq!(Some(r.orders), r.expected_orders);
    }
    let counts = emu
        .query(&format!(
            "SELECT COUNT(DISTINCT ORDER_ID), COUNT(*) FROM {}",
            report::landed("ORDERS")
        ))
        .unwrap();
    assert_eq!(counts[0], [3000, 3000]);
    emu_rt.block_on(emu.shutdown());
}
