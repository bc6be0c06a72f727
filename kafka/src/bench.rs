//! `snowpipe-kafka bench`: what the sink costs and how fast it moves, on this machine.
//!
//! For each instance count, a fresh [`Lab`] (mock cluster; the emulator in `--sink` mode, so
//! the server's SQLite is not what is measured) and the instances (separate processes) on a
//! 6-partition topic; once they have joined, `--messages` JSON messages of about `--size` bytes
//! are produced as fast as the instances take them: the producer keeps at most 3 MiB per
//! partition not yet committed, because librdkafka's mock cluster keeps only 5 MiB per
//! partition and deletes the oldest messages beyond (`mpart->max_size` in `rdkafka_mock.c`;
//! a backlog produced up front would be gone before it is read). Printed: messages/s from the
//! first commit seen to the last, and the instances' CPU seconds (user + system, `getrusage`
//! of the reaped children, start-up, join and idle time included) per GB of message values.
//! Then, with 2 instances and a steady producer, one instance is SIGTERMed and the time until
//! every partition commits again is printed: the hand-over, the rebalance and the resume.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::producer::FutureRecord;
use snowpipe_emulator::EmulatorConfig;

use crate::demo::Lab;

/// Options of `snowpipe-kafka bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Instance counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub instances: Vec<usize>,
    /// Messages per run.
    #[arg(long, default_value_t = 120_000)]
    pub messages: u64,
    /// Bytes per message value (about).
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// The instances' `--max-client-lag`. With the producer at most 3 MiB a partition ahead,
    /// the rate is at most that backlog over the time from produce to commit (client lag +
    /// commit), so a lower lag measures more of the sink and less of the bound.
    #[arg(long, default_value = "1s")]
    pub max_client_lag: String,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
}

const TOPIC: &str = "bench";

