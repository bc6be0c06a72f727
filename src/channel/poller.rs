//! The client-wide commit poller: one task polls bulk-channel-status for every open channel,
//! grouped by pipe, and publishes what it sees on each channel's watches.
//!
//! Cadence: every `commit_poll_interval` for the channels with sent-but-uncommitted data or a
//! task waiting for a commit, every `idle_poll_interval` for all of them; closed channels are
//! unregistered and never polled. So a client with thousands of idle channels and a few busy
//! ones asks about the busy ones ten times a second and about the rest every few seconds (not
//! about all of them ten times a second: 100 bulk calls per tick for 10,000 channels). A
//! wake-up (`wake`) re-evaluates the cadence at once, so the first batch sent after an idle
//! period is polled after the fast interval, not the slow one.
//!
//! Each full poll also trims the client's idle early-frame contexts
//! ([`CompressorPool::trim_frames`](crate::pipeline::compress::CompressorPool::trim_frames)):
//! it is the one client-wide task that wakes every `idle_poll_interval` while channels are
//! open, so contexts that busy channels gave back are freed once they went quiet. When the
//! last channel closes, it gives back what the idle ones hold of the budget, and frees all
//! but a few.
//!
//! The fast and the full polls of a pipe run on their own tasks and may overlap; every poll
//! takes a sequence number when it starts, and a channel applies only answers newer than the
//! last it applied (`Polled::applied_poll`).
//!
//! The poller is the one writer of what the server reported about a channel (`Polled`: the
//! committed token, the status, row-error events, the stall flag): the statuses a channel's
//! actor reads itself (the ownership check before a reopen, the final poll) go through
//! [`Poller::poll_channel`], and a reopen's answer through [`Poller::apply_opened`], each under
//! a sequence number like any other poll.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::registry::Registry;
use super::shared::{ChannelShared, RecoverRequest, STALL_AFTER};
use super::status::{ChannelStatus, RowErrorEvent};
use crate::api::ChannelStatusWire;
use crate::client_state::ClientState;
use crate::sync::lock;
use crate::transport::PipePath;
use crate::OffsetToken;

/// Longest wait for one bulk-channel-status call (the REST layer's retries included): a slow
/// answer counts as a failed poll and the next one starts on schedule.
pub(crate) const STATUS_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The poller's controls.
#[derive(Debug)]
pub(crate) struct Poller {
    /// The client's state: the REST layer and the poll intervals.
    client: Arc<ClientState>,
    registry: Arc<Registry>,
    /// Pipes whose poll is running, and whether it is the fast one.
    busy: Mutex<HashSet<(PipePath, bool)>>,
    /// The sequence number of the last poll started.
    seq: AtomicU64,
    wake: Notify,
    cancel: CancellationToken,
    started: std::sync::Once,
}

impl Poller {
    pub(crate) fn new(client: Arc<ClientState>, registry: Arc<Registry>) -> Arc<Self> {
        Arc::new(Self {
            client,
            registry,
            busy: Mutex::new(HashSet::new()),
            seq: AtomicU64::new(0),
            wake: Notify::new(),
            cancel: CancellationToken::new(),
            started: std::sync::Once::new(),
        })
    }

    /// The channels this poller polls.
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Starts the poller task on first use, and re-evaluates the cadence (a channel was
    /// registered).
    pub(crate) fn start(self: &Arc<Self>) {
        self.started.call_once(|| {
            let me = Arc::clone(self);
            tokio::spawn(
                async move { me.run().await }.instrument(tracing::debug_span!("commit_poller")),
            );
        });
        self.wake();
    }

    /// Re-evaluates the cadence now (something became pending or a waiter arrived).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops the poller task.
    pub(crate) fn stop(&self) {
        self.cancel.cancel();
    }

    async fn run(self: Arc<Self>) {
        let mut last_fast: Option<Instant> = None;
        let mut last_full: Option<Instant> = None;
        loop {
            let channels = self.registry.channels();
            if channels.is_empty() {
                self.client.compressors.trim_frames(true);
                tokio::select! {
                    () = self.cancel.cancelled() => return,
                    () = self.wake.notified() => continue,
                }
            }
            let now = Instant::now();
            let full_due = last_full.map_or(now, |t| t + self.client.settings.idle_poll_interval);
            let due = if channels.iter().any(|c| c.wants_fast_poll()) {
                let fast_due =
                    last_fast.map_or(now, |t| t + self.client.settings.commit_poll_interval);
                fast_due.min(full_due)
            } else {
                full_due
            };
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = self.wake.notified() => continue,
                () = tokio::time::sleep_until(due) => {}
            }
            let now = Instant::now();
            last_fast = Some(now);
            if now >= full_due {
                last_full = Some(now);
                self.client.compressors.trim_frames(false);
                self.poll_once(channels, false);
            } else {
                let fast = channels.into_iter().filter(|c| c.wants_fast_poll());
                self.poll_once(fast.collect(), true);
            }
        }
    }

