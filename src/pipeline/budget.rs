//! The client-wide memory budget: bytes of buffered and sent-but-uncommitted data.
//!
//! A tokio [`Semaphore`] whose permits are bytes. An append acquires permits for its serialized
//! size before it is handed to the channel actor; the permits travel with the bytes (split when
//! an append is split across batches, shrunk to the compressed size once a batch is
//! compressed) and go back to the semaphore when the batch is released (committed, discarded,
//! or the channel closes).
//!
//! Part of the configured budget can be set aside ([`Budget::with_reserve`]) for memory the
//! client holds outside any batch (idle recycled buffers), so that the configured figure
//! bounds all of it: the semaphore then holds only the rest.
//!
//! Some of it may be held by memory the client keeps but can do without (idle early frames'
//! contexts, charged while the budget is roomy): a producer that would wait or be refused
//! first has it given back ([`Budget::set_reclaim`]), and again every 100 ms while it waits.
//!
//! A budget that runs short says so ([`Shortage`]): channels holding rows in an open batch
//! then send it without waiting for `max_client_lag`, since those rows hold memory a producer
//! is waiting for, and only their commit gives it back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore, TryAcquireError};

use crate::{Error, Result};

/// The shared budget. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    sem: Arc<Semaphore>,
    /// Bytes data may hold: the configured size less the reserve.
    total: usize,
    /// The configured size (reported in errors).
    configured: usize,
    shortage: Arc<Shortage>,
    /// Gives back what the client holds of the budget that it may do without (idle early
    /// frames' contexts, [`CompressorPool::release_frames`](super::compress::CompressorPool::release_frames)):
    /// called before a producer would wait or be refused, and every
    /// [`RECLAIM_EVERY`] while one waits.
    reclaim: Arc<std::sync::OnceLock<Reclaim>>,
}

/// How often a producer waiting for room gives the client's spare holdings back again.
const RECLAIM_EVERY: Duration = Duration::from_millis(100);

/// A [`Budget`]'s reclaim hook.
struct Reclaim(Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Reclaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reclaim")
    }
}

/// Whether producers are short of budget: how many wait for room now, and a count of
/// shortages (bumped whenever a producer starts waiting or is refused) that channels watch.
#[derive(Debug)]
struct Shortage {
    waiting: AtomicUsize,
    bumps: watch::Sender<u64>,
}

