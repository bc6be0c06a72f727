//! Per-partition [`Batch`]es of rows on their way from the poll thread to a partition's worker,
//! held within one sink-wide byte [`Budget`].
//!
//! The poll thread ([`crate::kafka::router`]) copies each message once, into its partition's
//! open batch, already as the row it will be: the value (after `{"RECORD_METADATA":{…},` with
//! `--metadata`) and a line break, so the batch's row buffer is the NDJSON the channel takes,
//! with no further copy (`record::write_candidate`; the worker only validates each row in
//! place, removes the few that are not rows, and hands the buffer to the SDK). Keys, headers
//! and values that cannot be rows go to a side buffer.
//!
//! **Buffers.** A batch's row buffer is sized by what its partition's last batch held (half
//! again, 16 to 256 KB, one of five sizes) and comes from a [`Pool`] the SDK hands buffers back
//! to once it has compressed them. With many partitions each burst brings a partition a few
//! tens of KB: a batch then fills most of its buffer, which goes to the SDK as it is, and
//! memory is reused rather than freshly faulted in. A batch under a quarter full moves its rows
//! to a pooled buffer of their size first, so the SDK, which charges only the rows, never holds
//! more than about twice what it charged. A size the pool has run out of is made ahead, faulted
//! in on a thread of its own ([`crate::rows::prefault`]), so that a sink catching up on a
//! backlog, whose batches are all fresh memory until the first commits, does not make the poll
//! thread wait for the kernel's page faults.
//!
//! **Memory is charged here.** Every batch is charged to the [`Budget`] from the moment its
//! buffer is allocated until the worker has appended its rows (dropping the batch releases the
//! charge); a buffer that grows is charged for its growth. The router pauses partitions against
//! the same budget.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::lock;
use crate::rows::layout::Shape;
use crate::rows::prefault::Prefault;
use crate::rows::record::{Record, RowOptions, TimestampKind};
use crate::rows::row::Written;

/// A batch is handed to its worker once its row buffer holds this much, at most.
pub(crate) const BATCH_BYTES: usize = 256 << 10;
/// The smallest row buffer a batch starts with.
pub(crate) const MIN_BATCH_BYTES: usize = 16 << 10;
/// Room for keys, headers and values that are not rows, per batch (more for a larger one).
pub(crate) const SIDE_BYTES: usize = 16 << 10;
/// Idle buffers kept per size for the next batches, at most this many bytes of each size (and
/// at least 8 buffers): 10 MiB in all over the five sizes.
const POOLED_BYTES: usize = 2 << 20;
/// Per message, what a batch holds besides the bytes (its [`Meta`]), as charged.
const META_BYTES: usize = std::mem::size_of::<Meta>();

/// The sink-wide byte budget of the batches between the poll thread and the workers.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    pub(crate) limit: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            limit: limit.max(1),
        }
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Buffers of the five sizes from `MIN_BATCH_BYTES` (16 KB) to `BATCH_BYTES` (256 KB), each
/// twice the last: batches' row and side buffers, back from the SDK once it has compressed them
/// (or from the worker), for the next batches. A new buffer is fresh memory whose pages the
/// kernel must fault in and zero; with a buffer per batch that was about a tenth of the sink's
/// CPU. At most `POOLED_BYTES` (2 MiB, and at least 8 buffers) of each size are kept idle, 10
/// MiB in all, which the budget's slack covers.
#[derive(Debug)]
pub struct Pool {
    idle: std::sync::Mutex<[Vec<Vec<u8>>; SIZES]>,
    /// Fresh buffers of the sizes it ran out of, faulted in on a thread of their own.
    ahead: Prefault,
}

impl Default for Pool {
    fn default() -> Self {
        let sizes: Vec<usize> = (0..SIZES).map(|i| MIN_BATCH_BYTES << i).collect();
        Self {
            idle: std::sync::Mutex::default(),
            ahead: Prefault::new(&sizes),
        }
    }
}

/// How many buffer sizes a [`Pool`] keeps.
const SIZES: usize = (BATCH_BYTES / MIN_BATCH_BYTES).ilog2() as usize + 1;

/// The index of the pool's smallest size that holds `bytes` (`None`: more than the largest).
fn size_for(bytes: usize) -> Option<usize> {
    let size = bytes.max(MIN_BATCH_BYTES).next_power_of_two();
    (size <= BATCH_BYTES).then(|| (size / MIN_BATCH_BYTES).ilog2() as usize)
}

