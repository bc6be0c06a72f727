//! Messages on their way from librdkafka to a partition's worker: copied once into
//! per-partition [`Batch`]es on the poll thread, and held within one sink-wide byte budget.
//!
//! The poll thread copies each message once, into its partition's open batch, already as the
//! row it will be: the value (after `{"RECORD_METADATA":{…},` with `--metadata`) and a line
//! break, so the batch's row buffer is the NDJSON the channel takes, with no further copy
//! (`record::write_candidate`; the worker only validates each row in place, removes the few
//! that are not rows, and hands the buffer to the SDK). Keys, headers and values that cannot be
//! rows go to a side buffer. A batch goes to the worker when it is full, or when librdkafka has
//! nothing more to give right now and the batch has waited its hold: a twentieth of
//! `max_client_lag`, at most 50 ms ([`hold_for`]); a paused partition's at once. A busy
//! partition fills its batches long before, and moves a few hundred messages per hand-off. A
//! partition that brings a few messages per fetch would otherwise hand each few over on its
//! own, and each hand-off is a worker's wake-up and an append to the SDK: at 20,000 messages
//! of 1 KB a second over 96 partitions that was about a third of the sink's CPU
//! (`kafka/README.md`, "Cost and throughput", steady state). The channel holds rows for
//! `max_client_lag` anyway, so the hold adds at most a twentieth to a row's time to Snowflake.
//!
//! **Buffers.** A batch's row buffer is sized by what its partition's last batch held (half
//! again, 16 to 256 KB, one of five sizes) and comes from a [`Pool`] the SDK hands buffers back
//! to once it has compressed them. With many partitions each burst brings a partition a few
//! tens of KB: a batch then fills most of its buffer, which goes to the SDK as it is, and
//! memory is reused rather than freshly faulted in. A batch under a quarter full moves its rows
//! to a pooled buffer of their size first, so the SDK, which charges only the rows, never holds
//! more than about twice what it charged. A size the pool has run out of is made ahead, faulted
//! in on a thread of its own ([`crate::rows::prefault`]), so that a sink catching up on a backlog,
//! whose batches are all fresh memory until the first commits, does not make the poll thread
//! wait for the kernel's page faults.
//!
//! **Memory.** Every batch is charged to a [`Budget`] from the moment its buffer is allocated
//! until the worker has appended its rows (dropping the batch releases the charge). The poll
//! thread pauses a partition when the sink as a whole is over budget, or when the partition
//! holds more than its fair share (the budget over the partitions assigned), and resumes it once
//! both are comfortably below (three quarters of the budget, half the share). A slow channel
//! therefore stops only its own partition, and a partition that is paused still gets the
//! messages librdkafka had already fetched: they are charged like any other, which the limit on
//! librdkafka's own prefetch (set from the same budget, see `config`) bounds.
//!
//! **Headers are read as bytes.** rdkafka's `Headers::iter` panics on a key that is not UTF-8;
//! here headers are read through librdkafka's C API, and a message with such a key becomes a
//! dead letter naming the problem (`record`), never a panic.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::consumer::Consumer;
use rdkafka::Timestamp;
use tokio::sync::mpsc;

use crate::kafka::consumer::{one, Part};
use crate::kafka::fetch_queue::Native;
use crate::rows::layout::{Shape, Written};
use crate::rows::prefault::Prefault;
use crate::rows::record::{Record, RowOptions, TimestampKind};

/// A batch is handed to its worker once its row buffer holds this much, at most.
const BATCH_BYTES: usize = 256 << 10;
/// The smallest row buffer a batch starts with.
const MIN_BATCH_BYTES: usize = 16 << 10;
/// Room for keys, headers and values that are not rows, per batch (more for a larger one).
const SIDE_BYTES: usize = 16 << 10;
/// The longest a part-full batch waits for more (see [`hold_for`]).
const MAX_HOLD: Duration = Duration::from_millis(50);

/// How long a part-full batch waits on the poll thread for more of its partition's messages,
/// for a sink whose channels batch by `max_client_lag`: a twentieth of it, at most
/// 50 ms (see the module docs).
pub fn hold_for(max_client_lag: Duration) -> Duration {
    (max_client_lag / 20).min(MAX_HOLD)
}

