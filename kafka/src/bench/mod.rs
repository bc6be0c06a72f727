//! `snowpipe-kafka bench`: what the sink costs on this machine, beside what reading alone
//! costs and what a Python sink on the official SDK costs, on the same cluster and emulator.
//!
//! For each message size, a fresh [`Lab`] (librdkafka's mock cluster; the emulator with TLS in
//! `--sink` mode, so the server's SQLite is not what is measured) and one topic of
//! `--partitions` partitions with a backlog produced before anything reads it. The mock keeps
//! at most 5 MiB per partition and deletes the oldest messages beyond (`mpart->max_size` in
//! `rdkafka_mock.c`), so the backlog is spread to about 3 MiB a partition. Then, one after
//! the other, each in its own consumer group and its own process:
//!
//! * **floor**: `rdkafka` consuming and dropping the messages (no sink), fetching as the sink
//!   does (`config::fetch_properties`): what reading costs;
//! * **snowpipe-kafka**: one instance of this binary;
//! * **python**: `benches/python_peer.py`, confluent-kafka and the official SDK, one channel
//!   per partition, written the way Snowflake's examples write one (when `--peer-python`
//!   names a Python with both installed; skipped otherwise).
//!
//! Each side is timed from its first row (the floor: message) to its last, and its process's
//! CPU (user + system, all threads) is taken over that same window: the sink's from
//! `/proc/PID/stat` when all its channels are open (its assignment's callback opens every
//! channel before the first message is read, so its first row comes right after; channel opens
//! are outside the window, as in the peer, which opens its channels in `on_assign` and starts
//! its clock at its first append) and when its last row is committed; the floor and the peer
//! measure themselves.
//!
//! `--rounds N` runs the three sides N times over the same backlog, each round in fresh
//! consumer groups and channels, the sink and the peer taking turns to go first (so neither
//! always meets the emulator's state the other left). A window of a few seconds varies by a
//! fifth from run to run on a shared machine; the medians and each round's sink/peer ratio are
//! what to compare. Printed: a JSON line per side and round, then a table of medians with
//! their ranges, then each round's ratio, then what limited the sink:
//! * its rate as a share of the floor's;
//! * its intake and the peer's: messages over the time from the first row appended to the
//!   last (the sink's closing report has it, the peer measures it), against the floor's rate.
//!   In a backlog read in less than `--max-client-lag`, the lag dominates each side's window,
//!   so this is the rate that shows whether a side keeps up with reading;
//! * the machine's CPU (all processes, `/proc/stat`) over its window, and the rate that CPU per
//!   message would allow with every core busy: the most a sink could reach on this machine
//!   with no latency at all, since the sink, the emulator and the mock cluster share the cores;
//! * the lab's own CPU per GB (the mock cluster and the emulator live in the bench's process,
//!   which reads its own `getrusage` at the sink's window's ends; its polling of the
//!   emulator's totals is included), and what that leaves a sink at 90 % of the floor's rate
//!   with every core busy;
//! * the fresh memory each side touched over its window (minor page faults times the page
//!   size): a page touched for the first time is zeroed by the kernel, which costs CPU, and a
//!   process that holds `--max-client-lag` of rows in a backlog this short touches about as
//!   much as it reads.
//!
//! `--rebalance-partitions N` then measures one instance taking N partitions (every channel
//! open and a row of each committed), and a second instance joining (an eager rebalance: every
//! partition handed over, then half of them opened again by each).

mod steady;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use snowpipe_emulator::{ChannelTotals, EmulatorConfig, TlsMode};

use crate::demo::{Lab, DATABASE, PIPE, SCHEMA};

