//! Rows the server rejected (row errors, Snowflake's `ON_ERROR = CONTINUE`): the committed
//! token moves past them and the SDK reports them on `Channel::row_errors`, summed in a
//! `RowErrorSummary`. They are not in the destination table; the report names how many, the
//! first message and the keys they are at or before.
//!
//! The count is exact: the SDK folds reports the receiver missed into one from the channel's
//! status, and draining after the channel is closed counts every row rejected since the
//! summary's baseline (`RowErrorSummary::since`, the status when replay opened the channel).

use snowpipe_streaming::{RowErrorSummary, RowErrors};

/// Takes every report ready on `errors` into `summary` (never waits).
pub(super) fn drain(summary: &mut RowErrorSummary, errors: &mut RowErrors) {
    while let Some(e) = errors.try_recv() {
        summary.record(&e);
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
    use snowpipe_streaming::{OffsetToken, RowErrorEvent};

    use super::*;

    #[test]
    fn the_key_range_names_the_first_and_last_bounds() {
        let mut summary = RowErrorSummary::default();
        assert_eq!(key_range(&summary), "unknown keys");
        for (new_errors, total, message, key) in [
            (2, 2, "Timestamp '2024-02-30' is not recognized", 12),
            (1, 3, "out of range", 40),
        ] {
            let e = RowErrorEvent::new("ORDERS", new_errors, total);
            summary.record(&e.with_last_error(message, OffsetToken::from(key)));
        }
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
