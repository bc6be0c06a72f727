//! The per-channel actor: owns the buffer, the continuation token and the retained batches;
//! sends one append at a time (`send`); recovers from invalidation by reopening and replaying
//! (`recovery`); stops for good when another writer takes the channel (`ownership`); delivers
//! what was admitted before it exits (`drain`).
//!
//! What callers see of its life is the one [`Lifecycle`] it publishes (`Open`, `Failed`,
//! `Closing`, `Stopped`): the actor is its only writer, and keeps no copy of it. Its loop
//! has a private [`Phase`] besides, for when to exit: `Open` → `Draining` (close, client
//! shutdown, handle dropped) → exit, or `Stopping` when a recovery is cut short by an abort
//! or the drain deadline. A failed channel stays open for `reopen()` (or drains at once when
//! closed).

mod drain;
mod ownership;
mod recovery;
mod send;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

pub(crate) use super::cmd::Cmd;
use super::context::RuntimeInner;
use super::poller::Poller;
use super::shared::{ChannelShared, Failure, Lifecycle, RecoverRequest};
use crate::client_state::ClientState;
use crate::pipeline::batch::{Batcher, SealedBatch};
use crate::pipeline::budget::ShortageWatch;
use crate::pipeline::compress::CompressStage;
use crate::transport::{AppendAck, ChannelWire};
use crate::{OffsetToken, Result};

/// See [`Actor::accepting`].
pub(crate) const MAX_QUEUED_REQUESTS: usize = 4;
/// How long a channel dropped without `close()` keeps trying to send its buffer.
pub(crate) const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a channel closed by `client.close()` keeps trying to send its buffer.
pub(crate) const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// A channel with nothing to send for this long frees its zstd context (about 1 MB) and idle
/// row buffers; they are recreated by the next batch.
pub(crate) const CODEC_IDLE_RELEASE: Duration = Duration::from_secs(5);
/// Longest wait for the status poll a closing channel makes to report row errors in its
/// last batches.
pub(crate) const FINAL_POLL_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many automatic recoveries from server-side invalidation (`ERR_CHANNEL_*`,
/// HTTP 409, an invalid status code) within [`RECOVERY_WINDOW`]: more means the server keeps
/// invalidating the channel.
pub(crate) const MAX_RECOVERIES: usize = 5;
/// At most this many automatic recoveries from lost responses (timeouts, broken connections)
/// within [`RECOVERY_WINDOW`].
pub(crate) const MAX_LOST_RESPONSE_RECOVERIES: usize = 20;
/// See [`MAX_RECOVERIES`].
pub(crate) const RECOVERY_WINDOW: Duration = Duration::from_secs(60);

/// A batch after compression: what goes on the wire, kept until committed.
#[derive(Debug)]
struct SentBatch {
    seq: u64,
    body: Bytes,
    uncompressed_len: usize,
    rows: usize,
    start: Option<OffsetToken>,
    end: Option<OffsetToken>,
    min_ts_ms: u64,
    first_sent: Instant,
    /// Ends in the middle of an append that continues in a later batch.
    continues: bool,
    budget: crate::pipeline::budget::BudgetBytes,
}

/// A pending `flush()`: resolved once batch `.0` is acknowledged, with the end token `.1`.
type FlushWaiter = (
    u64,
    Option<OffsetToken>,
    oneshot::Sender<Result<Option<OffsetToken>>>,
);

type AppendFuture = Pin<Box<dyn Future<Output = Result<AppendAck>> + Send>>;

struct InFlight {
    fut: AppendFuture,
    batch: SentBatch,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("seq", &self.batch.seq)
            .finish()
    }
}

/// The in-flight append's outcome (pending forever when none is in flight).
async fn poll_inflight(inflight: &mut Option<InFlight>) -> Result<AppendAck> {
    match inflight {
        Some(f) => f.fut.as_mut().await,
        None => std::future::pending().await,
    }
}

