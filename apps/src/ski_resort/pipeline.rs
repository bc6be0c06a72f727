//! The connected parts: the all-in-one run, `stream`, `emulator`, and the adapter from the
//! streamer's [`Destination`] to the SDK's channels.

use snowpipe_streaming::{Positions, Rows};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use bytes::Bytes;
use snowpipe_emulator::Emulator;
use snowpipe_streaming::{Channel, ClientBuilder, OffsetToken, StreamingIngestClient};

use crate::common::all_in_one::{
    connect_embedded, start_embedded, stop_and_close, Display, Producer,
};
use crate::common::say::say;
use crate::common::{format_table, thousands};
use crate::ski_resort::cli::{ConnectArgs, RunArgs, StreamArgs};
use crate::ski_resort::embedded::SETUP_SQL;
use crate::ski_resort::generator::{produce, Limit, ProduceOptions};
use crate::ski_resort::model::Table;
use crate::ski_resort::progress;
use crate::ski_resort::queue::Queue;
use crate::ski_resort::report;
use crate::ski_resort::streamer::{
    stream_all, Control, Destination, DestinationChannel, Stats, StreamOptions,
};

/// Database and schema of the quickstart.
pub(super) const DATABASE: &str = "STREAMING_INGEST";
/// Schema of the quickstart.
pub(super) const SCHEMA: &str = "STREAMING_INGEST";

/// The SDK as a [`Destination`]: one channel per pipe, named `<TABLE>_CHANNEL<suffix>`.
#[derive(Debug, Clone)]
pub(super) struct SdkDestination {
    client: StreamingIngestClient,
    suffix: String,
    /// Counts rows the server rejected (`rejected` of each table).
    stats: Arc<Stats>,
}

/// An open SDK channel.
#[derive(Debug)]
pub(super) struct SdkChannel {
    channel: Channel,
}

#[async_trait]
impl Destination for SdkDestination {
    type Channel = SdkChannel;

    async fn open(&self, table: Table) -> Result<SdkChannel> {
        let name = format!("{}_CHANNEL{}", table.name(), self.suffix);
        let channel = self
            .client
            .pipe(DATABASE, SCHEMA, &table.pipe())
            .open_channel(&name)
            .await
            .with_context(|| {
                format!(
                    "cannot open channel {name} on pipe {DATABASE}.{SCHEMA}.{}",
                    table.pipe()
                )
            })?;
        // Rows the pipe rejects still advance the committed token: count and report them.
        let mut errors = channel.row_errors();
        let stats = self.stats.clone();
        tokio::spawn(async move {
            while let Some(event) = errors.recv().await {
                let t = &stats.tables[table.index()];
                t.rejected.fetch_add(event.new_errors, Ordering::Relaxed);
                t.row_errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(&event);
                tracing::warn!(
                    %table,
                    rows = event.new_errors,
                    upper_bound = ?event.offset_upper_bound,
                    "the server rejected rows: {}",
                    event.last_error_message.as_deref().unwrap_or("no message")
                );
            }
        });
        Ok(SdkChannel { channel })
    }
}

#[async_trait]
impl DestinationChannel for SdkChannel {
    fn committed(&self) -> Result<Option<u64>> {
        match self.channel.latest_committed_offset_token() {
            None => Ok(None),
            Some(token) => token.as_u64().map(Some).with_context(|| {
                format!(
                    "the channel's committed offset token {token:?} is not a queue id: it was fed by another \
                     program; use --channel-suffix to stream into a fresh channel"
                )
            }),
        }
    }

    async fn append(&mut self, ndjson: Bytes, first: u64, last: u64) -> Result<()> {
        self.channel
            .append(
                Rows::ndjson(ndjson),
                Positions::span(OffsetToken::from(first)..=OffsetToken::from(last)),
            )
            .await?;
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.channel.flush().await?;
        Ok(())
    }

    async fn close(self) -> Result<()> {
        self.channel.close().await?;
        Ok(())
    }
}

/// One line on how often the embedded emulator, enforcing Snowflake's limits, refused an
/// append as too large (413) or too fast for its channel (429).
fn print_limit_answers(emu: &Emulator) {
    let appends: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == snowpipe_emulator::Endpoint::AppendRows)
        .collect();
    let with = |status| appends.iter().filter(|r| r.status == status).count();
    println!(
        "limits (--limits snowflake): {} appends, {} answered 413, {} answered 429",
        thousands(appends.len() as u64),
        with(413),
        with(429)
    );
}

