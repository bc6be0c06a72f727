//! The soak's report: from what [`watch`](super::watch) measured, the faults' log and the
//! exactly-once check, the numbers as JSON (the report file) and as text.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::soak::watch::{Measured, Samples, Stall};

/// A fault as it happened: what, from when to when (seconds since the start).
#[derive(Debug, Clone, Serialize)]
pub(super) struct FaultLog {
    /// What (the schedule's name).
    pub fault: String,
    /// When it began.
    pub start_s: f64,
    /// When it ended.
    pub end_s: f64,
    /// Why it could not be made or undone, if so.
    pub error: Option<String>,
}

/// One partition's check through the SQL API against what the broker acknowledged.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(super) struct PartitionCheck {
    /// The partition.
    pub partition: usize,
    /// Messages acknowledged.
    pub produced: u64,
    /// Rows in the table.
    pub rows: u64,
    /// Distinct offsets among them.
    pub distinct: u64,
    /// Whether the rows' offsets are exactly the acknowledged ones: `produced` messages are
    /// offsets 0 to `produced` - 1 (no transactions), each once (count, distinct, lowest,
    /// highest and sum).
    pub exact: bool,
    /// What was acknowledged.
    pub expected: String,
    /// The SQL API's row: partition, rows, distinct offsets, lowest, highest, sum.
    pub sql: Vec<Option<String>>,
}

/// The least-squares slope of `points` (x, y); `None` under three points.
pub(super) fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    (den > 0.0).then(|| num / den)
}

/// The `q` quantile (0..=1) of `v` (nearest rank); `None` when empty.
pub(super) fn quantile(v: &mut [f32], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    Some(f64::from(v[i]))
}

/// The fault a stall starting at `start` belongs to: the last one that began at or before it
/// and ended no more than `bound` before it.
pub(super) fn cause(faults: &[FaultLog], start: f64, bound: Duration) -> Option<usize> {
    faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.start_s <= start + 1.0 && start <= f.end_s + bound.as_secs_f64())
        .map(|(i, _)| i)
        .next_back()
}

/// One process's memory and CPU: RSS first, last, peak, its slope after `warm` in MB/hour
/// (with the samples it rests on), CPU seconds.
fn process(name: &str, s: &Samples, warm: f64) -> Value {
    let after: Vec<(f64, f64)> = s
        .iter()
        .filter(|(t, _, _)| *t >= warm)
        .map(|(t, rss, _)| (*t / 3600.0, *rss))
        .collect();
    let peak = s.iter().map(|x| x.1).fold(0.0, f64::max);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    // RSS over time: the last sample of each minute, `[minute, MB]`.
    let mut by_minute: std::collections::BTreeMap<u64, f64> = Default::default();
    for (t, rss, _) in s {
        by_minute.insert((t / 60.0) as u64, round(*rss));
    }
    json!({"process": name,
           "lived_s": s.last().map(|x| round(x.0 - s[0].0)),
           "rss_first_mb": s.first().map(|x| round(x.1)),
           "rss_last_mb": s.last().map(|x| round(x.1)),
           "rss_peak_mb": round(peak),
           "rss_slope_mb_per_hour": slope(&after).map(round),
           "slope_samples": after.len(),
           "cpu_s": s.last().map(|x| (x.2 * 100.0).round() / 100.0),
           "rss_mb_by_minute": by_minute.into_iter().collect::<Vec<_>>()})
}

/// p50, p99 and max of `ms`, and how many.
fn summary(mut ms: Vec<f32>) -> Value {
    let round = |x: Option<f64>| x.map(|x| x.round());
    json!({"p50": round(quantile(&mut ms, 0.5)), "p99": round(quantile(&mut ms, 0.99)),
           "max": round(quantile(&mut ms, 1.0)), "samples": ms.len()})
}

/// The latencies: all of them, those of messages sent while no fault was on nor had ended
/// within `bound` (`quiet`: the steady state), and per minute of send time.
fn latencies(all: &[(f32, f32)], faults: &[FaultLog], bound: Duration) -> Value {
    let b = bound.as_secs_f64();
    let quiet: Vec<f32> = all
        .iter()
        .filter(|(t, _)| {
            let t = f64::from(*t);
            !faults.iter().any(|f| f.start_s <= t && t <= f.end_s + b)
        })
        .map(|x| x.1)
        .collect();
    let mut minutes: std::collections::BTreeMap<u32, Vec<f32>> = Default::default();
    for (t, ms) in all {
        minutes.entry((t / 60.0) as u32).or_default().push(*ms);
    }
    let by_minute: Vec<Value> = minutes
        .into_iter()
        .map(|(m, v)| {
            let mut s = summary(v);
            s["minute"] = m.into();
            s
        })
        .collect();
    let mut out = summary(all.iter().map(|x| x.1).collect());
    out["quiet"] = summary(quiet);
    out["by_minute"] = by_minute.into();
    out
}

