//! What the sink runs with: plain values, made from the command line by
//! [`crate::cli::args::SinkArgs::settings`] (or by a library caller), so that no room below the
//! command line knows its flags.

use std::time::Duration;

use clap::ValueEnum;
use rdkafka::ClientConfig;

use crate::connector::create_tables::{TableCreator, TableNamedPipes};
use crate::connector::migrate_v3::Migrator;
use crate::connector::naming::ChannelNames;
use crate::connector::table_columns::ClientSide;
use crate::connector::topic_table::Routes;
use crate::rows::record::RowOptions;
use crate::rows::value_format::FormatArgs;
use crate::source::properties::Property;

/// Where a partition starts when its channel has no committed offset token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Start {
    /// The partition's first message.
    Earliest,
    /// Only messages produced from now on.
    Latest,
}

/// The dead-letter topic and the producer that writes to it.
#[derive(Clone)]
pub struct DeadLetterTopic {
    /// The topic.
    pub topic: String,
    /// The producer's librdkafka properties (the consumer's connection).
    pub producer: ClientConfig,
}

/// Everything [`crate::sink::run`] needs besides the streaming client. Its `Debug` shows no
/// librdkafka property (they may hold passwords).
pub struct Settings {
    /// Warnings to log when the sink starts (one line each).
    pub warnings: Vec<String>,
    /// The rules that give each topic its pipe, topics found at run time included.
    pub routes: Routes,
    /// How each partition's channel is named.
    pub channels: ChannelNames,
    /// The database and schema of the pipes.
    pub database: String,
    /// See `database`.
    pub schema: String,
    /// Where a partition with no committed offset token starts.
    pub start: Start,
    /// How long a revoked partition's worker may take to deliver and close.
    pub hand_over_timeout: Duration,
    /// The byte budget of the batches between the poll thread and the workers.
    pub queue_bytes: usize,
    /// Where messages that cannot be rows go (`None`: skipped, logged and counted).
    pub dead_letters: Option<DeadLetterTopic>,
    /// The user's librdkafka properties (to keep their values out of errors).
    pub properties: Vec<Property>,
    /// How values are read (JSON as it is, or a Schema Registry format).
    pub values: FormatArgs,
    /// `--create-tables`.
    pub tables: Option<TableCreator>,
    /// `--table-named-pipes`.
    pub named_pipes: Option<TableNamedPipes>,
    /// `snowflake.validation=client_side` (`--client-side-validation`).
    pub client_side: Option<ClientSide>,
    /// `--migrate-v3-offsets`.
    pub migrator: Option<Migrator>,
    /// How messages become rows.
    pub rows: RowOptions,
    /// The consumer's librdkafka properties.
    pub consumer: ClientConfig,
    /// What the consumer subscribes to (topics, and a `^regex` pattern).
    pub subscription: Vec<String>,
    /// The topics listed by name (checked to exist when nothing arrives).
    pub listed_topics: Vec<String>,
    /// No progress lines.
    pub quiet: bool,
    /// Stop after this long with nothing to read (`None`: run until stopped).
    pub until_idle: Option<Duration>,
    /// `--stall-after`: a partition whose commits have not moved for this long while work
    /// waits is stalled.
    pub stall_after: Duration,
}

impl std::fmt::Debug for DeadLetterTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterTopic")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("routes", &self.routes)
            .field("channels", &self.channels)
            .field("database", &self.database)
            .field("schema", &self.schema)
            .field("start", &self.start)
            .field("dead_letters", &self.dead_letters)
            .field("rows", &self.rows)
            .field("subscription", &self.subscription)
            .finish_non_exhaustive()
    }
}
