//! Recycled buffers: the NDJSON an append serializes into comes back here once its batch is
//! compressed, and a compressed body once its batch is committed, so the next append (or
//! body) writes into memory that is already mapped.
//!
//! Without it every append allocates a fresh buffer of a few hundred KB and the allocator
//! hands freed ones back to the kernel, so each page is faulted in (and zeroed) again: about
//! a tenth of the client's CPU at full speed (measured with `perf`, see the README's
//! Performance section). Worse, glibc's heap fragments when large blocks of many sizes come
//! and go on many threads: with the budget full at full speed, +100–200 MB of freed memory
//! the process kept (measured in the README's Performance section). So the pool is **one per
//! client**, shared by all channels (a buffer one channel freed serves the next append of any
//! other), new buffers are sized to reuse well (row buffers from the channel's typical row,
//! bodies rounded up to 32 KB), and its idle capacity is bounded by `max_bytes`, which the
//! client sets aside from its memory budget. Buffers under [`MIN_POOLED`] are left to the
//! allocator (they are not the large blocks that fragmented its heap, and a pool of many small
//! buffers would cost a longer search on every take). Buffers idle for a while are freed when
//! a channel goes idle ([`BufferPool::release_idle`]), all of them when a channel closes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;

use crate::sync::lock;

/// Buffers smaller than this are not pooled.
pub(crate) const MIN_POOLED: usize = 16 << 10;

/// Idle buffers of one client.
#[derive(Debug)]
pub(crate) struct BufferPool {
    idle: Mutex<Idle>,
    max_bytes: usize,
}

/// The idle buffers, oldest first, each with when it came back; and their total capacity.
#[derive(Debug, Default)]
struct Idle {
    bufs: Vec<(Vec<u8>, Instant)>,
    bytes: usize,
}

/// The typical size of one channel's rows, from which its row buffers are sized.
#[derive(Debug, Default)]
pub(crate) struct RowSize {
    /// Bytes per row of recent pieces, in 1/16 bytes (0: none yet).
    x16: AtomicUsize,
}

impl RowSize {
    /// NDJSON bytes a row (with its newline): an average over recent pieces that moves an
    /// eighth of the way to each new piece's average, or `None` before the first piece.
    /// Buffers sized from it (rather than from an append's first row alone) come out the
    /// same size append after append, so they are reused.
    pub(crate) fn get(&self) -> Option<usize> {
        match self.x16.load(Ordering::Relaxed) {
            0 => None,
            x16 => Some(x16.div_ceil(16)),
        }
    }

    /// Records a finished piece of `rows` rows in `bytes`.
    pub(crate) fn record(&self, bytes: usize, rows: usize) {
        if rows == 0 {
            return;
        }
        let sample = (bytes.saturating_mul(16) / rows).max(1);
        // Racing appends of one channel may lose an update: the figure is an estimate.
        let old = self.x16.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.x16.store(new.max(1), Ordering::Relaxed);
    }
}

/// Whether a buffer of `capacity` suits a request for `want` bytes. `want` is an estimate
/// with 1/16 headroom, so a buffer up to 1/8 smaller will usually do (and grows if not); one
/// more than 1/4 larger would hold, and charge to the budget, memory the rows do not need
/// (the encoder trims such slack anyway).
fn fits(capacity: usize, want: usize) -> bool {
    capacity >= want - want / 8 && capacity <= want + want / 4
}