/// Options of `snowpipe-kafka bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Message value sizes to measure, in bytes (about).
    #[arg(long, value_delimiter = ',', default_value = "1024,100")]
    pub sizes: Vec<usize>,
    /// Messages per size (0: about 3 MiB a partition).
    #[arg(long, default_value_t = 0)]
    pub messages: u64,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 96)]
    pub partitions: i32,
    /// The instance's `--max-client-lag`.
    #[arg(long, default_value = "1s")]
    pub max_client_lag: String,
    /// A Python with `confluent-kafka` and `snowpipe-streaming` installed, for the peer
    /// (`pip install -r kafka/benches/requirements.txt`; also `SNOWPIPE_KAFKA_PEER_PYTHON`).
    #[arg(long, env = "SNOWPIPE_KAFKA_PEER_PYTHON", value_name = "PYTHON")]
    pub peer_python: Option<PathBuf>,
    /// Then measure a rebalance of this many partitions (0: skip).
    #[arg(long, default_value_t = 512)]
    pub rebalance_partitions: i32,
    /// Rounds over the same backlog (medians reported; see the module docs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Instead of the backlog rounds: each side while a producer writes this many messages a
    /// second (0: the backlog rounds). See `bench_steady`'s docs.
    #[arg(long, default_value_t = 0)]
    pub steady_rate: u64,
    /// How long the steady producer writes, in seconds (the window is the middle half).
    #[arg(long, default_value_t = 20)]
    pub steady_seconds: u64,
    /// Internal: run as the consume-only floor (`--floor BROKERS TOPIC EXPECTED GROUP`).
    #[arg(long, hide = true, num_args = 4, value_names = ["BROKERS", "TOPIC", "EXPECTED", "GROUP"])]
    pub floor: Vec<String>,
}

pub(crate) const TOPIC: &str = "bench";

const FLOOR: &str = "floor (rdkafka, no sink)";
pub(crate) const SINK: &str = "snowpipe-kafka";
pub(crate) const PEER: &str = "python (official SDK)";
/// The sides in the table's order.
const SIDES: [&str; 3] = [FLOOR, SINK, PEER];

/// One side's result.
#[derive(Debug, Clone)]
struct Measured {
    side: &'static str,
    messages: u64,
    window_s: f64,
    cpu_s: f64,
    /// The share of the machine's CPU time that any process used over the window (the sink's
    /// side only: the others measure themselves in their own process).
    machine_busy: Option<f64>,
    /// The pages the process touched for the first time over the window (the sink's side).
    page_faults: Option<u64>,
    /// CPU seconds the lab (the mock cluster and the emulator, both in the bench's own
    /// process) used over the window (the sink's side only).
    lab_cpu_s: Option<f64>,
    /// From the first row appended to the last (the floor: its window): the side's intake,
    /// apart from `--max-client-lag` and the commit.
    append_s: Option<f64>,
}

/// The machine's CPU ticks so far, busy and in all (`/proc/stat`'s first line, all cores).
fn machine_ticks() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    let total: u64 = ticks.iter().sum();
    Ok((total - idle, total))
}

/// The busy share between two [`machine_ticks`] readings.
fn busy_between(a: (u64, u64), b: (u64, u64)) -> Option<f64> {
    let total = b.1.checked_sub(a.1).filter(|t| *t > 0)?;
    #[allow(clippy::cast_precision_loss)]
    Some(b.0.saturating_sub(a.0) as f64 / total as f64)
}

/// This process's CPU seconds and minor page faults so far.
fn own_usage() -> ProcStat {
    // SAFETY: getrusage only writes the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    #[allow(unsafe_code)]
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
    }
    #[allow(clippy::cast_precision_loss)]
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    ProcStat {
        cpu_s: tv(u.ru_utime) + tv(u.ru_stime),
        minor_faults: u64::try_from(u.ru_minflt).unwrap_or(0),
    }
}

/// A process's CPU and page faults so far (from `/proc/PID/stat`, or `getrusage` for this
/// process).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcStat {
    /// CPU seconds, user + system, all threads.
    pub(crate) cpu_s: f64,
    /// Page faults served without I/O: nearly all of them a page touched for the first time
    /// (the kernel zeroes it first).
    pub(crate) minor_faults: u64,
}

/// Process `pid`'s CPU seconds and minor page faults so far.
pub(crate) fn proc_stat(pid: u32) -> Result<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    #[allow(clippy::cast_precision_loss)]
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    // minflt, utime and stime are fields 10, 14 and 15 of the whole line: 7, 11 and 12 after
    // ')' (proc(5)).
    #[allow(clippy::cast_precision_loss)]
    Ok(ProcStat {
        cpu_s: (field(11) + field(12)) as f64 / hz,
        minor_faults: field(7),
    })
}