pub(super) async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Where the actor is in its life (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Taking commands.
    Open,
    /// Delivering what was admitted, then exiting; rows still undelivered at `deadline` are
    /// dropped (recorded as the channel's failure).
    Draining {
        since: Instant,
        deadline: Option<Instant>,
    },
    /// Exit now: a recovery was interrupted by an abort or the drain deadline.
    /// `replay_pending`: it still had kept batches to replay (they were not delivered).
    Stopping {
        since: Option<Instant>,
        replay_pending: bool,
    },
}

impl Phase {
    fn is_draining(self) -> bool {
        matches!(self, Self::Draining { .. })
    }

    /// The drain deadline, while draining with one.
    fn deadline(self) -> Option<Instant> {
        match self {
            Self::Draining { deadline, .. } => deadline,
            _ => None,
        }
    }

    /// Since when the channel has been draining.
    fn drain_started(self) -> Option<Instant> {
        match self {
            Self::Draining { since, .. } => Some(since),
            Self::Stopping { since, .. } => since,
            Self::Open => None,
        }
    }
}

enum Event {
    Ack(Result<AppendAck>),
    Cmd(Option<Cmd>),
    Lag,
    Committed,
    Recover,
    Shutdown,
    DrainTimeout,
    Idle,
    /// A compression job finished.
    Compressed,
    /// The memory budget ran short (see [`Actor::seal_if_short`]).
    Short,
}

/// The actor. Created by the runtime at open; runs until closed, dropped or shut down.
#[derive(Debug)]
pub(crate) struct Actor {
    /// The client's state: the REST layer and the settings.
    client: Arc<ClientState>,
    shared: Arc<ChannelShared>,
    poller: Arc<Poller>,
    rx: mpsc::Receiver<Cmd>,
    /// The handle is gone: no command will come (the mailbox, not the lifecycle).
    rx_closed: bool,
    phase: Phase,
    committed_rx: watch::Receiver<Option<OffsetToken>>,
    recover_rx: watch::Receiver<Option<RecoverRequest>>,
    continuation: String,
    /// The sticky session the last insert was answered with, echoed on the next one
    /// (docs/protocol.md "Sticky sessions"); forgotten when the channel reopens.
    session: Option<http::HeaderValue>,
    /// What the REST layer keeps between this channel's appends (the pacing clock): this
    /// actor's, lent to each append.
    wire: Arc<ChannelWire>,
    batcher: Batcher,
    queue: VecDeque<SealedBatch>,
    retained: VecDeque<SentBatch>,
    inflight: Option<InFlight>,
    next_seq: u64,
    acked_seq: u64,
    flushes: Vec<FlushWaiter>,
    closes: Vec<oneshot::Sender<Result<()>>>,
    last_end: Option<OffsetToken>,
    /// The committed token known to precede every retained batch.
    base: Option<OffsetToken>,
    /// End tokens of the last batches the server committed (see `ownership`).
    released_ends: VecDeque<OffsetToken>,
    /// When recent recoveries started, and whether each was for a lost response.
    recovery_times: VecDeque<(Instant, bool)>,
    /// Since when the channel has had nothing to compress (see [`CODEC_IDLE_RELEASE`]).
    idle_since: Option<Instant>,
    /// Whether the channel gave buffers back to the client's pool since it was last idle.
    gave_buffers: bool,
    compress: CompressStage,
    /// Whether producers are short of the memory budget (see [`Actor::seal_if_short`]).
    shortage: ShortageWatch,
}

