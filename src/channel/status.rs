//! Public status types of a channel: [`ChannelStatus`] (an open channel's, the server's part
//! and the client's) and [`ServerChannelStatus`] (the server's part alone, of any channel by
//! name), [`RowErrorEvent`], [`CloseOptions`], and [`RowErrorSummary`] (what a subscriber of
//! [`Channel::events`](crate::Channel::events) learned about the rows the server rejected).

use std::time::Duration;

use serde::Serialize;

use crate::api::ChannelStatusWire;
use crate::OffsetToken;

/// What the server reports of one channel: its committed offset token, its state and its
/// row counts. [`Pipe::channel_statuses`](crate::Pipe::channel_statuses) answers these for
/// channels by name, open in this client or not; an open channel's
/// [`ChannelStatus`] carries the same fields beside its client-side ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerChannelStatus {
    /// The last offset token the server reports committed.
    pub committed_offset_token: Option<OffsetToken>,
    /// The server's `channel_status_code` (`"SUCCESS"` when healthy).
    pub status_code: Option<String>,
    /// Rows inserted into the table over the channel's life.
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
}

impl ServerChannelStatus {
    /// The wire's `ChannelStatusWire`, as the REST layer read it: the one place a status the
    /// server sent becomes a public one.
    pub(crate) fn from_wire(w: ChannelStatusWire) -> Self {
        Self {
            committed_offset_token: w.last_committed_offset_token.map(OffsetToken::from_wire),
            status_code: w.channel_status_code,
            rows_inserted: w.rows_inserted.unwrap_or(0),
            rows_parsed: w.rows_parsed.unwrap_or(0),
            rows_error_count: w.rows_error_count.unwrap_or(0),
            last_error_message: w.last_error_message,
            last_error_offset_upper_bound: w
                .last_error_offset_upper_bound
                .map(OffsetToken::from_wire),
            last_error_timestamp_ms: w.last_error_timestamp_ms,
        }
    }
}

/// A snapshot of one open channel: what the server last reported plus the client-side
/// buffers.
///
/// Server fields come from the open response and from the client's commit poller; they are
/// as fresh as the last poll. [`server`](Self::server) gives them as a
/// [`ServerChannelStatus`].
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
    /// How long rows have waited in this channel (buffered, in flight, or sent and not yet
    /// committed) without the committed offset token moving; `None` while nothing waits.
    /// It starts when rows start to wait and starts again at every commit, so an idle
    /// channel never shows one. The stall signal: a value growing well past
    /// `max_client_lag` plus the service's usual commit time (seconds) means commits have
    /// stopped (server errors, a slow or unreachable service, failing status polls), the
    /// case `snowpipe-kafka --stall-after` reports per partition.
    pub uncommitted_for: Option<Duration>,
}

impl ChannelStatus {
    /// An open channel's status from what the server reported, its client-side fields zero
    /// (the poller fills them).
    pub(crate) fn from_server(w: ChannelStatusWire) -> Self {
        let s = ServerChannelStatus::from_wire(w);
        Self {
            committed_offset_token: s.committed_offset_token,
            status_code: s.status_code,
            rows_inserted: s.rows_inserted,
            rows_parsed: s.rows_parsed,
            rows_error_count: s.rows_error_count,
            last_error_message: s.last_error_message,
            last_error_offset_upper_bound: s.last_error_offset_upper_bound,
            last_error_timestamp_ms: s.last_error_timestamp_ms,
            ..Self::default()
        }
    }

