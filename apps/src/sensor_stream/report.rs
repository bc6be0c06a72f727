//! The live progress line and the closing report: rows per shard, the exact STREAM_SEQ
//! reconciliation (the broker's sequences vs the table's and the dead letters), throughput and
//! latency. The bad-record section is `bad_records.rs`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::stream::Stream;
use serde::Serialize;
use tokio::sync::watch;

use crate::common::say::say;
use crate::sensor_stream::broker;
use crate::sensor_stream::consume::{lock, ConsumeStats};
use crate::sensor_stream::latency::Histogram;
use crate::sensor_stream::publish::PublishStats;

use crate::common::{format_table, thousands};

/// One shard's reconciliation: the broker's sequences against the landed STREAM_SEQ values
/// and the dead-lettered sequences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Reconciliation {
    /// The shard.
    pub shard: u32,
    /// Messages the stream holds on the shard's subject.
    pub in_stream: u64,
    /// Rows in the table for the shard.
    pub landed: u64,
    /// Stream sequences with no row that are in the dead-letter stream.
    pub dead_lettered: u64,
    /// Stream sequences with no row and no dead letter.
    pub lost: u64,
    /// Rows whose STREAM_SEQ another row of the shard already has.
    pub duplicated: u64,
    /// Distinct STREAM_SEQ values the stream does not hold on the subject.
    pub extra: u64,
}

