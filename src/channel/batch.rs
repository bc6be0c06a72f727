//! Cutting appended NDJSON into append requests: pure code, no I/O, no clocks of its own.
//!
//! Rules (property-tested below):
//! * a batch never holds more than `cap` uncompressed bytes;
//! * rows keep their order, and an append larger than the room left is split at a row
//!   boundary (its start token goes with its first row, its end token with its last row);
//! * a batch's start token is the first start token of an append that begins in it, its end
//!   token the last end token of an append that ends in it.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::time::Instant;

use super::budget::BudgetBytes;
use crate::OffsetToken;

/// Serialized rows from one append call (or one piece of a large one): NDJSON, every row
/// terminated by `\n`.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) data: Bytes,
    pub(crate) rows: usize,
    pub(crate) start: Option<OffsetToken>,
    pub(crate) end: Option<OffsetToken>,
    pub(crate) budget: BudgetBytes,
    /// The append continues in a later chunk (this is not its last piece).
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
            budget: BudgetBytes::detached(0),
            first_at,
            min_ts_ms,
            seq: 0,
            continues: false,
        }
    }

    fn add(
        &mut self,
        data: Bytes,
        rows: usize,
        start: Option<OffsetToken>,
        end: Option<OffsetToken>,
        budget: BudgetBytes,
        continues: bool,
    ) {
        self.continues = continues;
        self.len += data.len();
        self.rows += rows;
        if self.start.is_none() {
            self.start = start;
        }
        if end.is_some() {
            self.end = end;
        }
        self.budget.merge(budget);
        self.segments.push(data);
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

    /// Adds a chunk; every batch that became full is pushed to `out`.
    pub(crate) fn push(
        &mut self,
        mut chunk: Chunk,
        now: Instant,
        now_ms: u64,
        out: &mut VecDeque<SealedBatch>,
    ) {
        loop {
            let open = self
                .open
                .get_or_insert_with(|| SealedBatch::empty(now, now_ms));
            let room = self.cap.saturating_sub(open.len);
            if chunk.data.len() <= room {
                open.add(
                    chunk.data,
                    chunk.rows,
                    chunk.start,
                    chunk.end,
                    chunk.budget,
                    chunk.continues,
                );
                if open.len >= self.cap {
                    out.extend(self.seal());
                }
                return;
            }
            match chunk.data[..room].iter().rposition(|&b| b == b'\n') {
                Some(p) => {
                    let prefix = chunk.data.split_to(p + 1);
                    let rows = prefix.iter().filter(|&&b| b == b'\n').count();
                    chunk.rows -= rows;
                    let budget = chunk.budget.split(prefix.len());
                    open.add(prefix, rows, chunk.start.take(), None, budget, true);
                }
                None if open.len == 0 => {
                    // A single row larger than a batch: callers check sizes first, so this
                    // never happens; send it alone rather than loop.
                    debug_assert!(false, "row larger than the batch limit");
                    open.add(
                        chunk.data,
                        chunk.rows,
                        chunk.start,
                        chunk.end,
                        chunk.budget,
                        chunk.continues,
                    );
                    out.extend(self.seal());
                    return;
                }
                None => {}
            }
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
    fn splits_large_append_at_row_boundaries() {
        let mut b = Batcher::new(10);
        let mut out = VecDeque::new();
        let now = Instant::now();
        b.push(
            chunk(&[4, 4, 4, 4], Some(1), Some(2), b'a'),
            now,
            0,
            &mut out,
        );
        let last = b.seal().unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].len, out[0].rows), (8, 2));
        assert_eq!(out[0].start, Some(OffsetToken::from(1u64)));
        assert_eq!(out[0].end, None);
        assert_eq!((last.len, last.rows), (8, 2));
        assert_eq!(last.start, None);
        assert_eq!(last.end, Some(OffsetToken::from(2u64)));
        assert_eq!(out[0].budget.len() + last.budget.len(), 16);
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
        #[test]
        fn batching_respects_limit_order_and_token_placement(
            cap in 8usize..64,
            appends in prop::collection::vec(
                (prop::collection::vec(1usize..8, 1..12), any::<bool>(), any::<bool>()),
                1..30,
            ),
        ) {
            let mut b = Batcher::new(cap);
            let mut out = VecDeque::new();
            let now = Instant::now();
            let mut expected = Vec::new();
            // (byte position of the append's last byte, end token) for appends with a token
            let mut ends = Vec::new();
            let mut starts = Vec::new();
            for (i, (rows, has_start, has_end)) in appends.iter().enumerate() {
                let rows: Vec<usize> = rows.iter().map(|r| (*r).min(cap)).collect();
                let c = chunk(&rows, has_start.then_some(i as u64), has_end.then_some(i as u64), b'a' + (i % 26) as u8);
                starts.push((expected.len(), c.start.clone()));
                expected.extend_from_slice(&c.data);
                ends.push((expected.len() - 1, c.end.clone()));
                b.push(c, now, 0, &mut out);
            }
            out.extend(b.seal());
            let mut got = Vec::new();
            for batch in &out {
                prop_assert!(batch.len <= cap, "batch of {} > cap {}", batch.len, cap);
                prop_assert!(batch.len > 0);
                let lo = got.len();
                for s in &batch.segments {
                    got.extend_from_slice(s);
                }
                let hi = got.len();
                prop_assert_eq!(batch.len, hi - lo);
                prop_assert_eq!(batch.rows, got[lo..hi].iter().filter(|&&c| c == b'\n').count());
                prop_assert_eq!(*got.last().unwrap(), b'\n');
                let want_end = ends.iter().rfind(|(p, t)| *p >= lo && *p < hi && t.is_some()).and_then(|(_, t)| t.clone());
                prop_assert_eq!(&batch.end, &want_end);
                let want_start = starts.iter().find(|(p, t)| *p >= lo && *p < hi && t.is_some()).and_then(|(_, t)| t.clone());
                prop_assert_eq!(&batch.start, &want_start);
            }
            prop_assert_eq!(got, expected);
        }
    }
}
