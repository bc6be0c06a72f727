//! `table_replay`: a MySQL/MariaDB table replayed into Snowflake exactly once, then verified
//! with SQL: the Rust counterpart of "streaming data from MySQL to Snowflake with the
//! Streaming Ingest SDK" (read the table, stream its rows, check with SQL that every row
//! arrived).
//!
//! ```text
//! cargo run --example table_replay     # private MariaDB + sample table → embedded emulator → verify
//! cargo run --example table_replay -- --cdc --rows 10000   # the same with its binlog: follow, changes, verify --changes
//! table_replay follow --table T[,T2...] --database D --schema S [--until-idle 30s]   # change data capture (`cdc/`)
//! export TABLE_REPLAY_SOURCE=mysql://USER@HOST:PORT/DB TABLE_REPLAY_PASSWORD=…   # or --password-file FILE
//! table_replay replay --table T [--key COL] --database D --schema S --pipe P [--dlq-pipe P2] [--batch N] [--follow] [--profile FILE]
//! table_replay verify --table T --database D --schema S --dest-table T2 [--profile FILE]
//! table_replay ddl --table T        # the table and its dead-letter table <TABLE>_DLQ
//! ```
//!
//! A row that cannot become a row (an invalid date, invalid UTF-8 or JSON) is dead-lettered
//! to `<TABLE>_DLQ` exactly once, crashes included, and the replay goes on (`dead_letter.rs`).
//! The password never appears in `--help`, errors or logs (`secret.rs`).
//!
//! Run one replay per table: when another process opens the table's channel, this one gets
//! `OwnershipLost` and stops at once without reopening it, exiting non-zero with one
//! `error: ownership lost: channel …` line naming the committed token.

use crate::common;
pub mod cdc;
use crate::common::say::say;
mod dead_letter;
pub mod mariadb;
mod replay;
mod row_errors;
mod row_size;
pub mod row_text;
pub mod sample;
pub mod schema;
mod secret;
pub mod source;
mod verify;
mod verify_dead;
mod verify_keyed;
mod verify_report;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use snowpipe_streaming::sql::SqlClient;
use snowpipe_streaming::{ClientBuilder, StreamingIngestClient};

// No `Debug` on the arguments: they hold the source URL and its password.
#[derive(Parser)]
#[command(
    name = "table_replay",
    about = "Replay a MySQL/MariaDB table into Snowflake exactly once and verify it with SQL"
)]
struct Cli {
    /// `--log-format` (read before parsing: `LogFormat::from_args`); its variable
    /// `TABLE_REPLAY_LOG_FORMAT` is set where the command is built ([`parse`]).
    #[command(flatten)]
    log: snowpipe_cli_support::log::LogArgs,
    #[command(subcommand)]
    command: Option<Command>,
    /// Rows in the sample table of the default run, at most 10,000,000.
    #[arg(long, default_value_t = 100_000, value_parser = common::sizing::count::<0, { sample::MAX_ROWS }>)]
    rows: u64,
    /// Rows per keyset page (and per append).
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// The change-capture demo instead: snapshot, a script of changes through the binlog,
    /// then `verify --changes` (use a smaller --rows, e.g. 10000).
    #[arg(long)]
    cdc: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Stream a table into a pipe, resuming after the channel's committed key.
    Replay(ReplayArgs),
    /// Compare the source table with the destination table (exit 1 on any difference).
    Verify(VerifyArgs),
    /// Print the Snowflake CREATE TABLE and CREATE PIPE for a source table.
    Ddl(DdlArgs),
    /// Create the sample table (every type, sparse keys) in a database, replacing it.
    Sample(SampleArgs),
    /// Change data capture: a consistent snapshot, then every insert, update and delete from
    /// the binlog into <TABLE>_CHANGES, exactly once across restarts.
    Follow(cdc::cli::FollowArgs),
}