/// The SQL API client the report reads the landed tables with, in the setup's database and
/// schema.
///
/// # Errors
/// When the configuration is incomplete or rejected.
pub(super) fn report_sql(builder: ClientBuilder) -> Result<snowpipe_streaming::sql::SqlClient> {
    Ok(builder
        .build_sql()
        .context("cannot set up the SQL API client for the report")?
        .database("STREAMING_INGEST")
        .schema("STREAMING_INGEST"))
}

/// Connects with --profile or the SNOWFLAKE_* variables.
///
/// # Errors
/// When the profile cannot be read or the configuration is incomplete or rejected.
async fn connect(args: &ConnectArgs) -> Result<StreamingIngestClient> {
    crate::common::connect(args.profile.as_deref(), args.max_client_lag).await
}

/// Ctrl-C or SIGTERM (what `docker stop`, Kubernetes and systemd send): the first calls
/// `first` (drain), the second sets `control.abort`. The handlers are installed before this
/// returns.
fn on_ctrl_c(control: Arc<Control>, first: impl FnOnce() + Send + 'static) {
    let stop = crate::common::terminated();
    tokio::spawn(async move {
        stop.await;
        say!("\nCtrl-C or SIGTERM: draining (sending what is queued and waiting for its commit); again to quit now");
        let again = crate::common::terminated();
        first();
        again.await;
        say!("\nstopping now; uncommitted rows stay in the queue for the next run");
        control.abort.store(true, Ordering::Relaxed);
    });
}

/// Prints per-table stream statistics.
fn print_stream_summary(stats: &Stats, elapsed: Duration) {
    let rows: Vec<Vec<String>> = Table::ALL
        .iter()
        .map(|t| {
            let s = &stats.tables[t.index()];
            let batches = s.commit_batches.load(Ordering::Relaxed).max(1);
            let committed = s.committed.load(Ordering::Relaxed);
            vec![
                t.name().to_string(),
                thousands(s.sent.load(Ordering::Relaxed)),
                thousands(committed),
                thousands((committed as f64 / elapsed.as_secs_f64().max(1e-3)) as u64),
                thousands(s.commit_ms_sum.load(Ordering::Relaxed) / batches),
                thousands(s.max_commit_ms.load(Ordering::Relaxed)),
                thousands(s.rejected.load(Ordering::Relaxed)),
                thousands(s.dead_lettered.load(Ordering::Relaxed)),
                s.sessions.load(Ordering::Relaxed).to_string(),
            ]
        })
        .collect();
    println!("\nStream ({:.1} s)", elapsed.as_secs_f64());
    print!(
        "{}",
        format_table(
            &[
                "TABLE",
                "SENT",
                "COMMITTED",
                "ROWS/S",
                "COMMIT_AVG_MS",
                "COMMIT_MAX_MS",
                "REJECTED",
                "DEAD_LETTERED",
                "SESSIONS"
            ],
            &rows
        )
    );
}

/// `ski_resort stream`: streams the queue until Ctrl-C or SIGTERM (then drains: exit 0), or
/// with `--until-drained` until the queue is empty, committed, and no generator runs.
///
/// # Errors
/// When the connection cannot be set up, a channel keeps failing, or the queue is unusable.
///
/// # Cancellation
/// Dropping the future stops streaming; uncommitted rows stay queued for the next run.
pub(super) async fn stream(args: StreamArgs) -> Result<()> {
    let client = connect(&args.connect).await?;
    let opts = StreamOptions {
        until_drained: args.until_drained,
        ..StreamOptions::new(args.queue.clone())
    };
    // Create the queue if the generator has not yet, so the progress display can read it.
    drop(Queue::open(&args.queue)?);
    let control = Arc::new(Control::default());
    let stats = Arc::new(Stats::default());
    {
        let c = control.clone();
        on_ctrl_c(control.clone(), move || {
            c.drain.store(true, Ordering::Relaxed)
        });
    }
    let display = Display::spawn(|stop| progress::spawn(args.queue.clone(), stats.clone(), stop));
    let started = Instant::now();
    let dest = Arc::new(SdkDestination {
        client: client.clone(),
        suffix: args.connect.channel_suffix.clone(),
        stats: stats.clone(),
    });
    let result = stream_all(dest, opts, control, stats.clone()).await;
    let closed = stop_and_close(display, &client).await;
    result?;
    closed?;
    print_stream_summary(&stats, started.elapsed());
    print_queue_left(&args.queue)?;
    print_bad_records(&args.queue, &stats)?;
    Ok(())
}

/// Prints how many rows are still waiting in the queue.
fn print_queue_left(queue: &std::path::Path) -> Result<()> {
    let depth = Queue::open_read_only(queue)?.depth()?;
    let size = std::fs::metadata(queue).map(|m| m.len()).unwrap_or(0);
    println!(
        "queue: {} rows waiting ({} KiB on disk)",
        thousands(depth.iter().sum()),
        thousands(size / 1024)
    );
    Ok(())
}

