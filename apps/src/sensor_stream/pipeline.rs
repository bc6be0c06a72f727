//! The connected parts: the all-in-one run, `publish` and `consume`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use snowpipe_emulator::Emulator;
use snowpipe_streaming::sql::SqlClient;
use snowpipe_streaming::StreamingIngestClient;
use tokio::sync::watch;

use crate::common::all_in_one::{
    connect_embedded, start_embedded, stop_and_close, Display, Producer,
};
use crate::common::say::{say, say_block};
use crate::common::thousands;
use crate::sensor_stream::bad_records::format_bad_records;
use crate::sensor_stream::broker;
use crate::sensor_stream::cli::{ConnectArgs, ConsumeArgs, PublishArgs, RunArgs};
use crate::sensor_stream::consume::{consume_all, lock, ConsumeOptions, ConsumeStats, Until};
use crate::sensor_stream::dead_letter::DeadLetters;
use crate::sensor_stream::nats_server::NatsServer;
use crate::sensor_stream::publish::{check_rate, publish, Limit, PublishOptions, PublishStats};
use crate::sensor_stream::report::{self, Reconciliation};

/// The Snowflake setup; the embedded emulator declares its catalog from it.
pub const SETUP_SQL: &str = include_str!("sql/setup.sql");
/// Database of `sql/setup.sql`.
pub const DATABASE: &str = "STREAMING_INGEST";
/// Schema of `sql/setup.sql`.
pub const SCHEMA: &str = "SENSORS";
/// Pipe of `sql/setup.sql`.
pub const PIPE: &str = "SENSOR_READINGS_PIPE";
/// The table, as the emulator names it in SQLite.
pub const EMULATOR_TABLE: &str = "\"STREAMING_INGEST.SENSORS.SENSOR_READINGS\"";

/// Connects with --profile or the SNOWFLAKE_* variables.
pub(crate) async fn connect(args: &ConnectArgs) -> Result<StreamingIngestClient> {
    crate::common::connect(args.profile.as_deref(), args.max_client_lag).await
}

/// Ctrl-C or SIGTERM (what `docker stop`, Kubernetes and systemd send): the first calls
/// `first`, the second `second`. The handlers are installed before this returns.
pub(crate) fn on_ctrl_c(
    first: impl FnOnce() + Send + 'static,
    second: impl FnOnce() + Send + 'static,
) {
    let stop = crate::common::terminated();
    tokio::spawn(async move {
        stop.await;
        say!(
            "\nstopping (Ctrl-C or SIGTERM): what was read is committed first; again to stop at once"
        );
        let again = crate::common::terminated();
        first();
        again.await;
        second();
    });
}

/// A consumer's stop flag: raised by the first Ctrl-C or SIGTERM (what was read is committed
/// first); the second exits at once (130). Keep the sender: dropping it closes the flag.
pub(crate) fn stop_on_ctrl_c() -> (Arc<watch::Sender<bool>>, watch::Receiver<bool>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let raise = stop_tx.clone();
    on_ctrl_c(
        move || {
            let _ = raise.send(true);
        },
        || std::process::exit(130),
    );
    (stop_tx, stop_rx)
}

fn consume_options(stream: &str, shards: u32, args: &ConnectArgs, until: Until) -> ConsumeOptions {
    ConsumeOptions {
        stream: stream.to_string(),
        shards,
        database: DATABASE.into(),
        schema: SCHEMA.into(),
        pipe: PIPE.into(),
        batch_max: args.batch_max as usize,
        batch_max_bytes: usize::try_from(args.batch_max_bytes).unwrap_or(usize::MAX),
        until,
        max_failures: 20,
    }
}

/// `sensor_stream publish`.
///
/// # Errors
/// When the broker cannot be reached or an event cannot be stored.
pub async fn publish_cmd(args: PublishArgs) -> Result<()> {
    check_rate(args.rate)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let js = broker::connect(&args.nats).await?;
    let stream = broker::attach_stream(&js, &args.stream.stream).await?;
    let shards = args.stream.shards;
    say!(
        "publishing {} events at {}/s to {} ({} shards, seed {seed})",
        thousands(args.count),
        thousands(u64::from(args.rate)),
        args.stream.stream,
        shards
    );
    let stats = Arc::new(PublishStats::new(shards));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        on_ctrl_c(
            move || stop.store(true, Ordering::Relaxed),
            || std::process::exit(130),
        );
    }
    let display = Display::spawn(|stop| {
        report::spawn_progress(stream, Some(stats.clone()), None, shards, true, stop)
    });
    let opts = PublishOptions {
        shards,
        limit: Limit::Count(args.count),
        rate: args.rate,
        seed,
    };
    let result = publish(&js, &opts, &stats, &stop).await;
    display.stop().await;
    let per_shard = result?;
    let published: BTreeMap<String, u64> = per_shard
        .iter()
        .enumerate()
        .map(|(i, n)| (i.to_string(), *n))
        .collect();
    println!(
        "{}",
        serde_json::json!({ "published": published, "seed": seed })
    );
    Ok(())
}

