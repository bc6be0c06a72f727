//! Messages that cannot be rows: to the dead-letter topic with the reason in a header, or, without
//! one, skipped, logged and counted. Either way the partition moves on.
//!
//! A dead-lettered message's offset never becomes a committed token (only rows carry tokens), so
//! after a restart the partition resumes after the last row: a poison message with no row after
//! it that was committed is read and dead-lettered again. That repeats the dead letter, never
//! wedges the partition.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::rows::record::Record;
use crate::sink::refetch::{self, Refetch};

/// Header with the reason a message was dead-lettered.
pub const REASON_HEADER: &str = "snowpipe.error";
/// Headers naming where the message came from.
pub const SOURCE_HEADERS: [&str; 3] = ["snowpipe.topic", "snowpipe.partition", "snowpipe.offset"];

/// Where dead letters go.
pub(crate) struct DeadLetters {
    target: Option<(FutureProducer, String)>,
    /// Re-reads a row the server rejected (with a target only).
    refetch: Option<Refetch>,
    warned: AtomicBool,
}

impl DeadLetters {
    /// Dead letters to `topic` through `producer`, rows the server rejected read again
    /// through `refetch` (both or neither); or (`None`) skipped and logged.
    pub(crate) fn new(target: Option<(FutureProducer, String, Refetch)>) -> Self {
        let (target, refetch) = match target {
            Some((producer, topic, refetch)) => (Some((producer, topic)), Some(refetch)),
            None => (None, None),
        };
        Self {
            target,
            refetch,
            warned: AtomicBool::new(false),
        }
    }

    /// Dead-letters the row the server rejected at `offset` of `topic`'s `partition`: the
    /// message read again from Kafka (`refetch.rs`) and sent as [`send`](Self::send) sends,
    /// its reason the server's `message`. `false` when there is no dead-letter topic, or the
    /// message could not be read again or written (each logged with its offset and why).
    pub(crate) async fn send_rejected(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        message: &str,
    ) -> bool {
        let Some(refetch) = &self.refetch else {
            return false;
        };
        match refetch.message(topic, partition, offset).await {
            Ok(m) => {
                let headers = refetch::headers(&m);
                let reason = format!("rejected by Snowflake: {message}");
                self.send(&refetch::record(&m, &headers), &reason).await
            }
            Err(why) => {
                tracing::error!(
                    %topic, partition, offset,
                    "cannot dead-letter the row Snowflake rejected: {why}; the table's error \
                     table has it where the table logs errors (ERROR_LOGGING = TRUE)"
                );
                false
            }
        }
    }

    /// Sends `m` to the dead-letter topic with `reason` (or logs it). Never fails: a dead
    /// letter that cannot be delivered is logged and the partition moves on. Its key, value,
    /// timestamp and headers go with it (a key that is not UTF-8 with its bytes replaced as `U+FFFD`: Kafka clients
    /// take header keys as text). `true` when it was written to the topic.
    pub(crate) async fn send(&self, m: &Record<'_>, reason: &str) -> bool {
        // The offset as a number in the log fields, as librdkafka's.
        let (topic, partition, offset) = (m.topic, m.partition, m.offset.get());
        let Some((producer, dlq)) = &self.target else {
            // The first one loudly, the rest in the counters (a poison flood must not flood
            // the log).
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    %topic, partition, offset, reason,
                    "skipped a message that cannot be a row (no --dead-letter-topic; further \
                     ones are counted, and logged at debug)"
                );
            } else {
                tracing::debug!(%topic, partition, offset, reason, "skipped a message");
            }
            return false;
        };
        let mut headers = OwnedHeaders::new_with_capacity(m.headers.len() + 4);
        for (key, value) in m.headers {
            headers = headers.insert(Header {
                key: &String::from_utf8_lossy(key),
                value: *value,
            });
        }
        let (p, o) = (partition.to_string(), offset.to_string());
        for (key, value) in [
            (REASON_HEADER, reason),
            (SOURCE_HEADERS[0], topic),
            (SOURCE_HEADERS[1], p.as_str()),
            (SOURCE_HEADERS[2], o.as_str()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(dlq).headers(headers);
        if let Some(v) = m.value {
            record = record.payload(v);
        }
        if let Some(k) = m.key {
            record = record.key(k);
        }
        // The original record's timestamp, as Kafka Connect's dead-letter reporter keeps it.
        if let Some((_, ms)) = m.timestamp {
            record = record.timestamp(ms);
        }
        match producer.send(record, Duration::from_secs(30)).await {
            Ok(_) => {
                tracing::info!(%topic, partition, offset, reason, dead_letter_topic = %dlq, "dead-lettered a message");
                true
            }
            Err((e, _)) => {
                tracing::error!(
                    %topic, partition, offset, reason,
                    "cannot write the dead letter to {dlq}: {e}; the message is skipped"
                );
                false
            }
        }
    }
}
