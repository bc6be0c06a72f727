//! The one registry of a client's channels: which paths are open or being opened (a second
//! open of the same channel in one client is refused before it reaches the server), and the
//! list the commit poller and the client-level calls walk. Each channel is in it from its
//! open until its actor stops (the actor removes it), with a weak sender to its actor for the
//! client-level calls.
//!
//! Channels are identified by a normalised key ([`ChannelKey`]: the pipe, and the channel
//! name lower-cased once), so checking an open is one hash lookup, not a scan that lower-cases
//! every open channel's name.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::cmd::Cmd;
use super::shared::ChannelShared;
use crate::sync::lock;
use crate::transport::{ChannelPath, PipePath};

/// Which server-side channel a path names: database, schema, pipe and channel names are
/// case-insensitive in URLs (docs/protocol.md "Names"), so `db.s.p/orders` and
/// `DB.S.P/ORDERS` are one channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ChannelKey {
    /// The database, schema, pipe and channel names, lower-cased.
    names: [String; 4],
}

impl ChannelKey {
    fn of(path: &ChannelPath) -> Self {
        let PipePath {
            database,
            schema,
            pipe,
        } = &path.pipe;
        Self {
            names: [database, schema, pipe, &path.channel].map(|n| n.to_lowercase()),
        }
    }
}

/// One open channel as the registry holds it: its shared state and a weak sender to its
/// actor (weak: the registry never keeps a mailbox open, the handle's sender does).
#[derive(Debug)]
struct Entry {
    shared: Arc<ChannelShared>,
    tx: mpsc::WeakSender<Cmd>,
}

/// The registered channels, by id and by key (one writer: the registry, under one lock).
#[derive(Debug, Default)]
struct Open {
    by_id: HashMap<u64, Entry>,
    by_key: HashMap<ChannelKey, u64>,
}

/// The open channels of one client.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    open: Mutex<Open>,
    /// Keys being opened (the open request is in flight): a second open of the same channel
    /// in this client is refused before it reaches the server, where it would bump the
    /// sequencer and invalidate the first.
    reserved: Mutex<HashSet<ChannelKey>>,
}

impl Registry {
    /// Registers a channel and its actor's mailbox. Fails when a channel of the same path
    /// is already registered.
    pub(crate) fn insert(&self, channel: &Arc<ChannelShared>, tx: &mpsc::Sender<Cmd>) -> bool {
        let key = ChannelKey::of(&channel.path);
        let mut open = lock(&self.open);
        if open.by_key.contains_key(&key) {
            return false;
        }
        open.by_key.insert(key, channel.id);
        open.by_id.insert(
            channel.id,
            Entry {
                shared: Arc::clone(channel),
                tx: tx.downgrade(),
            },
        );
        true
    }

    /// Reserves `path` for an open in progress; `None` when a channel of that path is open
    /// or being opened. The reservation ends when the guard is dropped (register first).
    pub(crate) fn reserve(self: &Arc<Self>, path: &ChannelPath) -> Option<Reservation> {
        let key = ChannelKey::of(path);
        let open = lock(&self.open);
        if open.by_key.contains_key(&key) || !lock(&self.reserved).insert(key.clone()) {
            return None;
        }
        drop(open);
        Some(Reservation {
            registry: Arc::clone(self),
            key,
        })
    }

    /// Removes a channel (its actor, when it stops): it is not polled again.
    pub(crate) fn remove(&self, id: u64) {
        let mut open = lock(&self.open);
        if let Some(entry) = open.by_id.remove(&id) {
            let key = ChannelKey::of(&entry.shared.path);
            if open.by_key.get(&key) == Some(&id) {
                open.by_key.remove(&key);
            }
        }
    }

    /// The registered channel `path` names (any case of its name).
    pub(crate) fn get(&self, path: &ChannelPath) -> Option<Arc<ChannelShared>> {
        let open = lock(&self.open);
        let id = open.by_key.get(&ChannelKey::of(path))?;
        open.by_id.get(id).map(|e| Arc::clone(&e.shared))
    }

    /// Every registered channel.
    pub(crate) fn channels(&self) -> Vec<Arc<ChannelShared>> {
        lock(&self.open)
            .by_id
            .values()
            .map(|e| Arc::clone(&e.shared))
            .collect()
    }

    /// The open channels (lifecycle `Open`) whose handle still exists, with a sender to each
    /// one's actor: what the client-level calls (`runtime.rs`) act on.
    pub(crate) fn live(&self) -> Vec<(Arc<ChannelShared>, mpsc::Sender<Cmd>)> {
        lock(&self.open)
            .by_id
            .values()
            .filter(|e| e.shared.actor.lifecycle.borrow().is_open())
            .filter_map(|e| Some((Arc::clone(&e.shared), e.tx.upgrade()?)))
            .collect()
    }

    /// How many channels are registered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.open).by_id.len()
    }
}

/// A path reserved by an open in progress (see [`Registry::reserve`]).
#[derive(Debug)]
pub(crate) struct Reservation {
    registry: Arc<Registry>,
    key: ChannelKey,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        lock(&self.registry.reserved).remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ChannelStatusWire;
    use crate::pipeline::pool::BufferPool;
    use tokio_util::sync::CancellationToken;

    fn path(pipe: &str, channel: &str) -> ChannelPath {
        ChannelPath {
            pipe: PipePath {
                database: "DB".into(),
                schema: "S".into(),
                pipe: pipe.into(),
            },
            channel: channel.into(),
        }
    }

    fn shared(id: u64, p: ChannelPath) -> Arc<ChannelShared> {
        Arc::new(ChannelShared::new(
            id,
            p,
            &ChannelStatusWire::default(),
            CancellationToken::new(),
            Arc::new(BufferPool::new(1 << 16)),
        ))
    }

    /// Thousands of channels: a name in any case is one channel of its pipe, another pipe's
    /// channel of that name is another, and a removed channel's name is free again.
    #[test]
    fn a_channel_name_in_any_case_is_one_channel_of_its_pipe() {
        let registry = Arc::new(Registry::default());
        let (tx, _rx) = mpsc::channel(1);
        for i in 0..5_000u64 {
            assert!(registry.insert(&shared(i, path("P", &format!("orders_{i}"))), &tx));
        }
        assert!(!registry.insert(&shared(9_000, path("P", "ORDERS_17")), &tx));
        assert!(registry.reserve(&path("P", "Orders_17")).is_none());
        assert_eq!(
            registry.get(&path("P", "ORDERS_17")).map(|c| c.id),
            Some(17)
        );
        assert!(registry.insert(&shared(9_001, path("Q", "orders_17")), &tx));
        let mut folded = path("q", "ORDERS_17");
        folded.pipe.database = "db".into();
        folded.pipe.schema = "s".into();
        assert!(
            registry.reserve(&folded).is_none(),
            "db.s.q/ORDERS_17 is DB.S.Q/orders_17 on the server"
        );

        let pending = registry.reserve(&path("P", "new")).expect("free");
        assert!(
            registry.reserve(&path("P", "NEW")).is_none(),
            "being opened"
        );
        drop(pending);
        assert!(registry.reserve(&path("P", "NEW")).is_some());

        registry.remove(17);
        assert!(registry.get(&path("P", "orders_17")).is_none());
        assert!(registry.insert(&shared(9_002, path("P", "Orders_17")), &tx));
        assert_eq!(
            registry.channels().len(),
            5_000 + 1,
            "P's 5,000 and Q's one"
        );
    }
}
