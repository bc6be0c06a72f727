//! State shared between a channel's handle, its actor and the client's commit poller.
//!
//! Nothing here is touched per row: the handle reads the `state` watch once per call, the
//! actor updates the counters once per command or batch.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::pool::{BufferPool, RowSize};
use super::status::{ChannelStatus, RowErrorEvent};
use crate::api::ChannelStatusWire;
use crate::sync::lock;
use crate::transport::ChannelPath;
use crate::{Error, OffsetToken};

/// After status polls have failed (or omitted a channel) for this long, the channel is
/// "stalled": `wait_for_commit` fails at once, and a channel missing from the answers is
/// recovered (reopen + replay).
pub(crate) const STALL_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// Why a channel failed: kept once, turned into a fresh error for every caller
/// ([`Error::ChannelInvalidated`], or [`Error::OwnershipLost`] when another writer took the
/// channel).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) kind: FailureKind,
    pub(crate) reason: String,
    pub(crate) last_committed: Option<OffsetToken>,
    pub(crate) source: Option<Arc<Error>>,
}

/// What a failure means for the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// Reopen the channel and replay after the committed token.
    Invalidated,
    /// Another writer opened the channel: stop writing it.
    OwnershipLost,
}

/// Lifecycle of a channel as seen by its handle.
#[derive(Debug, Clone)]
pub(crate) enum State {
    Open,
    Failed(Failure),
    Closed,
}

/// A request from the poller to recover, valid only for the open generation it was made in.
#[derive(Debug, Clone)]
pub(crate) struct RecoverRequest {
    pub(crate) generation: u64,
    pub(crate) status_code: String,
}

/// The data-path metrics every channel has, named or elastic (labels `channel`, `pipe`,
/// `kind`): one list, so both kinds report the same names.
#[derive(Debug, Clone)]
pub(crate) struct DataMetrics {
    pub(crate) rows_appended: Counter,
    pub(crate) bytes_appended: Counter,
    pub(crate) requests: Counter,
    pub(crate) request_errors: Counter,
    pub(crate) retries: Counter,
    pub(crate) wire_bytes: Counter,
    pub(crate) backpressure_wait: Histogram,
    pub(crate) buffer_bytes: Gauge,
}

impl DataMetrics {
    /// Registers the metrics of channel `channel` of `pipe`, of `kind` `named` or `elastic`.
    pub(crate) fn new(channel: &str, pipe: &str, kind: &'static str) -> Self {
        let labels = Self::labels(channel, pipe, kind);
        Self {
            rows_appended: metrics::counter!("snowpipe_rows_appended_total", &labels),
            bytes_appended: metrics::counter!("snowpipe_bytes_appended_total", &labels),
            requests: metrics::counter!("snowpipe_requests_total", &labels),
            request_errors: metrics::counter!("snowpipe_request_errors_total", &labels),
            retries: metrics::counter!("snowpipe_append_retries_total", &labels),
            wire_bytes: metrics::counter!("snowpipe_wire_bytes_total", &labels),
            backpressure_wait: metrics::histogram!("snowpipe_backpressure_wait_seconds", &labels),
            buffer_bytes: metrics::gauge!("snowpipe_buffer_bytes", &labels),
        }
    }

    /// The labels of a channel's metrics.
    pub(crate) fn labels(
        channel: &str,
        pipe: &str,
        kind: &'static str,
    ) -> [(&'static str, String); 3] {
        [
            ("channel", channel.to_owned()),
            ("pipe", pipe.to_owned()),
            ("kind", kind.to_owned()),
        ]
    }
}

/// Metric handles of one named channel: the data path's and the commit side's.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub(crate) data: DataMetrics,
    pub(crate) recoveries: Counter,
    pub(crate) retained_bytes: Gauge,
    pub(crate) commit_latency: Histogram,
    pub(crate) row_errors: Counter,
    pub(crate) stalls: Counter,
    /// Batches sealed before `max_client_lag` because the memory budget ran short.
    pub(crate) sealed_for_memory: Counter,
}