/// What the report is made of.
pub(super) struct Inputs<'a> {
    /// The command line that ran.
    pub command: String,
    /// How long the producers wrote.
    pub run: Duration,
    /// Warm-up left out of the RSS slope.
    pub warm: Duration,
    /// How far past its fault a stall may last.
    pub bound: Duration,
    /// Measured.
    pub measured: &'a mut Measured,
    /// The faults.
    pub faults: &'a [FaultLog],
    /// Bytes and messages acknowledged, messages never acknowledged.
    pub bytes: u64,
    /// See [`bytes`](Self::bytes).
    pub messages: u64,
    /// See [`bytes`](Self::bytes).
    pub failed: u64,
    /// The exactly-once check.
    pub checks: &'a [PartitionCheck],
}

/// The report as JSON.
pub(super) fn build(i: Inputs<'_>) -> Value {
    let warm = i.warm.as_secs_f64();
    let processes: Vec<Value> = i
        .measured
        .samples
        .iter()
        .map(|(name, s)| process(name, s, warm))
        .collect();
    let gb = i.bytes as f64 / 1e9;
    let sink_cpu: f64 = i
        .measured
        .samples
        .iter()
        .filter(|(name, _)| name.starts_with("sink-"))
        .filter_map(|(_, s)| s.last().map(|x| x.2))
        .sum();
    let latency = latencies(&i.measured.latencies, i.faults, i.bound);
    let stalls: Vec<Value> = i
        .measured
        .stalls
        .iter()
        .map(|s| stall(s, i.faults, i.bound))
        .collect();
    let within = stalls.iter().all(|s| s["within_bound"] != false);
    let exactly_once = !i.checks.is_empty() && i.checks.iter().all(|c| c.exact) && i.failed == 0;
    json!({"command": i.command,
           "minutes": i.run.as_secs_f64() / 60.0,
           "warm_up_s": warm,
           "stall_bound_s": i.bound.as_secs_f64(),
           "messages": i.messages, "bytes": i.bytes, "unacknowledged": i.failed,
           "latency_ms": latency,
           "sink_cpu_s": (sink_cpu * 100.0).round() / 100.0,
           "sink_cpu_s_per_gb": if gb > 0.0 { Some((sink_cpu / gb * 10.0).round() / 10.0) } else { None },
           "processes": processes,
           "faults": i.faults,
           "stalls": stalls,
           "reported_stalls": i.measured.reported,
           "failed_status_polls": i.measured.failed_polls,
           "partitions": i.checks,
           "exactly_once": exactly_once,
           "stalls_within_bound": within})
}

/// A stall with its cause (the fault before it) and whether it ended within the bound after
/// the last fault that overlapped it: faults that come while a partition is stalled (a short
/// run's are seconds apart) each extend what the stall may last.
fn stall(s: &Stall, faults: &[FaultLog], bound: Duration) -> Value {
    let len = s.end_s - s.start_s;
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let b = bound.as_secs_f64();
    let cause = cause(faults, s.start_s, bound).map(|i| &faults[i]);
    let last_end = faults
        .iter()
        .filter(|f| f.start_s <= s.end_s && f.end_s + b >= s.start_s)
        .map(|f| f.end_s)
        .fold(None, |a: Option<f64>, e| Some(a.map_or(e, |a| a.max(e))));
    let within = cause.map(|_| last_end.is_some_and(|e| s.end_s <= e + b));
    json!({"partition": s.partition, "start_s": round(s.start_s), "end_s": round(s.end_s),
           "seconds": round(len), "open": s.open,
           "cause": cause.map(|f| f.fault.clone()),
           "fault_s": cause.map(|f| round(f.end_s - f.start_s)),
           "last_overlapping_fault_end_s": last_end.map(round),
           "within_bound": within})
}

