//! Throughput harness: N channels × M rows of ski-resort-shaped JSON (≈330 bytes a row).
//!
//! ```text
//! cargo build --release -p snowpipe-apps --bin throughput
//! # against a separately started emulator in sink mode (client-only CPU and RSS):
//! snowpipe-emulator --sink --accept-any-key --commit-delay 0s \
//!     --ddl apps/src/ski_resort/sql/setup.sql --port 8090 &
//! SNOWFLAKE_URL=http://127.0.0.1:8090 SNOWFLAKE_ACCOUNT=ACME SNOWFLAKE_USER=STREAMING_INGEST \
//!     SNOWFLAKE_PRIVATE_KEY_FILE=rsa_key.p8 target/release/throughput --channels 8 --rows 1000000
//! # or with no SNOWFLAKE_URL: an in-process emulator (sink mode, generated key)
//! target/release/throughput --channels 1 --rows 1000000
//! ```
//!
//! What each figure means:
//! * `rows_per_s`, `mb_per_s`: rows (and MB = 10^6 bytes of uncompressed NDJSON, as serialized
//!   by the client) divided by the time from the first append until every channel's `flush()`
//!   returned (every request acknowledged with HTTP 200).
//! * `cpu_s_per_gb`: client CPU seconds (user + system, `getrusage`, over the streaming window,
//!   minus the in-process emulator's threads when there is one) per 10^9 bytes of NDJSON.
//! * `peak_rss_mb`: the process's peak resident set (`ru_maxrss`), including the row pool this
//!   harness keeps in memory (and the in-process emulator, when there is one);
//!   `baseline_rss_mb` is the resident set just before streaming starts, so
//!   `peak_rss_mb - baseline_rss_mb` is what streaming added (compare it with the budget).
//! * `commit_p50_ms`, `commit_p99_ms`: commit-detection latency, from the moment the emulator
//!   committed a batch (its `GET /` lists each channel's recent commits with their time) until
//!   the client's `watch_committed()` showed an offset token at or past that batch's end token.
//!   `null` when the server does not expose commit times (a real Snowflake account).
//! * `starved_max_ms`: the longest single `append_rows` call (waiting for the budget, a
//!   compression slot or the channel's queue); `round_ms`: one round at the measured rate —
//!   every streaming channel appending once (`channels × batch × row bytes`) or the budget
//!   turning over once (`budget` bytes), whichever is more; `starved_rounds` =
//!   `starved_max_ms ÷ round_ms` (≈ 1 or less: no channel waited behind the others for more
//!   than about one round).
//! * `rss_over_budget_mb`: `peak_rss_mb - baseline_rss_mb` minus the budget.
//! * also in the JSON line: `rows`, `seconds` (the window above) and `cpu_s` (client CPU).
//!
//! `--slow-server` (in-process emulator) adds 150 ms to every append and commits 1 s later, so
//! the producer outruns the server and waits on the memory budget; see `--memory-budget-mb`.
//! `--write-rows FILE` writes the generated rows as NDJSON, `--input FILE` streams them (the
//! head-to-head script `benches/official_sdk_head_to_head.sh` uses both).
//!
//! `--elastic` streams the same rows through the pipe's elastic channel instead
//! (`StreamingIngestClient::elastic_pipe_channel`; `--channels` producer tasks share it): no
//! offset tokens, so no commit is tracked and the commit figures are `null`.
//!
//! The in-process emulator runs without `--limits` and, by default, the client without its
//! per-channel request pacing (`--max-requests-per-second 0`): this harness measures what the
//! client can do, not Snowflake's 10 requests/s per channel.

use snowpipe_streaming::{Positions, Rows};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use snowpipe_emulator::{Emulator, EmulatorConfig, FaultRule};
use snowpipe_streaming::{
    Channel, ClientBuilder, ElasticChannel, OffsetToken, StreamingIngestClient,
};

const DDL: &str = include_str!("../ski_resort/sql/setup.sql");

