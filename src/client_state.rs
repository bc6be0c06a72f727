//! [`ClientState`]: the one state of a client that both channel kinds use — the REST layer,
//! the settings and the data path's shared pieces (one memory budget, buffer pool, compressor
//! pool and pipe-parameter cache per client).
//!
//! Made once per client and held (`Arc`) by the client's core, by the named channels'
//! runtime (its commit poller and each channel's actor) and by every elastic channel: each
//! piece has one owner, here, and nobody copies it. What only one channel kind uses stays
//! with that kind: the named channels' registry, commit poller and shutdown token in their
//! runtime (`channel::ChannelRuntime`), the elastic channels' registry in the client's core.
//!
//! A room of its own below both channel kinds (which use neither each other nor the client):
//! it uses only `settings`, `pipeline` and `transport`.

use std::sync::Arc;

use crate::pipeline::budget::Budget;
use crate::pipeline::compress::CompressorPool;
use crate::pipeline::pipe_params::PipeParams;
use crate::pipeline::pool::BufferPool;
use crate::settings::ChannelSettings;
use crate::transport::IngestApi;

/// Most idle capacity the row-buffer pools of one client keep (also at most 1/16 of the
/// memory budget, and two requests' worth per channel). This much of the budget is set
/// aside for them: rows and bodies may hold the rest.
const MAX_POOLED_BYTES: usize = 32 << 20;

/// The state of one client shared by the client and both channel kinds.
#[derive(Debug)]
pub(crate) struct ClientState {
    /// The REST layer (a fake in tests, a null transport in the benches).
    pub(crate) api: Arc<dyn IngestApi>,
    /// The channels' settings, normalized.
    pub(crate) settings: ChannelSettings,
    /// The client-wide memory budget: both channel kinds charge it.
    pub(crate) budget: Budget,
    /// Idle row and body buffers, shared by all channels (see `pipeline::pool`).
    pub(crate) buffers: Arc<BufferPool>,
    /// The client's compression jobs and zstd contexts, shared by all channels.
    pub(crate) compressors: Arc<CompressorPool>,
    /// Each pipe's parameters (its `BINARY_INPUT_FORMAT`), learned once per pipe.
    pub(crate) pipe_params: PipeParams,
}

impl ClientState {
    /// The state of a client talking to `api` with `settings` (normalized here).
    pub(crate) fn new(api: Arc<dyn IngestApi>, settings: ChannelSettings) -> Self {
        let settings = settings.normalized();
        // Idle pooled buffers are part of the budget: the pools' limit is set aside from it.
        let pooled = (settings.memory_budget_bytes / 16).min(MAX_POOLED_BYTES);
        let budget = Budget::with_reserve(settings.memory_budget_bytes, pooled);
        let buffers = Arc::new(BufferPool::new(pooled));
        let pipe_params = PipeParams::new(settings.binary_format);
        let compressors = settings
            .compressors(std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
        // Idle early frames' contexts may hold budget; a producer short of it takes it back.
        let pool = Arc::downgrade(&compressors);
        budget.set_reclaim(move || {
            if let Some(pool) = pool.upgrade() {
                pool.release_frames();
            }
        });
        Self {
            api,
            settings,
            budget,
            buffers,
            compressors,
            pipe_params,
        }
    }
}
