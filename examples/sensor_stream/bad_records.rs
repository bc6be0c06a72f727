//! Records that did not become rows, for the closing report: messages dead-lettered by the
//! consumer (see `dead_letter.rs`), and rows the server rejected (row errors, Snowflake's
//! `ON_ERROR = CONTINUE`: the committed token moves past them, the SDK reports them on
//! `Channel::events`).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::consume::{lock, ConsumeStats};
use crate::report::{format_table, thousands};

/// The row errors one shard's channel reported to this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowErrors {
    /// Rows rejected.
    pub count: u64,
    /// The server's message for the first report.
    pub first_message: Option<String>,
    /// The first report's offset bound: its failing rows are at or before this sequence.
    pub first_at_or_before: Option<u64>,
    /// The last report's offset bound.
    pub last_at_or_before: Option<u64>,
}

impl RowErrors {
    /// Adds one report of the SDK: `new_errors` rows, the server's last message, and the
    /// stream sequence the failing rows are at or before.
    pub fn record(&mut self, new_errors: u64, message: Option<&str>, at_or_before: Option<u64>) {
        if new_errors == 0 {
            return;
        }
        if self.count == 0 {
            self.first_message = message.map(str::to_string);
            self.first_at_or_before = at_or_before;
        }
        self.count += new_errors;
        if at_or_before.is_some() {
            self.last_at_or_before = at_or_before;
        }
    }

    /// `{"count", "first_message", "first_at_or_before", "last_at_or_before"}` for the closing
    /// JSON line (sequences as strings, like the committed token).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count,
            "first_message": self.first_message,
            "first_at_or_before": self.first_at_or_before.map(|s| s.to_string()),
            "last_at_or_before": self.last_at_or_before.map(|s| s.to_string()),
        })
    }
}

/// The closing report's bad-record section: one line when there were none, else a table per
/// shard (dead-lettered now, found already dead-lettered, rejected by the server) and the first
/// row error of each shard that had some. `store` names the dead-letter stream and subjects.
pub fn format_bad_records(stats: &ConsumeStats, store: &str) -> String {
    let mut rows = Vec::new();
    let mut notes = String::new();
    let (mut dead, mut again, mut rejected) = (0, 0, 0);
    for (shard, s) in stats.shards.iter().enumerate() {
        let d = s.dead_lettered.load(Ordering::Relaxed);
        let a = s.already_dead_lettered.load(Ordering::Relaxed);
        let r = lock(&s.row_errors).clone();
        (dead, again, rejected) = (dead + d, again + a, rejected + r.count);
        rows.push(vec![
            format!("sensors.{shard}"),
            thousands(d),
            thousands(a),
            thousands(r.count),
        ]);
        if r.count > 0 {
            let at = match (r.first_at_or_before, r.last_at_or_before) {
                (Some(a), Some(b)) if a != b => format!("at or before sequences {a} … {b}"),
                (Some(a), _) => format!("at or before sequence {a}"),
                (None, _) => "at unknown sequences".to_string(),
            };
            let _ = writeln!(
                notes,
                "  sensors.{shard}: rows rejected {at}; first: {}",
                r.first_message.as_deref().unwrap_or("(no message)")
            );
        }
    }
    if dead + again + rejected == 0 {
        return format!(
            "Bad records: none (no message dead-lettered, no row rejected by the server; dead \
             letters go to {store})\n"
        );
    }
    rows.push(vec![
        "TOTAL".into(),
        thousands(dead),
        thousands(again),
        thousands(rejected),
    ]);
    format!(
        "Bad records (dead letters: {store}; the reason is in each one's Snowpipe-Error header)\n{}{notes}",
        format_table(
            &["SHARD", "DEAD_LETTERED", "ALREADY_DEAD_LETTERED", "ROW_ERRORS"],
            &rows
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_errors_keep_the_first_message_and_the_bounds() {
        let mut r = RowErrors::default();
        r.record(0, Some("ignored"), Some(1));
        assert_eq!(r, RowErrors::default());
        r.record(2, Some("String 'OVERHEATED' is too long"), Some(12));
        r.record(1, Some("Numeric value '1234567' is out of range"), Some(40));
        r.record(1, None, None);
        assert_eq!(r.count, 4);
        assert_eq!(
            r.first_message.as_deref(),
            Some("String 'OVERHEATED' is too long")
        );
        assert_eq!(
            (r.first_at_or_before, r.last_at_or_before),
            (Some(12), Some(40))
        );
        assert_eq!(r.to_json()["last_at_or_before"], "40");
    }

    #[test]
    fn the_report_counts_every_kind_per_shard() {
        let stats = ConsumeStats::new(2);
        let store = "stream SENSORS_DLQ, subjects SENSORS.dlq.<shard>";
        assert!(format_bad_records(&stats, store).starts_with("Bad records: none"));
        stats.shards[1].dead_lettered.store(3, Ordering::Relaxed);
        stats.shards[0]
            .already_dead_lettered
            .store(1, Ordering::Relaxed);
        lock(&stats.shards[1].row_errors).record(2, Some("too long"), Some(9));
        let report = format_bad_records(&stats, store);
        assert!(
            report.contains("  sensors.1              3                      0           2\n"),
            "{report}"
        );
        assert!(
            report.contains("  TOTAL                  3                      1           2\n"),
            "{report}"
        );
        assert!(
            report.contains("sensors.1: rows rejected at or before sequence 9; first: too long"),
            "{report}"
        );
        lock(&stats.shards[1].row_errors).record(1, Some("out of range"), Some(15));
        let report = format_bad_records(&stats, store);
        assert!(
            report.contains(
                "sensors.1: rows rejected at or before sequences 9 … 15; first: too long"
            ),
            "{report}"
        );
    }
}
