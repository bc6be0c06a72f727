//! A row the server rejected, read again from Kafka by its offset, so it can be dead-lettered
//! as it was produced (key, value, timestamp, headers).
//!
//! Once appended, a message's bytes belong to the SDK and are gone by the time the server's
//! status reports the row (seconds later); holding every appended row until then would charge
//! the memory budget for what is nearly never needed. Rejected rows are few (a report names
//! at most one row, `rejected.rs`), so each is fetched again: one consumer of the sink's own
//! properties, made on the first rejected row and kept, assigned (never subscribed: it joins
//! no group and commits nothing) to the one partition at the one offset, polled until that
//! message comes, at most [`WAIT`]. A message gone meanwhile (retention, compaction), or a
//! broker that does not answer in time, is said in the error; the caller logs it and the
//! partition goes on.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, Timestamp, TopicPartitionList};

use crate::rows::record::{Record, TimestampKind};
use crate::rows::KafkaOffset;
use crate::source::properties::{scrub, Property};

/// The longest a rejected row's re-read waits for its message.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Reads single messages again by offset.
pub(crate) struct Refetch {
    config: ClientConfig,
    properties: Vec<Property>,
    consumer: Arc<Mutex<Option<BaseConsumer>>>,
}

impl Refetch {
    /// Re-reads through a consumer of `config` (the sink's own; `properties` are scrubbed
    /// from any error).
    pub(crate) fn new(config: &ClientConfig, properties: &[Property]) -> Self {
        let mut config = config.clone();
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            // An offset already deleted then starts the read at the log's start, past it:
            // said as gone, not waited for.
            .set("auto.offset.reset", "earliest");
        Self {
            config,
            properties: properties.to_vec(),
            consumer: Arc::default(),
        }
    }

    /// The message at `offset` of `topic`'s `partition`.
    ///
    /// # Errors
    /// The reason, as a sentence: the consumer cannot be made, the message is gone
    /// (retention or compaction), the partition ends before it, or it did not come within
    /// [`WAIT`].
    ///
    /// # Cancellation
    /// The read runs on a blocking thread and finishes there (within [`WAIT`]) if the future
    /// is dropped.
    pub(crate) async fn message(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<OwnedMessage, String> {
        let (config, slot, topic) = (
            self.config.clone(),
            Arc::clone(&self.consumer),
            topic.to_owned(),
        );
        let read = tokio::task::spawn_blocking(move || {
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                let made: BaseConsumer = config
                    .create()
                    .map_err(|e| format!("cannot make the consumer that re-reads it: {e}"))?;
                *slot = Some(made);
            }
            let consumer = slot.as_ref().expect("made above");
            let read = read_one(consumer, &topic, partition, offset, WAIT);
            // Nothing stays assigned between reads.
            if let Err(e) = consumer.unassign() {
                tracing::debug!("unassigning the re-read consumer: {e}");
            }
            read
        })
        .await;
        match read {
            Ok(r) => r.map_err(|e| scrub(&e, &self.properties)),
            Err(e) => Err(format!("the re-read failed: {e}")),
        }
    }
}

/// Polls `consumer`, assigned to `offset`, until that message comes.
fn read_one(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
    wait: Duration,
) -> Result<OwnedMessage, String> {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(offset))
        .map_err(|e| e.to_string())?;
    consumer.assign(&list).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + wait;
    let mut last_error = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(match last_error {
                Some(e) => format!("it was not read within {wait:?} (last error: {e})"),
                None => format!("it was not read within {wait:?}"),
            });
        }
        match consumer.poll(left.min(Duration::from_millis(500))) {
            None => {}
            Some(Ok(m)) if m.offset() == offset => return Ok(m.detach()),
            Some(Ok(m)) if m.offset() > offset => {
                return Err(format!(
                    "it is gone from the topic (the next message kept is at offset {}: \
                     retention or compaction)",
                    m.offset()
                ))
            }
            Some(Ok(_)) => {}
            Some(Err(KafkaError::PartitionEOF(_))) => {
                return Err("the partition ends before it".to_owned())
            }
            // Transient (a broker moving, a connection re-made): polled again until the
            // deadline.
            Some(Err(e)) => last_error = Some(e.to_string()),
        }
    }
}

/// `m`'s headers as a [`Record`] holds them.
pub(crate) fn headers(m: &OwnedMessage) -> Vec<(&[u8], Option<&[u8]>)> {
    m.headers().map_or_else(Vec::new, |h| {
        h.iter().map(|h| (h.key.as_bytes(), h.value)).collect()
    })
}

/// `m` as a [`Record`] with `headers` (from [`headers`]).
pub(crate) fn record<'a>(
    m: &'a OwnedMessage,
    headers: &'a [(&'a [u8], Option<&'a [u8]>)],
) -> Record<'a> {
    let timestamp = match m.timestamp() {
        Timestamp::CreateTime(ms) => Some((TimestampKind::CreateTime, ms)),
        Timestamp::LogAppendTime(ms) => Some((TimestampKind::LogAppendTime, ms)),
        Timestamp::NotAvailable => None,
    };
    Record {
        topic: m.topic(),
        partition: m.partition(),
        offset: KafkaOffset::new(m.offset()),
        key: m.key(),
        value: m.payload(),
        timestamp,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::config::ClientConfig;
    use rdkafka::message::Message as _;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    use super::Refetch;

    /// A message is read again by its offset, twice over one consumer and from another
    /// partition between; an offset past the partition's end is said, not waited for.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_is_read_again_by_offset_and_one_past_the_end_is_said() {
        let cluster = MockCluster::new(1).expect("a mock cluster");
        cluster.create_topic("t", 2, 1).expect("a topic");
        let brokers = cluster.bootstrap_servers();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .expect("a producer");
        for n in 0..6 {
            let (key, value) = (format!("k{n}"), format!("v{n}"));
            producer
                .send(
                    BaseRecord::to("t")
                        .partition(n % 2)
                        .key(&key)
                        .payload(&value),
                )
                .expect("queued");
        }
        producer.flush(Duration::from_secs(10)).expect("flushed");
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &brokers)
            .set("group.id", "sink");
        let refetch = Refetch::new(&config, &[]);
        for (partition, offset, value) in [(1, 2, "v5"), (0, 0, "v0"), (1, 0, "v1")] {
            let m = refetch
                .message("t", partition, offset)
                .await
                .expect("read again");
            assert_eq!(
                (m.partition(), m.offset(), m.payload()),
                (partition, offset, Some(value.as_bytes()))
            );
        }
        let past = refetch.message("t", 0, 9).await.expect_err("past the end");
        assert!(past.contains("partition ends before it"), "{past}");
    }
}
