//! The client's compressor pool: the limit on concurrent blocking compressions and the idle
//! codecs (zstd contexts), shared by all its channels (see the module docs of
//! [`compress`](super)).

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::codec::{large_window_log, window_log, Codec, INLINE_BELOW};
use super::frame::FrameContext;
use crate::sync::lock;
use crate::Compression;

/// The client's compression resources: the limit on concurrent blocking compressions and the
/// pools of idle codecs (zstd contexts), shared by all its channels.
#[derive(Debug)]
pub(crate) struct CompressorPool {
    /// One permit per compression allowed to run on the blocking pool at once.
    pub(super) jobs: Arc<Semaphore>,
    /// Idle codecs for large batches (a window the size of a batch: ≈4 MB each), reused by
    /// any channel; at most one per permit is ever made.
    idle_large: Mutex<Vec<Codec>>,
    /// Idle codecs for small batches, compressed inline (a window of [`INLINE_BELOW`]).
    idle_small: Mutex<Vec<Codec>>,
    /// At most this many idle codecs of each size are kept.
    max_idle: usize,
    /// Settings for codecs made anew: large and small.
    large: Codec,
    small: Codec,
    /// Codecs made so far, small and large (for tests and debugging: a thousand channels
    /// should make a handful).
    created: [std::sync::atomic::AtomicUsize; 2],
    /// Idle contexts of early frames ([`super::frame`]), at most `max_idle` (≈ 1 MB each,
    /// outside the budget, like the idle codecs). One in a batch is charged to the memory
    /// budget with the batch.
    idle_frames: Mutex<Vec<FrameContext>>,
    /// Whether early frames are made: batches are compressed with zstd at a level they are
    /// made for ([`super::frame::early_level`]).
    early_frames: bool,
}

impl CompressorPool {
    /// The pool of a client on a machine with `cores` cores: `compression` at zstd `level`,
    /// batches up to `batch_cap` bytes, a memory budget of `budget_bytes`.
    pub(crate) fn for_client(
        compression: Compression,
        level: i32,
        batch_cap: usize,
        budget_bytes: usize,
        cores: usize,
    ) -> Arc<Self> {
        let jobs = cores.max(2);
        let large = Codec::template(compression, level, batch_cap)
            .with_window_log(large_window_log(batch_cap, budget_bytes, jobs));
        let small = large
            .sibling()
            .with_window_log(window_log(INLINE_BELOW).min(large.window_log()));
        Arc::new(Self {
            jobs: Arc::new(Semaphore::new(jobs)),
            large,
            small,
            idle_large: Mutex::new(Vec::new()),
            idle_small: Mutex::new(Vec::new()),
            // One per permit (jobs ≥ cores: inline compressions on the worker threads fit too).
            max_idle: jobs,
            created: Default::default(),
            idle_frames: Mutex::new(Vec::new()),
            early_frames: compression == Compression::Zstd && super::frame::early_level(level),
        })
    }

    /// A context for an open batch's early frame: an idle one, or a new one; `None` when
    /// early frames are not made (another codec or level) or zstd cannot make one (the batch
    /// is then compressed when sealed, as before).
    pub(crate) fn take_frame(&self) -> Option<FrameContext> {
        if !self.early_frames {
            return None;
        }
        let idle = lock(&self.idle_frames).pop();
        idle.or_else(|| FrameContext::new(self.large.level()).ok())
    }

    /// Gives an early frame's context back: kept while fewer than `max_idle` are idle.
    pub(crate) fn give_frame(&self, cctx: FrameContext) {
        keep_idle(&self.idle_frames, cctx, self.max_idle);
    }

    fn idle(&self, large: bool) -> &Mutex<Vec<Codec>> {
        if large {
            &self.idle_large
        } else {
            &self.idle_small
        }
    }

    /// An idle codec for a large batch (blocking job) or a small one (inline), or a new one
    /// (its context is made by its first `encode`).
    pub(super) fn take(&self, large: bool) -> Codec {
        lock(self.idle(large)).pop().unwrap_or_else(|| {
            self.created[usize::from(large)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if large {
                self.large.sibling()
            } else {
                self.small.sibling()
            }
        })
    }

    /// Gives a codec back: kept for reuse while fewer than `max_idle` of its size are idle.
    pub(super) fn give(&self, codec: Codec, large: bool) {
        keep_idle(self.idle(large), codec, self.max_idle);
    }
}

/// Keeps `item` in `idle` while fewer than `max` are there; drops it (after the lock) otherwise.
fn keep_idle<T>(idle: &Mutex<Vec<T>>, item: T, max: usize) {
    let mut idle = lock(idle);
    if idle.len() < max {
        idle.push(item);
    }
}

/// Accessors for tests only, kept out of the production impl.
#[cfg(test)]
impl CompressorPool {
    /// Early frames' contexts idle now (tests).
    pub(crate) fn idle_frames(&self) -> usize {
        lock(&self.idle_frames).len()
    }

    /// Codecs idle now (tests).
    pub(super) fn idle_codecs(&self) -> usize {
        lock(&self.idle_large).len() + lock(&self.idle_small).len()
    }

    /// What the idle contexts of one size hold, in bytes (0: not made yet).
    pub(super) fn idle_context_sizes(&self, large: bool) -> Vec<usize> {
        lock(self.idle(large))
            .iter()
            .map(Codec::context_size)
            .collect()
    }

    /// Codecs of one size made so far.
    pub(super) fn created(&self, large: bool) -> usize {
        self.created[usize::from(large)].load(std::sync::atomic::Ordering::Relaxed)
    }
}
