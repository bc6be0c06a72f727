//! Batching's rules, and batches compressed as they fill.

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

/// The start token of a batch of `chunks` chunks and `rows` rows whose first chunk starts at
/// `first` and which ends at `end`: the first chunk's, unless several chunks share the batch
/// and `first..=end` does not name exactly one number per row.
fn want_start(
    first: &Option<OffsetToken>,
    end: &Option<OffsetToken>,
    chunks: usize,
    rows: usize,
) -> Option<OffsetToken> {
    let (Some(s), Some(e)) = (first, end) else {
        return first.clone();
    };
    let counts = e.as_u64().and_then(|e| e.checked_sub(s.as_u64()?)) == Some(rows as u64 - 1);
    (chunks == 1 || counts).then(|| s.clone())
}

proptest! {
    #![proptest_config(crate::test_support::proptest_config(256))]

    /// Chunks of random sizes and token kinds: every batch is at most `cap`, holds whole
    /// chunks of one kind in order, and carries its last chunk's end token and its first
    /// chunk's start token (when it names a span that counts its rows, see `want_start`).
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
            let start = want_start(&chunks[first].1, &batch.end, next - first, batch.rows);
            prop_assert_eq!(&batch.start, &start);
            prop_assert_eq!(&batch.end, &chunks[next - 1].2);
        }
        prop_assert_eq!(next, chunks.len());
    }
}

/// Early frames: chunks of NDJSON with varied rows, charged to a real budget.
mod early {
    use super::*;
    use crate::pipeline::budget::Budget;
    use crate::pipeline::compress::frame::{CONTEXT_CHARGE, EARLY_FROM, FEED_INLINE_MAX};
    use crate::Compression;

    struct Lab {
        budget: Budget,
        compressors: Arc<CompressorPool>,
    }

    impl Lab {
        fn new(budget: usize) -> Self {
            Self {
                budget: Budget::new(budget),
                compressors: CompressorPool::for_client(Compression::Zstd, 1, 4 << 20, budget, 2),
            }
        }

        fn batcher(&self, cap: usize) -> Batcher {
            Batcher::new(cap).compress_early(
                Arc::clone(&self.compressors),
                Arc::new(BufferPool::new(1 << 24)),
                self.budget.clone(),
            )
        }

        /// A chunk of about `n` bytes of rows numbered from `first`, charged to the budget.
        fn chunk(&self, first: u64, n: usize, end: Option<u64>) -> (Chunk, u64) {
            let mut v = Vec::with_capacity(n + 100);
            let mut id = first;
            while v.len() < n.max(1) {
                v.extend_from_slice(
                    format!(
                        "{{\"id\":{id},\"h\":\"{:x}\"}}\n",
                        id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    )
                    .as_bytes(),
                );
                id += 1;
            }
            let len = v.len();
            let c = Chunk {
                data: Bytes::from(v),
                rows: usize::try_from(id - first).unwrap(),
                start: Some(OffsetToken::from(first)),
                end: end.map(OffsetToken::from),
                budget: self.budget.try_acquire(len).unwrap(),
                continues: false,
            };
            (c, id)
        }
    }

    /// The rows a sealed batch carries: its body decoded, or its segments.
    fn carried(b: &mut SealedBatch) -> Vec<u8> {
        match b.body.take() {
            Some(body) => {
                assert!(b.segments.is_empty(), "a batch with a body holds no rows");
                let body = body.unwrap();
                assert_eq!(
                    b.budget.len(),
                    body.len(),
                    "an early batch is charged its body"
                );
                zstd::decode_all(&body[..]).unwrap()
            }
            None => b.segments.concat(),
        }
    }

