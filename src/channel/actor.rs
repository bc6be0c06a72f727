//! The per-channel actor: owns the buffer, the continuation token and the retained batches;
//! sends one append at a time; recovers from invalidation by reopening and replaying.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::batch::{Batcher, Chunk, SealedBatch};
use super::compress::{CompressPermits, CompressStage};
use super::poller::Poller;
use super::shared::{ChannelShared, Failure, RecoverRequest, State};
use super::ChannelSettings;
use crate::api::OpenChannelRequest;
use crate::error::TransportErrorKind;
use crate::transport::{AppendRequest, IngestApi};
use crate::{Error, OffsetToken, Result};

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
/// At most this many automatic recoveries from invalidation (stale continuation token,
/// `ERR_CHANNEL_*`, an invalid status code) within [`RECOVERY_WINDOW`]: more means another
/// writer keeps reopening the channel.
pub(crate) const MAX_RECOVERIES: usize = 5;
/// At most this many automatic recoveries from lost responses (timeouts, broken connections)
/// within [`RECOVERY_WINDOW`].
pub(crate) const MAX_LOST_RESPONSE_RECOVERIES: usize = 20;
/// See [`MAX_RECOVERIES`].
pub(crate) const RECOVERY_WINDOW: Duration = Duration::from_secs(60);

/// Commands from the handle.
#[derive(Debug)]
pub(crate) enum Cmd {
    Append(Chunk),
    /// Resolves when every row accepted before it has been sent, with the last end token.
    Flush(oneshot::Sender<Result<Option<OffsetToken>>>),
    /// Drains and exits.
    Close(oneshot::Sender<Result<()>>),
    /// Reopens on the server, discarding everything buffered; returns the committed token.
    Reopen(oneshot::Sender<Result<Option<OffsetToken>>>),
}

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
    budget: super::budget::BudgetBytes,
}

/// A pending `flush()`: resolved once batch `.0` is acknowledged, with the end token `.1`.
type FlushWaiter = (
    u64,
    Option<OffsetToken>,
    oneshot::Sender<Result<Option<OffsetToken>>>,
);

type AppendFuture = Pin<Box<dyn Future<Output = Result<String>> + Send>>;

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

/// Whether an append error means "reopen and replay" rather than "give up".
pub(crate) fn is_recoverable(e: &Error) -> bool {
    match e {
        Error::Server(s) => {
            s.status == 409
                || s.code.as_deref().is_some_and(|c| {
                    c == "STALE_CONTINUATION_TOKEN_SEQUENCER" || c.starts_with("ERR_CHANNEL_")
                })
        }
        // Decode: an HTTP 200 whose body is unreadable (a proxy's page, a truncated
        // response). The rows may have been applied, the next continuation token is unknown:
        // the same "outcome unknown" case as a timeout, so reopen and replay.
        Error::Transport(t) => matches!(
            t.kind,
            TransportErrorKind::Timeout
                | TransportErrorKind::Interrupted
                | TransportErrorKind::Decode
        ),
        Error::ChannelInvalidated { .. } => true,
        _ => false,
    }
}

