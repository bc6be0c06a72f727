//! Compression of sealed batches, off the channel's task, with client-wide bounds.
//!
//! A batch big enough to matter is compressed on tokio's blocking pool, so the channel actor
//! stays free to take acks and send the next request the moment one arrives. A channel keeps
//! up to two compressions under way (so the next body is ready when the ack comes, and one
//! busy channel can use two cores: zstd at level 1 is the slowest stage, about 2 CPU-seconds
//! per GB against 0.5 for serialization).
//!
//! What compression holds is bounded per client, not per channel ([`Compressors`]): at most
//! `max(cores, 2)` compressions run on the blocking pool at once, client-wide, taken in the
//! order channels asked (a fair semaphore: no channel waits behind the others for more than
//! one round), and the zstd contexts (about 1 MB each at level 1) live in one client-wide pool
//! that keeps at most a few idle. A thousand busy channels therefore hold as many contexts as
//! the machine has cores, not a thousand, and an idle channel holds none.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::batch::SealedBatch;
use super::pool::{trimmed, BufferPool};
use super::ChannelSettings;
use crate::sync::lock;
use crate::transport::Compression;

/// Batches smaller than this are compressed inline on the actor's task (a hand-off to the
/// blocking pool costs more than compressing them).
const INLINE_BELOW: usize = 256 << 10;
/// At most this many batches of one channel are being compressed (or wait to be) at once.
const MAX_JOBS: usize = 2;

/// The client's compression resources: the limit on concurrent blocking compressions and the
/// pools of idle codecs (zstd contexts), shared by all its channels.
#[derive(Debug)]
pub(crate) struct Compressors {
    /// One permit per compression allowed to run on the blocking pool at once.
    jobs: Arc<Semaphore>,
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
}

/// Shared [`Compressors`].
pub(crate) type CompressPermits = Arc<Compressors>;

/// The compressors of a client on a machine with `cores` cores.
pub(crate) fn compressors(settings: &ChannelSettings, cores: usize) -> CompressPermits {
    let jobs = cores.max(2);
    let mut large = Codec::template(settings);
    large.window_log = large_window_log(settings.batch_cap(), settings.memory_budget_bytes, jobs);
    let small = Codec {
        window_log: window_log(INLINE_BELOW).min(large.window_log),
        ..large.sibling()
    };
    Arc::new(Compressors {
        jobs: Arc::new(Semaphore::new(jobs)),
        large,
        small,
        idle_large: Mutex::new(Vec::new()),
        idle_small: Mutex::new(Vec::new()),
        // One per permit (jobs ≥ cores: inline compressions on the worker threads fit too).
        max_idle: jobs,
        created: Default::default(),
    })
}

impl Compressors {
    fn idle(&self, large: bool) -> &Mutex<Vec<Codec>> {
        if large {
            &self.idle_large
        } else {
            &self.idle_small
        }
    }

