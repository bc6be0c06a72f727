//! The `follow` subcommand's arguments and run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use snowpipe_cli_support::probe_server;

use crate::common;
use crate::common::say::{say, say_warn};
use crate::table_replay::cdc::heartbeat::Heartbeat;
use crate::table_replay::cdc::observe::{ObserveOptions, Observer};
use crate::table_replay::cdc::{self, FollowOptions};
use crate::table_replay::{builder, source_url, DestArgs};

// No `Debug`: the arguments hold the source URL and its password.
#[derive(Args)]
pub struct FollowArgs {
    /// The source database: mysql://USER@HOST:PORT/DB (password: see `replay --help`). The
    /// user needs REPLICATION SLAVE (and REPLICATION CLIENT) besides SELECT.
    #[arg(long, env = "TABLE_REPLAY_SOURCE", hide_env_values = true)]
    source: String,
    /// A file whose first line is the source password (else TABLE_REPLAY_PASSWORD).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// The source tables, comma-separated; each into `<TABLE>_CHANGES` through `<TABLE>_CHANGES_PIPE`
    /// (`table_replay ddl --changes` prints them).
    #[arg(long, value_delimiter = ',', required = true)]
    table: Vec<String>,
    #[command(flatten)]
    dest: DestArgs,
    /// Snapshot rows per page (and per append).
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// The channels a new snapshot of a table whose key is integer columns is spread over
    /// (each is paced at about 20 MB/s): the change channel and `<CHANNEL>_1` … Recorded at
    /// the snapshot's start: a restart goes on with that count. 1: the change channel alone.
    #[arg(long, default_value_t = cdc::DEFAULT_SNAPSHOT_LANES, value_parser = parse_lanes)]
    snapshot_lanes: u16,
    /// The readers a new snapshot of such a table over several lanes takes, each a source
    /// connection reading a range of the key's first column in its own transactions, at most
    /// one a lane. Recorded at the snapshot's start: a restart goes on with that plan.
    /// 1: one reader.
    #[arg(long, default_value_t = cdc::DEFAULT_SNAPSHOT_READERS, value_parser = parse_readers)]
    snapshot_readers: u16,
    /// Stop once no binlog event came for this long (default: follow until Ctrl-C or SIGTERM).
    #[arg(long, value_parser = snowpipe_streaming::duration::parse)]
    until_idle: Option<Duration>,
    /// The replica server id to register with (default: derived from the source's address,
    /// database and table list; it must differ from every other replica of the server).
    #[arg(long)]
    server_id: Option<u32>,
    /// The binlog heartbeat: the server sends one after this long without an event; three
    /// periods with neither end the connection (gone silent) and follow connects again.
    #[arg(long, default_value = "10s", value_parser = Heartbeat::parse)]
    heartbeat: Heartbeat,
    /// The columns that identify a row of TABLE, for a table without a primary key or a
    /// unique NOT NULL key: TABLE=COL[,COL…] (repeat per table). Rows that share those
    /// columns' values are one row to the current state: it keeps the last change.
    #[arg(long = "key", value_name = "TABLE=COL[,COL…]", value_parser = parse_key)]
    keys: Vec<(String, Vec<String>)>,
    /// The most columns a change table takes: an ALTER TABLE … ADD COLUMN past it (a storm
    /// of new column names) diverts the table instead (its changes become dead letters).
    #[arg(long, default_value_t = cdc::DEFAULT_MAX_CHANGE_COLUMNS)]
    max_change_columns: usize,
    /// When the binlog a table resumes from was purged: take a new snapshot of that table
    /// alone into its change table (the history kept; a `p` row before the snapshot's rows
    /// drops from the current state every row before it), instead of stopping.
    #[arg(long)]
    resnapshot_purged: bool,
    /// Tables to read again now, comma-separated (each among --table): a new snapshot into
    /// the change table, the history kept, a `p` row before it so the current state is the
    /// new snapshot's. For a copy found wrong (rows changed with the binlog off, rows lost at
    /// the destination). A snapshot of the table already under way is resumed, not begun
    /// again; given on a later run, the table is read again: give it for one run.
    #[arg(long, value_delimiter = ',', value_name = "TABLE")]
    resnapshot: Vec<String>,
    /// The client's max_client_lag: how long appended changes may wait before they are sent.
    #[arg(long, default_value = "1s", value_parser = snowpipe_streaming::duration::parse)]
    max_client_lag: Duration,
    /// Print a progress line (per table: changes, dead letters, committed token, commit lag;
    /// the binlog read lag in seconds and bytes) this often, when something changed or is
    /// behind; `0s`: never.
    #[arg(long, default_value = "10s", value_parser = snowpipe_streaming::duration::parse)]
    progress_every: Duration,
    /// A table is stalled once its committed token has not moved for this long while appended
    /// changes wait for their commit: a warning names it, `snowpipe_cdc_table_stalled` is 1 and
    /// `/readyz` answers 503 (the Kafka sink's `--stall-after`).
    #[arg(long, default_value = "5m", value_parser = snowpipe_streaming::duration::parse)]
    stall_after: Duration,
    /// Serve `/metrics` (Prometheus), `/healthz` and `/readyz` on this port of 127.0.0.1, or
    /// on HOST:PORT (`0.0.0.0:9103` for a scraper on another machine: no authentication);
    /// port 0 picks a free one, logged at start. Default: not served.
    #[arg(long, value_name = "[HOST:]PORT", value_parser = probe_server::parse_addr)]
    metrics_addr: Option<SocketAddr>,
}

