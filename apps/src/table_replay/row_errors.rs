//! Rows the server rejected (row errors, Snowflake's `ON_ERROR = CONTINUE`): the committed
//! token moves past them and the SDK reports them on `Channel::events`, summed in a
//! `RowErrorSummary`. They are not in the destination table; the report names how many, the
//! first message and the keys they are at or before.
//!
//! The count is exact: reports the receiver missed (it fell behind the SDK's 64 queued
//! reports) are counted from the server's cumulative count, by the next report received or a
//! catch-up from the channel's status. The channel's last report is always among those
//! still queued, so draining after it is closed counts every row rejected since the summary's
//! baseline (`RowErrorSummary::since`, the status when replay opened the channel).

use snowpipe_streaming::{RowErrorEvent, RowErrorSummary};
use tokio::sync::broadcast;

use crate::common::say::say_warn;

/// Takes every report queued on `events` into `summary` (never waits); logs missed reports
/// (the next report received counts their rows).
pub(super) fn drain(
    summary: &mut RowErrorSummary,
    events: &mut broadcast::Receiver<RowErrorEvent>,
) {
    loop {
        match events.try_recv() {
            Ok(e) => summary.record(&e),
            Err(broadcast::error::TryRecvError::Lagged(n)) => say_warn!(
                "warning: {n} row-error reports were missed; their rows are counted from the \
                 server's cumulative count (rows_error_count), their keys are unknown"
            ),
            Err(_) => return,
        }
    }
}

/// `keys at or before 12 … 40`, for the report.
pub(super) fn key_range(summary: &RowErrorSummary) -> String {
    match (summary.first_at_or_before(), summary.last_at_or_before()) {
        (Some(a), Some(b)) if a != b => format!("keys at or before {a} … {b}"),
        (Some(a), _) => format!("keys at or before {a}"),
        (None, _) => "unknown keys".into(),
    }
}

#[cfg(test)]
mod tests {
    use snowpipe_streaming::OffsetToken;

    use super::*;

    #[test]
    fn drain_takes_every_queued_report_and_names_the_key_range() {
        let (tx, mut events) = broadcast::channel(4);
        let mut summary = RowErrorSummary::default();
        drain(&mut summary, &mut events);
        assert_eq!(key_range(&summary), "unknown keys");
        for (new_errors, total, message, key) in [
            (2, 2, "Timestamp '2024-02-30' is not recognized", 12),
            (1, 3, "out of range", 40),
        ] {
            let e = RowErrorEvent::new("ORDERS", new_errors, total);
            tx.send(e.with_last_error(message, OffsetToken::from(key)))
                .unwrap();
        }
        drain(&mut summary, &mut events);
        assert_eq!(summary.count(), 3);
        assert_eq!(
            summary.first_message(),
            Some("Timestamp '2024-02-30' is not recognized")
        );
        assert_eq!(key_range(&summary), "keys at or before 12 … 40");
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["first_at_or_before"], "12");
        assert_eq!(json["last_at_or_before"], "40");
    }

    #[test]
    fn missed_reports_are_counted_and_earlier_rows_are_not() {
        // The channel had 3 errors (an earlier run's) when replay opened it.
        let mut start = snowpipe_streaming::ChannelStatus::default();
        start.rows_error_count = 3;
        let mut summary = RowErrorSummary::since(&start);
        // Room for 2 reports: of 5 sent between drains, the first 3 are missed.
        let (tx, mut events) = broadcast::channel(2);
        for total in 4..=8 {
            let e = RowErrorEvent::new("ORDERS", 1, total);
            tx.send(e.with_last_error("bad", OffsetToken::from(total * 10)))
                .unwrap();
        }
        drain(&mut summary, &mut events);
        assert_eq!(summary.count(), 5, "rows 4..=8");
        assert_eq!(key_range(&summary), "keys at or before 70 … 80");
    }
}
