//! The named channels of one client: opening them, the client-level calls over all of them
//! (flush, wait for commit, whether one is open) and closing them all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use futures_util::future::join_all;
use tokio::sync::oneshot;

use super::actor::Actor;
use super::actor::DROP_FLUSH_TIMEOUT;
use super::cmd::Cmd;
use super::context::RuntimeInner;
use super::handle::Channel;
use super::names::{non_empty, validate_channel_name};
use super::registry::{Registry, Reservation};
use super::shared::{ChannelShared, Lifecycle, WaiterGuard};
use super::OpenChannelOptions;
use crate::api::OpenChannelRequest;
use crate::client_state::ClientState;
use crate::error::ServerError;
use crate::transport::{ChannelPath, IngestApi};
use crate::{Error, OffsetToken, Result};

/// Commands queued per channel before `append_*` waits (the first backpressure layer; the
/// byte budget is the second).
const COMMAND_CAPACITY: usize = 64;

/// The channels of one client: opening them, and closing them all (`client.close()`).
#[derive(Debug)]
pub(crate) struct ChannelRuntime {
    pub(super) inner: Arc<RuntimeInner>,
}

impl ChannelRuntime {
    pub(crate) fn new(client: Arc<ClientState>) -> Self {
        Self {
            inner: Arc::new(RuntimeInner::new(client)),
        }
    }

    pub(crate) async fn open(
        &self,
        path: ChannelPath,
        options: OpenChannelOptions,
    ) -> Result<Channel> {
        let rt = &self.inner;
        if rt.shutdown.is_cancelled() {
            return Err(Error::shutdown("client"));
        }
        non_empty("database", &path.pipe.database)?;
        non_empty("schema", &path.pipe.schema)?;
        non_empty("pipe", &path.pipe.pipe)?;
        validate_channel_name(&path.channel)?;
        if let Some(t) = &options.offset_token {
            t.validate()?;
        }
        // Reserved until registered (or until this open fails or is cancelled): a concurrent
        // open of the same path would otherwise reach the server and invalidate this one.
        let _reservation = reserve_after_dropped(&rt.registry, &path).await?;
        let at_least_once_splits = options.at_least_once_splits;
        let choice = options.fail_on_uncommitted_rows;
        let request = OpenChannelRequest {
            offset_token: options.offset_token.map(OffsetToken::into_string),
            fail_on_uncommitted_rows: Some(choice.unwrap_or(true)),
        };
        // The pipe's BINARY_INPUT_FORMAT is learned beside the open (once per pipe).
        let (resp, binary) = tokio::join!(
            open_waiting_for_uncommitted(rt.client.api.as_ref(), &path, request, choice),
            rt.client
                .pipe_params
                .binary(rt.client.api.as_ref(), &path.pipe)
        );
        let resp = resp?;
        if let Some(code) = resp
            .channel_status
            .channel_status_code
            .as_deref()
            .filter(|c| crate::api::status_code_is_invalid(c))
        {
            return Err(Error::Server(Box::new(ServerError {
                status: 200,
                code: Some(code.to_owned()),
                message: format!(
                    "channel {path} opened with status {code}; check that the pipe exists and \
                     the role may use it"
                ),
                request_id: None,
                operation: "open channel",
                attempts: 1,
            })));
        }
        let path = adopt_server_name(path, resp.channel_status.channel_name.as_deref());
        let id = rt.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(ChannelShared::new(
            id,
            path,
            &resp.channel_status,
            rt.shutdown.child_token(),
            Arc::clone(&rt.client.buffers),
        ));
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        if !rt.registry.insert(&shared, &tx) {
            return Err(already_open(&shared.path));
        }
        rt.poller.start();
        let actor = Actor::new(rt, Arc::clone(&shared), rx, resp.next_continuation_token);
        let span = tracing::info_span!(
            "channel",
            channel = %shared.path.channel,
            pipe = %shared.path.pipe.pipe
        );
        tracing::debug!(parent: &span, offset_token = ?*shared.polled.committed.borrow(), "channel opened");
        tokio::spawn(actor.run().instrument(span));
        Ok(Channel {
            shared,
            tx,
            rt: Arc::clone(&self.inner),
            last_token: std::sync::Mutex::new(None),
            unyielded: AtomicUsize::new(0),
            at_least_once_splits,
            typical_append: AtomicUsize::new(0),
            binary: std::sync::RwLock::new(binary),
        })
    }