#[derive(Parser, Debug)]
#[command(about = "Throughput, CPU, memory and commit-latency harness for snowpipe-streaming")]
struct Args {
    /// Channels streaming concurrently (one producer task each), at most 10,000.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Rows per channel.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Rows per `append_rows` call, at most 1,000,000.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Read the row pool from this NDJSON file (as written by --write-rows) instead of
    /// generating it; channels cycle through the pool. At most 256 MiB (loaded into memory).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Write --pool rows of NDJSON to this file and exit (the head-to-head script feeds the
    /// same file to both SDKs).
    #[arg(long)]
    write_rows: Option<PathBuf>,
    /// Distinct rows generated (the pool each channel cycles through), at most 500,000.
    #[arg(long, default_value_t = 100_000)]
    pool: usize,
    /// Database, schema and pipe.
    #[arg(long, default_value = "STREAMING_INGEST")]
    database: String,
    #[arg(long, default_value = "STREAMING_INGEST")]
    schema: String,
    #[arg(long, default_value = "RESORT_TICKET_PIPE")]
    pipe: String,
    /// Client memory budget in MiB.
    #[arg(long, default_value_t = 256)]
    memory_budget_mb: usize,
    /// Client max_client_lag in milliseconds.
    #[arg(long, default_value_t = 1000)]
    max_client_lag_ms: u64,
    /// In-process emulator only: make the server slower than the producer (150 ms added to
    /// every append, commits 1 s after the append) to check RSS under backpressure. Against a
    /// separate emulator, start it with `--fault append_rows:latency=150 --commit-delay 1s`.
    #[arg(long)]
    slow_server: bool,
    /// Stream through the pipe's elastic channel instead of named channels.
    #[arg(long)]
    elastic: bool,
    /// Stream the rows as one logical stream over this many lanes (the SDK's `LaneStream`,
    /// one producer); 0: channels as `--channels` says. At most 256.
    #[arg(long, default_value_t = 0, conflicts_with_all = ["elastic", "channels"])]
    lanes: usize,
    /// Seed of the row generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Channels opened besides the streaming ones that never append (the memory an idle
    /// channel costs is reported as `idle_channel_kb`), at most 100,000.
    #[arg(long, default_value_t = 0)]
    idle_channels: usize,
    /// The client's per-channel request pacing (`max_requests_per_second`). Default 0 (no
    /// pacing): the sink benchmarks measure the data path; the SDK's own default is 10, the
    /// service's per-channel limit.
    #[arg(long, default_value_t = 0)]
    max_requests_per_second: u32,
    /// The client's per-channel byte pacing (`max_bytes_per_second`, uncompressed). Default 0
    /// (no pacing), as above; the SDK's own default is 20,000,000, the service's limit.
    #[arg(long, default_value_t = 0)]
    max_bytes_per_second: u64,
    /// zstd level of append bodies (the default 1 is the official SDK's; -2 makes bodies
    /// 2–10 % larger for 6–9 % less CPU).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    zstd_level: i32,
}

mod limits;
mod measure;
mod report;
pub mod rows;

use measure::*;
use report::Figures;
use rows::*;

struct Connection {
    client: StreamingIngestClient,
    status_url: Option<String>,
    status_http: reqwest::Client,
    embedded: Option<(Emulator, tokio::runtime::Runtime)>,
}

