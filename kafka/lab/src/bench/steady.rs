//! `snowpipe-kafka-lab bench --steady-rate N`: what each sink costs while it keeps up with a
//! producer, as a sink that runs for hours does.
//!
//! The backlog rounds of `bench` measure a fresh process that reads a whole backlog within one
//! `--max-client-lag`, so nearly all the memory it holds is touched for the first time, and the
//! kernel zeroing those pages is much of its CPU (`bench` prints that fresh memory). A sink in
//! production reuses its memory lag after lag. Here, for each size, each side (the sink, then
//! the Python peer) gets a fresh lab (mock cluster and emulator in `--sink` mode) and its own
//! process; once every channel is open, a producer in this process writes `--steady-rate`
//! messages a second, round-robin over the partitions, for `--steady-seconds`. Both sides are
//! measured alike, from here: the process's CPU (`/proc/PID/stat`) and minor page faults over
//! the middle half of the producing time (warmed up, the producer still writing), against the
//! bytes produced in that window, and the rows the emulator committed for the side's channels
//! in it, which show whether the side kept up.
//!
//! The floor (`bench --floor`: reading alone, no sink) is measured the same way first, in its
//! own lab and process (it has no channels to wait for: its group joins within the window's
//! first quarter, and it reads from the start), and then the two stages every row goes
//! through (`stages.rs`: the JSON check, and zstd as the SDK compresses) alone on one thread
//! over as many of the same events as the sink's window held. The floor and the stages make
//! the least any sink that reads, checks and compresses every row spends at this rate, printed
//! beside the sink's CPU per GB, as the backlog rounds print theirs.
//!
//! One measurement per side and size: a window of several seconds at a steady rate varies less
//! than the backlog's second or two. The producer, the mock cluster and the emulator share the
//! machine with the side, so the rate must be one both sides can carry (the peer tops out near
//! 57,000 messages of 1 KB a second on two cores).

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use snowpipe_emulator::EmulatorConfig;

use crate::bench::args::BenchArgs;
use crate::bench::load::{await_deliveries, send, Load};
use crate::bench::measure::{
    committed, floor_command, fresh_mb, peer_command, proc_stat, sink_command, ProcStat, FLOOR,
    PEER, SINK,
};
use crate::bench::stages::{self, Stages};
use crate::demo::Lab;

/// Which process reads.
enum Side<'a> {
    /// Reading alone (`bench --floor`, this binary).
    Floor(&'a Path),
    Sink(&'a Path),
    Peer(&'a Path),
}

impl Side<'_> {
    fn name(&self) -> &'static str {
        match self {
            Side::Floor(_) => FLOOR,
            Side::Sink(_) => SINK,
            Side::Peer(_) => PEER,
        }
    }
}

/// One side's steady window.
#[derive(Debug, Clone)]
struct Steady {
    side: &'static str,
    /// Bytes per message.
    size: usize,
    window_s: f64,
    cpu_s: f64,
    /// Rows the emulator committed for the side's channels in the window (none: the floor).
    rows_committed: Option<u64>,
    /// Messages produced in the window.
    messages: u64,
    /// Their bytes.
    bytes: u64,
    page_faults: u64,
}

impl Steady {
    /// The side's CPU over the window per GB of messages produced in it.
    fn cpu_s_per_gb(&self) -> f64 {
        let gb = self.bytes as f64 / 1e9;
        self.cpu_s / gb
    }
}

/// A point of the window: when, the side's process, its rows committed, the messages sent and
/// their bytes.
type Mark = (Instant, ProcStat, u64, u64, u64);

/// Measures each size's sides at the steady rate (see the module docs) and prints the results.
///
/// # Errors
/// When a part cannot start, a side fails or does not commit what was produced.
pub(super) async fn run(
    args: &BenchArgs,
    bin: &Path,
    config: impl Fn() -> EmulatorConfig,
) -> Result<()> {
    let seconds = args.steady_seconds.max(4);
    let mut sides = vec![Side::Floor(bin), Side::Sink(bin)];
    sides.extend(args.peer_python.as_deref().map(Side::Peer));
    if args.peer_python.is_none() {
        eprintln!("(no --peer-python: the Python peer is skipped)");
    }
    let (sizes, file) = Load::sizes(args)?;
    let (mut all, mut least) = (Vec::new(), Vec::new());
    for size in sizes {
        for side in &sides {
            let load = Load::new(args, size, file.as_ref());
            let m = measure(side, args, &load, seconds, config()).await?;
            println!(
                "{}",
                json!({"steady": true, "side": m.side, "bytes_per_message": size,
                       "rate": args.steady_rate, "partitions": args.partitions,
                       "window_s": round(m.window_s, 2), "messages": m.messages,
                       "rows_committed": m.rows_committed, "cpu_s": round(m.cpu_s, 2),
                       "cpu_s_per_gb": round(m.cpu_s_per_gb(), 2),
                       "page_faults": m.page_faults})
            );
            all.push(m);
        }
        if let Some(sink) = all.iter().find(|m| m.size == size && m.side == SINK) {
            let load = Load::new(args, size, file.as_ref());
            least.push((size, stages::measure(&load, sink.messages).await?));
        }
    }
    print_table(&all, args.steady_rate);
    for (size, stages) in &least {
        print_least(&all, *size, stages, args.steady_rate);
    }
    Ok(())
}