/// `sensor_stream consume`.
///
/// # Errors
/// When the broker or Snowflake cannot be reached, the dead-letter stream cannot be found or
/// created, or a shard keeps failing.
pub async fn consume_cmd(args: ConsumeArgs) -> Result<()> {
    let shards = args.stream.shards;
    let nats = args
        .nats
        .as_deref()
        .context("--nats is required with --source nats")?;
    let js = broker::connect(nats).await?;
    let stream = broker::attach_stream(&js, &args.stream.stream).await?;
    let dead_letters = DeadLetters::attach(&js, &args.stream.stream, shards).await?;
    let client = connect(&args.connect).await?;
    let until = args.until_idle.map_or(Until::Forever, Until::Idle);
    let opts = ConsumeOptions {
        database: args.database.clone(),
        schema: args.schema.clone(),
        pipe: args.pipe.clone(),
        ..consume_options(&args.stream.stream, shards, &args.connect, until)
    };
    let stats = Arc::new(ConsumeStats::new(shards));
    let (_stop, stop_rx) = stop_on_ctrl_c();
    let display = Display::spawn(|stop| {
        report::spawn_progress(
            stream.clone(),
            None,
            Some(stats.clone()),
            shards,
            true,
            stop,
        )
    });
    let started = Instant::now();
    let result = consume_all(
        &client,
        &stream,
        &dead_letters,
        &opts,
        stats.clone(),
        stop_rx,
    )
    .await;
    let closed = stop_and_close(display, &client).await;
    result?;
    closed?;
    say_block!("{}", report::format_throughput(&stats, started.elapsed()));
    say_block!("{}", format_bad_records(&stats, &dead_letters.describe()));
    let consumed: BTreeMap<String, serde_json::Value> = stats
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let seq = |n: u64| (n > 0).then(|| n.to_string());
            (
                i.to_string(),
                serde_json::json!({
                    "rows": s.committed_rows.load(Ordering::Relaxed),
                    "committed": seq(s.committed_seq.load(Ordering::Relaxed)),
                    "through": seq(s.through_seq.load(Ordering::Relaxed)),
                    "dead_lettered": s.dead_lettered.load(Ordering::Relaxed),
                    "already_dead_lettered": s.already_dead_lettered.load(Ordering::Relaxed),
                    "row_errors": &*lock(&s.row_errors),
                }),
            )
        })
        .collect();
    println!("{}", serde_json::json!({ "consumed": consumed }));
    Ok(())
}

/// The embedded emulator of an all-in-one run, with a SQL API client on it (in the setup's
/// database and schema) for the reconciliation.
pub(crate) struct Embedded {
    /// The emulator; dropped at the end of the run.
    pub emulator: Emulator,
    /// The SQL API on `emulator`.
    pub sql: SqlClient,
}

/// The all-in-one run's destination: the account of --profile / SNOWFLAKE_*, else an
/// embedded emulator declared by `sql/setup.sql`.
///
/// # Errors
/// When the emulator cannot start or the client cannot connect.
pub(crate) async fn destination(
    args: &RunArgs,
) -> Result<(Option<Embedded>, StreamingIngestClient)> {
    if crate::common::external_configured(args.connect.profile.as_deref()) {
        return Ok((None, connect(&args.connect).await?));
    }
    // Sequences are per-row tokens: a request whose tokens cannot name its rows is a bug (the
    // embedded configuration's strict offsets).
    let config = crate::common::embedded_config(vec![SETUP_SQL.to_string()], args.commit_delay);
    let (emulator, builder) = start_embedded(config, "SENSORS").await?;
    let builder = builder.max_client_lag(args.connect.max_client_lag);
    let sql = builder
        .clone()
        .build_sql()
        .context("cannot set up the SQL API client on the embedded emulator")?
        .database(DATABASE)
        .schema(SCHEMA);
    let client = connect_embedded(builder).await?;
    Ok((Some(Embedded { emulator, sql }), client))
}

