//! Which connections the metrics endpoint holds, so that a probe is answered while slow or
//! half-open clients hold every slot.
//!
//! At most `MAX_CONNECTIONS` connections are served at once. A connection is *pending*
//! from its accept until its request head is in (the service is called); when every slot is
//! taken, a new connection takes the slot of the oldest pending one that has had [`GRACE`] to
//! send its head (it is told to close); if even the oldest is younger, the new connection
//! waits until it is not, or for a slot to free.
//! The slot changes hands at once, under one lock: the accept loop never waits for the evicted
//! connection's task to run, so a probe queued in the kernel behind a hundred reconnecting
//! slow clients is accepted after a hundred lock-and-send steps, not a hundred task wake-ups.
//! A probe sends its head as it connects, so it is served within its grace: 200 clients that
//! send half a head and reconnect when cut are each cut after [`GRACE`], the 64 slots turn
//! over five times a second, and a probe queued behind 136 of them is accepted within about
//! half a second. Only when every slot is serving a request (each answered at memory
//! speed) does a new connection wait for one to end.
//!
//! Evicted connections still hold their socket until their task runs; at most
//! `MAX_CONNECTIONS` of them at once (the `closing` permits), after which the accept loop
//! waits for them, so file descriptors stay bounded at twice the slots.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::MAX_CONNECTIONS;

/// How long a new connection is safe from eviction: time enough for a client that sends its
/// head as it connects (a probe, a scrape) to be read on a loaded machine.
pub(super) const GRACE: Duration = Duration::from_millis(200);

/// A slot, held by its connection and, while the connection is pending, reachable from the
/// queue so that a newer connection can take it.
type SlotCell = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

/// The slots and the connections still waiting for their request head, oldest first.
pub(super) struct Admission {
    slots: Arc<Semaphore>,
    /// Sockets open at once (served, pending or evicted and not yet closed).
    sockets: Arc<Semaphore>,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    next: u64,
    queue: VecDeque<Entry>,
}

struct Entry {
    id: u64,
    admitted: Instant,
    evict: oneshot::Sender<()>,
    /// Weak: a connection that ends frees its slot whether or not it is still queued.
    slot: Weak<Mutex<Option<OwnedSemaphorePermit>>>,
}

/// One admitted connection: its slot, its socket permit, and the signal that evicts it
/// while it is pending.
pub(super) struct Ticket {
    pub(super) id: u64,
    pub(super) _slot: SlotCell,
    pub(super) _socket: OwnedSemaphorePermit,
    pub(super) evicted: oneshot::Receiver<()>,
}

impl Admission {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            sockets: Arc::new(Semaphore::new(2 * MAX_CONNECTIONS)),
            pending: Mutex::new(Pending::default()),
        })
    }

    /// A slot for a connection just accepted: a free one, else the oldest pending
    /// connection's (taken from it at once; it is told to close), else the first to end.
    /// `None` once the endpoint closes.
    ///
    /// # Cancellation
    /// Safe: a slot not yet handed out stays with the semaphore or its pending connection.
    pub(super) async fn admit(&self) -> Option<Ticket> {
        let socket = Arc::clone(&self.sockets).acquire_owned().await.ok()?;
        let slot = loop {
            if let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() {
                break slot;
            }
            match self.take_oldest() {
                Oldest::Taken(slot) => break slot,
                Oldest::Young(until) => tokio::select! {
                    slot = Arc::clone(&self.slots).acquire_owned() => break slot.ok()?,
                    () = tokio::time::sleep_until(until) => {}
                },
                Oldest::None => break Arc::clone(&self.slots).acquire_owned().await.ok()?,
            }
        };
        let (evict, evicted) = oneshot::channel();
        let slot: SlotCell = Arc::new(Mutex::new(Some(slot)));
        let mut pending = lock(&self.pending);
        let id = pending.next;
        pending.next += 1;
        pending.queue.push_back(Entry {
            id,
            admitted: Instant::now(),
            evict,
            slot: Arc::downgrade(&slot),
        });
        Some(Ticket {
            id,
            _slot: slot,
            _socket: socket,
            evicted,
        })
    }

    /// Connection `id`'s head is in: it is served, no longer evictable.
    pub(super) fn served(&self, id: u64) {
        lock(&self.pending).queue.retain(|e| e.id != id);
    }

    /// The slot of the oldest connection still waiting for its head past its grace, which is
    /// told to close.
    fn take_oldest(&self) -> Oldest {
        let mut pending = lock(&self.pending);
        loop {
            let Some(entry) = pending.queue.front() else {
                return Oldest::None;
            };
            if entry.admitted.elapsed() < GRACE {
                return Oldest::Young(entry.admitted + GRACE);
            }
            let Some(entry) = pending.queue.pop_front() else {
                return Oldest::None;
            };
            let Some(cell) = entry.slot.upgrade() else {
                continue; // Ended: its slot went back to the semaphore.
            };
            let Some(slot) = lock(&cell).take() else {
                continue;
            };
            let _ = entry.evict.send(());
            return Oldest::Taken(slot);
        }
    }
}

/// What the oldest pending connection offers a new one.
enum Oldest {
    /// Its slot (it is told to close).
    Taken(OwnedSemaphorePermit),
    /// Nothing until its grace ends at this instant.
    Young(Instant),
    /// No connection is pending: every slot is serving.
    None,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_house_hands_the_oldest_pending_slot_over_at_once() {
        let admission = Admission::new();
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            held.push(admission.admit().await.unwrap());
        }
        // The first is served: not evictable. The next admit takes the second's slot.
        admission.served(held[0].id);
        tokio::time::sleep(GRACE).await;
        let newer = admission.admit().await.unwrap();
        assert!(
            lock(&held[0]._slot).is_some(),
            "a served connection keeps its slot"
        );
        assert!(
            lock(&held[1]._slot).is_none(),
            "the oldest pending lost its slot"
        );
        assert!(held[1].evicted.try_recv().is_ok(), "and was told to close");
        assert_eq!(admission.slots.available_permits(), 0);
        drop(newer);
        assert_eq!(admission.slots.available_permits(), 1, "its slot is back");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_in_its_grace_is_not_evicted() {
        let admission = Admission::new();
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            held.push(admission.admit().await.unwrap());
        }
        let started = Instant::now();
        let newer = admission.admit().await.unwrap();
        assert!(started.elapsed() >= GRACE, "waited for the oldest's grace");
        assert!(lock(&held[0]._slot).is_none());
        drop(newer);
    }

    #[tokio::test]
    async fn every_slot_served_makes_a_new_connection_wait_for_one_to_end() {
        let admission = Admission::new();
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let t = admission.admit().await.unwrap();
            admission.served(t.id);
            held.push(t);
        }
        let waiting = admission.admit();
        tokio::pin!(waiting);
        assert!(futures_poll_once(&mut waiting).await.is_none());
        held.pop();
        assert!(waiting.await.is_some());
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        tokio::time::timeout(std::time::Duration::from_millis(50), f)
            .await
            .ok()
    }
}