/// Which of a pool's sizes `capacity` is exactly.
fn size_index(capacity: usize) -> Option<usize> {
    size_for(capacity).filter(|&i| MIN_BATCH_BYTES << i == capacity)
}

impl Pool {
    /// An empty buffer of at least `bytes`: of the pool's smallest size that holds them (an
    /// idle one when there is one, else one faulted in ahead, else a fresh one), or of exactly
    /// `bytes` when no size does.
    fn take(&self, bytes: usize) -> Vec<u8> {
        let Some(i) = size_for(bytes) else {
            return Vec::with_capacity(bytes);
        };
        let idle = lock(&self.idle)[i].pop();
        idle.or_else(|| self.ahead.take(i))
            .unwrap_or_else(|| Vec::with_capacity(MIN_BATCH_BYTES << i))
    }

    /// Keeps `buf` for a later [`take`](Self::take) when it is one of the pool's sizes and
    /// there is room; frees it otherwise.
    fn give(&self, mut buf: Vec<u8>) {
        let Some(i) = size_index(buf.capacity()) else {
            return;
        };
        self.ahead.filled(i, buf.len());
        buf.clear();
        let mut idle = lock(&self.idle);
        if idle[i].len() < (POOLED_BYTES / buf.capacity()).max(8) {
            idle[i].push(buf);
        }
    }
}

/// A batch's row buffer lent to the SDK as [`bytes::Bytes`]: back to its [`Pool`] when the
/// SDK drops it.
struct Lent {
    buf: Vec<u8>,
    pool: Arc<Pool>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

/// Bytes held by one batch, released when it is dropped.
#[derive(Debug)]
pub struct Charge {
    bytes: usize,
    budget: Arc<Budget>,
    partition: Arc<AtomicUsize>,
}

impl Charge {
    fn new(bytes: usize, budget: &Arc<Budget>, partition: &Arc<AtomicUsize>) -> Self {
        let mut charge = Self {
            bytes: 0,
            budget: Arc::clone(budget),
            partition: Arc::clone(partition),
        };
        charge.grow(bytes);
        charge
    }

    /// Charges `bytes` more.
    fn grow(&mut self, bytes: usize) {
        self.budget.used.fetch_add(bytes, Ordering::Relaxed);
        self.partition.fetch_add(bytes, Ordering::Relaxed);
        self.bytes += bytes;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::Relaxed);
        self.partition.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Where a message's value is.
#[derive(Debug, Clone)]
enum Body {
    /// A candidate row (`rows[row]`, without its line break); the value is `side[prefix]`
    /// followed by `rows[rest..row.end]`, as `shape` says (`record::Candidate`,
    /// `layout::value_of`).
    Row {
        row: Range<usize>,
        rest: usize,
        prefix: Range<usize>,
        shape: Shape,
    },
    /// A tombstone skipped (`--on-null-value`): no row, no dead letter.
    Skip,
    /// Not a row whatever its JSON (a tombstone: `None`): the value, in `side`.
    Value(Option<Range<usize>>),
}

/// One message: its parts, as ranges of its batch's buffers.
#[derive(Debug, Clone)]
struct Meta {
    offset: i64,
    timestamp: Option<(TimestampKind, i64)>,
    key: Option<Range<usize>>,
    headers: Range<usize>,
    body: Body,
}

/// One header: its key and value, as ranges of the batch's side buffer.
#[derive(Debug, Clone)]
struct HeaderMeta {
    key: Range<usize>,
    value: Option<Range<usize>>,
}

/// Messages of one partition, in offset order, copied out of librdkafka (see the module docs).
#[derive(Debug)]
pub struct Batch {
    pub(crate) rows: Vec<u8>,
    pool: Arc<Pool>,
    pub(crate) side: Vec<u8>,
    messages: Vec<Meta>,
    headers: Vec<HeaderMeta>,
    charge: Charge,
    /// When it was started (a part-full batch waits the router's hold from then).
    pub(crate) opened: Instant,
}

/// One message of a [`Batch`].
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp, if the broker reported one.
    pub timestamp: Option<(TimestampKind, i64)>,
    /// Its key.
    pub key: Option<&'a [u8]>,
    headers: &'a [HeaderMeta],
    body: &'a Body,
    batch: &'a Batch,
}

impl<'a> Msg<'a> {
    /// Its headers in order, keys and values as bytes.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        let side = &self.batch.side;
        self.headers
            .iter()
            .map(move |h| (&side[h.key.clone()], h.value.clone().map(|v| &side[v])))
    }