fn children_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    #[allow(unsafe_code)]
    unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Rows committed so far (the emulator's counters) and the committed token per channel.
fn committed(lab: &Lab) -> (u64, Vec<(String, Option<String>)>) {
    let status = lab.emulator().status();
    let mut rows = 0;
    let mut tokens = Vec::new();
    for c in status["channels"].as_array().into_iter().flatten() {
        rows += c["rows_inserted"].as_u64().unwrap_or(0);
        let name = c["channel_name"].as_str().unwrap_or_default().to_owned();
        let token = c["last_committed_offset_token"].as_str().map(str::to_owned);
        tokens.push((name, token));
    }
    (rows, tokens)
}

/// Produces `count` messages of about `size` bytes: at `rate` per second (0: as fast as the
/// instances commit, at most `backlog` ahead of the committed rows).
async fn produce(lab: &Lab, count: u64, size: usize, rate: f64, backlog: u64) -> Result<()> {
    let producer = lab.producer()?;
    let pad = "x".repeat(size.saturating_sub(60));
    let started = Instant::now();
    let mut pending = Vec::new();
    for id in 0..count {
        let v = format!(
            r#"{{"id":{id},"kind":"view","amount":{},"pad":"{pad}"}}"#,
            id % 1000
        );
        let key = format!("k{}", id % 101);
        let d = producer
            .send_result(FutureRecord::to(TOPIC).key(&key).payload(&v))
            .map_err(|(e, _)| anyhow::anyhow!("cannot queue a message: {e}"))?;
        pending.push(d);
        if pending.len() >= 20_000 {
            for d in pending.drain(..) {
                delivered(d.await)?;
            }
        }
        if rate <= 0.0 && id % 500 == 0 {
            while id.saturating_sub(committed(lab).0) > backlog {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        if rate > 0.0 {
            #[allow(clippy::cast_precision_loss)]
            let due = Duration::from_secs_f64((id + 1) as f64 / rate);
            if let Some(w) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(w).await;
            }
        }
    }
    for d in pending {
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

/// Runs the benchmark (see the module docs) and prints one line per measurement.
///
/// # Errors
/// When a part cannot start or an instance fails.
pub async fn run(args: BenchArgs) -> Result<()> {
    let bin = std::env::current_exe().context("cannot find this binary")?;
    let sink = || {
        let mut c = EmulatorConfig::for_tests().with_commit_delay(Duration::from_millis(200));
        c.sink = true;
        c
    };
    for &k in &args.instances {
        let lab = Lab::start_with(&[(TOPIC, args.partitions)], sink()).await?;
        let cpu0 = children_cpu();
        let t0 = Instant::now();
        let mut children = (0..k)
            .map(|_| {
                lab.instance(&bin, TOPIC, "bench")
                    .args([
                        "--until-idle",
                        "3s",
                        "--max-client-lag",
                        &args.max_client_lag,
                    ])
                    .spawn()
                    .context("cannot start an instance")
            })
            .collect::<Result<Vec<_>>>()?;
        // 3 MiB a partition (see the module docs).
        let backlog = u64::try_from(args.partitions).unwrap_or(1) * (3 << 20)
            / u64::try_from(args.size.max(1) + 64).unwrap_or(1);
        let producing = produce(&lab, args.messages, args.size, 0.0, backlog);
        tokio::pin!(producing);
        let mut produced = false;
        let mut first = None;
        let done = loop {
            if !produced {
                tokio::select! {
                    r = &mut producing => { r?; produced = true; }
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let (rows, _) = committed(&lab);
            if rows > 0 && first.is_none() {
                first = Some(Instant::now());
            }
            if rows >= args.messages {
                break Instant::now();
            }
            if t0.elapsed() > Duration::from_secs(600) {
                bail!(
                    "{k} instance(s): only {rows} of {} rows after 10 minutes",
                    args.messages
                );
            }
        };
        for c in &mut children {
            let status = c.wait()?;
            if !status.success() {
                bail!("an instance failed: {status}");
            }
        }
        let cpu = children_cpu().saturating_sub(cpu0);
        let window = done.duration_since(first.unwrap_or(t0));
        #[allow(clippy::cast_precision_loss)]
        let gb = (args.messages as f64) * (args.size as f64) / 1e9;
        #[allow(clippy::cast_precision_loss)]
        let rate = args.messages as f64 / window.as_secs_f64();
        println!(
            "{{\"instances\":{k},\"messages\":{},\"bytes_per_message\":{},\"max_client_lag\":\"{}\",\"messages_per_s\":{rate:.0},\"mb_per_s\":{:.1},\"cpu_s_per_gb\":{:.2},\"first_row_after_s\":{:.2}}}",
            args.messages,
            args.size,
            args.max_client_lag,
            rate * args.size as f64 / 1e6,
            cpu.as_secs_f64() / gb,
            first.map_or(0.0, |f| f.duration_since(t0).as_secs_f64()),
        );
    }
    resume_after_rebalance(&bin, &args, sink()).await
}

/// Two instances under a steady producer; one is SIGTERMed: how long until every partition
/// commits again.
async fn resume_after_rebalance(
    bin: &std::path::Path,
    args: &BenchArgs,
    config: EmulatorConfig,
) -> Result<()> {
    let lab = Lab::start_with(&[(TOPIC, args.partitions)], config).await?;
    let mut a = lab.instance(bin, TOPIC, "resume").spawn()?;
    let mut b = lab.instance(bin, TOPIC, "resume").spawn()?;
    let rate = 2_000.0;
    let producing = produce(&lab, 60_000, args.size, rate, 0);
    tokio::pin!(producing);
    let measure = async {
        // Steady state: every partition's channel committing.
        let steady = Instant::now();
        loop {
            let (_, tokens) = committed(&lab);
            if tokens.len() >= usize::try_from(args.partitions).unwrap_or(0)
                && tokens.iter().all(|(_, t)| t.is_some())
                && steady.elapsed() > Duration::from_secs(8)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, before) = committed(&lab);
        // SAFETY: signalling a child we spawned and have not reaped.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(i32::try_from(a.id()).unwrap_or(0), libc::SIGTERM);
        }
        let t = Instant::now();
        let mut resumed: std::collections::HashMap<String, Duration> =
            std::collections::HashMap::new();
        while resumed.len() < before.len() && t.elapsed() < Duration::from_secs(120) {
            let (_, now) = committed(&lab);
            for ((name, then), (_, token)) in before.iter().zip(&now) {
                if token != then && !resumed.contains_key(name) {
                    resumed.insert(name.clone(), t.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        resumed.values().max().copied()
    };
    let slowest = tokio::select! {
        r = &mut producing => { r?; None }
        s = measure => s,
    };
    let _ = a.wait();
    // SAFETY: as above.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(i32::try_from(b.id()).unwrap_or(0), libc::SIGTERM);
    }
    let _ = b.wait();
    match slowest {
        Some(d) => println!(
            "{{\"resume_after_sigterm_of_1_of_2_s\":{:.2},\"note\":\"every partition committing again (eager rebalance: all partitions move)\"}}",
            d.as_secs_f64()
        ),
        None => println!("{{\"resume_after_sigterm_of_1_of_2_s\":null}}"),
    }
    Ok(())
}
