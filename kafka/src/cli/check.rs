//! `snowpipe-kafka check [the sink's options]`: what a run with this configuration would do,
//! asked of the brokers, the Schema Registry and Snowflake without changing anything.
//!
//! It reads the configuration as a run does (flags, `SNOWPIPE_KAFKA_*` variables,
//! `--connector-config`, `--kafka-config`, `--topic-map`: [`SinkArgs::settings`]), then asks,
//! read-only:
//!
//! * **Kafka**: the topics and their partitions (for `--topic-regex`, the topics that match
//!   now), each partition's log start and end, and the consumer group's committed offset, read
//!   with a consumer of the group's configuration that never subscribes, so it joins no group
//!   and commits nothing (`committed_offsets` is an `OffsetFetch`);
//! * **the Schema Registry** (with a registry `--value-format`): one request
//!   ([`Registry::probe`](crate::formats::registry::Registry::probe)), which shows a registry
//!   that answers and takes the credentials;
//! * **Snowflake**: the client connects (a refused key shows here); each topic's pipe is
//!   chosen as the run chooses it (`--topic2table-map`, `--table-named-pipes`: `desc pipe`), a
//!   default pipe's table described with `--create-tables` (`desc table`, never created), and
//!   the partitions' channels read with the bulk channel-status call, which opens no channel
//!   (opening one would fence its owner) and answers for a pipe that does not exist or may not
//!   be used with "does not exist or not authorized" (`docs/protocol.md` §4.7: a name never
//!   written is a cheap probe of the pipe).
//!
//! Then it prints the plan: per topic its table and pipe (existing, to be created, or missing
//! and why), per partition its channel (as the run names it), the channel's committed offset
//! token beside the group's committed offset, and where the run would start it (the token + 1,
//! else `--start`). Kafka's group offsets never decide where the sink starts; they are shown
//! because lag tools read them.
//!
//! The plan is text ([`Plan::text`]) or, with `--format json`, one JSON document
//! ([`Plan`]'s fields). [`run`] ends with an error naming every problem when a run would not
//! start: brokers that cannot be reached, a listed topic that is missing or refused, a
//! registry that cannot be reached or refuses the credentials, Snowflake refusing the
//! connection, a table missing without `--create-tables`, a pipe missing.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::ValueEnum;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use snowpipe_streaming::{default_pipe_table, StreamingIngestClient};

use crate::cli::args::SinkArgs;
use crate::formats::registry::Probe;
use crate::kafka::properties::{scrub, Property};
use crate::sink::settings::{Settings, Start};

mod text;

/// How long each question to the brokers may take.
pub const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// Kafka's own topics, which a `--topic-regex` subscription does not take.
const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

/// Where the setup page is (quoted in the fixes).
const SETUP_PAGE: &str = "docs/snowflake-setup.md";

/// `snowpipe-kafka check`: the sink's options, and how to print the plan.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The configuration a run would have.
    #[command(flatten)]
    pub sink: SinkArgs,
    /// `text`: a plan for people; `json`: one JSON document on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub format: Format,
}

/// How the plan is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
}

/// What a run would do, and what stops it.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Whether a run would start (no problem).
    pub would_start: bool,
    /// What stops a run, each naming its fix.
    pub problems: Vec<String>,
    /// What a run would warn about (it starts anyway).
    pub warnings: Vec<String>,
    /// The brokers and the group.
    pub kafka: KafkaSide,
    /// The Schema Registry (`None`: no registry `--value-format`).
    pub registry: Option<RegistrySide>,
    /// The Snowflake connection.
    pub snowflake: SnowflakeSide,
    /// Each topic a run would read: the listed ones, then those `--topic-regex` matches now.
    pub topics: Vec<TopicPlan>,
}

/// The Kafka side of a [`Plan`].
#[derive(Debug, Clone, Serialize)]
pub struct KafkaSide {
    /// `--brokers`.
    pub brokers: String,
    /// `--group`.
    pub group: String,
    /// Whether the brokers answered.
    pub reachable: bool,
    /// `--topic-regex`, if given.
    pub topic_regex: Option<String>,
    /// `--dead-letter-topic`, if given.
    pub dead_letter_topic: Option<String>,
}