    /// Starts one poll of every given channel (`fast`: the busy ones only): one bulk request
    /// per pipe, each pipe on its own task, so a slow or failing pipe never delays the others.
    /// A pipe whose previous poll of the same kind is still running is skipped this round.
    pub(crate) fn poll_once(self: &Arc<Self>, channels: Vec<Arc<ChannelShared>>, fast: bool) {
        let mut by_pipe: HashMap<PipePath, Vec<Arc<ChannelShared>>> = HashMap::new();
        for c in channels {
            by_pipe.entry(c.path.pipe.clone()).or_default().push(c);
        }
        for (pipe, group) in by_pipe {
            if !self.busy_lock().insert((pipe.clone(), fast)) {
                continue;
            }
            let seq = self.next_seq();
            let group: Vec<(Arc<ChannelShared>, u64, u64)> = group
                .into_iter()
                .map(|c| {
                    let generation = c.actor.generation.load(Ordering::Acquire);
                    let acked = c.actor.acked_sends.load(Ordering::Acquire);
                    (c, generation, acked)
                })
                .collect();
            let me = Arc::clone(self);
            tokio::spawn(
                async move {
                    tokio::select! {
                        () = me.cancel.cancelled() => {}
                        () = me.poll_pipe(&pipe, group, seq) => {}
                    }
                    me.busy_lock().remove(&(pipe, fast));
                }
                .in_current_span(),
            );
        }
    }

    /// The sequence number of a poll starting now.
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Polls channel `c` now, for its actor (the ownership check before a reopen, the final
    /// poll before it stops), and applies the answer like any other poll. Returns the status
    /// the server reported (`None` when the answer omits the channel).
    ///
    /// # Errors
    /// Those of the bulk-channel-status call.
    ///
    /// # Cancellation
    /// Dropping the future abandons the poll; nothing is applied.
    pub(crate) async fn poll_channel(
        &self,
        c: &ChannelShared,
    ) -> crate::Result<Option<ChannelStatusWire>> {
        let seq = self.next_seq();
        let acked = c.actor.acked_sends.load(Ordering::Acquire);
        let mut statuses = self
            .client
            .api
            .bulk_channel_status(&c.path.pipe, std::slice::from_ref(&c.path.channel))
            .await?;
        let status = take_status(&mut statuses, &c.path.channel);
        if let Some(status) = &status {
            if newest(c, seq) {
                apply_answer(c, acked, status.clone());
            }
        }
        Ok(status)
    }

    /// Applies the status the server answered a reopen of `c` with (its actor hands it over):
    /// newer than every poll started before it.
    pub(crate) fn apply_opened(&self, c: &ChannelShared, status: ChannelStatusWire) {
        let seq = self.next_seq();
        if newest(c, seq) {
            publish(c, status);
        }
    }

    fn busy_lock(&self) -> std::sync::MutexGuard<'_, HashSet<(PipePath, bool)>> {
        lock(&self.busy)
    }

    async fn poll_pipe(
        &self,
        pipe: &PipePath,
        group: Vec<(Arc<ChannelShared>, u64, u64)>,
        seq: u64,
    ) {
        let names: Vec<String> = group
            .iter()
            .map(|(c, _, _)| c.path.channel.clone())
            .collect();
        let result = tokio::time::timeout(
            STATUS_CALL_TIMEOUT,
            self.client.api.bulk_channel_status(pipe, &names),
        )
        .await;
        let now = Instant::now();
        let answer = match result {
            Ok(Ok(statuses)) => Ok(statuses),
            Ok(Err(e)) => {
                tracing::warn!(pipe = %pipe.pipe, error = %e, "bulk channel status failed");
                Err("bulk channel status failed")
            }
            Err(_) => {
                tracing::warn!(pipe = %pipe.pipe, timeout = ?STATUS_CALL_TIMEOUT,
                    "bulk channel status timed out");
                Err("bulk channel status timed out")
            }
        };
        // Only the channels no newer poll has answered for yet.
        let group: Vec<_> = group
            .into_iter()
            .filter(|(c, _, _)| newest(c, seq))
            .collect();
        let mut statuses = match answer {
            Ok(statuses) => statuses,
            Err(why) => {
                for (c, _, _) in &group {
                    poll_failed(c, now, why);
                }
                return;
            }
        };
        for (c, generation, acked) in group {
            let Some(status) = take_status(&mut statuses, &c.path.channel) else {
                tracing::warn!(channel = %c.path.channel, pipe = %pipe.pipe,
                    "bulk channel status did not report an open channel");
                if poll_failed(&c, now, "the server's status answer omits the channel") {
                    // Missing for STALL_AFTER: the server lost the channel; reopen and replay.
                    request_recovery(&c, generation, "CHANNEL_MISSING_FROM_STATUS".into());
                }
                continue;
            };
            let code = status.channel_status_code.clone();
            apply_answer(&c, acked, status);
            if let Some(code) = code.filter(|c| crate::api::status_code_is_invalid(c)) {
                request_recovery(&c, generation, code);
            }
        }
    }
}