impl Actor {
    /// The actor of the channel `shared`, opened with `continuation`, using the client's
    /// server, settings, poller, compressor pool and budget (`rt`).
    pub(super) fn new(
        rt: &RuntimeInner,
        shared: Arc<ChannelShared>,
        rx: mpsc::Receiver<Cmd>,
        continuation: String,
    ) -> Self {
        let client = &rt.client;
        let compress = CompressStage::new(Arc::clone(&client.compressors));
        let base = shared.polled.committed.borrow().clone();
        Self {
            committed_rx: shared.polled.committed.subscribe(),
            recover_rx: shared.polled.recover.subscribe(),
            batcher: Batcher::new(client.settings.batch_cap()).compress_early(
                Arc::clone(&client.compressors),
                Arc::clone(&shared.buffers),
                client.budget.clone(),
            ),
            client: Arc::clone(client),
            shared,
            poller: Arc::clone(&rt.poller),
            rx,
            rx_closed: false,
            phase: Phase::Open,
            continuation,
            session: None,
            wire: Arc::default(),
            queue: VecDeque::new(),
            retained: VecDeque::new(),
            inflight: None,
            next_seq: 1,
            acked_seq: 0,
            flushes: Vec::new(),
            closes: Vec::new(),
            last_end: None,
            base,
            released_ends: VecDeque::new(),
            recovery_times: VecDeque::new(),
            idle_since: None,
            gave_buffers: false,
            compress,
            shortage: client.budget.shortage(),
        }
    }

    /// Runs until the channel is closed.
    pub(crate) async fn run(mut self) {
        loop {
            if matches!(self.phase, Phase::Stopping { .. }) {
                self.give_up_drain();
                break;
            }
            if self.finished() {
                if !self.failed() {
                    self.final_poll().await;
                }
                break;
            }
            self.seal_if_short();
            self.pump();
            let lag = self
                .batcher
                .first_at()
                .map(|t| t + self.client.settings.max_client_lag);
            let drain_deadline = self.phase.deadline();
            let idle = self.idle_deadline();
            let accepting = self.accepting();
            let sends_at_once = self.sends_at_once();
            let event = tokio::select! {
                res = poll_inflight(&mut self.inflight), if self.inflight.is_some() => Event::Ack(res),
                cmd = self.rx.recv(), if !self.rx_closed && accepting => Event::Cmd(cmd),
                () = sleep_until_opt(lag), if lag.is_some() => Event::Lag,
                _ = self.committed_rx.changed() => Event::Committed,
                _ = self.recover_rx.changed() => Event::Recover,
                () = self.shared.controls.shutdown.cancelled(), if !self.phase.is_draining() => Event::Shutdown,
                () = self.shared.controls.abort.cancelled() => Event::DrainTimeout,
                () = sleep_until_opt(drain_deadline), if drain_deadline.is_some() => Event::DrainTimeout,
                () = sleep_until_opt(idle), if idle.is_some() => Event::Idle,
                () = self.compress.next(), if self.compress.busy() => Event::Compressed,
                () = self.shortage.next(), if sends_at_once => Event::Short,
            };
            // Appends only change the buffer: skip re-summing the retained batches for them.
            let append_only = matches!(event, Event::Cmd(Some(Cmd::Append(_))));
            match event {
                // Boxed: its future (which can recover the channel) would otherwise be part of
                // every idle channel's task, ≈ 950 bytes.
                Event::Ack(res) => Box::pin(self.on_ack(res)).await,
                Event::Cmd(Some(cmd)) => self.on_cmd(cmd).await,
                Event::Cmd(None) => {
                    self.rx_closed = true;
                    self.start_drain(Some(DROP_FLUSH_TIMEOUT));
                }
                Event::Lag => self.seal(),
                Event::Committed => self.release(),
                Event::Recover => {
                    let req = self.recover_rx.borrow_and_update().clone();
                    if let Some(req) = req {
                        let current = self.shared.actor.generation.load(Ordering::Acquire);
                        if req.generation == current && !self.failed() {
                            self.recover(
                                format!("the server reported status {}", req.status_code),
                                false,
                            )
                            .await;
                        }
                    }
                }
                Event::Shutdown => self.on_shutdown(),
                Event::DrainTimeout => {
                    self.give_up_drain();
                    break;
                }
                Event::Compressed | Event::Short => {}
                Event::Idle => {
                    // Buffers this channel gave back have been idle at least as long (those
                    // of busier channels are younger and stay).
                    self.shared.buffers.release_idle(CODEC_IDLE_RELEASE);
                    self.gave_buffers = false;
                    self.idle_since = None;
                }
            }
            self.publish_gauges(!append_only);
        }
        // `Drop` does the cleanup, also when the task is aborted.
    }