/// The Schema Registry side of a [`Plan`].
#[derive(Debug, Clone, Serialize)]
pub struct RegistrySide {
    /// The registries' URLs.
    pub urls: Vec<String>,
    /// Whether one answered and took the credentials.
    pub answers: bool,
}

/// The Snowflake side of a [`Plan`].
#[derive(Debug, Clone, Serialize)]
pub struct SnowflakeSide {
    /// `--database`.
    pub database: String,
    /// `--schema`.
    pub schema: String,
    /// Whether the client connected (its credentials accepted).
    pub connected: bool,
}

/// What is known of a table or pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// It exists (and this role may use it).
    Exists,
    /// It does not exist; the run creates it (`--create-tables`).
    ToBeCreated,
    /// It does not exist, or this role may not use it.
    Missing,
    /// Snowflake could not be asked.
    Unknown,
}

/// One topic of a [`Plan`].
#[derive(Debug, Clone, Serialize)]
pub struct TopicPlan {
    /// The topic.
    pub topic: String,
    /// `--topic` (listed, also by a connector file or `--topic-map`) or `--topic-regex`.
    pub matched_by: &'static str,
    /// Its partitions (`None`: the brokers could not be asked, or do not have it).
    pub partitions: Option<usize>,
    /// The table of its pipe when the pipe is a default pipe `<TABLE>-STREAMING`.
    pub table: Option<String>,
    /// What is known of [`table`](Self::table).
    pub table_state: Option<State>,
    /// The pipe the run writes through (`None`: no pipe, see the problems).
    pub pipe: Option<String>,
    /// What is known of the pipe.
    pub pipe_state: State,
    /// How the pipe was chosen.
    pub pipe_rule: String,
    /// One channel per partition.
    pub channels: Vec<ChannelPlan>,
}

/// One partition of a [`TopicPlan`].
#[derive(Debug, Clone, Serialize)]
pub struct ChannelPlan {
    /// The partition.
    pub partition: i32,
    /// Its channel, as the run names it.
    pub channel: String,
    /// Whether Snowflake knows the channel (`None`: not asked).
    pub exists: Option<bool>,
    /// The channel's committed offset token.
    pub committed_token: Option<String>,
    /// The consumer group's committed offset (the next offset to read, by Kafka's convention).
    pub group_offset: Option<i64>,
    /// The partition's first offset.
    pub log_start: Option<i64>,
    /// The partition's end: the offset its next message gets.
    pub log_end: Option<i64>,
    /// Where the run would start reading (`None`: decided at run time, see the reason).
    pub start: Option<i64>,
    /// Why there.
    pub start_reason: String,
}

