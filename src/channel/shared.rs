//! State shared between a channel's handle, its actor and the client's commit poller.
//!
//! Nothing here is touched per row: the handle reads the `state` watch once per call, the
//! actor updates the counters once per command or batch.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::status::{ChannelStatus, RowErrorEvent};
use crate::api::ChannelStatusWire;
use crate::pipeline::metrics::DataMetrics;
use crate::pipeline::pool::{BufferPool, RowSize};
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

/// A channel's lifecycle: the one value its actor publishes (on [`ActorState::lifecycle`])
/// and the handle, the client-level calls and `client.close()` read. The actor's private
/// `Phase` only says when its loop exits (drain deadlines); what callers see is this.
#[derive(Debug, Clone)]
pub(crate) enum Lifecycle {
    /// Taking appends.
    Open,
    /// Failed: every call is refused with this failure until `reopen()` (or the close).
    Failed(Failure),
    /// The client is closing: appends are refused, what was admitted is being delivered.
    Closing,
    /// The actor has stopped: `None` after a clean drain, the failure (or the rows it could
    /// not deliver) otherwise. Final.
    Stopped(Option<Failure>),
}

impl Lifecycle {
    /// The failure a failed or stopped channel reports.
    pub(crate) fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Failed(f) | Self::Stopped(Some(f)) => Some(f),
            _ => None,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self, Self::Open)
    }

    pub(crate) fn is_stopped(&self) -> bool {
        matches!(self, Self::Stopped(_))
    }
}

/// A request from the poller to recover, valid only for the open generation it was made in.
#[derive(Debug, Clone)]
pub(crate) struct RecoverRequest {
    pub(crate) generation: u64,
    pub(crate) status_code: String,
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

/// Shared by the handle, the actor and the poller. Each group of fields has one writer:
/// `polled` the commit poller (`poller.rs`, also for the statuses the actor hands it),
/// `actor` the channel's actor, `controls` the handle and the runtime (see ARCHITECTURE.md,
/// "state → its one writer").
#[derive(Debug)]
pub(crate) struct ChannelShared {
    pub(crate) id: u64,
    pub(crate) path: Arc<ChannelPath>,
    /// What the server reported (written by the poller only).
    pub(crate) polled: Polled,
    /// The actor's lifecycle and counters (written by the actor only).
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

/// A channel's row-error events ([`crate::Channel::events`]).
#[derive(Debug, Default)]
pub(crate) enum Events {
    /// No subscriber yet: the 64 slots would cost every idle channel about 9 KB.
    #[default]
    Unsubscribed,
    /// Subscribed to: the poller publishes here.
    Open(broadcast::Sender<RowErrorEvent>),
    /// The channel's actor stopped: the sender is dropped, so every receiver gets the
    /// remaining events, then `Closed`, and a task counting them ends.
    Ended,
}

/// What the server reported about a channel. Written only by the commit poller (`poller.rs`),
/// which also applies the statuses the actor reads itself (before a reopen, in the reopen's
/// answer, in the final poll), each under a poll sequence number, so an older answer never
/// replaces a newer one.
#[derive(Debug)]
pub(crate) struct Polled {
    pub(crate) committed: watch::Sender<Option<OffsetToken>>,
    /// The server's last report, as the public status (its client-side fields zero: the
    /// snapshot fills them).
    pub(crate) status: watch::Sender<ChannelStatus>,
    /// A request to the actor to recover (the server reported an invalid status).
    pub(crate) recover: watch::Sender<Option<RecoverRequest>>,
    /// The row-error events' sender: made on the first subscription, ended when the actor
    /// stops.
    pub(crate) events: std::sync::Mutex<Events>,
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
    /// [`ActorState::acked_sends`] as it was when the newest successful poll of this channel
    /// started: appends acknowledged after that are not yet reflected in a status.
    pub(crate) polled_sends: AtomicU64,
}

/// The actor's lifecycle and counters, as the handle and the poller see them. Written only
/// by the channel's actor.
#[derive(Debug)]
pub(crate) struct ActorState {
    /// The channel's lifecycle (see [`Lifecycle`]).
    pub(crate) lifecycle: watch::Sender<Lifecycle>,
    /// Bumped on every (re)open; stale poller requests carry an older value.
    pub(crate) generation: AtomicU64,
    /// Sent batches not yet committed exist.
    pub(crate) pending: AtomicBool,
    /// Appends acknowledged so far (with [`Polled::polled_sends`]: whether closing the
    /// channel polls once more, to report row errors in its last batches).
    pub(crate) acked_sends: AtomicU64,
    pub(crate) buffered_bytes: AtomicUsize,
    pub(crate) buffered_rows: AtomicUsize,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) retained_batches: AtomicUsize,
    pub(crate) retained_bytes: AtomicUsize,
    pub(crate) recoveries: AtomicU64,
    /// Since when rows have waited here (buffered, in flight or retained) without the
    /// committed token moving: set by the actor when work starts to wait, cleared when none
    /// waits, restarted by the poller when the committed token moves
    /// ([`ChannelStatus::uncommitted_for`]).
    pub(crate) waiting_since: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// The first token of each recent request the server accepted, by its end token
    /// ([`super::request_spans`]): which rows a row error's offset bound stands for.
    pub(crate) request_spans: std::sync::Mutex<super::request_spans::RequestSpans>,
}

/// Signals from the handle and the runtime to the actor (and the poller). Tokens, not
/// commands, where the actor must hear them while it is not reading its mailbox (during a
/// recovery, or with the mailbox full).
#[derive(Debug)]
pub(crate) struct Controls {
    /// Tasks inside `wait_for_commit` / `close` waiting for a commit (see [`WaiterGuard`]).
    pub(crate) waiters: AtomicUsize,
    /// Client shutdown (a child of the client's token, cancelled by `client.close()`): the
    /// actor refuses appends and drains. A token so one cancel reaches every channel, also
    /// those busy recovering.
    pub(crate) shutdown: CancellationToken,
    /// `close()` timed out (cancelled by the handle's close): the actor exits at once,
    /// dropping what it buffered. A token because the mailbox may be full, or not read.
    pub(crate) abort: CancellationToken,
    /// The handle was dropped (cancelled by its `Drop`): the actor drains with a short limit
    /// and never reopens the channel again. The closed mailbox says the same, but only to an
    /// actor reading it, which a recovering one is not.
    pub(crate) handle_dropped: CancellationToken,
}

/// Counts a task waiting for a commit, so the poller polls at the fast cadence.
pub(crate) struct WaiterGuard<'a>(&'a ChannelShared);