    /// Its value as the producer wrote it (`None`: a tombstone).
    pub fn value(&self) -> Option<std::borrow::Cow<'a, [u8]>> {
        match self.body {
            Body::Value(v) => v.clone().map(|v| self.batch.side[v].into()),
            Body::Skip => None,
            Body::Row {
                row,
                rest,
                prefix,
                shape,
            } => crate::rows::row::value_of(
                &self.batch.side[prefix.clone()],
                &self.batch.rows[*rest..row.end],
                *shape,
            )
            .map(Into::into),
        }
    }
}

/// A batch's rows, taken for an append: the NDJSON and its tokens, and the budget charge to
/// hold until the SDK has them.
pub struct Rows {
    /// One row per line (its buffer goes back to the batches' pool when dropped).
    pub ndjson: bytes::Bytes,
    /// Each row's offset, in order.
    pub offsets: Vec<u64>,
    /// Released when dropped.
    pub charge: Charge,
}

impl Batch {
    pub(crate) fn new(
        rows: usize,
        side: usize,
        pool: &Arc<Pool>,
        budget: &Arc<Budget>,
        partition: &Arc<AtomicUsize>,
    ) -> Self {
        let rows = pool.take(rows);
        let side = pool.take(side);
        let messages = rows.capacity() / 256 + 1;
        Self {
            charge: Charge::new(
                rows.capacity() + side.capacity() + messages * META_BYTES,
                budget,
                partition,
            ),
            rows,
            pool: Arc::clone(pool),
            side,
            messages: Vec::with_capacity(messages),
            headers: Vec::new(),
            opened: Instant::now(),
        }
    }

    fn msg<'a>(&'a self, m: &'a Meta) -> Msg<'a> {
        Msg {
            offset: m.offset,
            timestamp: m.timestamp,
            key: m.key.clone().map(|r| &self.side[r]),
            headers: &self.headers[m.headers.clone()],
            body: &m.body,
            batch: self,
        }
    }

    /// Messages in it.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether it holds no message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Message `i`'s offset.
    pub fn offset(&self, i: usize) -> i64 {
        self.messages[i].offset
    }

