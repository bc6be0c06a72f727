//! What the bench measures with: the sides' processes (the consume-only floor, the sink, the
//! Python peer) started against the lab, their CPU time and fresh memory read from `/proc`,
//! and the backlog produced for them.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use snowpipe_cli_support::process::{rusage, Rusage, Who};
use snowpipe_emulator::ChannelTotals;

use crate::demo::{Lab, DATABASE, PIPE, SCHEMA};

use crate::bench::args::BenchArgs;
use crate::bench::load::Load;

pub(crate) const FLOOR: &str = "floor (rdkafka, no sink)";

pub(crate) const SINK: &str = "snowpipe-kafka";

pub(crate) const PEER: &str = "python (official SDK)";

/// The sides in the table's order.
pub(crate) const SIDES: [&str; 3] = [FLOOR, SINK, PEER];

/// One side's result.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) side: &'static str,
    pub(crate) messages: u64,
    pub(crate) window_s: f64,
    pub(crate) cpu_s: f64,
    /// The share of the machine's CPU time that any process used over the window (the sink's
    /// side only: the others measure themselves in their own process).
    pub(crate) machine_busy: Option<f64>,
    /// The pages the process touched for the first time over the window (the sink's side).
    pub(crate) page_faults: Option<u64>,
    /// The sink's context switches over the window, voluntary (a thread waited: each one a
    /// wake-up later) and involuntary (preempted), summed over its threads (the sink's side).
    pub(crate) switches: Option<(u64, u64)>,
    /// CPU seconds the lab (the mock cluster and the emulator, both in the bench's own
    /// process) used over the window (the sink's side only).
    pub(crate) lab_cpu_s: Option<f64>,
    /// From the first row appended to the last (the floor: its window): the side's intake,
    /// apart from `--max-client-lag` and the commit.
    pub(crate) append_s: Option<f64>,
    /// The sink's closing report's `source` (`sink::report`): its pauses and resumes and what
    /// librdkafka fetched (the sink's side only).
    pub(crate) source: Option<Value>,
}

/// The machine's CPU ticks so far, busy and in all (`/proc/stat`'s first line, all cores).
pub(crate) fn machine_ticks() -> Result<(u64, u64)> {
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
pub(crate) fn busy_between(a: (u64, u64), b: (u64, u64)) -> Option<f64> {
    let total = b.1.checked_sub(a.1).filter(|t| *t > 0)?;
    Some(b.0.saturating_sub(a.0) as f64 / total as f64)
}

/// This process's CPU seconds and minor page faults so far.
pub(crate) fn own_usage() -> ProcStat {
    ProcStat::from(rusage(Who::Process))
}

/// This thread's CPU seconds and minor page faults so far.
pub(crate) fn thread_usage() -> ProcStat {
    ProcStat::from(rusage(Who::Thread))
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
    /// Context switches, voluntary and involuntary, summed over the threads alive.
    pub(crate) switches: (u64, u64),
}

impl From<Rusage> for ProcStat {
    fn from(u: Rusage) -> Self {
        Self {
            cpu_s: u.cpu_s(),
            minor_faults: u.minor_faults,
            switches: u.switches,
        }
    }
}

/// Process `pid`'s CPU seconds and minor page faults so far.
pub(crate) fn proc_stat(pid: u32) -> Result<ProcStat> {
    let usage = snowpipe_cli_support::process::usage(pid)?;
    Ok(ProcStat {
        cpu_s: usage.cpu.as_secs_f64(),
        minor_faults: usage.minor_faults,
        switches: task_switches(pid),
    })
}

/// Process `pid`'s context switches, voluntary and involuntary, summed over its threads
/// (`/proc/PID/task/*/status`; a thread that has exited is no longer counted).
fn task_switches(pid: u32) -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let mut sum = (0, 0);
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        for line in status.lines() {
            let count = |prefix: &str| {
                line.strip_prefix(prefix)
                    .and_then(|n| n.trim().parse::<u64>().ok())
            };
            if let Some(n) = count("voluntary_ctxt_switches:") {
                sum.0 += n;
            } else if let Some(n) = count("nonvoluntary_ctxt_switches:") {
                sum.1 += n;
            }
        }
    }
    sum
}

/// The floor, in its own process: consume `expected` messages of `topics` (comma-separated)
/// and drop them.
pub(crate) fn floor(brokers: &str, topics: &str, expected: u64, group: &str) -> Result<()> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    // Fetching as the sink fetches with its default budget (librdkafka's own defaults pause a
    // partition for a second whenever the queue is full, which at 100 B held this floor to a
    // fraction of what the cluster serves).
    for (key, value) in snowpipe_kafka::fetch_properties(snowpipe_kafka::MemoryBudget::DEFAULT) {
        config.set(key, value);
    }
    let consumer: BaseConsumer = config.create()?;
    consumer.subscribe(&topics.split(',').collect::<Vec<_>>())?;
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