    /// The server's part of this status.
    pub fn server(&self) -> ServerChannelStatus {
        ServerChannelStatus {
            committed_offset_token: self.committed_offset_token.clone(),
            status_code: self.status_code.clone(),
            rows_inserted: self.rows_inserted,
            rows_parsed: self.rows_parsed,
            rows_error_count: self.rows_error_count,
            last_error_message: self.last_error_message.clone(),
            last_error_offset_upper_bound: self.last_error_offset_upper_bound.clone(),
            last_error_timestamp_ms: self.last_error_timestamp_ms,
        }
    }
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
    /// The first token of the request that [`offset_upper_bound`](Self::offset_upper_bound)
    /// ended, when this channel sent it recently: the last failing row is one of that
    /// request's rows, `request_first_token..=offset_upper_bound`.
    pub request_first_token: Option<OffsetToken>,
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
            request_first_token: None,
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

/// The row errors of one channel, summed from its [`RowErrorEvent`]s: how many rows the server
/// rejected, its message in the first report, and where the failing rows are (each report's
/// rows are at or before its offset token).
///
/// Feed it every event of [`Channel::events`](crate::Channel::events) with
/// [`record`](Self::record); when the receiver lagged (it missed events), call
/// [`catch_up`](Self::catch_up) with the channel's [`status`](crate::Channel::status), at
/// once or later (when the channel is closed, say).
///
/// The guarantee: the count is exact. Each report carries the server's cumulative count
/// (`total_errors`), which never goes down for a channel (it survives a reopen), so the
/// summary counts every row up to the highest cumulative count it has seen, from a report or
/// a status, once: a report missed between two recorded ones is counted by the later one (the
/// gap in the cumulative count), reports missed after the last one by a catch-up, and events
/// still queued behind a catch-up add only the rows it did not already count. After a
/// catch-up from the status of a closed channel it equals every row the server rejected since
/// the baseline: [`since`](Self::since)'s status, else the rows before the first report
/// recorded (which may predate the subscription), else zero (a catch-up before any report).
///
/// It serializes (serde) as `{"count": n, "first_message": …, "first_at_or_before": "<token>",
/// "last_at_or_before": "<token>"}`, tokens as strings, `null` when unknown.
///
/// ```
/// use snowpipe_streaming::{ChannelStatus, OffsetToken, RowErrorEvent, RowErrorSummary};
///
/// // Two reports, as `Channel::events` delivers them.
/// let message = "Numeric value 'abc' is not recognized";
/// let mut summary = RowErrorSummary::default();
/// for (new_errors, total, at_or_before) in [(2, 2, 12), (1, 3, 40)] {
///     let event = RowErrorEvent::new("orders", new_errors, total)
///         .with_last_error(message, OffsetToken::from(at_or_before));
///     summary.record(&event);
/// }
/// assert_eq!(summary.count(), 3);
/// assert_eq!(summary.first_message(), Some("Numeric value 'abc' is not recognized"));
/// assert_eq!(summary.first_at_or_before().map(OffsetToken::as_str), Some("12"));
/// assert_eq!(summary.last_at_or_before().map(OffsetToken::as_str), Some("40"));
///
/// // The receiver lagged: the status's cumulative count has two rows it never saw.
/// let mut status = ChannelStatus::default();
/// status.rows_error_count = 5;
/// summary.catch_up(&status);
/// summary.catch_up(&status);
/// assert_eq!(summary.count(), 5);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RowErrorSummary {
    count: u64,
    first_message: Option<String>,
    first_at_or_before: Option<OffsetToken>,
    last_at_or_before: Option<OffsetToken>,
    /// The server's cumulative count through which every row is counted: the highest
    /// `total_errors` recorded or status caught up from (or the status of [`since`](Self::since)).
    /// `None` until the first of them.
    #[serde(skip)]
    through: Option<u64>,
}

impl RowErrorSummary {
    /// Rows the server rejected.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The server's message in the first report that counted rows.
    pub fn first_message(&self) -> Option<&str> {
        self.first_message.as_deref()
    }

    /// The first report's bound: its failing rows are at or before this token.
    pub fn first_at_or_before(&self) -> Option<&OffsetToken> {
        self.first_at_or_before.as_ref()
    }