    #[test]
    fn an_open_batch_is_compressed_as_its_chunks_arrive() {
        let lab = Lab::new(64 << 20);
        let mut b = lab.batcher(4 << 20);
        let mut out = VecDeque::new();
        let now = Instant::now();
        let mut sent = Vec::new();
        let mut next = 0;
        while b.len() < 3 << 20 {
            let (c, after) = lab.chunk(next, 64 << 10, Some(next));
            next = after;
            sent.extend_from_slice(&c.data);
            b.push(c, now, 0, &mut out);
            let open = b.open.as_ref().unwrap();
            if open.len < EARLY_FROM {
                assert!(open.frame.is_none() && !open.segments.is_empty());
            } else {
                assert!(open.frame.is_some(), "a frame at {} bytes", open.len);
                assert!(open.segments.is_empty(), "every chunk fed");
                // The batch is charged what its frame holds: its context and its body.
                let charged = open.budget.len();
                assert!(
                    charged >= open.frame.as_ref().unwrap().held()
                        && charged <= open.len + CONTEXT_CHARGE,
                    "{charged} bytes charged for {} of rows",
                    open.len
                );
            }
        }
        assert!(out.is_empty(), "nothing sealed before the lag");
        assert!(lab.budget.used() < sent.len(), "rows held compressed");
        let mut sealed = b.seal().unwrap();
        assert!(sealed.body.is_some());
        assert_eq!(carried(&mut sealed), sent);
        assert_eq!(lab.compressors.idle_frames(), 1, "the context went back");
        drop(sealed);
        // The idle context keeps its charge (what of it the body did not take when the frame
        // ended) while the budget has room.
        let kept = lab.compressors.idle_frame_charges();
        assert!(
            kept > CONTEXT_CHARGE / 2 && kept <= CONTEXT_CHARGE,
            "{kept}"
        );
        assert_eq!(lab.budget.used(), kept);
        lab.compressors.release_frames();
        assert_eq!(lab.budget.used(), 0);
    }

    /// With less than a quarter of the budget free when a batch is cut, its context goes
    /// back to the pool uncharged: idle contexts never hold room producers need.
    #[test]
    fn a_context_goes_back_uncharged_when_the_budget_is_tight() {
        let lab = Lab::new(2 * CONTEXT_CHARGE);
        let mut b = lab.batcher(4 << 20);
        let mut out = VecDeque::new();
        let (c, _) = lab.chunk(0, 300 << 10, Some(0));
        b.push(c, Instant::now(), 0, &mut out);
        assert!(b.open.as_ref().unwrap().frame.is_some());
        let producer = lab
            .budget
            .try_spare(lab.budget.available() - (100 << 10))
            .unwrap();
        let sealed = b.seal().unwrap();
        assert_eq!(lab.compressors.idle_frames(), 1, "the context went back");
        assert_eq!(lab.compressors.idle_frame_charges(), 0, "uncharged");
        drop((sealed, producer));
        assert_eq!(lab.budget.used(), 0);
    }

    #[test]
    fn no_frame_without_room_in_the_budget_for_its_context() {
        let lab = Lab::new(CONTEXT_CHARGE + (200 << 10));
        let mut b = lab.batcher(4 << 20);
        let mut out = VecDeque::new();
        let (c, _) = lab.chunk(0, 300 << 10, Some(0));
        let sent = c.data.clone();
        b.push(c, Instant::now(), 0, &mut out);
        let mut sealed = b.seal().unwrap();
        assert!(sealed.body.is_none(), "compressed when sealed, as before");
        assert_eq!(carried(&mut sealed), sent);
        assert_eq!(lab.budget.used(), sent.len());
    }

    #[test]
    fn a_chunk_too_large_to_feed_at_once_goes_to_a_batch_of_its_own() {
        let lab = Lab::new(64 << 20);
        let mut b = lab.batcher(4 << 20);
        let mut out = VecDeque::new();
        let now = Instant::now();
        let (c, next) = lab.chunk(0, 300 << 10, Some(0));
        b.push(c, now, 0, &mut out);
        assert!(b.open.as_ref().unwrap().frame.is_some());
        let (big, _) = lab.chunk(next, FEED_INLINE_MAX, Some(next));
        let big_rows = big.data.clone();
        b.push(big, now, 0, &mut out);
        assert_eq!(out.len(), 1, "the open frame was sealed first");
        assert!(out[0].body.is_some());
        let open = b.open.as_ref().unwrap();
        assert!(
            open.frame.is_none(),
            "the large chunk is not fed on the task"
        );
        assert_eq!(open.segments, [big_rows]);
    }

