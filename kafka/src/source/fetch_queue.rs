//! Messages by the batch: every assigned partition's fetch queue forwarded to one queue of the
//! sink's own, read with `rd_kafka_consume_batch_queue`.
//!
//! rust-rdkafka's `poll` hands out one message per call, each wrapped in an event of its own:
//! per message a queue round trip, an allocation, and three or four clock reads (rdkafka's
//! deadline, librdkafka's poll-interval bookkeeping before and after). At 1 KB messages that was
//! a tenth of the poll thread's CPU. Read by the batch, those costs are per batch.
//!
//! The consumer's own queue cannot be read that way: it carries the rebalance events, and
//! `rd_kafka_consume_batch_queue` serves an event it finds there itself (for a rebalance,
//! librdkafka's default: unassign). So the messages go elsewhere: in the assignment callback,
//! before the assignment takes effect, each new partition's fetch queue is forwarded to the
//! [`FetchQueue`] (librdkafka keeps an application's forwarding when it starts fetching, and
//! drops it when the partition stops, so each assignment forwards afresh). The poll thread then
//! takes messages from the `FetchQueue` in batches and polls the consumer's queue, without
//! waiting, for rebalances, errors and the messages of any partition whose forwarding failed.
//!
//! A message of a partition that was revoked in the meantime is dropped by the router as
//! before (its next owner reads it); librdkafka's version barrier drops messages fetched
//! before a partition stopped or moved.

#![allow(
    unsafe_code,
    reason = "librdkafka's queue API has no safe binding: every call here goes through its C API"
)]

use std::ffi::CString;
use std::ptr::NonNull;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};

use crate::source::message::Message;

/// How many messages one read takes at most...
const READ_AT_ONCE: usize = 1024;
/// ... and about how many bytes of values: messages taken out of librdkafka's queue no longer
/// count against its prefetch limit (`queued.max.messages.kbytes`), so it fetches more while
/// the poll thread copies them. A read takes as many messages as this many bytes holds at the
/// last read's average size: a thousand 1 KB messages, one 1 MB message.
const READ_BYTES: usize = 1 << 20;

/// The sink's own queue, which every assigned partition's messages are forwarded to.
///
/// Drop it before the consumer it was made from: librdkafka's queues refer to their client.
pub(crate) struct FetchQueue {
    queue: NonNull<rd::rd_kafka_queue_t>,
    client: NonNull<rd::rd_kafka_t>,
}

// SAFETY: librdkafka's queues and clients are thread-safe; the pointers are only passed to its
// functions, which lock what they touch.
unsafe impl Send for FetchQueue {}
// SAFETY: as above.
unsafe impl Sync for FetchQueue {}

impl FetchQueue {
    /// A new queue of `consumer`'s client (`None` when librdkafka makes none).
    pub(crate) fn new<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<Self> {
        use rdkafka::consumer::Consumer;
        let client = NonNull::new(consumer.client().native_ptr())?;
        // SAFETY: `client` is a live client for as long as `consumer` lives, and the queue is
        // dropped before it (see the type's docs).
        let queue = NonNull::new(unsafe { rd::rd_kafka_queue_new(client.as_ptr()) })?;
        Some(Self { queue, client })
    }

    /// Sends the messages of `topic`'s `partition` here from now on. Call it in the assignment
    /// callback, before the assignment takes effect. Whether it could (when not, the messages
    /// come through the consumer's own queue, as without a `FetchQueue`).
    pub(crate) fn forward(&self, topic: &str, partition: i32) -> bool {
        let Ok(topic) = CString::new(topic) else {
            return false;
        };
        // SAFETY: the client is live (see `new`); the partition's queue handle is a reference
        // of our own, destroyed right after forwarding (the forwarding stays).
        unsafe {
            let from =
                rd::rd_kafka_queue_get_partition(self.client.as_ptr(), topic.as_ptr(), partition);
            if from.is_null() {
                return false;
            }
            rd::rd_kafka_queue_forward(from, self.queue.as_ptr());
            rd::rd_kafka_queue_destroy(from);
        }
        true
    }