    /// The last bound reported: every failing row counted is at or before this token.
    pub fn last_at_or_before(&self) -> Option<&OffsetToken> {
        self.last_at_or_before.as_ref()
    }

    /// A summary of the rows the server rejects after `status` (the channel's
    /// [`status`](crate::Channel::status) read *before* subscribing to
    /// [`events`](crate::Channel::events)): its cumulative count is the baseline, so reports
    /// missed even before the first one recorded are counted (by the next report or a
    /// [`catch_up`](Self::catch_up)), and rows rejected before it never are. Read the status
    /// first: the channel updates it just after publishing a report, so every report it does
    /// not count yet reaches the receiver or is counted by the catch-up of the lag.
    pub fn since(status: &ChannelStatus) -> Self {
        let mut summary = Self::default();
        summary.set_baseline(status);
        summary
    }

    /// Makes `status` the baseline of a summary that goes on counting: for a new subscription
    /// of a summary that outlives its channel handle (a partition assigned again, a channel
    /// reopened by a new handle). What it has counted stays; rows the server rejected up to
    /// `status`'s cumulative count (counted meanwhile by another writer of the channel, or
    /// already by this summary) are never counted, and reports missed after it are, as with
    /// [`since`](Self::since). Read the status *before* subscribing to the new handle's
    /// [`events`](crate::Channel::events).
    pub fn set_baseline(&mut self, status: &ChannelStatus) {
        self.through = Some(status.rows_error_count);
    }

    /// Adds one event: the rows it reports beyond the server total already counted (its
    /// `new_errors`, plus the rows of reports missed since the last one recorded or caught up
    /// from: the gap in the server's cumulative count; less the rows a
    /// [`catch_up`](Self::catch_up) already counted), its message when it is the first, its
    /// offset bound. An event without new errors changes nothing.
    ///
    /// The first event of a [`default`](Self::default) summary counts its `new_errors` only:
    /// the rows before it may be from before the receiver subscribed.
    pub fn record(&mut self, event: &RowErrorEvent) {
        if event.new_errors == 0 {
            return;
        }
        let fresh = match self.through {
            Some(through) => event.total_errors.saturating_sub(through),
            None => event.new_errors,
        };
        self.through = Some(self.through.unwrap_or(0).max(event.total_errors));
        let bound = event.offset_upper_bound.as_ref();
        self.add(fresh, event.last_error_message.as_deref(), bound);
        if bound.is_some() {
            self.last_at_or_before.clone_from(&event.offset_upper_bound);
        }
    }

    /// Counts the rows of events a lagging receiver missed
    /// ([`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged)), from the
    /// channel's cumulative [`rows_error_count`](ChannelStatus::rows_error_count): what it has
    /// beyond the server total already counted. Their offset bounds are unknown; the message
    /// is the status's last one when nothing was counted before. Calling it again, with an
    /// older status, or recording the events still queued behind the lag, never counts a row
    /// twice.
    ///
    /// Before any event was recorded, a [`default`](Self::default) summary cannot tell errors
    /// from before it subscribed (the status counts the channel's whole life) from missed
    /// ones: it counts them all. [`since`](Self::since) has the baseline and counts only the
    /// missed ones.
    pub fn catch_up(&mut self, status: &ChannelStatus) {
        let missed = status
            .rows_error_count
            .saturating_sub(self.through.unwrap_or(0));
        if missed == 0 {
            return;
        }
        self.add(missed, status.last_error_message.as_deref(), None);
        self.through = Some(status.rows_error_count);
    }

