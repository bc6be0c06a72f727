//! Recycled row buffers: the NDJSON an append serializes into comes back here once its batch
//! is compressed, so the next append writes into memory that is already mapped.
//!
//! Without it every append allocates a fresh buffer of a few hundred KB and the allocator
//! hands freed ones back to the kernel, so each page is faulted in (and zeroed) again: about
//! a tenth of the client's CPU at full speed (measured with `perf`, see the README's
//! Performance section). The pool is per channel (no lock shared between channels); it holds
//! at most `max_bytes` of idle capacity, all pools of a client together at most their
//! [`PoolLimit`] (which the client sets aside from its memory budget), and a pool is emptied
//! when its channel goes idle or closes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::sync::lock;

/// The idle capacity all pools of one client may hold together.
#[derive(Debug)]
pub(crate) struct PoolLimit {
    held: AtomicUsize,
    max: usize,
}

impl PoolLimit {
    /// A limit of `max` bytes.
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            held: AtomicUsize::new(0),
            max,
        })
    }

    fn try_add(&self, n: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                (h + n <= self.max).then_some(h + n)
            })
            .is_ok()
    }

    fn sub(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Idle buffers of one channel.
#[derive(Debug)]
pub(crate) struct BufferPool {
    bufs: Mutex<Vec<Vec<u8>>>,
    max_bytes: usize,
    limit: Arc<PoolLimit>,
}

/// Whether a buffer of `capacity` suits a request for `want` bytes. `want` is an estimate
/// (from the first row of an append) with 1/8 headroom, so a buffer up to 1/8 smaller will
/// usually do (and grows if not); one more than 1/4 larger would hold, and charge to the
/// budget, memory the rows do not need (the encoder trims such slack anyway).
fn fits(capacity: usize, want: usize) -> bool {
    capacity >= want - want / 8 && capacity <= want + want / 4
}

/// `buf` with unused capacity above 1/8 of its length (plus 1 KB) given back. Buffers live
/// until their batch is compressed (rows) or committed (bodies), so large slack would be
/// memory held for nothing; small slack is kept (no realloc).
pub(crate) fn trimmed(mut buf: Vec<u8>) -> Vec<u8> {
    if buf.capacity() - buf.len() > buf.len() / 8 + 1024 {
        buf.shrink_to_fit();
    }
    buf
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        self.clear();
    }
}

impl BufferPool {
    /// A pool keeping at most `max_bytes` of idle capacity, and no more than `limit` allows.
    pub(crate) fn new(max_bytes: usize, limit: Arc<PoolLimit>) -> Self {
        Self {
            bufs: Mutex::new(Vec::new()),
            max_bytes,
            limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        lock(&self.bufs)
    }

    /// An empty buffer for about `want` bytes (see [`fits`]): a recycled one when the pool has
    /// one that size, else a new one of exactly `want`.
    pub(crate) fn take(&self, want: usize) -> Vec<u8> {
        self.take_where(want, |cap| fits(cap, want))
    }

    fn take_where(&self, want: usize, suits: impl Fn(usize) -> bool) -> Vec<u8> {
        {
            let mut bufs = self.lock();
            // Best fit among the idle buffers (there are only a few).
            let best = bufs
                .iter()
                .enumerate()
                .filter(|(_, b)| suits(b.capacity()))
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i);
            if let Some(i) = best {
                let b = bufs.swap_remove(i);
                self.limit.sub(b.capacity());
                return b;
            }
        }
        Vec::with_capacity(want)
    }

    /// An empty buffer with room for at least `n` bytes and at most 1/8 more: for data whose
    /// size is known (a compressed body), recycled when the pool has one that size.
    pub(crate) fn take_exact(&self, n: usize) -> Vec<u8> {
        self.take_where(n, |cap| cap >= n && cap - n <= n / 8)
    }

    /// Takes back the buffer behind `data` when nothing else refers to it; otherwise (a clone
    /// is still alive, or the pool is full) the bytes are simply dropped.
    pub(crate) fn give(&self, data: Bytes) {
        if self.max_bytes == 0 || data.is_empty() {
            return;
        }
        let Ok(unique) = data.try_into_mut() else {
            return;
        };
        let mut buf = Vec::from(unique);
        buf.clear();
        let cap = buf.capacity();
        if cap == 0 || cap > self.max_bytes {
            return;
        }
        let mut bufs = self.lock();
        let mut held: usize = bufs.iter().map(Vec::capacity).sum();
        // Make room by dropping the oldest idle buffers: recent sizes predict the next ones.
        while held + cap > self.max_bytes && !bufs.is_empty() {
            let old = bufs.remove(0).capacity();
            held -= old;
            self.limit.sub(old);
        }
        if self.limit.try_add(cap) {
            bufs.push(buf);
        }
    }

