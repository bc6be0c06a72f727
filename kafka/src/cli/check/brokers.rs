//! What the brokers say ([`kafka_facts`]): the topics a run would read, their partitions,
//! each partition's log start and end, and the group's committed offsets, asked with a
//! consumer of the group's configuration that never subscribes (it joins no group and commits
//! nothing; `committed_offsets` is an `OffsetFetch`).

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::{Metadata, MetadataTopic};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::rows::TopicPartition;
use crate::source::properties::{scrub, Property};

/// How long each question to the brokers may take.
pub(super) const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// Kafka's own topics, which a `--topic-regex` subscription does not take.
const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

/// What the brokers said.
#[derive(Debug, Default)]
pub(super) struct KafkaFacts {
    /// Why the brokers could not be asked at all.
    pub(super) error: Option<String>,
    /// What stops a run (a listed topic missing, the group refused).
    pub(super) problems: Vec<String>,
    /// What does not.
    pub(super) warnings: Vec<String>,
    /// The listed topics, then those the regex matches now.
    pub(super) topics: Vec<TopicFacts>,
}

#[derive(Debug, Default)]
pub(super) struct TopicFacts {
    pub(super) name: String,
    pub(super) listed: bool,
    /// `None`: not known (the brokers could not be asked, or do not have the topic).
    pub(super) partitions: Option<Vec<PartitionFacts>>,
}

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PartitionFacts {
    pub(super) id: i32,
    pub(super) log_start: Option<i64>,
    pub(super) log_end: Option<i64>,
    pub(super) group_offset: Option<i64>,
}

/// Asks the brokers, with a consumer of `config` that never subscribes (it joins no group and
/// commits nothing): the topics, their partitions, watermarks and the group's offsets.
pub(super) fn kafka_facts(
    config: &ClientConfig,
    properties: &[Property],
    listed: &[String],
    regex: Option<&regex::Regex>,
    dead_letter: Option<&str>,
) -> KafkaFacts {
    let mut facts = KafkaFacts {
        topics: listed
            .iter()
            .map(|t| TopicFacts {
                name: t.clone(),
                listed: true,
                partitions: None,
            })
            .collect(),
        ..KafkaFacts::default()
    };
    let (brokers, all) = match Brokers::connect(config, properties) {
        Ok(connected) => connected,
        Err(e) => {
            facts.error = Some(e);
            return facts;
        }
    };
    for topic in &mut facts.topics {
        if let Some(e) = brokers.describe(topic) {
            facts.problems.push(format!(
                "topic {}: {e}: it does not exist, or this consumer's principal may not describe \
                 it: create it, correct --topic (or the connector file's topics), or grant the \
                 principal Describe and Read on it (Kafka ACLs)",
                topic.name
            ));
        }
    }
    if let Some(re) = regex {
        let matched = matching(&all, re, listed);
        if matched.is_empty() {
            facts.warnings.push(
                "no topic matches --topic-regex now: a run would start and take topics that \
                 match when they are created"
                    .to_owned(),
            );
        }
        facts.topics.extend(matched);
    }
    if let Some(dlq) = dead_letter {
        facts.warnings.extend(dead_letter_absent(&all, dlq));
    }
    brokers.read_offsets(&mut facts);
    facts
}

/// The topics of `all` that `re` matches now, sorted by name: not Kafka's own, not `listed`
/// (already there), not in error.
fn matching(all: &Metadata, re: &regex::Regex, listed: &[String]) -> Vec<TopicFacts> {
    let mut matched: Vec<TopicFacts> = all
        .topics()
        .iter()
        .filter(|t| {
            re.is_match(t.name())
                && !INTERNAL_TOPICS.contains(&t.name())
                && !listed.iter().any(|l| l == t.name())
                && t.error().is_none()
        })
        .map(|t| TopicFacts {
            name: t.name().to_owned(),
            listed: false,
            partitions: Some(partitions_of(t)),
        })
        .collect();
    matched.sort_by(|a, b| a.name.cmp(&b.name));
    matched
}

/// The warning for a `--dead-letter-topic` `dlq` the brokers do not list in `all`.
fn dead_letter_absent(all: &Metadata, dlq: &str) -> Option<String> {
    let there = all
        .topics()
        .iter()
        .any(|t| t.name() == dlq && t.error().is_none() && !t.partitions().is_empty());
    (!there).then(|| {
        format!(
            "--dead-letter-topic {dlq} is not among the topics the brokers list: a dead letter \
             fails unless the brokers create topics on first use; create it"
        )
    })
}

