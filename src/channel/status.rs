//! Public status types of a channel: [`ChannelStatus`], [`RowErrorEvent`], [`CloseOptions`].

use std::time::Duration;

use crate::OffsetToken;

/// A snapshot of one channel: what the server last reported plus the client-side buffers.
///
/// Server fields come from the open response and from the client's commit poller; they are
/// as fresh as the last poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelStatus {
    /// The last offset token the server reports committed.
    pub committed_offset_token: Option<OffsetToken>,
    /// The server's `channel_status_code` (`"SUCCESS"` when healthy).
    pub status_code: Option<String>,
    /// Rows inserted into the table over the channel's life, as reported by the server.
    pub rows_inserted: u64,
    /// Rows parsed by the server.
    pub rows_parsed: u64,
    /// Rows the server rejected.
    pub rows_error_count: u64,
    /// Message of the server's last row error.
    pub last_error_message: Option<String>,
    /// The failing row is at or before this offset token.
    pub last_error_offset_upper_bound: Option<OffsetToken>,
    /// When the last row error happened (epoch milliseconds).
    pub last_error_timestamp_ms: Option<i64>,
    /// Serialized bytes buffered in the client, not yet sent.
    pub buffered_bytes: usize,
    /// Rows buffered in the client, not yet sent.
    pub buffered_rows: usize,
    /// Append requests in flight (0 or 1).
    pub in_flight_requests: usize,
    /// Batches sent and acknowledged but not yet reported committed (kept for replay).
    pub retained_batches: usize,
    /// Bytes of those batches (compressed, as they would be re-sent).
    pub retained_bytes: usize,
    /// Times the channel reopened itself and replayed after an invalidation.
    pub recoveries: u64,
    /// Whether the channel has failed and must be reopened ([`Channel::reopen`](crate::Channel::reopen)).
    pub failed: bool,
}

/// New row errors reported by the server for a channel: rows that were sent, parsed and
/// rejected (for example a type mismatch). The committed offset token still advances past
/// them (Snowflake's `ON_ERROR = CONTINUE`), so they are reported here rather than as a
/// failed append.
///
/// Delivered on [`Channel::events`](crate::Channel::events). Events are also logged at `warn`
/// level and counted in `snowpipe_row_errors_total`, so they are never silently lost even when
/// nobody subscribes. [`RowErrorSummary`](crate::RowErrorSummary) sums them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RowErrorEvent {
    /// The channel's name.
    pub channel: String,
    /// How many rows failed since the previous event (or since the channel was opened).
    pub new_errors: u64,
    /// The server's cumulative count.
    pub total_errors: u64,
    /// The server's last error message.
    pub last_error_message: Option<String>,
    /// The failing rows are at or before this offset token.
    pub offset_upper_bound: Option<OffsetToken>,
    /// When the last error happened (epoch milliseconds), if reported.
    pub timestamp_ms: Option<i64>,
}

impl RowErrorEvent {
    /// An event of `new_errors` rows on `channel`, the server's cumulative count now
    /// `total_errors`, without message or offset bound: for testing code that handles events
    /// (the channel publishes the real ones).
    pub fn new(channel: impl Into<String>, new_errors: u64, total_errors: u64) -> Self {
        Self {
            channel: channel.into(),
            new_errors,
            total_errors,
            last_error_message: None,
            offset_upper_bound: None,
            timestamp_ms: None,
        }
    }

    /// Sets [`last_error_message`](Self::last_error_message) and
    /// [`offset_upper_bound`](Self::offset_upper_bound).
    #[must_use]
    pub fn with_last_error(
        mut self,
        message: impl Into<String>,
        offset_upper_bound: OffsetToken,
    ) -> Self {
        self.last_error_message = Some(message.into());
        self.offset_upper_bound = Some(offset_upper_bound);
        self
    }
}

/// How [`Channel::close_with`](crate::Channel::close_with) closes a channel.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CloseOptions {
    /// Also wait until the server reports the last appended offset token committed.
    /// Default `false`.
    pub wait_for_commit: bool,
    /// Upper bound for the whole close. Default 60 s.
    pub timeout: Duration,
}

impl Default for CloseOptions {
    fn default() -> Self {
        Self {
            wait_for_commit: false,
            timeout: Duration::from_secs(60),
        }
    }
}

impl CloseOptions {
    /// Sets [`wait_for_commit`](Self::wait_for_commit).
    #[must_use]
    pub fn wait_for_commit(mut self, wait: bool) -> Self {
        self.wait_for_commit = wait;
        self
    }

    /// Sets [`timeout`](Self::timeout).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}