    /// Message `i`.
    pub fn get(&self, i: usize) -> Msg<'_> {
        self.msg(&self.messages[i])
    }

    /// Checks message `i`'s candidate row in place (`layout::finish`): whether it is a
    /// row.
    pub fn finish(&mut self, i: usize, max_row_bytes: usize) -> bool {
        match &self.messages[i].body {
            Body::Row {
                row, rest, shape, ..
            } => crate::rows::row::finish(
                &mut self.rows[row.clone()],
                rest - row.start,
                *shape,
                max_row_bytes,
            ),
            Body::Value(_) | Body::Skip => false,
        }
    }

    /// Whether message `i` is a tombstone skipped (`--on-null-value`): no row and no dead
    /// letter.
    pub fn skipped(&self, i: usize) -> bool {
        matches!(self.messages[i].body, Body::Skip)
    }

    /// The rows of the messages `keep` says (one flag per message; only rows that
    /// [`finish`](Self::finish) accepted), moved together in place: the batch's buffer is the
    /// NDJSON, copied only after a message it leaves out.
    pub fn into_rows(mut self, keep: &[bool]) -> Rows {
        let mut w = 0;
        let mut offsets = Vec::with_capacity(self.messages.len());
        for (m, &k) in self.messages.iter().zip(keep) {
            let Body::Row { row, .. } = &m.body else {
                continue;
            };
            if !k {
                continue;
            }
            let line = row.start..row.end + 1;
            if line.start != w {
                self.rows.copy_within(line.clone(), w);
            }
            w += line.len();
            offsets.push(m.offset.unsigned_abs());
        }
        self.rows.truncate(w);
        self.pool.give(std::mem::take(&mut self.side));
        // A batch handed over part full would hold its whole buffer in the SDK, which charges
        // only the rows: below a quarter full, the rows move to a pooled buffer of their size
        // (or, when only a few KB, one of their own) instead, and the batch's goes straight back
        // to the pool.
        let ndjson = if w < MIN_BATCH_BYTES / 4 {
            let rows = bytes::Bytes::copy_from_slice(&self.rows);
            self.pool.give(std::mem::take(&mut self.rows));
            rows
        } else {
            if w < self.rows.capacity() / 4 {
                let mut smaller = self.pool.take(w);
                smaller.extend_from_slice(&self.rows);
                self.pool.give(std::mem::replace(&mut self.rows, smaller));
            }
            bytes::Bytes::from_owner(Lent {
                buf: std::mem::take(&mut self.rows),
                pool: Arc::clone(&self.pool),
            })
        };
        Rows {
            ndjson,
            offsets,
            charge: self.charge,
        }
    }

    /// Whether it holds as many messages as it was made for (the router hands it over).
    pub(crate) fn is_out_of_messages(&self) -> bool {
        self.messages.len() == self.messages.capacity()
    }

    pub(crate) fn room(&self) -> usize {
        self.rows.capacity() - self.rows.len()
    }

    pub(crate) fn side_room(&self) -> usize {
        self.side.capacity() - self.side.len()
    }

    fn copy(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.side.len();
        self.side.extend_from_slice(bytes);
        start..self.side.len()
    }

    /// Adds a message: its candidate row into `rows` (when it can be a row, with `metadata`
    /// when given, as `options` say), the rest into `side`.
    pub(crate) fn push(
        &mut self,
        record: &Record<'_>,
        metadata: Option<&[u8]>,
        can_be_row: bool,
        options: &RowOptions,
    ) {
        let held = self.held();
        self.push_unchecked(record, metadata, can_be_row, options);
        // The router sizes the buffers for what goes in; should one grow all the same, the
        // budget still sees every byte held.
        let grown = self.held().saturating_sub(held);
        if grown > 0 {
            self.charge.grow(grown);
        }
    }

    /// Bytes the batch's growable buffers hold (capacities).
    fn held(&self) -> usize {
        self.rows.capacity()
            + self.side.capacity()
            + self.headers.capacity() * std::mem::size_of::<HeaderMeta>()
    }

    fn push_unchecked(
        &mut self,
        record: &Record<'_>,
        metadata: Option<&[u8]>,
        can_be_row: bool,
        options: &RowOptions,
    ) {
        let key = record.key.map(|k| self.copy(k));
        let first = self.headers.len();
        for (k, v) in record.headers {
            let key = self.copy(k);
            let value = v.map(|v| self.copy(v));
            self.headers.push(HeaderMeta { key, value });
        }
        let written = if can_be_row {
            crate::rows::row::write_row(record.value, metadata, options, &mut self.rows)
        } else {
            Written::NotRow
        };
        let body = match written {
            Written::Row(c) => {
                let prefix = self.copy(&record.value.unwrap_or_default()[..c.prefix]);
                Body::Row {
                    row: c.start..self.rows.len() - 1,
                    rest: c.rest,
                    prefix,
                    shape: c.shape,
                }
            }
            Written::Skip => Body::Skip,
            Written::NotRow => Body::Value(record.value.map(|v| self.copy(v))),
        };
        self.messages.push(Meta {
            offset: record.offset,
            timestamp: record.timestamp,
            key,
            headers: first..self.headers.len(),
            body,
        });
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    pub(crate) const META: RowOptions = RowOptions {
        metadata: true,
        max_row_bytes: 1 << 20,
        layout: crate::rows::layout::Layout::DEFAULT,
    };

    pub(crate) fn record<'a>(
        offset: i64,
        value: Option<&'a [u8]>,
        headers: &'a [(&'a [u8], Option<&'a [u8]>)],
    ) -> Record<'a> {
        Record {
            topic: "t",
            partition: 0,
            offset,
            key: Some(b"k"),
            value,
            timestamp: Some((TimestampKind::CreateTime, 5)),
            headers,
        }
    }

    /// Adds `r` as the router does.
    pub(crate) fn push(b: &mut Batch, r: &Record<'_>) {
        let mut meta = Vec::new();
        match crate::rows::record::metadata_of(r, META, &mut meta) {
            Ok(_) => b.push(r, Some(&meta), true, &META),
            Err(_) => b.push(r, None, false, &META),
        }
    }

    /// Whatever a producer writes, a message takes no more of its batch's buffers than the
    /// router planned for it (`layout::row_len`, `layout::side_len`), so what the budget
    /// charged is what is held: values that are no rows (arrays, strings, binary, text that
    /// is not UTF-8 or too long), blanks around the `{`, tombstones, in every layout.
    #[test]
    fn a_message_takes_no_more_of_its_batch_than_the_router_planned() {
        use crate::rows::layout::{Layout, LayoutKind, OnNullValue, ValueFormat};
        let mut x: u64 = 0x00c0_ffee;
        let mut next = move |n: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n
        };
        let pieces: [&[u8]; 12] = [
            b"{",
            b"}",
            b" ",
            b"\n",
            b"\t",
            b"[1,2]",
            b"\"s\"",
            b"\xff\xfe",
            b"null",
            b"\"a\":1",
            b"\x00",
            b"7",
        ];
        for kind in [LayoutKind::Columns, LayoutKind::RecordContent] {
            for value_format in [ValueFormat::Json, ValueFormat::Text] {
                for on_null in [
                    OnNullValue::Write,
                    OnNullValue::Skip,
                    OnNullValue::DeadLetter,
                ] {
                    for metadata in [false, true] {
                        let options = RowOptions {
                            metadata,
                            max_row_bytes: 600,
                            layout: Layout {
                                kind,
                                value_format,
                                on_null,
                                ..Layout::DEFAULT
                            },
                        };
                        for _ in 0..300 {
                            let mut value = Vec::new();
                            let repeat = if next(8) == 0 { 200 } else { 1 };
                            for _ in 0..next(12) {
                                let piece = pieces[next(12) as usize];
                                for _ in 0..repeat {
                                    value.extend_from_slice(piece);
                                }
                            }
                            let value = (next(10) != 0).then_some(&value[..]);
                            let r = record(1, value, &[]);
                            let mut meta = Vec::new();
                            let meta = metadata.then(|| {
                                crate::rows::record::metadata_of(&r, options, &mut meta).unwrap();
                                &meta[..]
                            });
                            let row =
                                crate::rows::row::row_len(value, meta.map(<[u8]>::len), &options);
                            let side = 1 + crate::rows::row::side_len(
                                value,
                                meta.is_some(),
                                row,
                                &options,
                            );
                            let budget = Arc::new(Budget::new(64 << 20));
                            let held = Arc::new(AtomicUsize::new(0));
                            let mut b = Batch::new(16, 16, &Arc::default(), &budget, &held);
                            b.push(&r, meta, true, &options);
                            let what = format!("{value:?} in {options:?}");
                            assert!(
                                b.rows.len() <= row,
                                "rows: {} > {row}: {what}",
                                b.rows.len()
                            );
                            assert!(
                                b.side.len() <= side,
                                "side: {} > {side}: {what}",
                                b.side.len()
                            );
                        }
                    }
                }
            }
        }
    }

    /// A buffer that grows all the same is charged: the budget sees every byte held.
    #[test]
    fn a_buffer_that_grows_is_charged_for_it() {
        let budget = Arc::new(Budget::new(64 << 20));
        let held = Arc::new(AtomicUsize::new(0));
        let mut b = Batch::new(16, 16, &Arc::default(), &budget, &held);
        let before = budget.used();
        let big = vec![b'['; 300 << 10];
        push(&mut b, &record(1, Some(&big), &[]));
        assert!(b.side.capacity() >= big.len());
        assert!(
            budget.used() >= before + big.len() - (16 << 10),
            "{}",
            budget.used()
        );
        assert_eq!(held.load(Ordering::Relaxed), budget.used());
        drop(b);
        assert_eq!((budget.used(), held.load(Ordering::Relaxed)), (0, 0));
    }

    #[test]
    fn a_batch_holds_rows_as_ndjson_and_gives_up_only_the_ones_that_are_not_rows() {
        let budget = Arc::new(Budget::new(1 << 20));
        let held = Arc::new(AtomicUsize::new(0));
        let mut b = Batch::new(4096, 1024, &Arc::default(), &budget, &held);
        let charged = budget.used();
        assert!(charged >= 4096 + 1024);
        assert_eq!(held.load(Ordering::Relaxed), charged);
        let h: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"v")), (b"n", None)];
        let bad_key: &[(&[u8], Option<&[u8]>)] = &[(b"\xff", Some(b"v"))];
        push(&mut b, &record(7, Some(b" {\"a\":\n1}"), h));
        push(&mut b, &record(8, Some(b"{\"a\":"), &[]));
        push(&mut b, &record(9, None, &[]));
        push(&mut b, &record(10, Some(b"[1]"), &[]));
        push(&mut b, &record(11, Some(b"{}"), bad_key));
        push(&mut b, &record(12, Some(b"{ }"), &[]));
        let values: Vec<_> = (0..b.len())
            .map(|i| b.get(i).value().map(|v| v.into_owned()))
            .collect();
        assert_eq!(
            values,
            [
                Some(b" {\"a\":\n1}".to_vec()),
                Some(b"{\"a\":".to_vec()),
                None,
                Some(b"[1]".to_vec()),
                Some(b"{}".to_vec()),
                Some(b"{ }".to_vec())
            ],
            "every value as the producer wrote it"
        );
        let headers: Vec<_> = b.get(0).headers().collect();
        assert_eq!(headers, [(&b"h"[..], Some(&b"v"[..])), (&b"n"[..], None)]);
        let keep: Vec<bool> = (0..b.len()).map(|i| b.finish(i, 1 << 20)).collect();
        // The tombstone (9) is a row of `RECORD_METADATA` alone (`--on-null-value write`).
        assert_eq!(keep, [true, false, true, false, false, true]);
        let rows = b.into_rows(&keep);
        assert_eq!(rows.offsets, [7, 9, 12]);
        let text = String::from_utf8(rows.ndjson.to_vec()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["a"], 1);
        assert_eq!(lines[0]["RECORD_METADATA"]["offset"], 7);
        assert_eq!(lines[0]["RECORD_METADATA"]["headers"]["h"], "v");
        assert_eq!(lines[1].as_object().unwrap().len(), 1, "{text}");
        assert_eq!(lines[1]["RECORD_METADATA"]["offset"], 9);
        assert_eq!(lines[2]["RECORD_METADATA"]["offset"], 12);
        assert_eq!(text.matches('\n').count(), 3, "one line each: {text}");
        drop(rows);
        assert_eq!((budget.used(), held.load(Ordering::Relaxed)), (0, 0));
    }

    #[test]
    fn the_pool_hands_out_its_sizes_and_keeps_what_comes_back_within_its_bound() {
        assert_eq!(size_for(1), Some(0), "16 KB");
        assert_eq!(size_for(40 << 10), Some(2), "64 KB");
        assert_eq!(size_for(BATCH_BYTES), Some(SIZES - 1));
        assert_eq!(size_for(BATCH_BYTES + 1), None);
        assert_eq!(size_index(64 << 10), Some(2));
        assert_eq!(size_index(40 << 10), None, "not one of the sizes");
        let pool = Pool::default();
        let big = pool.take(1 << 20);
        assert_eq!(
            big.capacity(),
            1 << 20,
            "a row larger than any size gets its own"
        );
        pool.give(big);
        let mut a = pool.take(40 << 10);
        assert_eq!(a.capacity(), 64 << 10);
        a.extend_from_slice(b"rows");
        let at = a.as_ptr();
        pool.give(a);
        let again = pool.take(33 << 10);
        assert_eq!(
            (again.as_ptr(), again.len()),
            (at, 0),
            "the same buffer, emptied"
        );
        // At most 2 MiB (and at least 8 buffers) of each size stay idle.
        for _ in 0..100 {
            pool.give(Vec::with_capacity(BATCH_BYTES));
            pool.give(Vec::with_capacity(MIN_BATCH_BYTES));
        }
        let idle = lock(&pool.idle);
        assert_eq!(idle[SIZES - 1].len(), 8);
        assert_eq!(idle[0].len(), 100);
        assert!(idle.iter().flatten().all(|b| b.is_empty()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_size_the_pool_ran_out_of_comes_faulted_in_from_then_on() {
        let pool = Pool::default();
        // A miss: this one is fresh, and from now on buffers of its size are made ahead.
        let first = pool.take(BATCH_BYTES);
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.ahead.waiting(SIZES - 1) < 4 {
            assert!(Instant::now() < deadline, "nothing made ahead");
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut next = pool.take(BATCH_BYTES);
        assert_eq!((next.capacity(), next.len()), (BATCH_BYTES, 0));
        let before = crate::rows::prefault::thread_minor_faults();
        next.resize(BATCH_BYTES, 7);
        let faults = crate::rows::prefault::thread_minor_faults() - before;
        assert!(faults < 8, "{faults} faults filling 64 pages made ahead");
        drop(first);
    }
}