/// Prints the bad-record section: dead letters (queue file) and server row errors (`stats`).
fn print_bad_records(queue: &std::path::Path, stats: &Stats) -> Result<()> {
    let queue = Queue::open_read_only(queue)?;
    print!(
        "{}",
        crate::ski_resort::bad_records::format_bad_records(
            &queue.ledger()?,
            &queue.first_dead_letters()?,
            Some(stats)
        )
    );
    Ok(())
}

/// Where the all-in-one run streams to and reads back from: the account of --profile /
/// SNOWFLAKE_*, else an embedded emulator (with Snowflake's limits) in the run's directory.
struct Target {
    /// The embedded emulator, when there is one.
    emulator: Option<Emulator>,
    client: StreamingIngestClient,
    /// The SQL API client the report reads the landed tables with.
    sql: Result<snowpipe_streaming::sql::SqlClient>,
}

impl Target {
    async fn open(args: &RunArgs, dir: &std::path::Path) -> Result<Self> {
        if crate::common::external_configured(args.connect.profile.as_deref()) {
            let sql = report_sql(crate::common::builder_from(
                args.connect.profile.as_deref(),
            )?);
            return Ok(Target {
                emulator: None,
                client: connect(&args.connect).await?,
                sql,
            });
        }
        // Strict offsets: queue ids are per-row tokens.
        let mut config =
            crate::common::embedded_config(vec![SETUP_SQL.to_string()], args.commit_delay);
        config.data_dir = Some(dir.join("emulator"));
        // Snowflake's per-channel rate, channel and pipe limits, as the real service.
        config.limits = snowpipe_emulator::Limits::Snowflake;
        let (emulator, builder) = start_embedded(config, "SKI_RESORT").await?;
        let client =
            connect_embedded(builder.clone().max_client_lag(args.connect.max_client_lag)).await?;
        // The report reads the tables through the SQL API, as against a real account.
        Ok(Target {
            emulator: Some(emulator),
            client,
            sql: report_sql(builder),
        })
    }
}

/// The all-in-one run: generator, streamer, progress and report in one process, against an
/// embedded emulator unless `--profile` or `SNOWFLAKE_ACCOUNT` / `SNOWFLAKE_URL` is set.
///
/// # Errors
/// When setup fails, streaming fails, or the landed tables differ from what was generated.
///
/// # Cancellation
/// Dropping the future stops everything; the temporary directory is removed.
pub(super) async fn run(args: RunArgs) -> Result<()> {
    let gen_opts = args.gen.options(6_000)?;
    if let Some(dir) = args
        .keep
        .as_ref()
        .filter(|d| d.join("queue.sqlite").exists())
    {
        bail!(
            "{} already holds a run (queue.sqlite); --keep needs a new directory, or use the \
             generate / stream / report subcommands to continue with it",
            dir.display()
        );
    }
    let (_temp, dir) = crate::common::run_dir(args.keep.as_deref(), "ski_resort")?;
    let queue_path = dir.join("queue.sqlite");
    let target = Target::open(&args, &dir).await?;
    print_run_header(&args, &gen_opts, target.emulator.as_ref(), &queue_path);
    let (control, stats, elapsed) =
        generate_and_stream(&args, gen_opts, &queue_path, &target.client).await?;
    print_stream_summary(&stats, elapsed);
    print_queue_left(&queue_path)?;
    print_bad_records(&queue_path, &stats)?;
    if let Some(emu) = &target.emulator {
        print_limit_answers(emu);
    }
    let outcome = report_landed(target.sql, &queue_path, target.emulator.is_some()).await?;
    let aborted = control.abort.load(Ordering::Relaxed);
    if aborted {
        println!("\naborted before the queue drained: rows still queued count as lost above");
    }
    if let Some(emu) = target.emulator {
        emu.shutdown().await;
    }
    if let Some(dir) = &args.keep {
        println!("\nkept queue and emulator data in {}", dir.display());
    }
    if !outcome && !aborted {
        bail!("the landed tables do not hold exactly the generated rows");
    }
    Ok(())
}