    /// Capacity held by idle buffers.
    pub(crate) fn idle_bytes(&self) -> usize {
        self.lock().iter().map(Vec::capacity).sum()
    }

    /// Frees every idle buffer.
    pub(crate) fn clear(&self) {
        let freed = std::mem::take(&mut *self.lock());
        self.limit.sub(freed.iter().map(Vec::capacity).sum());
        drop(freed);
    }
}

/// Accessors for tests only, kept out of the production impl.
#[cfg(test)]
impl BufferPool {
    /// A pool that keeps nothing.
    pub(crate) fn disabled() -> Self {
        Self::new(0, PoolLimit::new(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One byte in a buffer of `capacity`, as bytes a pool can take back.
    fn one_byte_in(capacity: usize) -> Bytes {
        let mut v = Vec::with_capacity(capacity);
        v.push(1);
        Bytes::from(v)
    }

    #[test]
    fn trimming_gives_back_large_slack_only() {
        let mut v = Vec::with_capacity(100_000);
        v.extend_from_slice(&[b'x'; 5000]);
        let v = trimmed(v);
        assert_eq!(v.len(), 5000);
        assert!(v.capacity() <= 5000 + 5000 / 8 + 1024, "{}", v.capacity());
        let mut w = Vec::with_capacity(5100);
        w.extend_from_slice(&[b'x'; 5000]);
        assert_eq!(
            trimmed(w).capacity(),
            5100,
            "small slack is kept (no realloc)"
        );
    }

    #[test]
    fn a_returned_buffer_is_handed_out_again() {
        let pool = BufferPool::new(1 << 20, PoolLimit::new(1 << 20));
        let mut v = pool.take(1000);
        v.extend_from_slice(&[b'x'; 900]);
        let ptr = v.as_ptr();
        pool.give(Bytes::from(v));
        assert!(pool.idle_bytes() >= 1000);
        let again = pool.take(1000);
        assert_eq!(again.as_ptr(), ptr, "the same allocation comes back");
        assert!(again.is_empty());
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn buffers_much_larger_or_smaller_than_asked_are_not_used() {
        let pool = BufferPool::new(1 << 20, PoolLimit::new(1 << 20));
        pool.give(one_byte_in(100_000));
        assert_eq!(pool.take(10_000).capacity(), 10_000, "too large: a new one");
        assert!(
            pool.take(200_000).capacity() >= 200_000,
            "too small: a new one"
        );
        assert_eq!(pool.take(110_000).capacity(), 100_000, "1/8 short: reused");
        pool.give(one_byte_in(100_000));
        assert_eq!(
            pool.take(85_000).capacity(),
            100_000,
            "under 1/4 larger: reused"
        );
    }

    #[test]
    fn exact_takes_only_buffers_big_enough() {
        let pool = BufferPool::new(1 << 20, PoolLimit::new(1 << 20));
        pool.give(one_byte_in(10_000));
        assert_eq!(
            pool.take_exact(10_001).capacity(),
            10_001,
            "too small: a new one"
        );
        assert_eq!(
            pool.take_exact(9_000).capacity(),
            10_000,
            "within 1/8: reused"
        );
    }

    #[test]
    fn shared_bytes_are_not_taken_and_the_pool_is_bounded() {
        let limit = PoolLimit::new(1 << 20);
        let pool = BufferPool::new(10_000, Arc::clone(&limit));
        let mut v = Vec::with_capacity(4000);
        v.extend_from_slice(&[1; 4000]);
        let b = Bytes::from(v);
        let clone = b.clone();
        pool.give(b);
        assert_eq!(pool.idle_bytes(), 0, "a clone is alive: not recycled");
        drop(clone);
        for _ in 0..5 {
            pool.give(one_byte_in(4000));
        }
        assert!(pool.idle_bytes() <= 10_000, "{}", pool.idle_bytes());
        assert!(pool.idle_bytes() >= 8000);
        assert_eq!(limit.held.load(Ordering::Acquire), pool.idle_bytes());
        pool.clear();
        assert_eq!(pool.idle_bytes(), 0);
        assert_eq!(limit.held.load(Ordering::Acquire), 0);
        // The client-wide limit applies across pools.
        let small = PoolLimit::new(5000);
        let (a, b) = (
            BufferPool::new(10_000, Arc::clone(&small)),
            BufferPool::new(10_000, Arc::clone(&small)),
        );
        a.give(one_byte_in(4000));
        b.give(one_byte_in(4000));
        assert_eq!(
            a.idle_bytes() + b.idle_bytes(),
            4000,
            "only one fits the limit"
        );
        drop(a);
        assert_eq!(small.held.load(Ordering::Acquire), b.idle_bytes());
        // A pool of size 0 keeps nothing.
        let off = BufferPool::disabled();
        off.give(Bytes::from(vec![1u8; 10]));
        assert_eq!(off.idle_bytes(), 0);
    }
}
