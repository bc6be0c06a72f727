//! What a client's named channels share ([`RuntimeInner`]): the client's state
//! ([`ClientState`]: the REST layer, the settings, the memory budget, the buffer pool, the
//! compressors, the pipe parameters; the same instance the client and its elastic channels
//! hold) and what only they use (the registry, the commit poller, the shutdown token). A file
//! of its own so the runtime (which opens channels), the handle and the actor all use it
//! without depending on each other.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::poller::Poller;
use super::registry::Registry;
use crate::client_state::ClientState;

/// The named channels of one client: what they share.
#[derive(Debug)]
pub(super) struct RuntimeInner {
    /// The client's state, shared with the client and its elastic channels.
    pub(super) client: Arc<ClientState>,
    /// The one registry of open channels (also the poller's and the client-level calls').
    pub(super) registry: Arc<Registry>,
    pub(super) poller: Arc<Poller>,
    pub(super) next_id: AtomicU64,
    /// Budget held by the client's last append (see `Channel::reserve`).
    pub(super) typical_append: AtomicUsize,
    /// Cancelled by `client.close()`: no channel opens after it, and every channel's
    /// `Controls::shutdown` (a child token) drains its actor.
    pub(super) shutdown: CancellationToken,
}

impl RuntimeInner {
    pub(super) fn new(client: Arc<ClientState>) -> Self {
        let registry = Arc::new(Registry::default());
        let poller = Poller::new(Arc::clone(&client), Arc::clone(&registry));
        Self {
            client,
            registry,
            poller,
            next_id: AtomicU64::new(1),
            typical_append: AtomicUsize::new(0),
            shutdown: CancellationToken::new(),
        }
    }
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.poller.stop();
    }
}
