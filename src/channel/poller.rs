//! The client-wide commit poller: one task polls bulk-channel-status for every open channel,
//! grouped by pipe, and publishes what it sees on each channel's watches.
//!
//! Cadence: every `commit_poll_interval` while some channel has sent-but-uncommitted data or a
//! task waits for a commit, every `idle_poll_interval` otherwise; closed channels are
//! unregistered and never polled. A wake-up (`wake`) re-evaluates the cadence at once, so the
//! first batch sent after an idle period is polled after the fast interval, not the slow one.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::shared::{ChannelShared, RecoverRequest};
use super::ChannelSettings;
use crate::transport::{ChannelPath, IngestApi, PipePath};

/// The registry of open channels and the poller's controls.
#[derive(Debug)]
pub(crate) struct Poller {
    api: Arc<dyn IngestApi>,
    settings: Arc<ChannelSettings>,
    channels: Mutex<HashMap<u64, Arc<ChannelShared>>>,
    /// Paths being opened (the open request is in flight): a second open of the same path in
    /// this client is refused before it reaches the server, where it would bump the
    /// sequencer and invalidate the first.
    reserved: Mutex<std::collections::HashSet<ChannelPath>>,
    wake: Notify,
    cancel: CancellationToken,
    started: std::sync::Once,
}

impl Poller {
    pub(crate) fn new(api: Arc<dyn IngestApi>, settings: Arc<ChannelSettings>) -> Arc<Self> {
        Arc::new(Self {
            api,
            settings,
            channels: Mutex::new(HashMap::new()),
            reserved: Mutex::new(std::collections::HashSet::new()),
            wake: Notify::new(),
            cancel: CancellationToken::new(),
            started: std::sync::Once::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ChannelShared>>> {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a channel (starting the poller task on first use). Fails when a channel of
    /// the same path is already registered.
    pub(crate) fn register(self: &Arc<Self>, channel: &Arc<ChannelShared>) -> bool {
        {
            let mut map = self.lock();
            if map.values().any(|c| c.path == channel.path) {
                return false;
            }
            map.insert(channel.id, Arc::clone(channel));
        }
        self.started.call_once(|| {
            let me = Arc::clone(self);
            tokio::spawn(
                async move { me.run().await }.instrument(tracing::debug_span!("commit_poller")),
            );
        });
        self.wake();
        true
    }

    /// Reserves `path` for an open in progress; `None` when a channel of that path is open
    /// or being opened. The reservation ends when the guard is dropped (register first).
    pub(crate) fn reserve(self: &Arc<Self>, path: &ChannelPath) -> Option<Reservation> {
        let map = self.lock();
        if map.values().any(|c| *c.path == *path) {
            return None;
        }
        let mut reserved = self
            .reserved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !reserved.insert(path.clone()) {
            return None;
        }
        drop(map);
        Some(Reservation {
            poller: Arc::clone(self),
            path: path.clone(),
        })
    }

    /// Removes a channel: it is not polled again.
    pub(crate) fn unregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Every registered channel.
    pub(crate) fn channels(&self) -> Vec<Arc<ChannelShared>> {
        self.lock().values().cloned().collect()
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
        let mut last_poll: Option<Instant> = None;
        loop {
            let channels = self.channels();
            let fast = channels.iter().any(|c| c.wants_fast_poll());
            let interval = if fast {
                self.settings.commit_poll_interval
            } else {
                self.settings.idle_poll_interval
            };
            let due = last_poll.map_or_else(Instant::now, |t| t + interval);
            if channels.is_empty() {
                tokio::select! {
                    () = self.cancel.cancelled() => return,
                    () = self.wake.notified() => continue,
                }
            }
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = self.wake.notified() => continue,
                () = tokio::time::sleep_until(due) => {}
            }
            last_poll = Some(Instant::now());
            self.poll_once(channels).await;
        }
    }

    /// Polls every given channel once, one bulk request per pipe, pipes concurrently.
    pub(crate) async fn poll_once(&self, channels: Vec<Arc<ChannelShared>>) {
        let mut by_pipe: HashMap<PipePath, Vec<(Arc<ChannelShared>, u64, bool)>> = HashMap::new();
        for c in channels {
            let generation = c.generation.load(Ordering::Acquire);
            let unpolled = c.unpolled_sends.swap(false, Ordering::AcqRel);
            by_pipe
                .entry(c.path.pipe.clone())
                .or_default()
                .push((c, generation, unpolled));
        }
        let polls = by_pipe.into_iter().map(|(pipe, group)| async move {
            let names: Vec<String> = group
                .iter()
                .map(|(c, _, _)| c.path.channel.clone())
                .collect();
            match self.api.bulk_channel_status(&pipe, &names).await {
                Ok(mut statuses) => {
                    for (c, generation, unpolled) in group {
                        let Some(status) = statuses.remove(&c.path.channel) else {
                            if unpolled {
                                c.unpolled_sends.store(true, Ordering::Release);
                            }
                            tracing::warn!(channel = %c.path.channel, pipe = %pipe.pipe,
                                "bulk channel status did not report an open channel");
                            continue;
                        };
                        let code = status.channel_status_code.clone();
                        c.apply_status(status);
                        if let Some(code) = code.filter(|c| c != "SUCCESS") {
                            if c.generation.load(Ordering::Acquire) == generation {
                                c.recover.send_replace(Some(RecoverRequest {
                                    generation,
                                    status_code: code,
                                }));
                            }
                        }
                    }
                }
                Err(e) => {
                    for (c, _, unpolled) in &group {
                        if *unpolled {
                            c.unpolled_sends.store(true, Ordering::Release);
                        }
                    }
                    tracing::warn!(pipe = %pipe.pipe, error = %e, "bulk channel status failed");
                }
            }
        });
        futures_util::future::join_all(polls).await;
    }
}

/// A path reserved by an open in progress (see [`Poller::reserve`]).
#[derive(Debug)]
pub(crate) struct Reservation {
    poller: Arc<Poller>,
    path: ChannelPath,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.poller
            .reserved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.path);
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