    /// An idle codec for a large batch (blocking job) or a small one (inline), or a new one
    /// (its context is made by its first `encode`).
    fn take(&self, large: bool) -> Codec {
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
    fn give(&self, codec: Codec, large: bool) {
        let mut idle = lock(self.idle(large));
        if idle.len() < self.max_idle {
            idle.push(codec);
        }
    }
}

/// Compresses batch bodies, reusing its zstd context.
///
/// zstd runs in streaming mode over the batch's segments, straight into the body's own
/// buffer: no copy of the batch into one contiguous buffer and no `compress_bound`-sized
/// output buffer. The window holds a whole batch (4 MB by default, where level 1's own is
/// 512 KB): with a smaller one most blocks go down zstd's external-dictionary path, which a
/// profile put at 20 % of the client's CPU; the whole-batch window takes about 6 % off the
/// client's CPU per GB (measured side by side: README, "Performance"). It costs about 4 MB
/// per context; only the blocking jobs' contexts have it (one per permit, client-wide: see
/// [`Compressors`]), and never more than 1/8 of the memory budget in all
/// ([`large_window_log`]).
pub(crate) struct Codec {
    compression: Compression,
    level: i32,
    /// log2 of zstd's window: a whole batch (see [`window_log`]).
    window_log: u32,
    zstd: Option<zstd::zstd_safe::CCtx<'static>>,
    /// Compressed / uncompressed size of the last body, to size the next one's buffer.
    ratio: f64,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

/// Smallest growth of a body whose size was underestimated.
const GROW_MIN: usize = 64 << 10;

fn zstd_error(code: usize) -> std::io::Error {
    std::io::Error::other(format!("zstd: {}", zstd::zstd_safe::get_error_name(code)))
}

/// A zstd context at `level` with a window of 2^`window_log` bytes.
///
/// Literals (the bytes no match covers) are always Huffman-coded. zstd's negative ("fast")
/// levels otherwise store them raw, which on NDJSON costs 35–60 % more bytes; with them
/// coded, level -2 makes bodies 2–10 % larger than level 1 at 6–9 % less client CPU (README,
/// Performance). Levels 1 and up code literals anyway.
fn zstd_context(level: i32, window_log: u32) -> std::io::Result<zstd::zstd_safe::CCtx<'static>> {
    use zstd::zstd_safe::{CParameter, ParamSwitch};
    let mut cctx = zstd::zstd_safe::CCtx::try_create()
        .ok_or_else(|| std::io::Error::other("zstd: cannot allocate a context"))?;
    cctx.set_parameter(CParameter::CompressionLevel(level))
        .map_err(zstd_error)?;
    cctx.set_parameter(CParameter::LiteralCompressionMode(ParamSwitch::Enable))
        .map_err(zstd_error)?;
    cctx.set_parameter(CParameter::WindowLog(window_log))
        .map_err(zstd_error)?;
    Ok(cctx)
}

/// `data` as one zstd frame at `level`, with the parameters of the channels' contexts (see
/// [`zstd_context`]): for elastic channels, which compress one batch at a time.
pub(crate) fn zstd_bulk(data: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    let mut cctx = zstd_context(level, window_log(data.len()))?;
    cctx.set_pledged_src_size(Some(data.len() as u64))
        .map_err(zstd_error)?;
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
    cctx.compress2(&mut out, data).map_err(zstd_error)?;
    Ok(out)
}

/// The window of the large-batch contexts (one per permit): a whole batch, unless the
/// client's contexts would then hold more than 1/8 of the memory budget (many cores, a small
/// budget); never below zstd's own for level 1 (512 KB), which every context had before.
fn large_window_log(batch_cap: usize, budget: usize, jobs: usize) -> u32 {
    let whole = window_log(batch_cap);
    let share = budget / 8 / jobs.max(1);
    let fits = share.checked_ilog2().unwrap_or(0);
    whole.min(fits.max(19))
}

/// The smallest zstd window that holds a whole batch of `cap` bytes (zstd shrinks it further
/// for a frame whose stated size is smaller).
fn window_log(cap: usize) -> u32 {
    cap.next_power_of_two().trailing_zeros().clamp(10, 23)
}

impl Codec {
    /// A codec for `settings` with no context yet (the first `encode` makes one).
    pub(crate) fn template(settings: &ChannelSettings) -> Self {
        Self {
            compression: settings.compression,
            level: settings.zstd_level,
            window_log: window_log(settings.batch_cap()),
            zstd: None,
            ratio: 0.3,
        }
    }

    /// A codec with the same settings and no context yet (the first `encode` makes one).
    fn sibling(&self) -> Self {
        Self {
            compression: self.compression,
            level: self.level,
            window_log: self.window_log,
            zstd: None,
            ratio: self.ratio,
        }
    }

