//! `cargo run --example table_replay -- --cdc`: a private MariaDB with its binlog, the sample
//! table, the embedded emulator; `follow` takes the snapshot, a script of changes runs,
//! `follow` carries them, and `verify --changes` compares the source with the state the
//! change table implies.

use std::time::Duration;

use anyhow::Result;
use mysql_async::prelude::Queryable as _;

use crate::common::say::say;
use crate::common::thousands;
use crate::table_replay::cdc::{self, changes, FollowOptions};
use crate::table_replay::{default_dest_table, mariadb, sample, source, start_emulator, verify};

/// The script of changes the demo runs between the snapshot and the verification.
const SCRIPT: &[(&str, &str)] = &[
    ("update 30 names", "UPDATE replay_sample SET name = 'renamed' WHERE id < 190"),
    ("delete every 7th key", "DELETE FROM replay_sample WHERE id % 7 = 0"),
    ("insert 2 rows", "INSERT INTO replay_sample (id, name, doc) VALUES (9000001, 'new', '{\"n\":1}'), (9000002, NULL, NULL)"),
    ("change a key (a delete of the old key, the row under the new)", "UPDATE replay_sample SET id = 9000003 WHERE id = 4"),
    ("one transaction: a price update and a delete", "BEGIN"),
    ("", "UPDATE replay_sample SET price = price + 1 WHERE id BETWEEN 100 AND 400"),
    ("", "DELETE FROM replay_sample WHERE id = 9000002"),
    ("", "COMMIT"),
];

/// Runs the demo with `rows` generated sample rows.
///
/// # Errors
/// When MariaDB or the emulator cannot start, or a step fails.
pub async fn run(rows: u64) -> Result<bool> {
    say!("table_replay --cdc: starting a private MariaDB server with its binlog…");
    let db = mariadb::MariaDb::start_with_binlog()?;
    let mut admin = source::connect(&format!("{}/mysql", db.server_url())).await?;
    admin.query_drop("CREATE DATABASE cdc_demo").await?;
    let url = db.url("cdc_demo");
    let mut conn = source::connect(&url).await?;
    sample::create(&mut conn, rows).await?;
    let table = source::describe(&mut conn, sample::TABLE, None).await?;
    let (database, schema_name) = ("REPLAY", "PUBLIC");
    let dest = default_dest_table(sample::TABLE);
    let ddl = changes::ddl(&table, database, schema_name, &dest);
    let view = changes::current_state_view(
        &table,
        &changes::table_name(&dest),
        &format!("{dest}_CURRENT"),
    );
    say!("Snowflake DDL (table_replay ddl --changes):\n{ddl}{view}");
    let emulator = start_emulator(database, schema_name, &ddl, None).await?;
    let client = emulator
        .builder()
        .max_client_lag(Duration::from_millis(200))
        .build()
        .await?;
    let opts = FollowOptions {
        source: url.clone(),
        tables: vec![sample::TABLE.into()],
        database: database.into(),
        schema: schema_name.into(),
        batch: 1_000,
        snapshot_lanes: usize::from(cdc::DEFAULT_SNAPSHOT_LANES),
        snapshot_readers: usize::from(cdc::DEFAULT_SNAPSHOT_READERS),
        until_idle: Some(Duration::from_secs(2)),
        server_id: cdc::default_server_id(&url, &[sample::TABLE.into()])?,
        heartbeat: cdc::heartbeat::Heartbeat::default(),
        sql: None,
        keys: Vec::new(),
        max_columns: cdc::DEFAULT_MAX_CHANGE_COLUMNS,
        resnapshot_purged: false,
        resnapshot: Vec::new(),
        observe: std::sync::Arc::default(),
    };
    let r = cdc::follow(&client, &opts, std::future::pending()).await?;
    say!(
        "table_replay --cdc: snapshot: {} change rows ('r')",
        thousands(r.tables[0].changes)
    );
    for (label, sql) in SCRIPT {
        if !label.is_empty() {
            say!("table_replay --cdc: change: {label}");
        }
        conn.query_drop(*sql).await?;
    }
    let r = cdc::follow(&client, &opts, std::future::pending()).await?;
    say!(
        "table_replay --cdc: the binlog: {} change rows",
        thousands(r.tables[0].changes)
    );
    println!("{}", r.json_line());
    client.close().await?;
    let sql = emulator
        .builder()
        .build_sql()?
        .database(database)
        .schema(schema_name);
    let dest = verify::Dest {
        database: database.into(),
        schema: schema_name.into(),
        table: changes::table_name(&dest),
        changes: true,
    };
    let v = verify::verify(&url, sample::TABLE, None, &sql, &dest, 10_000).await?;
    print!("{}", v.render(sample::TABLE, &dest));
    emulator.emulator.shutdown().await;
    Ok(v.is_exact())
}