impl Metrics {
    fn new(path: &ChannelPath) -> Self {
        let labels = DataMetrics::labels(&path.channel, &path.pipe.pipe, "named");
        Self {
            data: DataMetrics::new(&path.channel, &path.pipe.pipe, "named"),
            recoveries: metrics::counter!("snowpipe_channel_recoveries_total", &labels),
            retained_bytes: metrics::gauge!("snowpipe_retained_bytes", &labels),
            commit_latency: metrics::histogram!("snowpipe_commit_latency_seconds", &labels),
            row_errors: metrics::counter!("snowpipe_row_errors_total", &labels),
            stalls: metrics::counter!("snowpipe_commit_poll_stalls_total", &labels),
            sealed_for_memory: metrics::counter!(
                "snowpipe_batches_sealed_for_memory_total",
                &labels
            ),
        }
    }
}

/// Shared by the handle, the actor and the poller; each group of fields has one writer.
#[derive(Debug)]
pub(crate) struct ChannelShared {
    pub(crate) id: u64,
    pub(crate) path: Arc<ChannelPath>,
    /// What the server reported (written by the poller, and by the actor's reopens).
    pub(crate) polled: Polled,
    /// The actor's lifecycle and counters (written by the actor).
    pub(crate) actor: ActorState,
    /// Signals to the actor (written by the handle and the runtime).
    pub(crate) controls: Controls,
    /// Row and body buffers recycled between the caller's task (serialization) and the
    /// actor: the client's pool, shared by its channels.
    pub(crate) buffers: Arc<BufferPool>,
    /// The typical size of this channel's rows, for sizing its row buffers.
    pub(crate) row_size: RowSize,
    pub(crate) metrics: Metrics,
}

/// What the server reported about a channel.
#[derive(Debug)]
pub(crate) struct Polled {
    pub(crate) committed: watch::Sender<Option<OffsetToken>>,
    pub(crate) status: watch::Sender<ChannelStatusWire>,
    /// A request to the actor to recover (the server reported an invalid status).
    pub(crate) recover: watch::Sender<Option<RecoverRequest>>,
    /// Made on the first subscription: its 64 slots would cost every idle channel about 9 KB.
    pub(crate) events: std::sync::OnceLock<broadcast::Sender<RowErrorEvent>>,
    /// The server's cumulative error count last reported to the application.
    pub(crate) errors_seen: AtomicU64,
    /// Since when status polls of this channel have failed or omitted it (`None` while they
    /// succeed).
    pub(crate) poll_trouble: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// Polls have failed (or omitted the channel) for [`STALL_AFTER`]: commits cannot be seen.
    pub(crate) stalled: watch::Sender<bool>,
    /// The start sequence of the newest status poll applied to this channel: an answer to an
    /// older poll (one still running while a newer one finished) is dropped, so a stale
    /// committed token never replaces a newer one.
    pub(crate) applied_poll: AtomicU64,
}

/// The actor's lifecycle and counters, as the handle and the poller see them.
#[derive(Debug)]
pub(crate) struct ActorState {
    pub(crate) state: watch::Sender<State>,
    /// Bumped on every (re)open; stale poller requests carry an older value.
    pub(crate) generation: AtomicU64,
    /// Sent batches not yet committed exist.
    pub(crate) pending: AtomicBool,
    /// An append was acknowledged since the last successful status poll of this channel
    /// (so closing it does one final poll, to report row errors in its last batches). Set
    /// by the actor, taken by the poller.
    pub(crate) unpolled_sends: AtomicBool,
    pub(crate) buffered_bytes: AtomicUsize,
    pub(crate) buffered_rows: AtomicUsize,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) retained_batches: AtomicUsize,
    pub(crate) retained_bytes: AtomicUsize,
    pub(crate) recoveries: AtomicU64,
    /// Set once, by the actor's cleanup, when its task has stopped: `Some(None)` after a clean
    /// drain, `Some(Some(failure))` when it stopped failed or with rows undelivered.
    pub(crate) stopped: watch::Sender<Option<Option<Failure>>>,
}

