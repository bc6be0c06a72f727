//! Rows the server rejected (row errors, Snowflake's `ON_ERROR = CONTINUE`): the committed
//! token moves past them and the SDK reports them on `Channel::events`, summed in a
//! `RowErrorSummary`. They are not in the destination table; the report names how many, the
//! first message and the keys they are at or before.

use snowpipe_streaming::{RowErrorEvent, RowErrorSummary};
use tokio::sync::broadcast;

use crate::common::say::say_warn;

/// Takes every report queued on `events` into `summary` (never waits); logs a missed report.
pub(super) fn drain(
    summary: &mut RowErrorSummary,
    events: &mut broadcast::Receiver<RowErrorEvent>,
) {
    loop {
        match events.try_recv() {
            Ok(e) => summary.record(&e),
            Err(broadcast::error::TryRecvError::Lagged(n)) => say_warn!(
                "warning: {n} row-error reports were missed; the channel's totals are in its \
                 status (rows_error_count)"
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
}