    /// A channel filling batches within its lag (a firehose) gets none: its batches are
    /// compressed whole, two at a time off the task, as before. A batch sealed by the lag
    /// (or a flush) makes the next one eligible again.
    #[test]
    fn batches_sealed_full_are_followed_by_batches_compressed_whole() {
        let lab = Lab::new(64 << 20);
        let cap = 1 << 20;
        let mut b = lab.batcher(cap);
        let mut out = VecDeque::new();
        let now = Instant::now();
        let mut next = 0;
        let mut push = |b: &mut Batcher, out: &mut VecDeque<SealedBatch>| {
            let (c, after) = lab.chunk(next, 100 << 10, Some(next));
            next = after;
            b.push(c, now, 0, out);
        };
        while out.is_empty() {
            push(&mut b, &mut out);
        }
        assert!(
            out[0].body.is_some(),
            "the first batch was compressed as it filled"
        );
        while b.len() < 600 << 10 {
            push(&mut b, &mut out);
        }
        assert!(
            b.open.as_ref().unwrap().frame.is_none(),
            "after a full batch, none"
        );
        out.extend(b.seal());
        assert!(out[1].body.is_none());
        while b.len() < 600 << 10 {
            push(&mut b, &mut out);
        }
        assert!(
            b.open.as_ref().unwrap().frame.is_some(),
            "after the lag, again"
        );
    }

    #[test]
    fn clearing_the_open_batch_gives_its_context_back_and_its_budget() {
        let lab = Lab::new(64 << 20);
        let mut b = lab.batcher(4 << 20);
        let mut out = VecDeque::new();
        let (c, _) = lab.chunk(0, 300 << 10, Some(0));
        b.push(c, Instant::now(), 0, &mut out);
        assert!(b.open.as_ref().unwrap().frame.is_some());
        b.clear();
        assert_eq!(lab.compressors.idle_frames(), 1);
        assert_eq!(lab.budget.used(), 0);
        let (c, _) = lab.chunk(0, 300 << 10, Some(0));
        b.push(c, Instant::now(), 0, &mut out);
        assert_eq!(lab.compressors.idle_frames(), 0, "taken again");
        drop(b);
        assert_eq!(
            lab.compressors.idle_frames(),
            1,
            "a dropped batcher gives it back"
        );
        assert_eq!(lab.budget.used(), 0);
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(24))]

        /// Chunks of random sizes (some too large to feed at once) and token kinds, with
        /// early frames: every batch is at most `cap`, carries whole chunks of one kind in
        /// order and their tokens, and what is charged goes back.
        #[test]
        fn early_batches_hold_whole_chunks_and_their_tokens(
            cap_kib in 700usize..3000,
            appends in prop::collection::vec((1usize..700, 0u8..3), 1..24),
        ) {
            let cap = cap_kib << 10;
            let lab = Lab::new(256 << 20);
            let mut b = lab.batcher(cap);
            let mut out = VecDeque::new();
            let now = Instant::now();
            let mut chunks = Vec::new();
            let mut next = 0;
            for (i, (kib, end_kind)) in appends.iter().enumerate() {
                let end = (*end_kind > 0).then_some(i as u64);
                let (c, after) = lab.chunk(next, (*kib << 10).min(cap - 200), end);
                next = after;
                chunks.push((c.data.clone(), c.start.clone(), c.end.clone()));
                b.push(c, now, 0, &mut out);
            }
            out.extend(b.seal());
            let mut at = 0;
            for batch in &mut out {
                prop_assert!(batch.len <= cap);
                let held = carried(batch);
                prop_assert_eq!(held.len(), batch.len);
                let first = at;
                let mut want = Vec::new();
                while want.len() < held.len() {
                    want.extend_from_slice(&chunks[at].0);
                    at += 1;
                }
                prop_assert!(held == want, "whole chunks, in order");
                let kinds: Vec<bool> = chunks[first..at].iter().map(|c| c.2.is_some()).collect();
                prop_assert!(kinds.iter().all(|k| *k == kinds[0]));
                let start = want_start(&chunks[first].1, &batch.end, at - first, batch.rows);
                prop_assert_eq!(&batch.start, &start);
                prop_assert_eq!(&batch.end, &chunks[at - 1].2);
            }
            prop_assert_eq!(at, chunks.len());
            drop(out);
            prop_assert_eq!(lab.budget.used(), lab.compressors.idle_frame_charges());
            lab.compressors.release_frames();
            prop_assert_eq!(lab.budget.used(), 0);
        }
    }
}