#[derive(Args)]
struct SampleArgs {
    /// The database: mysql://USER@HOST:PORT/DB (password: see `replay --help`).
    #[arg(long, env = "TABLE_REPLAY_SOURCE", hide_env_values = true)]
    source: String,
    /// A file whose first line is the source password (else TABLE_REPLAY_PASSWORD).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Generated rows (plus 5 edge rows), at most 10,000,000.
    #[arg(long, default_value_t = 100_000, value_parser = common::sizing::count::<0, { sample::MAX_ROWS }>)]
    rows: u64,
}

#[derive(Args, Clone)]
struct SourceArgs {
    /// The source database: mysql://USER@HOST:PORT/DB. Give the password with
    /// --password-file or TABLE_REPLAY_PASSWORD, or in the URL through TABLE_REPLAY_SOURCE:
    /// a password on the command line is visible to every local user in `ps`.
    #[arg(long, env = "TABLE_REPLAY_SOURCE", hide_env_values = true)]
    source: String,
    /// A file whose first line is the source password (else TABLE_REPLAY_PASSWORD).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// The source table.
    #[arg(long)]
    table: String,
    /// The key column (default: the primary key); a single non-negative integer column. With
    /// --changes: COL[,COL…], the columns `follow --key` names (default: the key follow
    /// takes: the primary key, else a unique NOT NULL key).
    #[arg(long)]
    key: Option<String>,
}

#[derive(Args, Clone)]
struct DestArgs {
    /// Destination database.
    #[arg(long, default_value = "REPLAY")]
    database: String,
    /// Destination schema.
    #[arg(long, default_value = "PUBLIC")]
    schema: String,
    /// Connection profile (the official SDK's profile.json); otherwise SNOWFLAKE_* variables.
    #[arg(long)]
    profile: Option<PathBuf>,
}

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    dest: DestArgs,
    /// Destination pipe (default: <TABLE>_PIPE, as `ddl` creates it).
    #[arg(long)]
    pipe: Option<String>,
    /// Dead-letter pipe for rows that cannot be replayed (default: <TABLE>_DLQ_PIPE, as `ddl`
    /// creates it); opened at the first bad row.
    #[arg(long)]
    dlq_pipe: Option<String>,
    /// Rows per keyset page (and per append).
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// Keep polling for rows inserted later (by key) until Ctrl-C or SIGTERM.
    #[arg(long)]
    follow: bool,
    /// The client's max_client_lag: how long appended rows may wait before they are sent.
    #[arg(long, default_value = "1s", value_parser = snowpipe_streaming::duration::parse)]
    max_client_lag: Duration,
    /// How often --follow polls.
    #[arg(long, default_value = "1s", value_parser = snowpipe_streaming::duration::parse)]
    poll_interval: Duration,
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    dest: DestArgs,
    /// Destination table (default: the source table's name in upper case).
    #[arg(long)]
    dest_table: Option<String>,
    /// Warehouse for the SQL API (else SNOWFLAKE_WAREHOUSE, else the user's default).
    #[arg(long, env = "SNOWFLAKE_WAREHOUSE")]
    warehouse: Option<String>,
    /// Rows per compared page.
    #[arg(long, default_value_t = 10_000)]
    page: usize,
    /// Compare with the state the change table of `follow` implies (<TABLE>_CHANGES unless
    /// --dest-table): the latest change per key, deletes removed, nothing before the latest
    /// truncate; keys in <TABLE>_DLQ are reported as dead-lettered.
    #[arg(long)]
    changes: bool,
}

#[derive(Args)]
struct DdlArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Destination database.
    #[arg(long, default_value = "REPLAY")]
    database: String,
    /// Destination schema.
    #[arg(long, default_value = "PUBLIC")]
    schema: String,
    /// Destination table (default: the source table's name in upper case).
    #[arg(long)]
    dest_table: Option<String>,
    /// Destination pipe (default: <TABLE>_PIPE).
    #[arg(long)]
    pipe: Option<String>,
    /// Dead-letter pipe (default: <TABLE>_DLQ_PIPE), into the table <DEST_TABLE>_DLQ.
    #[arg(long)]
    dlq_pipe: Option<String>,
    /// Print the change table <DEST_TABLE>_CHANGES, its pipe <TABLE>_CHANGES_PIPE (what
    /// `follow` writes), the dead-letter table <DEST_TABLE>_DLQ with <TABLE>_DLQ_PIPE (the
    /// changes the type mapping refuses) and the current-state view instead.
    #[arg(long)]
    changes: bool,
}

