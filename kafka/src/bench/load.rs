//! What the bench produces and where: `--events` of about a size, spread round-robin over
//! `--topics` topics of `--partitions` partitions, in the lab's cluster (librdkafka's mock
//! cluster in the bench's process, or `--brokers`, a broker in its own process, where the
//! topics' names carry a run tag so that a second run does not read the first's messages).

use anyhow::{bail, Context, Result};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use snowpipe_emulator::EmulatorConfig;

use crate::bench::args::BenchArgs;
use crate::bench::events::{self, Events};
use crate::demo::Lab;

/// The topic's name when the bench has one topic in the mock cluster; the others start so.
pub(crate) const TOPIC: &str = "bench";

/// The messages of one size and where they go.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    /// The topics, each of `partitions` partitions.
    pub(crate) topics: Vec<String>,
    pub(crate) partitions: i32,
    pub(crate) events: Events,
    pub(crate) seed: u64,
    /// Bytes per message, about.
    pub(crate) size: usize,
}

impl Load {
    /// The load `args` ask for at `size`: `bench` for one topic in the mock cluster, else
    /// `bench_00`, `bench_01`, … (on `--brokers`, `bench<tag>` and `bench<tag>_00`, …).
    pub(crate) fn new(args: &BenchArgs, size: usize) -> Self {
        let base = match args.brokers {
            None => TOPIC.to_owned(),
            Some(_) => format!("{TOPIC}{:08x}", rand::random::<u32>()),
        };
        let topics = match args.topics {
            1 => vec![base],
            n => (0..n).map(|i| format!("{base}_{i:02}")).collect(),
        };
        Self {
            topics,
            partitions: args.partitions.max(1),
            events: args.events,
            seed: args.seed,
            size,
        }
    }

    /// One topic of `partitions`, `events` of `size` (the rebalance's load).
    pub(crate) fn one_topic(partitions: i32, events: Events, size: usize) -> Self {
        Self {
            topics: vec![TOPIC.to_owned()],
            partitions: partitions.max(1),
            events,
            seed: 0,
            size,
        }
    }

    /// The partitions of all the topics.
    pub(crate) fn all_partitions(&self) -> usize {
        self.topics.len() * usize::try_from(self.partitions).unwrap_or(1)
    }

    /// The topics as the lab creates them: (name, partitions).
    pub(crate) fn specs(&self) -> Vec<(&str, i32)> {
        self.topics
            .iter()
            .map(|t| (t.as_str(), self.partitions))
            .collect()
    }

    /// Message `id`.
    pub(crate) fn message(&self, id: u64) -> String {
        events::message(self.events, self.seed, id, self.size)
    }

    /// Where message `id` goes: round-robin over every partition of every topic.
    pub(crate) fn place(&self, id: u64) -> Result<(&str, i32)> {
        let partitions = u64::try_from(self.partitions)?;
        let k = id % (partitions * self.topics.len() as u64);
        let topic = &self.topics[usize::try_from(k / partitions)?];
        Ok((topic, i32::try_from(k % partitions)?))
    }

    /// A lab with the topics: on `brokers` when given, else in a mock cluster.
    ///
    /// # Errors
    /// When the lab cannot start or a topic cannot be created.
    pub(crate) async fn lab(&self, brokers: Option<&str>, config: EmulatorConfig) -> Result<Lab> {
        match brokers {
            Some(brokers) => Lab::start_on(brokers, &self.specs(), config).await,
            None => Lab::start_with(&self.specs(), config).await,
        }
    }
}

/// Messages queued before the backlog waits for their delivery: a producer queue deep enough
/// that each partition's batches fill up (see [`backlog_producer`]).
const BACKLOG_IN_FLIGHT: usize = 200_000;

/// The backlog's producer: as a producer that keeps up with a busy topic batches, up to
/// `batch.size` (1 MB) a partition, waiting up to 100 ms to fill a batch.
///
/// librdkafka's mock cluster answers a fetch with one stored batch a partition
/// (`rd_kafka_mock_handle_Fetch`: "FIXME: Multiple messageSets ?"), where a broker answers
/// with as many as fit in `max.partition.fetch.bytes`; so the batches the backlog was
/// produced in set how many fetches a consumer of the mock needs. With `linger.ms` 5 and
/// 20,000 messages in flight over 96 partitions they held about 200 messages, and a sink on
/// the mock fetched about five times as often as on a broker, for the same bytes.
fn backlog_producer(lab: &Lab) -> Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", lab.brokers())
        .set("enable.idempotence", "true")
        .set("linger.ms", "100")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .context("cannot create a producer")
}

/// Produces `count` messages of `load`, before anything reads them; the bytes produced.
///
/// # Errors
/// When a message cannot be queued or is not delivered.
pub(crate) async fn backlog(lab: &Lab, load: &Load, count: u64) -> Result<u64> {
    let producer = backlog_producer(lab)?;
    let mut pending = Vec::new();
    let mut bytes = 0u64;
    for id in 0..count {
        let (delivery, len) = send(&producer, load, id)?;
        pending.push(delivery);
        bytes += len as u64;
        if pending.len() >= BACKLOG_IN_FLIGHT {
            await_deliveries(&mut pending).await?;
        }
    }
    await_deliveries(&mut pending).await?;
    Ok(bytes)
}

/// Queues message `id` of `load` to its partition ([`Load::place`]); its length.
///
/// # Errors
/// When the producer's queue refuses it.
pub(crate) fn send(
    producer: &FutureProducer,
    load: &Load,
    id: u64,
) -> Result<(DeliveryFuture, usize)> {
    let v = load.message(id);
    let (topic, partition) = load.place(id)?;
    let delivery = producer
        .send_result(
            FutureRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(&v),
        )
        .map_err(|(e, _)| anyhow::anyhow!("cannot queue a message: {e}"))?;
    Ok((delivery, v.len()))
}

/// Waits for the messages `pending` queued to be delivered, and empties it.
///
/// # Errors
/// When one was not delivered.
pub(crate) async fn await_deliveries(pending: &mut Vec<DeliveryFuture>) -> Result<()> {
    for d in pending.drain(..) {
        delivered(d.await)?;
    }
    Ok(())
}

fn delivered(
    d: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, impl std::fmt::Debug>,
) -> Result<()> {
    match d {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => bail!("a message was not delivered: {e}"),
        Err(e) => bail!("the producer went away: {e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages go round-robin over every partition of every topic.
    #[test]
    fn messages_are_spread_over_every_partition_of_every_topic() {
        let load = Load {
            topics: vec!["a".into(), "b".into(), "c".into()],
            partitions: 4,
            events: Events::Realistic,
            seed: 1,
            size: 1024,
        };
        assert_eq!(load.all_partitions(), 12);
        let mut seen = std::collections::BTreeSet::new();
        for id in 0..24 {
            seen.insert(load.place(id).unwrap());
        }
        assert_eq!(seen.len(), 12);
        assert_eq!(load.place(5).unwrap(), ("b", 1));
    }
}
