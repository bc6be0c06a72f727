//! `snowpipe-kafka-lab soak`: hours of a real topology's faults in minutes, and what they did to
//! memory, latency, stalls and exactly-once (issue 82, item 3).
//!
//! A lab subcommand beside `bench` (the `demo` feature), not a binary of its own: it needs
//! this binary (the sink instances are processes of it), the emulator (the library, run by
//! this binary in a process of its own: `soak --emulator-process`) and the SDK's SQL API, and
//! ships with the lab tools users already have. It runs:
//!
//! * **tansu** (`--tansu`), a Kafka-protocol broker in its own process, storing in memory (no
//!   broker restart then: it would lose the topic) or with `--broker-storage s3` in a local S3
//!   server (moto, `--moto`), when the schedule restarts the broker too;
//! * the **emulator** in its own process, on a data directory that outlives its restarts, with
//!   short scoped tokens (`--token-ttl`, 90 s: an hour's refreshes in a few minutes);
//! * a TCP **fault proxy** (`proxy.rs`) in front of each service: every byte between the
//!   sinks and either service goes through one (the broker advertises its proxy's port; the
//!   emulator names the host a client reached as its ingest host);
//! * `--instances` **sink instances** in one group, each with `/metrics` and `--stall-after`;
//! * a **producer** (`producer.rs`) at `--rate` with bursts, through the broker's proxy too
//!   (the broker advertises one address, so the producer meets the broker's link faults too;
//!   its messages' latency counts from their send).
//!
//! After a warm-up, the faults of `schedule.rs` come in turn, each logged with its start and
//! end; `watch.rs` measures latency, stalls, RSS and CPU meanwhile. When the producer is done
//! the soak waits for every message's commit, stops the instances (SIGTERM), checks through the
//! SQL API that every acknowledged offset landed exactly once (`check.rs`), and prints the
//! report (`report.rs`), also written as JSON to `report.json` in `--work-dir` and to
//! `--report`. It exits 1 when a message was lost or duplicated or a stall outlasted its fault
//! by more than the bound ([`bound`]).

mod args;
mod check;
mod procs;
mod producer;
mod proxy;
mod report;
mod schedule;
mod topology;
mod watch;

pub use args::SoakArgs;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use snowpipe_streaming::StreamingIngestClient;

use crate::demo::{DATABASE, PIPE, SCHEMA};
use crate::soak::producer::{Plan, Produced};
use crate::soak::report::{FaultLog, Inputs};
use crate::soak::schedule::schedule;
use crate::soak::topology::{Topology, TOPIC};
use crate::soak::watch::Watch;

/// The soak's table: the producer's columns and the connector's metadata.
const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DEMO;
CREATE SCHEMA IF NOT EXISTS DEMO.KAFKA;
CREATE TABLE IF NOT EXISTS DEMO.KAFKA.EVENTS (ID NUMBER, KIND VARCHAR, AMOUNT NUMBER, PAD VARCHAR, RECORD_METADATA VARIANT);
";

/// How far past the end of the last fault that overlapped it a stall may last (45 s): the
/// group's session timeout (6 s: a stopped, killed or cut-off member keeps its partitions until
/// then); the rebalances that follow (after a fault that cuts every member off, they rejoin one
/// by one and each join restarts the eager rebalance: about 25 s on tansu here); the SDK's
/// backoff of retries to a service that came back (up to 10 s); the commit's cadence
/// (`--max-client-lag` 1 s, the emulator's 1 s commit delay) and the watcher's 5 s threshold.
pub fn bound() -> Duration {
    Duration::from_secs(45)
}