/// `n` rounded up to a multiple of 32 KB (4 KB below 256 KB): new bodies a few bytes apart
/// in size come out the same size, so they reuse each other's memory.
fn rounded(n: usize) -> usize {
    let grain = if n >= 256 << 10 { 32 << 10 } else { 4 << 10 };
    n.div_ceil(grain).saturating_mul(grain)
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

impl BufferPool {
    /// A pool keeping at most `max_bytes` of idle capacity.
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            idle: Mutex::new(Idle::default()),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        lock(&self.idle)
    }

    /// An empty buffer for about `want` bytes (see [`fits`]): a recycled one when the pool has
    /// one that size, else a new one of exactly `want`.
    pub(crate) fn take(&self, want: usize) -> Vec<u8> {
        self.take_where(want, |cap| fits(cap, want))
    }

    fn take_where(&self, want: usize, suits: impl Fn(usize) -> bool) -> Vec<u8> {
        if want >= MIN_POOLED - MIN_POOLED / 8 {
            let mut idle = self.lock();
            // Best fit, the most recent among equals (at most max_bytes / MIN_POOLED of them).
            let best = idle
                .bufs
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, (b, _))| suits(b.capacity()))
                .min_by_key(|(_, (b, _))| b.capacity())
                .map(|(i, _)| i);
            if let Some(i) = best {
                let (b, _) = idle.bufs.remove(i);
                idle.bytes -= b.capacity();
                return b;
            }
        }
        Vec::with_capacity(want)
    }

    /// An empty buffer with room for at least `n` bytes and at most 1/8 more: for data whose
    /// size is known (an uncompressed body), recycled when the pool has one that size, else
    /// new and [`rounded`] up.
    pub(crate) fn take_exact(&self, n: usize) -> Vec<u8> {
        self.take_where(rounded(n), |cap| cap >= n && cap - n <= n / 8)
    }

    /// An empty buffer for data of about `n` bytes, known within a few percent in advance (a
    /// compressed body; `n` includes that margin): an idle one of `n - n/16` to `n + n/8`
    /// bytes, else a new one of `n` [`rounded`] up. The caller grows one that turns out short.
    pub(crate) fn take_about(&self, n: usize) -> Vec<u8> {
        let low = n - n / 16;
        self.take_where(rounded(n), |cap| cap >= low && cap <= n + n / 8)
    }

    /// Takes back the buffer behind `data` when nothing else refers to it; otherwise (a clone
    /// is still alive, or it is too small or too large to pool) the bytes are simply dropped.
    /// A full pool drops its oldest idle buffers to make room: recent sizes predict the next
    /// ones.
    pub(crate) fn give(&self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let Ok(unique) = data.try_into_mut() else {
            return;
        };
        let mut buf = Vec::from(unique);
        let cap = buf.capacity();
        if cap < MIN_POOLED || cap > self.max_bytes {
            return;
        }
        buf.clear();
        let mut freed = Vec::new();
        {
            let mut idle = self.lock();
            let mut drop_n = 0;
            while idle.bytes + cap > self.max_bytes {
                idle.bytes -= idle.bufs[drop_n].0.capacity();
                drop_n += 1;
            }
            freed.extend(idle.bufs.drain(..drop_n));
            idle.bytes += cap;
            idle.bufs.push((buf, Instant::now()));
        }
        // Freed outside the lock.
        drop(freed);
    }

    /// Frees the buffers that came back at least `age` ago.
    pub(crate) fn release_idle(&self, age: Duration) {
        let now = Instant::now();
        let freed: Vec<_> = {
            let mut idle = self.lock();
            let n = idle
                .bufs
                .iter()
                .take_while(|(_, at)| now.saturating_duration_since(*at) >= age)
                .count();
            let freed: Vec<_> = idle.bufs.drain(..n).collect();
            idle.bytes -= freed.iter().map(|(b, _)| b.capacity()).sum::<usize>();
            freed
        };
        drop(freed);
    }

    /// Frees every idle buffer.
    pub(crate) fn clear(&self) {
        self.release_idle(Duration::ZERO);
    }
}

/// Accessors for tests only, kept out of the production impl.
#[cfg(test)]
impl BufferPool {
    /// A pool that keeps nothing.
    pub(crate) fn disabled() -> Self {
        Self::new(0)
    }

