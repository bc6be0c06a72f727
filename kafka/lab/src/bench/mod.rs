//! `snowpipe-kafka-lab bench`: what the sink costs on this machine, beside what reading alone
//! costs and what a Python sink on the official SDK costs, on the same cluster and emulator.
//!
//! For each message size, a fresh [`Lab`] (librdkafka's mock cluster, or with `--brokers` a
//! Kafka-protocol broker in its own process; the emulator with TLS in `--sink` mode, so the
//! server's SQLite is not what is measured) and `--topics` topics of `--partitions` partitions
//! with a backlog produced before anything reads it (`load.rs`): realistic clickstream events
//! by default, padded objects with `--events padded` (`events.rs`). The mock keeps at most
//! 5 MiB per partition and deletes the oldest messages beyond (`mpart->max_size` in
//! `rdkafka_mock.c`), so the backlog is spread to about 3 MiB a partition; the mock also
//! answers a fetch with one stored batch a partition, so the backlog is produced in full
//! batches, as a busy topic's producer writes them. Then, one after the other, each in its own
//! consumer group and its own process:
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
//!   much as it reads;
//! * in each round's JSON line, the sink's context switches over its window (`switches`:
//!   voluntary, each a wait and a wake-up later, and involuntary), summed over its threads;
//! * the least any sink spends here: the floor, plus the two stages every row goes through
//!   timed alone on one thread over the same messages (`stages.rs`: the JSON check, and zstd
//!   as the SDK compresses at its default level), beside what the sink spent. What is left
//!   over is ours (batches, requests, TLS, fresh memory, the stages' own cost among the other
//!   threads); what is below it no sink that checks and compresses every row gets under on
//!   this machine.
//!
//! `--rebalance-partitions N` then measures one instance taking N partitions (every channel
//! open and a row of each committed), and a second instance joining (an eager rebalance: every
//! partition handed over, then half of them opened again by each).

mod args;
pub mod events;
mod load;
pub(crate) mod measure;
mod stages;
mod steady;

pub use args::{BenchArgs, Events};

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use snowpipe_emulator::{EmulatorConfig, TlsMode};

use crate::bench::load::{backlog, Load, TOPIC};
use crate::bench::measure::*;
use crate::bench::stages::Stages;
use crate::demo::Lab;

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
    if args.peer_python.is_none() {
        eprintln!(
            "(no --peer-python: the Python peer is skipped; see kafka/lab/benches/requirements.txt)"
        );
    }
    let (sizes, file) = Load::sizes(&args)?;
    let mut table = Vec::new();
    for size in sizes {
        let load = Load::new(&args, size, file.as_ref());
        let per_partition = (3u64 << 20) / u64::try_from(size + 64)?;
        let messages = match args.messages {
            0 => per_partition * u64::try_from(load.all_partitions())?,
            n => n,
        };
        let lab = load.lab(args.brokers.as_deref(), sink()).await?;
        let bytes = backlog(&lab, &load, messages).await?;
        let stages = stages::measure(&load, messages).await?;
        print_stages(&stages, &load);
        let gb = bytes as f64 / 1e9;
        let mut rounds = Vec::new();
        for round in 1..=args.rounds {
            let sides = one_round(&lab, &bin, &args, &load, messages, round).await?;
            for m in &sides {
                print_side(m, round, &load, gb);
            }
            rounds.push(sides);
        }
        table.push((size, messages, gb, rounds, stages));
    }
    let lab = match args.brokers {
        None => "mock cluster and emulator, in the bench's process",
        Some(_) => "the emulator, in the bench's process; not the broker's own process",
    };
    print_table(&table, lab);
    if args.rebalance_partitions > 0 {
        rebalance(&bin, args.rebalance_partitions, sink()).await?;
    }
    Ok(())
}

