//! Recovery: after an invalidation or a lost response, reopen the channel and re-send
//! exactly the kept batches the committed token does not cover; and the application's
//! explicit reopen.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::time::Instant;

use super::ownership::is_fenced;
use super::{
    sleep_until_opt, Actor, Phase, SentBatch, DROP_FLUSH_TIMEOUT, MAX_LOST_RESPONSE_RECOVERIES,
    MAX_RECOVERIES, RECOVERY_WINDOW,
};
use crate::api::OpenChannelRequest;
use crate::channel::shared::{Failure, FailureKind, Lifecycle};
use crate::error::TransportErrorKind;
use crate::http::retry::RetryConfig;
use crate::{Error, OffsetToken, Result};

/// Whether an append error means "reopen and replay" rather than "give up": a server-side
/// invalidation or an outcome that is unknown. `STALE_CONTINUATION_TOKEN_SEQUENCER` is not
/// one of them: it means another writer opened the channel (see `ownership`).
pub(super) fn is_recoverable(e: &Error) -> bool {
    match e {
        Error::Server(s) => {
            !is_fenced(e)
                && (s.status == 409
                    || s.code
                        .as_deref()
                        .is_some_and(|c| c.starts_with("ERR_CHANNEL_")))
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
pub(super) fn replay_start(
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

/// Why a guarded wait during recovery stopped early.
#[derive(Debug, Clone, Copy)]
pub(super) enum Interrupt {
    /// Abort (close timeout) or the drain deadline: stop the actor now.
    Stop,
    /// The recovery episode ran out of time: fail the channel.
    Timeout,
}

/// What a recovery attempt decided.
enum Step {
    /// Recovered, or failed for good (the channel's failure is set).
    Done,
    /// Try again (reopen), for this reason.
    Again(String),
}

/// Backoff between the reopen attempts of recoveries: 200 ms after the first, doubling, at
/// most 6.4 s (attempts counted within [`RECOVERY_WINDOW`] and within the episode).
fn recovery_backoff() -> RetryConfig {
    RetryConfig::default()
        .initial_backoff(std::time::Duration::from_millis(100))
        .multiplier(2.0)
        .max_backoff(std::time::Duration::from_millis(6400))
        .jitter(crate::Jitter::None)
}

impl Actor {
    /// Awaits `fut` while still honouring the channel's controls: an abort (close timeout)
    /// or a passed drain deadline interrupts it, and so does the end of the recovery episode
    /// (`episode_deadline`); client shutdown and the handle being dropped start the drain
    /// (with its deadline) and keep waiting.
    pub(super) async fn guarded<T>(
        &mut self,
        episode_deadline: Instant,
        fut: impl Future<Output = T>,
    ) -> std::result::Result<T, Interrupt> {
        tokio::pin!(fut);
        loop {
            let drain_deadline = self.phase.deadline();
            tokio::select! {
                biased;
                () = self.shared.controls.abort.cancelled() => return Err(Interrupt::Stop),
                () = sleep_until_opt(drain_deadline), if drain_deadline.is_some() => {
                    return Err(Interrupt::Stop)
                }
                () = tokio::time::sleep_until(episode_deadline) => return Err(Interrupt::Timeout),
                () = self.shared.controls.shutdown.cancelled(), if !self.phase.is_draining() => self.on_shutdown(),
                () = self.shared.controls.handle_dropped.cancelled(), if !self.phase.is_draining() => {
                    self.start_drain(Some(DROP_FLUSH_TIMEOUT));
                }
                r = &mut fut => return Ok(r),
            }
        }
    }

    /// Reopens the channel and re-sends exactly the retained batches after the committed
    /// token. Bounded: at most [`MAX_RECOVERIES`] within [`RECOVERY_WINDOW`], with backoff,
    /// and at most `recovery_timeout` per episode (reopen attempts included, however long the
    /// REST layer retries each one). Abort, client shutdown and the handle being dropped are
    /// honoured meanwhile.
    pub(super) async fn recover(&mut self, reason: String, lost_response: bool) {
        if self.shared.controls.handle_dropped.is_cancelled() {
            // The application let go of this channel: reopening it now would take it away from
            // whoever owns it since (a new handle, another process) and replay rows that owner
            // resumed after the committed token: duplicates. Give up instead.
            let e = Error::ChannelInvalidated {
                channel: self.shared.name().to_owned(),
                reason: format!(
                    "{reason}; the handle was dropped, so the channel is not reopened: rows not \
                     yet committed are dropped (resume after the committed offset token)"
                ),
                last_committed: self.committed_rx.borrow().clone(),
                source: None,
            };
            self.fail("invalidated after its handle was dropped".into(), e);
            return;
        }
        let episode_deadline = Instant::now() + self.client.settings.recovery_timeout;
        match self
            .recover_until(reason, lost_response, episode_deadline)
            .await
        {
            Ok(()) => {}
            Err(Interrupt::Stop) => {
                self.phase = Phase::Stopping {
                    since: self.phase.drain_started(),
                    replay_pending: !self.retained.is_empty(),
                };
            }
            Err(Interrupt::Timeout) => {
                let timeout = self.client.settings.recovery_timeout;
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

    pub(super) async fn recover_until(
        &mut self,
        mut reason: String,
        lost_response: bool,
        episode_deadline: Instant,
    ) -> std::result::Result<(), Interrupt> {
        if let Some(f) = self.inflight.take() {
            // The request may or may not have been applied: treat it as sent.
            self.retained.push_back(f.batch);
        }
        let mut episode_attempts = 0usize;
        loop {
            let Some(backoff_step) = self.count_attempt(lost_response, episode_attempts, &reason)
            else {
                return Ok(());
            };
            episode_attempts += 1;
            if backoff_step > 0 {
                let backoff = recovery_backoff()
                    .exponential_delay(u32::try_from(backoff_step).unwrap_or(u32::MAX));
                self.guarded(episode_deadline, tokio::time::sleep(backoff))
                    .await?;
            }
            self.shared.actor.generation.fetch_add(1, Ordering::AcqRel);
            self.shared.actor.recoveries.fetch_add(1, Ordering::Relaxed);
            self.shared.metrics.recoveries.increment(1);
            tracing::warn!(
                channel = %self.shared.name(),
                pipe = %self.shared.path.pipe.pipe,
                attempt = episode_attempts,
                reason = %reason,
                "channel invalidated; reopening and replaying uncommitted batches"
            );
            match self
                .reopen_and_replay(episode_attempts, episode_deadline)
                .await?
            {
                Step::Done => return Ok(()),
                Step::Again(why) => reason = why,
            }
        }
    }

    /// Counts a recovery attempt against [`MAX_RECOVERIES`] (or
    /// [`MAX_LOST_RESPONSE_RECOVERIES`]) within [`RECOVERY_WINDOW`]. Returns the backoff step
    /// for it, or `None` when the limit is reached (the channel has then failed).
    fn count_attempt(
        &mut self,
        lost_response: bool,
        episode_attempts: usize,
        reason: &str,
    ) -> Option<usize> {
        let limit = if lost_response {
            MAX_LOST_RESPONSE_RECOVERIES
        } else {
            MAX_RECOVERIES
        };
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
                        "{limit} automatic recoveries within {RECOVERY_WINDOW:?}; the server \
                         keeps invalidating the channel"
                    )
                },
                last_committed: self.committed_rx.borrow().clone(),
                source: None,
            };
            self.fail(format!("recovery gave up: {reason}"), e);
            return None;
        }
        self.recovery_times.push_back((now, lost_response));
        Some(attempt.max(episode_attempts))
    }

    /// One attempt: reopens the channel, then re-sends the kept batches after the committed
    /// token. The committed token is checked before the reopen (a status read, which fences
    /// no one) and after it: a token this handle never sent means another writer has the
    /// channel (see `ownership`).
    async fn reopen_and_replay(
        &mut self,
        attempt: usize,
        episode_deadline: Instant,
    ) -> std::result::Result<Step, Interrupt> {
        let poller = Arc::clone(&self.poller);
        let shared = Arc::clone(&self.shared);
        let status = async move { poller.poll_channel(&shared).await };
        // A failed read is no evidence either way: the reopen goes ahead, checked after.
        if let Ok(Some(_)) = self.guarded(episode_deadline, status).await? {
            let committed = self.committed_rx.borrow_and_update().clone();
            if !self.check_owner(committed.as_ref(), "before reopening the channel") {
                return Ok(Step::Done);
            }
        }
        let request = OpenChannelRequest {
            offset_token: None,
            fail_on_uncommitted_rows: Some(false),
        };
        let api = Arc::clone(&self.client.api);
        let path = Arc::clone(&self.shared.path);
        self.session = None;
        let open = async move { api.open_channel(&path, &request).await };
        let resp = match self.guarded(episode_deadline, open).await? {
            Ok(r) => r,
            Err(e) if e.is_retryable() || is_recoverable(&e) => {
                return Ok(Step::Again(format!("reopen failed: {e}")));
            }
            Err(e) => {
                self.fail(format!("reopening failed: {e}"), e);
                return Ok(Step::Done);
            }
        };
        self.continuation = resp.next_continuation_token;
        let code = resp.channel_status.channel_status_code.clone();
        self.poller.apply_opened(&self.shared, resp.channel_status);
        if let Some(code) = code.filter(|c| crate::api::status_code_is_invalid(c)) {
            return Ok(Step::Again(format!("reopened channel has status {code}")));
        }
        let committed = self.committed_rx.borrow_and_update().clone();
        if !self.check_owner(
            committed.as_ref(),
            "after reopening the channel (which fenced that writer in turn)",
        ) {
            return Ok(Step::Done);
        }
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
            return Ok(Step::Done);
        };
        // Every kept batch is now either committed or about to be re-sent: requests
        // already acknowledged before, or (the lost one) now known to be committed.
        for b in self.retained.drain(..start) {
            self.acked_seq = self.acked_seq.max(b.seq);
        }
        self.base.clone_from(&committed);
        self.replay(attempt, episode_deadline).await
    }

    /// Re-sends every kept batch, in order, before anything new.
    async fn replay(
        &mut self,
        attempt: usize,
        episode_deadline: Instant,
    ) -> std::result::Result<Step, Interrupt> {
        for i in 0..self.retained.len() {
            let req = self.request(&self.retained[i]);
            self.shared.metrics.data.retries.increment(1);
            tracing::debug!(
                channel = %self.shared.name(),
                offset_token = ?self.retained[i].end,
                attempt,
                "replaying batch"
            );
            let api = Arc::clone(&self.client.api);
            let path = Arc::clone(&self.shared.path);
            let wire = Arc::clone(&self.wire);
            let session = self.session.clone();
            let append = async move { api.append_rows(&path, &req, session.as_ref(), &wire).await };
            match self.guarded(episode_deadline, append).await? {
                Err(e) if is_fenced(&e) => {
                    self.fenced(e);
                    return Ok(Step::Done);
                }
                Ok(ack) => {
                    self.continuation = ack.next_continuation_token;
                    self.session = ack.session;
                    self.shared.actor.acked_sends.fetch_add(1, Ordering::AcqRel);
                    self.acked_seq = self.acked_seq.max(self.retained[i].seq);
                }
                Err(e) if is_recoverable(&e) => {
                    return Ok(Step::Again(format!("replay failed: {e}")));
                }
                Err(e) => {
                    self.fail(format!("replay failed: {e}"), e);
                    return Ok(Step::Done);
                }
            }
        }
        self.release();
        self.resolve_flushes();
        if !self.retained.is_empty() {
            self.poller.wake();
        }
        Ok(Step::Done)
    }

    /// The application's explicit reopen: discard everything, reopen, report the token.
    pub(super) async fn reopen(&mut self) -> Result<Option<OffsetToken>> {
        let request = OpenChannelRequest {
            offset_token: None,
            fail_on_uncommitted_rows: Some(false),
        };
        self.session = None;
        let resp = self
            .client
            .api
            .open_channel(&self.shared.path, &request)
            .await?;
        self.shared.actor.generation.fetch_add(1, Ordering::AcqRel);
        self.continuation = resp.next_continuation_token;
        let discarded = Failure {
            kind: FailureKind::Invalidated,
            reason: "the channel was reopened; rows not yet sent were discarded".into(),
            last_committed: None,
            source: Some(Arc::new(Error::shutdown("previous channel session"))),
        };
        for (_, _, reply) in self.flushes.drain(..) {
            let _ = reply.send(Err(self.shared.invalidated(&discarded)));
        }
        self.clear_buffers();
        self.poller.apply_opened(&self.shared, resp.channel_status);
        let committed = self.committed_rx.borrow_and_update().clone();
        self.base.clone_from(&committed);
        self.released_ends.clear();
        self.recovery_times.clear();
        self.last_end = None;
        // Healthy again; a channel the client is closing stays closing.
        if !matches!(*self.shared.actor.lifecycle.borrow(), Lifecycle::Closing) {
            self.publish(Lifecycle::Open);
        }
        Ok(committed)
    }
}