/// The least a sink that reads, checks and compresses every row spends at this rate (the
/// floor's window and the two stages alone), beside the sink's window.
fn print_least(all: &[Steady], size: usize, stages: &Stages, rate: u64) {
    if let Some(line) = least_line(all, size, stages, rate) {
        println!("{line}");
    }
}

/// [`print_least`]'s line; `None` without both the floor's window and the sink's.
fn least_line(all: &[Steady], size: usize, stages: &Stages, rate: u64) -> Option<String> {
    let per_gb = |side: &str| {
        all.iter()
            .find(|m| m.size == size && m.side == side)
            .map(Steady::cpu_s_per_gb)
    };
    let (floor, sink) = (per_gb(FLOOR)?, per_gb(SINK)?);
    let least = floor + stages.check_per_gb() + stages.zstd_per_gb();
    Some(format!(
        "{size} B at {rate}/s: reading alone (the floor) {floor:.2}, the JSON check alone {:.2}, \
         zstd level {} alone {:.2} CPU-s per GB: a sink that reads, checks and compresses every \
         row spends at least {least:.2} here; snowpipe-kafka spent {sink:.2}, {:.2}× the least",
        stages.check_per_gb(),
        stages::SDK_ZSTD_LEVEL,
        stages.zstd_per_gb(),
        sink / least
    ))
}

fn round(x: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (x * k).round() / k
}

/// One side at one size: a fresh lab, the side's process, the paced producer, the window.
async fn measure(
    side: &Side<'_>,
    args: &BenchArgs,
    load: &Load,
    seconds: u64,
    config: EmulatorConfig,
) -> Result<Steady> {
    let size = load.size;
    let lab = load.lab(args.brokers.as_deref(), config).await?;
    let expected = args.steady_rate * seconds;
    let group = "steady";
    let prefix = format!("{group}_");
    let mut child = match side {
        Side::Floor(bin) => floor_command(&lab, bin, load, expected, group)
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start the floor")?,
        Side::Sink(bin) => sink_command(&lab, bin, args, load, group)
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start an instance")?,
        Side::Peer(python) => peer_command(&lab, python, load, expected, group)?
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start the Python peer")?,
    };
    let reads_only = matches!(side, Side::Floor(_));
    let result = drive(&lab, &mut child, args, load, seconds, &prefix, reads_only).await;
    if result.is_err() {
        let _ = child.kill();
    }
    let (a, b) = result?;
    if reads_only {
        exited(&mut child).await?;
    } else {
        finish(&lab, &mut child, expected, &prefix).await?;
    }
    Ok(Steady {
        side: side.name(),
        size,
        window_s: b.0.duration_since(a.0).as_secs_f64(),
        cpu_s: b.1.cpu_s - a.1.cpu_s,
        rows_committed: (!reads_only).then(|| b.2.saturating_sub(a.2)),
        messages: b.3 - a.3,
        bytes: b.4 - a.4,
        page_faults: b.1.minor_faults.saturating_sub(a.1.minor_faults),
    })
}

