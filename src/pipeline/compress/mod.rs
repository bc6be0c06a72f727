//! Compression of sealed batches, off the channel's task, with client-wide bounds.
//!
//! A batch big enough to matter is compressed on tokio's blocking pool, so the channel actor
//! stays free to take acks and send the next request the moment one arrives. A channel keeps
//! up to two compressions under way (so the next body is ready when the ack comes, and one
//! busy channel can use two cores: zstd at level 1 is the slowest stage, about 2 CPU-seconds
//! per GB against 0.5 for serialization).
//!
//! What compression holds is bounded per client, not per channel ([`CompressorPool`]): at most
//! `max(cores, 2)` compressions run on the blocking pool at once, client-wide, taken in the
//! order channels asked (a fair semaphore: no channel waits behind the others for more than
//! one round), and the zstd contexts (about 1 MB each at level 1) live in one client-wide pool
//! that keeps at most a few idle. A thousand busy channels therefore hold as many contexts as
//! the machine has cores, not a thousand, and an idle channel holds none. (Early frames'
//! contexts, one in each busy channel's open batch and charged to the budget with it, stay
//! charged when they go idle, as long as the budget has room, for the channel that takes one
//! a moment later; see [`CompressorPool`].)
//!
//! A named channel's open batch that grows past [`EARLY_FROM`](frame::EARLY_FROM) is
//! compressed as it fills instead ([`frame`]), on the channel's task, a chunk at a time: its
//! rows are read once while they are fresh, their buffers go back to the pool at once, and the
//! batch holds its compressed bytes and a context charged to the memory budget. Its body is
//! ready when it is sealed. A batch holding a backlog for `max_client_lag` thus holds about a
//! fifth of the memory; the compression stage below only takes the batches that were not.
//!
//! The layers: the tools ([`codec`], [`frame`], [`pool`]: codecs, early frames, the client's
//! pool of both, and the sizes they share) know no batch; `batch` uses them to compress an
//! open batch as it fills; this module, the stage, takes the batches `batch` sealed. So
//! `batch` imports from the tools, never from here, and the arrows go one way.

pub(crate) mod codec;
pub(crate) mod frame;
pub(crate) mod pool;

pub(crate) use pool::CompressorPool;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::batch::SealedBatch;
use super::pool::BufferPool;
use codec::INLINE_BELOW;

/// At most this many batches of one channel are being compressed (or wait to be) at once.
const MAX_JOBS: usize = 2;

struct Job {
    seq: u64,
    /// Waits for a client-wide permit, then compresses on the blocking pool.
    handle: JoinHandle<std::io::Result<Bytes>>,
}

/// Compresses the batch made of `segments` (`len` bytes) with the client's `compressors`:
/// inline when it is small, else on the blocking pool under one of the client's permits. The
/// one compression path of named channels (through [`CompressStage`]) and elastic channels.
///
/// # Errors
/// The codec's, or the blocking task's failure.
///
/// # Cancellation
/// Dropping the future of a large batch leaves its blocking job to finish on its own.
pub(crate) async fn compress(
    compressors: &Arc<CompressorPool>,
    segments: Vec<Bytes>,
    len: usize,
    pool: &Arc<BufferPool>,
) -> std::io::Result<Bytes> {
    if len < INLINE_BELOW {
        return encode_inline(compressors, &segments, len, pool);
    }
    encode_blocking(Arc::clone(compressors), segments, len, Arc::clone(pool)).await
}

/// Compresses a small batch on the caller's task, with one of the client's small contexts.
fn encode_inline(
    compressors: &CompressorPool,
    segments: &[Bytes],
    len: usize,
    pool: &BufferPool,
) -> std::io::Result<Bytes> {
    let mut codec = compressors.take(false);
    let body = codec.encode(segments, len, pool);
    compressors.give(codec, false);
    body
}

/// Compresses a large batch on the blocking pool, once one of the client's permits is free.
async fn encode_blocking(
    compressors: Arc<CompressorPool>,
    segments: Vec<Bytes>,
    len: usize,
    pool: Arc<BufferPool>,
) -> std::io::Result<Bytes> {
    let permit = Arc::clone(&compressors.jobs)
        .acquire_owned()
        .await
        .map_err(|_| std::io::Error::other("compression permits closed"))?;
    let work = tokio::task::spawn_blocking(move || {
        let mut codec = compressors.take(true);
        let body = codec.encode(&segments, len, &pool);
        compressors.give(codec, true);
        drop(permit);
        body
    });
    work.await
        .map_err(|e| std::io::Error::other(format!("compression task failed: {e}")))?
}

/// The compression stage of one channel: its jobs and finished bodies, both in batch order.
pub(crate) struct CompressStage {
    jobs: VecDeque<Job>,
    done: VecDeque<(u64, std::io::Result<Bytes>)>,
    compressors: Arc<CompressorPool>,
}