impl SourceArgs {
    /// The URL to connect with (the password put in from a file or the environment).
    fn url(&self) -> Result<String> {
        source_url(&self.source, self.password_file.as_deref())
    }
}

/// [`secret::source_url`] with `TABLE_REPLAY_PASSWORD`.
fn source_url(url: &str, password_file: Option<&std::path::Path>) -> Result<String> {
    secret::source_url(url, password_file, std::env::var(secret::PASSWORD_ENV).ok())
}

fn default_dest_table(table: &str) -> String {
    schema::snowflake_name(table)
}

fn default_pipe(table: &str) -> String {
    format!("{}_PIPE", schema::snowflake_name(table))
}

/// The builder from --profile or SNOWFLAKE_* variables.
fn builder(profile: Option<&PathBuf>) -> Result<ClientBuilder> {
    if !common::external_configured(profile.map(PathBuf::as_path)) {
        bail!(
            "no destination: pass --profile profile.json, or set SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and \
             SNOWFLAKE_PRIVATE_KEY_FILE (plus SNOWFLAKE_URL=http://127.0.0.1:PORT for an emulator)"
        );
    }
    common::builder_from(profile.map(PathBuf::as_path))
}

async fn run_replay(
    client: &StreamingIngestClient,
    opts: &replay::ReplayOptions,
) -> Result<replay::ReplayReport> {
    let report = replay::replay(client, opts, common::terminated()).await?;
    let secs = report.elapsed.as_secs_f64().max(1e-3);
    say!(
        "replayed {} rows of {} in {:.1}s ({} rows/s); committed key {}{}",
        common::thousands(report.rows),
        report.table,
        secs,
        common::thousands((report.rows as f64 / secs) as u64),
        report.committed.map_or("-".into(), |c| c.to_string()),
        report
            .resumed_after
            .map_or(String::new(), |k| format!(" (resumed after {k})")),
    );
    say!("{}", report.bad_rows_line());
    Ok(report)
}

/// The command line, `--log-format` also from `TABLE_REPLAY_LOG_FORMAT` (exits as clap does
/// on an error or `--help`).
fn parse() -> Cli {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let command = Cli::command().mut_arg("log_format", |a| a.env("TABLE_REPLAY_LOG_FORMAT"));
    let mut matches = command.get_matches();
    Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.exit())
}

