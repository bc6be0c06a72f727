//! Cutting appended NDJSON into append requests: no I/O, no clocks of its own. A named
//! channel's open batch is compressed as it fills once it is large enough
//! ([`Batcher::compress_early`], `compress::frame`); the cut is the same either way. For
//! that it uses the compression tools (`compress::frame`, `compress::pool`), never the
//! compression stage (`compress` itself), which takes the batches cut here.
//!
//! The rule that makes offset tokens exact across restarts (see `docs/GUARANTEES.md`): **a
//! request carries exactly the rows its tokens name.** Its start token is its first row's and
//! its end token its last row's, so when the server commits it, the committed token says
//! precisely which rows are in the table. Hence (property-tested below):
//! * a batch never holds more than `cap` uncompressed bytes;
//! * a chunk (an append, or one piece of an append larger than a request, which carries its
//!   own exact tokens) is never split: when it does not fit in the room left, the open batch
//!   is sealed first and the chunk starts the next one;
//! * a batch holds either only chunks with an end token or only chunks without one, so the
//!   rows after a batch's end token are never in it;
//! * a batch's end token is its last chunk's; its start token is its first chunk's, kept when
//!   the batch holds several chunks only if `start..=end` names one token per row
//!   ([`OffsetToken::merged_start`], the one token rule): appends whose spans do not meet
//!   share a request that names its end token alone.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::budget::{Budget, BudgetBytes};
use super::compress::frame::{OpenFrame, CONTEXT_CHARGE, EARLY_FROM, FEED_INLINE_MAX};
use super::compress::pool::CompressorPool;
use super::pool::BufferPool;
use crate::OffsetToken;

/// Serialized rows from one append call (or one piece of a large one): NDJSON, every row
/// terminated by `\n`, at most one batch long.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) data: Bytes,
    pub(crate) rows: usize,
    pub(crate) start: Option<OffsetToken>,
    pub(crate) end: Option<OffsetToken>,
    pub(crate) budget: BudgetBytes,
    /// A leading piece of an append split without exact piece tokens (a channel opened
    /// with `at_least_once_splits`): the append continues in a later chunk, which has the
    /// end token.
    pub(crate) continues: bool,
}

/// A batch cut from the buffer, ready to compress and send.
#[derive(Debug)]
pub(crate) struct SealedBatch {
    pub(crate) segments: Vec<Bytes>,
    pub(crate) len: usize,
    pub(crate) rows: usize,
    pub(crate) start: Option<OffsetToken>,
    pub(crate) end: Option<OffsetToken>,
    pub(crate) budget: BudgetBytes,
    /// When its first row arrived (the lag deadline counts from here).
    pub(crate) first_at: Instant,
    /// Wall-clock epoch ms of its first row.
    pub(crate) min_ts_ms: u64,
    /// Sequence number assigned by the actor when the batch is cut (flush bookkeeping).
    pub(crate) seq: u64,
    /// The batch ends in the middle of an append (which continues in a later batch).
    pub(crate) continues: bool,
    /// While the batch is open: its rows compressed so far, when it is compressed as it fills
    /// (its `segments` then hold only what came since the last push).
    frame: Option<OpenFrame>,
    /// Once sealed: its body, when it was compressed as it filled (`segments` is then empty).
    pub(crate) body: Option<std::io::Result<Bytes>>,
}

impl SealedBatch {
    fn empty(first_at: Instant, min_ts_ms: u64) -> Self {
        Self {
            segments: Vec::with_capacity(4),
            len: 0,
            rows: 0,
            start: None,
            end: None,
            budget: BudgetBytes::none(),
            first_at,
            min_ts_ms,
            seq: 0,
            continues: false,
            frame: None,
            body: None,
        }
    }

    fn add(&mut self, chunk: Chunk) {
        if self.rows == 0 {
            self.start = chunk.start;
        }
        self.end = chunk.end;
        self.continues = chunk.continues;
        self.len += chunk.data.len();
        self.rows += chunk.rows;
        if self.rows > chunk.rows {
            // Appends merged: a span is named only when it counts the rows.
            self.start = OffsetToken::merged_start(self.start.take(), self.end.as_ref(), self.rows);
        }
        self.budget.merge(chunk.budget);
        self.segments.push(chunk.data);
    }
}

/// The open batch of one channel.
#[derive(Debug)]
pub(crate) struct Batcher {
    cap: usize,
    open: Option<SealedBatch>,
    /// Where early frames' contexts come from and fed rows' buffers go, when the open batch
    /// is compressed as it fills.
    early: Option<Early>,
    /// The last batch was sealed full: the channel fills batches within its lag, so they are
    /// short-lived and compressed whole off the task, two at a time (a frame would put one
    /// busy channel's compression on one core).
    filled: bool,
}

/// What compressing an open batch as it fills takes ([`Batcher::compress_early`]).
#[derive(Debug)]
struct Early {
    compressors: Arc<CompressorPool>,
    buffers: Arc<BufferPool>,
    budget: Budget,
}

