//! What an instance tells: a progress line on stderr every 5 s (the memory in use against its
//! budget, then per partition: rows/s, consumer lag, commit latency; with `--log-format json`
//! an `INFO` event of target `snowpipe_kafka::progress` with `elapsed_s`,
//! `memory_used_bytes`, `memory_budget_bytes` and `partitions`, an array of `topic`,
//! `partition`, `rows_per_s`, `lag`, `commit_ms`, `dead_lettered`, `rejected`) and, last on
//! stdout, what it consumed:
//! `{"consumed": {"<topic>/<partition>": {"rows": n, "dead_letters": d, "lost_to_retention": r,
//! "row_errors": {"count", "first_message", "first_at_or_before", "last_at_or_before"},
//! "rejected_offsets": [offset text, …] (the rejected rows located, `rejected.rs`),
//! "rejected_dead_letters": n (of those, written to `--dead-letter-topic`), "committed": "<offset>"}, …}, "appended": {"rows": n, "seconds": s}, "source": {"pauses": n,
//! "resumes": n, "fetched_messages": n, "fetched_bytes": n, "broker_rx_bytes": n}}`, where
//! `appended` spans from the start of this instance's first append of rows to the end of its
//! last, over all its partitions (absent when it appended nothing), and `source` says how often
//! a partition was paused against the memory budget and what librdkafka fetched by its latest
//! statistics (more than was consumed when it fetched messages again). For a run that reads a backlog and
//! ends (`--until-idle`) that is its intake, apart from the lag and the commit after; for a
//! long run it includes every idle stretch.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use snowpipe_streaming::RowErrorSummary;

use crate::rows::batch::Budget;
use crate::rows::{KafkaOffset, TopicPartition};
use crate::sink::stats::PartitionStats;
use crate::source::consumer::Lags;

const EVERY: Duration = Duration::from_secs(5);

/// The periodic progress line.
pub(crate) struct Progress {
    quiet: bool,
    last: Instant,
    rows_then: BTreeMap<TopicPartition, u64>,
}

impl Progress {
    /// Progress lines unless `quiet`.
    pub(crate) fn new(quiet: bool) -> Self {
        Self {
            quiet,
            last: Instant::now(),
            rows_then: BTreeMap::new(),
        }
    }

    /// Prints a line when 5 s have passed since the last.
    pub(crate) fn tick(
        &mut self,
        epoch: Instant,
        stats: &BTreeMap<TopicPartition, Arc<PartitionStats>>,
        lags: &Lags,
        budget: &Budget,
    ) {
        let elapsed = self.last.elapsed();
        if self.quiet || elapsed < EVERY || stats.is_empty() {
            return;
        }
        self.last = Instant::now();
        let lags = lags.lock().map(|l| l.clone()).unwrap_or_default();
        let parts: Vec<PartProgress<'_>> = stats
            .iter()
            .map(|(part, s)| {
                let rows = s.rows.load(Ordering::Relaxed);
                let before = self.rows_then.insert(part.clone(), rows).unwrap_or(0);
                let rate = (rows - before) as f64 / elapsed.as_secs_f64();
                PartProgress {
                    part,
                    rate,
                    lag: lags.get(part).map(|l| l.lag).filter(|l| *l >= 0),
                    commit_ms: s
                        .commit_ms_sum
                        .load(Ordering::Relaxed)
                        .checked_div(s.commit_count.load(Ordering::Relaxed)),
                    dead: s.dead.load(Ordering::Relaxed),
                    rejected: s.row_errors.lock().map_or(0, |r| r.count()),
                }
            })
            .collect();
        let elapsed = epoch.elapsed().as_secs_f64();
        let (used, limit) = (budget.used(), budget.limit());
        let mut fields = Map::new();
        fields.insert("elapsed_s".into(), json!((elapsed * 10.0).round() / 10.0));
        fields.insert("memory_used_bytes".into(), json!(used));
        fields.insert("memory_budget_bytes".into(), json!(limit));
        fields.insert(
            "partitions".into(),
            parts.iter().map(PartProgress::json).collect(),
        );
        snowpipe_cli_support::log::progress("snowpipe_kafka::progress", fields, || {
            let parts: Vec<String> = parts.iter().map(PartProgress::text).collect();
            format!(
                "[{elapsed:>6.1}s] messages in memory {:.1}/{:.1} MiB (their quarter of --memory-budget) | {}",
                mib(used),
                mib(limit),
                parts.join(" | ")
            )
        });
    }
}

