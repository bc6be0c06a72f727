//! The channels of one client: the memory budget, the commit poller, the shared compressors,
//! and opening and closing channels.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::actor::Actor;
use super::budget::Budget;
use super::handle::Channel;
use super::names::{non_empty, validate_channel_name};
use super::poller::Poller;
use super::registry::Registry;
use super::shared::{ChannelShared, State};
use super::{all, compress, pool, ChannelSettings, OpenChannelOptions};
use crate::api::OpenChannelRequest;
use crate::error::ServerError;
use crate::transport::{ChannelPath, IngestApi};
use crate::{Error, OffsetToken, Result};

/// Commands queued per channel before `append_*` waits (the first backpressure layer; the
/// byte budget is the second).
const COMMAND_CAPACITY: usize = 64;
/// Most idle capacity the row-buffer pools of one client keep (also at most 1/16 of the
/// memory budget, and two requests' worth per channel). This much of the budget is set
/// aside for them: rows and bodies may hold the rest.
const MAX_POOLED_BYTES: usize = 32 << 20;

/// The channels of one client: memory budget, commit poller, and the open-channel logic.
#[derive(Debug)]
pub(crate) struct ChannelRuntime {
    pub(super) inner: Arc<RuntimeInner>,
}

#[derive(Debug)]
pub(super) struct RuntimeInner {
    pub(super) api: Arc<dyn IngestApi>,
    pub(super) settings: Arc<ChannelSettings>,
    pub(super) budget: Budget,
    pub(super) registry: Arc<Registry>,
    pub(super) poller: Arc<Poller>,
    /// Idle row and body buffers, shared by all channels (see `pool.rs`).
    pub(super) buffers: Arc<pool::BufferPool>,
    /// The client's compression jobs and zstd contexts, shared by all channels.
    pub(super) compressor_pool: Arc<compress::CompressorPool>,
    pub(super) next_id: AtomicU64,
    /// Budget held by the client's last append (see `Channel::reserve`).
    pub(super) typical_append: AtomicUsize,
    pub(super) closed: AtomicBool,
    pub(super) shutdown: CancellationToken,
    /// Every opened channel's command sender (weak), for the client-level calls (`all.rs`).
    pub(super) senders: std::sync::Mutex<all::Senders>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.poller.stop();
    }
}

impl ChannelRuntime {
    pub(crate) fn new(api: Arc<dyn IngestApi>, settings: ChannelSettings) -> Self {
        let settings = Arc::new(settings.normalized());
        // Idle pooled buffers are part of the budget: the pools' limit is set aside from it.
        let pooled = (settings.memory_budget_bytes / 16).min(MAX_POOLED_BYTES);
        let budget = Budget::with_reserve(settings.memory_budget_bytes, pooled);
        let registry = Arc::new(Registry::default());
        let poller = Poller::new(
            Arc::clone(&api),
            Arc::clone(&settings),
            Arc::clone(&registry),
        );
        let buffers = Arc::new(pool::BufferPool::new(pooled));
        let compressor_pool = compress::CompressorPool::for_client(
            &settings,
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        );
        Self {
            inner: Arc::new(RuntimeInner {
                api,
                settings,
                budget,
                registry,
                poller,
                buffers,
                compressor_pool,
                next_id: AtomicU64::new(1),
                typical_append: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                shutdown: CancellationToken::new(),
                senders: std::sync::Mutex::new(std::collections::HashMap::new()),
            }),
        }
    }

    pub(crate) async fn open(
        &self,
        path: ChannelPath,
        options: OpenChannelOptions,
    ) -> Result<Channel> {
        let rt = &self.inner;
        if rt.closed.load(Ordering::Acquire) {
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
        let Some(_reservation) = rt.registry.reserve(&path) else {
            return Err(already_open(&path));
        };
        let at_least_once_splits = options.at_least_once_splits;
        let request = OpenChannelRequest {
            offset_token: options.offset_token.map(OffsetToken::into_string),
            fail_on_uncommitted_rows: options.fail_on_uncommitted_rows,
        };
        let resp = rt.api.open_channel(&path, &request).await?;
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
            Arc::clone(&rt.buffers),
        ));
        if !rt.registry.insert(&shared) {
            return Err(already_open(&shared.path));
        }
        rt.poller.start();
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        self.track(&shared, &tx);
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
        })
    }

    pub(crate) async fn close_all(&self) -> Result<()> {
        let rt = &self.inner;
        rt.closed.store(true, Ordering::Release);
        let channels = rt.registry.channels();
        let mut first_error = None;
        for c in &channels {
            if let State::Failed(f) = &*c.actor.state.borrow() {
                first_error.get_or_insert_with(|| c.invalidated(f));
            }
        }
        rt.shutdown.cancel();
        // Wait for each actor to have stopped (drained, or given up), not merely to have
        // started draining, and report the first failure met while draining.
        for c in channels {
            let mut stopped = c.actor.stopped.subscribe();
            let outcome = stopped
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|s| s.clone());
            if let Some(Some(f)) = outcome {
                first_error.get_or_insert_with(|| c.invalidated(&f));
            }
        }
        rt.poller.stop();
        first_error.map_or(Ok(()), Err)
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
        self.inner.budget.used()
    }

    /// What rows and bodies may hold: the budget less the pools' reserve.
    pub(crate) fn budget_usable(&self) -> usize {
        self.inner.budget.total()
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