/// Signals from the handle and the runtime to the actor (and the poller).
#[derive(Debug)]
pub(crate) struct Controls {
    /// Tasks inside `wait_for_commit` / `close` waiting for a commit.
    pub(crate) waiters: AtomicUsize,
    /// Cancelled to make the actor drain and exit (client close, close timeout).
    pub(crate) shutdown: CancellationToken,
    /// Cancelled to make the actor exit at once, dropping what it buffered (close timeout).
    pub(crate) abort: CancellationToken,
    /// Cancelled when the handle is dropped (lets the actor see it while it is busy
    /// recovering, when it does not read its command queue).
    pub(crate) handle_dropped: CancellationToken,
}

impl ChannelShared {
    pub(crate) fn new(
        id: u64,
        path: ChannelPath,
        opened: &ChannelStatusWire,
        shutdown: CancellationToken,
        buffers: Arc<BufferPool>,
    ) -> Self {
        let committed = opened
            .last_committed_offset_token
            .clone()
            .map(OffsetToken::from);
        let metrics = Metrics::new(&path);
        Self {
            id,
            path: Arc::new(path),
            polled: Polled {
                committed: watch::Sender::new(committed),
                status: watch::Sender::new(opened.clone()),
                recover: watch::Sender::new(None),
                events: std::sync::OnceLock::new(),
                errors_seen: AtomicU64::new(opened.rows_error_count.unwrap_or(0)),
                poll_trouble: std::sync::Mutex::new(None),
                stalled: watch::Sender::new(false),
                applied_poll: AtomicU64::new(0),
            },
            actor: ActorState {
                state: watch::Sender::new(State::Open),
                generation: AtomicU64::new(1),
                pending: AtomicBool::new(false),
                unpolled_sends: AtomicBool::new(false),
                buffered_bytes: AtomicUsize::new(0),
                buffered_rows: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                retained_batches: AtomicUsize::new(0),
                retained_bytes: AtomicUsize::new(0),
                recoveries: AtomicU64::new(0),
                stopped: watch::Sender::new(None),
            },
            controls: Controls {
                waiters: AtomicUsize::new(0),
                shutdown,
                abort: CancellationToken::new(),
                handle_dropped: CancellationToken::new(),
            },
            buffers,
            row_size: RowSize::default(),
            metrics,
        }
    }

    /// The channel's name.
    pub(crate) fn name(&self) -> &str {
        &self.path.channel
    }

    /// Whether the poller should poll this channel at the fast cadence.
    pub(crate) fn wants_fast_poll(&self) -> bool {
        self.actor.pending.load(Ordering::Relaxed)
            || self.controls.waiters.load(Ordering::Relaxed) > 0
    }

    /// The error every caller gets once the channel has failed.
    pub(crate) fn invalidated(&self, failure: &Failure) -> Error {
        let channel = self.path.channel.clone();
        let reason = failure.reason.clone();
        let last_committed = failure.last_committed.clone();
        let source = failure.source.clone();
        match failure.kind {
            FailureKind::Invalidated => Error::ChannelInvalidated {
                channel,
                reason,
                last_committed,
                source,
            },
            FailureKind::OwnershipLost => Error::OwnershipLost {
                channel,
                reason,
                last_committed,
                source,
            },
        }
    }

    /// A status poll reported this channel.
    pub(crate) fn poll_succeeded(&self) {
        *lock(&self.polled.poll_trouble) = None;
        if self.polled.stalled.send_replace(false) {
            tracing::info!(channel = %self.path.channel, "commit polling recovered");
        }
    }

