//! [`ClientCore`]: the state of one client, shared by all its clones and by both channel
//! kinds — the REST layer, the settings, the data path's shared pieces (memory budget,
//! buffer pool, compressors, pipe parameters), the named channels' runtime (registry and
//! commit poller, which also holds the shutdown token) and the elastic channels' registry.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::channel::{ChannelRuntime, ClientShared};
use crate::elastic::{self, ElasticSettings};
use crate::pipeline::budget::Budget;
use crate::pipeline::pipe_params::PipeParams;
use crate::pipeline::pool::BufferPool;
use crate::settings::ChannelSettings;
use crate::transport::IngestApi;

/// Most idle capacity the row-buffer pools of one client keep (also at most 1/16 of the
/// memory budget, and two requests' worth per channel). This much of the budget is set
/// aside for them: rows and bodies may hold the rest.
const MAX_POOLED_BYTES: usize = 32 << 20;

/// The state of one client (what `StreamingIngestClient` clones share).
#[derive(Debug)]
pub(crate) struct ClientCore {
    /// The REST layer, the settings and the data path's shared pieces: the client-wide memory
    /// budget (both channel kinds charge it), the buffer pool, the compressors and the pipe
    /// parameters. The named channels' runtime holds the same instances.
    pub(crate) shared: ClientShared,
    /// The named channels: opening them, their registry and commit poller, closing them.
    pub(crate) channels: ChannelRuntime,
    /// The elastic channels: what `client.flush()` and `client.close()` deliver.
    pub(crate) elastic: Arc<elastic::Registry>,
}

impl ClientCore {
    /// The core of a client talking to `api` with `settings` (normalized here).
    pub(crate) fn new(api: Arc<dyn IngestApi>, settings: ChannelSettings) -> Self {
        let settings = Arc::new(settings.normalized());
        // Idle pooled buffers are part of the budget: the pools' limit is set aside from it.
        let pooled = (settings.memory_budget_bytes / 16).min(MAX_POOLED_BYTES);
        let budget = Budget::with_reserve(settings.memory_budget_bytes, pooled);
        let buffers = Arc::new(BufferPool::new(pooled));
        let pipe_params = Arc::new(PipeParams::new(settings.binary_format));
        let compressors = settings
            .compressors(std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
        let shared = ClientShared {
            api,
            settings,
            budget,
            buffers,
            compressors,
            pipe_params,
            shutdown: CancellationToken::new(),
        };
        let channels = ChannelRuntime::new(shared.clone());
        Self {
            shared,
            channels,
            elastic: Arc::default(),
        }
    }

    /// What an elastic channel takes from the client: the named channels' settings and the
    /// same budget, buffers, compressors and pipe parameters.
    pub(crate) fn elastic_settings(&self) -> ElasticSettings {
        let shared = &self.shared;
        let s = &shared.settings;
        ElasticSettings {
            max_client_lag: s.max_client_lag,
            batch_cap: s.batch_cap(),
            row_cap: s.row_cap(),
            compression: s.compression,
            budget: shared.budget.clone(),
            buffers: Arc::clone(&shared.buffers),
            compressors: Arc::clone(&shared.compressors),
            pipe_params: Arc::clone(&shared.pipe_params),
        }
    }
}