    /// Adds what another channel's finished summary counted (the lanes of one stream, each
    /// watched on its own): its rows, its first message and bound when this one has counted
    /// none, its last bound when it has one. The other's server total is its channel's, not
    /// this one's, so this summary's baseline stays.
    ///
    /// ```
    /// use snowpipe_streaming::{OffsetToken, RowErrorEvent, RowErrorSummary};
    /// let mut report = RowErrorEvent::new("EVENTS_1", 2, 2);
    /// report.offset_upper_bound = Some(OffsetToken::from(7));
    /// let (mut lane0, mut lane1) = (RowErrorSummary::default(), RowErrorSummary::default());
    /// lane1.record(&report);
    /// lane0.absorb(&lane1);
    /// assert_eq!(lane0.count(), 2);
    /// assert_eq!(lane0.first_at_or_before().map(OffsetToken::as_str), Some("7"));
    /// ```
    pub fn absorb(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        self.add(
            other.count,
            other.first_message.as_deref(),
            other.first_at_or_before.as_ref(),
        );
        if other.last_at_or_before.is_some() {
            self.last_at_or_before.clone_from(&other.last_at_or_before);
        }
    }

    /// Counts `rows`; the first rows counted set the first message and bound.
    fn add(&mut self, rows: u64, message: Option<&str>, bound: Option<&OffsetToken>) {
        if rows > 0 && self.count == 0 {
            self.first_message = message.map(str::to_owned);
            self.first_at_or_before = bound.cloned();
        }
        self.count += rows;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An open channel's status and a status by name read the same report the same way, and
    /// the open channel's server part is that status.
    #[test]
    fn the_server_part_of_a_status_is_the_status_by_name() {
        let wire: ChannelStatusWire = serde_json::from_value(serde_json::json!({
            "channel_status_code": "SUCCESS",
            "last_committed_offset_token": "41",
            "rows_inserted": 40, "rows_parsed": "42", "rows_error_count": 2,
            "last_error_message": "Numeric value 'x' is not recognized",
            "last_error_offset_upper_bound": "12", "last_error_timestamp_ms": 1_700_000_000_000_i64,
            "snowflake_avg_processing_latency_ms": 9
        }))
        .unwrap();
        let by_name = ServerChannelStatus::from_wire(wire.clone());
        assert_eq!(by_name.committed_offset_token, Some(OffsetToken::from(41)));
        assert_eq!((by_name.rows_inserted, by_name.rows_parsed), (40, 42));
        assert_eq!(by_name.rows_error_count, 2);
        assert_eq!(
            by_name.last_error_offset_upper_bound,
            Some(OffsetToken::from(12))
        );
        let open = ChannelStatus::from_server(wire);
        assert_eq!(open.server(), by_name);
        assert_eq!(
            (open.buffered_rows, open.recoveries, open.failed),
            (0, 0, false)
        );
    }

    fn event(new_errors: u64, total_errors: u64, message: &str, bound: u64) -> RowErrorEvent {
        RowErrorEvent::new("c", new_errors, total_errors)
            .with_last_error(message, OffsetToken::from(bound))
    }

    fn status(rows_error_count: u64, message: &str) -> ChannelStatus {
        ChannelStatus {
            rows_error_count,
            last_error_message: Some(message.into()),
            ..ChannelStatus::default()
        }
    }

    fn bounds(s: &RowErrorSummary) -> (Option<&str>, Option<&str>) {
        (
            s.first_at_or_before().map(OffsetToken::as_str),
            s.last_at_or_before().map(OffsetToken::as_str),
        )
    }

    #[test]
    fn keeps_the_first_message_and_the_first_and_last_bounds() {
        let mut s = RowErrorSummary::default();
        s.record(&event(2, 2, "too long", 12));
        s.record(&event(1, 3, "out of range", 40));
        s.record(&RowErrorEvent::new("c", 1, 4));
        assert_eq!(s.count(), 4);
        assert_eq!(s.first_message(), Some("too long"));
        assert_eq!(bounds(&s), (Some("12"), Some("40")));
    }

    #[test]
    fn events_without_new_errors_change_nothing() {
        let mut s = RowErrorSummary::default();
        s.record(&event(0, 0, "ignored", 1));
        assert_eq!(s, RowErrorSummary::default());
        s.record(&event(1, 1, "first", 5));
        let before = s.clone();
        s.record(&event(0, 1, "ignored", 9));
        assert_eq!(s, before);
    }

    #[test]
    fn catch_up_counts_only_what_the_receiver_missed() {
        let mut s = RowErrorSummary::default();
        // The channel had 7 errors before this receiver subscribed: the first event says so.
        s.record(&event(2, 9, "first", 10));
        // Events for totals 10..=13 were dropped; the status has them.
        s.catch_up(&status(13, "latest"));
        assert_eq!(s.count(), 6);
        assert_eq!(s.first_message(), Some("first"));
        s.catch_up(&status(13, "latest"));
        assert_eq!(s.count(), 6, "a second catch-up adds nothing");
    }

    #[test]
    fn events_queued_behind_a_catch_up_are_not_counted_again() {
        let mut s = RowErrorSummary::default();
        s.catch_up(&status(5, "from the status"));
        assert_eq!(s.count(), 5);
        assert_eq!(s.first_message(), Some("from the status"));
        // Still queued: totals 4 and 5, already in the catch-up; their bounds are kept.
        s.record(&event(1, 4, "queued", 30));
        s.record(&event(1, 5, "queued", 31));
        assert_eq!(s.count(), 5);
        assert_eq!(bounds(&s), (None, Some("31")));
        // Past the catch-up (6 → 8): its three rows are new.
        s.record(&event(3, 8, "straddles", 50));
        assert_eq!(s.count(), 8);
        // Past it: counted in full.
        s.record(&event(2, 10, "later", 60));
        assert_eq!(s.count(), 10);
        assert_eq!(s.first_message(), Some("from the status"));
        assert_eq!(bounds(&s), (None, Some("60")));
    }

    #[test]
    fn a_report_missed_between_two_recorded_ones_is_counted() {
        let mut s = RowErrorSummary::default();
        s.record(&event(1, 1, "first", 10));
        // The report of total 2 (its one row) was missed; the next one shows the gap.
        s.record(&event(1, 3, "third", 30));
        assert_eq!(s.count(), 3);
        // A catch-up at the end finds nothing more.
        s.catch_up(&status(3, "third"));
        assert_eq!(s.count(), 3);
        assert_eq!(s.first_message(), Some("first"));
        assert_eq!(bounds(&s), (Some("10"), Some("30")));
    }

    #[test]
    fn since_a_status_counts_a_missed_first_report_and_not_the_rows_before() {
        // The channel had 4 errors when the receiver subscribed; reports of totals 5 and 6
        // were missed, then one of total 7 recorded.
        let mut s = RowErrorSummary::since(&status(4, "old"));
        s.record(&event(1, 7, "seventh", 70));
        assert_eq!(s.count(), 3);
        assert_eq!(s.first_message(), Some("seventh"));
        s.catch_up(&status(9, "ninth"));
        assert_eq!(s.count(), 5);
        // Without the baseline the rows before the first report are not counted.
        let mut d = RowErrorSummary::default();
        d.record(&event(1, 7, "seventh", 70));
        assert_eq!(d.count(), 1);
    }

    #[test]
    fn a_new_baseline_keeps_the_count_and_skips_what_others_counted() {
        // A partition's summary: 2 rows rejected during its first assignment.
        let mut s = RowErrorSummary::since(&status(0, "none"));
        s.record(&event(2, 2, "first", 20));
        // Another writer held the channel meanwhile and 5 more were rejected under it; this
        // process gets the partition again, then misses every report of its own (2 rows).
        s.set_baseline(&status(7, "other writer's"));
        s.catch_up(&status(9, "ninth"));
        assert_eq!(s.count(), 4);
        assert_eq!(s.first_message(), Some("first"));
        // Without the new baseline the other writer's 5 were counted too.
        let mut stale = RowErrorSummary::since(&status(0, "none"));
        stale.record(&event(2, 2, "first", 20));
        stale.catch_up(&status(9, "ninth"));
        assert_eq!(stale.count(), 9);
    }

    #[test]
    fn serializes_counts_and_tokens_as_strings() {
        let mut s = RowErrorSummary::default();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({
                "count": 0, "first_message": null,
                "first_at_or_before": null, "last_at_or_before": null,
            })
        );
        s.record(&event(2, 2, "too long", 12));
        s.record(&event(1, 3, "out of range", 40));
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({
                "count": 3, "first_message": "too long",
                "first_at_or_before": "12", "last_at_or_before": "40",
            })
        );
    }
}

