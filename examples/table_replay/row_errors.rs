//! Rows the server rejected (row errors, Snowflake's `ON_ERROR = CONTINUE`): the committed
//! token moves past them and the SDK reports them on `Channel::events`. They are not in the
//! destination table; the report names how many, the first message and the keys they are at
//! or before.

use snowpipe_streaming::{OffsetToken, RowErrorEvent};
use tokio::sync::broadcast;

/// The row errors the table's channel reported to this run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowErrors {
    /// Rows rejected.
    pub count: u64,
    /// The server's message for the first report.
    pub first_message: Option<String>,
    /// The first report's bound: its rejected rows have keys at or below it.
    pub first_at_or_before: Option<u64>,
    /// The last report's bound.
    pub last_at_or_before: Option<u64>,
}

impl RowErrors {
    /// Adds one report: `new_errors` rows, the server's message, the key bound.
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

    /// Takes every report queued on `events` (never waits); logs a missed report.
    pub fn drain(&mut self, events: &mut broadcast::Receiver<RowErrorEvent>) {
        loop {
            match events.try_recv() {
                Ok(e) => self.record(
                    e.new_errors,
                    e.last_error_message.as_deref(),
                    e.offset_upper_bound.as_ref().and_then(OffsetToken::as_u64),
                ),
                Err(broadcast::error::TryRecvError::Lagged(n)) => eprintln!(
                    "warning: {n} row-error reports were missed; the channel's totals are in its \
                     status (rows_error_count)"
                ),
                Err(_) => return,
            }
        }
    }

    /// `rows with keys at or before 12 … 40`, for the report.
    pub fn key_range(&self) -> String {
        match (self.first_at_or_before, self.last_at_or_before) {
            (Some(a), Some(b)) if a != b => format!("keys at or before {a} … {b}"),
            (Some(a), _) => format!("keys at or before {a}"),
            (None, _) => "unknown keys".into(),
        }
    }

    /// `{"count", "first_message", "first_at_or_before", "last_at_or_before"}` (keys as
    /// strings, like the committed token).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count,
            "first_message": self.first_message,
            "first_at_or_before": self.first_at_or_before.map(|k| k.to_string()),
            "last_at_or_before": self.last_at_or_before.map(|k| k.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_errors_keep_the_first_message_and_the_key_bounds() {
        let mut r = RowErrors::default();
        r.record(0, Some("ignored"), Some(1));
        assert_eq!(r, RowErrors::default());
        assert_eq!(r.key_range(), "unknown keys");
        r.record(
            2,
            Some("Timestamp '2024-02-30' is not recognized"),
            Some(12),
        );
        assert_eq!(r.key_range(), "keys at or before 12");
        r.record(1, Some("out of range"), Some(40));
        r.record(1, None, None);
        assert_eq!(r.count, 4);
        assert_eq!(
            r.first_message.as_deref(),
            Some("Timestamp '2024-02-30' is not recognized")
        );
        assert_eq!(r.key_range(), "keys at or before 12 … 40");
        assert_eq!(r.to_json()["first_at_or_before"], "12");
        assert_eq!(r.to_json()["last_at_or_before"], "40");
    }
}