/// A topic's partitions as the brokers list them, by id, nothing yet known of them.
fn partitions_of(t: &MetadataTopic) -> Vec<PartitionFacts> {
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    ids.into_iter()
        .map(|id| PartitionFacts {
            id,
            ..PartitionFacts::default()
        })
        .collect()
}

/// The consumer that asks, and what an error of it may say (secrets scrubbed).
struct Brokers<'a> {
    consumer: BaseConsumer,
    config: ClientConfig,
    properties: &'a [Property],
}

impl<'a> Brokers<'a> {
    /// The consumer of `config` (creating no topic, sending no statistics), and the brokers'
    /// whole listing.
    ///
    /// # Errors
    /// Why the brokers cannot be asked at all, naming the fix.
    fn connect(
        config: &ClientConfig,
        properties: &'a [Property],
    ) -> Result<(Self, Metadata), String> {
        let mut config = config.clone();
        config
            .set("allow.auto.create.topics", "false")
            .set("statistics.interval.ms", "0");
        let consumer: BaseConsumer = config.create().map_err(|e| {
            format!(
                "cannot make the Kafka consumer: {}",
                scrub(&e.to_string(), properties)
            )
        })?;
        let brokers = Self {
            consumer,
            config,
            properties,
        };
        let all = brokers
            .consumer
            .fetch_metadata(None, KAFKA_TIMEOUT)
            .map_err(|e| {
                format!(
                    "cannot reach the Kafka brokers {} within {KAFKA_TIMEOUT:?} ({}): check \
                     --brokers, the network, and the security settings (--kafka-config, -X \
                     security.protocol, sasl.*)",
                    brokers.config.get("bootstrap.servers").unwrap_or_default(),
                    brokers.why(&e)
                )
            })?;
        Ok((brokers, all))
    }

    /// `e`'s text, the user's secrets taken out.
    fn why(&self, e: &KafkaError) -> String {
        scrub(&e.to_string(), self.properties)
    }

    /// `topic`'s partitions, asked alone: a topic the principal may not describe is absent
    /// from the whole listing, and its own answer says why. `Some`: that why.
    fn describe(&self, topic: &mut TopicFacts) -> Option<String> {
        match self
            .consumer
            .fetch_metadata(Some(&topic.name), KAFKA_TIMEOUT)
        {
            Err(e) => Some(self.why(&e)),
            Ok(m) => match m.topics().iter().find(|t| t.name() == topic.name) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    topic.partitions = Some(partitions_of(t));
                    None
                }
                Some(t) => Some(
                    t.error()
                        .map_or(RDKafkaErrorCode::UnknownTopicOrPartition, Into::into)
                        .to_string(),
                ),
                None => Some(RDKafkaErrorCode::UnknownTopicOrPartition.to_string()),
            },
        }
    }

    /// The partitions' watermarks, then the group's offsets in one request; a group the
    /// brokers refuse this principal is a problem, other failures a warning.
    fn read_offsets(&self, facts: &mut KafkaFacts) {
        let mut wanted = TopicPartitionList::new();
        for topic in &mut facts.topics {
            for p in topic.partitions.iter_mut().flatten() {
                if let Ok((low, high)) =
                    self.consumer
                        .fetch_watermarks(&topic.name, p.id, KAFKA_TIMEOUT)
                {
                    p.log_start = Some(low);
                    p.log_end = Some(high);
                }
                wanted.add_partition(&topic.name, p.id);
            }
        }
        if wanted.count() == 0 {
            return;
        }
        match self.consumer.committed_offsets(wanted, KAFKA_TIMEOUT) {
            Ok(committed) => {
                let offsets: HashMap<TopicPartition, i64> = committed
                    .elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => {
                            Some((TopicPartition::new(e.topic(), e.partition()), o))
                        }
                        _ => None,
                    })
                    .collect();
                for topic in &mut facts.topics {
                    for p in topic.partitions.iter_mut().flatten() {
                        p.group_offset = offsets
                            .get(&TopicPartition::new(topic.name.as_str(), p.id))
                            .copied();
                    }
                }
            }
            Err(e) => {
                let refused = matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::GroupAuthorizationFailed)
                );
                let line = format!(
                    "cannot read the committed offsets of group {} ({})",
                    self.config.get("group.id").unwrap_or_default(),
                    self.why(&e)
                );
                if refused {
                    facts.problems.push(format!(
                        "{line}: the brokers refuse this principal the group: grant it Read on \
                         the group (Kafka ACLs)"
                    ));
                } else {
                    facts.warnings.push(line);
                }
            }
        }
    }
}
