//! [`RowErrors`]: the way out for the rows the server rejected on a channel, whose counts
//! never drop.
//!
//! The channel publishes each status poll that counted new rejected rows on a bounded
//! broadcast (64 reports); a receiver that falls behind loses the oldest. `RowErrors` folds
//! that in: after a lag (and when the channel ends) it reads the channel's status, whose
//! cumulative `rows_error_count` the poller keeps, and reports every row not reported yet in
//! one report carrying the status's last message and offset bound. Each report's
//! `new_errors` counts rows not counted before, so the sum of `new_errors` over every report
//! is the server's count since the receiver was made: no row twice, none missed.

use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::shared::ChannelShared;
use super::status::RowErrorEvent;

/// A channel's rejected-row reports, from [`Channel::row_errors`](crate::Channel::row_errors).
///
/// Each [`RowErrorEvent`] it yields counts in `new_errors` rows no earlier report counted
/// (its `total_errors` is the server's cumulative count), so adding up `new_errors` never
/// loses or doubles a row, however far behind the receiver falls.
pub struct RowErrors {
    rx: broadcast::Receiver<RowErrorEvent>,
    shared: Arc<ChannelShared>,
    /// The server's cumulative count through which rows were reported.
    through: u64,
    ended: bool,
}

impl std::fmt::Debug for RowErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowErrors")
            .field("channel", &self.shared.path.channel)
            .field("through", &self.through)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl RowErrors {
    /// Reports of rows rejected after the status `through` was read; `rx` subscribed after.
    pub(super) fn new(
        shared: Arc<ChannelShared>,
        through: u64,
        rx: broadcast::Receiver<RowErrorEvent>,
    ) -> Self {
        Self {
            rx,
            shared,
            through,
            ended: false,
        }
    }

    /// The next report of rows not reported yet; `None` once the channel has stopped and
    /// every rejected row it saw was reported.
    ///
    /// # Cancellation
    /// Safe: a report not yet returned stays to be returned (or is counted by a later one).
    pub async fn recv(&mut self) -> Option<RowErrorEvent> {
        while !self.ended {
            match self.rx.recv().await {
                Ok(event) => {
                    if let Some(event) = self.count(event) {
                        return Some(event);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    if let Some(event) = self.catch_up() {
                        return Some(event);
                    }
                }
                Err(RecvError::Closed) => {
                    self.ended = true;
                    return self.catch_up();
                }
            }
        }
        None
    }

    /// A report of rows not reported yet, if one is ready now (`None`: nothing now, or the
    /// channel has stopped: see [`is_ended`](Self::is_ended)).
    pub fn try_recv(&mut self) -> Option<RowErrorEvent> {
        while !self.ended {
            match self.rx.try_recv() {
                Ok(event) => {
                    if let Some(event) = self.count(event) {
                        return Some(event);
                    }
                }
                Err(TryRecvError::Lagged(_)) => {
                    if let Some(event) = self.catch_up() {
                        return Some(event);
                    }
                }
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Closed) => {
                    self.ended = true;
                    return self.catch_up();
                }
            }
        }
        None
    }

    /// Whether the channel has stopped and every report was returned.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The server's cumulative count of rejected rows through which reports were returned.
    pub fn reported_through(&self) -> u64 {
        self.through
    }

    /// `event` with only the rows not counted yet (`None` when it counts none).
    fn count(&mut self, mut event: RowErrorEvent) -> Option<RowErrorEvent> {
        let fresh = event.total_errors.checked_sub(self.through)?;
        if fresh == 0 {
            return None;
        }
        event.new_errors = fresh;
        self.through = event.total_errors;
        Some(event)
    }

    /// One report of every row the channel's status counts beyond those reported.
    fn catch_up(&mut self) -> Option<RowErrorEvent> {
        let status = self.shared.snapshot();
        let mut event =
            RowErrorEvent::new(self.shared.path.channel.clone(), 0, status.rows_error_count);
        event.last_error_message = status.last_error_message;
        event.request_first_token = status
            .last_error_offset_upper_bound
            .as_ref()
            .and_then(|end| crate::sync::lock(&self.shared.actor.request_spans).first_of(end));
        event.offset_upper_bound = status.last_error_offset_upper_bound;
        event.timestamp_ms = status.last_error_timestamp_ms;
        self.count(event)
    }
}