    /// Whether to take more commands: not while the sealed batches waiting to be sent hold
    /// [`MAX_QUEUED_REQUESTS`] requests' worth of rows. Appends then wait in the mailbox (and
    /// `append_*` callers behind it), so a producer faster than the server stays a few
    /// requests ahead (plus what the mailbox holds: see the module docs of `channel`) instead
    /// of filling the whole memory budget: more queued rows would not be sent any sooner,
    /// only cost memory and starve other channels.
    pub(super) fn accepting(&self) -> bool {
        self.queued_bytes() < MAX_QUEUED_REQUESTS * self.client.settings.batch_cap()
    }

    /// Uncompressed bytes of the sealed batches waiting to be sent.
    pub(super) fn queued_bytes(&self) -> usize {
        self.queue.iter().map(|b| b.len).sum()
    }

    /// Rows buffered and not yet sent: the open batch and the sealed ones.
    pub(super) fn buffered_rows(&self) -> usize {
        self.batcher.rows() + self.queue.iter().map(|b| b.rows).sum::<usize>()
    }

    /// When to free the pooled buffers this channel gave back: [`CODEC_IDLE_RELEASE`] after
    /// the channel last had anything to compress (`None` while busy or when it gave none).
    pub(super) fn idle_deadline(&mut self) -> Option<Instant> {
        let idle = self.batcher.len() == 0
            && self.queue.is_empty()
            && self.inflight.is_none()
            && !self.compress.busy()
            && self.gave_buffers;
        if !idle {
            self.idle_since = None;
            return None;
        }
        let since = *self.idle_since.get_or_insert_with(Instant::now);
        Some(since + CODEC_IDLE_RELEASE)
    }

    /// Publishes the channel's lifecycle (the actor is its one writer).
    pub(super) fn publish(&self, lifecycle: Lifecycle) {
        self.shared.actor.lifecycle.send_replace(lifecycle);
    }

    /// The failure the channel has, if it failed.
    pub(super) fn failure(&self) -> Option<Failure> {
        self.shared.actor.lifecycle.borrow().failure().cloned()
    }

    /// Whether the channel has failed.
    pub(super) fn failed(&self) -> bool {
        self.shared.actor.lifecycle.borrow().failure().is_some()
    }

    /// Publishes the buffer counters (and, when `all`, the retained-batch counters, which
    /// cost a pass over the retained batches).
    pub(super) fn publish_gauges(&self, all: bool) {
        let s = &self.shared;
        let buffered = self.batcher.len() + self.queued_bytes();
        let rows = self.buffered_rows();
        s.actor.buffered_bytes.store(buffered, Ordering::Relaxed);
        s.actor.buffered_rows.store(rows, Ordering::Relaxed);
        s.metrics.data.buffer_bytes.set(buffered as f64);
        if !all {
            s.note_waiting();
            return;
        }
        let retained: usize = self.retained.iter().map(|b| b.body.len()).sum::<usize>()
            + self.inflight.as_ref().map_or(0, |f| f.batch.body.len());
        s.actor
            .in_flight
            .store(usize::from(self.inflight.is_some()), Ordering::Relaxed);
        s.actor
            .retained_batches
            .store(self.retained.len(), Ordering::Relaxed);
        s.actor.retained_bytes.store(retained, Ordering::Relaxed);
        s.metrics.retained_bytes.set(retained as f64);
        s.note_waiting();
    }
}

impl Drop for Actor {
    fn drop(&mut self) {
        self.cleanup();
    }
}