/// Runs the soak (see the module docs).
///
/// # Errors
/// When a part cannot start; a soak that ran and found loss, duplicates or a long stall is an
/// error too, after its report.
pub async fn run(args: SoakArgs) -> Result<()> {
    if let Some(port) = args.emulator_process {
        return emulator_process(&args, port).await;
    }
    let bin = std::env::current_exe().context("cannot find this binary")?;
    let dir = work_dir(&args)?;
    eprintln!("soak: logs, data and the report in {}", dir.display());
    let run = Duration::from_secs_f64(args.minutes * 60.0);
    let watch = Watch::default();
    let mut topo = Topology::start(&bin, &args, &dir, watch.clone()).await?;
    let brokers = format!("127.0.0.1:{}", topo.broker_proxy.port);
    create_topic(&brokers, args.partitions).await?;
    let client = StreamingIngestClient::builder()
        .url(topo.direct_url())
        .account("DEMO")
        .user("KAFKA")
        .private_key_file(&topo.key)
        .build()
        .await
        .context("the lab's client of the emulator")?;
    let pipe = client.pipe(DATABASE, SCHEMA, PIPE);
    let channels: Vec<String> = (0..args.partitions)
        .map(|p| format!("soak_{TOPIC}_{p}"))
        .collect();
    for slot in 0..args.instances {
        topo.start_sink(slot).await?;
    }
    opened(&pipe, &channels).await?;
    let produced = Produced::default();
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch::run(
        watch.clone(),
        pipe.clone(),
        channels,
        produced.clone(),
        t0,
        Arc::clone(&stop),
    ));
    let producer = producer::start(
        Plan {
            brokers,
            topic: TOPIC.to_owned(),
            partitions: args.partitions,
            rate: args.rate,
            run,
            seed: args.seed,
        },
        produced.clone(),
    )?;
    let faults = faults(&mut topo, &args, run, t0).await?;
    let sent = tokio::task::spawn_blocking(move || producer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the producer panicked"))?;
    eprintln!("soak: {sent} messages sent; waiting for their commits");
    let drained = check::drained(&watch, &produced, Duration::from_secs(300)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.await;
    let unclean = topo.stop_sinks().await;
    // A check that fails is in the report (and fails the soak), after everything measured.
    let (checks, check_error) =
        match check::exactly_once(&topo.direct_url(), &topo.key, &produced).await {
            Ok(c) => (c, None),
            Err(e) => (Vec::new(), Some(format!("{e:#}"))),
        };
    let brokers = format!("127.0.0.1:{}", topo.broker_proxy.port);
    let parts = args.partitions;
    let held = tokio::task::spawn_blocking(move || check::broker_holds(&brokers, TOPIC, parts))
        .await?
        .map_err(|e| format!("{e:#}"));
    let (bytes, messages, failed) = {
        let s = produced.lock();
        (
            s.bytes,
            s.partitions.iter().map(|p| p.count).sum(),
            s.failed,
        )
    };
    let mut measured = std::mem::take(&mut *watch.measured());
    let mut r = report::build(Inputs {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        run,
        warm: run / 6,
        bound: bound(),
        measured: &mut measured,
        faults: &faults,
        bytes,
        messages,
        failed,
        checks: &checks,
    });
    r["drained"] = drained.into();
    r["check_error"] = check_error.into();
    r["broker_holds"] = match &held {
        Ok(held) => broker_loss(held, &produced),
        Err(e) => serde_json::json!({ "error": e }),
    };
    r["unexpected_exits"] = serde_json::json!(topo.unexpected_exits);
    r["unclean_stops"] = serde_json::json!(unclean);
    write_report(&r, &dir, args.report.as_deref())?;
    print!("{}", report::text(&r));
    if r["exactly_once"] != true || r["stalls_within_bound"] != true || !drained {
        bail!("the soak failed (see the report in {})", dir.display());
    }
    Ok(())
}

/// Waits until every channel exists (the instances opened them), up to 2 minutes.
async fn opened(pipe: &snowpipe_streaming::Pipe, channels: &[String]) -> Result<()> {
    let names: Vec<&str> = channels.iter().map(String::as_str).collect();
    let started = Instant::now();
    loop {
        let known = pipe
            .latest_committed_offset_tokens(&names)
            .await
            .map_or(0, |t| t.len());
        if known == names.len() {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("{known} of {} channels open after 2 minutes", names.len());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs the schedule's faults, reviving instances that exit on their own; each fault's log.
async fn faults(
    topo: &mut Topology,
    args: &SoakArgs,
    run: Duration,
    t0: Instant,
) -> Result<Vec<FaultLog>> {
    let plan = schedule(run, args.broker_storage == "s3");
    let mut log = Vec::new();
    let until = |at: Duration| tokio::time::sleep_until((t0 + at).into());
    for planned in plan {
        // Revive (and note) instances that exited on their own while waiting.
        while t0.elapsed() < planned.at {
            topo.revive().await?;
            tokio::select! {
                () = until(planned.at) => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        let start = t0.elapsed().as_secs_f64();
        eprintln!("soak: [{start:7.1}s] {} begins", planned.fault);
        // A fault that cannot be made or undone (a restart that fails) is noted in the report
        // and the soak goes on: an hour's measurements are not thrown away for it.
        let mut error = topo.begin(planned.fault).await.err();
        if !Topology::instant(planned.fault) {
            until(planned.at + planned.hold).await;
        }
        if let Err(e) = topo.end(planned.fault).await {
            error.get_or_insert(e);
        }
        let end = t0.elapsed().as_secs_f64();
        eprintln!("soak: [{end:7.1}s] {} ends", planned.fault);
        log.push(FaultLog {
            fault: planned.fault.to_string(),
            start_s: start,
            end_s: end,
            error: error.map(|e| format!("{e:#}")),
        });
    }
    while t0.elapsed() < run {
        topo.revive().await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(log)
}

/// Per partition, what the broker holds against what it acknowledged: a message the broker
/// lost is not one the sink lost.
fn broker_loss(held: &[(u64, i128)], produced: &Produced) -> serde_json::Value {
    let sent = produced.lock();
    let parts: Vec<serde_json::Value> = held
        .iter()
        .enumerate()
        .map(|(p, (count, sum))| {
            let acked = sent.partitions.get(p).cloned().unwrap_or_default();
            // Offsets 0 to n - 1 (see `check::exactly_once`): the producer's own sum leaves out
            // the retries acknowledged without an offset.
            let n = i128::from(acked.count);
            let same = *count == acked.count && *sum == n * (n - 1) / 2;
            serde_json::json!({"partition": p, "held": count, "acknowledged": acked.count,
                               "same_offsets": same})
        })
        .collect();
    serde_json::json!(parts)
}

/// `--work-dir`, or a new directory under the system's temporary directory.
fn work_dir(args: &SoakArgs) -> Result<PathBuf> {
    let dir = args.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("snowpipe-soak-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the work directory {}", dir.display()))?;
    Ok(dir)
}

/// The report as JSON in `dir/report.json` and in `also`.
fn write_report(r: &serde_json::Value, dir: &Path, also: Option<&Path>) -> Result<()> {
    let text = serde_json::to_string_pretty(r)?;
    std::fs::write(dir.join("report.json"), &text)?;
    if let Some(path) = also {
        std::fs::write(path, &text)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    Ok(())
}

/// Creates the soak's topic (one replica).
async fn create_topic(brokers: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("cannot create an admin client")?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let topic = NewTopic::new(TOPIC, partitions, TopicReplication::Fixed(1));
    for result in admin.create_topics([&topic], &options).await? {
        result.map_err(|(topic, e)| anyhow::anyhow!("cannot create topic {topic}: {e}"))?;
    }
    Ok(())
}

/// The soak's emulator, in this process: on `port`, its data in `--work-dir`'s `emulator`,
/// accepting `--seed`'s key, until SIGTERM.
async fn emulator_process(args: &SoakArgs, port: u16) -> Result<()> {
    snowpipe_emulator::bound_sql_statement_memory();
    let dir = args
        .work_dir
        .clone()
        .context("--emulator-process needs --work-dir")?;
    let mut cfg = snowpipe_emulator::EmulatorConfig::default().with_ddl(DDL);
    cfg.port = port;
    cfg.data_dir = Some(dir.join("emulator"));
    cfg.scoped_token_ttl = args.token_ttl;
    let pair = snowpipe_emulator::KeyPair::from_seed(args.seed)?;
    cfg.public_keys.push(pair.public_key_pem().to_owned());
    // Listened for before the line announces the server (see `signal::terminated`).
    let stop = snowpipe_cli_support::signal::terminated();
    let emu = snowpipe_emulator::Emulator::start(cfg).await?;
    eprintln!("listening on {}", emu.url());
    stop.await;
    emu.shutdown().await;
    Ok(())
}