async fn connect(args: &Args) -> anyhow::Result<Connection> {
    let budget = args.memory_budget_mb << 20;
    let lag = Duration::from_millis(args.max_client_lag_ms);
    let mut status_http = reqwest::Client::builder();
    if let Ok(ca) = std::env::var("SSL_CERT_FILE") {
        if let Ok(pem) = std::fs::read(&ca) {
            status_http = status_http.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
    }
    let status_http = status_http.build()?;
    // The client's settings under measurement, on whichever account.
    let tuned = |builder: ClientBuilder| {
        builder
            .memory_budget_bytes(budget)
            .max_client_lag(lag)
            .max_requests_per_second(args.max_requests_per_second)
            .max_bytes_per_second(args.max_bytes_per_second)
            .with_config(
                snowpipe_streaming::ConfigKey::ZstdLevel,
                args.zstd_level.to_string(),
            )
    };
    if std::env::var("SNOWFLAKE_URL").is_ok_and(|u| !u.is_empty())
        || std::env::var("SNOWFLAKE_ACCOUNT").is_ok_and(|u| !u.is_empty())
    {
        let client = tuned(ClientBuilder::from_env())?
            .build()
            .await
            .context("connecting with the SNOWFLAKE_* environment variables")?;
        let status_url = std::env::var("SNOWFLAKE_URL")
            .ok()
            .map(|u| format!("{}/", u.trim_end_matches('/')));
        return Ok(Connection {
            client,
            status_url,
            status_http,
            embedded: None,
        });
    }
    // No SNOWFLAKE_URL: an in-process emulator in sink mode, on its own threads (named
    // "emulator", so their CPU time can be told apart from the client's).
    let key = snowpipe_emulator::KeyPair::from_seed(args.seed)?;
    let mut cfg = EmulatorConfig::default()
        .with_ddl(DDL)
        .with_commit_delay(Duration::ZERO);
    cfg.sink = true;
    cfg.request_log_capacity = 0;
    if args.slow_server {
        cfg.commit_delay = Duration::from_secs(1);
        cfg.faults.rules.push(
            "append_rows:latency=150"
                .parse::<FaultRule>()
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("emulator")
        .enable_all()
        .build()?;
    let (emu, key) = rt.spawn(Emulator::start_with_key(cfg, key)).await??;
    let url = emu.url();
    let client = tuned(
        StreamingIngestClient::builder()
            .account("ACME")
            .user("STREAMING_INGEST")
            .url(url.clone())
            .private_key_pem(key.private_key_pem()),
    )?
    .build()
    .await?;
    Ok(Connection {
        client,
        status_url: Some(format!("{url}/")),
        status_http,
        embedded: Some((emu, rt)),
    })
}

/// Where a producer appends: its own channel (offset tokens, commits tracked), the pipe's
/// elastic channel (no tokens; "committed" is "flushed"), or a logical stream over lanes
/// (`--lanes`: each batch to the lane of its number, the rows numbered in one sequence
/// across lanes, so each lane's positions rise; committed when every lane is).
enum Target {
    Channel(Arc<Channel>),
    Elastic(ElasticChannel),
    Lanes(Arc<snowpipe_streaming::LaneStream>),
}

struct ChannelResult {
    flushed: Duration,
    committed: Duration,
    /// The longest a single `append_rows` call waited (for the budget or the channel).
    longest_wait: Duration,
}

/// Appends `rows` rows of `pool` from `offset` on, `batch` at a time, to `target`, then
/// flushes and (on a channel) waits for the last token's commit; times are since `t0`.
async fn produce(
    target: Target,
    pool: Arc<Vec<Ticket>>,
    offset: usize,
    rows: u64,
    batch: usize,
    t0: Instant,
) -> anyhow::Result<ChannelResult> {
    let p = pool.len();
    let mut sent = 0u64;
    let mut longest_wait = Duration::ZERO;
    while sent < rows {
        let n = (rows - sent).min(batch as u64) as usize;
        let first = offset + sent as usize;
        let it = (0..n).map(|j| &pool[(first + j) % p]);
        let called = Instant::now();
        match &target {
            Target::Channel(channel) => {
                channel
                    .append(
                        Rows::serde(it),
                        Positions::span(
                            OffsetToken::from(sent + 1)..=OffsetToken::from(sent + n as u64),
                        ),
                    )
                    .await?
            }
            Target::Elastic(elastic) => elastic.append(Rows::serde(it)).await?,
            Target::Lanes(stream) => {
                let batch_no = sent / batch as u64;
                let span = OffsetToken::from(sent + 1)..=OffsetToken::from(sent + n as u64);
                stream
                    .append_keyed(
                        &batch_no.to_le_bytes(),
                        Rows::serde(it),
                        Positions::span(span),
                    )
                    .await?;
            }
        }
        longest_wait = longest_wait.max(called.elapsed());
        sent += n as u64;
    }
    let (flushed, committed) = match &target {
        Target::Channel(channel) => {
            channel.flush().await?;
            let flushed = t0.elapsed();
            channel
                .wait_for_commit(&OffsetToken::from(rows), Duration::from_secs(120))
                .await?;
            (flushed, t0.elapsed())
        }
        Target::Elastic(elastic) => {
            elastic.flush().await?;
            let flushed = t0.elapsed();
            (flushed, flushed)
        }
        Target::Lanes(stream) => {
            stream.flush().await?;
            let flushed = t0.elapsed();
            stream.wait_for_commit(Duration::from_secs(120)).await?;
            (flushed, t0.elapsed())
        }
    };
    Ok(ChannelResult {
        flushed,
        committed,
        longest_wait,
    })
}

/// The rows every producer cycles through, with the NDJSON length of each as prefix sums
/// (to count the bytes sent).
struct Pool {
    rows: Arc<Vec<Ticket>>,
    prefix: Vec<u64>,
}

impl Pool {
    /// The rows of `--input`, else `--pool` generated ones.
    fn load(args: &Args) -> anyhow::Result<Self> {
        let rows: Vec<Ticket> = match &args.input {
            Some(path) => snowpipe_cli_support::bounded_file::read_text(
                path,
                "benchmark input",
                limits::MAX_INPUT_BYTES,
            )
            .with_context(|| format!("reading --input {}", path.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .context("parsing the input NDJSON")?,
            None => generate(args.pool, args.seed),
        };
        if rows.is_empty() {
            bail!("the row pool is empty");
        }
        let mut prefix = Vec::with_capacity(rows.len() + 1);
        prefix.push(0u64);
        for t in &rows {
            let len = serde_json::to_vec(t)?.len() as u64 + 1;
            prefix.push(prefix.last().copied().unwrap_or(0) + len);
        }
        Ok(Pool {
            rows: Arc::new(rows),
            prefix,
        })
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    /// NDJSON bytes of the whole pool.
    fn bytes(&self) -> u64 {
        self.prefix[self.len()]
    }

    /// NDJSON bytes of `rows` rows from `offset` on, cycling through the pool.
    fn bytes_for(&self, offset: usize, rows: u64) -> u64 {
        let (prefix, pool_bytes) = (&self.prefix, self.bytes());
        let p = self.len() as u64;
        let start = offset as u64 % p;
        let full = rows / p;
        let rest = rows % p;
        let end = start + rest;
        let partial = if end <= p {
            prefix[end as usize] - prefix[start as usize]
        } else {
            (pool_bytes - prefix[start as usize]) + prefix[(end - p) as usize]
        };
        full * pool_bytes + partial
    }
}

/// `--write-rows`: writes `--pool` generated rows as NDJSON to `path`.
fn write_rows(args: &Args, path: &std::path::Path) -> anyhow::Result<()> {
    let mut out = Vec::new();
    for t in generate(args.pool, args.seed) {
        serde_json::to_writer(&mut out, &t)?;
        out.push(b'\n');
    }
    std::fs::write(path, &out)?;
    println!(
        "wrote {} rows ({:.1} bytes a row) to {}",
        args.pool,
        out.len() as f64 / args.pool as f64,
        path.display()
    );
    Ok(())
}

/// The channels of a run: the streaming ones (named `<run>_<i>`, or the pipe's elastic
/// channel with `--elastic`) and the idle ones beside them.
struct Opened {
    names: Vec<String>,
    channels: Vec<Arc<Channel>>,
    elastic: Option<ElasticChannel>,
    /// With `--lanes`: the logical stream.
    lanes: Option<Arc<snowpipe_streaming::LaneStream>>,
    idle: Vec<Channel>,
    /// The memory an idle channel costs, in kB (with `--idle-channels`).
    idle_channel_kb: Option<f64>,
}

impl Opened {
    async fn open(conn: &Connection, args: &Args) -> anyhow::Result<Self> {
        let run = format!(
            "TP_{}_{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        );
        let pipe = || conn.client.pipe(&args.database, &args.schema, &args.pipe);
        let before_idle = current_rss_mb();
        let mut idle = Vec::new();
        for i in 0..args.idle_channels {
            let name = format!("{run}_idle_{i}");
            idle.push(
                pipe()
                    .open_channel(&name)
                    .await
                    .with_context(|| format!("opening idle channel {name}"))?,
            );
        }
        let idle_channel_kb = (args.idle_channels > 0)
            .then(|| (current_rss_mb() - before_idle) * 1000.0 / args.idle_channels as f64);
        let lanes = if args.lanes > 0 {
            let stream = pipe()
                .open_lanes(&format!("{run}_L"), args.lanes)
                .await
                .context("opening the lane stream")?;
            Some(Arc::new(stream))
        } else {
            None
        };
        let names: Vec<String> = (0..args.channels)
            .filter(|_| lanes.is_none())
            .map(|i| format!("{run}_{i}"))
            .collect();
        let elastic = args.elastic.then(|| pipe().elastic_channel());
        let mut channels = Vec::new();
        for name in names.iter().filter(|_| elastic.is_none()) {
            channels.push(Arc::new(
                pipe()
                    .open_channel(name)
                    .await
                    .with_context(|| format!("opening channel {name}"))?,
            ));
        }
        Ok(Opened {
            names,
            channels,
            elastic,
            lanes,
            idle,
            idle_channel_kb,
        })
    }

    /// Producer `i`'s target.
    fn target(&self, i: usize) -> anyhow::Result<Target> {
        if let Some(stream) = &self.lanes {
            return Ok(Target::Lanes(Arc::clone(stream)));
        }
        Ok(match &self.elastic {
            Some(e) => Target::Elastic(e.clone()),
            None => Target::Channel(
                self.channels
                    .get(i)
                    .map(Arc::clone)
                    .context("a channel per producer")?,
            ),
        })
    }

    /// Drops the named and idle channels and closes the elastic one.
    async fn close(self) -> anyhow::Result<()> {
        drop(self.channels);
        if let Some(stream) = self.lanes.and_then(Arc::into_inner) {
            stream.close().await?;
        }
        drop(self.idle);
        if let Some(e) = self.elastic {
            e.close().await?;
        }
        Ok(())
    }
}

/// What the streaming window measured: every producer's result, the client's CPU seconds
/// and the NDJSON bytes sent.
struct Window {
    results: Vec<ChannelResult>,
    cpu: f64,
    total_bytes: u64,
    /// The resident set just before streaming started (MB).
    baseline_rss: f64,
}

impl Window {
    /// The largest of one figure over the producers, in seconds.
    fn slowest(&self, figure: fn(&ChannelResult) -> Duration) -> f64 {
        self.results
            .iter()
            .map(figure)
            .max()
            .unwrap_or_default()
            .as_secs_f64()
    }
}

/// Runs one producer per channel over the pool and measures the window.
async fn stream(args: &Args, pool: &Pool, opened: &Opened) -> anyhow::Result<Window> {
    let baseline_rss = current_rss_mb();
    let emu_cpu0 = threads_cpu_s("emulator");
    let cpu0 = process_cpu_s();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    let mut total_bytes = 0u64;
    // `--lanes` conflicts with `--channels`: one producer.
    for i in 0..args.channels {
        let offset = i * pool.len() / args.channels;
        total_bytes += pool.bytes_for(offset, args.rows);
        let rows = Arc::clone(&pool.rows);
        let target = opened.target(i)?;
        tasks.push(tokio::spawn(produce(
            target, rows, offset, args.rows, args.batch, t0,
        )));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await??);
    }
    let cpu = process_cpu_s() - cpu0 - (threads_cpu_s("emulator") - emu_cpu0);
    Ok(Window {
        results,
        cpu,
        total_bytes,
        baseline_rss,
    })
}

#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.channels == 0 || args.rows == 0 || args.batch == 0 {
        bail!("--channels, --rows and --batch must be at least 1");
    }
    limits::check(&[
        ("--pool", args.pool, limits::MAX_POOL),
        ("--channels", args.channels, limits::MAX_CHANNELS),
        (
            "--idle-channels",
            args.idle_channels,
            limits::MAX_IDLE_CHANNELS,
        ),
        ("--batch", args.batch, limits::MAX_BATCH),
        ("--lanes", args.lanes, limits::MAX_LANES),
    ])?;
    if let Some(path) = &args.write_rows {
        return write_rows(&args, path);
    }
    let pool = Pool::load(&args)?;
    let conn = connect(&args).await?;
    let mode = if conn.embedded.is_some() {
        "in-process emulator (sink)"
    } else {
        "server from SNOWFLAKE_* env"
    };
    let opened = Opened::open(&conn, &args).await?;
    let commits = CommitWatch::start(
        conn.status_url.clone(),
        &conn.status_http,
        &opened.names,
        &opened.channels,
    );
    let window = stream(&args, &pool, &opened).await?;
    let figures = Figures::of(&args, &window);
    let latency = commits.latency(&conn.status_http).await;
    commits.stop();
    let idle_channel_kb = opened.idle_channel_kb;
    opened.close().await?;
    conn.client.close().await?;
    if let Some((emu, rt)) = conn.embedded {
        rt.spawn(emu.shutdown()).await?;
        rt.shutdown_background();
    }
    let mode = if args.elastic {
        format!("{mode}, elastic channel")
    } else if args.lanes > 0 {
        format!("{mode}, one stream over {} lanes", args.lanes)
    } else {
        mode.to_string()
    };
    report::print(
        &args,
        &mode,
        pool.bytes() as f64 / pool.len() as f64,
        &window,
        &figures,
        latency,
        idle_channel_kb,
    );
    Ok(())
}
