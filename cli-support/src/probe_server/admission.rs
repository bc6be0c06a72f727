//! Which connections the metrics endpoint holds, so that a probe is answered while slow or
//! half-open clients hold every slot.
//!
//! At most `MAX_CONNECTIONS` connections are served at once. A connection is *pending*
//! from its accept until its request head is in (the service is called); when every slot is
//! taken, a new connection evicts the oldest pending one (closed at once) rather than waiting
//! behind it for the head timeout. A probe sends its head as it connects, so it is evicted
//! only after every slower connection before it: 200 clients that send half a head and
//! reconnect when cut cannot starve `/healthz`. Only when every slot is serving a request
//! (each answered at memory speed) does a new connection wait for one to end.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::MAX_CONNECTIONS;

/// The slots and the connections still waiting for their request head, oldest first.
pub(super) struct Admission {
    slots: Arc<Semaphore>,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    next: u64,
    queue: VecDeque<(u64, oneshot::Sender<()>)>,
}

/// One admitted connection: its slot, and the signal that evicts it while it is pending.
pub(super) struct Ticket {
    pub(super) id: u64,
    pub(super) _slot: OwnedSemaphorePermit,
    pub(super) evicted: oneshot::Receiver<()>,
}

impl Admission {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            pending: Mutex::new(Pending::default()),
        })
    }

    /// A slot for a connection just accepted: a free one, else the oldest pending
    /// connection's (evicted), else the first to end. `None` once the endpoint closes.
    ///
    /// # Cancellation
    /// Safe: a slot not yet handed out stays with the semaphore.
    pub(super) async fn admit(&self) -> Option<Ticket> {
        let slot = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                self.evict_oldest();
                Arc::clone(&self.slots).acquire_owned().await.ok()?
            }
        };
        let (tx, evicted) = oneshot::channel();
        let mut pending = self.lock();
        let id = pending.next;
        pending.next += 1;
        pending.queue.push_back((id, tx));
        Some(Ticket {
            id,
            _slot: slot,
            evicted,
        })
    }

    /// Connection `id`'s head is in: it is served, no longer evictable.
    pub(super) fn served(&self, id: u64) {
        self.lock().queue.retain(|(p, _)| *p != id);
    }

    /// Closes the oldest connection still waiting for its head (none: nothing happens).
    fn evict_oldest(&self) {
        let mut pending = self.lock();
        while let Some((_, tx)) = pending.queue.pop_front() {
            // A connection that already ended has dropped its receiver: try the next.
            if tx.send(()).is_ok() {
                return;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