/// Round `round` over `lab`'s backlog of `messages`: the floor, then the sink and the peer
/// taking turns to go first (the even rounds run the peer first), each in its own groups; the
/// sides in the table's order.
async fn one_round(
    lab: &Lab,
    bin: &Path,
    args: &BenchArgs,
    load: &Load,
    messages: u64,
    round: u32,
) -> Result<Vec<Measured>> {
    let mut sides = vec![floor_side(
        lab,
        bin,
        load,
        messages,
        &format!("floor{round}"),
    )?];
    let sink_group = format!("sink{round}");
    let peer_group = format!("peer{round}");
    let peer = || -> Result<Option<Measured>> {
        args.peer_python
            .as_deref()
            .map(|python| peer_side(lab, python, load, messages, &peer_group))
            .transpose()
    };
    if round % 2 == 0 {
        sides.extend(peer()?);
        sides.push(sink_side(lab, bin, args, load, messages, &sink_group).await?);
    } else {
        sides.push(sink_side(lab, bin, args, load, messages, &sink_group).await?);
        sides.extend(peer()?);
    }
    sides.sort_by_key(|m| SIDES.iter().position(|s| *s == m.side));
    Ok(sides)
}

/// One side's JSON line: its round, the load, its rate, CPU and the rest of [`Measured`].
fn print_side(m: &Measured, round: u32, load: &Load, gb: f64) {
    let rate = m.messages as f64 / m.window_s;
    let mean_bytes = gb * 1e9 / m.messages as f64;
    // What librdkafka fetched over what was consumed: above 1, messages read twice.
    let fetched = |field: &str, of: f64| {
        m.source
            .as_ref()
            .and_then(|s| s[field].as_u64())
            .map(|n| (n as f64 / of * 100.0).round() / 100.0)
    };
    println!(
        "{}",
        json!({"round": round, "side": m.side, "bytes_per_message": load.size,
               "events": load.events_name(),
               "mean_bytes": mean_bytes.round(),
               "messages": m.messages, "topics": load.topics.len(),
               "partitions": load.partitions,
               "messages_per_s": rate.round(),
               "mb_per_s": (rate * mean_bytes / 1e5).round() / 10.0,
               "cpu_s": (m.cpu_s * 100.0).round() / 100.0,
               "cpu_s_per_gb": (m.cpu_s / gb * 100.0).round() / 100.0,
               "machine_busy": m.machine_busy.map(|b| (b * 100.0).round() / 100.0),
               "page_faults": m.page_faults,
               "switches": m.switches.map(|(v, i)| json!({"voluntary": v, "involuntary": i})),
               "lab_cpu_s": m.lab_cpu_s.map(|c| (c * 100.0).round() / 100.0),
               "append_s": m.append_s.map(|a| (a * 1000.0).round() / 1000.0),
               "source": m.source,
               "fetched_over_messages": fetched("fetched_messages", m.messages as f64),
               "broker_rx_over_bytes": fetched("broker_rx_bytes", gb * 1e9)})
    );
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
/// what limited the sink ([`limits`]; `lab`: what the lab's CPU covers).
fn print_table(table: &[(usize, u64, f64, Rounds, Stages)], lab: &str) {
    println!();
    println!("| message | side | messages/s | CPU-s | CPU-s per GB |");
    println!("|---|---|---|---|---|");
    for (size, messages, gb, rounds, _) in table {
        for side in SIDES {
            let of: Vec<&Measured> = rounds.iter().flatten().filter(|m| m.side == side).collect();
            if of.is_empty() {
                continue;
            }
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
    for (size, _, _, rounds, _) in table {
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
    for (size, _, gb, rounds, stages) in table {
        limits(*size, *gb, rounds, lab);
        least(*size, *gb, rounds, stages);
    }
}

/// Why the sink's rate is what it is, from its side's measurements: how far from the floor,
/// whether the machine's cores were the limit (every core busy: the sink, the emulator and
/// the mock cluster share them) or its latency (`--max-client-lag`, the commit), and how much
/// of its memory was fresh (each page the kernel zeroes on first touch costs CPU).
fn limits(size: usize, gb: f64, rounds: &Rounds, lab_is: &str) {
    let of = |side: &str| -> Vec<&Measured> {
        rounds.iter().flatten().filter(|m| m.side == side).collect()
    };
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
        let gb_per_message = gb / sink[0].messages as f64;
        let room = room_for_sink(
            cores(),
            0.9 * floor_rate,
            gb_per_message,
            median(lab.clone()),
        );
        let floor_cost = median(floor.iter().map(|m| m.cpu_s / gb).collect());
        println!(
            "{size} B: the lab ({lab_is}, with the bench's polling) used {} CPU-s per GB over \
             the sink's window; at 90 % of the \
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

/// The stages alone, as a JSON line beside the sides'.
fn print_stages(stages: &Stages, load: &Load) {
    println!(
        "{}",
        json!({"side": "stages alone (one thread)", "bytes_per_message": load.size,
               "events": load.events_name(),
               "check_cpu_s_per_gb": (stages.check_per_gb() * 100.0).round() / 100.0,
               "serde_json_check_cpu_s_per_gb": (stages.serde_per_gb() * 100.0).round() / 100.0,
               "zstd_level": stages::SDK_ZSTD_LEVEL,
               "zstd_cpu_s_per_gb": (stages.zstd_per_gb() * 100.0).round() / 100.0,
               "zstd_ratio": (stages.ratio * 10.0).round() / 10.0})
    );
}

/// The least a sink that reads, checks and compresses every row spends on this machine (the
/// floor's median, and the two stages alone), beside what the sink spent: what is left is ours.
fn least(size: usize, gb: f64, rounds: &Rounds, stages: &Stages) {
    let per_gb = |side: &str| -> Option<f64> {
        let v: Vec<f64> = rounds
            .iter()
            .flatten()
            .filter(|m| m.side == side)
            .map(|m| m.cpu_s / gb)
            .collect();
        (!v.is_empty()).then(|| median(v))
    };
    let (Some(floor), Some(sink)) = (per_gb(FLOOR), per_gb(SINK)) else {
        return;
    };
    let least = floor + stages.check_per_gb() + stages.zstd_per_gb();
    println!(
        "{size} B: the stages alone on these messages, one thread: the JSON check {:.2} \
         (serde_json's {:.2}), zstd level {} (the SDK's default) {:.2} CPU-s per GB ({:.1}× \
         smaller); with reading (the \
         floor, {floor:.2}), a sink that checks and compresses every row spends at least \
         {least:.2} CPU-s per GB here; snowpipe-kafka spent {sink:.2}, {:.2} more (batches, \
         requests, TLS, fresh memory)",
        stages.check_per_gb(),
        stages.serde_per_gb(),
        stages::SDK_ZSTD_LEVEL,
        stages.zstd_per_gb(),
        stages.ratio,
        sink - least
    );
}

/// The CPU-s per GB a sink may spend when `cores` busy cores carry `rate` messages a second of
/// `gb_per_message` each and the lab spends `lab_cpu_s_per_gb` on them: what the cores give
/// per GB at that rate, less the lab's share (negative: the lab alone needs more).
fn room_for_sink(cores: usize, rate: f64, gb_per_message: f64, lab_cpu_s_per_gb: f64) -> f64 {
    let cores = cores as f64;
    cores / (rate * gb_per_message) - lab_cpu_s_per_gb
}

/// One instance takes `n` partitions; then a second joins. Prints how long until every
/// partition had its channel open and a row committed, each time.
async fn rebalance(bin: &Path, n: i32, config: EmulatorConfig) -> Result<()> {
    let load = Load::one_topic(n, Events::Padded, 100);
    let lab = load.lab(None, config).await?;
    let count = u64::try_from(n)?;
    backlog(&lab, &load, count).await?;
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
    backlog(&lab, &load, count).await?;
    let second = wait_for(&lab, "many_", all, 2 * count, t1).await?;
    for c in [&mut a, &mut b] {
        // Not reaped yet: the id is still this child's.
        snowpipe_cli_support::process::signal(c.id(), snowpipe_cli_support::process::Signal::Term)?;
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

    /// A thread that waits switches out voluntarily: the sum over the process's threads counts
    /// it, as `getrusage` does for the process itself.
    #[test]
    fn a_wait_is_a_voluntary_context_switch() {
        let pid = std::process::id();
        let (before, own_before) = (proc_stat(pid).unwrap(), own_usage());
        for _ in 0..5 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let (after, own_after) = (proc_stat(pid).unwrap(), own_usage());
        let seen = after.switches.0.saturating_sub(before.switches.0);
        let own_seen = own_after.switches.0 - own_before.switches.0;
        assert!(seen >= 5, "{before:?} {after:?}");
        assert!(own_seen >= 5, "{own_before:?} {own_after:?}");
    }
}
