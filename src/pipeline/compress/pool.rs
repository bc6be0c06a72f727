//! The client's compressor pool: the limit on concurrent blocking compressions and the idle
//! codecs (zstd contexts), shared by all its channels (see the module docs of
//! [`compress`](super)).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::codec::{large_window_log, window_log, Codec, INLINE_BELOW};
use super::frame::FrameContext;
use crate::pipeline::budget::BudgetBytes;
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
    created: [AtomicUsize; 2],
    /// Early frames' contexts ([`super::frame`]): the idle ones and the count of those in
    /// use (see [`Frames`]).
    frames: Mutex<Frames>,
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
            frames: Mutex::default(),
            early_frames: compression == Compression::Zstd && super::frame::early_level(level),
        })
    }

    /// A context for an open batch's early frame, with what the budget holds for it: an idle
    /// one (charged to the budget if it was kept so), or a new one (uncharged); `None` when
    /// early frames are not made (another codec or level) or zstd cannot make one (the batch
    /// is then compressed when sealed, as before).
    pub(crate) fn take_frame(&self) -> Option<(FrameContext, BudgetBytes)> {
        if !self.early_frames {
            return None;
        }
        let idle = {
            let mut frames = lock(&self.frames);
            let idle = frames.idle.pop();
            if idle.is_some() {
                frames.taken();
            }
            idle
        };
        if idle.is_some() {
            return idle;
        }
        // Made outside the lock; counted once made.
        let cctx = FrameContext::new(self.large.level()).ok()?;
        lock(&self.frames).taken();
        Some((cctx, BudgetBytes::none()))
    }

    /// Gives an early frame's context back with `charge`, what the budget holds for it while
    /// it is idle (see [`Frames`]): kept when charged, unless the contexts would then
    /// outnumber the most in use at once since the last [`trim_frames`](Self::trim_frames);
    /// kept uncharged only while fewer than `max_idle` are idle; freed otherwise.
    pub(crate) fn give_frame(&self, cctx: FrameContext, charge: BudgetBytes) {
        let mut frames = lock(&self.frames);
        frames.out = frames.out.saturating_sub(1);
        let room = if charge.len() > 0 {
            frames.room(self.max_idle)
        } else {
            self.max_idle
        };
        if frames.idle.len() < room {
            frames.idle.push((cctx, charge));
        } else {
            drop(frames);
            drop((cctx, charge));
        }
    }

    /// An early frame's context taken and not given back was dropped (its frame could not
    /// start).
    pub(crate) fn frame_lost(&self) {
        let mut frames = lock(&self.frames);
        frames.out = frames.out.saturating_sub(1);
    }

    /// Frees the idle early-frame contexts beyond what the busiest moment since the last
    /// call had in use, and starts counting anew; with `quiet` (no channel open), all but
    /// `max_idle`. The channels' poller calls it every `idle_poll_interval`, so the contexts
    /// of channels that went quiet are freed one or two intervals later.
    pub(crate) fn trim_frames(&self, quiet: bool) {
        if quiet {
            self.release_frames();
            return;
        }
        let freed = {
            let mut frames = lock(&self.frames);
            let keep = frames.room(self.max_idle);
            frames.peak = frames.out;
            let kept = frames.idle.len().min(keep);
            frames.idle.split_off(kept)
        };
        drop(freed);
    }

    /// Gives back the budget idle early-frame contexts hold (a producer would wait for room,
    /// or no channel is open): the contexts are freed but `max_idle`, which stay uncharged.
    pub(crate) fn release_frames(&self) {
        let freed = {
            let mut frames = lock(&self.frames);
            let kept = frames.idle.len().min(self.max_idle);
            let freed = frames.idle.split_off(kept);
            let charges: Vec<BudgetBytes> = frames
                .idle
                .iter_mut()
                .map(|(_, charge)| std::mem::replace(charge, BudgetBytes::none()))
                .collect();
            (freed, charges)
        };
        drop(freed);
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
            self.created[usize::from(large)].fetch_add(1, Ordering::Relaxed);
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

/// Early frames' contexts: idle, and counted in use.
///
/// A channel gives its context back when it cuts a batch (its lag is up) and takes one when
/// its next batch has grown to a frame, a moment later while it is busy; channels opened
/// together cut together. With a fixed few kept idle, 96 busy channels freed and made about
/// 94 contexts a lag, each new one fresh memory for the kernel to fault in and zero (the
/// sink at 60,000 messages a second touched 250 MB of fresh memory every 10 s). So an idle
/// context is kept while the budget can hold it (≈ 1 MB, charged to the budget as it was in
/// its batch, and only while a quarter of the budget stays free: `batch.rs` decides), up to
/// the most in use at once since the last trim. Trimmed every `idle_poll_interval`, they
/// follow the channels down when those go quiet; a producer that would wait for room, or
/// be refused, frees them first ([`CompressorPool::release_frames`], through the budget's
/// reclaim hook), as does the poller when no channel is open. Beside those, `max_idle` are
/// kept uncharged, as before.
#[derive(Debug, Default)]
struct Frames {
    /// Idle contexts and what the budget holds for each (nothing for the uncharged few).
    idle: Vec<(FrameContext, BudgetBytes)>,
    /// Taken and not given back: in the open batches.
    out: usize,
    /// The most in use at once since the last trim.
    peak: usize,
}

impl Frames {
    fn taken(&mut self) {
        self.out += 1;
        self.peak = self.peak.max(self.out);
    }

    /// How many may be idle: as many as were in use at the busiest moment since the last
    /// trim and are not now, and at least `max_idle`.
    fn room(&self, max_idle: usize) -> usize {
        self.peak.saturating_sub(self.out).max(max_idle)
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
        lock(&self.frames).idle.len()
    }

    /// What the budget holds for idle early-frame contexts (tests).
    pub(crate) fn idle_frame_charges(&self) -> usize {
        lock(&self.frames).idle.iter().map(|(_, c)| c.len()).sum()
    }

    /// Early frames' contexts in use now (tests).
    pub(crate) fn frames_in_use(&self) -> usize {
        lock(&self.frames).out
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
        self.created[usize::from(large)].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::budget::Budget;

    fn pool() -> Arc<CompressorPool> {
        CompressorPool::for_client(Compression::Zstd, 1, 4 << 20, 256 << 20, 2)
    }

    fn take(pool: &CompressorPool) -> FrameContext {
        pool.take_frame().unwrap().0
    }

    /// Busy channels that cut their batches together and start the next ones a moment later
    /// reuse the contexts they gave back charged (none is made anew); once they go quiet, two
    /// trims free the idle ones down to the few a quiet client keeps; contexts given back
    /// uncharged are kept only up to those few.
    #[test]
    fn idle_frame_contexts_follow_the_busiest_moment() {
        let pool = pool();
        let budget = Budget::new(256 << 20);
        let charge = || budget.try_spare(1 << 20).unwrap();
        let mut open: Vec<FrameContext> = (0..40).map(|_| take(&pool)).collect();
        let made = |pool: &CompressorPool| pool.frames_in_use() + pool.idle_frames();
        for round in 0..3 {
            // Every channel's lag is up at once, then each starts its next frame.
            for cctx in open.drain(..) {
                pool.give_frame(cctx, charge());
            }
            assert_eq!(pool.idle_frames(), 40, "round {round}: all kept");
            assert_eq!(budget.used(), 40 << 20, "round {round}: each charged");
            open = (0..40)
                .map(|_| {
                    let (cctx, held) = pool.take_frame().unwrap();
                    assert_eq!(held.len(), 1 << 20, "its charge comes with it");
                    cctx
                })
                .collect();
            assert_eq!(made(&pool), 40, "round {round}: none made anew");
            assert_eq!(budget.used(), 0);
            pool.trim_frames(false);
            assert_eq!(
                made(&pool),
                40,
                "round {round}: a trim keeps what is in use"
            );
        }
        // Half go quiet: kept until a trim has seen the busiest moment pass.
        for cctx in open.drain(20..) {
            pool.give_frame(cctx, charge());
        }
        assert_eq!(pool.idle_frames(), 20);
        pool.trim_frames(false);
        assert_eq!(pool.idle_frames(), 20, "the last interval had 40 in use");
        pool.trim_frames(false);
        assert_eq!(
            pool.idle_frames(),
            pool.max_idle,
            "this one had 20 in use, 20 idle"
        );
        assert_eq!(
            budget.used(),
            pool.max_idle << 20,
            "the freed ones' charges went back"
        );
        assert_eq!(pool.frames_in_use(), 20);
        // The rest close uncharged (the budget was short): only `max_idle` are idle.
        for cctx in open.drain(..) {
            pool.give_frame(cctx, BudgetBytes::none());
        }
        assert_eq!(pool.idle_frames(), pool.max_idle);
        pool.trim_frames(true);
        assert_eq!(pool.idle_frames(), pool.max_idle);
        assert_eq!(pool.frames_in_use(), 0);
    }

    /// A producer waiting for room takes back what idle contexts hold: all but `max_idle`
    /// are freed, and those stay uncharged.
    #[test]
    fn releasing_frames_gives_their_budget_back() {
        let pool = pool();
        let budget = Budget::new(64 << 20);
        let open: Vec<FrameContext> = (0..10).map(|_| take(&pool)).collect();
        for cctx in open {
            pool.give_frame(cctx, budget.try_spare(1 << 20).unwrap());
        }
        assert_eq!(budget.used(), 10 << 20);
        pool.release_frames();
        assert_eq!(budget.used(), 0);
        assert_eq!(pool.idle_frames(), pool.max_idle);
        let (_, held) = pool.take_frame().unwrap();
        assert_eq!(held.len(), 0, "kept uncharged");
    }

    /// A producer that would wait, or be refused, first takes back what idle contexts hold
    /// (through the budget's reclaim hook, as the client sets it).
    #[tokio::test]
    async fn a_producer_short_of_room_takes_back_what_idle_contexts_hold() {
        for waits in [true, false] {
            let pool = pool();
            let budget = Budget::new(4 << 20);
            let hook = Arc::clone(&pool);
            budget.set_reclaim(move || hook.release_frames());
            let open: Vec<FrameContext> = (0..3).map(|_| take(&pool)).collect();
            for cctx in open {
                pool.give_frame(cctx, budget.try_spare(1 << 20).unwrap());
            }
            assert_eq!(budget.used(), 3 << 20);
            let got = if waits {
                let (got, _) = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    budget.acquire(2 << 20),
                )
                .await
                .expect("not left waiting")
                .unwrap();
                got
            } else {
                budget.try_acquire(2 << 20).unwrap()
            };
            assert_eq!(got.len(), 2 << 20);
            assert_eq!(pool.idle_frame_charges(), 0, "waits {waits}");
            assert_eq!(budget.used(), 2 << 20);
        }
    }

    /// A context lost to a frame that could not start is no longer counted as in use.
    #[test]
    fn a_lost_frame_context_is_not_counted_in_use() {
        let pool = pool();
        let cctx = take(&pool);
        drop(cctx);
        pool.frame_lost();
        assert_eq!(pool.frames_in_use(), 0);
        pool.frame_lost();
        assert_eq!(pool.frames_in_use(), 0, "never below zero");
    }
}