/// Where replay starts after a reopen reported `committed`: the index of the first retained
/// batch to re-send, or `None` when the committed token cannot be placed among them.
fn replay_start(
    retained: &VecDeque<SentBatch>,
    committed: Option<&OffsetToken>,
    base: Option<&OffsetToken>,
) -> Option<usize> {
    if let Some(c) = committed {
        if let Some(i) = retained
            .iter()
            .rposition(|b| b.end.as_ref().is_some_and(|e| c.reaches(e)))
        {
            return Some(i + 1);
        }
    }
    if committed == base || retained.is_empty() {
        return Some(0);
    }
    let first = retained
        .iter()
        .find_map(|b| b.start.as_ref().or(b.end.as_ref()))?;
    match committed?.partial_cmp_numeric(first) {
        Some(std::cmp::Ordering::Less) => Some(0),
        _ => None,
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn poll_inflight(inflight: &mut Option<InFlight>) -> Result<String> {
    match inflight {
        Some(f) => f.fut.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Why a guarded wait during recovery stopped early.
#[derive(Debug, Clone, Copy)]
enum Interrupt {
    /// Abort (close timeout) or the drain deadline: stop the actor now.
    Stop,
    /// The recovery episode ran out of time: fail the channel.
    Timeout,
}

enum Event {
    Ack(Result<String>),
    Cmd(Option<Cmd>),
    Lag,
    Committed,
    Recover,
    Shutdown,
    DrainTimeout,
    Idle,
    /// A compression job finished.
    Compressed,
}

/// The actor. Created by the runtime at open; runs until closed, dropped or shut down.
#[derive(Debug)]
pub(crate) struct Actor {
    api: Arc<dyn IngestApi>,
    shared: Arc<ChannelShared>,
    settings: Arc<ChannelSettings>,
    poller: Arc<Poller>,
    rx: mpsc::Receiver<Cmd>,
    rx_closed: bool,
    committed_rx: watch::Receiver<Option<OffsetToken>>,
    recover_rx: watch::Receiver<Option<RecoverRequest>>,
    continuation: String,
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
    failure: Option<Failure>,
    /// When recent recoveries started, and whether each was for a lost response.
    recovery_times: VecDeque<(Instant, bool)>,
    draining: bool,
    drain_started: Option<Instant>,
    drain_deadline: Option<Instant>,
    /// A recovery was in progress when the drain gave up (its batches were undelivered).
    draining_recovery: bool,
    /// Exit the run loop now (a recovery was interrupted by abort or the drain deadline).
    stop: bool,
    /// Since when the channel has had nothing to compress (see [`CODEC_IDLE_RELEASE`]).
    idle_since: Option<Instant>,
    compress: CompressStage,
}

impl Actor {
    pub(crate) fn new(
        api: Arc<dyn IngestApi>,
        shared: Arc<ChannelShared>,
        settings: Arc<ChannelSettings>,
        poller: Arc<Poller>,
        rx: mpsc::Receiver<Cmd>,
        continuation: String,
        permits: CompressPermits,
    ) -> Result<Self> {
        let compress = CompressStage::new(permits);
        let base = shared.committed.borrow().clone();
        Ok(Self {
            committed_rx: shared.committed.subscribe(),
            recover_rx: shared.recover.subscribe(),
            batcher: Batcher::new(settings.batch_cap()),
            api,
            shared,
            settings,
            poller,
            rx,
            rx_closed: false,
            continuation,
            queue: VecDeque::new(),
            retained: VecDeque::new(),
            inflight: None,
            next_seq: 1,
            acked_seq: 0,
            flushes: Vec::new(),
            closes: Vec::new(),
            last_end: None,
            base,
            failure: None,
            recovery_times: VecDeque::new(),
            draining: false,
            drain_started: None,
            drain_deadline: None,
            draining_recovery: false,
            stop: false,
            idle_since: None,
            compress,
        })
    }

    /// Runs until the channel is closed.
    pub(crate) async fn run(mut self) {
        loop {
            if self.stop {
                self.give_up_drain();
                break;
            }
            if self.finished() {
                if self.failure.is_none() {
                    self.final_poll().await;
                }
                break;
            }
            self.pump();
            let lag = self
                .batcher
                .first_at()
                .map(|t| t + self.settings.max_client_lag);
            let drain_deadline = self.drain_deadline;
            let idle = self.idle_deadline();
            let accepting = self.accepting();
            let event = tokio::select! {
                res = poll_inflight(&mut self.inflight), if self.inflight.is_some() => Event::Ack(res),
                cmd = self.rx.recv(), if !self.rx_closed && accepting => Event::Cmd(cmd),
                () = sleep_until_opt(lag), if lag.is_some() => Event::Lag,
                _ = self.committed_rx.changed() => Event::Committed,
                _ = self.recover_rx.changed() => Event::Recover,
                () = self.shared.shutdown.cancelled(), if !self.draining => Event::Shutdown,
                () = self.shared.abort.cancelled() => Event::DrainTimeout,
                () = sleep_until_opt(drain_deadline), if drain_deadline.is_some() => Event::DrainTimeout,
                () = sleep_until_opt(idle), if idle.is_some() => Event::Idle,
                () = self.compress.next(), if self.compress.busy() => Event::Compressed,
            };
            // Appends only change the buffer: skip re-summing the retained batches for them.
            let append_only = matches!(event, Event::Cmd(Some(Cmd::Append(_))));
            match event {
                Event::Ack(res) => self.on_ack(res).await,
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
                        let current = self.shared.generation.load(Ordering::Acquire);
                        if req.generation == current && self.failure.is_none() {
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
                Event::Compressed => {}
                Event::Idle => {
                    self.shared.buffers.clear();
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
    /// requests ahead instead of filling the whole memory budget: more queued rows would not
    /// be sent any sooner, only cost memory (and page faults) and starve other channels.
    fn accepting(&self) -> bool {
        self.queued_bytes() < MAX_QUEUED_REQUESTS * self.settings.batch_cap()
    }

    /// Uncompressed bytes of the sealed batches waiting to be sent.
    fn queued_bytes(&self) -> usize {
        self.queue.iter().map(|b| b.len).sum()
    }

    /// Rows buffered and not yet sent: the open batch and the sealed ones.
    fn buffered_rows(&self) -> usize {
        self.batcher.rows() + self.queue.iter().map(|b| b.rows).sum::<usize>()
    }

    /// When to release the codec's buffers: [`CODEC_IDLE_RELEASE`] after the channel last had
    /// anything to compress (`None` while busy or when nothing is held).
    fn idle_deadline(&mut self) -> Option<Instant> {
        let idle = self.batcher.len() == 0
            && self.queue.is_empty()
            && self.inflight.is_none()
            && !self.compress.busy()
            && self.shared.buffers.idle_bytes() > 0;
        if !idle {
            self.idle_since = None;
            return None;
        }
        let since = *self.idle_since.get_or_insert_with(Instant::now);
        Some(since + CODEC_IDLE_RELEASE)
    }

    fn finished(&self) -> bool {
        self.draining
            && (self.failure.is_some()
                || (self.batcher.len() == 0
                    && self.queue.is_empty()
                    && self.inflight.is_none()
                    // appends admitted before the close are still delivered
                    && (self.rx_closed || self.rx.is_empty())))
    }

    fn cleanup(&mut self) {
        self.poller.unregister(self.shared.id);
        self.batcher.clear();
        self.queue.clear();
        self.retained.clear();
        self.inflight = None;
        self.shared.buffers.clear();
        self.publish_gauges(true);
        self.shared.pending.store(false, Ordering::Relaxed);
        self.shared.state.send_replace(State::Closed);
        self.shared.stopped.send_replace(Some(self.failure.clone()));
        // Replied last: when `close()` returns, the name is free for a new open.
        for reply in std::mem::take(&mut self.closes) {
            let _ = reply.send(match &self.failure {
                None => Ok(()),
                Some(f) => Err(self.shared.invalidated(f)),
            });
        }
        tracing::debug!(channel = %self.shared.name(), "channel actor stopped");
    }
}

impl Drop for Actor {
    fn drop(&mut self) {
        self.cleanup();
    }
}

impl Actor {
    fn failure_error(&self) -> Error {
        match &self.failure {
            Some(f) => self.shared.invalidated(f),
            None => Error::shutdown(format!("channel {}", self.shared.name())),
        }
    }

    /// The drain deadline passed (or the close timed out): rows not delivered are dropped and
    /// recorded as the channel's failure, so `client.close()` reports them.
    fn give_up_drain(&mut self) {
        let mut rows = self.buffered_rows() + self.inflight.as_ref().map_or(0, |f| f.batch.rows);
        if self.draining_recovery {
            // Kept batches a recovery was about to replay were not delivered either.
            rows += self.retained.iter().map(|b| b.rows).sum::<usize>();
        }
        tracing::warn!(
            channel = %self.shared.name(),
            buffered_rows = rows,
            "channel closed before its buffer could be sent; those rows were dropped"
        );
        if self.failure.is_none() && (rows > 0 || self.draining_recovery) {
            let waited = self.drain_started.map_or(Duration::ZERO, |t| t.elapsed());
            self.failure = Some(Failure {
                reason: format!(
                    "the channel was closed before {rows} buffered rows could be delivered; \
                     replay after the committed offset token"
                ),
                last_committed: self.committed_rx.borrow().clone(),
                source: Arc::new(Error::Timeout {
                    operation: "channel close",
                    waited,
                }),
            });
        }
    }

    fn start_drain(&mut self, limit: Option<Duration>) {
        if !self.draining {
            self.draining = true;
            self.drain_started = Some(Instant::now());
            self.drain_deadline = limit.map(|d| Instant::now() + d);
        }
        self.seal();
    }

    async fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Append(chunk) => {
                if self.failure.is_some() {
                    return; // dropped: the caller learns from the failed state
                }
                if chunk.end.is_some() {
                    self.last_end.clone_from(&chunk.end);
                }
                let before = self.queue.len();
                self.batcher
                    .push(chunk, Instant::now(), epoch_ms(), &mut self.queue);
                self.number_sealed(before);
                if self.draining {
                    self.seal();
                }
            }
            Cmd::Flush(reply) => {
                if self.failure.is_some() {
                    let _ = reply.send(Err(self.failure_error()));
                    return;
                }
                self.seal();
                let target = self.next_seq - 1;
                if target <= self.acked_seq {
                    let _ = reply.send(Ok(self.last_end.clone()));
                } else {
                    self.flushes.push((target, self.last_end.clone(), reply));
                }
            }
            Cmd::Close(reply) => {
                self.closes.push(reply);
                self.start_drain(None);
            }
            Cmd::Reopen(reply) => {
                let res = self.reopen().await;
                let _ = reply.send(res);
            }
        }
    }

    fn number_sealed(&mut self, from: usize) {
        for b in self.queue.iter_mut().skip(from) {
            b.seq = self.next_seq;
            self.next_seq += 1;
        }
    }

    /// Cuts the open batch (lag reached, flush, close).
    fn seal(&mut self) {
        if let Some(b) = self.batcher.seal() {
            self.queue.push_back(b);
            self.number_sealed(self.queue.len() - 1);
        }
    }

    /// Starts compressing queued batches, and sends the next one when nothing is in flight
    /// and its body is ready (otherwise the finished compression wakes the actor).
    fn pump(&mut self) {
        if self.failure.is_some() {
            return;
        }
        self.compress.start(&self.queue, &self.shared.buffers);
        self.settle();
        if self.inflight.is_some() {
            return;
        }
        let Some(front) = self.queue.front() else {
            return;
        };
        let Some(body) = self.compress.take(front.seq) else {
            return;
        };
        let Some(sealed) = self.queue.pop_front() else {
            return;
        };
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                self.fail(
                    "compressing a batch failed".into(),
                    Error::Serialization {
                        row_index: 0,
                        message: format!("compression failed: {e}"),
                        source: Some(Box::new(e)),
                    },
                );
                return;
            }
        };
        debug_assert!(body.len() <= self.settings.max_request_bytes);
        let SealedBatch {
            len,
            rows,
            start,
            end,
            mut budget,
            min_ts_ms,
            seq,
            continues,
            ..
        } = sealed;
        // `settle` freed the rows when the body was filed; the batch costs its body.
        budget.shrink_to(body.len());
        let batch = SentBatch {
            seq,
            body,
            uncompressed_len: len,
            rows,
            start,
            end,
            min_ts_ms,
            first_sent: Instant::now(),
            continues,
            budget,
        };
        let fut = self.send_future(&batch);
        self.inflight = Some(InFlight { fut, batch });
    }

    /// Frees the rows of every queued batch whose body is ready: a retry resends the body,
    /// so the row buffers go back to the pool for the next appends now, and the batch is
    /// charged its compressed size from here on, not when it is sent. Bodies made ahead of
    /// sending are thus part of the budget, and rows are never held twice.
    fn settle(&mut self) {
        for b in &mut self.queue {
            if b.segments.is_empty() {
                continue;
            }
            let Some(n) = self.compress.ready_len(b.seq) else {
                continue;
            };
            // A segment still shared (the body of an uncompressed batch) is just dropped.
            for s in b.segments.drain(..) {
                self.shared.buffers.give(s);
            }
            b.budget.shrink_to(n);
        }
    }

    fn request(&self, b: &SentBatch) -> AppendRequest {
        AppendRequest {
            body: b.body.clone(),
            compression: self.settings.compression,
            uncompressed_len: b.uncompressed_len,
            row_count: b.rows,
            start_offset_token: b.start.clone(),
            end_offset_token: b.end.clone(),
            continuation_token: self.continuation.clone(),
            min_append_timestamp_ms: b.min_ts_ms,
        }
    }

    fn send_future(&self, b: &SentBatch) -> AppendFuture {
        let req = self.request(b);
        let api = Arc::clone(&self.api);
        let path = Arc::clone(&self.shared.path);
        let m = &self.shared.metrics;
        m.requests.increment(1);
        m.wire_bytes.increment(b.body.len() as u64);
        tracing::trace!(
            channel = %path.channel,
            rows = b.rows,
            bytes = b.body.len(),
            offset_token = ?b.end,
            "sending batch"
        );
        Box::pin(async move { api.append_rows(&path, &req).await })
    }

    async fn on_ack(&mut self, res: Result<String>) {
        let Some(InFlight { batch, .. }) = self.inflight.take() else {
            return;
        };
        match res {
            Ok(next) => {
                self.continuation = next;
                self.acked(batch);
            }
            Err(e) if is_recoverable(&e) => {
                self.shared.metrics.request_errors.increment(1);
                self.retained.push_back(batch);
                let lost = matches!(e, Error::Transport(_));
                self.recover(format!("append failed: {e}"), lost).await;
            }
            Err(e) => {
                self.shared.metrics.request_errors.increment(1);
                drop(batch);
                self.fail(format!("append failed: {e}"), e);
            }
        }
    }

    fn acked(&mut self, mut batch: SentBatch) {
        if batch.continues && batch.end.is_none() {
            // The leading part of an append split across requests stays kept (for replay)
            // until its end token commits, but stops counting against the budget: otherwise an
            // append larger than the budget could never finish.
            batch.budget.shrink_to(0);
        }
        self.shared.unpolled_sends.store(true, Ordering::Release);
        let was_pending = self.shared.pending.load(Ordering::Relaxed);
        self.acked_seq = self.acked_seq.max(batch.seq);
        self.retained.push_back(batch);
        self.release();
        self.resolve_flushes();
        if !was_pending && !self.retained.is_empty() {
            // Switch the poller to the fast cadence now rather than at its next idle tick.
            self.poller.wake();
        }
    }

    fn resolve_flushes(&mut self) {
        let acked = self.acked_seq;
        let mut i = 0;
        while i < self.flushes.len() {
            if self.flushes[i].0 <= acked {
                let (_, token, reply) = self.flushes.swap_remove(i);
                let _ = reply.send(Ok(token));
            } else {
                i += 1;
            }
        }
    }

    /// Releases retained batches the committed token covers, in order.
    fn release(&mut self) {
        let committed = self.committed_rx.borrow_and_update().clone();
        if let Some(c) = &committed {
            if let Some(i) = self
                .retained
                .iter()
                .rposition(|b| b.end.as_ref().is_some_and(|e| c.reaches(e)))
            {
                for b in self.retained.drain(..=i) {
                    self.shared
                        .metrics
                        .commit_latency
                        .record(b.first_sent.elapsed().as_secs_f64());
                    // Committed: the body's buffer can hold the next one.
                    self.shared.buffers.give(b.body);
                }
                self.base = committed.clone();
            }
        }
        // Batches without an end token cannot be matched against the committed token:
        // unless they lead into a later batch of the same append, they are released once
        // everything before them is committed.
        while self
            .retained
            .front()
            .is_some_and(|b| b.end.is_none() && !b.continues)
        {
            self.retained.pop_front();
        }
        self.shared
            .pending
            .store(!self.retained.is_empty(), Ordering::Relaxed);
    }

    fn clear_buffers(&mut self) {
        self.batcher.clear();
        self.queue.clear();
        self.compress.clear();
        self.retained.clear();
        self.inflight = None;
        self.acked_seq = self.next_seq - 1;
        self.shared.pending.store(false, Ordering::Relaxed);
    }

    fn fail(&mut self, reason: String, source: Error) {
        let failure = Failure {
            reason,
            last_committed: self.committed_rx.borrow().clone(),
            source: Arc::new(source),
        };
        tracing::error!(
            channel = %self.shared.name(),
            pipe = %self.shared.path.pipe.pipe,
            offset_token = ?failure.last_committed,
            reason = %failure.reason,
            "channel failed; reopen it and replay after the committed offset token"
        );
        self.failure = Some(failure.clone());
        for (_, _, reply) in self.flushes.drain(..) {
            let _ = reply.send(Err(self.shared.invalidated(&failure)));
        }
        self.clear_buffers();
        self.shared.state.send_replace(State::Failed(failure));
    }

    /// Awaits `fut` while still honouring the channel's controls: an abort (close timeout)
    /// or a passed drain deadline interrupts it, and so does the end of the recovery episode
    /// (`episode_deadline`); client shutdown and the handle being dropped start the drain
    /// (with its deadline) and keep waiting.
    async fn guarded<T>(
        &mut self,
        episode_deadline: Instant,
        fut: impl Future<Output = T>,
    ) -> std::result::Result<T, Interrupt> {
        tokio::pin!(fut);
        loop {
            let drain_deadline = self.drain_deadline;
            tokio::select! {
                biased;
                () = self.shared.abort.cancelled() => return Err(Interrupt::Stop),
                () = sleep_until_opt(drain_deadline), if drain_deadline.is_some() => {
                    return Err(Interrupt::Stop)
                }
                () = tokio::time::sleep_until(episode_deadline) => return Err(Interrupt::Timeout),
                () = self.shared.shutdown.cancelled(), if !self.draining => self.on_shutdown(),
                () = self.shared.handle_dropped.cancelled(), if !self.draining => {
                    self.start_drain(Some(DROP_FLUSH_TIMEOUT));
                }
                r = &mut fut => return Ok(r),
            }
        }
    }

    /// Before the channel is unregistered: when appends were acknowledged since the last
    /// status poll, polls once more so row errors in the last batches are reported (as
    /// events and in the status) rather than lost. Bounded by [`FINAL_POLL_TIMEOUT`], the
    /// drain deadline and an abort.
    async fn final_poll(&mut self) {
        if !self.shared.unpolled_sends.swap(false, Ordering::AcqRel) {
            return;
        }
        let api = Arc::clone(&self.api);
        let path = Arc::clone(&self.shared.path);
        let poll = async move {
            api.bulk_channel_status(&path.pipe, std::slice::from_ref(&path.channel))
                .await
        };
        let deadline = self.drain_deadline;
        let res = tokio::select! {
            biased;
            () = self.shared.abort.cancelled() => return,
            () = sleep_until_opt(deadline), if deadline.is_some() => return,
            r = tokio::time::timeout(FINAL_POLL_TIMEOUT, poll) => r,
        };
        match res {
            Ok(Ok(mut statuses)) => {
                if let Some(status) = statuses.remove(&self.shared.path.channel) {
                    self.shared.apply_status(status);
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(channel = %self.shared.name(), error = %e, "final status poll failed");
            }
            Err(_) => {
                tracing::debug!(channel = %self.shared.name(), "final status poll timed out");
            }
        }
    }

    /// The client is closing: refuse new appends, deliver what was admitted.
    fn on_shutdown(&mut self) {
        if self.failure.is_none() {
            self.shared.state.send_replace(State::Closed);
        }
        self.start_drain(Some(SHUTDOWN_FLUSH_TIMEOUT));
    }

    /// Reopens the channel and re-sends exactly the retained batches after the committed
    /// token. Bounded: at most [`MAX_RECOVERIES`] within [`RECOVERY_WINDOW`], with backoff,
    /// and at most `recovery_timeout` per episode (reopen attempts included, however long the
    /// REST layer retries each one). Abort, client shutdown and the handle being dropped are
    /// honoured meanwhile.
    async fn recover(&mut self, reason: String, lost_response: bool) {
        if self.shared.handle_dropped.is_cancelled() {
            // The application let go of this channel: reopening it now would take it away from
            // whoever owns it since (a new handle, another process) and replay rows that owner
            // resumed after the committed token: duplicates. Give up instead.
            let e = Error::ChannelInvalidated {
                channel: self.shared.name().to_owned(),
                reason: format!(
                    "{reason}; the handle was dropped, so the channel is not reopened: rows not                      yet committed are dropped (resume after the committed offset token)"
                ),
                last_committed: self.committed_rx.borrow().clone(),
                source: None,
            };
            self.fail("invalidated after its handle was dropped".into(), e);
            return;
        }
        let episode_deadline = Instant::now() + self.settings.recovery_timeout;
        match self
            .recover_until(reason, lost_response, episode_deadline)
            .await
        {
            Ok(()) => {}
            Err(Interrupt::Stop) => {
                self.draining_recovery = !self.retained.is_empty();
                self.stop = true;
            }
            Err(Interrupt::Timeout) => {
                let timeout = self.settings.recovery_timeout;
                let e = Error::ChannelInvalidated {
                    channel: self.shared.name().to_owned(),
                    reason: format!(
                        "automatic recovery did not succeed within {timeout:?} \
                         (recovery_timeout); the server or the network is failing"
                    ),
                    last_committed: self.committed_rx.borrow().clone(),
                    source: None,
                };
                self.fail(format!("recovery gave up after {timeout:?}"), e);
            }
        }
    }

    async fn recover_until(
        &mut self,
        mut reason: String,
        lost_response: bool,
        episode_deadline: Instant,
    ) -> std::result::Result<(), Interrupt> {
        if let Some(f) = self.inflight.take() {
            // The request may or may not have been applied: treat it as sent.
            self.retained.push_back(f.batch);
        }
        let limit = if lost_response {
            MAX_LOST_RESPONSE_RECOVERIES
        } else {
            MAX_RECOVERIES
        };
        let mut episode_attempts = 0usize;
        'reopen: loop {
            let now = Instant::now();
            while self
                .recovery_times
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > RECOVERY_WINDOW)
            {
                self.recovery_times.pop_front();
            }
            let attempt = self
                .recovery_times
                .iter()
                .filter(|(_, lost)| *lost == lost_response)
                .count();
            if attempt >= limit {
                let e = Error::ChannelInvalidated {
                    channel: self.shared.name().to_owned(),
                    reason: if lost_response {
                        format!(
                            "{limit} recoveries from lost responses within {RECOVERY_WINDOW:?}; \
                             the network or the server is failing"
                        )
                    } else {
                        format!(
                            "{limit} automatic recoveries within {RECOVERY_WINDOW:?}; is another \
                             writer using this channel?"
                        )
                    },
                    last_committed: self.committed_rx.borrow().clone(),
                    source: None,
                };
                self.fail(format!("recovery gave up: {reason}"), e);
                return Ok(());
            }
            self.recovery_times.push_back((now, lost_response));
            let backoff_step = attempt.max(episode_attempts);
            episode_attempts += 1;
            if backoff_step > 0 {
                let backoff = Duration::from_millis(100 << backoff_step.min(6));
                self.guarded(episode_deadline, tokio::time::sleep(backoff))
                    .await?;
            }
            self.shared.generation.fetch_add(1, Ordering::AcqRel);
            self.shared.recoveries.fetch_add(1, Ordering::Relaxed);
            self.shared.metrics.recoveries.increment(1);
            tracing::warn!(
                channel = %self.shared.name(),
                pipe = %self.shared.path.pipe.pipe,
                attempt = episode_attempts,
                reason = %reason,
                "channel invalidated; reopening and replaying uncommitted batches"
            );
            let request = OpenChannelRequest {
                offset_token: None,
                fail_on_uncommitted_rows: Some(false),
            };
            let api = Arc::clone(&self.api);
            let path = Arc::clone(&self.shared.path);
            let open = async move { api.open_channel(&path, &request).await };
            let resp = match self.guarded(episode_deadline, open).await? {
                Ok(r) => r,
                Err(e) if e.is_retryable() || is_recoverable(&e) => {
                    reason = format!("reopen failed: {e}");
                    continue 'reopen;
                }
                Err(e) => {
                    self.fail(format!("reopening failed: {e}"), e);
                    return Ok(());
                }
            };
            self.continuation = resp.next_continuation_token;
            let code = resp.channel_status.channel_status_code.clone();
            self.shared.apply_status(resp.channel_status);
            if let Some(code) = code.filter(|c| crate::api::status_code_is_invalid(c)) {
                reason = format!("reopened channel has status {code}");
                continue 'reopen;
            }
            let committed = self.committed_rx.borrow_and_update().clone();
            let Some(start) = replay_start(&self.retained, committed.as_ref(), self.base.as_ref())
            else {
                let e = Error::ChannelInvalidated {
                    channel: self.shared.name().to_owned(),
                    reason: format!(
                        "the committed offset token {committed:?} matches no batch kept for replay"
                    ),
                    last_committed: committed.clone(),
                    source: None,
                };
                self.fail("automatic recovery is impossible".into(), e);
                return Ok(());
            };
            // Every kept batch is now either committed or about to be re-sent: requests
            // already acknowledged before, or (the lost one) now known to be committed.
            for b in self.retained.drain(..start) {
                self.acked_seq = self.acked_seq.max(b.seq);
            }
            self.base.clone_from(&committed);
            for i in 0..self.retained.len() {
                let req = self.request(&self.retained[i]);
                self.shared.metrics.retries.increment(1);
                tracing::debug!(
                    channel = %self.shared.name(),
                    offset_token = ?self.retained[i].end,
                    attempt = episode_attempts,
                    "replaying batch"
                );
                let api = Arc::clone(&self.api);
                let path = Arc::clone(&self.shared.path);
                let append = async move { api.append_rows(&path, &req).await };
                match self.guarded(episode_deadline, append).await? {
                    Ok(next) => {
                        self.continuation = next;
                        self.shared.unpolled_sends.store(true, Ordering::Release);
                        self.acked_seq = self.acked_seq.max(self.retained[i].seq);
                    }
                    Err(e) if is_recoverable(&e) => {
                        reason = format!("replay failed: {e}");
                        continue 'reopen;
                    }
                    Err(e) => {
                        self.fail(format!("replay failed: {e}"), e);
                        return Ok(());
                    }
                }
            }
            self.release();
            self.resolve_flushes();
            if !self.retained.is_empty() {
                self.poller.wake();
            }
            return Ok(());
        }
    }

    /// The application's explicit reopen: discard everything, reopen, report the token.
    async fn reopen(&mut self) -> Result<Option<OffsetToken>> {
        let request = OpenChannelRequest {
            offset_token: None,
            fail_on_uncommitted_rows: Some(false),
        };
        let resp = self.api.open_channel(&self.shared.path, &request).await?;
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        self.continuation = resp.next_continuation_token;
        let discarded = Failure {
            reason: "the channel was reopened; rows not yet sent were discarded".into(),
            last_committed: None,
            source: Arc::new(Error::shutdown("previous channel session")),
        };
        for (_, _, reply) in self.flushes.drain(..) {
            let _ = reply.send(Err(self.shared.invalidated(&discarded)));
        }
        self.clear_buffers();
        self.shared.apply_status(resp.channel_status);
        let committed = self.committed_rx.borrow_and_update().clone();
        self.base.clone_from(&committed);
        self.failure = None;
        self.recovery_times.clear();
        self.last_end = None;
        self.shared.state.send_replace(State::Open);
        Ok(committed)
    }

    /// Publishes the buffer counters (and, when `all`, the retained-batch counters, which
    /// cost a pass over the retained batches).
    fn publish_gauges(&self, all: bool) {
        let s = &self.shared;
        let buffered = self.batcher.len() + self.queued_bytes();
        let rows = self.buffered_rows();
        s.buffered_bytes.store(buffered, Ordering::Relaxed);
        s.buffered_rows.store(rows, Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss)]
        s.metrics.buffer_bytes.set(buffered as f64);
        if !all {
            return;
        }
        let retained: usize = self.retained.iter().map(|b| b.body.len()).sum::<usize>()
            + self.inflight.as_ref().map_or(0, |f| f.batch.body.len());
        s.in_flight
            .store(usize::from(self.inflight.is_some()), Ordering::Relaxed);
        s.retained_batches
            .store(self.retained.len(), Ordering::Relaxed);
        s.retained_bytes.store(retained, Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss)]
        s.metrics.retained_bytes.set(retained as f64);
    }
}
