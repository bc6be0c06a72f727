//! Per-partition [`Batch`]es of rows on their way from the poll thread to a partition's worker,
//! held within one sink-wide byte [`Budget`].
//!
//! The poll thread ([`crate::source::router`]) copies each message once, into its partition's
//! open batch, already as the row it will be: the value (after `{"RECORD_METADATA":{…},` with
//! `--metadata`) and a line break, so the batch's row buffer is the NDJSON the channel takes,
//! with no further copy (`record::write_candidate`; the worker splits the batch in one call,
//! [`Batch::split`]: each row validated in place, the few that are not rows taken out as dead
//! letters, and hands the buffer to the SDK). Keys, headers and values that cannot be rows go
//! to a side buffer.
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
//! charge); a buffer that grows is charged for its growth. The poll thread stops reading, and
//! the router pauses a partition whose worker is stuck (or that holds five eighths of it),
//! against the same budget.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::lock::lock;
use crate::rows::layout::Shape;
use crate::rows::offset::KafkaOffset;
use crate::rows::prefault::Prefault;
use crate::rows::record::{Record, RowOptions, TimestampKind};
use crate::rows::row::Written;

pub(crate) use budget::Budget;

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

/// Buffers of the five sizes from `MIN_BATCH_BYTES` (16 KB) to `BATCH_BYTES` (256 KB), each
/// twice the last: batches' row and side buffers, back from the SDK once it has compressed them
/// (or from the worker), for the next batches. A new buffer is fresh memory whose pages the
/// kernel must fault in and zero; with a buffer per batch that was about a tenth of the sink's
/// CPU. At most `POOLED_BYTES` (2 MiB, and at least 8 buffers) of each size are kept idle, 10
/// MiB in all, which the budget's slack covers.
#[derive(Debug)]
pub(crate) struct Pool {
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
pub(crate) struct Charge {
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
        self.budget.charge(bytes);
        self.partition.fetch_add(bytes, Ordering::Relaxed);
        self.bytes += bytes;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
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
    offset: KafkaOffset,
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
    pub offset: KafkaOffset,
    /// Its timestamp, if the broker reported one.
    pub timestamp: Option<(TimestampKind, i64)>,
    /// Its key.
    pub key: Option<&'a [u8]>,
    headers: &'a [HeaderMeta],
    body: &'a Body,
    /// The batch's side buffer and its row buffer (or the rows taken from it, [`Kept`]).
    side: &'a [u8],
    rows: &'a [u8],
}

impl<'a> Msg<'a> {
    /// Its headers in order, keys and values as bytes.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        let side = self.side;
        self.headers
            .iter()
            .map(move |h| (&side[h.key.clone()], h.value.clone().map(|v| &side[v])))
    }

    /// This message as a [`Record`] of `topic`'s `partition`, with the `headers` and `value`
    /// its caller holds (from [`Msg::headers`] and [`Msg::value`]).
    pub fn record<'r>(
        &self,
        topic: &'r str,
        partition: i32,
        headers: &'r [(&'r [u8], Option<&'r [u8]>)],
        value: Option<&'r [u8]>,
    ) -> Record<'r>
    where
        'a: 'r,
    {
        Record {
            topic,
            partition,
            offset: self.offset,
            key: self.key,
            value,
            timestamp: self.timestamp,
            headers,
        }
    }

    /// Its value as the producer wrote it (`None`: a tombstone).
    pub fn value(&self) -> Option<std::borrow::Cow<'a, [u8]>> {
        match self.body {
            Body::Value(v) => v.clone().map(|v| self.side[v].into()),
            Body::Skip => None,
            Body::Row {
                row,
                rest,
                prefix,
                shape,
            } => crate::rows::row::value_of(
                &self.side[prefix.clone()],
                &self.rows[*rest..row.end],
                *shape,
            )
            .map(Into::into),
        }
    }
}

/// A batch's rows, taken for an append ([`Batch::split`]); named apart from the SDK's
/// `Rows`, which they become: the NDJSON and its tokens, the budget charge to hold until the
/// SDK has them, and the rows' messages as they came (for the dead letters of rows refused
/// later, [`TakenRows::letters`]) until [`TakenRows::into_parts`].
pub(crate) struct TakenRows {
    /// One row per line (its buffer goes back to the batches' pool when dropped).
    pub ndjson: bytes::Bytes,
    /// Each row's offset token ([`KafkaOffset::token`]), in order, as the SDK takes them.
    pub tokens: Vec<u64>,
    /// Released when dropped.
    pub charge: Charge,
    /// The rows' messages.
    kept: Kept,
}

/// The messages of a batch's rows once their rows are taken: each [`Meta`] pointing into the
/// taken rows (`rows`, before any normalization), the side buffer (back to the pool when
/// dropped).
struct Kept {
    messages: Vec<Meta>,
    headers: Vec<HeaderMeta>,
    side: Lent,
    rows: bytes::Bytes,
}

impl<'a> Msg<'a> {
    /// Message `m` of a batch whose header list, side buffer and rows are these.
    fn of(m: &'a Meta, headers: &'a [HeaderMeta], side: &'a [u8], rows: &'a [u8]) -> Self {
        Msg {
            offset: m.offset,
            timestamp: m.timestamp,
            key: m.key.clone().map(|r| &side[r]),
            headers: &headers[m.headers.clone()],
            body: &m.body,
            side,
            rows,
        }
    }
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
        Msg::of(m, &self.headers, &self.side, &self.rows)
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
    pub fn offset(&self, i: usize) -> KafkaOffset {
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

    /// Message `i`'s row (without its line feed), once [`finish`](Self::finish) accepted it.
    pub fn row(&self, i: usize) -> Option<&[u8]> {
        match &self.messages[i].body {
            Body::Row { row, .. } => Some(&self.rows[row.clone()]),
            _ => None,
        }
    }

    /// Whether message `i` is a tombstone skipped (`--on-null-value`): no row and no dead
    /// letter.
    pub fn skipped(&self, i: usize) -> bool {
        matches!(self.messages[i].body, Body::Skip)
    }

    /// The rows of the messages `keep` says (one flag per message; only rows that
    /// [`finish`](Self::finish) accepted), moved together in place: the batch's buffer is the
    /// NDJSON, copied only after a message it leaves out. The rows' messages are kept with
    /// them ([`TakenRows::letters`]).
    fn into_taken(mut self, keep: &[bool]) -> TakenRows {
        let mut w = 0;
        let mut tokens = Vec::with_capacity(self.messages.len());
        let mut messages = std::mem::take(&mut self.messages);
        let mut keep = keep.iter();
        messages.retain_mut(|m| {
            let k = keep.next().copied().unwrap_or(false);
            let Body::Row { row, rest, .. } = &mut m.body else {
                return false;
            };
            if !k {
                return false;
            }
            let line = row.start..row.end + 1;
            if line.start != w {
                self.rows.copy_within(line.clone(), w);
            }
            // Where the row is now.
            *rest = *rest - row.start + w;
            *row = w..w + line.len() - 1;
            w += line.len();
            tokens.push(m.offset.token());
            true
        });
        self.rows.truncate(w);
        let side = Lent {
            buf: std::mem::take(&mut self.side),
            pool: Arc::clone(&self.pool),
        };
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
        let kept = Kept {
            messages,
            headers: std::mem::take(&mut self.headers),
            side,
            rows: ndjson.clone(),
        };
        TakenRows {
            ndjson,
            tokens,
            charge: self.charge,
            kept,
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

mod budget;
mod split;
#[cfg(test)]
pub(crate) mod tests;

pub(crate) use split::{check_rows, Letter, Split};