/// The floor, in its own process: consume `expected` messages of `topic` and drop them.
fn floor(brokers: &str, topic: &str, expected: u64, group: &str) -> Result<()> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    // Fetching as the sink fetches with its default budget (librdkafka's own defaults pause a
    // partition for a second whenever the queue is full, which at 100 B held this floor to a
    // fraction of what the cluster serves).
    for (key, value) in crate::cli::args::fetch_properties(crate::cli::args::MemoryBudget::DEFAULT)
    {
        config.set(key, value);
    }
    let consumer: BaseConsumer = config.create()?;
    consumer.subscribe(&[topic])?;
    let (mut n, mut bytes) = (0u64, 0usize);
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while n < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m?;
            first.get_or_insert_with(|| (Instant::now(), own_usage()));
            bytes += m.payload_len();
            n += 1;
        }
    }
    let (t0, u0) = first.context("no message")?;
    let u1 = own_usage();
    println!(
        "{}",
        json!({"rows": n, "bytes": bytes, "window_s": t0.elapsed().as_secs_f64(),
               "cpu_s": u1.cpu_s - u0.cpu_s,
               "page_faults": u1.minor_faults.saturating_sub(u0.minor_faults)})
    );
    Ok(())
}

/// The emulator's totals over the channels whose name starts with `prefix`: rows committed,
/// channels with a committed token, channels opened. Its totals, not its status document: the
/// bench polls this every few ms while a side runs, and the document grows with every round's
/// channels.
pub(crate) fn committed(lab: &Lab, prefix: &str) -> ChannelTotals {
    lab.emulator().channel_totals(prefix)
}

/// The filler that makes [`message`] about `size` bytes long.
pub(crate) fn pad_for(size: usize) -> String {
    "x".repeat(size.saturating_sub(60))
}

/// Message `id` of the bench's clickstream: a JSON object padded with `pad`.
fn message(id: u64, pad: &str) -> String {
    format!(
        r#"{{"id":{id},"kind":"view","amount":{},"pad":"{pad}"}}"#,
        id % 1000
    )
}

/// Produces `count` messages of about `size` bytes over the topic's partitions, before
/// anything reads them.
async fn backlog(lab: &Lab, topic: &str, count: u64, size: usize, partitions: i32) -> Result<()> {
    let producer = lab.producer()?;
    let pad = pad_for(size);
    let mut pending = Vec::new();
    for id in 0..count {
        pending.push(send(&producer, topic, id, &pad, partitions)?);
        if pending.len() >= 20_000 {
            await_deliveries(&mut pending).await?;
        }
    }
    await_deliveries(&mut pending).await
}

/// Queues [`message`] `id` to partition `id % partitions` of `topic`.
pub(crate) fn send(
    producer: &FutureProducer,
    topic: &str,
    id: u64,
    pad: &str,
    partitions: i32,
) -> Result<DeliveryFuture> {
    let v = message(id, pad);
    let partition = i32::try_from(id % u64::try_from(partitions.max(1))?)?;
    producer
        .send_result(
            FutureRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(&v),
        )
        .map_err(|(e, _)| anyhow::anyhow!("cannot queue a message: {e}"))
}

/// Waits for the messages `pending` queued to be delivered, and empties it.
pub(crate) async fn await_deliveries(pending: &mut Vec<DeliveryFuture>) -> Result<()> {
    for d in pending.drain(..) {
        delivered(d.await)?;
    }
    Ok(())
}

fn delivered(
    d: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, impl std::fmt::Debug>,
) -> Result<()> {
    match d {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => bail!("a message was not delivered: {e}"),
        Err(e) => bail!("the producer went away: {e:?}"),
    }
}

/// The last JSON line a child printed.
fn last_json(child: Child) -> Result<Value> {
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("exited with {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().context("no output")?;
    serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))
}