impl Shortage {
    fn bump(&self) {
        self.bumps.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Counts one producer waiting for room while alive (also when its wait is cancelled).
struct Waiting<'a>(&'a Shortage);

impl<'a> Waiting<'a> {
    fn new(s: &'a Shortage) -> Self {
        s.waiting.fetch_add(1, Ordering::AcqRel);
        s.bump();
        Self(s)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A channel's view of the budget's [`Shortage`].
#[derive(Debug)]
pub(crate) struct ShortageWatch {
    shortage: Arc<Shortage>,
    bumps: watch::Receiver<u64>,
}

impl ShortageWatch {
    /// Whether the budget is short: a producer waits for room now, or one started waiting
    /// or was refused since the last call.
    pub(crate) fn is_short(&mut self) -> bool {
        let bumped = self.bumps.has_changed().unwrap_or(false);
        self.bumps.mark_unchanged();
        bumped || self.shortage.waiting.load(Ordering::Acquire) > 0
    }

    /// Resolves at the next shortage after the last [`is_short`](Self::is_short).
    ///
    /// # Cancellation
    /// Cancel safe: a shortage missed by a dropped future is still seen by `is_short`.
    pub(crate) async fn next(&mut self) {
        if self.bumps.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Budget {
    /// A budget of `total` bytes of which `reserve` (at most half) are kept out of the
    /// semaphore, for memory accounted elsewhere.
    pub(crate) fn with_reserve(total: usize, reserve: usize) -> Self {
        let configured = total.clamp(1, Semaphore::MAX_PERMITS);
        let total = configured - reserve.min(configured / 2);
        Self {
            sem: Arc::new(Semaphore::new(total)),
            total,
            configured,
            shortage: Arc::new(Shortage {
                waiting: AtomicUsize::new(0),
                bumps: watch::Sender::new(0),
            }),
            reclaim: Arc::default(),
        }
    }

    /// Sets what gives back the budget the client holds but may do without (see
    /// [`Budget::reclaim`]'s field); the first call wins.
    pub(crate) fn set_reclaim(&self, reclaim: impl Fn() + Send + Sync + 'static) {
        let _ = self.reclaim.set(Reclaim(Box::new(reclaim)));
    }

    fn reclaim(&self) {
        if let Some(Reclaim(f)) = self.reclaim.get() {
            f();
        }
    }

    /// A watch on this budget running short (see [`ShortageWatch`]).
    pub(crate) fn shortage(&self) -> ShortageWatch {
        ShortageWatch {
            shortage: Arc::clone(&self.shortage),
            bumps: self.shortage.bumps.subscribe(),
        }
    }

    /// The bytes data may hold (the configured size less the reserve).
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// Bytes currently free.
    pub(crate) fn available(&self) -> usize {
        self.sem.available_permits()
    }

    /// Waits until `bytes` are free and takes them. A request larger than the whole budget
    /// takes the whole budget (so it waits for everything else to drain, but never forever).
    ///
    /// Returns the guard and how long the call waited.
    pub(crate) async fn acquire(&self, bytes: usize) -> Result<(BudgetBytes, Duration)> {
        let n = bytes.min(self.total);
        if let Ok(g) = self.try_take(n) {
            return Ok((g, Duration::ZERO));
        }
        let started = Instant::now();
        // Counted as waiting first, so nothing spare is taken (`roomy`) after the reclaim.
        let _waiting = Waiting::new(&self.shortage);
        self.reclaim();
        let mut remaining = n;
        let mut got = BudgetBytes::new(Arc::clone(&self.sem), 0);
        while remaining > 0 {
            let step = remaining.min(u32::MAX as usize);
            let acquire = Arc::clone(&self.sem).acquire_many_owned(step as u32);
            tokio::pin!(acquire);
            // Waits in the semaphore's queue; meanwhile, what was set aside since (a batch
            // cut as the wait began) is given back.
            let permit = loop {
                tokio::select! {
                    permit = &mut acquire => break permit,
                    () = tokio::time::sleep(RECLAIM_EVERY) => self.reclaim(),
                }
            }
            .map_err(|_| Error::shutdown("client"))?;
            permit.forget();
            got.n += step;
            remaining -= step;
        }
        Ok((got, started.elapsed()))
    }

    /// Takes `bytes` if they are free now; otherwise [`Error::Backpressure`]. More bytes
    /// than the whole budget can never be free: that is [`Error::InvalidArgument`] (not
    /// retryable).
    pub(crate) fn try_acquire(&self, bytes: usize) -> Result<BudgetBytes> {
        if bytes > self.total {
            return Err(Error::invalid_argument(
                "rows",
                format!(
                    "the append needs {bytes} bytes, more than the memory budget of {} bytes \
                     can ever hold for rows ({} bytes), so try_append can never take it: use \
                     append (which admits it piece by piece), split it, or raise \
                     memory_budget_bytes",
                    self.configured, self.total
                ),
            ));
        }
        if let Ok(g) = self.try_take(bytes) {
            return Ok(g);
        }
        self.reclaim();
        self.try_take(bytes).map_err(|_| {
            self.shortage.bump();
            self.backpressure(bytes)
        })
    }

    /// Whether memory the client may do without can be held now: nobody waits for room, and
    /// at least a quarter of the budget is free (an early frame's context kept idle between
    /// batches, [`CompressorPool`](super::compress::CompressorPool)).
    pub(crate) fn roomy(&self) -> bool {
        self.shortage.waiting.load(Ordering::Acquire) == 0 && self.available() >= self.total / 4
    }

    /// Takes `bytes` if they are free now, without counting a shortage when they are not:
    /// for memory the client may do without (an early frame's context).
    pub(crate) fn try_spare(&self, bytes: usize) -> Option<BudgetBytes> {
        self.try_take(bytes).ok()
    }

    fn try_take(&self, n: usize) -> std::result::Result<BudgetBytes, TryAcquireError> {
        if n == 0 {
            return Ok(BudgetBytes::new(Arc::clone(&self.sem), 0));
        }
        if n > u32::MAX as usize {
            return Err(TryAcquireError::NoPermits);
        }
        let permit = Arc::clone(&self.sem).try_acquire_many_owned(n as u32)?;
        permit.forget();
        Ok(BudgetBytes::new(Arc::clone(&self.sem), n))
    }

    fn backpressure(&self, requested: usize) -> Error {
        Error::Backpressure {
            requested,
            available: self.available(),
            budget: self.configured,
        }
    }
}

/// Bytes taken from the budget; returned to it on drop. Can be split and merged so the bytes
/// follow the data through batching.
#[derive(Debug)]
pub(crate) struct BudgetBytes {
    sem: Option<Arc<Semaphore>>,
    n: usize,
}

impl BudgetBytes {
    fn new(sem: Arc<Semaphore>, n: usize) -> Self {
        Self { sem: Some(sem), n }
    }

    /// Bytes not tied to any budget (tests and the benches' pure batching code).
    #[cfg(any(test, feature = "bench-internals"))]
    pub(crate) fn detached(n: usize) -> Self {
        Self { sem: None, n }
    }

    /// Holds nothing: an append that reserved nothing ahead of encoding (it is charged when
    /// admitted), or an empty batch.
    pub(crate) fn none() -> Self {
        Self { sem: None, n: 0 }
    }

    /// How many bytes this guard holds.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Moves up to `k` bytes into a new guard.
    pub(crate) fn split(&mut self, k: usize) -> Self {
        let k = k.min(self.n);
        self.n -= k;
        Self {
            sem: self.sem.clone(),
            n: k,
        }
    }

    /// Takes over `other`'s bytes.
    pub(crate) fn merge(&mut self, mut other: Self) {
        if self.sem.is_none() {
            self.sem = other.sem.take();
        }
        self.n += other.n;
        other.n = 0;
    }

    /// Returns every byte above `k` to the budget now.
    pub(crate) fn shrink_to(&mut self, k: usize) {
        if self.n > k {
            drop(self.split(self.n - k));
        }
    }
}

impl Drop for BudgetBytes {
    fn drop(&mut self) {
        if self.n > 0 {
            if let Some(sem) = &self.sem {
                sem.add_permits(self.n);
            }
        }
    }
}

/// Accessors for tests only, kept out of the production impl.
#[cfg(test)]
impl Budget {
    /// A budget of `total` bytes (clamped to what a semaphore can hold, at least 1).
    pub(crate) fn new(total: usize) -> Self {
        Self::with_reserve(total, 0)
    }

    /// Bytes currently held by buffered and retained data.
    pub(crate) fn used(&self) -> usize {
        self.total.saturating_sub(self.available())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn split_merge_shrink_return_every_byte() {
        let b = Budget::new(100);
        let (mut g, waited) = b.acquire(60).await.unwrap();
        assert_eq!(waited, Duration::ZERO);
        assert_eq!(b.available(), 40);
        let part = g.split(25);
        assert_eq!((g.len(), part.len()), (35, 25));
        g.merge(part);
        g.shrink_to(10);
        assert_eq!(b.available(), 90);
        assert!(matches!(
            b.try_acquire(95),
            Err(Error::Backpressure {
                requested: 95,
                available: 90,
                budget: 100
            })
        ));
        drop(g);
        assert_eq!(b.available(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_or_refused_producer_makes_the_budget_short() {
        let b = Budget::new(100);
        let mut w = b.shortage();
        assert!(!w.is_short());
        let (g, _) = b.acquire(90).await.unwrap();
        assert!(!w.is_short(), "taking free room is no shortage");
        // Refused: short once (a bump), not for good.
        assert!(b.try_acquire(20).is_err());
        assert!(w.is_short());
        assert!(!w.is_short());
        // Waiting: short for as long as it waits, also when the wait is cancelled.
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.acquire(50).await.map(|(g, _)| g.len()) }
        });
        tokio::time::timeout(Duration::from_secs(1), w.next())
            .await
            .expect("a producer starting to wait wakes the watch");
        assert!(w.is_short());
        assert!(w.is_short(), "still waiting");
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        assert!(!w.is_short());
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.acquire(50).await.map(|(g, _)| g.len()) }
        });
        tokio::task::yield_now().await;
        drop(g);
        assert_eq!(waiter.await.unwrap().unwrap(), 50);
        w.is_short();
        assert!(!w.is_short(), "served");
    }

    #[tokio::test]
    async fn oversized_request_takes_whole_budget() {
        let b = Budget::new(10);
        let (g, _) = b.acquire(1000).await.unwrap();
        assert_eq!(g.len(), 10);
        assert!(matches!(b.try_acquire(10), Err(Error::Backpressure { .. })));
        drop(g);
        let err = b.try_acquire(11).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        assert!(!err.is_retryable(), "{err}");
    }

    #[tokio::test]
    async fn a_reserve_is_kept_out_of_reach_but_errors_name_the_configured_size() {
        let b = Budget::with_reserve(100, 20);
        assert_eq!((b.total(), b.available()), (80, 80));
        let (g, _) = b.acquire(1000).await.unwrap();
        assert_eq!(
            g.len(),
            80,
            "an oversized append takes what data may hold, not more"
        );
        assert!(matches!(
            b.try_acquire(1),
            Err(Error::Backpressure { budget: 100, .. })
        ));
        drop(g);
        let err = b.try_acquire(81).unwrap_err().to_string();
        assert!(
            err.contains("memory budget of 100 bytes") && err.contains("(80 bytes)"),
            "{err}"
        );
        assert_eq!(
            Budget::with_reserve(10, 9).total(),
            5,
            "at most half is reserved"
        );
    }
}