/// Waits for every channel of the side to be open (none when it `reads_only`), then produces
/// at the rate for `seconds`, marking the window's two ends (a quarter and three quarters of
/// the way).
async fn drive(
    lab: &Lab,
    child: &mut Child,
    args: &BenchArgs,
    load: &Load,
    seconds: u64,
    prefix: &str,
    reads_only: bool,
) -> Result<(Mark, Mark)> {
    let pid = child.id();
    let partitions = if reads_only { 0 } else { load.all_partitions() };
    let started = Instant::now();
    while committed(lab, prefix).channels < partitions {
        alive(child)?;
        if started.elapsed() > Duration::from_secs(120) {
            bail!("not every channel was open after 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let producer = lab.producer()?;
    let expected = args.steady_rate * seconds;
    let ends = [
        Duration::from_secs(seconds) / 4,
        Duration::from_secs(seconds) * 3 / 4,
    ];
    let mut marks: [Option<Mark>; 2] = [None, None];
    let (mut sent, mut bytes, mut pending) = (0u64, 0u64, Vec::new());
    let t0 = Instant::now();
    while sent < expected {
        let due = ((args.steady_rate as f64 * t0.elapsed().as_secs_f64()) as u64).min(expected);
        while sent < due {
            let (delivery, len) = send(&producer, load, sent)?;
            pending.push(delivery);
            sent += 1;
            bytes += len as u64;
        }
        for (mark, end) in marks.iter_mut().zip(ends) {
            if mark.is_none() && t0.elapsed() >= end {
                *mark = Some((
                    Instant::now(),
                    proc_stat(pid)?,
                    committed(lab, prefix).rows_inserted,
                    sent,
                    bytes,
                ));
            }
        }
        if pending.len() >= 10_000 {
            await_deliveries(&mut pending).await?;
        }
        if !reads_only {
            // The floor ends by itself once it has read everything sent.
            alive(child)?;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    await_deliveries(&mut pending).await?;
    match marks {
        [Some(a), Some(b)] => Ok((a, b)),
        _ => bail!("the producer finished before its window's end"),
    }
}

/// Waits until the side committed everything produced, then for its process to end.
async fn finish(lab: &Lab, child: &mut Child, expected: u64, prefix: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let rows = committed(lab, prefix).rows_inserted;
        if rows >= expected {
            break;
        }
        alive(child)?;
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            bail!("only {rows} of {expected} rows committed 5 minutes after the producer ended");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    exited(child).await
}

/// Waits for the side's process to end by itself (a minute at most).
async fn exited(child: &mut Child) -> Result<()> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("the side failed: {status}");
            }
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            bail!("the side did not end a minute after reading or committing everything");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An error when the side's process has ended early.
fn alive(child: &mut Child) -> Result<()> {
    match child.try_wait()? {
        Some(status) => bail!("the side exited early ({status})"),
        None => Ok(()),
    }
}

/// A table of the windows, then each size's sink/peer ratio of CPU per GB.
fn print_table(all: &[Steady], rate: u64) {
    println!();
    println!(
        "| message | side | produced/s | committed/s in the window | CPU-s per GB | fresh MB |"
    );
    println!("|---|---|---|---|---|---|");
    for m in all {
        let produced = m.messages as f64 / m.window_s;
        let kept = match m.rows_committed {
            Some(rows) => format!("{:.0}", rows as f64 / m.window_s),
            None => "(reads only)".to_string(),
        };
        println!(
            "| {} B at {rate}/s | {} | {produced:.0} | {kept} | {:.2} | {:.0} |",
            m.size,
            m.side,
            m.cpu_s_per_gb(),
            fresh_mb(m.page_faults),
        );
    }
    let mut sizes: Vec<usize> = all.iter().map(|m| m.size).collect();
    sizes.dedup();
    for size in sizes {
        let per_gb = |side: &str| {
            all.iter()
                .find(|m| m.size == size && m.side == side)
                .map(Steady::cpu_s_per_gb)
        };
        if let (Some(sink), Some(peer)) = (per_gb(SINK), per_gb(PEER)) {
            println!(
                "{size} B at {rate}/s: the sink's CPU per GB is {:.2}× the peer's",
                sink / peer
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(side: &'static str, cpu_s: f64) -> Steady {
        Steady {
            side,
            size: 1024,
            window_s: 10.0,
            cpu_s,
            rows_committed: None,
            messages: 200_000,
            bytes: 200_000_000,
            page_faults: 0,
        }
    }

    /// The least is the floor's window and the two stages, each per GB; the sink is set
    /// against their sum, and nothing is printed without the floor.
    #[test]
    fn the_least_adds_the_floor_and_the_stages() {
        let stages = Stages {
            bytes: 500_000_000,
            check_s: 0.25,
            serde_s: 0.5,
            zstd_s: 0.5,
            ratio: 8.0,
        };
        // 0.2 CPU-s over 0.2 GB: 1 per GB; the stages 0.5 and 1 per GB.
        let floor = window(FLOOR, 0.2);
        let sink = window(SINK, 0.75);
        let line = least_line(&[floor, sink.clone()], 1024, &stages, 20_000).unwrap();
        assert!(line.contains("reading alone (the floor) 1.00"), "{line}");
        assert!(line.contains("at least 2.50 here"), "{line}");
        assert!(line.contains("spent 3.75, 1.50× the least"), "{line}");
        assert_eq!(least_line(&[sink], 1024, &stages, 20_000), None);
    }
}