    /// Compresses the batch made of `segments` (`len` bytes in all) into a body of its own,
    /// in a buffer from `pool` when one that size is idle.
    pub(crate) fn encode(
        &mut self,
        segments: &[Bytes],
        len: usize,
        pool: &BufferPool,
    ) -> std::io::Result<Bytes> {
        match self.compression {
            Compression::Zstd => {
                let cctx = match &mut self.zstd {
                    Some(c) => c,
                    None => self.zstd.insert(zstd_context(self.level, self.window_log)?),
                };
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss
                )]
                let estimate = (len as f64 * self.ratio * 1.0625) as usize + 4096;
                let body = zstd_stream(cctx, segments, len, pool.take_about(estimate))?;
                #[allow(clippy::cast_precision_loss)]
                if len > 0 {
                    self.ratio = body.len() as f64 / len as f64;
                }
                Ok(body)
            }
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(len / 4 + 64),
                    flate2::Compression::fast(),
                );
                for s in segments {
                    enc.write_all(s)?;
                }
                Ok(Bytes::from(trimmed(enc.finish()?)))
            }
            Compression::None => {
                if segments.len() == 1 {
                    Ok(segments[0].clone())
                } else {
                    let mut body = pool.take_exact(len);
                    for s in segments {
                        body.extend_from_slice(s);
                    }
                    Ok(Bytes::from(body))
                }
            }
        }
    }
}

/// One zstd frame (stating its content size) of the concatenated `segments`, written into
/// `body` (grown when the estimate was short, trimmed when it was far too long).
fn zstd_stream(
    cctx: &mut zstd::zstd_safe::CCtx<'static>,
    segments: &[Bytes],
    len: usize,
    mut body: Vec<u8>,
) -> std::io::Result<Bytes> {
    use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective;
    use zstd::zstd_safe::{InBuffer, OutBuffer, ResetDirective};
    cctx.reset(ResetDirective::SessionOnly)
        .map_err(zstd_error)?;
    cctx.set_pledged_src_size(Some(len as u64))
        .map_err(zstd_error)?;
    let empty = [Bytes::new()];
    let segments = if segments.is_empty() {
        &empty[..]
    } else {
        segments
    };
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        let mut input = InBuffer::around(seg);
        let op = if i == last {
            ZSTD_EndDirective::ZSTD_e_end
        } else {
            ZSTD_EndDirective::ZSTD_e_continue
        };
        loop {
            if body.capacity() == body.len() {
                // The estimate was short: grow by a quarter (zstd fills whatever room it gets).
                body.reserve(GROW_MIN.max(body.capacity() / 4));
            }
            let pos = body.len();
            let mut out = OutBuffer::around_pos(&mut body, pos);
            let remaining = cctx
                .compress_stream2(&mut out, &mut input, op)
                .map_err(zstd_error)?;
            let done = if i == last {
                remaining == 0
            } else {
                input.pos() == seg.len()
            };
            if done {
                break;
            }
        }
    }
    Ok(Bytes::from(trimmed(body)))
}

struct Job {
    seq: u64,
    /// Waits for a client-wide permit, then compresses on the blocking pool.
    handle: JoinHandle<std::io::Result<Bytes>>,
}

/// The compression stage of one channel: its jobs and finished bodies, both in batch order.
pub(super) struct CompressStage {
    jobs: VecDeque<Job>,
    done: VecDeque<(u64, std::io::Result<Bytes>)>,
    compressors: CompressPermits,
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
    pub(super) fn new(compressors: CompressPermits) -> Self {
        Self {
            jobs: VecDeque::new(),
            done: VecDeque::new(),
            compressors,
        }
    }