    /// Takes what is ready, at most 1,024 messages or about 1 MiB of values, into `into`
    /// (cleared first); when nothing is, waits up to `wait` for one.
    pub(crate) fn read(&self, wait: Duration, into: &mut FetchedMessages) {
        into.clear();
        let at_once = (READ_BYTES / into.bytes_per_message.max(1)).clamp(1, READ_AT_ONCE);
        let mut n = self.consume(0, &mut into.ptrs, at_once);
        if n == 0 && !wait.is_zero() {
            let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
            n = self.consume(ms, &mut into.ptrs, 1);
        }
        into.len = n;
        let bytes: usize = into
            .iter()
            .map(|m| m.payload().map_or(0, <[u8]>::len))
            .sum();
        if let Some(per) = bytes.checked_div(n) {
            into.bytes_per_message = per;
        }
    }

    fn consume(
        &self,
        timeout_ms: i32,
        ptrs: &mut [*mut rd::rd_kafka_message_t],
        max: usize,
    ) -> usize {
        let max = max.min(ptrs.len());
        // SAFETY: `ptrs` has room for `max` pointers; librdkafka writes at most that many and
        // returns how many (or -1 on error).
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(
                self.queue.as_ptr(),
                timeout_ms,
                ptrs.as_mut_ptr(),
                max,
            )
        };
        usize::try_from(n).unwrap_or(0)
    }
}

impl Drop for FetchQueue {
    fn drop(&mut self) {
        // SAFETY: the queue is ours, destroyed once; the messages left in it go with it.
        unsafe {
            rd::rd_kafka_queue_destroy(self.queue.as_ptr());
        }
    }
}

/// Messages taken by one [`FetchQueue::read`], destroyed when the next read clears them (or
/// when this is dropped). Not a partition's `rows::batch::Batch`: the router copies each
/// message into one of those.
pub(crate) struct FetchedMessages {
    ptrs: Vec<*mut rd::rd_kafka_message_t>,
    len: usize,
    /// The last read's average value size, which sizes the next read.
    bytes_per_message: usize,
}

impl Default for FetchedMessages {
    fn default() -> Self {
        Self {
            ptrs: vec![std::ptr::null_mut(); READ_AT_ONCE],
            len: 0,
            // The first read takes one message; it says how large they are.
            bytes_per_message: READ_BYTES,
        }
    }
}

impl FetchedMessages {
    /// The messages, in the order they were fetched (each partition's in offset order).
    pub(crate) fn iter(&self) -> impl Iterator<Item = Message<'_>> + '_ {
        self.ptrs[..self.len].iter().filter_map(|&p| {
            // SAFETY: librdkafka filled the first `len` slots with messages that live until
            // `clear` destroys them, which needs `&mut self`.
            unsafe { Message::from_ptr(p) }
        })
    }

    /// Whether it holds none.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn clear(&mut self) {
        for p in &mut self.ptrs[..self.len] {
            // SAFETY: each is a message librdkafka handed us, destroyed once.
            unsafe {
                rd::rd_kafka_message_destroy(*p);
            }
            *p = std::ptr::null_mut();
        }
        self.len = 0;
    }
}