impl std::fmt::Debug for CompressStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompressStage")
            .field("jobs", &self.jobs.len())
            .field("done", &self.done.len())
            .finish_non_exhaustive()
    }
}

impl CompressStage {
    /// A stage using the client's `compressors`.
    pub(crate) fn new(compressors: Arc<CompressorPool>) -> Self {
        Self {
            jobs: VecDeque::new(),
            done: VecDeque::new(),
            compressors,
        }
    }

    /// Whether a job is running (the actor then waits on [`next`](Self::next) too).
    pub(crate) fn busy(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Whether a body for `seq` is being made or ready.
    fn has(&self, seq: u64) -> bool {
        self.jobs.iter().any(|j| j.seq == seq) || self.done.iter().any(|(s, _)| *s == seq)
    }

    /// Starts compressing the queued batches that have no job yet, in order: small ones at
    /// once, large ones on the blocking pool (at most [`MAX_JOBS`] per channel, each waiting
    /// for one of the client's permits).
    pub(crate) fn start(&mut self, queue: &VecDeque<SealedBatch>, pool: &Arc<BufferPool>) {
        for b in queue {
            if self.has(b.seq) {
                continue;
            }
            if b.len < INLINE_BELOW {
                let body = encode_inline(&self.compressors, &b.segments, b.len, pool);
                self.done.push_back((b.seq, body));
                continue;
            }
            if self.jobs.len() >= MAX_JOBS {
                return;
            }
            let handle = tokio::spawn(encode_blocking(
                Arc::clone(&self.compressors),
                b.segments.clone(),
                b.len,
                Arc::clone(pool),
            ));
            self.jobs.push_back(Job { seq: b.seq, handle });
        }
    }

    /// Files the body of batch `seq`, made as the batch filled (`frame`).
    pub(crate) fn file(&mut self, seq: u64, body: std::io::Result<Bytes>) {
        let at = self
            .done
            .iter()
            .position(|(s, _)| *s > seq)
            .unwrap_or(self.done.len());
        self.done.insert(at, (seq, body));
    }

    /// Waits for the oldest running job and files its body.
    ///
    /// Cancel safety: dropping the future leaves the job running and the stage unchanged.
    pub(crate) async fn next(&mut self) {
        let Some(job) = self.jobs.front_mut() else {
            return std::future::pending().await;
        };
        let seq = job.seq;
        let joined = (&mut job.handle).await;
        self.jobs.pop_front();
        let body = joined.unwrap_or_else(|e| {
            Err(std::io::Error::other(format!(
                "compression task failed: {e}"
            )))
        });
        self.file(seq, body);
    }

    /// The size of batch `seq`'s body if it is ready (and compressing did not fail).
    pub(crate) fn ready_len(&self, seq: u64) -> Option<usize> {
        self.done
            .iter()
            .find(|(s, _)| *s == seq)
            .and_then(|(_, b)| b.as_ref().ok().map(Bytes::len))
    }

    /// The body of batch `seq` if it is ready (bodies of earlier batches, no longer wanted,
    /// are dropped).
    pub(crate) fn take(&mut self, seq: u64) -> Option<std::io::Result<Bytes>> {
        while self.done.front().is_some_and(|(s, _)| *s < seq) {
            self.done.pop_front();
        }
        if self.done.front().is_some_and(|(s, _)| *s == seq) {
            return self.done.pop_front().map(|(_, b)| b);
        }
        None
    }

    /// Forgets every job and body (the batches were discarded). Running jobs finish on
    /// their own; their results are dropped.
    pub(crate) fn clear(&mut self) {
        self.jobs.clear();
        self.done.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::batch::{Batcher, Chunk};
    use crate::pipeline::budget::BudgetBytes;
    use crate::settings::ChannelSettings;
    use crate::Compression;

    /// Sealed batches of `sizes` bytes each (rows of 100 bytes), numbered from 1.
    fn batches(sizes: &[usize]) -> VecDeque<SealedBatch> {
        let mut out = VecDeque::new();
        let mut row = 0u64;
        for &size in sizes {
            let mut b = Batcher::new(size);
            let mut data = Vec::with_capacity(size);
            while data.len() + 100 <= size {
                data.extend_from_slice(
                    format!("{{\"id\":{row:>20},\"pad\":\"{}\"}}\n", "x".repeat(62)).as_bytes(),
                );
                row += 1;
            }
            let len = data.len();
            b.push(
                Chunk {
                    rows: len / 100,
                    data: Bytes::from(data),
                    start: None,
                    end: None,
                    budget: BudgetBytes::detached(len),
                    continues: false,
                },
                tokio::time::Instant::now(),
                0,
                &mut out,
            );
            out.extend(b.seal());
        }
        for (i, b) in out.iter_mut().enumerate() {
            b.seq = i as u64 + 1;
        }
        out
    }

    fn stage(cores: usize) -> CompressStage {
        let settings = ChannelSettings {
            compression: Compression::Zstd,
            ..ChannelSettings::default()
        };
        CompressStage::new(settings.compressors(cores))
    }

    fn pool() -> Arc<BufferPool> {
        Arc::new(BufferPool::new(1 << 24))
    }

    fn unzstd(b: &Bytes) -> Vec<u8> {
        zstd::stream::decode_all(&b[..]).unwrap()
    }

    #[tokio::test]
    async fn large_batches_compress_two_at_a_time_and_come_out_in_order() {
        let queue = batches(&[1 << 20, 1 << 20, 1 << 20]);
        let pool = pool();
        let mut s = stage(2);
        s.start(&queue, &pool);
        assert_eq!(s.jobs.len(), 2, "two jobs per channel at most");
        assert!(s.take(1).is_none(), "not ready before the job finished");
        while s.busy() {
            s.next().await;
            s.start(&queue, &pool);
        }
        assert!(
            (1..=2).contains(&s.compressors.idle_codecs()),
            "the jobs' contexts went back to the client's pool"
        );
        for b in &queue {
            let body = s.take(b.seq).expect("ready").unwrap();
            assert_eq!(unzstd(&body), b.segments.concat(), "batch {}", b.seq);
        }
        assert!(s.take(4).is_none());
    }

    /// `channels` stages of one client (2 cores, zstd) compressing `queue` each, to the end.
    async fn compress_on_channels(
        channels: usize,
        queue: &VecDeque<SealedBatch>,
    ) -> (Arc<CompressorPool>, Vec<CompressStage>) {
        let settings = ChannelSettings {
            compression: Compression::Zstd,
            ..ChannelSettings::default()
        };
        let shared = settings.compressors(2);
        let pool = pool();
        let mut stages: Vec<CompressStage> = (0..channels)
            .map(|_| CompressStage::new(Arc::clone(&shared)))
            .collect();
        for s in &mut stages {
            s.start(queue, &pool);
        }
        for s in &mut stages {
            while s.busy() {
                s.next().await;
                s.start(queue, &pool);
            }
        }
        (shared, stages)
    }

    /// What the contexts hold, client-wide: a batch-sized window for the large batches (so
    /// zstd stays off its external-dictionary path) but only in as many contexts as permits;
    /// the inline ones keep a small window even after a large batch passed through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_blocking_jobs_hold_batch_sized_windows() {
        let queue = batches(&[100 << 10, 3 << 20, 100 << 10, 3 << 20, 3 << 20]);
        let (shared, _) = compress_on_channels(8, &queue).await;
        let large_held = shared.idle_context_sizes(true);
        let small_held = shared.idle_context_sizes(false);
        let made_large = shared.created(true);
        assert!(
            !large_held.is_empty() && made_large <= 2,
            "{made_large} large contexts made for 2 permits"
        );
        assert!(
            large_held.iter().all(|&b| b > 3 << 20),
            "{large_held:?}: a large context holds a whole batch"
        );
        assert!(
            !small_held.is_empty() && small_held.iter().all(|&b| b < 1 << 20),
            "{small_held:?}: inline contexts stay small"
        );
    }

    /// Fifty busy channels share the client's contexts: no more are made than compressions
    /// may run at once, and no channel's batches are left behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_channels_share_a_few_contexts() {
        let queue = batches(&[300 << 10, 300 << 10]);
        let (shared, mut stages) = compress_on_channels(50, &queue).await;
        for s in &mut stages {
            for b in &queue {
                assert_eq!(
                    unzstd(&s.take(b.seq).unwrap().unwrap()),
                    b.segments.concat()
                );
            }
        }
        let made = shared.created(true);
        assert!(made <= 2, "{made} contexts for 2 permits");
    }

    #[tokio::test]
    async fn small_batches_compress_inline() {
        let pool = pool();
        let small = batches(&[10_000, 10_000]);
        let mut t = stage(2);
        t.start(&small, &pool);
        assert!(!t.busy(), "no job for small batches");
        assert_eq!(
            unzstd(&t.take(2).unwrap().unwrap()),
            small[1].segments.concat()
        );
        // Asking for a later batch drops bodies no longer wanted.
        assert!(t.take(1).is_none());
    }

    #[tokio::test]
    async fn cleared_jobs_are_forgotten() {
        let queue = batches(&[1 << 20]);
        let pool = pool();
        let mut s = stage(2);
        s.start(&queue, &pool);
        s.clear();
        assert!(!s.busy());
        assert!(s.take(1).is_none());
        // A batch queued again (after a reopen, under a new number) gets a new job.
        let mut again = batches(&[1 << 20]);
        again[0].seq = 7;
        s.start(&again, &pool);
        s.next().await;
        assert!(s.take(7).unwrap().is_ok());
    }
}