/// The all-in-one run: a private nats-server (unless --nats) and an embedded emulator (unless
/// --profile / SNOWFLAKE_*), publish, consume, report.
///
/// # Errors
/// When setup fails, consuming fails, or the table does not hold exactly the stream's sequences.
pub async fn run(args: RunArgs) -> Result<()> {
    check_rate(args.rate)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let shards = args.stream.shards;
    let (_server, nats_url) = nats(&args).await?;
    let (embedded, client) = destination(&args).await?;
    let emulator = embedded.map(|e| e.emulator);
    let js = broker::connect(&nats_url).await?;
    let stream = broker::attach_stream(&js, &args.stream.stream).await?;
    let dead_letters = DeadLetters::attach(&js, &args.stream.stream, shards).await?;
    print_run_header(&args, seed, emulator.as_ref(), &nats_url);
    let source = Source {
        js,
        stream,
        dead_letters,
    };
    let (publish_stats, consume_stats, elapsed) =
        publish_and_consume(&args, seed, &source, &client).await?;
    println!(
        "\nThroughput and publish → committed latency ({:.1} s)",
        elapsed.as_secs_f64()
    );
    print!("{}", report::format_throughput(&consume_stats, elapsed));
    print!(
        "\n{}",
        format_bad_records(&consume_stats, &source.dead_letters.describe())
    );
    if publish_stats.retries.load(Ordering::Relaxed) > 0 {
        println!(
            "  (publisher retried {} publishes)",
            publish_stats.retries.load(Ordering::Relaxed)
        );
    }
    let exact = check_landed(&source, emulator.as_ref(), shards, &consume_stats).await?;
    if let Some(emu) = emulator {
        emu.shutdown().await;
    }
    if !exact {
        bail!("SENSOR_READINGS does not hold exactly the stream's sequences");
    }
    Ok(())
}

/// The broker of `--nats`, else a private nats-server (kept running while the returned
/// server lives) and its URL.
async fn nats(args: &RunArgs) -> Result<(Option<NatsServer>, String)> {
    match &args.nats {
        Some(url) => Ok((None, url.clone())),
        None => {
            let server = tokio::task::spawn_blocking(|| NatsServer::start(None))
                .await?
                .context("cannot start a private nats-server")?;
            let url = server.url();
            Ok((Some(server), url))
        }
    }
}

/// The all-in-one run's first lines: what is published, where it goes, the broker.
fn print_run_header(args: &RunArgs, seed: u64, emulator: Option<&Emulator>, nats_url: &str) {
    let shards = args.stream.shards;
    println!(
        "sensor_stream: {} at {} events/s over {shards} shard{}, seed {seed}{} → {} | {} ({}), max_client_lag {}",
        humantime::format_duration(args.duration),
        thousands(u64::from(args.rate)),
        if shards == 1 { "" } else { "s" },
        if args.backlog { ", consumed after publishing" } else { "" },
        args.stream.stream,
        match emulator {
            Some(e) => format!("embedded emulator at {}", e.url()),
            None => "Snowflake".to_string(),
        },
        match emulator {
            Some(_) => format!("commit delay {}", humantime::format_duration(args.commit_delay)),
            None => "real account".into(),
        },
        humantime::format_duration(args.connect.max_client_lag),
    );
    println!(
        "nats: {nats_url}{}\n",
        if args.nats.is_none() {
            " (private nats-server, temporary store)"
        } else {
            ""
        }
    );
}

/// The broker side of the all-in-one run.
struct Source {
    js: async_nats::jetstream::Context,
    stream: async_nats::jetstream::stream::Stream,
    dead_letters: DeadLetters,
}

/// Publishes for `--duration` while consuming (or, with `--backlog`, first publishes, then
/// consumes) until every shard is handled up to its last sequence, with the progress display;
/// returns both sides' statistics and how long consuming took.
async fn publish_and_consume(
    args: &RunArgs,
    seed: u64,
    source: &Source,
    client: &StreamingIngestClient,
) -> Result<(Arc<PublishStats>, Arc<ConsumeStats>, std::time::Duration)> {
    let shards = args.stream.shards;
    let publish_stats = Arc::new(PublishStats::new(shards));
    let consume_stats = Arc::new(ConsumeStats::new(shards));
    let stop_publish = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    {
        let (stop_publish, stop_tx) = (stop_publish.clone(), stop_tx.clone());
        on_ctrl_c(
            move || stop_publish.store(true, Ordering::Relaxed),
            move || {
                let _ = stop_tx.send(true);
            },
        );
    }
    let (targets_tx, targets_rx) = watch::channel(None);
    let publisher = spawn_publisher(
        args,
        seed,
        source,
        &publish_stats,
        stop_publish,
        stop_tx.clone(),
        targets_tx,
    );
    let display = Display::spawn(|stop| {
        report::spawn_progress(
            source.stream.clone(),
            Some(publish_stats.clone()),
            Some(consume_stats.clone()),
            shards,
            false,
            stop,
        )
    });
    let mut publisher = Some(publisher);
    if args.backlog {
        if let Some(p) = publisher.take() {
            p.join().await??;
        }
    }
    let started = Instant::now();
    let opts = consume_options(
        &args.stream.stream,
        shards,
        &args.connect,
        Until::Reached(targets_rx),
    );
    let consumed = consume_all(
        client,
        &source.stream,
        &source.dead_letters,
        &opts,
        consume_stats.clone(),
        stop_rx,
    )
    .await;
    let elapsed = started.elapsed();
    if let Some(p) = publisher {
        let published = p.join_after(&consumed).await;
        // A consumer whose channel another writer took over is the cause; the publisher was
        // only stopped for it.
        if !consumed
            .as_ref()
            .is_err_and(crate::common::is_ownership_lost)
        {
            published??;
        }
    }
    let closed = stop_and_close(display, client).await;
    consumed?;
    closed?;
    Ok((publish_stats, consume_stats, elapsed))
}

