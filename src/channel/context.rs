//! What a client's channels share ([`RuntimeInner`]): the REST layer, the settings, the
//! memory budget, the registry, the commit poller, the buffer pool and the compressors. A
//! file of its own so the runtime (which opens channels), the handle and the actor all use
//! it without depending on each other.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::budget::Budget;
use super::poller::Poller;
use super::registry::Registry;
use super::{compress, pool, ChannelSettings};
use crate::transport::IngestApi;

/// The channels of one client: what they share.
#[derive(Debug)]
pub(super) struct RuntimeInner {
    pub(super) api: Arc<dyn IngestApi>,
    pub(super) settings: Arc<ChannelSettings>,
    pub(super) budget: Budget,
    /// The one registry of open channels (also the poller's and the client-level calls').
    pub(super) registry: Arc<Registry>,
    pub(super) poller: Arc<Poller>,
    /// Idle row and body buffers, shared by all channels (see `pool.rs`).
    pub(super) buffers: Arc<pool::BufferPool>,
    /// The client's compression jobs and zstd contexts, shared by all channels.
    pub(super) compressor_pool: Arc<compress::CompressorPool>,
    /// Each pipe's parameters (its `BINARY_INPUT_FORMAT`), learned once per pipe.
    pub(super) pipe_params: Arc<super::pipe_params::PipeParams>,
    pub(super) next_id: AtomicU64,
    /// Budget held by the client's last append (see `Channel::reserve`).
    pub(super) typical_append: AtomicUsize,
    /// Cancelled by `client.close()`: no channel opens after it, and every channel's
    /// `Controls::shutdown` (a child token) drains its actor.
    pub(super) shutdown: CancellationToken,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.poller.stop();
    }
}