    pub(crate) async fn close_all(&self) -> Result<()> {
        let rt = &self.inner;
        // No await before the cancel: the actors see it only after the failures are read.
        let channels = rt.registry.channels();
        let mut first_error = None;
        for c in &channels {
            if let Lifecycle::Failed(f) = &*c.actor.lifecycle.borrow() {
                first_error.get_or_insert_with(|| c.invalidated(f));
            }
        }
        rt.shutdown.cancel();
        // Wait for each actor to have stopped (drained, or given up), not merely to have
        // started draining, and report the first failure met while draining.
        for c in channels {
            let mut lifecycle = c.actor.lifecycle.subscribe();
            let outcome = lifecycle
                .wait_for(Lifecycle::is_stopped)
                .await
                .ok()
                .and_then(|l| l.failure().cloned());
            if let Some(f) = outcome {
                first_error.get_or_insert_with(|| c.invalidated(&f));
            }
        }
        rt.poller.stop();
        first_error.map_or(Ok(()), Err)
    }
}

/// The client-level calls' side in the named channels.
impl ChannelRuntime {
    /// Whether channel `path` is open in this client (its handle not closed or dropped).
    pub(crate) fn is_open(&self, path: &ChannelPath) -> bool {
        self.inner.registry.get(path).is_some_and(|c| {
            c.actor.lifecycle.borrow().is_open()
                // `close()` consumes the handle: a closed channel's handle is gone.
                && !c.controls.handle_dropped.is_cancelled()
        })
    }

    /// Flushes every open channel; returns each one's last sent offset token.
    pub(crate) async fn flush_all(&self) -> Result<Vec<(Arc<ChannelShared>, Option<OffsetToken>)>> {
        let flushes = self
            .inner
            .registry
            .live()
            .into_iter()
            .map(|(shared, tx)| async move {
                let (reply, rx) = oneshot::channel();
                let closed = || Error::shutdown(format!("channel {}", shared.path.channel));
                if tx.send(Cmd::Flush(reply)).await.is_err() {
                    return Err(closed());
                }
                let token = rx.await.map_err(|_| closed())??;
                Ok((shared, token))
            });
        join_all(flushes).await.into_iter().collect()
    }

    /// Flushes every open channel and waits until each reports its last sent offset token
    /// committed, for at most `timeout` in all.
    pub(crate) async fn wait_for_all_committed(&self, timeout: Duration) -> Result<()> {
        let work = async {
            let flushed = self.flush_all().await?;
            self.inner.poller.wake();
            let waits = flushed.into_iter().filter_map(|(shared, token)| {
                let token = token?;
                Some(async move {
                    let _waiting = WaiterGuard::new(&shared);
                    self.inner.poller.wake();
                    let mut committed = shared.polled.committed.subscribe();
                    let mut lifecycle = shared.actor.lifecycle.subscribe();
                    let outcome = tokio::select! {
                        r = committed.wait_for(|c| c.as_ref().is_some_and(|c| c.reaches(&token))) => {
                            r.map(|_| ()).map_err(|_| Error::shutdown("channel"))
                        }
                        _ = lifecycle.wait_for(|l| !l.is_open()) => {
                            Err(shared.check_open().err().unwrap_or_else(|| {
                                Error::shutdown(format!("channel {}", shared.path.channel))
                            }))
                        }
                    };
                    outcome
                })
            });
            join_all(waits)
                .await
                .into_iter()
                .collect::<Result<Vec<()>>>()?;
            Ok(())
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| Error::Timeout {
                operation: "commit of everything appended",
                waited: timeout,
            })?
    }
}

/// Opens with `fail_on_uncommitted_rows: true` unless the caller chose: the server then
/// answers 409 `ERR_CHANNEL_HAS_UNCOMMITTED_DATA` while the channel still has rows in flight
/// (a previous writer's, which commit instead of being discarded), and the REST layer retries
/// that 409 within the client's retry budget. When the caller left the option unset and the
/// rows are still uncommitted after those retries, the channel is opened once more with
/// `false`, which discards them: the official SDK's policy (docs/protocol.md "Ownership").
async fn open_waiting_for_uncommitted(
    api: &dyn IngestApi,
    path: &ChannelPath,
    request: OpenChannelRequest,
    choice: Option<bool>,
) -> Result<crate::api::OpenChannelResponse> {
    match api.open_channel(path, &request).await {
        Err(e) if choice.is_none() && e.snowflake_code() == Some(UNCOMMITTED) => {
            tracing::warn!(
                channel = %path,
                "the channel still has uncommitted rows after the open's retries; opening with \
                 fail_on_uncommitted_rows=false, which discards them (replay resumes after the \
                 committed offset token)"
            );
            let forced = OpenChannelRequest {
                fail_on_uncommitted_rows: Some(false),
                ..request
            };
            api.open_channel(path, &forced).await
        }
        other => other,
    }
}

