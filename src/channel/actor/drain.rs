//! How a channel's actor ends: draining what was admitted (close, client shutdown, handle
//! dropped), giving up at the drain deadline, the last status poll, and the cleanup.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{sleep_until_opt, Actor, Phase, FINAL_POLL_TIMEOUT, SHUTDOWN_FLUSH_TIMEOUT};
use crate::channel::shared::{Failure, FailureKind, Lifecycle};
use crate::Error;

impl Actor {
    pub(super) fn finished(&self) -> bool {
        self.phase.is_draining()
            && (self.failed()
                || (self.batcher.len() == 0
                    && self.queue.is_empty()
                    && self.inflight.is_none()
                    // appends admitted before the close are still delivered
                    && (self.rx_closed || self.rx.is_empty())))
    }

    pub(super) fn cleanup(&mut self) {
        self.poller.registry().remove(self.shared.id);
        // The row-error events end (after the final poll's): receivers get `Closed`.
        *crate::sync::lock(&self.shared.polled.events) = crate::channel::shared::Events::Ended;
        self.batcher.clear();
        self.queue.clear();
        self.retained.clear();
        self.inflight = None;
        // The client's idle buffers go with a closing channel (the others' next appends
        // allocate afresh: closes are rare, and an idle client then holds nothing).
        self.shared.buffers.clear();
        self.publish_gauges(true);
        self.shared.actor.pending.store(false, Ordering::Relaxed);
        let failure = self.failure();
        self.publish(Lifecycle::Stopped(failure.clone()));
        // Replied last: when `close()` returns, the name is free for a new open.
        for reply in std::mem::take(&mut self.closes) {
            let _ = reply.send(match &failure {
                None => Ok(()),
                Some(f) => Err(self.shared.invalidated(f)),
            });
        }
        tracing::debug!(channel = %self.shared.name(), "channel actor stopped");
    }

    pub(super) fn failure_error(&self) -> Error {
        match self.failure() {
            Some(f) => self.shared.invalidated(&f),
            None => Error::shutdown(format!("channel {}", self.shared.name())),
        }
    }

    /// The drain deadline passed (or the close timed out): rows not delivered are dropped and
    /// recorded as the channel's failure, so `client.close()` reports them.
    pub(super) fn give_up_drain(&mut self) {
        let mut rows = self.buffered_rows() + self.inflight.as_ref().map_or(0, |f| f.batch.rows);
        let replay_pending = matches!(
            self.phase,
            Phase::Stopping {
                replay_pending: true,
                ..
            }
        );
        if replay_pending {
            // Kept batches a recovery was about to replay were not delivered either.
            rows += self.retained.iter().map(|b| b.rows).sum::<usize>();
        }
        tracing::warn!(
            channel = %self.shared.name(),
            buffered_rows = rows,
            "channel closed before its buffer could be sent; those rows were dropped"
        );
        if !self.failed() && (rows > 0 || replay_pending) {
            let waited = self
                .phase
                .drain_started()
                .map_or(Duration::ZERO, |t| t.elapsed());
            self.publish(Lifecycle::Failed(Failure {
                kind: FailureKind::Invalidated,
                reason: format!(
                    "the channel was closed before {rows} buffered rows could be delivered; \
                     replay after the committed offset token"
                ),
                last_committed: self.committed_rx.borrow().clone(),
                source: Some(Arc::new(Error::Timeout {
                    operation: "channel close",
                    waited,
                })),
            }));
        }
    }

    pub(super) fn start_drain(&mut self, limit: Option<Duration>) {
        if self.phase == Phase::Open {
            let now = Instant::now();
            self.phase = Phase::Draining {
                since: now,
                deadline: limit.map(|d| now + d),
            };
        }
        self.seal();
    }

    /// Before the channel is unregistered: when appends were acknowledged since the last
    /// status poll, polls once more so row errors in the last batches are reported (as
    /// events and in the status) rather than lost. Bounded by [`FINAL_POLL_TIMEOUT`], the
    /// drain deadline and an abort.
    pub(super) async fn final_poll(&mut self) {
        if !self.shared.unpolled_sends() {
            return;
        }
        let poller = Arc::clone(&self.poller);
        let shared = Arc::clone(&self.shared);
        let poll = async move { poller.poll_channel(&shared).await };
        let deadline = self.phase.deadline();
        let res = tokio::select! {
            biased;
            () = self.shared.controls.abort.cancelled() => return,
            () = sleep_until_opt(deadline), if deadline.is_some() => return,
            r = tokio::time::timeout(FINAL_POLL_TIMEOUT, poll) => r,
        };
        match res {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(channel = %self.shared.name(), error = %e, "final status poll failed");
            }
            Err(_) => {
                tracing::debug!(channel = %self.shared.name(), "final status poll timed out");
            }
        }
    }

    /// The client is closing: refuse new appends, deliver what was admitted.
    pub(super) fn on_shutdown(&mut self) {
        if !self.failed() {
            self.publish(Lifecycle::Closing);
        }
        self.start_drain(Some(SHUTDOWN_FLUSH_TIMEOUT));
    }
}
