//! Messages on their way from librdkafka to a partition's worker: copied once into
//! per-partition [`Batch`]es on the poll thread, and held within one sink-wide byte budget.
//!
//! The poll thread copies each message's key, value and headers into its partition's open
//! batch (one buffer, no allocation per message) and hands a batch to the worker when it is
//! full or when librdkafka has nothing more to give right now; so a busy partition moves a few
//! hundred messages per hand-off and a quiet one is never held back.
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
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Timestamp, TopicPartitionList};
use tokio::sync::mpsc;

use crate::consumer::Part;
use crate::record::TimestampKind;

/// A batch is handed to its worker once its buffer holds this much.
const BATCH_BYTES: usize = 256 << 10;
/// How often paused partitions are looked at for a resume.
const RESUME_CHECK: Duration = Duration::from_millis(10);
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

/// Bytes held by one batch, released when it is dropped.
#[derive(Debug)]
struct Charge {
    bytes: usize,
    budget: Arc<Budget>,
    partition: Arc<AtomicUsize>,
}

impl Charge {
    fn new(bytes: usize, budget: &Arc<Budget>, partition: &Arc<AtomicUsize>) -> Self {
        budget.used.fetch_add(bytes, Ordering::Relaxed);
        partition.fetch_add(bytes, Ordering::Relaxed);
        Self {
            bytes,
            budget: Arc::clone(budget),
            partition: Arc::clone(partition),
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::Relaxed);
        self.partition.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// One message's parts, as ranges of its batch's buffer.
#[derive(Debug, Clone)]
struct Meta {
    offset: i64,
    timestamp: Option<(TimestampKind, i64)>,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    headers: Range<usize>,
}

/// One header: its key and value, as ranges of the batch's buffer.
#[derive(Debug, Clone)]
struct HeaderMeta {
    key: Range<usize>,
    value: Option<Range<usize>>,
}

/// Messages of one partition, in offset order, copied out of librdkafka.
#[derive(Debug)]
pub struct Batch {
    data: Vec<u8>,
    messages: Vec<Meta>,
    headers: Vec<HeaderMeta>,
    _charge: Charge,
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
    /// Its value (`None`: a tombstone).
    pub value: Option<&'a [u8]>,
    headers: &'a [HeaderMeta],
    data: &'a [u8],
}

impl<'a> Msg<'a> {
    /// Its headers in order, keys and values as bytes.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        let data = self.data;
        self.headers
            .iter()
            .map(move |h| (&data[h.key.clone()], h.value.clone().map(|v| &data[v])))
    }
}

impl Batch {
    fn new(capacity: usize, budget: &Arc<Budget>, partition: &Arc<AtomicUsize>) -> Self {
        let messages = capacity / 256 + 1;
        Self {
            data: Vec::with_capacity(capacity),
            messages: Vec::with_capacity(messages),
            headers: Vec::new(),
            _charge: Charge::new(capacity + messages * META_BYTES, budget, partition),
        }
    }

    /// A batch of `messages`: `(offset, key, value, headers)`, for tests of what consumes
    /// batches.
    pub fn of(messages: &[(i64, Option<&[u8]>, Option<&[u8]>, &[(&[u8], Option<&[u8]>)])]) -> Self {
        let budget = Arc::new(Budget::new(usize::MAX));
        let mut b = Self::new(1024, &budget, &Arc::default());
        for (offset, key, value, headers) in messages {
            b.push(*offset, None, *key, *value, headers.iter().copied());
        }
        b
    }

    /// Its messages.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Msg<'_>> {
        self.messages.iter().map(|m| Msg {
            offset: m.offset,
            timestamp: m.timestamp,
            key: m.key.clone().map(|r| &self.data[r]),
            value: m.value.clone().map(|r| &self.data[r]),
            headers: &self.headers[m.headers.clone()],
            data: &self.data,
        })
    }

