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
//!   be used with "does not exist or not authorized" (`docs/protocol-wire.md` §4.7: a name never
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

use clap::ValueEnum;
use snowpipe_streaming::StreamingIngestClient;

use crate::cli::args::SinkArgs;
use crate::error::{err, Result};
use crate::formats::registry::Probe;
use crate::sink::settings::Settings;

mod brokers;
mod plan;
mod snowflake;
mod start;
mod text;

pub(crate) use plan::{KafkaSide, Plan, RegistrySide, SnowflakeSide, TopicPlan};

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
        Err(err!(
            Sink,
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
pub(crate) async fn plan(mut args: SinkArgs) -> Result<Plan> {
    args.load_kafka_config()?;
    args.load_topic_map()?;
    let settings = args.settings()?;
    let regex = args
        .topic_regex
        .as_deref()
        .map(crate::connector::topic_table::topic_regex)
        .transpose()?;
    let mut plan = unasked(&args, &settings);

    // The three sides at once: none needs another's answer.
    let kafka = {
        let config = settings.consumer.clone();
        let properties = settings.properties.clone();
        let listed = settings.listed_topics.clone();
        let dead_letter = plan.kafka.dead_letter_topic.clone();
        tokio::task::spawn_blocking(move || {
            brokers::kafka_facts(
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
    let kafka = kafka.map_err(|e| err!(Kafka, "the Kafka check stopped: {e}"))?;

    plan.kafka.reachable = kafka.error.is_none();
    if let Some(e) = &kafka.error {
        plan.problems.push(e.clone());
    }
    plan.problems.extend(kafka.problems.iter().cloned());
    plan.warnings.extend(kafka.warnings.iter().cloned());
    match registry {
        None => {}
        Some(Err(e)) => plan.problems.push(format!("Schema Registry: {e:#}")),
        Some(Ok((urls, probe))) => plan.registry = Some(registry_side(urls, probe, &mut plan)),
    }
    let client = match client {
        Ok(c) => {
            plan.snowflake.connected = true;
            Some(c)
        }
        Err(e) => {
            plan.problems.push(snowflake::snowflake_refused(&e));
            None
        }
    };

    for topic in &kafka.topics {
        let plan_of =
            snowflake::topic_plan(topic, &settings, client.as_ref(), &mut plan.problems).await;
        plan.warnings.extend(start::group_ahead(&plan_of));
        plan.topics.push(plan_of);
    }
    if let Some(c) = client {
        let _ = c.close().await;
    }
    plan.would_start = plan.problems.is_empty();
    Ok(plan)
}

/// The plan before anything is asked: the configuration's sides, nothing reachable yet.
fn unasked(args: &SinkArgs, settings: &Settings) -> Plan {
    Plan {
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
    }
}

/// The registry side of the plan from the registries' `urls` and what a `probe` of them
/// said; a registry that refuses or cannot be reached is a problem of `plan`.
fn registry_side(urls: Vec<String>, probe: Probe, plan: &mut Plan) -> RegistrySide {
    let answers = matches!(probe, Probe::Answers(_));
    match probe {
        Probe::Answers(_) => {}
        Probe::Refused(why) => plan.problems.push(why),
        Probe::Unreachable(why) => plan.problems.push(format!(
            "the Schema Registry cannot be reached: {why}: check \
             --schema-registry-url (a run would wait for it at the first message)"
        )),
    }
    RegistrySide { urls, answers }
}