    /// Whether a job is running (the actor then waits on [`next`](Self::next) too).
    pub(super) fn busy(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Whether a body for `seq` is being made or ready.
    fn has(&self, seq: u64) -> bool {
        self.jobs.iter().any(|j| j.seq == seq) || self.done.iter().any(|(s, _)| *s == seq)
    }

    /// Starts compressing the queued batches that have no job yet, in order: small ones at
    /// once, large ones on the blocking pool (at most [`MAX_JOBS`] per channel, each waiting
    /// for one of the client's permits).
    pub(super) fn start(&mut self, queue: &VecDeque<SealedBatch>, pool: &Arc<BufferPool>) {
        for b in queue {
            if self.has(b.seq) {
                continue;
            }
            if b.len < INLINE_BELOW {
                let mut codec = self.compressors.take(false);
                let body = codec.encode(&b.segments, b.len, pool);
                self.compressors.give(codec, false);
                self.done.push_back((b.seq, body));
                continue;
            }
            if self.jobs.len() >= MAX_JOBS {
                return;
            }
            let segments = b.segments.clone();
            let len = b.len;
            let pool = Arc::clone(pool);
            let compressors = Arc::clone(&self.compressors);
            let handle = tokio::spawn(async move {
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
            });
            self.jobs.push_back(Job { seq: b.seq, handle });
        }
    }

    /// Waits for the oldest running job and files its body.
    ///
    /// Cancel safety: dropping the future leaves the job running and the stage unchanged.
    pub(super) async fn next(&mut self) {
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
        let at = self
            .done
            .iter()
            .position(|(s, _)| *s > seq)
            .unwrap_or(self.done.len());
        self.done.insert(at, (seq, body));
    }

    /// The size of batch `seq`'s body if it is ready (and compressing did not fail).
    pub(super) fn ready_len(&self, seq: u64) -> Option<usize> {
        self.done
            .iter()
            .find(|(s, _)| *s == seq)
            .and_then(|(_, b)| b.as_ref().ok().map(Bytes::len))
    }

    /// The body of batch `seq` if it is ready (bodies of earlier batches, no longer wanted,
    /// are dropped).
    pub(super) fn take(&mut self, seq: u64) -> Option<std::io::Result<Bytes>> {
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
    pub(super) fn clear(&mut self) {
        self.jobs.clear();
        self.done.clear();
    }
}

/// Accessors for tests only, kept out of the production impl.
#[cfg(test)]
impl Compressors {
    /// Codecs idle now (tests).
    fn idle_codecs(&self) -> usize {
        lock(&self.idle_large).len() + lock(&self.idle_small).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::batch::{Batcher, Chunk};
    use crate::channel::budget::BudgetBytes;

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
        CompressStage::new(compressors(&settings, cores))
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

    #[test]
    fn large_windows_hold_a_batch_within_an_eighth_of_the_budget() {
        let mib = 1usize << 20;
        assert_eq!(
            large_window_log(3_984_119, 256 * mib, 2),
            22,
            "a whole 4 MB batch"
        );
        assert_eq!(
            large_window_log(3_984_119, 256 * mib, 32),
            20,
            "32 permits: 1 MiB each"
        );
        assert_eq!(
            large_window_log(3_984_119, 64 * mib, 64),
            19,
            "never below level 1's own"
        );
        assert_eq!(
            large_window_log(100_000, 256 * mib, 2),
            17,
            "a small batch, a small window"
        );
    }

    /// `channels` stages of one client (2 cores, zstd) compressing `queue` each, to the end.
    async fn compress_on_channels(
        channels: usize,
        queue: &VecDeque<SealedBatch>,
    ) -> (CompressPermits, Vec<CompressStage>) {
        let settings = ChannelSettings {
            compression: Compression::Zstd,
            ..ChannelSettings::default()
        };
        let shared = compressors(&settings, 2);
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
        let held = |idle: &Mutex<Vec<Codec>>| -> Vec<usize> {
            lock(idle)
                .iter()
                .map(|c| c.zstd.as_ref().map_or(0, zstd::zstd_safe::CCtx::sizeof))
                .collect()
        };
        let large_held = held(&shared.idle_large);
        let small_held = held(&shared.idle_small);
        let made_large = shared.created[1].load(std::sync::atomic::Ordering::Relaxed);
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
        let made = shared.created[1].load(std::sync::atomic::Ordering::Relaxed);
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

    #[test]
    fn streamed_frames_round_trip_state_their_size_and_grow_when_underestimated() {
        // A 128 KB window, so the longer inputs wrap it (zstd's external-dictionary path).
        let mut cctx = zstd_context(1, 19).unwrap();
        cctx.set_parameter(zstd::zstd_safe::CParameter::WindowLog(17))
            .unwrap();
        // Compressible rows in many segments, and incompressible noise.
        let rows: Vec<Bytes> = (0..50)
            .map(|i| {
                Bytes::from(format!(
                    "{{\"id\":{i},\"pad\":\"{}\"}}\n",
                    "ab".repeat(2000)
                ))
            })
            .collect();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for segments in [rows, vec![Bytes::from(noise)], vec![]] {
            let len: usize = segments.iter().map(Bytes::len).sum();
            // Start from an empty buffer: the body has to grow.
            let body = zstd_stream(&mut cctx, &segments, len, Vec::new()).unwrap();
            assert_eq!(
                zstd::zstd_safe::get_frame_content_size(&body).unwrap(),
                Some(len as u64)
            );
            assert_eq!(unzstd(&body), segments.concat());
        }
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

    /// NDJSON rows with the variety of real ones (names, timestamps, prices), deterministic.
    fn varied_rows(n: usize) -> Vec<u8> {
        let names = [
            "Ada", "Grace", "Linus", "Barbara", "Edsger", "Frances", "Ken", "Radia",
        ];
        let resorts = ["Vail", "Zermatt", "Niseko", "Whistler", "Chamonix"];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut out = Vec::new();
        for i in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            #[allow(clippy::cast_possible_truncation)]
            let (a, b) = ((x % 8) as usize, ((x >> 8) % 5) as usize);
            out.extend_from_slice(
                format!(
                    "{{\"txid\":\"{x:016x}\",\"name\":\"{} {}\",\"resort\":\"{}\",\
                     \"purchase_time\":\"2026-11-{:02}T{:02}:{:02}:{:02}Z\",\"price_usd\":{}.{:02},\
                     \"days\":{},\"row\":{i}}}\n",
                    names[a],
                    names[(a + b) % 8],
                    resorts[b],
                    1 + x % 28,
                    (x >> 3) % 24,
                    (x >> 5) % 60,
                    (x >> 7) % 60,
                    50 + (x >> 11) % 400,
                    (x >> 13) % 100,
                    1 + (x >> 17) % 7,
                )
                .as_bytes(),
            );
        }
        out
    }

    #[test]
    fn fast_levels_code_literals_and_stay_near_level_one() {
        let data = varied_rows(20_000);
        let settings = ChannelSettings {
            compression: Compression::Zstd,
            zstd_level: -1,
            ..ChannelSettings::default()
        };
        let mut codec = Codec::template(&settings);
        let ours = codec
            .encode(&[Bytes::from(data.clone())], data.len(), &pool())
            .unwrap();
        assert_eq!(unzstd(&ours), data);
        let elastic = zstd_bulk(&data, settings.zstd_level).unwrap();
        assert_eq!(zstd::stream::decode_all(&elastic[..]).unwrap(), data);
        let raw_literals = zstd::bulk::compress(&data, settings.zstd_level).unwrap();
        let level_one = zstd::bulk::compress(&data, 1).unwrap();
        for (who, len) in [("channel", ours.len()), ("elastic", elastic.len())] {
            assert!(
                len * 5 < raw_literals.len() * 4,
                "{who}: {len} bytes, zstd {} without coded literals {}",
                settings.zstd_level,
                raw_literals.len()
            );
            assert!(
                len * 100 <= level_one.len() * 106,
                "{who}: {len} bytes, level 1 {}",
                level_one.len()
            );
        }
    }
}