/// Publishes for `--duration`, then sets each shard's last sequence as the consumers' target;
/// a failed publisher stops the consumers instead (they commit what they read).
fn spawn_publisher(
    args: &RunArgs,
    seed: u64,
    source: &Source,
    stats: &Arc<PublishStats>,
    stop: Arc<AtomicBool>,
    stop_consumers: Arc<watch::Sender<bool>>,
    targets_tx: watch::Sender<Option<Vec<u64>>>,
) -> Producer<Vec<u64>> {
    let shards = args.stream.shards;
    let (js, stream, stats, stop_flag) = (
        source.js.clone(),
        source.stream.clone(),
        stats.clone(),
        stop.clone(),
    );
    let opts = PublishOptions {
        shards,
        limit: Limit::For(args.duration),
        rate: args.rate,
        seed,
    };
    let task = tokio::spawn(async move {
        let published = match publish(&js, &opts, &stats, &stop_flag).await {
            Ok(p) => p,
            Err(e) => {
                // No target will ever be set: stop the consumers (they commit what they read).
                let _ = stop_consumers.send(true);
                return Err(e);
            }
        };
        // Everything is stored: each shard's consumer is done at the shard's last sequence.
        let mut targets = Vec::new();
        for shard in 0..shards {
            targets.push(broker::last_seq(&stream, shard).await?);
        }
        let _ = targets_tx.send(Some(targets));
        anyhow::Ok(published)
    });
    Producer::new("publisher", stop, task)
}

/// Checks the table against the stream: per shard against the embedded emulator's rows and
/// the dead letters (printing the reconciliation), else only prints the committed sequences;
/// `true` when nothing is missing or doubled.
async fn check_landed(
    source: &Source,
    emulator: Option<&Emulator>,
    shards: u32,
    consume_stats: &ConsumeStats,
) -> Result<bool> {
    let committed: Vec<u64> = consume_stats
        .shards
        .iter()
        .map(|s| s.committed_seq.load(Ordering::Relaxed))
        .collect();
    Ok(match emulator {
        Some(emu) => {
            let recs = reconcile(&source.stream, &source.dead_letters, emu, shards).await?;
            println!("\nReconciliation (the stream's sequences vs SENSOR_READINGS.STREAM_SEQ and the dead letters, per shard)");
            print!("{}", report::format_reconciliation(&recs, &committed));
            recs.iter().all(Reconciliation::exact)
        }
        None => {
            println!(
                "\nCommitted stream sequences per shard: {committed:?}. Check the table with the query at the \
                 end of apps/src/sensor_stream/sql/setup.sql (duplicates must be 0)."
            );
            true
        }
    })
}

/// Reconciles every shard: the broker's sequences against the emulator's STREAM_SEQ values and
/// the dead-lettered sequences.
async fn reconcile(
    stream: &async_nats::jetstream::stream::Stream,
    dead_letters: &DeadLetters,
    emu: &Emulator,
    shards: u32,
) -> Result<Vec<Reconciliation>> {
    let rows = tokio::task::block_in_place(|| {
        emu.query(&format!("SELECT SHARD, STREAM_SEQ FROM {EMULATOR_TABLE}"))
    })
    .context("cannot read SENSOR_READINGS from the emulator")?;
    let mut landed = vec![Vec::new(); shards as usize];
    for row in rows {
        let (Some(shard), Some(seq)) = (row[0].as_u64(), row[1].as_u64()) else {
            bail!("a SENSOR_READINGS row has no SHARD or STREAM_SEQ: {row:?}");
        };
        match landed.get_mut(shard as usize) {
            Some(l) => l.push(seq),
            None => bail!("a SENSOR_READINGS row has SHARD {shard}, beyond --shards {shards}"),
        }
    }
    let mut recs = Vec::new();
    for (shard, landed) in landed.iter().enumerate() {
        let shard = shard as u32;
        let last = broker::last_seq(stream, shard).await?;
        let seqs = broker::shard_sequences(stream, shard, last).await?;
        let dead = dead_letters.sequences(shard).await?;
        recs.push(Reconciliation::of(shard, &seqs, landed, &dead));
    }
    Ok(recs)
}