fn measured_from(side: &'static str, v: &Value) -> Result<Measured> {
    Ok(Measured {
        side,
        messages: v["rows"].as_u64().context("rows")?,
        window_s: v["window_s"].as_f64().context("window_s")?,
        cpu_s: v["cpu_s"].as_f64().context("cpu_s")?,
        machine_busy: None,
        page_faults: v["page_faults"].as_u64(),
        lab_cpu_s: None,
        // The floor's window is its intake: it reads, and appends nothing.
        append_s: match side {
            FLOOR => v["window_s"].as_f64(),
            _ => v["append_s"].as_f64(),
        },
    })
}

/// The command that runs one instance of the sink in group `group` until it is idle.
pub(crate) fn sink_command(lab: &Lab, bin: &Path, args: &BenchArgs, group: &str) -> Command {
    // The values alone, as the peer writes them (`--metadata` adds ~150 bytes a row).
    let mut cmd = lab.instance_without_metadata(bin, TOPIC, group);
    cmd.args([
        "--until-idle",
        "3s",
        "--max-client-lag",
        &args.max_client_lag,
    ]);
    cmd
}

/// Our sink, one instance: CPU over the window from all its channels open (it reads from
/// then on) to its last row committed.
async fn sink_side(
    lab: &Lab,
    bin: &Path,
    args: &BenchArgs,
    expected: u64,
    group: &str,
) -> Result<Measured> {
    let partitions = usize::try_from(args.partitions.max(1))?;
    let prefix = format!("{group}_");
    let mut child = sink_command(lab, bin, args, group)
        .spawn()
        .context("cannot start an instance")?;
    let pid = child.id();
    let started = Instant::now();
    // Watched until its rows are committed; on any failure the instance is stopped, not left
    // running beside the next side.
    let watched: Result<_> = async {
        let mut first = None;
        loop {
            tokio::time::sleep(Duration::from_millis(if first.is_some() { 20 } else { 2 })).await;
            let ChannelTotals {
                rows_inserted: rows,
                channels: opened,
                ..
            } = committed(lab, &prefix);
            // Its first row is appended once every channel is open: the assignment's callback
            // opens them all before the first message is read (as the peer's `on_assign` does).
            if opened >= partitions && first.is_none() {
                first = Some((
                    Instant::now(),
                    proc_stat(pid)?,
                    machine_ticks()?,
                    own_usage(),
                ));
            }
            if rows >= expected {
                let end = (
                    Instant::now(),
                    proc_stat(pid)?,
                    machine_ticks()?,
                    own_usage(),
                );
                return Ok((first.context("no channel opened")?, end));
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("snowpipe-kafka: only {rows} of {expected} rows after 10 minutes");
            }
            if let Some(status) = child.try_wait()? {
                bail!("snowpipe-kafka exited early ({status}) with {rows} of {expected} rows");
            }
        }
    }
    .await;
    let (first, end) = match watched {
        Ok(both) => both,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let report = last_json(child).context("snowpipe-kafka")?;
    let (t0, c0, m0, lab0) = first;
    Ok(Measured {
        side: SINK,
        messages: expected,
        window_s: end.0.duration_since(t0).as_secs_f64(),
        cpu_s: end.1.cpu_s - c0.cpu_s,
        machine_busy: busy_between(m0, end.2),
        page_faults: Some(end.1.minor_faults.saturating_sub(c0.minor_faults)),
        lab_cpu_s: Some(end.3.cpu_s - lab0.cpu_s),
        append_s: report["appended"]["seconds"].as_f64(),
    })
}

/// The Python peer: its profile for the official SDK, then the script.
fn peer_side(lab: &Lab, python: &Path, expected: u64, group: &str) -> Result<Measured> {
    let child = peer_command(lab, python, expected, group)?
        .spawn()
        .context("cannot start the Python peer")?;
    measured_from(PEER, &last_json(child)?)
}

/// The command that runs the Python peer (its profile for the official SDK written first) until
/// it appended `expected` rows and saw them committed.
pub(crate) fn peer_command(
    lab: &Lab,
    python: &Path,
    expected: u64,
    group: &str,
) -> Result<Command> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python_peer.py");
    let key = std::fs::read_to_string(lab.key_path())?;
    let url = lab.emulator().url();
    let profile = lab.dir().join("profile.json");
    std::fs::write(
        &profile,
        serde_json::to_vec(&json!({
            "account": "DEMO",
            "user": "KAFKA",
            "url": url,
            "private_key": key,
            // The SDK's rowset mode, the sink's path too, so both are measured on it
            // (python_peer.py's docs).
            "max_buffered_kb_for_rowset_mode": "300000",
            "max_rowset_payload_size_mb": "16",
        }))?,
    )?;
    let mut cmd = Command::new(python);
    cmd.arg(&script)
        .args([
            "--brokers",
            &lab.brokers(),
            "--topic",
            TOPIC,
            "--group",
            group,
        ])
        .args(["--database", DATABASE, "--schema", SCHEMA, "--pipe", PIPE])
        .args(["--expect", &expected.to_string()])
        .arg("--profile")
        .arg(&profile)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if let Some(ca) = lab.emulator().ca_path() {
        cmd.arg("--ca").arg(&ca).env("SSL_CERT_FILE", ca);
    }
    Ok(cmd)
}