/// The all-in-one run's first lines: what is generated, where it goes, where the queue is.
fn print_run_header(
    args: &RunArgs,
    gen_opts: &ProduceOptions,
    emulator: Option<&Emulator>,
    queue_path: &std::path::Path,
) {
    println!(
        "ski_resort: {} at {} events/s, seed {} → {}",
        match gen_opts.limit {
            Limit::Events(n) => format!("{} events", thousands(n)),
            Limit::Duration(d) => format!("events for {}", humantime::format_duration(d)),
        },
        if gen_opts.rate > 0.0 {
            thousands(gen_opts.rate as u64)
        } else {
            "max".into()
        },
        gen_opts.config.seed,
        match emulator {
            Some(e) => format!(
                "embedded emulator at {} (commit delay {})",
                e.url(),
                humantime::format_duration(args.commit_delay)
            ),
            None => "Snowflake".to_string(),
        }
    );
    match &args.keep {
        Some(_) => println!("queue: {}\n", queue_path.display()),
        None => println!(
            "queue: {} (temporary; --keep DIR keeps it)\n",
            queue_path.display()
        ),
    }
}

/// Generates into the queue and streams it until drained (or Ctrl-C or SIGTERM), with the progress
/// display; returns the run's control flags, the stream statistics and how long it took.
async fn generate_and_stream(
    args: &RunArgs,
    gen_opts: ProduceOptions,
    queue_path: &std::path::Path,
    client: &StreamingIngestClient,
) -> Result<(Arc<Control>, Arc<Stats>, Duration)> {
    // Register the generator before the streamer starts, so "until drained" waits for it.
    let mut queue = Queue::open(queue_path)?;
    queue.set_generator_active(true)?;
    let stop_generator = Arc::new(AtomicBool::new(false));
    let generator = {
        let stop = stop_generator.clone();
        let task = tokio::task::spawn_blocking(move || produce(&mut queue, &gen_opts, &stop));
        Producer::new("generator", stop_generator.clone(), task)
    };
    let control = Arc::new(Control::default());
    on_ctrl_c(control.clone(), move || {
        stop_generator.store(true, Ordering::Relaxed)
    });
    let stats = Arc::new(Stats::default());
    let display =
        Display::spawn(|stop| progress::spawn(queue_path.to_owned(), stats.clone(), stop));
    let started = Instant::now();
    let dest = Arc::new(SdkDestination {
        client: client.clone(),
        suffix: args.connect.channel_suffix.clone(),
        stats: stats.clone(),
    });
    let opts = StreamOptions {
        until_drained: true,
        ..StreamOptions::new(queue_path.to_owned())
    };
    let streamed = stream_all(dest, opts, control.clone(), stats.clone()).await;
    let generated = generator.join_after(&streamed).await?;
    let closed = stop_and_close(display, client).await;
    streamed?;
    generated?;
    closed?;
    Ok((control, stats, started.elapsed()))
}

/// Reads the landed tables back and prints the reconciliation and the dashboard's views;
/// `true` when every generated row landed exactly once. Without the SQL API (a real account
/// whose user has no default warehouse) it prints the committed counts instead; against the
/// embedded emulator a failed read is an error.
async fn report_landed(
    sql: Result<snowpipe_streaming::sql::SqlClient>,
    queue_path: &std::path::Path,
    embedded: bool,
) -> Result<bool> {
    let ledger = Queue::open_read_only(queue_path)?.ledger()?;
    // The landed tables through the SQL API: the embedded emulator answers it; a real account
    // does when its user has a default warehouse.
    let landed = match sql {
        Ok(sql) => match report::reconcile(&sql, &ledger).await {
            Ok(recs) => report::format_views(&sql).await.map(|views| (recs, views)),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match landed {
        Ok((recs, views)) => {
            println!("\nReconciliation (generated vs landed, by TXID)");
            print!("{}", report::format_reconciliation(&recs));
            print!("{views}");
            Ok(recs.iter().all(report::Reconciliation::exact))
        }
        Err(e) if embedded => Err(e),
        Err(e) => {
            println!("\ncannot read the landed tables through the SQL API: {e:#}");
            let rows: Vec<Vec<String>> = Table::ALL
                .iter()
                .map(|t| {
                    let l = ledger[t.index()];
                    vec![
                        t.name().to_string(),
                        thousands(l.generated),
                        thousands(l.committed),
                        thousands(l.dead_lettered),
                    ]
                })
                .collect();
            println!("\nCommitted by offset token (generated vs committed)");
            print!(
                "{}",
                format_table(&["TABLE", "GENERATED", "COMMITTED", "DEAD_LETTERED"], &rows)
            );
            println!(
                "\nThe dashboard lives in Snowflake: run apps/src/ski_resort/sql/dashboard.sql, then \
                 SELECT * FROM INGEST_RECONCILIATION (duplicates must be 0)."
            );
            // Dead letters from other writers are not in `generated`; ones the generator
            // wrote (a damaged write) are: either way every generated row is accounted for.
            Ok(ledger.iter().all(|l| {
                l.committed == l.generated || l.committed + l.dead_lettered == l.generated
            }))
        }
    }
}