/// The 409 code of an open while the channel has rows in flight.
const UNCOMMITTED: &str = "ERR_CHANNEL_HAS_UNCOMMITTED_DATA";

/// The longest an open waits for the channel of a dropped handle of the same name to stop
/// (its drain is bounded by [`DROP_FLUSH_TIMEOUT`], 5 s; the rest is margin for the request
/// in flight when the drain's limit comes).
pub(crate) const PREDECESSOR_WAIT: Duration =
    DROP_FLUSH_TIMEOUT.saturating_add(Duration::from_secs(5));

/// Reserves `path` for an open. A channel of that path whose handle was dropped stops in the
/// background (draining what it holds): the open waits for it to stop, at most
/// [`PREDECESSOR_WAIT`], instead of being refused because the drop has not finished yet. A
/// channel whose handle is alive, or an open of the same path in progress, is refused at once.
///
/// # Errors
/// [`Error::InvalidArgument`]: the channel is open (or being opened) in this client, or its
/// dropped predecessor did not stop within [`PREDECESSOR_WAIT`].
async fn reserve_after_dropped(
    registry: &Arc<Registry>,
    path: &ChannelPath,
) -> Result<Reservation> {
    let deadline = tokio::time::Instant::now() + PREDECESSOR_WAIT;
    loop {
        if let Some(reservation) = registry.reserve(path) {
            return Ok(reservation);
        }
        let Some(dropped) = registry
            .get(path)
            .filter(|c| c.controls.handle_dropped.is_cancelled())
        else {
            return Err(already_open(path));
        };
        let mut lifecycle = dropped.actor.lifecycle.subscribe();
        let stopped = lifecycle.wait_for(Lifecycle::is_stopped);
        if tokio::time::timeout_at(deadline, stopped).await.is_err() {
            return Err(Error::invalid_argument(
                "channel",
                format!(
                    "channel {path} is still stopping after its handle was dropped (waited \
                     {PREDECESSOR_WAIT:?}); close it (`Channel::close`) instead of dropping it \
                     before opening it again"
                ),
            ));
        }
    }
}

fn already_open(path: &ChannelPath) -> Error {
    Error::invalid_argument(
        "channel",
        format!("channel {path} is already open in this client; close it before opening it again"),
    )
}

/// Accessors for tests only, kept out of the production impl.
#[cfg(test)]
impl ChannelRuntime {
    /// Bytes of the client-wide budget in use (buffered + retained).
    pub(crate) fn budget_used(&self) -> usize {
        self.inner.client.budget.used()
    }

    /// How many channels the client's registry holds.
    pub(crate) fn open_channels(&self) -> usize {
        self.inner.registry.len()
    }

    /// What rows and bodies may hold: the budget less the pools' reserve.
    pub(crate) fn budget_usable(&self) -> usize {
        self.inner.client.budget.total()
    }
}

/// The channel as the server spelled it in the open answer, when that differs from the
/// caller's name only in case: every later call (appends, status polls, reopens, drop) uses
/// it, because a status poll asked with another spelling can miss the channel (then the
/// channel looks gone, and is reopened and replayed over and over). A name that differs in
/// more than case is not the same channel: the caller's is kept, with a warning.
fn adopt_server_name(mut path: ChannelPath, server: Option<&str>) -> ChannelPath {
    match server {
        Some(name) if name != path.channel => {
            if name.to_lowercase() == path.channel.to_lowercase() {
                tracing::debug!(opened_as = %path.channel, server_name = %name, "using the server's spelling of the channel name");
                path.channel = name.to_owned();
            } else {
                tracing::warn!(opened_as = %path.channel, server_name = %name, "the server named the channel differently; keeping the name it was opened with");
            }
        }
        _ => {}
    }
    path
}
