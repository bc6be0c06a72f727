//! Records that did not become rows, for the closing report: messages dead-lettered by the
//! consumer (see `dead_letter.rs`), and rows the server rejected (row errors, Snowflake's
//! `ON_ERROR = CONTINUE`: the committed token moves past them, the SDK reports them on
//! `Channel::events`).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::common::{format_table, thousands};
use crate::sensor_stream::consume::{lock, ConsumeStats};

/// The closing report's bad-record section: one line when there were none, else a table per
/// shard (dead-lettered now, found already dead-lettered, rejected by the server) and the first
/// row error of each shard that had some. `store` names the dead-letter stream and subjects.
pub(super) fn format_bad_records(stats: &ConsumeStats, store: &str) -> String {
    let mut rows = Vec::new();
    let mut notes = String::new();
    let (mut dead, mut again, mut rejected) = (0, 0, 0);
    for (shard, s) in stats.shards.iter().enumerate() {
        let d = s.dead_lettered.load(Ordering::Relaxed);
        let a = s.already_dead_lettered.load(Ordering::Relaxed);
        let r = lock(&s.row_errors).clone();
        (dead, again, rejected) = (dead + d, again + a, rejected + r.count());
        rows.push(vec![
            format!("sensors.{shard}"),
            thousands(d),
            thousands(a),
            thousands(r.count()),
        ]);
        if r.count() > 0 {
            let at = match (r.first_at_or_before(), r.last_at_or_before()) {
                (Some(a), Some(b)) if a != b => format!("at or before sequences {a} … {b}"),
                (Some(a), _) => format!("at or before sequence {a}"),
                (None, _) => "at unknown sequences".to_string(),
            };
            let _ = writeln!(
                notes,
                "  sensors.{shard}: rows rejected {at}; first: {}",
                r.first_message().unwrap_or("(no message)")
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
    use snowpipe_streaming::{OffsetToken, RowErrorEvent};

    use super::*;

    #[test]
    fn the_report_counts_every_kind_per_shard() {
        let stats = ConsumeStats::new(2);
        let store = "stream SENSORS_DLQ, subjects SENSORS.dlq.<shard>";
        assert!(format_bad_records(&stats, store).starts_with("Bad records: none"));
        stats.shards[1].dead_lettered.store(3, Ordering::Relaxed);
        stats.shards[0]
            .already_dead_lettered
            .store(1, Ordering::Relaxed);
        lock(&stats.shards[1].row_errors).record(
            &RowErrorEvent::new("S_1", 2, 2).with_last_error("too long", OffsetToken::from(9)),
        );
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
        lock(&stats.shards[1].row_errors).record(
            &RowErrorEvent::new("S_1", 1, 3).with_last_error("out of range", OffsetToken::from(15)),
        );
        let report = format_bad_records(&stats, store);
        assert!(
            report.contains(
                "sensors.1: rows rejected at or before sequences 9 … 15; first: too long"
            ),
            "{report}"
        );
    }
}
