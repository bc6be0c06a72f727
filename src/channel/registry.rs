//! The registry of a client's open channels: which paths are open or being opened (a second
//! open of the same channel in one client is refused before it reaches the server), and the
//! list the commit poller and the client-level calls walk.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::shared::ChannelShared;
use crate::sync::lock;
use crate::transport::ChannelPath;

/// The open channels of one client.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    channels: Mutex<HashMap<u64, Arc<ChannelShared>>>,
    /// Paths being opened (the open request is in flight): a second open of the same path in
    /// this client is refused before it reaches the server, where it would bump the
    /// sequencer and invalidate the first.
    reserved: Mutex<HashSet<ChannelPath>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ChannelShared>>> {
        lock(&self.channels)
    }

    /// Registers a channel. Fails when a channel of the same path is already registered.
    pub(crate) fn insert(&self, channel: &Arc<ChannelShared>) -> bool {
        {
            let mut map = self.lock();
            if map.values().any(|c| same_channel(&c.path, &channel.path)) {
                return false;
            }
            map.insert(channel.id, Arc::clone(channel));
        }
        true
    }

    /// Reserves `path` for an open in progress; `None` when a channel of that path is open
    /// or being opened. The reservation ends when the guard is dropped (register first).
    pub(crate) fn reserve(self: &Arc<Self>, path: &ChannelPath) -> Option<Reservation> {
        let map = self.lock();
        if map.values().any(|c| same_channel(&c.path, path)) {
            return None;
        }
        let mut reserved = lock(&self.reserved);
        if reserved.iter().any(|p| same_channel(p, path)) || !reserved.insert(path.clone()) {
            return None;
        }
        drop(map);
        Some(Reservation {
            registry: Arc::clone(self),
            path: path.clone(),
        })
    }

    /// Removes a channel: it is not polled again.
    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Every registered channel.
    pub(crate) fn channels(&self) -> Vec<Arc<ChannelShared>> {
        self.lock().values().cloned().collect()
    }
}

/// Whether two paths name the same server-side channel: channel names are case-insensitive
/// in URLs (docs/protocol.md "Names"), so `orders` and `ORDERS` are one channel.
fn same_channel(a: &ChannelPath, b: &ChannelPath) -> bool {
    a.pipe == b.pipe && a.channel.to_lowercase() == b.channel.to_lowercase()
}

/// A path reserved by an open in progress (see [`Registry::reserve`]).
#[derive(Debug)]
pub(crate) struct Reservation {
    registry: Arc<Registry>,
    path: ChannelPath,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        lock(&self.registry.reserved).remove(&self.path);
    }
}