/// Runs `check`: prints the plan on stdout (text, or one JSON document).
///
/// # Errors
/// A configuration that does not parse (as a run refuses it, before connecting), or a plan
/// with problems (each named; the plan is printed first).
pub async fn run(args: CheckArgs) -> Result<()> {
    let plan = plan(args.sink).await?;
    match args.format {
        Format::Text => print!("{}", plan.text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
    }
    if plan.would_start {
        Ok(())
    } else {
        Err(anyhow!(
            "a run would not start: {}",
            plan.problems.join("; ")
        ))
    }
}

/// The plan of a run with `args`, asked of the brokers, the registry and Snowflake without
/// changing anything (see the module docs).
///
/// # Errors
/// What a run refuses before connecting: files that cannot be read, options that do not fit
/// ([`SinkArgs::settings`]).
pub async fn plan(mut args: SinkArgs) -> Result<Plan> {
    args.load_kafka_config()?;
    args.load_topic_map()?;
    let settings = args.settings()?;
    let regex = args
        .topic_regex
        .as_deref()
        .map(crate::connector::topic_table::topic_regex)
        .transpose()?;
    let mut plan = Plan {
        would_start: true,
        problems: Vec::new(),
        warnings: settings.warnings.clone(),
        kafka: KafkaSide {
            brokers: args.brokers.clone(),
            group: args.group.clone(),
            reachable: false,
            topic_regex: args.topic_regex.clone(),
            dead_letter_topic: settings.dead_letters.as_ref().map(|d| d.topic.clone()),
        },
        registry: None,
        snowflake: SnowflakeSide {
            database: settings.database.clone(),
            schema: settings.schema.clone(),
            connected: false,
        },
        topics: Vec::new(),
    };

    // The three sides at once: none needs another's answer.
    let kafka = {
        let config = settings.consumer.clone();
        let properties = settings.properties.clone();
        let listed = settings.listed_topics.clone();
        let dead_letter = plan.kafka.dead_letter_topic.clone();
        tokio::task::spawn_blocking(move || {
            kafka_facts(
                &config,
                &properties,
                &listed,
                regex.as_ref(),
                dead_letter.as_deref(),
            )
        })
    };
    let registry = async {
        match settings.values.decoder() {
            Ok(Some(decoder)) => {
                let registry = decoder.registry();
                Some(Ok((registry.urls().to_vec(), registry.probe().await)))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    };
    let snowflake = async { args.client_builder()?.build().await.map_err(Into::into) };
    let (kafka, registry, client): (_, _, Result<StreamingIngestClient>) =
        tokio::join!(kafka, registry, snowflake);
    let kafka = kafka.map_err(|e| anyhow!("the Kafka check stopped: {e}"))?;

    plan.kafka.reachable = kafka.error.is_none();
    if let Some(e) = &kafka.error {
        plan.problems.push(e.clone());
    }
    plan.problems.extend(kafka.problems.iter().cloned());
    plan.warnings.extend(kafka.warnings.iter().cloned());
    match registry {
        None => {}
        Some(Err(e)) => plan.problems.push(format!("Schema Registry: {e:#}")),
        Some(Ok((urls, probe))) => {
            let answers = matches!(probe, Probe::Answers(_));
            match probe {
                Probe::Answers(_) => {}
                Probe::Refused(why) => plan.problems.push(why),
                Probe::Unreachable(why) => plan.problems.push(format!(
                    "the Schema Registry cannot be reached: {why}: check \
                     --schema-registry-url (a run would wait for it at the first message)"
                )),
            }
            plan.registry = Some(RegistrySide { urls, answers });
        }
    }
    let client = match client {
        Ok(c) => {
            plan.snowflake.connected = true;
            Some(c)
        }
        Err(e) => {
            plan.problems.push(snowflake_refused(&e));
            None
        }
    };

    for topic in &kafka.topics {
        let plan_of = topic_plan(topic, &settings, client.as_ref(), &mut plan.problems).await;
        plan.warnings.extend(group_ahead(&plan_of));
        plan.topics.push(plan_of);
    }
    if let Some(c) = client {
        let _ = c.close().await;
    }
    plan.would_start = plan.problems.is_empty();
    Ok(plan)
}

/// Why the Snowflake client could not connect, and the fix.
fn snowflake_refused(e: &anyhow::Error) -> String {
    match e.downcast_ref::<snowpipe_streaming::Error>() {
        Some(snowpipe_streaming::Error::Auth { .. }) => format!(
            "Snowflake refused the connection: {e:#}: check the account, the user and that the \
             key's public half is registered on that user (ALTER USER … SET RSA_PUBLIC_KEY, \
             {SETUP_PAGE})"
        ),
        Some(snowpipe_streaming::Error::Transport(_)) => format!(
            "Snowflake cannot be reached: {e:#}: check SNOWFLAKE_ACCOUNT or SNOWFLAKE_URL (or \
             the profile) and the network"
        ),
        _ => format!("the Snowflake connection: {e:#}"),
    }
}

/// What the brokers said.
#[derive(Debug, Default)]
struct KafkaFacts {
    /// Why the brokers could not be asked at all.
    error: Option<String>,
    /// What stops a run (a listed topic missing, the group refused).
    problems: Vec<String>,
    /// What does not.
    warnings: Vec<String>,
    /// The listed topics, then those the regex matches now.
    topics: Vec<TopicFacts>,
}

#[derive(Debug, Default)]
struct TopicFacts {
    name: String,
    listed: bool,
    /// `None`: not known (the brokers could not be asked, or do not have the topic).
    partitions: Option<Vec<PartitionFacts>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct PartitionFacts {
    id: i32,
    log_start: Option<i64>,
    log_end: Option<i64>,
    group_offset: Option<i64>,
}

/// Asks the brokers, with a consumer of `config` that never subscribes (it joins no group and
/// commits nothing): the topics, their partitions, watermarks and the group's offsets.
fn kafka_facts(
    config: &rdkafka::ClientConfig,
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
    let why = |e: &KafkaError| scrub(&e.to_string(), properties);
    let mut config = config.clone();
    config
        .set("allow.auto.create.topics", "false")
        .set("statistics.interval.ms", "0");
    let consumer: BaseConsumer = match config.create() {
        Ok(c) => c,
        Err(e) => {
            facts.error = Some(format!("cannot make the Kafka consumer: {}", why(&e)));
            return facts;
        }
    };
    let all = match consumer.fetch_metadata(None, KAFKA_TIMEOUT) {
        Ok(m) => m,
        Err(e) => {
            facts.error = Some(format!(
                "cannot reach the Kafka brokers {} within {KAFKA_TIMEOUT:?} ({}): check \
                 --brokers, the network, and the security settings (--kafka-config, -X \
                 security.protocol, sasl.*)",
                config.get("bootstrap.servers").unwrap_or_default(),
                why(&e)
            ));
            return facts;
        }
    };
    let partitions_of = |t: &rdkafka::metadata::MetadataTopic| -> Vec<PartitionFacts> {
        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| PartitionFacts {
                id,
                ..PartitionFacts::default()
            })
            .collect()
    };
    for topic in &mut facts.topics {
        // Asked one by one: a topic the principal may not describe is absent from the whole
        // listing, and its own answer says why.
        let error = match consumer.fetch_metadata(Some(&topic.name), KAFKA_TIMEOUT) {
            Err(e) => Some(why(&e)),
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
        };
        if let Some(e) = error {
            facts.problems.push(format!(
                "topic {}: {e}: it does not exist, or this consumer's principal may not describe \
                 it: create it, correct --topic (or the connector file's topics), or grant the \
                 principal Describe and Read on it (Kafka ACLs)",
                topic.name
            ));
        }
    }
    if let Some(re) = regex {
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
        let there = all
            .topics()
            .iter()
            .any(|t| t.name() == dlq && t.error().is_none() && !t.partitions().is_empty());
        if !there {
            facts.warnings.push(format!(
                "--dead-letter-topic {dlq} is not among the topics the brokers list: a dead \
                 letter fails unless the brokers create topics on first use; create it"
            ));
        }
    }

    // The partitions' watermarks, then the group's offsets in one request.
    let mut wanted = TopicPartitionList::new();
    for topic in &mut facts.topics {
        for p in topic.partitions.iter_mut().flatten() {
            if let Ok((low, high)) = consumer.fetch_watermarks(&topic.name, p.id, KAFKA_TIMEOUT) {
                p.log_start = Some(low);
                p.log_end = Some(high);
            }
            wanted.add_partition(&topic.name, p.id);
        }
    }
    if wanted.count() > 0 {
        match consumer.committed_offsets(wanted, KAFKA_TIMEOUT) {
            Ok(committed) => {
                let offsets: HashMap<(String, i32), i64> = committed
                    .elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
                        _ => None,
                    })
                    .collect();
                for topic in &mut facts.topics {
                    for p in topic.partitions.iter_mut().flatten() {
                        p.group_offset = offsets.get(&(topic.name.clone(), p.id)).copied();
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
                    config.get("group.id").unwrap_or_default(),
                    why(&e)
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
    facts
}

/// The plan of one topic: its pipe chosen as the run chooses it, asked of Snowflake with
/// read-only calls, and its channels' tokens beside the group's offsets. Problems go to
/// `problems`.
async fn topic_plan(
    topic: &TopicFacts,
    settings: &Settings,
    client: Option<&StreamingIngestClient>,
    problems: &mut Vec<String>,
) -> TopicPlan {
    let name = &topic.name;
    let mut out = TopicPlan {
        topic: name.clone(),
        matched_by: if topic.listed {
            "--topic"
        } else {
            "--topic-regex"
        },
        partitions: topic.partitions.as_ref().map(Vec::len),
        table: None,
        table_state: None,
        pipe: None,
        pipe_state: State::Unknown,
        pipe_rule: String::new(),
        channels: Vec::new(),
    };
    let partitions = topic.partitions.clone().unwrap_or_default();
    out.channels = partitions
        .iter()
        .map(|p| ChannelPlan {
            partition: p.id,
            channel: settings.channels.channel_name(name, p.id),
            exists: None,
            committed_token: None,
            group_offset: p.group_offset,
            log_start: p.log_start,
            log_end: p.log_end,
            start: None,
            start_reason: "not known: Snowflake could not be asked".to_owned(),
        })
        .collect();
    let configured = match settings.routes.pipe_of(name) {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!("topic {name}: no pipe: {e:#}"));
            out.pipe_rule = "none".to_owned();
            return out;
        }
    };
    let table = default_pipe_table(&configured);
    out.table.clone_from(&table);
    out.pipe = Some(configured.clone());
    out.pipe_rule = match &table {
        Some(t) => format!("the default pipe of table {t}"),
        None => "named by the configuration".to_owned(),
    };
    let Some(client) = client else {
        out.table_state = table.as_ref().map(|_| State::Unknown);
        return out;
    };
    let (db, schema) = (&settings.database, &settings.schema);
    // `--create-tables`: the run describes the table before it creates it; so does check, and
    // stops there.
    let mut table_state = None;
    if let (Some(creator), Some(t)) = (&settings.tables, &table) {
        match creator.table_exists(&configured).await {
            Ok(true) => table_state = Some(State::Exists),
            Ok(false) => table_state = Some(State::ToBeCreated),
            Err(e) => {
                problems.push(format!("topic {name}: table {t}: {e:#}"));
                table_state = Some(State::Unknown);
            }
        }
    }
    // `--table-named-pipes`: a pipe named like the table wins (`desc pipe`).
    let mut pipe = configured.clone();
    if let Some(named) = &settings.named_pipes {
        match named.pipe_for(&configured).await {
            Ok(p) => {
                if p != configured {
                    out.pipe_rule = format!(
                        "named like table {} (--table-named-pipes), not its default pipe \
                         {configured}",
                        table.as_deref().unwrap_or_default()
                    );
                }
                pipe = p;
            }
            Err(e) => {
                problems.push(format!("topic {name}: {e:#}"));
                out.table_state = table_state.or(Some(State::Unknown));
                return out;
            }
        }
    }
    out.pipe = Some(pipe.clone());
    // The channels' statuses, in bulk: read-only. With no partition known, a name never
    // written still asks whether the pipe exists.
    let names: Vec<String> = if out.channels.is_empty() {
        vec![settings.channels.channel_name(name, 0)]
    } else {
        out.channels.iter().map(|c| c.channel.clone()).collect()
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let statuses = client.pipe(db, schema, &pipe).channel_statuses(&refs).await;
    let creating = table_state == Some(State::ToBeCreated);
    let statuses = match statuses {
        Ok(s) => {
            out.pipe_state = State::Exists;
            if table.is_some() && pipe == configured {
                // A default pipe answers only for a table that exists.
                table_state = Some(State::Exists);
            }
            s
        }
        Err(e) if is_missing(&e) => {
            if creating && pipe == configured {
                out.pipe_state = State::ToBeCreated;
            } else if table_state == Some(State::Unknown) {
                // `desc table` failed: already a problem, and the table's state is not known.
                out.pipe_state = State::Missing;
            } else {
                out.pipe_state = State::Missing;
                let table_of_pipe = table.as_deref().filter(|_| pipe == configured);
                problems.push(missing(
                    name,
                    db,
                    schema,
                    &pipe,
                    table_of_pipe,
                    settings,
                    &e,
                ));
                if table.is_some() && pipe == configured && settings.tables.is_none() {
                    table_state = Some(State::Missing);
                }
            }
            HashMap::new()
        }
        Err(e) => {
            problems.push(match e {
                snowpipe_streaming::Error::Auth { .. } => format!(
                    "Snowflake refused the channel-status call on pipe {db}.{schema}.{pipe}: \
                     {e}"
                ),
                e => format!(
                    "topic {name}: cannot read the channels of pipe {db}.{schema}.{pipe}: {e}"
                ),
            });
            out.table_state = table_state.or(table.as_ref().map(|_| State::Unknown));
            return out;
        }
    };
    out.table_state = table_state;
    for c in &mut out.channels {
        let status = statuses.get(&c.channel);
        c.exists = Some(status.is_some());
        let token = status.and_then(|s| s.committed_offset_token.as_ref());
        c.committed_token = token.map(|t| t.as_str().to_owned());
        let (start, reason) = start_of(
            token.map(|t| (t.as_str(), t.as_u64())),
            settings.start,
            settings.migrator.is_some(),
            c.log_start,
            c.log_end,
        );
        c.start = start;
        c.start_reason = reason;
    }
    out
}

/// The warning for a topic whose group has committed offsets where its channels have no
/// committed token: the run reads those partitions from `--start`, not from the group's
/// offsets (a group, channel prefix, connector name or pipe other than the earlier runs'?).
fn group_ahead(topic: &TopicPlan) -> Option<String> {
    let ahead: Vec<String> = topic
        .channels
        .iter()
        .filter(|c| c.exists.is_some() && c.committed_token.is_none())
        .filter(|c| c.group_offset.is_some_and(|g| g > c.log_start.unwrap_or(0)))
        .map(|c| c.partition.to_string())
        .collect();
    (!ahead.is_empty()).then(|| {
        format!(
            "topic {}: the group has committed offsets for partition{} {} but {} no committed \
             token: a run starts {} by --start, not at the group's offsets (the sink starts \
             from Snowflake's committed token alone); if earlier runs wrote these partitions, \
             check --group, --channel-prefix, --connector-name and the pipe",
            topic.topic,
            if ahead.len() == 1 { "" } else { "s" },
            ahead.join(", "),
            if ahead.len() == 1 {
                "its channel has"
            } else {
                "their channels have"
            },
            if ahead.len() == 1 { "it" } else { "them" },
        )
    })
}

/// Whether a status call failed because the pipe (or a default pipe's table) does not exist
/// or may not be used.
fn is_missing(e: &snowpipe_streaming::Error) -> bool {
    matches!(e, snowpipe_streaming::Error::Server(s)
        if s.status == 404 || s.code.as_deref().is_some_and(|c| c.contains("DOES_NOT_EXIST")))
}

/// The problem of a pipe that does not exist, naming the fix.
fn missing(
    topic: &str,
    db: &str,
    schema: &str,
    pipe: &str,
    table: Option<&str>,
    settings: &Settings,
    e: &snowpipe_streaming::Error,
) -> String {
    match table {
        Some(t) if settings.tables.is_none() => format!(
            "topic {topic}: table {db}.{schema}.{t} does not exist (or this role may not use \
             it) and --create-tables is off: create it ({SETUP_PAGE}) or pass --create-tables \
             ({e})"
        ),
        Some(t) => format!(
            "topic {topic}: the default pipe {pipe} of table {db}.{schema}.{t}, which exists, \
             cannot be used: grant this role INSERT on the table ({SETUP_PAGE}) ({e})"
        ),
        None => format!(
            "topic {topic}: pipe {db}.{schema}.{pipe} does not exist (or this role may not use \
             it): create it (CREATE PIPE … AS COPY INTO … FROM TABLE(DATA_SOURCE(TYPE => \
             'STREAMING')), {SETUP_PAGE}), grant this role OPERATE and MONITOR on it, or name \
             another with --pipe ({e})"
        ),
    }
}

/// Where the run starts a partition, and why: after the channel's committed `token` (its
/// text, and its value when it is a number), else by `start`; `migrate`: a channel without a
/// token asks v3's classic channel first (`--migrate-v3-offsets`, which check does not run: it
/// writes the token).
fn start_of(
    token: Option<(&str, Option<u64>)>,
    start: Start,
    migrate: bool,
    log_start: Option<i64>,
    log_end: Option<i64>,
) -> (Option<i64>, String) {
    let by_start = |why: &str| match start {
        Start::Earliest => (
            log_start,
            format!("the log start ({why}, --start earliest)"),
        ),
        Start::Latest => (log_end, format!("the log end ({why}, --start latest)")),
    };
    match token {
        Some((_, Some(t))) => {
            let next = i64::try_from(t).unwrap_or(i64::MAX - 1).saturating_add(1);
            match log_start {
                Some(low) if low > next => (
                    Some(low),
                    format!(
                        "the log start: the committed token + 1 ({next}) was deleted by \
                         retention before it landed (auto.offset.reset=earliest)"
                    ),
                ),
                _ => (Some(next), "the committed token + 1".to_owned()),
            }
        }
        Some((text, None)) => by_start(&format!(
            "the committed token {text:?} is not a Kafka offset, so it is not a position"
        )),
        None if migrate => (
            None,
            format!(
                "connector v3's offset + 1 when SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET finds its \
                 classic channel (--migrate-v3-offsets; check does not run it: it writes), \
                 else {}",
                by_start("no committed token").1
            ),
        ),
        None => by_start("no committed token"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The run starts after the committed token; at the log start when retention deleted
    /// that offset; by `--start` without a token or with one that is no Kafka offset; and a
    /// migration is named, not run.
    #[test]
    fn where_a_partition_starts_follows_the_sink() {
        let (low, high) = (Some(5), Some(40));
        assert_eq!(
            start_of(Some(("9", Some(9))), Start::Earliest, false, low, high),
            (Some(10), "the committed token + 1".to_owned())
        );
        let (at, why) = start_of(Some(("2", Some(2))), Start::Earliest, false, low, high);
        assert_eq!(at, Some(5));
        assert!(why.contains("deleted by retention"), "{why}");
        let (at, why) = start_of(None, Start::Earliest, false, low, high);
        assert_eq!(at, Some(5));
        assert!(why.contains("--start earliest"), "{why}");
        let (at, why) = start_of(None, Start::Latest, false, low, high);
        assert_eq!(at, Some(40));
        assert!(why.contains("--start latest"), "{why}");
        let (at, why) = start_of(Some(("a-7", None)), Start::Latest, false, low, high);
        assert_eq!(at, Some(40));
        assert!(why.contains("not a Kafka offset"), "{why}");
        let (at, why) = start_of(None, Start::Earliest, true, low, high);
        assert_eq!(at, None);
        assert!(
            why.contains("SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET") && why.contains("--start earliest"),
            "{why}"
        );
    }

    /// Group offsets where the channels have no token: a warning naming the partitions.
    #[test]
    fn a_group_ahead_of_channels_without_tokens_is_warned_about() {
        let channel = |partition, token: Option<&str>, group| ChannelPlan {
            partition,
            channel: format!("g_t_{partition}"),
            exists: Some(token.is_some()),
            committed_token: token.map(str::to_owned),
            group_offset: group,
            log_start: Some(0),
            log_end: Some(50),
            start: None,
            start_reason: String::new(),
        };
        let mut topic = TopicPlan {
            topic: "t".into(),
            matched_by: "--topic",
            partitions: Some(3),
            table: None,
            table_state: None,
            pipe: Some("P".into()),
            pipe_state: State::Exists,
            pipe_rule: String::new(),
            channels: vec![
                channel(0, Some("39"), Some(40)),
                channel(1, None, Some(40)),
                channel(2, None, None),
            ],
        };
        let warning = group_ahead(&topic).expect("a warning");
        assert!(
            warning.contains("partition 1 but its channel has no committed token"),
            "{warning}"
        );
        topic.channels.remove(1);
        assert_eq!(group_ahead(&topic), None);
    }
}