fn floor_side(lab: &Lab, bin: &Path, expected: u64, group: &str) -> Result<Measured> {
    let child = Command::new(bin)
        .args([
            "bench",
            "--floor",
            &lab.brokers(),
            TOPIC,
            &expected.to_string(),
            group,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    measured_from(FLOOR, &last_json(child)?)
}

/// Runs the benchmark (see the module docs) and prints what it measured.
///
/// # Errors
/// When a part cannot start or a side fails.
pub async fn run(args: BenchArgs) -> Result<()> {
    if let [brokers, topic, expected, group] = args.floor.as_slice() {
        return floor(brokers, topic, expected.parse()?, group);
    }
    let bin = std::env::current_exe().context("cannot find this binary")?;
    let sink = || {
        let mut c = EmulatorConfig::for_tests()
            .with_commit_delay(Duration::from_millis(200))
            .with_tls(TlsMode::Generate);
        c.sink = true;
        c
    };
    if args.steady_rate > 0 {
        return crate::bench::steady::run(&args, &bin, sink).await;
    }
    let mut table = Vec::new();
    for &size in &args.sizes {
        let per_partition = (3u64 << 20) / u64::try_from(size + 64)?;
        let messages = match args.messages {
            0 => per_partition * u64::try_from(args.partitions)?,
            n => n,
        };
        let lab = Lab::start_with(&[(TOPIC, args.partitions)], sink()).await?;
        backlog(&lab, TOPIC, messages, size, args.partitions).await?;
        #[allow(clippy::cast_precision_loss)]
        let gb = messages as f64 * size as f64 / 1e9;
        if args.peer_python.is_none() {
            eprintln!(
                "(no --peer-python: the Python peer is skipped; see kafka/benches/requirements.txt)"
            );
        }
        let mut rounds = Vec::new();
        for round in 1..=args.rounds {
            let mut sides = vec![floor_side(&lab, &bin, messages, &format!("floor{round}"))?];
            let sink_group = format!("sink{round}");
            let peer_group = format!("peer{round}");
            let peer = |lab: &Lab| -> Result<Option<Measured>> {
                args.peer_python
                    .as_deref()
                    .map(|python| peer_side(lab, python, messages, &peer_group))
                    .transpose()
            };
            // Taking turns: the even rounds run the peer first.
            if round % 2 == 0 {
                sides.extend(peer(&lab)?);
                sides.push(sink_side(&lab, &bin, &args, messages, &sink_group).await?);
            } else {
                sides.push(sink_side(&lab, &bin, &args, messages, &sink_group).await?);
                sides.extend(peer(&lab)?);
            }
            // The floor, the sink, the peer: the table's order.
            sides.sort_by_key(|m| SIDES.iter().position(|s| *s == m.side));
            for m in &sides {
                #[allow(clippy::cast_precision_loss)]
                let rate = m.messages as f64 / m.window_s;
                println!(
                    "{}",
                    json!({"round": round, "side": m.side, "bytes_per_message": size,
                           "messages": m.messages, "partitions": args.partitions,
                           "messages_per_s": rate.round(),
                           "mb_per_s": (rate * size as f64 / 1e5).round() / 10.0,
                           "cpu_s": (m.cpu_s * 100.0).round() / 100.0,
                           "cpu_s_per_gb": (m.cpu_s / gb * 100.0).round() / 100.0,
                           "machine_busy": m.machine_busy.map(|b| (b * 100.0).round() / 100.0),
                           "page_faults": m.page_faults,
                           "lab_cpu_s": m.lab_cpu_s.map(|c| (c * 100.0).round() / 100.0),
                           "append_s": m.append_s.map(|a| (a * 1000.0).round() / 1000.0)})
                );
            }
            rounds.push(sides);
        }
        table.push((size, messages, gb, rounds));
    }
    print_table(&table);
    if args.rebalance_partitions > 0 {
        rebalance(&bin, args.rebalance_partitions, sink()).await?;
    }
    Ok(())
}

/// Each size's rounds: the sides measured in each.
type Rounds = Vec<Vec<Measured>>;

/// The median of `v` (the mean of the middle two when even); `v` is not empty.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `median (min–max)` of `v`, or the one value when there is one round.
fn spread(v: &[f64], decimals: usize) -> String {
    let m = median(v.to_vec());
    if v.len() == 1 {
        return format!("{m:.decimals$}");
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{m:.decimals$} ({lo:.decimals$}–{hi:.decimals$})")
}

/// The medians of each side over the rounds, each round's sink/peer ratio of CPU per GB, then
/// what limited the sink ([`limits`]).
fn print_table(table: &[(usize, u64, f64, Rounds)]) {
    println!();
    println!("| message | side | messages/s | CPU-s | CPU-s per GB |");
    println!("|---|---|---|---|---|");
    for (size, messages, gb, rounds) in table {
        for side in SIDES {
            let of: Vec<&Measured> = rounds.iter().flatten().filter(|m| m.side == side).collect();
            if of.is_empty() {
                continue;
            }
            #[allow(clippy::cast_precision_loss)]
            let rates: Vec<f64> = of.iter().map(|m| m.messages as f64 / m.window_s).collect();
            let cpu: Vec<f64> = of.iter().map(|m| m.cpu_s).collect();
            let per_gb: Vec<f64> = of.iter().map(|m| m.cpu_s / gb).collect();
            println!(
                "| {size} B ({messages}) | {side} | {} | {} | {} |",
                spread(&rates, 0),
                spread(&cpu, 2),
                spread(&per_gb, 1)
            );
        }
    }
    for (size, _, _, rounds) in table {
        let ratios: Vec<f64> = rounds
            .iter()
            .filter_map(|sides| {
                let cpu = |side| sides.iter().find(|m| m.side == side).map(|m| m.cpu_s);
                Some(cpu(SINK)? / cpu(PEER)?)
            })
            .collect();
        if ratios.is_empty() {
            continue;
        }
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "{size} B: the sink's CPU per GB is {:.2}× the peer's (median of {} rounds: {})",
            median(ratios.clone()),
            ratios.len(),
            each.join(", ")
        );
    }
    for (size, _, gb, rounds) in table {
        limits(*size, *gb, rounds);
    }
}

/// Why the sink's rate is what it is, from its side's measurements: how far from the floor,
/// whether the machine's cores were the limit (every core busy: the sink, the emulator and
/// the mock cluster share them) or its latency (`--max-client-lag`, the commit), and how much
/// of its memory was fresh (each page the kernel zeroes on first touch costs CPU).
fn limits(size: usize, gb: f64, rounds: &Rounds) {
    let of = |side: &str| -> Vec<&Measured> {
        rounds.iter().flatten().filter(|m| m.side == side).collect()
    };
    #[allow(clippy::cast_precision_loss)]
    let rate = |m: &&Measured| m.messages as f64 / m.window_s;
    let sink = of(SINK);
    let floor = of(FLOOR);
    if sink.is_empty() || floor.is_empty() {
        return;
    }
    let sink_rate = median(sink.iter().map(rate).collect());
    let floor_rate = median(floor.iter().map(rate).collect());
    println!(
        "{size} B: the sink's rate is {:.0} % of the floor's",
        100.0 * sink_rate / floor_rate
    );
    let intake: Vec<String> = [SINK, PEER]
        .iter()
        .filter_map(|side| {
            #[allow(clippy::cast_precision_loss)]
            let rates: Vec<f64> = of(side)
                .iter()
                .filter_map(|m| {
                    m.append_s
                        .filter(|s| *s > 0.0)
                        .map(|s| m.messages as f64 / s)
                })
                .collect();
            (!rates.is_empty()).then(|| {
                let pct: Vec<f64> = rates.iter().map(|r| 100.0 * r / floor_rate).collect();
                format!(
                    "{side} {} messages/s, {} %",
                    spread(&rates, 0),
                    spread(&pct, 0)
                )
            })
        })
        .collect();
    if !intake.is_empty() {
        println!(
            "{size} B: intake, from the first row appended to the last (the lag and the commit \
             after left out), against the floor's rate: {}",
            intake.join("; ")
        );
    }
    let busy: Vec<f64> = sink.iter().filter_map(|m| m.machine_busy).collect();
    if !busy.is_empty() {
        let b = median(busy.clone());
        let pct: Vec<f64> = busy.iter().map(|b| b * 100.0).collect();
        println!(
            "{size} B: the machine's CPU (all processes) was {} % busy over the sink's window; \
             at that CPU per message, every core busy would carry at most {:.0} messages/s, \
             {:.0} % of the floor's rate",
            spread(&pct, 0),
            sink_rate / b,
            100.0 * sink_rate / b / floor_rate
        );
    }
    let lab: Vec<f64> = sink
        .iter()
        .filter_map(|m| m.lab_cpu_s.map(|c| c / gb))
        .collect();
    if !lab.is_empty() {
        #[allow(clippy::cast_precision_loss)]
        let gb_per_message = gb / sink[0].messages as f64;
        let room = room_for_sink(
            cores(),
            0.9 * floor_rate,
            gb_per_message,
            median(lab.clone()),
        );
        let floor_cost = median(floor.iter().map(|m| m.cpu_s / gb).collect());
        println!(
            "{size} B: the lab (mock cluster and emulator, in the bench's process, with the \
             bench's polling) used {} CPU-s per GB over the sink's window; at 90 % of the \
             floor's rate, with every core busy, that leaves a sink {} (the floor spends {:.1} \
             on reading alone)",
            spread(&lab, 1),
            if room > 0.0 {
                format!("{room:.1} CPU-s per GB")
            } else {
                "nothing".to_string()
            },
            floor_cost
        );
    }
    let fresh: Vec<String> = SIDES
        .iter()
        .filter_map(|side| {
            let mb: Vec<f64> = of(side)
                .iter()
                .filter_map(|m| m.page_faults)
                .map(fresh_mb)
                .collect();
            (!mb.is_empty()).then(|| format!("{side} {} MB", spread(&mb, 0)))
        })
        .collect();
    if !fresh.is_empty() {
        println!(
            "{size} B: fresh memory touched over each window, for {:.0} MB of messages: {}",
            gb * 1e3,
            fresh.join(", ")
        );
    }
}

/// The CPU-s per GB a sink may spend when `cores` busy cores carry `rate` messages a second of
/// `gb_per_message` each and the lab spends `lab_cpu_s_per_gb` on them: what the cores give
/// per GB at that rate, less the lab's share (negative: the lab alone needs more).
fn room_for_sink(cores: usize, rate: f64, gb_per_message: f64, lab_cpu_s_per_gb: f64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let cores = cores as f64;
    cores / (rate * gb_per_message) - lab_cpu_s_per_gb
}

/// The cores this process may run on.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The megabytes `faults` minor page faults touched for the first time.
pub(crate) fn fresh_mb(faults: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let bytes = faults as f64 * page_size() as f64;
    bytes / 1e6
}

/// The kernel's page size.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
}

/// One instance takes `n` partitions; then a second joins. Prints how long until every
/// partition had its channel open and a row committed, each time.
async fn rebalance(bin: &Path, n: i32, config: EmulatorConfig) -> Result<()> {
    let lab = Lab::start_with(&[(TOPIC, n)], config).await?;
    let count = u64::try_from(n)?;
    backlog(&lab, TOPIC, count, 100, n).await?;
    let spawn = || {
        lab.instance(bin, TOPIC, "many")
            .args(["--max-client-lag", "200ms"])
            .stdout(Stdio::null())
            .spawn()
    };
    let t0 = Instant::now();
    let mut a = spawn()?;
    let all = usize::try_from(n)?;
    let first = wait_for(&lab, "many_", all, count, t0).await?;
    let t1 = Instant::now();
    let mut b = spawn()?;
    // A row per partition after the second instance joined the group.
    tokio::time::sleep(Duration::from_secs(1)).await;
    backlog(&lab, TOPIC, count, 100, n).await?;
    let second = wait_for(&lab, "many_", all, 2 * count, t1).await?;
    for c in [&mut a, &mut b] {
        // SAFETY: signalling a child we spawned and have not reaped.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(i32::try_from(c.id())?, libc::SIGTERM);
        }
    }
    for c in [&mut a, &mut b] {
        let status = c.wait()?;
        if !status.success() {
            bail!("an instance failed: {status}");
        }
    }
    println!(
        "{}",
        json!({"partitions": n,
               "one_instance_ready_and_committed_s": (first * 100.0).round() / 100.0,
               "second_instance_joined_all_committed_again_s": (second * 100.0).round() / 100.0})
    );
    Ok(())
}

