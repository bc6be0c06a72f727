//! Cutting appended NDJSON into append requests: pure code, no I/O, no clocks of its own.
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
//! * a batch's start token is its first chunk's start token, its end token its last chunk's.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::time::Instant;

use super::budget::BudgetBytes;
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
        self.budget.merge(chunk.budget);
        self.segments.push(chunk.data);
    }
}

/// The open batch of one channel.
#[derive(Debug)]
pub(crate) struct Batcher {
    cap: usize,
    open: Option<SealedBatch>,
}

impl Batcher {
    /// A batcher cutting batches of at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            open: None,
        }
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
            if open.rows > 0 && !(fits && same_kind) {
                out.extend(self.seal());
            }
        }
        let open = self
            .open
            .get_or_insert_with(|| SealedBatch::empty(now, now_ms));
        open.add(chunk);
        if open.len >= self.cap {
            out.extend(self.seal());
        }
    }

    /// Cuts the open batch now (if it has rows).
    pub(crate) fn seal(&mut self) -> Option<SealedBatch> {
        self.open.take().filter(|b| b.len > 0)
    }

    /// Drops the open batch (releasing its budget).
    pub(crate) fn clear(&mut self) {
        self.open = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunk(rows: &[usize], start: Option<u64>, end: Option<u64>, fill: u8) -> Chunk {
        let mut v = Vec::new();
        for &r in rows {
            v.extend(std::iter::repeat_n(fill, r - 1));
            v.push(b'\n');
        }
        let len = v.len();
        Chunk {
            data: Bytes::from(v),
            rows: rows.len(),
            start: start.map(OffsetToken::from),
            end: end.map(OffsetToken::from),
            budget: BudgetBytes::detached(len),
            continues: false,
        }
    }

    #[test]
    fn an_append_that_does_not_fit_the_room_left_starts_the_next_batch() {
        let mut b = Batcher::new(10);
        let mut out = VecDeque::new();
        let now = Instant::now();
        b.push(chunk(&[4], Some(1), Some(1), b'a'), now, 0, &mut out);
        b.push(chunk(&[4, 4], Some(2), Some(3), b'b'), now, 0, &mut out);
        let last = b.seal().unwrap();
        assert_eq!(out.len(), 1, "the first append was sealed alone");
        assert_eq!((out[0].len, out[0].rows), (4, 1));
        assert_eq!(out[0].start, Some(OffsetToken::from(1u64)));
        assert_eq!(out[0].end, Some(OffsetToken::from(1u64)));
        assert_eq!((last.len, last.rows), (8, 2));
        assert_eq!(last.start, Some(OffsetToken::from(2u64)));
        assert_eq!(last.end, Some(OffsetToken::from(3u64)));
    }

    #[test]
    fn rows_without_an_end_token_never_share_a_batch_with_rows_that_have_one() {
        let mut b = Batcher::new(100);
        let mut out = VecDeque::new();
        let now = Instant::now();
        b.push(chunk(&[4], None, None, b'a'), now, 0, &mut out);
        b.push(chunk(&[4], Some(1), Some(1), b'b'), now, 0, &mut out);
        b.push(chunk(&[4], None, None, b'c'), now, 0, &mut out);
        out.extend(b.seal());
        let ends: Vec<_> = out.iter().map(|b| (b.rows, b.end.clone())).collect();
        assert_eq!(
            ends,
            vec![(1, None), (1, Some(OffsetToken::from(1u64))), (1, None)]
        );
    }

    #[test]
    fn exactly_full_batch_is_sealed_at_once() {
        let mut b = Batcher::new(8);
        let mut out = VecDeque::new();
        b.push(
            chunk(&[4, 4], None, Some(7), b'a'),
            Instant::now(),
            0,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(b.len(), 0);
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(256))]

        /// Chunks of random sizes and token kinds: every batch is at most `cap`, holds whole
        /// chunks of one kind in order, and carries its first chunk's start token and its last
        /// chunk's end token.
        #[test]
        fn batches_hold_whole_chunks_and_their_tokens(
            cap in 8usize..64,
            appends in prop::collection::vec(
                (prop::collection::vec(1usize..8, 1..12), any::<bool>(), 0u8..3),
                1..30,
            ),
        ) {
            let mut b = Batcher::new(cap);
            let mut out = VecDeque::new();
            let now = Instant::now();
            // Each chunk: (its bytes, start, end).
            let mut chunks = Vec::new();
            for (i, (rows, has_start, end_kind)) in appends.iter().enumerate() {
                // Chunks are at most one batch long (the encoder cuts them so).
                let mut rows: Vec<usize> = rows.iter().map(|r| (*r).min(cap)).collect();
                while rows.iter().sum::<usize>() > cap {
                    rows.pop();
                }
                let end = match end_kind { 0 => None, _ => Some(i as u64) };
                let c = chunk(&rows, has_start.then_some(i as u64), end, b'a' + (i % 26) as u8);
                chunks.push((c.data.clone(), c.start.clone(), c.end.clone()));
                b.push(c, now, 0, &mut out);
            }
            out.extend(b.seal());
            let mut next = 0;
            for batch in &out {
                prop_assert!(batch.len <= cap, "batch of {} > cap {}", batch.len, cap);
                prop_assert!(batch.rows > 0);
                let mut held = Vec::new();
                for s in &batch.segments {
                    held.extend_from_slice(s);
                }
                // The batch is chunks next..k, whole, in order.
                let first = next;
                let mut want = Vec::new();
                while want.len() < held.len() {
                    want.extend_from_slice(&chunks[next].0);
                    next += 1;
                }
                prop_assert_eq!(&held, &want);
                prop_assert_eq!(batch.rows, held.iter().filter(|&&c| c == b'\n').count());
                let kinds: Vec<bool> = chunks[first..next].iter().map(|c| c.2.is_some()).collect();
                prop_assert!(kinds.iter().all(|k| *k == kinds[0]), "mixed kinds {:?}", kinds);
                prop_assert_eq!(&batch.start, &chunks[first].1);
                prop_assert_eq!(&batch.end, &chunks[next - 1].2);
            }
            prop_assert_eq!(next, chunks.len());
        }
    }
}