    /// A status poll failed or omitted this channel. Returns `true` when this makes the
    /// channel stalled (trouble for [`STALL_AFTER`]).
    pub(crate) fn poll_failed(&self, now: tokio::time::Instant, unpolled: bool, why: &str) -> bool {
        if unpolled {
            self.actor.unpolled_sends.store(true, Ordering::Release);
        }
        let since = *lock(&self.polled.poll_trouble).get_or_insert(now);
        if now.duration_since(since) < STALL_AFTER || *self.polled.stalled.borrow() {
            return false;
        }
        self.polled.stalled.send_replace(true);
        self.metrics.stalls.increment(1);
        tracing::warn!(
            channel = %self.path.channel,
            pipe = %self.path.pipe.pipe,
            since = ?now.duration_since(since),
            reason = why,
            "commits of this channel cannot be seen: status polls keep failing"
        );
        true
    }

    /// `Ok` while the channel is open; the error to return otherwise.
    pub(crate) fn check_open(&self) -> crate::Result<()> {
        match &*self.actor.state.borrow() {
            State::Open => Ok(()),
            State::Failed(f) => Err(self.invalidated(f)),
            State::Closed => Err(Error::shutdown(format!("channel {}", self.name()))),
        }
    }

    /// Applies a status the server reported (open response or poll): publishes the committed
    /// token and the status, and reports new row errors.
    pub(crate) fn apply_status(&self, status: ChannelStatusWire) {
        let committed = status
            .last_committed_offset_token
            .clone()
            .map(OffsetToken::from);
        self.polled.committed.send_if_modified(|c| {
            if *c == committed {
                false
            } else {
                *c = committed;
                true
            }
        });
        let total = status.rows_error_count.unwrap_or(0);
        let seen = self.polled.errors_seen.swap(total, Ordering::Relaxed);
        if total > seen {
            let event = RowErrorEvent {
                channel: self.path.channel.clone(),
                new_errors: total - seen,
                total_errors: total,
                last_error_message: status.last_error_message.clone(),
                offset_upper_bound: status
                    .last_error_offset_upper_bound
                    .clone()
                    .map(OffsetToken::from),
                timestamp_ms: status.last_error_timestamp_ms,
            };
            self.metrics.row_errors.increment(event.new_errors);
            tracing::warn!(
                channel = %self.path.channel,
                pipe = %self.path.pipe.pipe,
                new_errors = event.new_errors,
                total_errors = total,
                offset_token = ?event.offset_upper_bound,
                message = ?event.last_error_message,
                "server rejected rows"
            );
            if self
                .polled
                .events
                .get()
                .is_none_or(|tx| tx.send(event).is_err())
            {
                tracing::debug!(channel = %self.path.channel, "no subscriber for row error events");
            }
        }
        self.polled.status.send_replace(status);
    }

    /// Builds the public snapshot.
    pub(crate) fn snapshot(&self) -> ChannelStatus {
        let server = self.polled.status.borrow();
        ChannelStatus {
            committed_offset_token: self.polled.committed.borrow().clone(),
            status_code: server.channel_status_code.clone(),
            rows_inserted: server.rows_inserted.unwrap_or(0),
            rows_parsed: server.rows_parsed.unwrap_or(0),
            rows_error_count: server.rows_error_count.unwrap_or(0),
            last_error_message: server.last_error_message.clone(),
            last_error_offset_upper_bound: server
                .last_error_offset_upper_bound
                .clone()
                .map(OffsetToken::from),
            last_error_timestamp_ms: server.last_error_timestamp_ms,
            buffered_bytes: self.actor.buffered_bytes.load(Ordering::Relaxed),
            buffered_rows: self.actor.buffered_rows.load(Ordering::Relaxed),
            in_flight_requests: self.actor.in_flight.load(Ordering::Relaxed),
            retained_batches: self.actor.retained_batches.load(Ordering::Relaxed),
            retained_bytes: self.actor.retained_bytes.load(Ordering::Relaxed),
            recoveries: self.actor.recoveries.load(Ordering::Relaxed),
            failed: matches!(*self.actor.state.borrow(), State::Failed(_)),
        }
    }
}