/// Whether the poll numbered `seq` is the newest to answer for `c` (and records it).
fn newest(c: &ChannelShared, seq: u64) -> bool {
    c.polled.applied_poll.fetch_max(seq, Ordering::AcqRel) < seq
}

/// Applies a poll's answer for channel `c`, started when its actor had `acked` sends
/// acknowledged: the poll succeeded, those sends are polled, and the status is published.
fn apply_answer(c: &ChannelShared, acked: u64, status: ChannelStatusWire) {
    *lock(&c.polled.poll_trouble) = None;
    if c.polled.stalled.send_replace(false) {
        tracing::info!(channel = %c.path.channel, "commit polling recovered");
    }
    c.polled.polled_sends.fetch_max(acked, Ordering::AcqRel);
    publish(c, status);
}

/// A status poll failed or omitted channel `c`. Returns `true` when this makes the channel
/// stalled (trouble for [`STALL_AFTER`]).
fn poll_failed(c: &ChannelShared, now: Instant, why: &str) -> bool {
    let since = *lock(&c.polled.poll_trouble).get_or_insert(now);
    if now.duration_since(since) < STALL_AFTER || *c.polled.stalled.borrow() {
        return false;
    }
    c.polled.stalled.send_replace(true);
    c.metrics.stalls.increment(1);
    tracing::warn!(
        channel = %c.path.channel,
        pipe = %c.path.pipe.pipe,
        since = ?now.duration_since(since),
        reason = why,
        "commits of this channel cannot be seen: status polls keep failing"
    );
    true
}

/// Publishes a status the server reported for channel `c`: the committed token, the status,
/// and new row errors (as events, a metric and a warning).
fn publish(c: &ChannelShared, status: ChannelStatusWire) {
    let committed = status
        .last_committed_offset_token
        .clone()
        .map(OffsetToken::from_wire);
    let moved = c.polled.committed.send_if_modified(|current| {
        if *current == committed {
            false
        } else {
            *current = committed;
            true
        }
    });
    if moved {
        c.note_commit();
    }
    let total = status.rows_error_count.unwrap_or(0);
    let seen = c.polled.errors_seen.swap(total, Ordering::Relaxed);
    if total > seen {
        let offset_upper_bound = status
            .last_error_offset_upper_bound
            .clone()
            .map(OffsetToken::from_wire);
        let request_first_token = offset_upper_bound
            .as_ref()
            .and_then(|end| crate::sync::lock(&c.actor.request_spans).first_of(end));
        let event = RowErrorEvent {
            channel: c.path.channel.clone(),
            new_errors: total - seen,
            total_errors: total,
            last_error_message: status.last_error_message.clone(),
            offset_upper_bound,
            request_first_token,
            timestamp_ms: status.last_error_timestamp_ms,
        };
        c.metrics.row_errors.increment(event.new_errors);
        tracing::warn!(
            channel = %c.path.channel,
            pipe = %c.path.pipe.pipe,
            new_errors = event.new_errors,
            total_errors = total,
            offset_token = ?event.offset_upper_bound,
            request_first_token = ?event.request_first_token,
            message = ?event.last_error_message,
            "server rejected rows"
        );
        let sent = match &*crate::sync::lock(&c.polled.events) {
            super::shared::Events::Open(tx) => tx.send(event).is_ok(),
            _ => false,
        };
        if !sent {
            tracing::debug!(channel = %c.path.channel, "no subscriber for row error events");
        }
    }
    c.polled
        .status
        .send_replace(ChannelStatus::from_server(status));
}

/// The status reported for `channel`: by exact name, else by the one name equal to it ignoring
/// case (channel names are case-insensitive in URLs but the server reports a channel under
/// the name it was created with; docs/protocol.md "Names").
fn take_status(
    statuses: &mut HashMap<String, ChannelStatusWire>,
    channel: &str,
) -> Option<ChannelStatusWire> {
    if let Some(s) = statuses.remove(channel) {
        return Some(s);
    }
    let folded = channel.to_lowercase();
    let mut same = statuses.keys().filter(|k| k.to_lowercase() == folded);
    let key = match (same.next(), same.next()) {
        (Some(k), None) => k.clone(),
        _ => return None,
    };
    statuses.remove(&key)
}

/// Asks `c`'s actor to reopen and replay, unless the channel was reopened since the poll
/// started (its generation moved on: the answer is about the previous incarnation).
fn request_recovery(c: &ChannelShared, generation: u64, status_code: String) {
    if c.actor.generation.load(Ordering::Acquire) == generation {
        c.polled.recover.send_replace(Some(RecoverRequest {
            generation,
            status_code,
        }));
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