impl Reconciliation {
    /// Compares `stream` (the shard's sequences) with `landed` (its rows' STREAM_SEQ) and `dead`
    /// (the source sequences of its dead letters).
    pub(super) fn of(shard: u32, stream: &[u64], landed: &[u64], dead: &[u64]) -> Self {
        let mut want = stream.to_vec();
        want.sort_unstable();
        want.dedup();
        let mut got = landed.to_vec();
        got.sort_unstable();
        let total = got.len() as u64;
        got.dedup();
        let duplicated = total - got.len() as u64;
        let dead: std::collections::HashSet<u64> = dead.iter().copied().collect();
        let (mut i, mut j, mut missing, mut extra) = (0, 0, Vec::new(), 0u64);
        while i < want.len() || j < got.len() {
            match (want.get(i), got.get(j)) {
                (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
                (Some(a), Some(b)) if a < b => {
                    missing.push(*a);
                    i += 1;
                }
                (Some(a), None) => {
                    missing.push(*a);
                    i += 1;
                }
                _ => (j, extra) = (j + 1, extra + 1),
            }
        }
        let dead_lettered = missing.iter().filter(|s| dead.contains(s)).count() as u64;
        Reconciliation {
            shard,
            in_stream: want.len() as u64,
            landed: total,
            dead_lettered,
            lost: missing.len() as u64 - dead_lettered,
            duplicated,
            extra,
        }
    }

    /// Every stream sequence landed once, and nothing else.
    pub(super) fn exact(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.extra == 0
    }
}

/// The reconciliation table.
pub(super) fn format_reconciliation(recs: &[Reconciliation], committed: &[u64]) -> String {
    let rows: Vec<Vec<String>> = recs
        .iter()
        .map(|r| {
            vec![
                format!("sensors.{}", r.shard),
                thousands(r.in_stream),
                thousands(r.landed),
                thousands(r.dead_lettered),
                committed
                    .get(r.shard as usize)
                    .map_or("-".into(), |c| c.to_string()),
                thousands(r.lost),
                thousands(r.duplicated),
                thousands(r.extra),
                if r.exact() {
                    "exactly once"
                } else {
                    "MISMATCH"
                }
                .to_string(),
            ]
        })
        .collect();
    format_table(
        &[
            "SHARD",
            "IN_STREAM",
            "LANDED",
            "DEAD_LETTERED",
            "COMMITTED_SEQ",
            "LOST",
            "DUPLICATED",
            "EXTRA",
            "STREAM_SEQ",
        ],
        &rows,
    )
}

/// Throughput and latency per shard and in total.
pub(super) fn format_throughput(stats: &ConsumeStats, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let mut all = Histogram::default();
    let mut rows = Vec::new();
    let mut total = 0;
    for (shard, s) in stats.shards.iter().enumerate() {
        let h = lock(&s.latency).clone();
        all.merge(&h);
        let n = s.committed_rows.load(Ordering::Relaxed);
        total += n;
        rows.push(latency_row(
            &format!("sensors.{shard}"),
            n,
            secs,
            &h,
            s.sessions.load(Ordering::Relaxed),
        ));
    }
    let sessions = stats
        .shards
        .iter()
        .map(|s| s.sessions.load(Ordering::Relaxed))
        .sum();
    rows.push(latency_row("TOTAL", total, secs, &all, sessions));
    format_table(
        &[
            "SHARD",
            "COMMITTED",
            "ROWS/S",
            "P50_MS",
            "P90_MS",
            "P99_MS",
            "MAX_MS",
            "SESSIONS",
        ],
        &rows,
    )
}

fn latency_row(name: &str, n: u64, secs: f64, h: &Histogram, sessions: u64) -> Vec<String> {
    let p = |q| h.percentile(q).map_or("-".into(), thousands);
    vec![
        name.to_string(),
        thousands(n),
        thousands((n as f64 / secs) as u64),
        p(50.0),
        p(90.0),
        p(99.0),
        if h.count() > 0 {
            thousands(h.max())
        } else {
            "-".into()
        },
        sessions.to_string(),
    ]
}

/// Prints a progress line every second until `stop`: published and committed rates, the
/// latency of the rows committed in that second, each shard's consumer lag (the shard's last
/// stream sequence − the last one committed or dead-lettered), and, once there are any, the
/// messages dead-lettered and the rows the server rejected.
pub(super) fn spawn_progress(
    stream: Stream,
    publish: Option<Arc<PublishStats>>,
    consume: Option<Arc<ConsumeStats>>,
    shards: u32,
    to_stderr: bool,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let (mut published_before, mut committed_before) = (0, 0);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let mut line = format!("[{:>6.1}s]", started.elapsed().as_secs_f64());
            if let Some(p) = &publish {
                let n = p.total();
                let _ = write!(
                    line,
                    " published {} ({}/s)",
                    thousands(n),
                    thousands(n - published_before)
                );
                published_before = n;
            }
            if let Some(c) = &consume {
                let mut window = Histogram::default();
                let mut committed = 0;
                let mut lags = Vec::new();
                let (mut dead, mut rejected) = (0, 0);
                for (shard, s) in c.shards.iter().enumerate().take(shards as usize) {
                    committed += s.committed_rows.load(Ordering::Relaxed);
                    dead += s.dead_lettered.load(Ordering::Relaxed);
                    rejected += lock(&s.row_errors).count();
                    window.merge(&std::mem::take(&mut *lock(&s.window)));
                    if let Ok(last) = broker::last_seq(&stream, shard as u32).await {
                        s.last_seq.store(last, Ordering::Relaxed);
                    }
                    let lag = s
                        .last_seq
                        .load(Ordering::Relaxed)
                        .saturating_sub(s.through_seq.load(Ordering::Relaxed));
                    lags.push(lag.to_string());
                }
                let _ = write!(
                    line,
                    " | committed {} ({}/s) latency {} | lag(seq) {}",
                    thousands(committed),
                    thousands(committed - committed_before),
                    window.summary(),
                    lags.join(" ")
                );
                if dead > 0 {
                    let _ = write!(line, " | dead-lettered {}", thousands(dead));
                }
                if rejected > 0 {
                    let _ = write!(line, " | rejected by the server {}", thousands(rejected));
                }
                committed_before = committed;
            }
            if to_stderr {
                say!("{line}");
            } else {
                println!("{line}");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciliation_counts_lost_duplicated_and_extra_sequences() {
        let exact = Reconciliation::of(0, &[3, 7, 9], &[9, 3, 7], &[]);
        assert!(exact.exact());
        assert_eq!((exact.in_stream, exact.landed), (3, 3));
        let r = Reconciliation::of(1, &[3, 7, 9, 12], &[3, 3, 9, 10, 12, 12, 12], &[]);
        assert_eq!((r.lost, r.duplicated, r.extra), (1, 3, 1));
        assert!(!r.exact());
        let empty = Reconciliation::of(2, &[], &[], &[]);
        assert!(empty.exact());
        assert_eq!(Reconciliation::of(3, &[1, 2], &[], &[]).lost, 2);
        assert_eq!(Reconciliation::of(3, &[], &[5], &[]).extra, 1);
    }

    #[test]
    fn dead_lettered_sequences_are_not_lost() {
        let r = Reconciliation::of(0, &[3, 4, 7, 9], &[3, 9], &[4, 4, 8]);
        assert_eq!((r.dead_lettered, r.lost, r.extra), (1, 1, 0));
        assert!(!r.exact());
        let r = Reconciliation::of(0, &[3, 4, 7, 9], &[3, 9], &[4, 7]);
        assert_eq!(
            (r.in_stream, r.landed, r.dead_lettered, r.lost),
            (4, 2, 2, 0)
        );
        assert!(r.exact());
    }
}
