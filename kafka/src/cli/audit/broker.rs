//! Which offsets missing from a table the broker still holds: a consumer of the sink's
//! configuration that never subscribes (it joins no group) and never commits, assigned to the
//! partition at each missing range and reading to its end. An offset below the log start
//! (deleted by retention), removed by compaction, or taken by a transaction marker is never
//! delivered, so only the offsets it delivers are gaps.

use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::Gap;

/// The most records the audit reads from one partition to check its missing offsets; the
/// rest are counted as not checked.
pub(super) const MAX_READ: u64 = 1_000_000;

/// How long one poll may wait for the next record before the rest of a range is counted as
/// not checked.
const POLL: Duration = Duration::from_secs(10);

/// The reader's client context: a partition's end is what every read waits for, but
/// librdkafka reports it as an error event, which the client library's default context logs at
/// ERROR level. Other errors are logged as the sink logs them (a warning: the read counts what
/// it could not check).
struct EndIsExpected;

impl ClientContext for EndIsExpected {
    fn error(&self, error: KafkaError, reason: &str) {
        let end = matches!(
            error,
            KafkaError::Global(RDKafkaErrorCode::PartitionEOF) | KafkaError::PartitionEOF(_)
        );
        if !end {
            tracing::warn!(target: "librdkafka", "{error}: {reason}");
        }
    }
}

impl ConsumerContext for EndIsExpected {}

/// Reads missing ranges from the brokers.
#[derive(Debug, Clone)]
pub(super) struct Reader {
    config: ClientConfig,
}

/// What the broker said about a partition's missing offsets.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// The missing offsets it delivered, as ranges.
    pub found: Vec<Gap>,
    /// Offsets it was not asked about (over [`MAX_READ`], a timeout, an error).
    pub not_checked: u64,
}

impl Reader {
    /// A reader with the sink's consumer configuration: never commits, stops at the end.
    pub(super) fn new(config: &ClientConfig) -> Self {
        let mut config = config.clone();
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("allow.auto.create.topics", "false")
            .set("statistics.interval.ms", "0");
        Self { config }
    }

    /// Which offsets of `absent` the broker delivers for `topic`/`partition` (offsets below
    /// `log_start` are not asked: retention deleted them; nor offsets at or past `log_end`:
    /// no record has them yet, whatever a row's metadata claims).
    pub(super) async fn held(
        &self,
        topic: &str,
        partition: i32,
        absent: &[Gap],
        (log_start, log_end): (Option<i64>, Option<i64>),
    ) -> Held {
        if absent.is_empty() {
            return Held::default();
        }
        let total: u64 = absent.iter().map(|g| super::span(*g)).sum();
        let (config, topic, absent) = (self.config.clone(), topic.to_owned(), absent.to_vec());
        let log = (log_start, log_end);
        tokio::task::spawn_blocking(move || read(&config, &topic, partition, &absent, log))
            .await
            .unwrap_or(Held {
                found: Vec::new(),
                not_checked: total,
            })
    }
}

/// [`Reader::held`], blocking.
fn read(
    config: &ClientConfig,
    topic: &str,
    partition: i32,
    absent: &[Gap],
    (log_start, log_end): (Option<i64>, Option<i64>),
) -> Held {
    let mut held = Held::default();
    let consumer: Option<BaseConsumer<EndIsExpected>> =
        config.create_with_context(EndIsExpected).ok();
    let mut budget = MAX_READ;
    for g in absent {
        let from = g.from.max(log_start.unwrap_or(0));
        // Asked past the end, a consumer resets to the start and reads the whole log again:
        // 10,000 holes a row's metadata claims past the end took minutes.
        let to = g.to.min(log_end.map_or(i64::MAX, |e| e - 1));
        if from > to {
            continue;
        }
        let g = &Gap { from: g.from, to };
        let Some(consumer) = consumer.as_ref().filter(|_| budget > 0) else {
            held.not_checked += super::span(Gap { from, to: g.to });
            continue;
        };
        let mut tpl = TopicPartitionList::new();
        if tpl
            .add_partition_offset(topic, partition, Offset::Offset(from))
            .is_err()
            || consumer.assign(&tpl).is_err()
        {
            held.not_checked += super::span(Gap { from, to: g.to });
            continue;
        }
        let mut next = from;
        loop {
            match consumer.poll(POLL) {
                Some(Ok(m)) => {
                    let o = m.offset();
                    if o > g.to {
                        break;
                    }
                    if o >= from {
                        push(&mut held.found, o);
                        budget -= 1;
                    }
                    next = o + 1;
                    if budget == 0 {
                        held.not_checked += super::span(Gap {
                            from: next,
                            to: g.to,
                        });
                        break;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                None | Some(Err(_)) => {
                    if next <= g.to {
                        held.not_checked += super::span(Gap {
                            from: next,
                            to: g.to,
                        });
                    }
                    break;
                }
            }
        }
    }
    held
}

/// Adds `offset` to the ranges `found` (offsets come in order).
fn push(found: &mut Vec<Gap>, offset: i64) {
    match found.last_mut() {
        Some(g) if g.to + 1 == offset => g.to = offset,
        _ => found.push(Gap {
            from: offset,
            to: offset,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_offsets_become_ranges() {
        let mut found = Vec::new();
        for o in [3, 4, 5, 9, 11, 12] {
            push(&mut found, o);
        }
        assert_eq!(
            found,
            [
                Gap { from: 3, to: 5 },
                Gap { from: 9, to: 9 },
                Gap { from: 11, to: 12 }
            ]
        );
    }
}