/// Waits until `channels` channels with `prefix` have a committed token and `rows` rows are
/// committed; the seconds since `since`.
async fn wait_for(
    lab: &Lab,
    prefix: &str,
    channels: usize,
    rows: u64,
    since: Instant,
) -> Result<f64> {
    loop {
        let t = committed(lab, prefix);
        if t.committed >= channels && t.rows_inserted >= rows {
            return Ok(since.elapsed().as_secs_f64());
        }
        if since.elapsed() > Duration::from_secs(300) {
            bail!(
                "after 5 minutes: {} of {channels} channels committed, {} of {rows} rows",
                t.committed,
                t.rows_inserted
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two cores carrying a GB a second give 2 CPU-s per GB: a lab that spends 1.2 of them
    /// leaves a sink 0.8; at 2 GB a second the cores give 1, and a lab of 1.2 leaves nothing.
    #[test]
    fn the_room_a_sink_has_is_what_the_cores_give_less_the_labs() {
        assert!((room_for_sink(2, 1e6, 1e-6, 1.2) - 0.8).abs() < 1e-9);
        assert!(room_for_sink(2, 2e6, 1e-6, 1.2) < 0.0);
        assert!((room_for_sink(1, 5e5, 1e-6, 0.5) - 1.5).abs() < 1e-9);
    }

    /// `/proc/PID/stat`'s fields as read for the sink agree with what the kernel reports to the
    /// process itself, and pages touched for the first time show as minor faults.
    #[test]
    fn proc_stat_reads_the_fields_getrusage_reports() {
        let pid = std::process::id();
        let before = proc_stat(pid).unwrap();
        let own_before = own_usage();
        // 16 MiB written once: pages the process never touched before.
        let touched: Vec<u8> = vec![1; 16 << 20];
        assert_eq!(
            touched
                .iter()
                .step_by(4096)
                .map(|&b| usize::from(b))
                .sum::<usize>(),
            4096
        );
        let after = proc_stat(pid).unwrap();
        let own_after = own_usage();
        let pages = (16 << 20) / page_size();
        let seen = after.minor_faults - before.minor_faults;
        let own_seen = own_after.minor_faults - own_before.minor_faults;
        assert!(
            seen >= u64::try_from(pages / 2).unwrap(),
            "{seen} faults for {pages} pages"
        );
        // Other test threads fault too; both counts cover the same process.
        assert!(own_seen >= u64::try_from(pages / 2).unwrap(), "{own_seen}");
        assert!(after.cpu_s >= before.cpu_s && own_after.cpu_s >= own_before.cpu_s);
        assert!(
            (after.cpu_s - own_after.cpu_s).abs() < 5.0,
            "{after:?} {own_after:?}"
        );
    }
}