/// How often paused partitions are looked at for a resume.
const RESUME_CHECK: Duration = Duration::from_millis(10);
/// Idle buffers kept per size for the next batches, at most this many bytes of each size (and
/// at least 8 buffers): 10 MiB in all over the five sizes.
const POOLED_BYTES: usize = 2 << 20;
/// Per message, what a batch holds besides the bytes (its [`Meta`]), as charged.
const META_BYTES: usize = std::mem::size_of::<Meta>();

/// The sink-wide byte budget of the batches between the poll thread and the workers.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
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
        let idle = crate::kafka::consumer::lock(&self.idle)[i].pop();
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
        let mut idle = crate::kafka::consumer::lock(&self.idle);
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
    rows: Vec<u8>,
    pool: Arc<Pool>,
    side: Vec<u8>,
    messages: Vec<Meta>,
    headers: Vec<HeaderMeta>,
    charge: Charge,
    /// When it was started (a part-full batch waits the router's hold from then).
    opened: Instant,
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
            } => crate::rows::layout::value_of(
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
    fn new(
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
            } => crate::rows::layout::finish(
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

    fn room(&self) -> usize {
        self.rows.capacity() - self.rows.len()
    }

    fn side_room(&self) -> usize {
        self.side.capacity() - self.side.len()
    }

    fn copy(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.side.len();
        self.side.extend_from_slice(bytes);
        start..self.side.len()
    }

    /// Adds a message: its candidate row into `rows` (when it can be a row, with `metadata`
    /// when given, as `options` say), the rest into `side`.
    fn push(
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
            crate::rows::layout::write_row(record.value, metadata, options, &mut self.rows)
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

/// The headers of `m` as bytes (see the module docs), by librdkafka's C API.
fn headers_of<'m>(m: &Native<'m>) -> Vec<(&'m [u8], Option<&'m [u8]>)> {
    let mut out = Vec::new();
    let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `m.ptr()` is a message that lives for 'm; librdkafka returns a
    // pointer to headers the message owns (or an error and no pointer), valid as long as the
    // message, which outlives the returned slices ('m).
    #[allow(unsafe_code)]
    unsafe {
        if rd::rd_kafka_message_headers(m.ptr(), &mut hdrs)
            != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            || hdrs.is_null()
        {
            return out;
        }
        let count = rd::rd_kafka_header_cnt(hdrs);
        out.reserve(count);
        for idx in 0..count {
            let mut name: *const std::os::raw::c_char = std::ptr::null();
            let mut value: *const std::os::raw::c_void = std::ptr::null();
            let mut size = 0usize;
            if rd::rd_kafka_header_get_all(hdrs, idx, &mut name, &mut value, &mut size)
                != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                || name.is_null()
            {
                continue;
            }
            let key = std::ffi::CStr::from_ptr(name).to_bytes();
            let value =
                (!value.is_null()).then(|| std::slice::from_raw_parts(value.cast::<u8>(), size));
            out.push((key, value));
        }
    }
    out
}

fn timestamp_of(m: &Native<'_>) -> Option<(TimestampKind, i64)> {
    match m.timestamp() {
        Timestamp::CreateTime(ms) => Some((TimestampKind::CreateTime, ms)),
        Timestamp::LogAppendTime(ms) => Some((TimestampKind::LogAppendTime, ms)),
        Timestamp::NotAvailable => None,
    }
}

/// A partition's place on the poll thread.
struct Slot {
    topic: Arc<str>,
    partition: i32,
    /// Which assignment of the partition this is ([`Inbox::id`]).
    id: u64,
    /// Waiting for its start offset (assigned before its channel was open): its messages are
    /// dropped, librdkafka fetches them again from the start.
    awaiting: bool,
    tx: mpsc::UnboundedSender<Batch>,
    open: Option<Batch>,
    /// Bytes of this partition's batches not yet appended.
    held: Arc<AtomicUsize>,
    paused: bool,
    /// The row bytes of its last batch handed over, which size its next batch's buffer.
    last: usize,
}

impl Slot {
    /// Hands the open batch, if any, to the worker.
    fn hand_over(&mut self) {
        hand_over(&mut self.open, &mut self.last, &self.tx);
    }
}

/// Hands a slot's `open` batch, if any, to its worker (`tx`), noting its size in `last`.
fn hand_over(open: &mut Option<Batch>, last: &mut usize, tx: &mpsc::UnboundedSender<Batch>) {
    if let Some(b) = open.take() {
        *last = b.rows.len();
        let _ = tx.send(b);
    }
}

/// The row buffer for a partition's next batch, for a first row of `row` bytes: half again
/// what its `last` batch held (so a partition that brings about as much each time fills it,
/// and one that brings more grows it), between 16 and 256 KB; larger for a larger row.
fn next_batch_bytes(last: usize, row: usize) -> usize {
    (last + last / 2)
        .clamp(MIN_BATCH_BYTES, BATCH_BYTES)
        .max(row)
}

/// The assigned partitions' slots, found by topic and partition.
#[derive(Default)]
struct Slots {
    all: Vec<Slot>,
    index: HashMap<Arc<str>, HashMap<i32, usize>>,
}

impl Slots {
    /// Where the slot of `topic`/`partition` is in [`all`](Self::all).
    fn find(&self, topic: &str, partition: i32) -> Option<usize> {
        self.index.get(topic)?.get(&partition).copied()
    }

    /// Adds `slot`, or puts it in the place of the one its partition had (returned).
    fn insert(&mut self, slot: Slot) -> Option<Slot> {
        if let Some(at) = self.find(&slot.topic, slot.partition) {
            return Some(std::mem::replace(&mut self.all[at], slot));
        }
        self.index
            .entry(Arc::clone(&slot.topic))
            .or_default()
            .insert(slot.partition, self.all.len());
        self.all.push(slot);
        None
    }

    /// Takes out the slot of `topic`/`partition`; the last slot takes its place.
    fn remove(&mut self, topic: &str, partition: i32) -> Option<Slot> {
        let parts = self.index.get_mut(topic)?;
        let at = parts.remove(&partition)?;
        if parts.is_empty() {
            self.index.remove(topic);
        }
        let slot = self.all.swap_remove(at);
        if let Some(moved) = self.all.get(at) {
            if let Some(i) = self
                .index
                .get_mut(&moved.topic)
                .and_then(|p| p.get_mut(&moved.partition))
            {
                *i = at;
            }
        }
        Some(slot)
    }
}

/// The slot of the last message routed. librdkafka hands over a partition's fetched messages
/// together, so most messages are of the same partition as the one before: they are routed
/// without hashing their topic's name or checking that it is UTF-8 (at 100 B messages that
/// was a sixth of the poll thread's time).
#[derive(Clone, Copy)]
struct Recent {
    /// The message's topic handle (`Native::topic_handle`).
    topic: usize,
    partition: i32,
    slot: usize,
}

/// What the worker of a newly assigned partition receives.
pub struct Inbox {
    /// Its batches.
    pub batches: mpsc::UnboundedReceiver<Batch>,
    /// Which assignment of the partition this is: unique within the router, so that a worker's
    /// request about its partition is told from an earlier worker's ([`Router::holds`]).
    pub id: u64,
}

/// Routes messages into their partitions' batches and pauses and resumes partitions against
/// the budget (see the module docs). Lives on the poll thread.
pub struct Router {
    budget: Arc<Budget>,
    pool: Arc<Pool>,
    read_headers: bool,
    options: RowOptions,
    /// Values are copied as they are, for the worker to decode (`value_format`).
    raw_values: bool,
    scratch: Vec<u8>,
    /// How long a part-full batch waits for more before [`flush`](Self::flush) hands it over.
    hold: Duration,
    slots: Slots,
    /// Forgotten whenever a slot is added or removed (a slot's place may change, and a topic
    /// handle is only known to be its topic's while one of its partitions is assigned).
    recent: Option<Recent>,
    /// The next [`Inbox::id`].
    next_id: u64,
    assigned: usize,
    paused: usize,
    checked: Instant,
}

impl Router {
    /// A router charging `budget`, writing rows as `options` say; it reads messages' headers
    /// only when `read_headers` (metadata or dead letters need them: librdkafka parses them
    /// anew for every message it is asked for).
    pub fn new(budget: Arc<Budget>, options: RowOptions, read_headers: bool) -> Self {
        Self {
            budget,
            pool: Arc::default(),
            read_headers,
            options,
            raw_values: false,
            scratch: Vec::new(),
            hold: Duration::ZERO,
            slots: Slots::default(),
            recent: None,
            next_id: 0,
            assigned: 0,
            paused: 0,
            checked: Instant::now(),
        }
    }

    /// Copies values as they are (no candidate row): a Schema Registry `--value-format`,
    /// decoded by the partition's worker (`value_format::Decoder::rows`).
    #[must_use]
    pub fn with_raw_values(mut self, raw: bool) -> Self {
        self.raw_values = raw;
        self
    }

    /// Lets a part-full batch wait up to `hold` for more of its partition's messages before
    /// [`flush`](Self::flush) hands it over (zero: at the end of every poll burst). See
    /// [`hold_for`].
    #[must_use]
    pub fn with_hold(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }

    /// Partitions paused now.
    pub fn paused(&self) -> usize {
        self.paused
    }

    /// A partition was assigned: its inbox, for its worker.
    pub fn add(&mut self, part: &Part) -> Inbox {
        let (tx, batches) = mpsc::unbounded_channel();
        let id = self.next_id;
        self.next_id += 1;
        let slot = Slot {
            topic: Arc::from(part.0.as_str()),
            partition: part.1,
            id,
            awaiting: false,
            tx,
            open: None,
            held: Arc::default(),
            paused: false,
            last: 0,
        };
        self.recent = None;
        if let Some(old) = self.slots.insert(slot) {
            self.paused -= usize::from(old.paused);
        } else {
            self.assigned += 1;
        }
        Inbox { batches, id }
    }

    /// Where the slot of `part` is while it is assigned here as assignment `id`
    /// ([`Inbox::id`]).
    fn assignment(&self, part: &Part, id: u64) -> Option<usize> {
        self.slots
            .find(&part.0, part.1)
            .filter(|&at| self.slots.all[at].id == id)
    }

    /// `part`, assigned here as `id`, waits for its start offset: its messages are dropped
    /// until [`started`](Self::started).
    pub fn await_start(&mut self, part: &Part, id: u64) {
        if let Some(at) = self.assignment(part, id) {
            self.slots.all[at].awaiting = true;
        }
    }

    /// Whether `part` is assigned here as `id` and waits for its start offset.
    pub fn awaits(&self, part: &Part, id: u64) -> bool {
        self.assignment(part, id)
            .is_some_and(|at| self.slots.all[at].awaiting)
    }

    /// `part` has its start offset: whether it is still assigned here as `id` and was waiting.
    pub fn started(&mut self, part: &Part, id: u64) -> bool {
        self.assignment(part, id)
            .is_some_and(|at| std::mem::take(&mut self.slots.all[at].awaiting))
    }

    /// Whether `topic`/`partition` is assigned here.
    pub fn has(&self, topic: &str, partition: i32) -> bool {
        self.slots.find(topic, partition).is_some()
    }

    /// Whether `part` is assigned here as assignment `id` ([`Inbox::id`]) still.
    pub fn holds(&self, part: &Part, id: u64) -> bool {
        self.assignment(part, id).is_some()
    }

    /// A partition was revoked: its open batch is dropped (the next owner reads it again).
    /// A partition paused for memory is resumed first: the pause is this router's, and a
    /// later assignment of the partition to this instance starts with a fresh slot that knows
    /// nothing of it.
    pub fn remove<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
        &mut self,
        consumer: &C,
        part: &Part,
    ) {
        self.recent = None;
        if let Some(slot) = self.slots.remove(&part.0, part.1) {
            self.assigned -= 1;
            if slot.paused {
                self.paused -= 1;
            }
            if slot.paused || slot.awaiting {
                let _ = consumer.resume(&one(&part.0, part.1));
            }
        }
    }

    /// Where the slot of `m`'s partition is, if it is assigned.
    fn slot_of(&mut self, m: &Native<'_>) -> Option<usize> {
        let (topic, partition) = (m.topic_handle(), m.partition());
        if let Some(r) = self.recent {
            if r.topic == topic && r.partition == partition {
                return Some(r.slot);
            }
        }
        let slot = self.slots.find(m.topic(), partition)?;
        self.recent = Some(Recent {
            topic,
            partition,
            slot,
        });
        Some(slot)
    }

    /// The most one partition may hold before it is paused: its fair share of the budget, but
    /// at least two batches.
    fn share(&self) -> usize {
        (self.budget.limit / self.assigned.max(1)).max(2 * BATCH_BYTES)
    }

    /// Copies `m` into its partition's batch; hands the batch over when full; pauses the
    /// partition when it or the sink is over budget.
    pub fn route<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
        &mut self,
        consumer: &C,
        m: &Native<'_>,
    ) {
        let share = self.share();
        let Some(at) = self.slot_of(m) else {
            return; // revoked meanwhile: the next owner reads it
        };
        if self.slots.all[at].awaiting {
            return; // fetched before its start offset was known: fetched again from there
        }
        let Slot {
            topic,
            partition,
            id: _,
            awaiting: _,
            tx,
            open,
            held,
            paused,
            last,
        } = &mut self.slots.all[at];
        let headers = if self.read_headers {
            headers_of(m)
        } else {
            Vec::new()
        };
        let record = Record {
            topic,
            partition: *partition,
            offset: m.offset(),
            key: m.key(),
            value: m.payload(),
            timestamp: timestamp_of(m),
            headers: &headers,
        };
        // The metadata first: it decides the row's size (a key or header its converter cannot
        // read makes the message no row at all). Values kept raw (Schema Registry formats) get
        // theirs where they are decoded, on the partition's worker, so none is written here.
        let (can_be_row, metadata) = if self.raw_values {
            (false, None)
        } else {
            match crate::rows::record::metadata_of(&record, self.options, &mut self.scratch) {
                Ok(true) => (true, Some(&self.scratch[..])),
                Ok(false) => (true, None),
                Err(_) => (false, None),
            }
        };
        let row = if can_be_row {
            crate::rows::layout::row_len(record.value, metadata.map(<[u8]>::len), &self.options)
        } else {
            0
        };
        let side = record.key.map_or(0, <[u8]>::len)
            + headers
                .iter()
                .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len))
                .sum::<usize>()
            + if row == 0 {
                record.value.map_or(0, <[u8]>::len)
            } else {
                // The value, whole, when it will be no row; else the bytes before the row's
                // own (blanks and the `{` metadata replaces).
                crate::rows::layout::side_len(record.value, metadata.is_some(), row, &self.options)
            };
        // A batch's buffers are sized for what goes in, so what was charged is what is held
        // (`Batch::push` charges any growth all the same).
        let full = |b: &Batch| {
            b.room() < row || b.side_room() < side || b.messages.len() == b.messages.capacity()
        };
        if open.as_ref().is_some_and(full) {
            hand_over(open, last, tx);
        }
        let bytes = next_batch_bytes(*last, row);
        let batch = open.get_or_insert_with(|| {
            Batch::new(bytes, side.max(SIDE_BYTES), &self.pool, &self.budget, held)
        });
        batch.push(&record, metadata, can_be_row, &self.options);
        if batch.room() == 0 || batch.messages.len() == batch.messages.capacity() {
            hand_over(open, last, tx);
        }
        let over = self.budget.used() > self.budget.limit || held.load(Ordering::Relaxed) > share;
        if over && !*paused {
            *paused = true;
            self.paused += 1;
            let _ = consumer.pause(&one(topic, *partition));
        }
    }

    /// Hands open batches to their workers (librdkafka has nothing more right now): those
    /// older than the hold (all of them without one), and those of paused partitions.
    pub fn flush(&mut self) {
        let now = (!self.hold.is_zero()).then(Instant::now);
        for slot in &mut self.slots.all {
            let due = |b: &Batch| now.is_none_or(|now| now.duration_since(b.opened) >= self.hold);
            if slot.paused || slot.open.as_ref().is_some_and(due) {
                slot.hand_over();
            }
        }
    }

    /// Resumes the paused partitions that are below half their share while the sink is below
    /// three quarters of its budget (looked at every 10 ms at most).
    pub fn resume<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(&mut self, consumer: &C) {
        if self.paused == 0 || self.checked.elapsed() < RESUME_CHECK {
            return;
        }
        self.checked = Instant::now();
        if self.budget.used() > self.budget.limit / 4 * 3 {
            return;
        }
        let half = self.share() / 2;
        let mut resumed = 0;
        for slot in &mut self.slots.all {
            if slot.paused && slot.held.load(Ordering::Relaxed) <= half {
                slot.paused = false;
                resumed += 1;
                let _ = consumer.resume(&one(&slot.topic, slot.partition));
            }
        }
        self.paused -= resumed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: RowOptions = RowOptions {
        metadata: true,
        max_row_bytes: 1 << 20,
        layout: crate::rows::layout::Layout::DEFAULT,
    };

    fn record<'a>(
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
    fn push(b: &mut Batch, r: &Record<'_>) {
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
                            let row = crate::rows::layout::row_len(
                                value,
                                meta.map(<[u8]>::len),
                                &options,
                            );
                            let side = 1 + crate::rows::layout::side_len(
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
        let idle = crate::kafka::consumer::lock(&pool.idle);
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

    #[test]
    fn a_partitions_next_batch_is_sized_by_its_last_and_rows_are_lent_without_a_copy() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut slot = Slot {
            topic: Arc::from("t"),
            partition: 0,
            id: 0,
            awaiting: false,
            tx,
            open: None,
            held: Arc::default(),
            paused: false,
            last: 0,
        };
        assert_eq!(next_batch_bytes(slot.last, 100), MIN_BATCH_BYTES);
        assert_eq!(
            next_batch_bytes(slot.last, 1 << 20),
            1 << 20,
            "a large row fits"
        );
        let budget = Arc::new(Budget::new(64 << 20));
        let pool = Arc::new(Pool::default());
        // Bursts of about 36 KB (1.2 KB rows with their metadata): batches of 64 KB (half
        // again, rounded up to a size).
        let value = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1000));
        for burst in 0..3 {
            let bytes = next_batch_bytes(slot.last, value.len());
            let mut b = Batch::new(bytes, SIDE_BYTES, &pool, &budget, &slot.held);
            for i in 0..30 {
                push(
                    &mut b,
                    &record(burst * 100 + i, Some(value.as_bytes()), &[]),
                );
            }
            slot.open = Some(b);
            slot.hand_over();
            let b = rx.try_recv().unwrap();
            if burst > 0 {
                assert_eq!(b.rows.capacity(), 64 << 10, "burst {burst}");
            }
            let buffer = b.rows.as_ptr();
            let keep = vec![true; b.len()];
            let mut b = b;
            for i in 0..b.len() {
                assert!(b.finish(i, 1 << 20));
            }
            let rows = b.into_rows(&keep);
            if burst > 0 {
                assert_eq!(rows.ndjson.as_ptr(), buffer, "lent as it is, no copy");
            }
            assert_eq!(rows.offsets.len(), 30);
        }
        assert!(slot.last > 30_000 && slot.last < 43_000, "{}", slot.last);
        // A batch less than a quarter full: its rows move to a buffer of their size.
        let mut b = Batch::new(BATCH_BYTES, SIDE_BYTES, &pool, &budget, &slot.held);
        for i in 0..10 {
            push(&mut b, &record(1_000 + i, Some(value.as_bytes()), &[]));
        }
        let keep = vec![true; b.len()];
        for i in 0..b.len() {
            assert!(b.finish(i, 1 << 20));
        }
        let rows = b.into_rows(&keep);
        assert!(rows.ndjson.len() > 10_000 && rows.ndjson.len() < 16 << 10);
        let lines: Vec<serde_json::Value> = std::str::from_utf8(&rows.ndjson)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 10);
        assert_eq!(lines[9]["RECORD_METADATA"]["offset"], 1_009);
        drop(rows);
        assert_eq!(budget.used(), 0);
    }

    impl Router {
        fn slot_mut(&mut self, topic: &str, partition: i32) -> &mut Slot {
            let at = self.slots.find(topic, partition).expect("assigned");
            &mut self.slots.all[at]
        }
    }

    /// Partitions come and go in any order; each is found in its own slot after every change,
    /// and a revoked one is not found.
    #[test]
    fn every_assigned_partition_finds_its_own_slot_whatever_came_and_went() {
        let mut r = Router::new(Arc::new(Budget::new(64 << 20)), META, true);
        let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .set("group.id", "g")
            .create()
            .unwrap();
        let mut assigned: Vec<Part> = Vec::new();
        let mut inboxes = Vec::new();
        // A fixed sequence of adds and removes over two topics (a small LCG, seeded).
        let mut x: u64 = 0x5eed;
        for _ in 0..400 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let topic = if (x >> 63) == 0 { "a" } else { "b" };
            let part: Part = (topic.to_owned(), ((x >> 40) % 16) as i32);
            if (x >> 62) & 1 == 0 || assigned.is_empty() {
                inboxes.push(r.add(&part));
                if !assigned.contains(&part) {
                    assigned.push(part);
                }
            } else {
                let gone = assigned.swap_remove((x >> 20) as usize % assigned.len());
                r.remove(&consumer, &gone);
                assert_eq!(r.slots.find(&gone.0, gone.1), None, "{gone:?} revoked");
            }
            assert_eq!(r.assigned, assigned.len());
            assert_eq!(r.slots.all.len(), assigned.len());
            for (topic, partition) in &assigned {
                let slot = r.slot_mut(topic, *partition);
                assert_eq!((&*slot.topic, slot.partition), (topic.as_str(), *partition));
                let id = slot.id;
                let part = (topic.clone(), *partition);
                assert!(r.holds(&part, id) && !r.holds(&part, id + 1_000_000));
            }
        }
    }

    #[test]
    fn a_partition_may_hold_its_share_of_the_budget_and_at_least_two_batches() {
        let mut r = Router::new(Arc::new(Budget::new(64 << 20)), META, true);
        let parts: Vec<Part> = (0..8).map(|p| ("t".to_owned(), p)).collect();
        let inboxes: Vec<_> = parts.iter().map(|p| r.add(p)).collect();
        assert_eq!(r.share(), 8 << 20);
        // Not connected: pausing and resuming only change librdkafka's local state.
        let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .set("group.id", "g")
            .create()
            .unwrap();
        r.slot_mut("t", 0).paused = true;
        r.paused = 1;
        for p in &parts[..4] {
            r.remove(&consumer, p);
        }
        assert_eq!((r.assigned, r.share(), r.paused()), (4, 16 << 20, 0));
        let mut small = Router::new(Arc::new(Budget::new(1 << 20)), META, true);
        let _inboxes: Vec<_> = parts.iter().map(|p| small.add(p)).collect();
        assert_eq!(small.share(), 2 * BATCH_BYTES);
        drop(inboxes);
    }

    /// A part-full batch waits out its hold for more messages; an old one, a paused
    /// partition's, and any without a hold go at the burst's end.
    #[test]
    fn a_part_full_batch_waits_its_hold_then_goes() {
        assert_eq!(hold_for(Duration::from_secs(1)), Duration::from_millis(50));
        assert_eq!(
            hold_for(Duration::from_millis(100)),
            Duration::from_millis(5)
        );
        assert_eq!(hold_for(Duration::from_secs(60)), MAX_HOLD);
        let hold = Duration::from_millis(50);
        let part: Part = ("t".to_owned(), 0);
        for (held, paused, goes) in [
            (Duration::ZERO, false, false),
            (hold, false, true),
            (Duration::ZERO, true, true),
        ] {
            let mut r = Router::new(Arc::new(Budget::new(64 << 20)), META, true).with_hold(hold);
            let mut inbox = r.add(&part);
            let charged = Arc::clone(&r.slot_mut("t", 0).held);
            let mut b = Batch::new(MIN_BATCH_BYTES, SIDE_BYTES, &r.pool, &r.budget, &charged);
            push(&mut b, &record(7, Some(b"{}"), &[]));
            let Some(opened) = Instant::now().checked_sub(held) else {
                return; // a clock younger than the hold: nothing to learn
            };
            b.opened = opened;
            let slot = r.slot_mut("t", 0);
            slot.open = Some(b);
            slot.paused = paused;
            r.flush();
            assert_eq!(inbox.batches.try_recv().is_ok(), goes, "{held:?} {paused}");
        }
        let mut r = Router::new(Arc::new(Budget::new(64 << 20)), META, true);
        let mut inbox = r.add(&part);
        let charged = Arc::clone(&r.slot_mut("t", 0).held);
        let mut b = Batch::new(MIN_BATCH_BYTES, SIDE_BYTES, &r.pool, &r.budget, &charged);
        push(&mut b, &record(7, Some(b"{}"), &[]));
        r.slot_mut("t", 0).open = Some(b);
        r.flush();
        assert!(
            inbox.batches.try_recv().is_ok(),
            "no hold: at the burst's end"
        );
    }
}