/// The report as text (a few lines per part).
pub(super) fn text(r: &Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "soak: {} min, {} messages, {} bytes, {} unacknowledged",
        r["minutes"], r["messages"], r["bytes"], r["unacknowledged"]
    );
    let l = &r["latency_ms"];
    let _ = writeln!(
        out,
        "latency produce->commit: p50 {} ms, p99 {} ms, max {} ms ({} samples)",
        l["p50"], l["p99"], l["max"], l["samples"]
    );
    let q = &l["quiet"];
    let _ = writeln!(
        out,
        "  of messages sent with no fault on or just ended: p50 {} ms, p99 {} ms ({} samples)",
        q["p50"], q["p99"], q["samples"]
    );
    let _ = writeln!(
        out,
        "sinks' CPU: {} s, {} CPU-s per GB produced",
        r["sink_cpu_s"], r["sink_cpu_s_per_gb"]
    );
    let _ = writeln!(out, "| process | lived s | RSS first / last / peak MB | slope MB/h after warm-up (samples) | CPU s |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for p in r["processes"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "| {} | {} | {} / {} / {} | {} ({}) | {} |",
            p["process"].as_str().unwrap_or("?"),
            p["lived_s"],
            p["rss_first_mb"],
            p["rss_last_mb"],
            p["rss_peak_mb"],
            p["rss_slope_mb_per_hour"],
            p["slope_samples"],
            p["cpu_s"]
        );
    }
    let _ = writeln!(
        out,
        "| fault | start s | end s | longest stall s (partitions stalled) |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let stalls = r["stalls"].as_array().cloned().unwrap_or_default();
    for f in r["faults"].as_array().into_iter().flatten() {
        let mine: Vec<&Value> = stalls
            .iter()
            .filter(|s| {
                s["cause"] == f["fault"]
                    && s["start_s"].as_f64() >= f["start_s"].as_f64().map(|x| x - 1.0)
            })
            .filter(|s| {
                s["start_s"].as_f64()
                    <= f["end_s"]
                        .as_f64()
                        .map(|x| x + r["stall_bound_s"].as_f64().unwrap_or(0.0))
            })
            .collect();
        let longest = mine
            .iter()
            .filter_map(|s| s["seconds"].as_f64())
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {longest:.1} ({}) |",
            f["fault"].as_str().unwrap_or("?"),
            f["start_s"].as_f64().unwrap_or(0.0),
            f["end_s"].as_f64().unwrap_or(0.0),
            mine.len()
        );
    }
    for f in r["faults"].as_array().into_iter().flatten() {
        if let Some(e) = f["error"].as_str() {
            let _ = writeln!(out, "fault {} failed: {e}", f["fault"]);
        }
    }
    if let Some(e) = r["check_error"].as_str() {
        let _ = writeln!(out, "the exactly-once check failed: {e}");
    }
    for s in stalls.iter().filter(|s| s["cause"].is_null()) {
        let _ = writeln!(
            out,
            "stall with no fault: partition {} from {} s for {} s",
            s["partition"], s["start_s"], s["seconds"]
        );
    }
    let _ = writeln!(
        out,
        "stalls the instances reported: {}",
        r["reported_stalls"].as_array().map_or(0, Vec::len)
    );
    let _ = writeln!(
        out,
        "every stall within its fault + {} s: {}",
        r["stall_bound_s"], r["stalls_within_bound"]
    );
    let _ = writeln!(
        out,
        "exactly once (SQL API, per partition): {}",
        r["exactly_once"]
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slope of points on a line is the line's; of a flat series, zero.
    #[test]
    fn slope_of_a_line_and_of_a_flat_series() {
        let line: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 3.0 * f64::from(i) + 1.0))
            .collect();
        assert!((slope(&line).unwrap() - 3.0).abs() < 1e-9);
        let flat: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), 5.0)).collect();
        assert!(slope(&flat).unwrap().abs() < 1e-12);
        assert_eq!(slope(&line[..2]), None);
    }

    /// Nearest-rank quantiles.
    #[test]
    fn quantiles_by_nearest_rank() {
        let mut v: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        assert_eq!(quantile(&mut v, 0.5), Some(50.0));
        assert_eq!(quantile(&mut v, 0.99), Some(99.0));
        assert_eq!(quantile(&mut v, 1.0), Some(100.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    /// A stall belongs to the last fault that began before it and ended within the bound.
    #[test]
    fn a_stall_belongs_to_the_fault_before_it() {
        let f = |name: &str, a: f64, b: f64| FaultLog {
            fault: name.into(),
            start_s: a,
            end_s: b,
            error: None,
        };
        let faults = [f("a", 10.0, 20.0), f("b", 40.0, 45.0)];
        let bound = Duration::from_secs(10);
        assert_eq!(cause(&faults, 12.0, bound), Some(0));
        assert_eq!(cause(&faults, 29.0, bound), Some(0));
        assert_eq!(cause(&faults, 35.0, bound), None);
        assert_eq!(cause(&faults, 44.0, bound), Some(1));
        assert_eq!(cause(&faults, 5.0, bound), None);
    }
}