/// `TABLE=COL[,COL…]` → the table and its key columns.
fn parse_key(text: &str) -> Result<(String, Vec<String>), String> {
    let (table, cols) = text
        .split_once('=')
        .ok_or_else(|| format!("--key {text:?}: expected TABLE=COL[,COL…]"))?;
    let cols: Vec<String> = cols.split(',').map(|c| c.trim().to_owned()).collect();
    if table.trim().is_empty() || cols.iter().any(String::is_empty) {
        return Err(format!(
            "--key {text:?}: expected TABLE=COL[,COL…] (a table and at least one column)"
        ));
    }
    Ok((table.trim().to_owned(), cols))
}

/// Runs `table_replay follow`.
///
/// # Errors
/// As [`cdc::follow`], or when the destination cannot be reached.
pub async fn run(a: FollowArgs) -> Result<()> {
    // Before any connection: a table to read again that is not followed.
    super::snapshot::check_asked(&a.resnapshot, &a.table)?;
    let observe = Arc::new(Observer::new(ObserveOptions {
        progress_every: Some(a.progress_every).filter(|d| !d.is_zero()),
        stall_after: a.stall_after,
    }));
    // Before the client: the SDK's channel metrics register with the recorder when they open.
    let server = match a.metrics_addr {
        Some(addr) => Some(serve_metrics(addr, &observe).await?),
        None => None,
    };
    let client = builder(a.dest.profile.as_ref())?
        .max_client_lag(a.max_client_lag)
        .build()
        .await
        .context("cannot connect to the destination")?;
    let sql = builder(a.dest.profile.as_ref())?
        .build_sql()?
        .database(&a.dest.database)
        .schema(&a.dest.schema);
    let source = source_url(&a.source, a.password_file.as_deref())?;
    let server_id = match a.server_id {
        Some(id) => id,
        None => cdc::default_server_id(&source, &a.table)?,
    };
    let opts = FollowOptions {
        sql: Some(sql),
        source,
        server_id,
        heartbeat: a.heartbeat,
        tables: a.table,
        database: a.dest.database,
        schema: a.dest.schema,
        batch: a.batch.max(1),
        snapshot_lanes: usize::from(a.snapshot_lanes),
        snapshot_readers: usize::from(a.snapshot_readers),
        until_idle: a.until_idle,
        keys: a.keys,
        max_columns: a.max_change_columns,
        resnapshot_purged: a.resnapshot_purged,
        resnapshot: a.resnapshot,
        observe,
    };
    let report = cdc::follow(&client, &opts, common::terminated()).await;
    if let Some(task) = server {
        task.abort();
    }
    let report = report?;
    client.close().await?;
    say!(
        "follow: {} changes in {:.1}s",
        report.tables.iter().map(|t| t.changes).sum::<u64>(),
        report.elapsed.as_secs_f64()
    );
    println!("{}", report.json_line());
    let rejected = report.rejected().map(|rejected| {
        format!(
            "{rejected}: they are not in the tables (the committed positions moved past them). \
             The source rows at those positions must be re-sent: {}",
            cdc::changes::new_snapshot_fix(
                report
                    .tables
                    .iter()
                    .filter(|t| t.row_errors.count() + t.dead_letter_row_errors.count() > 0)
                    .map(|t| t.table.as_str())
            )
        )
    });
    // Exit 0 means every change is in the change table.
    let why: Vec<String> = rejected.into_iter().chain(report.diverted()).collect();
    if why.is_empty() {
        return Ok(());
    }
    anyhow::bail!("{}", why.join("; "))
}

/// Installs the Prometheus recorder and serves `/metrics`, `/healthz` and `/readyz` on `addr`
/// (a warning when it is reachable from other machines, as the Kafka sink's).
///
/// # Errors
/// When a recorder is already installed or `addr` cannot be bound.
async fn serve_metrics(
    addr: SocketAddr,
    observe: &Observer,
) -> Result<tokio::task::JoinHandle<()>> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let health = Arc::clone(&observe.health);
    let (bound, task) = probe_server::serve(addr, move |path: &str| {
        health.answer(path, || handle.render())
    })
    .await
    .with_context(|| format!("--metrics-addr {addr}: cannot listen"))?;
    say!("serving /metrics, /healthz and /readyz on http://{bound}");
    if !bound.ip().is_loopback() {
        say_warn!(
            "warning: --metrics-addr {bound} is reachable from other machines and has no \
             authentication: it shows table names, binlog positions and lag; keep the port \
             behind a firewall or network policy"
        );
    }
    Ok(task)
}

/// `--snapshot-lanes`: 1 to [`MAX_SNAPSHOT_LANES`], the range named in every refusal.
fn parse_lanes(s: &str) -> Result<u16, String> {
    let range = format!("1 to {MAX_SNAPSHOT_LANES}");
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=u64::from(MAX_SNAPSHOT_LANES)).contains(&n) => Ok(n as u16),
        Ok(n) => Err(format!("{n} lanes: a snapshot takes {range}")),
        Err(_) => Err(format!("{s:?} is not a count of lanes ({range})")),
    }
}

/// `--snapshot-readers`: 1 to [`cdc::MAX_SNAPSHOT_READERS`], the range named in every
/// refusal.
fn parse_readers(s: &str) -> Result<u16, String> {
    let most = cdc::MAX_SNAPSHOT_READERS;
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=u64::from(most)).contains(&n) => Ok(n as u16),
        Ok(n) => Err(format!(
            "{n} readers: a snapshot takes 1 to {most} (a connection each)"
        )),
        Err(_) => Err(format!("{s:?} is not a count of readers (1 to {most})")),
    }
}

/// The most channels `--snapshot-lanes` opens for one table's snapshot.
const MAX_SNAPSHOT_LANES: u16 = 64;