    /// Messages in it.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether it holds no message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Bytes of keys, values and headers in it.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    fn room(&self) -> usize {
        self.data.capacity() - self.data.len()
    }

    fn copy(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        start..self.data.len()
    }

    fn push<'h>(
        &mut self,
        offset: i64,
        timestamp: Option<(TimestampKind, i64)>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl Iterator<Item = (&'h [u8], Option<&'h [u8]>)>,
    ) {
        let key = key.map(|k| self.copy(k));
        let value = value.map(|v| self.copy(v));
        let first = self.headers.len();
        for (k, v) in headers {
            let key = self.copy(k);
            let value = v.map(|v| self.copy(v));
            self.headers.push(HeaderMeta { key, value });
        }
        self.messages.push(Meta {
            offset,
            timestamp,
            key,
            value,
            headers: first..self.headers.len(),
        });
    }
}

/// The headers of `m` as bytes (see the module docs), by librdkafka's C API.
fn headers_of<'m>(m: &'m BorrowedMessage<'_>) -> Vec<(&'m [u8], Option<&'m [u8]>)> {
    let mut out = Vec::new();
    let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `m.ptr()` is a valid message for the borrow of `m`; librdkafka returns a
    // pointer to headers the message owns (or an error and no pointer), valid as long as the
    // message, which outlives the returned slices ('m).
    #[allow(unsafe_code)]
    unsafe {
        if rd::rd_kafka_message_headers(m.ptr(), &mut hdrs) != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
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
            let value = (!value.is_null())
                .then(|| std::slice::from_raw_parts(value.cast::<u8>(), size));
            out.push((key, value));
        }
    }
    out
}

fn timestamp_of(m: &BorrowedMessage<'_>) -> Option<(TimestampKind, i64)> {
    match m.timestamp() {
        Timestamp::CreateTime(ms) => Some((TimestampKind::CreateTime, ms)),
        Timestamp::LogAppendTime(ms) => Some((TimestampKind::LogAppendTime, ms)),
        Timestamp::NotAvailable => None,
    }
}

/// A partition's place on the poll thread.
struct Slot {
    tx: mpsc::UnboundedSender<Batch>,
    open: Option<Batch>,
    /// Bytes of this partition's batches not yet appended.
    held: Arc<AtomicUsize>,
    paused: bool,
}

/// What the worker of a newly assigned partition receives.
pub struct Inbox {
    /// Its batches.
    pub batches: mpsc::UnboundedReceiver<Batch>,
    /// Bytes of its batches not yet appended (its share of the budget in use).
    pub held: Arc<AtomicUsize>,
}

/// Routes messages into their partitions' batches and pauses and resumes partitions against
/// the budget (see the module docs). Lives on the poll thread.
pub struct Router {
    budget: Arc<Budget>,
    slots: HashMap<String, HashMap<i32, Slot>>,
    assigned: usize,
    paused: usize,
    checked: Instant,
}

impl Router {
    /// A router charging `budget`.
    pub fn new(budget: Arc<Budget>) -> Self {
        Self {
            budget,
            slots: HashMap::new(),
            assigned: 0,
            paused: 0,
            checked: Instant::now(),
        }
    }

    /// Partitions paused now.
    pub fn paused(&self) -> usize {
        self.paused
    }

    /// A partition was assigned: its inbox, for its worker.
    pub fn add(&mut self, part: &Part) -> Inbox {
        let (tx, batches) = mpsc::unbounded_channel();
        let held = Arc::new(AtomicUsize::new(0));
        let slot = Slot {
            tx,
            open: None,
            held: Arc::clone(&held),
            paused: false,
        };
        if let Some(old) = self
            .slots
            .entry(part.0.clone())
            .or_default()
            .insert(part.1, slot)
        {
            self.paused -= usize::from(old.paused);
        } else {
            self.assigned += 1;
        }
        Inbox { batches, held }
    }

