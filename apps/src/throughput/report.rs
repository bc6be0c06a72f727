//! The harness's figures from a measured window, and the lines and JSON object it prints
//! (their meaning is in the module docs of [`crate::throughput`]).

use super::measure::{peak_rss_mb, Latency};
use super::{Args, Window};

/// The window's timings and the starvation figures derived from them.
#[derive(Clone, Copy)]
pub(super) struct Figures {
    /// Seconds from the first append until the last producer's `flush()` returned.
    flushed: f64,
    /// Seconds until the last producer saw its last commit.
    committed: f64,
    starved_max_ms: f64,
    round_ms: f64,
    starved_rounds: f64,
}

impl Figures {
    pub(super) fn of(args: &Args, window: &Window) -> Self {
        let flushed = window.slowest(|r| r.flushed);
        let committed = window.slowest(|r| r.committed);
        let starved_max_ms = window.slowest(|r| r.longest_wait) * 1000.0;
        // One round: every streaming channel appends once (`--batch` rows), or the budget's
        // worth of bytes streams through, whichever takes longer at the measured rate. A fair
        // admission (FIFO budget, FIFO compression slots) keeps the longest wait within about
        // one round whatever the channel count; `starved_rounds` is that ratio.
        let total_bytes = window.total_bytes;
        let row_bytes = total_bytes as f64 / (args.rows * args.channels as u64).max(1) as f64;
        let bytes_per_ms = total_bytes as f64 / flushed / 1000.0;
        let round_ms = (args.channels as f64 * args.batch as f64 * row_bytes)
            .max((args.memory_budget_mb << 20) as f64)
            / bytes_per_ms;
        let starved_rounds = starved_max_ms / round_ms.max(f64::MIN_POSITIVE);
        Figures {
            flushed,
            committed,
            starved_max_ms,
            round_ms,
            starved_rounds,
        }
    }
}

/// Prints the run's lines and its JSON object; the peak RSS is read now.
pub(super) fn print(
    args: &Args,
    mode: &str,
    row_bytes: f64,
    window: &Window,
    figures: &Figures,
    latency: Latency,
    idle_channel_kb: Option<f64>,
) {
    let Figures {
        flushed,
        committed,
        starved_max_ms,
        round_ms,
        starved_rounds,
    } = *figures;
    let (total_bytes, cpu, baseline_rss) = (window.total_bytes, window.cpu, window.baseline_rss);
    let total_rows = args.rows * args.channels as u64;
    let rows_per_s = total_rows as f64 / flushed;
    let mb_per_s = total_bytes as f64 / 1e6 / flushed;
    let cpu_s_per_gb = cpu / (total_bytes as f64 / 1e9);
    let rss = peak_rss_mb();
    println!("mode: {mode}; {} channel(s) x {} rows, {} rows per append_rows, {:.0} bytes a row, memory budget {} MiB{}",
        args.channels, args.rows, args.batch, row_bytes, args.memory_budget_mb,
        if args.slow_server { ", slow server (150 ms per append, commit after 1 s)" } else { "" });
    println!(
        "appended and acknowledged (flush() returned): {total_rows} rows, {:.1} MB NDJSON in {flushed:.3} s",
        total_bytes as f64 / 1e6
    );
    println!("  {rows_per_s:.0} rows/s, {mb_per_s:.1} MB/s of uncompressed NDJSON");
    println!("  last commit seen by the client after {committed:.3} s; longest single append wait {starved_max_ms:.0} ms = {starved_rounds:.2} rounds (a round: every channel appends once or the budget turns over, {round_ms:.0} ms)");
    println!(
        "client CPU: {cpu:.2} s = {cpu_s_per_gb:.2} CPU-s per GB of NDJSON{}",
        if mode.starts_with("in-process") {
            " (emulator threads excluded)"
        } else {
            ""
        }
    );
    println!(
        "peak RSS: {rss:.1} MB (whole process{}); {baseline_rss:.1} MB before streaming (row pool, runtime, connections), so streaming added at most {:.1} MB against a memory budget of {} MiB",
        if mode.starts_with("in-process") {
            ", in-process emulator included"
        } else {
            ""
        },
        rss - baseline_rss,
        args.memory_budget_mb
    );
    let Latency { p50, p99, commits } = latency;
    match (p50, p99) {
        (Some(a), Some(b)) => println!(
            "commit detection (server commit -> watch_committed shows it): p50 {a:.1} ms, p99 {b:.1} ms over {commits} commits"
        ),
        _ => println!("commit detection: not measured (the server does not list commit times)"),
    }
    let json = serde_json::json!({
        "rows_per_s": rows_per_s.round(),
        "mb_per_s": (mb_per_s * 10.0).round() / 10.0,
        "cpu_s_per_gb": (cpu_s_per_gb * 100.0).round() / 100.0,
        "peak_rss_mb": (rss * 10.0).round() / 10.0,
        "commit_p50_ms": p50.map(|v| (v * 10.0).round() / 10.0),
        "commit_p99_ms": p99.map(|v| (v * 10.0).round() / 10.0),
        "baseline_rss_mb": (baseline_rss * 10.0).round() / 10.0,
        "rows": total_rows,
        "seconds": (flushed * 1000.0).round() / 1000.0,
        "cpu_s": (cpu * 1000.0).round() / 1000.0,
        "channels": args.channels,
        "lanes": args.lanes,
        "idle_channels": args.idle_channels,
        "idle_channel_kb": idle_channel_kb.map(|v| (v * 10.0).round() / 10.0),
        "rss_over_budget_mb": (((rss - baseline_rss) - (args.memory_budget_mb << 20) as f64 / 1e6) * 10.0).round() / 10.0,
        "starved_max_ms": starved_max_ms.round(),
        "round_ms": (round_ms * 10.0).round() / 10.0,
        "starved_rounds": (starved_rounds * 100.0).round() / 100.0,
    });
    println!("{json}");
}
