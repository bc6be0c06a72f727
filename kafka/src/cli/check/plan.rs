//! The plan's shape ([`Plan`] and its parts): what `check` prints as text or as one JSON
//! document (its fields, in this order).

use serde::Serialize;

/// What a run would do, and what stops it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Plan {
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
pub(crate) struct KafkaSide {
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
pub(crate) struct RegistrySide {
    /// The registries' URLs.
    pub urls: Vec<String>,
    /// Whether one answered and took the credentials.
    pub answers: bool,
}

/// The Snowflake side of a [`Plan`].
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SnowflakeSide {
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
pub(crate) enum State {
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
pub(crate) struct TopicPlan {
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
pub(crate) struct ChannelPlan {
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