/// One partition's figures in a progress report.
struct PartProgress<'a> {
    part: &'a TopicPartition,
    rate: f64,
    /// `None`: not known yet.
    lag: Option<i64>,
    /// The mean commit latency; `None` before the first commit.
    commit_ms: Option<u64>,
    dead: u64,
    rejected: u64,
}

impl PartProgress<'_> {
    /// `orders/0: 120 rows/s lag 4 commit 310 ms`, then `dead-lettered n` and `rejected n`
    /// when not 0.
    fn text(&self) -> String {
        let lag = self.lag.map_or("?".to_owned(), |l| l.to_string());
        let commit = self
            .commit_ms
            .map_or("-".to_owned(), |ms| format!("{ms} ms"));
        let mut line = format!(
            "{}: {:.0} rows/s lag {lag} commit {commit}",
            self.part, self.rate
        );
        if self.dead > 0 {
            line.push_str(&format!(" dead-lettered {}", self.dead));
        }
        if self.rejected > 0 {
            line.push_str(&format!(" rejected {}", self.rejected));
        }
        line
    }

    /// The same figures as fields (`lag` and `commit_ms` `null` when not known).
    fn json(&self) -> Value {
        json!({
            "topic": &*self.part.topic,
            "partition": self.part.partition,
            "rows_per_s": (self.rate * 10.0).round() / 10.0,
            "lag": self.lag,
            "commit_ms": self.commit_ms,
            "dead_lettered": self.dead,
            "rejected": self.rejected,
        })
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

/// One partition in the closing report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// Rows appended by this instance.
    pub rows: u64,
    /// Messages dead-lettered or skipped.
    pub dead_letters: u64,
    /// Offsets deleted by the broker's retention before they landed.
    pub lost_to_retention: u64,
    /// Rows the server rejected (row errors: Snowflake's `ON_ERROR = CONTINUE`; the committed
    /// token moves past them), from the SDK's `Channel::events`.
    pub row_errors: RowErrorSummary,
    /// The offsets of the rejected rows that were located (`rejected.rs`), the first 100.
    pub rejected_offsets: Vec<i64>,
    /// Rejected rows written to the dead-letter topic (`--dead-letter-topic`; read again
    /// from Kafka by offset).
    pub rejected_dead_letters: u64,
    /// The committed offset, if any.
    pub committed: Option<KafkaOffset>,
}

/// The closing report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Per partition held during the run.
    pub partitions: BTreeMap<TopicPartition, Consumed>,
    /// From this instance's first append of a row to its last, over all its partitions
    /// (`None`: it appended nothing).
    pub append_span: Option<Duration>,
    /// What the source did (`source::counts`: pauses, resumes, what librdkafka fetched), when
    /// known.
    pub source: Option<Value>,
}

impl Report {
    /// From the partitions' counters.
    pub fn new(stats: &BTreeMap<TopicPartition, Arc<PartitionStats>>) -> Self {
        let partitions = stats
            .iter()
            .map(|(part, s)| {
                let c = s.committed.load(Ordering::Relaxed);
                let consumed = Consumed {
                    rows: s.rows.load(Ordering::Relaxed),
                    dead_letters: s.dead.load(Ordering::Relaxed),
                    lost_to_retention: s.lost_to_retention.load(Ordering::Relaxed),
                    row_errors: s.row_errors.lock().map(|r| r.clone()).unwrap_or_default(),
                    rejected_offsets: s
                        .rejected_offsets
                        .lock()
                        .map(|r| r.clone())
                        .unwrap_or_default(),
                    rejected_dead_letters: s.rejected_dead.load(Ordering::Relaxed),
                    committed: (c >= 0).then_some(KafkaOffset::new(c)),
                };
                (part.clone(), consumed)
            })
            .collect();
        Self {
            partitions,
            append_span: append_span(stats.values().map(|s| {
                (
                    s.first_append_us.load(Ordering::Relaxed),
                    s.last_append_us.load(Ordering::Relaxed),
                )
            })),
            source: None,
        }
    }