/// The last JSON line a child printed.
pub(crate) fn last_json(child: Child) -> Result<Value> {
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("exited with {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().context("no output")?;
    serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))
}

pub(crate) fn measured_from(side: &'static str, v: &Value) -> Result<Measured> {
    Ok(Measured {
        side,
        messages: v["rows"].as_u64().context("rows")?,
        window_s: v["window_s"].as_f64().context("window_s")?,
        cpu_s: v["cpu_s"].as_f64().context("cpu_s")?,
        machine_busy: None,
        page_faults: v["page_faults"].as_u64(),
        switches: None,
        lab_cpu_s: None,
        // The floor's window is its intake: it reads, and appends nothing.
        append_s: match side {
            FLOOR => v["window_s"].as_f64(),
            _ => v["append_s"].as_f64(),
        },
        source: None,
    })
}

/// The command that runs one instance of the sink on `load`'s topics in group `group` until it
/// is idle.
pub(crate) fn sink_command(
    lab: &Lab,
    bin: &Path,
    args: &BenchArgs,
    load: &Load,
    group: &str,
) -> Command {
    // The values alone, as the peer writes them (`--metadata` adds ~150 bytes a row).
    let mut cmd = lab.instance_of(bin, group);
    for topic in &load.topics {
        cmd.args(["--topic", topic]);
    }
    cmd.args(["--pipe", PIPE]);
    cmd.args([
        "--until-idle",
        "3s",
        "--max-client-lag",
        &args.max_client_lag,
        "--memory-budget",
        &args.memory_budget,
    ]);
    cmd
}

/// Our sink, one instance: CPU over the window from all its channels open (it reads from
/// then on) to its last row committed.
pub(crate) async fn sink_side(
    lab: &Lab,
    bin: &Path,
    args: &BenchArgs,
    load: &Load,
    expected: u64,
    group: &str,
) -> Result<Measured> {
    let partitions = load.all_partitions();
    let prefix = format!("{group}_");
    let mut child = sink_command(lab, bin, args, load, group)
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
        switches: Some((
            end.1.switches.0.saturating_sub(c0.switches.0),
            end.1.switches.1.saturating_sub(c0.switches.1),
        )),
        lab_cpu_s: Some(end.3.cpu_s - lab0.cpu_s),
        append_s: report["appended"]["seconds"].as_f64(),
        source: report.get("source").cloned(),
    })
}

/// The Python peer: its profile for the official SDK, then the script.
pub(crate) fn peer_side(
    lab: &Lab,
    python: &Path,
    load: &Load,
    expected: u64,
    group: &str,
) -> Result<Measured> {
    let child = peer_command(lab, python, load, expected, group)?
        .spawn()
        .context("cannot start the Python peer")?;
    measured_from(PEER, &last_json(child)?)
}

/// The command that runs the Python peer (its profile for the official SDK written first) until
/// it appended `expected` rows and saw them committed.
pub(crate) fn peer_command(
    lab: &Lab,
    python: &Path,
    load: &Load,
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
            &load.topics.join(","),
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

pub(crate) fn floor_side(
    lab: &Lab,
    bin: &Path,
    load: &Load,
    expected: u64,
    group: &str,
) -> Result<Measured> {
    let child = floor_command(lab, bin, load, expected, group)
        .stdout(Stdio::piped())
        .spawn()?;
    measured_from(FLOOR, &last_json(child)?)
}

/// The floor's process (`bench --floor`): consume `expected` messages of `load`'s topics in
/// `group`, then print what it measured and exit.
pub(crate) fn floor_command(
    lab: &Lab,
    bin: &Path,
    load: &Load,
    expected: u64,
    group: &str,
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args([
        "bench",
        "--floor",
        &lab.brokers(),
        &load.topics.join(","),
        &expected.to_string(),
        group,
    ])
    .stdin(Stdio::null());
    cmd
}

/// The megabytes `faults` minor page faults touched for the first time.
pub(crate) fn fresh_mb(faults: u64) -> f64 {
    let bytes = faults as f64 * page_size() as f64;
    bytes / 1e6
}

/// The kernel's page size.
pub(crate) fn page_size() -> usize {
    usize::try_from(snowpipe_cli_support::process::page_size()).unwrap_or(4096)
}

/// The cores this process may run on.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
