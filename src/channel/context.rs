//! What a client's named channels share ([`RuntimeInner`]): what the client's core lends
//! them ([`ClientShared`]: the REST layer, the settings, the memory budget, the buffer pool,
//! the compressors, the pipe parameters, the shutdown token) and what only they use (the
//! registry, the commit poller). A file of its own so the runtime (which opens channels),
//! the handle and the actor all use it without depending on each other.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::poller::Poller;
use super::registry::Registry;
use crate::pipeline::budget::Budget;
use crate::pipeline::compress::CompressorPool;
use crate::pipeline::pipe_params::PipeParams;
use crate::pipeline::pool::BufferPool;
use crate::settings::ChannelSettings;
use crate::transport::IngestApi;

/// What the client's core holds and lends its named channels (the same instances elastic
/// channels use: one budget, one buffer pool, one compressor pool per client).
#[derive(Debug, Clone)]
pub(crate) struct ClientShared {
    pub(crate) api: Arc<dyn IngestApi>,
    /// Normalized.
    pub(crate) settings: Arc<ChannelSettings>,
    pub(crate) budget: Budget,
    pub(crate) buffers: Arc<BufferPool>,
    pub(crate) compressors: Arc<CompressorPool>,
    pub(crate) pipe_params: Arc<PipeParams>,
    /// The client's shutdown token: every channel's `Controls::shutdown` is a child of it.
    pub(crate) shutdown: CancellationToken,
}

/// The named channels of one client: what they share.
#[derive(Debug)]
pub(super) struct RuntimeInner {
    pub(super) api: Arc<dyn IngestApi>,
    pub(super) settings: Arc<ChannelSettings>,
    pub(super) budget: Budget,
    /// The one registry of open channels (also the poller's and the client-level calls').
    pub(super) registry: Arc<Registry>,
    pub(super) poller: Arc<Poller>,
    /// Idle row and body buffers, shared by all channels (see `pipeline::pool`).
    pub(super) buffers: Arc<BufferPool>,
    /// The client's compression jobs and zstd contexts, shared by all channels.
    pub(super) compressor_pool: Arc<CompressorPool>,
    /// Each pipe's parameters (its `BINARY_INPUT_FORMAT`), learned once per pipe.
    pub(super) pipe_params: Arc<PipeParams>,
    pub(super) next_id: AtomicU64,
    /// Budget held by the client's last append (see `Channel::reserve`).
    pub(super) typical_append: AtomicUsize,
    /// Cancelled by `client.close()`: no channel opens after it, and every channel's
    /// `Controls::shutdown` (a child token) drains its actor.
    pub(super) shutdown: CancellationToken,
}

impl RuntimeInner {
    pub(super) fn new(from: ClientShared) -> Self {
        let registry = Arc::new(Registry::default());
        let poller = Poller::new(
            Arc::clone(&from.api),
            Arc::clone(&from.settings),
            Arc::clone(&registry),
        );
        Self {
            api: from.api,
            settings: from.settings,
            budget: from.budget,
            registry,
            poller,
            buffers: from.buffers,
            compressor_pool: from.compressors,
            pipe_params: from.pipe_params,
            next_id: AtomicU64::new(1),
            typical_append: AtomicUsize::new(0),
            shutdown: from.shutdown,
        }
    }
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.poller.stop();
    }
}
