//! Records that did not become rows, for the closing report: records moved to the
//! queue's `dead_letters` table (see `queue.rs`), and rows the server rejected (row errors,
//! Snowflake's `ON_ERROR = CONTINUE`: the committed token moves past them, the SDK reports
//! them on `Channel::events`).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use snowpipe_streaming::RowErrorSummary;

use crate::common::format_table;
use crate::common::thousands;
use crate::ski_resort::model::Table;
use crate::ski_resort::queue::LedgerEntry;
use crate::ski_resort::streamer::Stats;

/// Where a table's rejected rows are, in queue ids.
fn range(errors: &RowErrorSummary) -> String {
    match (errors.first_at_or_before(), errors.last_at_or_before()) {
        (Some(a), Some(b)) if a != b => format!("ids at or before {a} … {b}"),
        (Some(a), _) => format!("ids at or before {a}"),
        (None, _) => "at unknown ids".to_string(),
    }
}

/// The closing report's bad-record section: one line when there were none, else a table per
/// queue table (dead-lettered in total and by this run, rejected by the server) with the first
/// reason of each. `first_dead` is [`crate::ski_resort::queue::Queue::first_dead_letters`].
pub(super) fn format_bad_records(
    ledger: &[LedgerEntry; 3],
    first_dead: &[Option<(u64, String)>; 3],
    stats: Option<&Stats>,
) -> String {
    let mut rows = Vec::new();
    let mut notes = String::new();
    let mut any = false;
    for t in Table::ALL {
        let i = t.index();
        let dead = ledger[i].dead_lettered;
        let (now, errors) = stats.map_or((0, RowErrorSummary::default()), |s| {
            let s = &s.tables[i];
            (
                s.dead_lettered.load(Ordering::Relaxed),
                s.row_errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            )
        });
        any |= dead > 0 || errors.count() > 0;
        rows.push(vec![
            t.name().to_string(),
            thousands(dead),
            thousands(now),
            thousands(errors.count()),
        ]);
        if let Some((id, reason)) = &first_dead[i] {
            let _ = writeln!(notes, "  {t}: first dead letter id {id}: {reason}");
        }
        if errors.count() > 0 {
            let _ = writeln!(
                notes,
                "  {t}: rows rejected by the server, {}; first: {}",
                range(&errors),
                errors.first_message().unwrap_or("no message")
            );
        }
    }
    if !any {
        return "\nBad records: none (no dead letters, no rows rejected by the server)\n".into();
    }
    let mut out = String::from(
        "\nBad records (dead letters: SELECT * FROM dead_letters in the queue file)\n",
    );
    out.push_str(&format_table(
        &["TABLE", "DEAD_LETTERED", "THIS_RUN", "REJECTED_BY_SERVER"],
        &rows,
    ));
    out.push_str(&notes);
    out
}

#[cfg(test)]
mod tests {
    use snowpipe_streaming::{OffsetToken, RowErrorEvent};

    use super::*;

    fn event(new_errors: u64, total: u64, message: &str, id: u64) -> RowErrorEvent {
        RowErrorEvent::new("SEASON_PASS", new_errors, total)
            .with_last_error(message, OffsetToken::from(id))
    }

    #[test]
    fn the_range_names_the_first_and_last_ids() {
        let mut e = RowErrorSummary::default();
        assert_eq!(range(&e), "at unknown ids");
        e.record(&event(2, 2, "first", 10));
        assert_eq!(range(&e), "ids at or before 10");
        e.record(&event(1, 3, "second", 25));
        assert_eq!(range(&e), "ids at or before 10 … 25");
    }

    #[test]
    fn section_names_counts_reasons_and_rejections() {
        let none = format_bad_records(&[LedgerEntry::default(); 3], &Default::default(), None);
        assert!(none.contains("Bad records: none"), "{none}");

        let mut ledger = [LedgerEntry::default(); 3];
        ledger[Table::LiftRide.index()].dead_lettered = 3;
        let mut first: [Option<(u64, String)>; 3] = Default::default();
        first[Table::LiftRide.index()] = Some((17, "not JSON (syntax error)".into()));
        let stats = Stats::default();
        stats.tables[Table::LiftRide.index()]
            .dead_lettered
            .store(2, Ordering::Relaxed);
        stats.tables[Table::SeasonPass.index()]
            .row_errors
            .lock()
            .unwrap()
            .record(&event(4, 4, "bad date", 40));
        let out = format_bad_records(&ledger, &first, Some(&stats));
        for part in [
            "DEAD_LETTERED",
            "LIFT_RIDE: first dead letter id 17: not JSON (syntax error)",
            "SEASON_PASS: rows rejected by the server, ids at or before 40; first: bad date",
        ] {
            assert!(out.contains(part), "{out} lacks {part:?}");
        }
        let lift = out
            .lines()
            .find(|l| l.trim_start().starts_with("LIFT_RIDE "))
            .unwrap();
        let cells: Vec<&str> = lift.split_whitespace().collect();
        assert_eq!(cells, ["LIFT_RIDE", "3", "2", "0"]);
    }
}
