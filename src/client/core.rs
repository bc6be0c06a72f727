//! [`ClientCore`]: one client, shared by all its clones — its state
//! ([`ClientState`]: the REST layer, the settings, the data path's shared pieces), the named
//! channels' runtime (registry, commit poller, shutdown token) and the elastic channels'
//! registry. Both channel kinds hold the same [`ClientState`].

use std::sync::Arc;

use crate::channel::ChannelRuntime;
use crate::client_state::ClientState;
use crate::elastic;
use crate::settings::ChannelSettings;
use crate::transport::IngestApi;

/// The state of one client (what `StreamingIngestClient` clones share).
#[derive(Debug)]
pub(crate) struct ClientCore {
    /// The REST layer, the settings and the data path's shared pieces: the client-wide memory
    /// budget (both channel kinds charge it), the buffer pool, the compressors and the pipe
    /// parameters. The named channels' runtime and every elastic channel hold it too.
    pub(crate) state: Arc<ClientState>,
    /// The named channels: opening them, their registry and commit poller, closing them.
    pub(crate) channels: ChannelRuntime,
    /// The elastic channels: what `client.flush()` and `client.close()` deliver.
    pub(crate) elastic: Arc<elastic::Registry>,
}

impl ClientCore {
    /// The core of a client talking to `api` with `settings` (normalized here).
    pub(crate) fn new(api: Arc<dyn IngestApi>, settings: ChannelSettings) -> Self {
        let state = Arc::new(ClientState::new(api, settings));
        Self {
            channels: ChannelRuntime::new(Arc::clone(&state)),
            state,
            elastic: Arc::default(),
        }
    }
}