impl Drop for FetchedMessages {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Header, Message as _, OwnedHeaders};
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::{ClientConfig, Offset, Timestamp, TopicPartitionList};

    use super::{FetchQueue, FetchedMessages};
    use crate::source::message::Message;

    /// What a reader saw of one message.
    type Seen = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Timestamp, usize);

    fn seen(m: &Message<'_>) -> Seen {
        let headers = m.headers().len();
        (
            m.offset(),
            m.key().map(<[u8]>::to_vec),
            m.payload().map(<[u8]>::to_vec),
            m.rdkafka_timestamp(),
            headers,
        )
    }

    fn consumer(brokers: &str) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "fetch-queue-test")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap()
    }

    /// A producer this test writes with: keys, headers, both timestamp forms, a tombstone and
    /// an empty value, on two partitions.
    fn produce(brokers: &str) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .unwrap();
        for partition in 0..2 {
            for i in 0..50u32 {
                let key = format!("k{i}");
                let value = format!("{{\"i\":{i},\"p\":{partition}}}");
                let mut r = BaseRecord::<str, str>::to("t").partition(partition);
                match i % 5 {
                    0 => r = r.key(&key).payload(&value),
                    1 => {
                        r = r
                            .payload(&value)
                            .timestamp(1_700_000_000_000 + i64::from(i))
                    }
                    2 => r = r.key(&key), // a tombstone
                    3 => r = r.payload(""),
                    _ => {
                        r = r.payload(&value).headers(
                            OwnedHeaders::new()
                                .insert(Header {
                                    key: "h",
                                    value: Some("v"),
                                })
                                .insert(Header {
                                    key: "n",
                                    value: None::<&str>,
                                }),
                        );
                    }
                }
                producer.send(r).map_err(|(e, _)| e).unwrap();
            }
        }
        producer.flush(Duration::from_secs(10)).unwrap();
    }

    fn both(topic: &str) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for p in 0..2 {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        tpl
    }

    /// Partition 0 forwarded to a `FetchQueue` and read by the batch, partition 1 not forwarded
    /// and read by `poll`: each message is what rdkafka's own reader sees, once, in order.
    #[test]
    fn batch_reads_see_what_rdkafka_sees_and_an_unforwarded_partition_still_arrives() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("t", 2, 1).unwrap();
        let brokers = cluster.bootstrap_servers();
        produce(&brokers);

        // rdkafka's reader, message by message.
        let plain = consumer(&brokers);
        plain.assign(&both("t")).unwrap();
        let mut want: BTreeMap<i32, Vec<Seen>> = BTreeMap::new();
        let until = Instant::now() + Duration::from_secs(30);
        while want.values().map(Vec::len).sum::<usize>() < 100 && Instant::now() < until {
            if let Some(m) = plain.poll(Duration::from_millis(100)) {
                let m = m.unwrap();
                let rd = (
                    m.offset(),
                    m.key().map(<[u8]>::to_vec),
                    m.payload().map(<[u8]>::to_vec),
                    m.timestamp(),
                    m.headers().map_or(0, rdkafka::message::Headers::count),
                );
                assert_eq!(
                    seen(&Message::of(&m)),
                    rd,
                    "Message reads the fields as rdkafka"
                );
                want.entry(m.partition()).or_default().push(rd);
            }
        }

        // Partition 0 by the batch, partition 1 through the consumer's own queue.
        let split = consumer(&brokers);
        let queue = FetchQueue::new(&split).unwrap();
        assert!(queue.forward("t", 0));
        split.assign(&both("t")).unwrap();
        let mut got: BTreeMap<i32, Vec<Seen>> = BTreeMap::new();
        let mut batch = FetchedMessages::default();
        let mut batches = 0;
        let mut by_batch = 0;
        let until = Instant::now() + Duration::from_secs(30);
        while got.values().map(Vec::len).sum::<usize>() < 100 && Instant::now() < until {
            if let Some(m) = split.poll(Duration::ZERO) {
                let m = m.unwrap();
                got.entry(m.partition())
                    .or_default()
                    .push(seen(&Message::of(&m)));
            }
            queue.read(Duration::from_millis(20), &mut batch);
            batches += usize::from(!batch.is_empty());
            for m in batch.iter() {
                assert!(m.error().is_none());
                assert_eq!(m.topic(), "t");
                assert_eq!(
                    m.partition(),
                    0,
                    "only the forwarded partition comes by the batch"
                );
                got.entry(0).or_default().push(seen(&m));
                by_batch += 1;
            }
        }
        assert_eq!(got, want);
        assert_eq!(by_batch, 50, "partition 0's messages all came by the batch");
        assert!(
            batches < 50,
            "50 messages came in {batches} reads: not by the batch"
        );
        drop(batch);
        drop(queue);
    }
}