impl<'a> WaiterGuard<'a> {
    pub(crate) fn new(shared: &'a ChannelShared) -> Self {
        shared.controls.waiters.fetch_add(1, Ordering::Relaxed);
        Self(shared)
    }
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.controls.waiters.fetch_sub(1, Ordering::Relaxed);
    }
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
            .map(OffsetToken::from_wire);
        let metrics = Metrics::new(&path);
        Self {
            id,
            path: Arc::new(path),
            polled: Polled {
                committed: watch::Sender::new(committed),
                status: watch::Sender::new(ChannelStatus::from_server(opened.clone())),
                recover: watch::Sender::new(None),
                events: std::sync::Mutex::new(Events::Unsubscribed),
                errors_seen: AtomicU64::new(opened.rows_error_count.unwrap_or(0)),
                poll_trouble: std::sync::Mutex::new(None),
                stalled: watch::Sender::new(false),
                applied_poll: AtomicU64::new(0),
                polled_sends: AtomicU64::new(0),
            },
            actor: ActorState {
                lifecycle: watch::Sender::new(Lifecycle::Open),
                generation: AtomicU64::new(1),
                pending: AtomicBool::new(false),
                acked_sends: AtomicU64::new(0),
                request_spans: std::sync::Mutex::default(),
                buffered_bytes: AtomicUsize::new(0),
                buffered_rows: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                retained_batches: AtomicUsize::new(0),
                retained_bytes: AtomicUsize::new(0),
                recoveries: AtomicU64::new(0),
                waiting_since: std::sync::Mutex::new(None),
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

    /// Whether appends were acknowledged that no successful status poll has reflected yet.
    pub(crate) fn unpolled_sends(&self) -> bool {
        self.actor.acked_sends.load(Ordering::Acquire)
            > self.polled.polled_sends.load(Ordering::Acquire)
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
        let Failure {
            kind,
            reason,
            last_committed,
            source,
        } = failure.clone();
        // Both variants carry the same four fields.
        macro_rules! error {
            ($variant:ident) => {
                Error::$variant {
                    channel,
                    reason,
                    last_committed,
                    source,
                }
            };
        }
        match kind {
            FailureKind::Invalidated => error!(ChannelInvalidated),
            FailureKind::OwnershipLost => error!(OwnershipLost),
        }
    }

    /// `Ok` while the channel is open; the error to return otherwise.
    pub(crate) fn check_open(&self) -> crate::Result<()> {
        match &*self.actor.lifecycle.borrow() {
            Lifecycle::Open => Ok(()),
            Lifecycle::Failed(f) => Err(self.invalidated(f)),
            Lifecycle::Closing | Lifecycle::Stopped(_) => {
                Err(Error::shutdown(format!("channel {}", self.name())))
            }
        }
    }

    /// Since when work has waited without a commit (see [`ActorState::waiting_since`]).
    fn waiting(&self) -> Option<tokio::time::Instant> {
        *lock(&self.actor.waiting_since)
    }

    /// Whether rows wait here: buffered, in flight, or sent and not yet committed.
    fn work_waits(&self) -> bool {
        self.actor.buffered_rows.load(Ordering::Relaxed) > 0
            || self.actor.in_flight.load(Ordering::Relaxed) > 0
            || self.actor.retained_batches.load(Ordering::Relaxed) > 0
    }

    /// The actor published its counters: the waiting clock starts when work starts to wait
    /// and stops when none does.
    pub(crate) fn note_waiting(&self) {
        let waits = self.work_waits();
        let mut since = lock(&self.actor.waiting_since);
        match (waits, since.is_some()) {
            (true, false) => *since = Some(tokio::time::Instant::now()),
            (false, true) => *since = None,
            _ => {}
        }
    }

    /// The committed token moved: work still waiting starts a new clock.
    pub(crate) fn note_commit(&self) {
        let mut since = lock(&self.actor.waiting_since);
        if since.is_some() {
            *since = Some(tokio::time::Instant::now());
        }
    }

    /// Builds the public snapshot.
    pub(crate) fn snapshot(&self) -> ChannelStatus {
        let server = self.polled.status.borrow().clone();
        ChannelStatus {
            // The watch the handle's waiters read.
            committed_offset_token: self.polled.committed.borrow().clone(),
            buffered_bytes: self.actor.buffered_bytes.load(Ordering::Relaxed),
            buffered_rows: self.actor.buffered_rows.load(Ordering::Relaxed),
            in_flight_requests: self.actor.in_flight.load(Ordering::Relaxed),
            retained_batches: self.actor.retained_batches.load(Ordering::Relaxed),
            retained_bytes: self.actor.retained_bytes.load(Ordering::Relaxed),
            recoveries: self.actor.recoveries.load(Ordering::Relaxed),
            failed: matches!(*self.actor.lifecycle.borrow(), Lifecycle::Failed(_)),
            uncommitted_for: self.waiting().map(|since| since.elapsed()),
            ..server
        }
    }
}
