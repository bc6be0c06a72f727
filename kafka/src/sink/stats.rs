//! A partition's counters over the whole run (across assignments): written by its worker
//! (`partition.rs`) and its commits (`commits.rs`), read by the report, the progress line and
//! `--until-idle`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use snowpipe_streaming::RowErrorSummary;

/// Counters of one partition over the whole run (across assignments), read by the report.
#[derive(Debug)]
pub struct PartitionStats {
    /// Rows appended by this instance.
    pub rows: AtomicU64,
    /// Messages dead-lettered or skipped.
    pub dead: AtomicU64,
    /// Offsets deleted by the broker's retention before they landed.
    pub lost_to_retention: AtomicU64,
    /// Rows the server rejected.
    pub row_errors: std::sync::Mutex<RowErrorSummary>,
    /// The offsets of rejected rows that were located, the first `rejected::MOST_LISTED`.
    pub rejected_offsets: std::sync::Mutex<Vec<i64>>,
    /// Rejected rows written to the dead-letter topic (read again from Kafka, `refetch.rs`).
    pub rejected_dead: AtomicU64,
    /// The offsets appended, to locate rejected rows (`rejected.rs`).
    pub(crate) appended_runs: std::sync::Mutex<super::rejected::AppendedRuns>,
    /// The last offset appended (-1: none).
    pub appended: AtomicI64,
    /// The last offset read, row or dead letter (-1: none).
    pub seen: AtomicI64,
    /// A batch is being appended (or dead-lettered) right now.
    pub busy: std::sync::atomic::AtomicBool,
    /// The committed offset (-1: none known).
    pub committed: AtomicI64,
    /// Append → commit latency: sum and count (ms).
    pub commit_ms_sum: AtomicU64,
    /// See `commit_ms_sum`.
    pub commit_count: AtomicU64,
    /// When this instance first started and last finished appending rows of the partition,
    /// in microseconds since the run's start, plus one (0: never). The closing report's
    /// `appended` span comes from these.
    pub first_append_us: AtomicU64,
    /// See `first_append_us`.
    pub last_append_us: AtomicU64,
}

impl Default for PartitionStats {
    fn default() -> Self {
        Self {
            rows: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            lost_to_retention: AtomicU64::new(0),
            row_errors: std::sync::Mutex::default(),
            rejected_offsets: std::sync::Mutex::default(),
            rejected_dead: AtomicU64::new(0),
            appended_runs: std::sync::Mutex::default(),
            appended: AtomicI64::new(-1),
            seen: AtomicI64::new(-1),
            busy: std::sync::atomic::AtomicBool::new(false),
            committed: AtomicI64::new(-1),
            commit_ms_sum: AtomicU64::new(0),
            commit_count: AtomicU64::new(0),
            first_append_us: AtomicU64::new(0),
            last_append_us: AtomicU64::new(0),
        }
    }
}

impl PartitionStats {
    /// Notes an append that started at `started_us` and ended at `ended_us` (see
    /// `first_append_us`).
    pub fn appended_between(&self, started_us: u64, ended_us: u64) {
        let _ = self.first_append_us.compare_exchange(
            0,
            started_us,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.last_append_us.fetch_max(ended_us, Ordering::Relaxed);
    }

    /// Whether everything appended is committed and no batch is on its way.
    pub fn settled(&self) -> bool {
        !self.busy.load(Ordering::Relaxed)
            && self.appended.load(Ordering::Relaxed) <= self.committed.load(Ordering::Relaxed)
    }

    /// Whether everything up to the partition's high watermark (`high`: the next offset to be
    /// written; -1: unknown) was read.
    pub fn read_to(&self, high: i64) -> bool {
        high >= 0 && self.seen.load(Ordering::Relaxed) + 1 >= high
    }
}
