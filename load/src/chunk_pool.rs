//! Text chunks' buffers, reused (issue 83): a chunk's buffer ([`CHUNK_BYTES`]) is taken from
//! one process-wide pool by the lane's reader and goes back to it when the SDK is done with the
//! chunk's bytes ([`ChunkBuf`] is the owner of the `Bytes` the SDK is given, `load.rs`), never
//! back to the allocator.
//!
//! Why: a reader allocates its chunks on its own thread and the SDK frees them on another, so
//! with glibc every freed buffer went back to the reader thread's arena; the mmap threshold rose
//! to 1 MiB after the first such free and later chunks came from the sixteen readers' arenas,
//! each keeping its own peak. Sixteen lanes held about 64 MB more than the chunks alive at any
//! instant (`docs/log/performance/2026-11-27-load-many-channels-per-file.md`). From the pool,
//! the buffers ever allocated are the most that were alive at once, which the memory budget
//! bounds (a chunk is charged to the readers'
//! share while queued and to the SDK's budget once appended): no more is allocated, nothing is
//! left in an arena. A buffer of another size (a row larger than a chunk, a short chunk's exact
//! copy) is not pooled.

use std::sync::{Mutex, PoisonError};

/// The most NDJSON bytes of one append: well under one request (4 MB), so an append is never
/// split across requests (a split of string tokens is refused by the SDK, never guessed).
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// Idle buffers, each of capacity [`CHUNK_BYTES`] and empty.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Mutex<Vec<Vec<u8>>>,
}

/// The process's pool.
static POOL: Pool = Pool {
    idle: Mutex::new(Vec::new()),
};

impl Pool {
    fn take(&self) -> Option<Vec<u8>> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn give(&self, bytes: Vec<u8>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.push(bytes);
    }
}

/// A chunk's NDJSON bytes; a buffer of [`CHUNK_BYTES`] goes back to its pool when dropped.
#[derive(Debug)]
pub(crate) struct ChunkBuf {
    bytes: Vec<u8>,
    pool: &'static Pool,
}

impl Default for ChunkBuf {
    fn default() -> Self {
        Self {
            bytes: Vec::new(),
            pool: &POOL,
        }
    }
}

impl ChunkBuf {
    /// An empty buffer that holds `at_least` bytes without growing: one of [`CHUNK_BYTES`]
    /// from the process's pool when that is enough, else one of exactly `at_least`.
    pub(crate) fn with_capacity(at_least: usize) -> Self {
        Self::from_pool(&POOL, at_least)
    }

    fn from_pool(pool: &'static Pool, at_least: usize) -> Self {
        let bytes = if at_least > CHUNK_BYTES {
            Vec::with_capacity(at_least)
        } else {
            pool.take()
                .unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES))
        };
        Self { bytes, pool }
    }

    /// The bytes in a buffer of exactly their length (a short chunk: the SDK charges a chunk
    /// its length, so it is given no more); this buffer goes back to the pool when dropped.
    pub(crate) fn exact_copy(&self) -> Self {
        Self {
            bytes: self.bytes.clone(),
            pool: self.pool,
        }
    }

    /// Appends `bytes` (within the capacity taken: never grown by a caller that took enough).
    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Bytes written.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Bytes the buffer holds room for.
    pub(crate) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }
}

impl AsRef<[u8]> for ChunkBuf {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for ChunkBuf {
    fn drop(&mut self) {
        if self.bytes.capacity() != CHUNK_BYTES {
            return;
        }
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.clear();
        self.pool.give(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(pool: &Pool) -> usize {
        pool.idle.lock().unwrap().len()
    }

    #[test]
    fn buffers_freed_are_reused_and_only_chunk_sized_ones_are_kept() {
        let pool: &'static Pool = Box::leak(Box::default());
        let mut a = ChunkBuf::from_pool(pool, 10);
        a.extend_from_slice(b"{\"a\":1}\n");
        let a_ptr = a.as_ref().as_ptr();
        assert_eq!(a.capacity(), CHUNK_BYTES);
        let short = a.exact_copy();
        assert_eq!((short.len(), short.capacity()), (8, 8));
        drop(a);
        drop(short);
        assert_eq!(idle(pool), 1, "the chunk's buffer is idle, the copy freed");
        let b = ChunkBuf::from_pool(pool, CHUNK_BYTES);
        assert_eq!(b.as_ref().as_ptr(), a_ptr, "the same buffer, taken again");
        assert_eq!(b.len(), 0, "emptied when given back");
        assert_eq!(idle(pool), 0);
        let big = ChunkBuf::from_pool(pool, CHUNK_BYTES + 1);
        assert_eq!(big.capacity(), CHUNK_BYTES + 1);
        drop(big);
        drop(b);
        assert_eq!(idle(pool), 1, "a larger buffer is not kept");
    }
}