#[tokio::main]
pub async fn main() -> Result<ExitCode> {
    // The logger first, in the format the command line asks for, so that the warning below
    // and every later line are in it (clap refuses a bad value when it parses).
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let format = snowpipe_cli_support::log::LogFormat::from_args(&argv, "TABLE_REPLAY_");
    snowpipe_cli_support::log::init(format, "warn");
    secret::warn_on_command_line(std::env::args().skip(1));
    let cli = parse();
    match run(cli).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            // One line: `error: ` and the chain (the ownership-lost line alone when another
            // writer took the channel over); one JSON object with `--log-format json`.
            common::print_error(&e);
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None if cli.cdc => {
            if !cdc::demo::run(cli.rows).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        None => default_run(cli.rows, cli.batch).await,
        Some(Command::Follow(a)) => cdc::cli::run(a).await,
        Some(Command::Ddl(a)) => {
            let mut conn = source::connect(&a.source.url()?).await?;
            let table = if a.changes {
                let cols = a.source.key.as_ref().map(|k| {
                    k.split(',')
                        .map(|c| c.trim().to_owned())
                        .collect::<Vec<_>>()
                });
                cdc::key::describe(&mut conn, &a.source.table, cols.as_deref())
                    .await?
                    .0
            } else {
                source::describe(&mut conn, &a.source.table, a.source.key.as_deref()).await?
            };
            let dest = a
                .dest_table
                .unwrap_or_else(|| default_dest_table(&a.source.table));
            if a.changes {
                print!(
                    "{}",
                    cdc::changes::ddl_script(&table, &a.database, &a.schema, &dest)
                );
                return Ok(());
            }
            let pipe = a.pipe.unwrap_or_else(|| default_pipe(&a.source.table));
            let dlq_pipe = a
                .dlq_pipe
                .unwrap_or_else(|| dead_letter::pipe_name(&a.source.table));
            print!(
                "{}{}",
                schema::ddl(&table, &a.database, &a.schema, &dest, &pipe),
                dead_letter::ddl(
                    &a.database,
                    &a.schema,
                    &dead_letter::table_name(&dest),
                    &dlq_pipe
                )
            );
            Ok(())
        }
        Some(Command::Sample(a)) => {
            let mut conn =
                source::connect(&source_url(&a.source, a.password_file.as_deref())?).await?;
            sample::create(&mut conn, a.rows).await?;
            say!(
                "created {} with {} rows",
                sample::TABLE,
                common::thousands(a.rows + 5)
            );
            Ok(())
        }
        Some(Command::Replay(a)) => replay_command(a).await,
        Some(Command::Verify(a)) => {
            let mut sql = builder(a.dest.profile.as_ref())?.build_sql()?;
            if let Some(w) = a.warehouse {
                sql = sql.warehouse(w);
            }
            let dest = verify::Dest {
                database: a.dest.database.clone(),
                schema: a.dest.schema.clone(),
                table: a.dest_table.unwrap_or_else(|| {
                    let t = default_dest_table(&a.source.table);
                    if a.changes {
                        cdc::changes::table_name(&t)
                    } else {
                        t
                    }
                }),
                changes: a.changes,
            };
            let sql = sql.database(&dest.database).schema(&dest.schema);
            let v = verify::verify(
                &a.source.url()?,
                &a.source.table,
                a.source.key.as_deref(),
                &sql,
                &dest,
                a.page.max(1),
            )
            .await?;
            print!("{}", v.render(&a.source.table, &dest));
            if !v.is_exact() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// `table_replay replay`: the dead-letter table brought up to date, the replay, its JSON line.
///
/// # Errors
/// When the destination cannot be reached, or as [`replay::replay`].
async fn replay_command(a: ReplayArgs) -> Result<()> {
    let client = builder(a.dest.profile.as_ref())?
        .max_client_lag(a.max_client_lag)
        .build()
        .await
        .context("cannot connect to the destination")?;
    let opts = replay::ReplayOptions {
        pipe: a.pipe.unwrap_or_else(|| default_pipe(&a.source.table)),
        dlq_pipe: a
            .dlq_pipe
            .unwrap_or_else(|| dead_letter::pipe_name(&a.source.table)),
        source: a.source.url()?,
        table: a.source.table,
        key: a.source.key,
        database: a.dest.database,
        schema: a.dest.schema,
        batch: a.batch.max(1),
        follow: a.follow,
        poll_interval: a.poll_interval,
        progress_every: Some(Duration::from_secs(1)),
    };
    // A dead-letter table an earlier version created: it gets SOURCE_KEY_TEXT.
    let sql = builder(a.dest.profile.as_ref())?
        .build_sql()?
        .database(&opts.database)
        .schema(&opts.schema);
    let place = (opts.database.as_str(), opts.schema.as_str());
    dead_letter::ensure_key_text_column(&sql, place, &opts.table).await?;
    let report = run_replay(&client, &opts).await?;
    client.close().await?;
    println!("{}", report.json_line());
    Ok(())
}

/// The default run: private MariaDB with the sample table → embedded emulator → verify.
async fn default_run(rows: u64, batch: usize) -> Result<()> {
    say!("table_replay: starting a private MariaDB server…");
    let db = mariadb::MariaDb::start()?;
    let mut admin = source::connect(&format!("{}/mysql", db.server_url())).await?;
    use mysql_async::prelude::Queryable as _;
    admin
        .query_drop("CREATE DATABASE IF NOT EXISTS replay_demo")
        .await?;
    drop(admin);
    let url = db.url("replay_demo");
    let mut conn = source::connect(&url).await?;
    let started = std::time::Instant::now();
    sample::create(&mut conn, rows).await?;
    say!(
        "table_replay: sample table {} with {} rows (every type, sparse keys) in {:.1}s",
        sample::TABLE,
        common::thousands(rows + 5),
        started.elapsed().as_secs_f64()
    );
    let table = source::describe(&mut conn, sample::TABLE, None).await?;
    drop(conn);
    let (database, schema_name) = ("REPLAY", "PUBLIC");
    let dest_table = default_dest_table(sample::TABLE);
    let pipe = default_pipe(sample::TABLE);
    let dlq_pipe = dead_letter::pipe_name(sample::TABLE);
    let ddl = schema::ddl(&table, database, schema_name, &dest_table, &pipe)
        + &dead_letter::ddl(
            database,
            schema_name,
            &dead_letter::table_name(&dest_table),
            &dlq_pipe,
        );
    say!("Snowflake DDL (table_replay ddl):\n{ddl}");

    let emulator = start_emulator(database, schema_name, &ddl, None).await?;
    say!(
        "table_replay: embedded emulator at {}",
        emulator.emulator.url()
    );
    let builder = || emulator.builder();
    let client = builder().build().await?;
    let opts = replay::ReplayOptions {
        source: url.clone(),
        table: sample::TABLE.into(),
        key: None,
        database: database.into(),
        schema: schema_name.into(),
        pipe,
        dlq_pipe,
        batch: batch.max(1),
        follow: false,
        poll_interval: Duration::from_secs(1),
        progress_every: Some(Duration::from_secs(1)),
    };
    let report = run_replay(&client, &opts).await?;
    client.close().await?;

    let sql: SqlClient = builder()
        .build_sql()?
        .database(database)
        .schema(schema_name);
    let dest = verify::Dest {
        database: database.into(),
        schema: schema_name.into(),
        table: dest_table,
        changes: false,
    };
    let v = verify::verify(&url, sample::TABLE, None, &sql, &dest, 10_000).await?;
    print!("{}", v.render(sample::TABLE, &dest));
    println!("{}", report.json_line());
    emulator.emulator.shutdown().await;
    drop(db);
    if !v.is_exact() {
        std::process::exit(1);
    }
    Ok(())
}

/// The embedded emulator with the destination's DDL, and the key to reach it.
pub struct EmbeddedEmulator {
    pub emulator: snowpipe_emulator::Emulator,
    private_pem: String,
}

impl EmbeddedEmulator {
    /// A client builder pointing at the emulator with its key.
    pub fn builder(&self) -> ClientBuilder {
        ClientBuilder::new()
            .account("REPLAY")
            .user("REPLAY")
            .url(self.emulator.url())
            .private_key_pem(self.private_pem.clone())
    }
}

/// Starts an emulator declaring `database.schema` and `ddl` (from [`schema::ddl`]): strict
/// offset tokens, BINARY read as hex (as Snowflake does), commits 200 ms after each append.
///
/// # Errors
/// When the key cannot be generated or the emulator cannot start.
pub async fn start_emulator(
    database: &str,
    schema_name: &str,
    ddl: &str,
    data_dir: Option<PathBuf>,
) -> Result<EmbeddedEmulator> {
    use snowpipe_emulator::Emulator;
    let mut config = common::embedded_config(
        vec![
            format!("CREATE DATABASE IF NOT EXISTS {database}; CREATE SCHEMA IF NOT EXISTS {database}.{schema_name};"),
            ddl.to_owned(),
        ],
        Duration::from_millis(200),
    );
    // BINARY columns arrive as hex (`schema.rs`): the emulator's default binary format, as
    // Snowflake's default BINARY_INPUT_FORMAT.
    config.data_dir = data_dir;
    let (emulator, key) = Emulator::start_with_new_key(config)
        .await
        .context("cannot start the emulator")?;
    Ok(EmbeddedEmulator {
        emulator,
        private_pem: key.private_key_pem().to_owned(),
    })
}
