//! The sending side of a channel's actor: commands from the handle, sealing batches,
//! compressing and sending one request at a time, acknowledgements, and releasing what the
//! server committed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::ownership::{is_fenced, remember_released};
use super::recovery::is_recoverable;
use super::{Actor, AppendFuture, Cmd, InFlight, SentBatch};
use crate::channel::shared::{Failure, FailureKind, Lifecycle};
use crate::pipeline::batch::SealedBatch;
use crate::transport::{AppendAck, AppendRequest};
use crate::{Error, Result};

pub(super) fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Actor {
    pub(super) async fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Append(chunk) => {
                if self.failed() {
                    return; // dropped: the caller learns from the failed state
                }
                if chunk.end.is_some() {
                    self.last_end.clone_from(&chunk.end);
                }
                let before = self.queue.len();
                self.batcher
                    .push(*chunk, Instant::now(), epoch_ms(), &mut self.queue);
                self.number_sealed(before);
                if self.phase.is_draining() {
                    self.seal();
                }
            }
            Cmd::Flush(reply) => {
                if self.failed() {
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

    /// Numbers the batches sealed since `from`; a body made as its batch filled goes to the
    /// compression stage at once.
    pub(super) fn number_sealed(&mut self, from: usize) {
        for b in self.queue.iter_mut().skip(from) {
            b.seq = self.next_seq;
            self.next_seq += 1;
            if let Some(body) = b.body.take() {
                self.compress.file(b.seq, body);
            }
        }
    }

    /// Cuts the open batch (lag reached, flush, close).
    pub(super) fn seal(&mut self) {
        if let Some(b) = self.batcher.seal() {
            self.queue.push_back(b);
            self.number_sealed(self.queue.len() - 1);
        }
    }

    /// Whether a batch sealed now would be sent at once: none is queued or in flight.
    pub(super) fn sends_at_once(&self) -> bool {
        self.batcher.len() > 0 && self.queue.is_empty() && self.inflight.is_none() && !self.failed()
    }

    /// Seals the open batch before `max_client_lag` when producers are short of the memory
    /// budget and the batch would be sent at once. Its rows hold budget that only their
    /// commit gives back: with many channels and a small budget, waiting out the lag would
    /// leave the producers waiting while the network idles (1,000 channels, 64 MiB: 3.2×
    /// the rows/s; README, Performance). A channel already sending keeps filling its batch,
    /// so a busy channel's requests stay large.
    pub(super) fn seal_if_short(&mut self) {
        // Always read, so a shortage seen while busy does not wake the actor again.
        let short = self.shortage.is_short();
        if short && self.sends_at_once() {
            tracing::trace!(
                bytes = self.batcher.len(),
                "memory budget short: batch sealed before max_client_lag"
            );
            self.shared.metrics.sealed_for_memory.increment(1);
            self.seal();
        }
    }

    /// Starts compressing queued batches, and sends the next one when nothing is in flight
    /// and its body is ready (otherwise the finished compression wakes the actor).
    pub(super) fn pump(&mut self) {
        if self.failed() {
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
        debug_assert!(body.len() <= self.client.settings.max_request_bytes);
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
    pub(super) fn settle(&mut self) {
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
                self.gave_buffers = true;
            }
            b.budget.shrink_to(n);
        }
    }

    pub(super) fn request(&self, b: &SentBatch) -> AppendRequest {
        AppendRequest {
            body: b.body.clone(),
            compression: self.client.settings.compression,
            uncompressed_len: b.uncompressed_len,
            row_count: b.rows,
            start_offset_token: b.start.clone(),
            end_offset_token: b.end.clone(),
            continuation_token: self.continuation.clone(),
            min_append_timestamp_ms: b.min_ts_ms,
        }
    }

    pub(super) fn send_future(&self, b: &SentBatch) -> AppendFuture {
        let req = self.request(b);
        let api = Arc::clone(&self.client.api);
        let path = Arc::clone(&self.shared.path);
        let wire = Arc::clone(&self.wire);
        let session = self.session.clone();
        let m = &self.shared.metrics;
        m.data.requests.increment(1);
        m.data.wire_bytes.increment(b.body.len() as u64);
        tracing::trace!(
            channel = %path.channel,
            rows = b.rows,
            bytes = b.body.len(),
            offset_token = ?b.end,
            "sending batch"
        );
        Box::pin(async move { api.append_rows(&path, &req, session.as_ref(), &wire).await })
    }

    pub(super) async fn on_ack(&mut self, res: Result<AppendAck>) {
        let Some(InFlight { batch, .. }) = self.inflight.take() else {
            return;
        };
        match res {
            Ok(ack) => {
                self.continuation = ack.next_continuation_token;
                self.session = ack.session;
                self.acked(batch);
            }
            Err(e) if is_fenced(&e) => {
                self.shared.metrics.data.request_errors.increment(1);
                drop(batch);
                self.fenced(e);
            }
            Err(e) if is_recoverable(&e) => {
                self.shared.metrics.data.request_errors.increment(1);
                self.retained.push_back(batch);
                let lost = matches!(e, Error::Transport(_));
                self.recover(format!("append failed: {e}"), lost).await;
            }
            Err(e) => {
                self.shared.metrics.data.request_errors.increment(1);
                drop(batch);
                self.fail(format!("append failed: {e}"), e);
            }
        }
    }

    pub(super) fn acked(&mut self, mut batch: SentBatch) {
        if batch.continues && batch.end.is_none() {
            // The leading part of an append split across requests stays kept (for replay)
            // until its end token commits, but stops counting against the budget: otherwise an
            // append larger than the budget could never finish.
            batch.budget.shrink_to(0);
        }
        crate::sync::lock(&self.shared.actor.request_spans)
            .accepted(batch.start.as_ref(), batch.end.as_ref());
        self.shared.actor.acked_sends.fetch_add(1, Ordering::AcqRel);
        let was_pending = self.shared.actor.pending.load(Ordering::Relaxed);
        self.acked_seq = self.acked_seq.max(batch.seq);
        self.retained.push_back(batch);
        self.release();
        self.resolve_flushes();
        if !was_pending && !self.retained.is_empty() {
            // Switch the poller to the fast cadence now rather than at its next idle tick.
            self.poller.wake();
        }
    }

    pub(super) fn resolve_flushes(&mut self) {
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

    /// Releases retained batches the committed token covers, in order. A committed token
    /// this handle never sent fails the channel instead (see `ownership`).
    pub(super) fn release(&mut self) {
        let committed = self.committed_rx.borrow_and_update().clone();
        if !self.check_owner(committed.as_ref(), "while the channel was open") {
            return;
        }
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
                    if let Some(end) = b.end {
                        remember_released(&mut self.released_ends, end);
                    }
                    // Committed: the body's buffer can hold the next one.
                    self.shared.buffers.give(b.body);
                    self.gave_buffers = true;
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
            .actor
            .pending
            .store(!self.retained.is_empty(), Ordering::Relaxed);
    }

    pub(super) fn clear_buffers(&mut self) {
        self.batcher.clear();
        self.queue.clear();
        self.compress.clear();
        self.retained.clear();
        self.inflight = None;
        self.acked_seq = self.next_seq - 1;
        self.shared.actor.pending.store(false, Ordering::Relaxed);
    }

    /// Fails the channel for good (until the application reopens it): every later call
    /// returns [`Error::ChannelInvalidated`].
    pub(super) fn fail(&mut self, reason: String, source: Error) {
        self.fail_as(FailureKind::Invalidated, reason, Some(source));
    }

    /// Fails the channel with a failure of `kind`: what it buffered and kept is dropped,
    /// waiting flushes get the error, and the handle sees the failed state.
    pub(super) fn fail_as(&mut self, kind: FailureKind, reason: String, source: Option<Error>) {
        let failure = Failure {
            kind,
            reason,
            last_committed: self.committed_rx.borrow().clone(),
            source: source.map(Arc::new),
        };
        match kind {
            FailureKind::Invalidated => tracing::error!(
                channel = %self.shared.name(),
                pipe = %self.shared.path.pipe.pipe,
                offset_token = ?failure.last_committed,
                reason = %failure.reason,
                "channel failed; reopen it and replay after the committed offset token"
            ),
            // Expected in scale-out (a rebalance, a rolling deploy): the error reaches every
            // caller, who decides how loud it is.
            FailureKind::OwnershipLost => tracing::info!(
                channel = %self.shared.name(),
                pipe = %self.shared.path.pipe.pipe,
                offset_token = ?failure.last_committed,
                reason = %failure.reason,
                "channel taken over by another writer; this handle sends nothing more"
            ),
        }
        // Published before any waiter hears of it: a caller told by `flush()` that the
        // channel failed finds every later call refused.
        self.publish(Lifecycle::Failed(failure.clone()));
        for (_, _, reply) in self.flushes.drain(..) {
            let _ = reply.send(Err(self.shared.invalidated(&failure)));
        }
        self.clear_buffers();
    }
}
