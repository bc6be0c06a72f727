//! What the bench produces and where: `--events` of about a size, spread round-robin over
//! `--topics` topics of `--partitions` partitions, in the lab's cluster (librdkafka's mock
//! cluster in the bench's process, or `--brokers`, a broker in its own process, where the
//! topics' names carry a run tag so that a second run does not read the first's messages).

use std::path::Path;
use std::sync::Arc;

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
    /// `--events-file`'s messages, which replace the `events`.
    pub(crate) file: Option<EventsFile>,
}

/// `--events-file`: its messages, each one JSON object.
#[derive(Clone)]
pub(crate) struct EventsFile(Arc<Vec<String>>);

impl std::fmt::Debug for EventsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventsFile({} messages)", self.0.len())
    }
}

/// The most of an events file the bench reads.
const EVENTS_FILE_MAX: u64 = 256 << 20;

impl EventsFile {
    /// The messages of `path`: its lines that hold anything but white space, each of which
    /// must be one JSON object (the bench counts every message as a row the sides write).
    ///
    /// # Errors
    /// When the file cannot be read, is larger than 256 MiB, holds no message, or a line is
    /// not one JSON object (naming the line).
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let shown = path.display();
        // Opened without blocking (a FIFO nobody writes is refused, not waited on), read
        // through `take`: past the cap it is refused, naming it.
        let text = snowpipe_cli_support::bounded_file::read_text(
            path,
            "bench events file (give the bench a sample of the topic)",
            EVENTS_FILE_MAX,
        )
        .with_context(|| format!("cannot read --events-file {shown}"))?;
        let mut messages = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let value = line.trim();
            if value.is_empty() {
                continue;
            }
            if !value.starts_with('{') || !snowpipe_kafka::is_one_value(value.as_bytes()) {
                bail!(
                    "line {} of {shown} is not one JSON object: the bench writes every message \
                     as a row and waits for each, so the file must hold one object a line",
                    n + 1
                );
            }
            messages.push(value.to_owned());
        }
        if messages.is_empty() {
            bail!("{shown} holds no message: one JSON object a line");
        }
        Ok(Self(Arc::new(messages)))
    }

    /// The messages' mean size in bytes.
    pub(crate) fn mean_size(&self) -> usize {
        self.0.iter().map(String::len).sum::<usize>() / self.0.len()
    }
}

impl Load {
    /// The load `args` ask for at `size`: `bench` for one topic in the mock cluster, else
    /// `bench_00`, `bench_01`, … (on `--brokers`, `bench<tag>` and `bench<tag>_00`, …); with
    /// `file`, its messages instead of the events.
    pub(crate) fn new(args: &BenchArgs, size: usize, file: Option<&EventsFile>) -> Self {
        let base = match args.brokers {
            None => TOPIC.to_owned(),
            Some(_) => format!("{TOPIC}{:08x}", rand::random::<u32>()),
        };
        let topics = match args.topics {
            1 => vec![base],
            n => (0..n).map(|i| format!("{base}_{i:02}")).collect(),
        };
        let load = Self {
            topics,
            partitions: args.partitions.max(1),
            events: args.events,
            seed: args.seed,
            size,
            file: None,
        };
        match file {
            Some(f) => load.with_file(f.clone()),
            None => load,
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
            file: None,
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

    /// The loads `args` ask for, a size at a time: `--sizes` of `--events`, or with
    /// `--events-file` its messages at their mean size (read once, shared by every load
    /// made from the answer with [`Load::new`]).
    ///
    /// # Errors
    /// [`EventsFile::read`]'s.
    pub(crate) fn sizes(args: &BenchArgs) -> Result<(Vec<usize>, Option<EventsFile>)> {
        let file = args
            .events_file
            .as_deref()
            .map(EventsFile::read)
            .transpose()?;
        let sizes = match &file {
            Some(f) => vec![f.mean_size()],
            None => args.sizes.clone(),
        };
        Ok((sizes, file))
    }

    /// The same load with `file`'s messages, taken in turn, instead of its events.
    pub(crate) fn with_file(mut self, file: EventsFile) -> Self {
        self.size = file.mean_size();
        self.file = Some(file);
        self
    }

    /// What the messages are, for the report: `realistic`, `padded` or `file`.
    pub(crate) fn events_name(&self) -> String {
        match self.file {
            Some(_) => "file".to_owned(),
            None => format!("{:?}", self.events).to_lowercase(),
        }
    }

    /// Message `id`.
    pub(crate) fn message(&self, id: u64) -> String {
        match &self.file {
            Some(EventsFile(messages)) => {
                let n = messages.len() as u64;
                messages[usize::try_from(id % n).unwrap_or(0)].clone()
            }
            None => events::message(self.events, self.seed, id, self.size),
        }
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
            file: None,
        };
        assert_eq!(load.all_partitions(), 12);
        let mut seen = std::collections::BTreeSet::new();
        for id in 0..24 {
            seen.insert(load.place(id).unwrap());
        }
        assert_eq!(seen.len(), 12);
        assert_eq!(load.place(5).unwrap(), ("b", 1));
    }

    /// An events file's messages are its objects in turn, its mean size the load's; a line
    /// that is not one JSON object is refused naming its number, as are an empty file and
    /// one that is not text.
    #[test]
    fn an_events_file_is_its_objects_in_turn_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        std::fs::write(&path, "{\"a\":1}\n\n  {\"b\":[1,2]}  \r\n{\"c\":\"é\"}\n").unwrap();
        let file = EventsFile::read(&path).unwrap();
        let load = Load::one_topic(2, Events::Realistic, 1024).with_file(file);
        assert_eq!(load.events_name(), "file");
        let got: Vec<String> = (0..4).map(|id| load.message(id)).collect();
        assert_eq!(
            got,
            ["{\"a\":1}", "{\"b\":[1,2]}", "{\"c\":\"é\"}", "{\"a\":1}"]
        );
        assert_eq!(load.size, (7 + 11 + 10) / 3);
        for (text, says) in [
            ("{\"a\":1}\n[1,2]\n", "line 2 of"),
            ("{\"a\":1}\n{\"a\":\n", "line 2 of"),
            ("{\"a\":1} {\"b\":2}\n", "line 1 of"),
            ("\n \n", "holds no message"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", EventsFile::read(&path).unwrap_err());
            assert!(err.contains(says), "{text:?}: {err}");
        }
        std::fs::write(&path, b"{\"a\":\"\xff\"}\n").unwrap();
        let err = format!("{:#}", EventsFile::read(&path).unwrap_err());
        assert!(err.contains("not UTF-8 text"), "{err}");
    }
}