impl Batcher {
    /// A batcher cutting batches of at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            open: None,
            early: None,
            filled: false,
        }
    }

    /// The same batcher compressing its open batch as it fills
    /// ([`frame`](super::compress::frame)), once it holds [`EARLY_FROM`] bytes and `budget`
    /// has room for a context now, unless its last batch was sealed full; the context comes
    /// from `compressors`, the rows' buffers then go back to `buffers`.
    pub(crate) fn compress_early(
        mut self,
        compressors: Arc<CompressorPool>,
        buffers: Arc<BufferPool>,
        budget: Budget,
    ) -> Self {
        self.early = Some(Early {
            compressors,
            buffers,
            budget,
        });
        self
    }

    /// Bytes in the open batch.
    pub(crate) fn len(&self) -> usize {
        self.open.as_ref().map_or(0, |b| b.len)
    }

    /// Rows in the open batch.
    pub(crate) fn rows(&self) -> usize {
        self.open.as_ref().map_or(0, |b| b.rows)
    }

    /// When the open batch's first row arrived.
    pub(crate) fn first_at(&self) -> Option<Instant> {
        self.open.as_ref().map(|b| b.first_at)
    }

    /// Adds a chunk; every batch sealed on the way is pushed to `out`. The chunk is never
    /// split: when it does not fit in the room left, or its kind (with or without an end
    /// token) differs from the open batch's, the open batch is sealed first.
    pub(crate) fn push(
        &mut self,
        chunk: Chunk,
        now: Instant,
        now_ms: u64,
        out: &mut VecDeque<SealedBatch>,
    ) {
        debug_assert!(
            chunk.data.len() <= self.cap || chunk.rows == 1,
            "a chunk larger than a batch that is not one row going alone"
        );
        if let Some(open) = &self.open {
            let fits = open.len + chunk.data.len() <= self.cap;
            let same_kind = open.end.is_some() == chunk.end.is_some();
            // A frame is fed on the caller's task: a chunk too large for that goes to a batch
            // of its own, compressed off the task when sealed.
            let feeds = open.frame.is_none() || chunk.data.len() < FEED_INLINE_MAX;
            if open.rows > 0 && !(fits && same_kind && feeds) {
                out.extend(self.cut());
                self.filled = !fits;
            }
        }
        let open = self
            .open
            .get_or_insert_with(|| SealedBatch::empty(now, now_ms));
        open.add(chunk);
        let full = open.len >= self.cap;
        if let Some(early) = &self.early {
            // A batch cut now is compressed whole (off the task when large): no frame starts.
            early.feed(open, self.filled || full);
        }
        if full {
            out.extend(self.cut());
            self.filled = true;
        }
    }

    /// Cuts the open batch now (if it has rows): the lag is up, a flush, a close, a short
    /// budget. One compressed as it filled gets its body.
    pub(crate) fn seal(&mut self) -> Option<SealedBatch> {
        self.filled = false;
        self.cut()
    }

    fn cut(&mut self) -> Option<SealedBatch> {
        let mut b = self.open.take()?;
        if let Some(frame) = b.frame.take() {
            let (body, cctx) = frame.finish();
            if let Some(early) = &self.early {
                // The batch keeps its body's bytes; the rest of its charge, the context's, goes
                // with the context to the pool while the budget has room (see
                // `CompressorPool::give_frame`), else back to the budget.
                let body_len = body.as_ref().map_or(0, Bytes::len);
                let spare = b.budget.len().saturating_sub(body_len).min(CONTEXT_CHARGE);
                let charge = b.budget.split(spare);
                let charge = if early.budget.roomy() {
                    charge
                } else {
                    BudgetBytes::none()
                };
                early.compressors.give_frame(cctx, charge);
            }
            if let Ok(body) = &body {
                b.budget.shrink_to(body.len());
            }
            b.body = Some(body);
        }
        Some(b).filter(|b| b.len > 0)
    }

    /// Drops the open batch (releasing its budget).
    pub(crate) fn clear(&mut self) {
        if let Some(frame) = self.open.take().and_then(|mut b| b.frame.take()) {
            if let Some(early) = &self.early {
                early
                    .compressors
                    .give_frame(frame.into_context(), BudgetBytes::none());
            }
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.clear();
    }
}

impl Early {
    /// Compresses what the open batch holds uncompressed into its frame, gives the rows'
    /// buffers back and charges the batch what the frame holds. A frame starts when the batch
    /// has grown to [`EARLY_FROM`] with less than [`FEED_INLINE_MAX`] bytes to feed at once,
    /// no frame may start (`no_start`: the channel's last batch was sealed full, or this one
    /// is cut now), the budget has room for its context ([`CONTEXT_CHARGE`]) and the pool
    /// gives one. A zstd failure becomes the batch's body, which fails the channel when the
    /// batch is sent.
    fn feed(&self, open: &mut SealedBatch, no_start: bool) {
        if open.body.is_some() {
            return;
        }
        if open.frame.is_none() {
            if no_start || open.len < EARLY_FROM || open.len >= FEED_INLINE_MAX {
                return;
            }
            // A context kept idle comes with its charge; a new one (or one kept uncharged)
            // needs the budget's room now.
            let Some((cctx, held)) = self.compressors.take_frame() else {
                return;
            };
            let mut charge = held;
            if charge.len() < CONTEXT_CHARGE {
                match self.budget.try_spare(CONTEXT_CHARGE - charge.len()) {
                    Some(more) => charge.merge(more),
                    None => {
                        // The budget is short: the context goes back without its charge.
                        drop(charge);
                        self.compressors.give_frame(cctx, BudgetBytes::none());
                        return;
                    }
                }
            }
            match OpenFrame::start(cctx) {
                Ok(f) => {
                    open.frame = Some(f);
                    open.budget.merge(charge);
                }
                Err(e) => {
                    self.compressors.frame_lost();
                    open.body = Some(Err(e));
                    return;
                }
            }
        }
        let Some(frame) = open.frame.as_mut() else {
            return;
        };
        let fed = open.segments.drain(..).try_for_each(|s| {
            frame.feed(&s)?;
            self.buffers.give(s);
            Ok(())
        });
        match fed {
            Ok(()) => open.budget.shrink_to(frame.held()),
            Err(e) => {
                open.body = Some(Err(e));
                if let Some(f) = open.frame.take() {
                    self.compressors
                        .give_frame(f.into_context(), BudgetBytes::none());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