    /// With what the source did (the closing line's `source`).
    #[must_use]
    pub fn with_source(mut self, source: Value) -> Self {
        self.source = Some(source);
        self
    }

    /// The last stdout line.
    pub fn json(&self) -> Value {
        let consumed: Map<String, Value> = self
            .partitions
            .iter()
            .map(|(part, c)| {
                (
                    part.to_string(),
                    json!({
                        "rows": c.rows,
                        "dead_letters": c.dead_letters,
                        "lost_to_retention": c.lost_to_retention,
                        "row_errors": &c.row_errors,
                        "rejected_offsets": c.rejected_offsets.iter().map(i64::to_string).collect::<Vec<_>>(),
                        "rejected_dead_letters": c.rejected_dead_letters,
                        "committed": c.committed.map(|c| c.to_string()),
                    }),
                )
            })
            .collect();
        let mut report = json!({ "consumed": consumed });
        if let Some(span) = self.append_span {
            let rows: u64 = self.partitions.values().map(|c| c.rows).sum();
            report["appended"] = json!({"rows": rows, "seconds": span.as_secs_f64()});
        }
        if let Some(source) = &self.source {
            report["source"] = source.clone();
        }
        report
    }
}

/// From the earliest first append to the latest last one, of partitions' (first, last) append
/// times in microseconds since the run's start (`PartitionStats::first_append_us`; 0: never
/// appended).
fn append_span(times: impl Iterator<Item = (u64, u64)>) -> Option<Duration> {
    let (first, last) =
        times
            .filter(|(first, _)| *first > 0)
            .fold(None, |acc: Option<(u64, u64)>, (f, l)| {
                Some(acc.map_or((f, l), |(af, al)| (af.min(f), al.max(l))))
            })?;
    Some(Duration::from_micros(last.saturating_sub(first)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The span runs from the earliest first append to the latest last one, whichever
    /// partitions they were on; a partition that appended nothing does not stretch it.
    #[test]
    fn the_append_span_covers_every_partition_that_appended() {
        let span =
            append_span([(0, 0), (2_000_000, 2_500_000), (1_500_000, 3_250_000)].into_iter());
        assert_eq!(span, Some(Duration::from_micros(1_750_000)));
        assert_eq!(append_span([(0, 0)].into_iter()), None);
    }

    /// The closing line carries the span and the rows appended, and leaves it out when the
    /// instance appended nothing.
    #[test]
    fn the_closing_line_says_how_long_the_intake_took() {
        let part = |first, last, rows| {
            let s = PartitionStats::default();
            s.rows.store(rows, Ordering::Relaxed);
            if first > 0 {
                s.appended_between(first, last);
            }
            Arc::new(s)
        };
        let stats: BTreeMap<TopicPartition, Arc<PartitionStats>> = [
            (TopicPartition::new("t", 0), part(1_000_000, 1_400_000, 30)),
            (TopicPartition::new("t", 1), part(1_100_000, 1_600_000, 12)),
        ]
        .into_iter()
        .collect();
        let line = Report::new(&stats).json();
        assert_eq!(line["appended"]["rows"], 42);
        assert!((line["appended"]["seconds"].as_f64().unwrap() - 0.6).abs() < 1e-9);

        let idle: BTreeMap<TopicPartition, Arc<PartitionStats>> =
            [(TopicPartition::new("t", 0), part(0, 0, 0))]
                .into_iter()
                .collect();
        assert!(Report::new(&idle).json().get("appended").is_none());
    }
}