    /// A partition was revoked: its open batch is dropped (the next owner reads it again).
    pub fn remove(&mut self, part: &Part) {
        let Some(parts) = self.slots.get_mut(&part.0) else {
            return;
        };
        if let Some(slot) = parts.remove(&part.1) {
            self.assigned -= 1;
            self.paused -= usize::from(slot.paused);
        }
        if parts.is_empty() {
            self.slots.remove(&part.0);
        }
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
        m: &BorrowedMessage<'_>,
    ) {
        let share = self.share();
        let Some(slot) = self
            .slots
            .get_mut(m.topic())
            .and_then(|p| p.get_mut(&m.partition()))
        else {
            return; // revoked meanwhile: the next owner reads it
        };
        let headers = headers_of(m);
        let size = m.key_len()
            + m.payload_len()
            + headers
                .iter()
                .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len))
                .sum::<usize>();
        // A batch's buffers never grow: what was charged is what is held.
        if slot.open.as_ref().is_some_and(|b| b.room() < size) {
            if let Some(full) = slot.open.take() {
                let _ = slot.tx.send(full);
            }
        }
        let batch = slot
            .open
            .get_or_insert_with(|| Batch::new(size.max(BATCH_BYTES), &self.budget, &slot.held));
        batch.push(
            m.offset(),
            timestamp_of(m),
            m.key(),
            m.payload(),
            headers.into_iter(),
        );
        if batch.room() == 0 || batch.messages.len() == batch.messages.capacity() {
            if let Some(full) = slot.open.take() {
                let _ = slot.tx.send(full);
            }
        }
        let over = self.budget.used() > self.budget.limit
            || slot.held.load(Ordering::Relaxed) > share;
        if over && !slot.paused {
            slot.paused = true;
            self.paused += 1;
            let _ = consumer.pause(&one(&m.topic().to_owned(), m.partition()));
        }
    }

    /// Hands every open batch to its worker (librdkafka has nothing more right now).
    pub fn flush(&mut self) {
        for slot in self.slots.values_mut().flat_map(HashMap::values_mut) {
            if let Some(b) = slot.open.take() {
                let _ = slot.tx.send(b);
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
        for (topic, parts) in &mut self.slots {
            for (partition, slot) in parts.iter_mut() {
                if slot.paused && slot.held.load(Ordering::Relaxed) <= half {
                    slot.paused = false;
                    resumed += 1;
                    let _ = consumer.resume(&one(topic, *partition));
                }
            }
        }
        self.paused -= resumed;
    }
}

fn one(topic: &str, partition: i32) -> TopicPartitionList {
    let mut t = TopicPartitionList::new();
    t.add_partition(topic, partition);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_each_message_whole_and_releases_its_charge_when_dropped() {
        let budget = Arc::new(Budget::new(1 << 20));
        let held = Arc::new(AtomicUsize::new(0));
        let mut b = Batch::new(64, &budget, &held);
        let charged = budget.used();
        assert!(charged >= 64);
        assert_eq!(held.load(Ordering::Relaxed), charged);
        b.push(
            7,
            Some((TimestampKind::CreateTime, 5)),
            Some(b"k"),
            Some(b"{\"a\":1}"),
            [(&b"h\xff"[..], Some(&b"v"[..])), (&b"n"[..], None)].into_iter(),
        );
        b.push(9, None, None, None, std::iter::empty());
        let msgs: Vec<_> = b.iter().collect();
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            (msgs[0].offset, msgs[0].key, msgs[0].value),
            (7, Some(&b"k"[..]), Some(&b"{\"a\":1}"[..]))
        );
        let headers: Vec<_> = msgs[0].headers().collect();
        assert_eq!(headers, [(&b"h\xff"[..], Some(&b"v"[..])), (&b"n"[..], None)]);
        assert_eq!((msgs[1].offset, msgs[1].value, msgs[1].headers().len()), (9, None, 0));
        drop(b);
        assert_eq!((budget.used(), held.load(Ordering::Relaxed)), (0, 0));
    }

    #[test]
    fn a_partition_may_hold_its_share_of_the_budget_and_at_least_two_batches() {
        let mut r = Router::new(Arc::new(Budget::new(64 << 20)));
        let parts: Vec<Part> = (0..8).map(|p| ("t".to_owned(), p)).collect();
        let inboxes: Vec<_> = parts.iter().map(|p| r.add(p)).collect();
        assert_eq!(r.share(), 8 << 20);
        for p in &parts[..4] {
            r.remove(p);
        }
        assert_eq!((r.assigned, r.share()), (4, 16 << 20));
        let mut small = Router::new(Arc::new(Budget::new(1 << 20)));
        let _inboxes: Vec<_> = parts.iter().map(|p| small.add(p)).collect();
        assert_eq!(small.share(), 2 * BATCH_BYTES);
        drop(inboxes);
    }
}