    /// Capacity held by idle buffers.
    pub(crate) fn idle_bytes(&self) -> usize {
        self.lock().bytes
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
        let pool = BufferPool::new(1 << 20);
        let mut v = pool.take(100_000);
        v.extend_from_slice(&[b'x'; 90_000]);
        let ptr = v.as_ptr();
        pool.give(Bytes::from(v));
        assert!(pool.idle_bytes() >= 100_000);
        let again = pool.take(100_000);
        assert_eq!(again.as_ptr(), ptr, "the same allocation comes back");
        assert!(again.is_empty());
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn buffers_much_larger_or_smaller_than_asked_are_not_used() {
        let pool = BufferPool::new(1 << 20);
        pool.give(one_byte_in(100_000));
        assert_eq!(pool.take(20_000).capacity(), 20_000, "too large: a new one");
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
    fn small_buffers_are_left_to_the_allocator() {
        let pool = BufferPool::new(1 << 20);
        pool.give(one_byte_in(MIN_POOLED - 1));
        assert_eq!(pool.idle_bytes(), 0);
        pool.give(one_byte_in(MIN_POOLED));
        assert_eq!(pool.idle_bytes(), MIN_POOLED);
        assert_eq!(pool.take(MIN_POOLED).capacity(), MIN_POOLED);
    }

    #[test]
    fn exact_takes_only_buffers_big_enough() {
        let pool = BufferPool::new(1 << 20);
        pool.give(one_byte_in(20_000));
        assert_eq!(
            pool.take_exact(20_001).capacity(),
            20 << 10,
            "too small: a new one, rounded up to 4 KB"
        );
        assert_eq!(
            pool.take_exact(18_000).capacity(),
            20_000,
            "within 1/8: reused"
        );
        assert_eq!(
            pool.take_exact(300_001).capacity(),
            320 << 10,
            "large: rounded up to 32 KB"
        );
    }

    #[test]
    fn about_takes_buffers_a_little_short_or_long() {
        let pool = BufferPool::new(1 << 22);
        pool.give(one_byte_in(950_000));
        assert_eq!(
            pool.take_about(1_000_000).capacity(),
            950_000,
            "1/16 short: reused (grown if the body needs it)"
        );
        pool.give(one_byte_in(900_000));
        assert_eq!(
            pool.take_about(1_000_000).capacity(),
            1_000_000usize.div_ceil(32 << 10) * (32 << 10),
            "1/10 short: a new one"
        );
        pool.give(one_byte_in(1_120_000));
        assert_eq!(pool.take_about(1_000_000).capacity(), 1_120_000);
        pool.give(one_byte_in(1_130_000));
        assert!(
            pool.take_about(1_000_000).capacity() < 1_130_000,
            "over 1/8 long: a new one"
        );
    }

    #[test]
    fn shared_bytes_are_not_taken_and_the_pool_is_bounded() {
        let pool = BufferPool::new(100_000);
        let mut v = Vec::with_capacity(40_000);
        v.extend_from_slice(&[1; 40_000]);
        let b = Bytes::from(v);
        let clone = b.clone();
        pool.give(b);
        assert_eq!(pool.idle_bytes(), 0, "a clone is alive: not recycled");
        drop(clone);
        pool.give(one_byte_in(30_000));
        for _ in 0..4 {
            pool.give(one_byte_in(40_000));
        }
        assert_eq!(
            pool.idle_bytes(),
            80_000,
            "the oldest (the 30 KB one first) made room"
        );
        pool.take(30_000);
        assert_eq!(pool.idle_bytes(), 80_000, "no 30 KB buffer is left");
        pool.take(40_000);
        assert_eq!(pool.idle_bytes(), 40_000);
        pool.clear();
        assert_eq!(pool.idle_bytes(), 0);
        // A pool of size 0 keeps nothing.
        let off = BufferPool::disabled();
        off.give(one_byte_in(MIN_POOLED));
        assert_eq!(off.idle_bytes(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn only_buffers_idle_long_enough_are_released() {
        let pool = BufferPool::new(1 << 20);
        pool.give(one_byte_in(20_000));
        tokio::time::sleep(Duration::from_secs(3)).await;
        pool.give(one_byte_in(30_000));
        tokio::time::sleep(Duration::from_secs(2)).await;
        pool.release_idle(Duration::from_secs(5));
        assert_eq!(pool.idle_bytes(), 30_000, "the 5-second-old one went");
        pool.release_idle(Duration::from_secs(2));
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn the_row_size_follows_recent_pieces() {
        let r = RowSize::default();
        assert_eq!(r.get(), None);
        r.record(34_000, 100);
        assert_eq!(r.get(), Some(340));
        r.record(0, 0);
        assert_eq!(r.get(), Some(340), "an empty piece says nothing");
        for _ in 0..40 {
            r.record(1_000, 10);
        }
        let now = r.get().unwrap();
        assert!((100..=102).contains(&now), "{now}");
    }
}