#[cfg(test)]
mod summary_properties {
    use proptest::prelude::*;

    use super::*;

    /// What a receiver does with the channel's reports, in the property test below.
    #[derive(Debug, Clone)]
    enum Step {
        /// The server reports `rows` new errors; the receiver records the report, or misses it.
        Report { rows: u64, recorded: bool },
        /// The receiver catches up from the status: its count now (`fresh`), or the one before the
        /// last report (the status is updated just after a report is published).
        CatchUp { fresh: bool },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (1..4u64, any::<bool>()).prop_map(|(rows, recorded)| Step::Report { rows, recorded }),
            1 => any::<bool>().prop_map(|fresh| Step::CatchUp { fresh }),
        ]
    }

    fn status(total: u64) -> ChannelStatus {
        ChannelStatus {
            rows_error_count: total,
            ..ChannelStatus::default()
        }
    }

    /// Plays `steps` on `summary` for a channel whose count was `base` before the receiver
    /// subscribed; checks at every step that the summary counts exactly the rows it has
    /// evidence of (a recorded report's total, a status it caught up from), and at the end,
    /// after a catch-up from the final status, every row the server reported.
    fn play(mut summary: RowErrorSummary, base: u64, steps: &[Step]) -> Result<(), TestCaseError> {
        let (mut total, mut before_last, mut seen) = (base, base, base);
        for (i, step) in steps.iter().enumerate() {
            match *step {
                Step::Report { rows, recorded } => {
                    before_last = total;
                    total += rows;
                    if recorded {
                        let e = RowErrorEvent::new("c", rows, total)
                            .with_last_error("bad", OffsetToken::from(total));
                        summary.record(&e);
                        seen = seen.max(total);
                        prop_assert_eq!(
                            summary.last_at_or_before().cloned(),
                            Some(OffsetToken::from(total))
                        );
                    }
                }
                Step::CatchUp { fresh } => {
                    let read = if fresh { total } else { before_last };
                    summary.catch_up(&status(read));
                    seen = seen.max(read);
                }
            }
            prop_assert_eq!(
                summary.count(),
                seen - base,
                "after step {} of {:?}",
                i,
                steps
            );
        }
        summary.catch_up(&status(total));
        prop_assert_eq!(summary.count(), total - base, "at the end of {:?}", steps);
        Ok(())
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(512))]

        /// A receiver that recorded the channel's first report after subscribing (the rows
        /// before it are from before the subscription): every later report it missed is
        /// counted, whether a later report or a catch-up shows it.
        #[test]
        fn counts_every_reported_row_after_the_first_recorded_report(
            base in 0..20u64,
            first in 1..4u64,
            steps in proptest::collection::vec(step(), 0..40),
        ) {
            let mut all = vec![Step::Report { rows: first, recorded: true }];
            all.extend(steps);
            play(RowErrorSummary::default(), base, &all)?;
        }

        /// A summary from the status read before subscribing: any report may be missed,
        /// the first ones too, and every row after the baseline is counted.
        #[test]
        fn since_the_status_counts_every_reported_row(
            base in 0..20u64,
            steps in proptest::collection::vec(step(), 0..40),
        ) {
            play(RowErrorSummary::since(&status(base)), base, &steps)?;
        }
    }
}
