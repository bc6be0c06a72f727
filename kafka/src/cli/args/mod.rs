//! The command line (a contract other tools rely on: `docs/` of the repository and
//! `shared/design.md`) and what it becomes: librdkafka properties and the sink's settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::error::{err, fail, Context, Error, Result};
use crate::formats::ValueFormat;
use crate::rows::layout::{LayoutKind, OnNullValue};
use crate::source::properties::{self, Property};

pub(crate) use crate::sink::settings::Start;

/// `snowpipe-kafka --brokers … --topic … --group … --database … --schema … --pipe …`.
#[derive(Debug, Clone, Args)]
pub struct SinkArgs {
    /// Kafka bootstrap servers, `HOST:PORT[,HOST:PORT...]`.
    #[arg(long, value_name = "HOST:PORT[,...]")]
    pub brokers: String,
    /// A topic to consume (repeat for several; each needs its `--pipe`, in the same order).
    #[arg(
        long = "topic",
        value_name = "T",
        required_unless_present_any = ["topic_map", "topic_regex"]
    )]
    pub topics: Vec<String>,
    /// Also consume every topic whose whole name matches this regex (POSIX extended syntax, as
    /// librdkafka reads it: `.` `*` `+` `?` `[a-z]` `(a|b)` `\.`), including topics created
    /// later (found by librdkafka's metadata refresh, `topic.metadata.refresh.interval.ms`).
    /// Their pipe: `--topic2table-map`, else a single `--pipe`, else the Kafka connector's
    /// default `"<topic>-STREAMING"`.
    #[arg(long, value_name = "REGEX")]
    pub topic_regex: Option<String>,
    /// The Kafka connector's `snowflake.topic2table.map`, `TOPIC:TABLE[,TOPIC:TABLE...]`
    /// (topics may be regexes): a topic without a `--pipe` goes to its table's default pipe
    /// `<TABLE>-STREAMING` (a `"quoted"` table keeps its case, others are upper-cased).
    #[arg(long = "topic2table-map", value_name = "MAP")]
    pub topic2table_map: Option<String>,
    /// Tables of `--topic2table-map` are templates: `$1`..`$9` and `${name}` are the topic
    /// regex's groups (the connector's `snowflake.topic2table.map.regex.replacement=true`).
    #[arg(long = "topic2table-regex-replacement", requires = "topic2table_map")]
    pub topic2table_regex_replacement: bool,
    /// The consumer group: instances with the same group share the partitions.
    #[arg(long, value_name = "G")]
    pub group: String,
    /// Snowflake database of the pipes.
    #[arg(long, value_name = "D")]
    pub database: String,
    /// Snowflake schema of the pipes.
    #[arg(long, value_name = "S")]
    pub schema: String,
    /// The pipe of each `--topic` (one for all topics, or one per topic in order). Without
    /// it, a topic goes to its table's default pipe as Snowflake's Kafka connector names it:
    /// the table named as the topic, `"<topic>-STREAMING"` (case kept).
    #[arg(long = "pipe", value_name = "P")]
    pub pipes: Vec<String>,
    /// A TOML file mapping topics to pipes, `[topics]` then `TOPIC = "PIPE"` lines (added to
    /// any `--topic`/`--pipe`).
    #[arg(long, value_name = "FILE")]
    pub topic_map: Option<PathBuf>,
    /// Channel names are `<prefix>_<topic>_<partition>` (default: the group).
    #[arg(long, value_name = "X")]
    pub channel_prefix: Option<String>,
    /// Continue Snowflake's Kafka connector `NAME` (its `name`): open its channels, named as
    /// it names them (v4: `<NAME sanitized, upper-cased>_<topic>_<partition>`), and resume each
    /// partition at its committed offset + 1. Stop the connector first: opening a channel
    /// fences it.
    #[arg(long, value_name = "NAME", value_parser = crate::connector::naming::parse_name,
          conflicts_with = "channel_prefix")]
    pub connector_name: Option<crate::connector::naming::ConnectorName>,
    /// The connector version whose channel names `--connector-name` continues (default v4;
    /// v3 ones start from v3's offsets with `--migrate-v3-offsets`, see kafka/README.md).
    #[arg(long, value_enum, value_name = "VERSION", requires = "connector_name")]
    pub connector_naming: Option<crate::connector::naming::Naming>,
    /// Snowflake's Kafka connector's configuration (Kafka Connect JSON `{"name", "config"}`, or
    /// `.properties`): its keys become these options (the command line wins), its Snowflake
    /// connection the client's; keys without an equivalent are listed at start. See
    /// kafka/README.md, "Moving from the Kafka connector".
    #[arg(long, value_name = "FILE")]
    pub connector_config: Option<PathBuf>,
    /// The Snowflake connection `--connector-config` names (never an option: it holds the key).
    #[arg(skip)]
    pub connection: Option<crate::connector::config_file::Connection>,
    /// The Schema Registry credentials `--connector-config` names (never an option; `Debug`
    /// shows no secret). `--schema-registry-basic-auth` wins.
    #[arg(skip)]
    pub registry_auth: Option<crate::formats::registry::BasicAuth>,
    /// `--connector-config`'s `value.converter.basic.auth.credentials.source=SASL_INHERIT`: the
    /// Schema Registry credentials are the Kafka login's (`sasl.username`, `sasl.password` of
    /// `--kafka-config` / `-X`). `--schema-registry-basic-auth` wins.
    #[arg(skip)]
    pub registry_auth_inherit: bool,
    /// Create a missing table as Snowflake's Kafka connector does (`RECORD_METADATA VARIANT`,
    /// schema evolution and error logging on) through the SQL API, when its first partition is
    /// assigned; the pipes must be default pipes `<TABLE>-STREAMING`. See kafka/README.md,
    /// "Creating tables".
    #[arg(long)]
    pub create_tables: bool,
    /// Write a table through the pipe named exactly like it when one exists (`desc pipe`),
    /// else through its default pipe `<TABLE>-STREAMING`, as Snowflake's Kafka connector v4
    /// does (on with `--connector-config` unless a `--pipe` is not a default pipe). See
    /// kafka/README.md, "With the connector's own file".
    #[arg(long)]
    pub table_named_pipes: bool,
    /// Do not create tables, though a `--connector-config` would (the connector's default,
    /// `snowflake.autocreate.table.type` unset or `snowflake`, is to create them).
    #[arg(long, conflicts_with = "create_tables")]
    pub no_create_tables: bool,
    /// Take connector v3's position when a partition's channel has no committed token, through
    /// `SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET` (the connector's
    /// `snowflake.streaming.classic.offset.migration`): `skip` (default), `best-effort` (go on
    /// when v3's classic channel is not found), `strict` (stop then). See kafka/README.md,
    /// "From connector v3".
    #[arg(long, value_enum, value_name = "MODE", default_value = "skip")]
    pub migrate_v3_offsets: crate::connector::migrate_v3::Mode,
    /// v3's classic channels are `<NAME>_<topic>_<partition>` (v3 ran with
    /// `snowflake.streaming.channel.name.include.connector.name=true`), not
    /// `<topic>_<partition>`.
    #[arg(long, requires = "connector_name")]
    pub migrate_v3_include_connector_name: bool,
    /// Add a `RECORD_METADATA` column (topic, partition, offset, timestamp, key, headers).
    #[arg(long)]
    pub metadata: bool,
    /// No `topic` in `RECORD_METADATA` (the connector's `snowflake.metadata.topic=false`).
    #[arg(long, requires = "metadata")]
    pub no_metadata_topic: bool,
    /// No `offset` and `partition` in `RECORD_METADATA` (the connector's
    /// `snowflake.metadata.offset.and.partition=false`).
    #[arg(long, requires = "metadata")]
    pub no_metadata_offset_and_partition: bool,
    /// No `CreateTime` / `LogAppendTime` in `RECORD_METADATA` (the connector's
    /// `snowflake.metadata.createtime=false`).
    #[arg(long, requires = "metadata")]
    pub no_metadata_createtime: bool,
    /// Write messages that cannot be rows here (reason in the `snowpipe.error` header);
    /// without it they are skipped, logged and counted.
    #[arg(long, value_name = "T")]
    pub dead_letter_topic: Option<String>,
    /// Where a partition starts when its channel has no committed offset token.
    #[arg(long, value_enum, default_value_t = Start::Earliest)]
    pub start: Start,
    /// Snowflake connection from the official SDK's profile.json, or from a Snowflake
    /// connections.toml when FILE ends in `.toml` (its default connection, or the one
    /// `--connection` names); else `SNOWFLAKE_*`.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// A connection of Snowflake's connections.toml: of the `--profile` file when it ends in
    /// `.toml`, else of the file Snowflake's CLI and connectors use (in `$SNOWFLAKE_HOME`,
    /// `~/.snowflake` or `~/.config/snowflake`). Without NAME, the default connection as
    /// Snowflake's tools choose it (`SNOWFLAKE_DEFAULT_CONNECTION_NAME`, then
    /// `default_connection_name`, then `default`). See docs/connections-toml.md.
    #[arg(
        long = "connection",
        value_name = "NAME",
        num_args = 0..=1,
        default_missing_value = ""
    )]
    pub connection_name: Option<String>,
    /// Exit 0 once nothing was consumed for this long and everything sent is committed
    /// (e.g. `3s`, `500ms`, `2m`); non-zero, naming it, when a `--topic` does not exist or
    /// may not be described (it was never read). With several instances, make it longer than
    /// the group's session timeout: a member that died keeps its partitions until then.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub until_idle: Option<Duration>,
    /// A held partition is stalled once its committed offset has not moved for this long
    /// while messages wait past it or appended rows wait for their commit: a warning names
    /// it, `snowpipe_kafka_partition_stalled` is 1 and `/readyz` answers 503 listing it
    /// (kafka/docs/operations.md "Stalls"). The default is longer than a hand-over, a token
    /// refresh and the SDK's retries of a slow service.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub stall_after: Duration,
    /// How long a hand-over (revoke, SIGTERM) waits for Snowflake to commit.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub hand_over_timeout: Duration,
    /// How long rows may wait in the client before they are sent (the SDK's
    /// `max_client_lag`; default: the profile's or 1 s). Lower: fresher rows, more requests.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_client_lag: Option<Duration>,
    /// A librdkafka property, `KEY=VALUE` (kcat's convention), e.g. `-X session.timeout.ms=6000`.
    /// Put secrets in `--kafka-config` instead: a command line is visible to other users.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = properties::parse)]
    pub properties: Vec<Property>,
    /// librdkafka properties from a file of `KEY=VALUE` lines (`client.properties`, as kcat's
    /// `-F`): security settings and secrets. `-X` overrides it.
    #[arg(long, short = 'F', value_name = "FILE")]
    pub kafka_config: Option<PathBuf>,
    /// The sink's memory budget (e.g. `512MiB`, `2GiB`): up to a quarter (at most 32 MiB) for
    /// librdkafka's prefetch (`queued.max.messages.kbytes`), a quarter for messages on their
    /// way to the channels, the rest (at least half; 352 MiB of the default) for the SDK's
    /// buffers and uncommitted requests. A full sink stops reading until it has room again; a
    /// partition whose channel is stuck (over its share, no append for a while) or that holds
    /// five eighths of the second quarter is paused until it catches up.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "512MiB")]
    pub memory_budget: MemoryBudget,
    /// Serve `/metrics` (Prometheus), `/healthz` and `/readyz` on this port of 127.0.0.1
    /// (`9102`), or on `HOST:PORT` (`0.0.0.0:9102` for a scraper on another machine: the
    /// endpoint has no authentication, see kafka/README.md, "Metrics and health"); port 0
    /// picks a free one, logged at start.
    #[arg(long, value_name = "[HOST:]PORT", value_parser = parse_metrics_addr)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// `columns`: the value's keys are columns (the connector's schematized mode);
    /// `record-content`: `RECORD_CONTENT` holds any JSON value, or the decoded value of a
    /// Schema Registry `--value-format` (the connector with
    /// `snowflake.enable.schematization=false`). See kafka/README.md, "Row layouts".
    #[arg(long, value_enum, default_value_t = LayoutKind::Columns)]
    pub layout: LayoutKind,
    /// A message without a value (a tombstone): `write` a row of `RECORD_METADATA` alone
    /// (nothing without `--metadata`; the connector's `behavior.on.null.values=DEFAULT`),
    /// `skip` it (`IGNORE`), or `dead-letter` it.
    #[arg(long, value_enum, default_value_t = OnNullValue::Write)]
    pub on_null_value: OnNullValue,
    /// No `SnowflakeConnectorPushTime` in `RECORD_METADATA` (the connector's
    /// `snowflake.streaming.metadata.connectorPushTime=false`).
    #[arg(long)]
    pub no_push_time: bool,
    /// Header values that are JSON keep their type in `RECORD_METADATA` (numbers, booleans,
    /// objects, arrays); others stay strings (the connector's
    /// `snowflake.feature.structured.headers=true`).
    #[arg(long)]
    pub structured_headers: bool,
    /// How a key becomes `RECORD_METADATA.key`: `raw` (text, or `key_base64` for bytes that are
    /// not UTF-8), or as a Kafka Connect key converter makes it: `string` (StringConverter),
    /// `json` (JsonConverter), `bytes` (ByteArrayConverter, base64), `avro`, `protobuf` or
    /// `json-schema` (Confluent's, decoded with the registry; needs a registry
    /// `--value-format`). `--connector-config` sets it from `key.converter`.
    #[arg(long, value_enum, default_value_t = crate::rows::connect_values::KeyConverter::Raw)]
    pub key_converter: crate::rows::connect_values::KeyConverter,
    /// How header values are written: `raw` (text, JSON with `--structured-headers`, or
    /// `{"base64": …}`), or as a Kafka Connect header converter makes them: `simple`
    /// (SimpleHeaderConverter, the worker's default: numbers, booleans, lists, maps and dates
    /// parsed), `string`, `json` or `bytes` (base64). `--connector-config` sets it from
    /// `header.converter`.
    #[arg(long, value_enum, default_value_t = crate::rows::connect_values::HeaderConverter::Raw)]
    pub header_converter: crate::rows::connect_values::HeaderConverter,
    /// Normalize each top-level key of a row as a SQL identifier, as the connector does with
    /// `snowflake.compatibility.enable.column.identifier.normalization=true`: `city` becomes
    /// `CITY`, `"city"` (quotes included) becomes `city`, `a\ b` becomes `A B`.
    #[arg(long)]
    pub normalize_columns: bool,
    /// The connector file asks for `snowflake.validation=client_side` (set by
    /// `--connector-config`): each table's columns are read (`DESC TABLE`) and values checked
    /// and rewritten by column type as connector v4's `RowValidator` does, refused ones
    /// dead-lettered, new columns added by the connector's schema evolution
    /// (`kafka/docs/connector-compatibility-tables.md` §14).
    #[arg(long, hide = true)]
    pub client_side_validation: bool,
    /// With `snowflake.validation=client_side`, let the server validate instead (values the
    /// connector would rewrite by column type are the server's to convert or reject, new
    /// columns the server's evolution types; `kafka/docs/connector-compatibility-tables.md` §14).
    #[arg(long)]
    pub accept_server_side_validation: bool,
    /// Under client-side validation, the most new columns schema evolution adds for one
    /// message; a message with more keys that have no column is a dead letter naming this
    /// limit (the default is `COPY INTO`'s evolution default; connector v4 has no limit).
    #[arg(long, value_name = "N", default_value_t = crate::connector::evolution_caps::PER_MESSAGE)]
    pub max_new_columns_per_message: usize,
    /// Under client-side validation, the most columns schema evolution adds to one table
    /// within any minute; a message past it is a dead letter naming this limit.
    #[arg(long, value_name = "N", default_value_t = crate::connector::evolution_caps::PER_MINUTE)]
    pub max_new_columns_per_minute: usize,
    /// Under client-side validation, the most columns a table may have for schema evolution
    /// to add one; a message that would pass it is a dead letter naming this limit.
    #[arg(long, value_name = "N", default_value_t = crate::connector::evolution_caps::PER_TABLE)]
    pub max_evolved_table_columns: usize,
    /// How message values are encoded: `json` (JSON text), `string` (text, stored as a JSON
    /// string in `RECORD_CONTENT`: the connector's StringConverter; needs `--layout
    /// record-content`), or a Schema Registry format (`avro`, `json-schema`) decoded with the
    /// schemas of `--schema-registry-url`.
    #[arg(long, value_enum, default_value_t = ValueFormat::Json)]
    pub value_format: ValueFormat,
    /// The Confluent Schema Registry, `http(s)://HOST:PORT`, or several separated by commas
    /// (tried in turn when one cannot answer), for a `--value-format` other than json.
    #[arg(long, value_name = "URL")]
    pub schema_registry_url: Option<String>,
    /// Where the registry's `USER:PASSWORD` is: `env:NAME` (an environment variable) or
    /// `file:PATH` (never the secret itself: a command line is visible to other users).
    #[arg(long, value_name = "env:NAME|file:PATH")]
    pub schema_registry_basic_auth: Option<String>,
}

/// `--memory-budget`, and how it is shared (see the option's help).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget(pub usize);

impl MemoryBudget {
    /// The smallest budget accepted: librdkafka needs room to fetch, and the SDK room for a
    /// few requests.
    pub const MIN: usize = 32 << 20;

    /// The default budget (`--memory-budget 512MiB`).
    pub const DEFAULT: Self = Self(512 << 20);

    /// The whole budget, in bytes.
    pub fn bytes(self) -> usize {
        self.0
    }

    /// librdkafka's prefetch queue, in KiB (`queued.max.messages.kbytes`): a quarter of the
    /// budget, at most [`PREFETCH_MAX`](Self::PREFETCH_MAX).
    pub fn prefetch_kib(self) -> usize {
        (self.0 / 4).min(Self::PREFETCH_MAX) / 1024
    }

    /// The largest prefetch. Fetched messages wait there only until the poll thread copies
    /// them into batches, so a deeper queue adds no speed, only fresh memory: at 1 KB messages
    /// a 128 MiB prefetch cost the sink 1.7 CPU-s per GB against 1.3–1.4 with 32 MiB, and at
    /// 100 B 6.9 against 5.2–5.5 (`kafka/README.md`, "Cost and throughput").
    pub const PREFETCH_MAX: usize = 32 << 20;

    /// librdkafka's `fetch.max.bytes`: an eighth of the prefetch, 1 to 50 MiB (4 MiB with the
    /// default budget). A fetch response is one buffer, held until its last message is copied
    /// into a batch; smaller responses are freed and their memory reused sooner. Raise it with
    /// `-X fetch.max.bytes=…` for a cluster far away (each broker answers one fetch per round
    /// trip).
    pub fn fetch_max_bytes(self) -> usize {
        (self.prefetch_kib() * 1024 / 8).clamp(1 << 20, 52_428_800)
    }

    /// The batches between the poll thread and the workers.
    pub fn queues(self) -> usize {
        self.0 / 4
    }

    /// The SDK client's `memory_budget_bytes`: the rest, after the prefetch and the queues, so
    /// every byte of the budget is someone's. Half the budget while the prefetch is a quarter;
    /// more once the prefetch is capped (352 MiB of the default 512 MiB). A backlog read within
    /// one `--max-client-lag` is held by the SDK until that lag, and one over its share waits
    /// for the first commits (`kafka/README.md`, "Cost and throughput", the budget's split).
    pub fn sdk(self) -> usize {
        self.0 - self.prefetch_kib() * 1024 - self.queues()
    }
}

/// How the consumer fetches, from the memory budget: what the sink sets, and the bench's
/// consume-only floor too, so the two read alike.
///
/// * `queued.max.messages.kbytes`: the prefetch ([`MemoryBudget::prefetch_kib`]). With the
///   high-level consumer it bounds one queue whatever the number of partitions (the sink
///   forwards every partition's fetch queue to one of its own, which counts the same); one
///   fetch may overshoot it by `fetch.max.bytes` ([`MemoryBudget::fetch_max_bytes`]).
/// * `fetch.queue.backoff.ms` 10 (librdkafka's default is 1000): when that queue is full
///   (or holds `queued.min.messages`), librdkafka stops fetching each partition for this
///   long. A sink is slower than its fetcher, so the queue fills again and again, and with a
///   second's pause each time the sink sat idle: 114,000 messages/s at 1 KB and 276,000 at
///   100 B, against 185,000 and 1,430,000 with 10 ms (`kafka/README.md`).
pub fn fetch_properties(budget: MemoryBudget) -> [(&'static str, String); 3] {
    [
        (
            "queued.max.messages.kbytes",
            budget.prefetch_kib().clamp(1024, 2_097_151).to_string(),
        ),
        ("fetch.max.bytes", budget.fetch_max_bytes().to_string()),
        ("fetch.queue.backoff.ms", "10".to_owned()),
    ]
}

/// `--metrics-addr`: a port alone is on loopback (127.0.0.1), else `HOST:PORT` as given.
///
/// # Errors
/// When it is neither.
fn parse_metrics_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    snowpipe_cli_support::probe_server::parse_addr(s)
}

/// `512MiB`, `2GiB`, `64MB`, `1000000` (bytes).
///
/// # Errors
/// Anything else, or less than [`MemoryBudget::MIN`], with the accepted forms.
pub fn parse_bytes(s: &str) -> Result<MemoryBudget, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: usize = n
        .parse()
        .map_err(|_| format!("{s:?} is not a size: write e.g. 512MiB, 2GiB or 64MB"))?;
    let mul: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        u => {
            return Err(format!(
                "{s:?}: unknown unit {u:?}; use KiB, MiB, GiB, KB, MB or GB"
            ))
        }
    };
    let bytes = n
        .checked_mul(mul)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if bytes < MemoryBudget::MIN {
        return Err(format!(
            "{s:?} is less than the smallest budget, 32MiB (librdkafka and the SDK need room \
             for a few requests)"
        ));
    }
    Ok(MemoryBudget(bytes))
}

/// The longest duration accepted on the command line (longer ones overflow the clocks the
/// sink adds them to).
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The SDK's one duration syntax (`500ms`, `3s`, `1min`, `2m`, `1h`;
/// [`snowpipe_streaming::duration`]), at most 30 days.
///
/// # Errors
/// Anything else, with the accepted forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    snowpipe_streaming::duration::parse_at_most(s, MAX_DURATION).map_err(|e| e.to_string())
}

impl SinkArgs {
    /// Reads `--topic-map` into `topics` and `pipes` (one pipe per topic from then on).
    ///
    /// # Errors
    /// A file that cannot be read or is not `[topics]` with string values, a topic given twice,
    /// `--topic`s without `--pipe` (they would take the map's pipes).
    pub fn load_topic_map(&mut self) -> Result<()> {
        let Some(path) = self.topic_map.clone() else {
            return Ok(());
        };
        let text = crate::connector::config_file::read_text(&path, "--topic-map")?;
        let map = parse_topic_map(&text)
            .with_context(Error::Config, || format!("--topic-map {}", path.display()))?;
        if self.pipes.is_empty() && !self.topics.is_empty() {
            fail!(
                Config,
                "--topic-map with --topic but no --pipe: give the --topic's --pipe, or move the \
                 topic into the map"
            );
        }
        // One pipe per topic from here on.
        if self.pipes.len() == 1 {
            self.pipes = vec![self.pipes[0].clone(); self.topics.len()];
        }
        for (topic, pipe) in map {
            if self.topics.contains(&topic) {
                fail!(
                    Config,
                    "topic {topic} is given twice (--topic and --topic-map): give it once"
                );
            }
            self.topics.push(topic);
            self.pipes.push(pipe);
        }
        Ok(())
    }

    /// Reads `--kafka-config` into `properties`, before the `-X` ones (which win).
    ///
    /// # Errors
    /// The file cannot be read, holds more than 4 MiB or is not UTF-8, or a line is not
    /// `KEY=VALUE`.
    pub fn load_kafka_config(&mut self) -> Result<()> {
        let Some(path) = self.kafka_config.clone() else {
            return Ok(());
        };
        // Read as every configuration file is, at most 4 MiB (a FIFO or a device that never
        // ends is refused at the limit).
        let text = crate::connector::config_file::read_text(&path, "--kafka-config")?;
        let mut props = properties::read_file(&path, &text)?;
        props.append(&mut self.properties);
        self.properties = props;
        Ok(())
    }

    /// Checks what clap cannot.
    ///
    /// # Errors
    /// A pipe count that fits neither rule, a dead-letter topic that is also consumed.
    pub fn validate(&self) -> Result<()> {
        if self.topics.is_empty() && self.topic_regex.is_none() {
            fail!(
                Config,
                "no topic: give --topic T (with --pipe P, or to its default pipe), --topic-map FILE or \
                 --topic-regex REGEX"
            );
        }
        // No --pipe: every topic by the rules (the map, else its default pipe).
        let by_rule = self.pipes.is_empty();
        if !by_rule && self.pipes.len() != 1 && self.pipes.len() != self.topics.len() {
            fail!(
                Config,
                "{} --pipe for {} --topic: give one pipe for all topics, or one per topic in the \
                 same order",
                self.pipes.len(),
                self.topics.len()
            );
        }
        if let Some(refused) = properties::tls_unavailable(&self.properties) {
            fail!(Config, "{refused}");
        }
        properties::check(&self.properties)?;
        if self
            .properties
            .iter()
            .any(|p| p.key == "statistics.interval.ms" && p.value.trim() == "0")
        {
            fail!(
                Config,
                "statistics.interval.ms=0 turns off librdkafka's statistics, which the sink reads \
                 for each partition's lag (metrics, the progress line, and --until-idle, which \
                 would never see the end): leave it out (1000 by default) or give a positive value"
            );
        }
        self.row_layout().map_err(|e| err!(Config, "{e}"))?;
        if self.key_converter.registry_format().is_some()
            && matches!(self.value_format, ValueFormat::Json | ValueFormat::String)
        {
            fail!(
                Config,
                "a Schema Registry --key-converter (avro, protobuf, json-schema) needs a Schema \
                 Registry --value-format: keys are decoded with the registry on the values' path. \
                 With JSON or text values, use --key-converter string, json, bytes or raw"
            );
        }
        if let Some(dlq) = &self.dead_letter_topic {
            if self.topics.contains(dlq) {
                fail!(
                    Config,
                    "--dead-letter-topic {dlq} is also consumed (--topic): dead letters would loop"
                );
            }
        }
        if let Some(regex) = &self.topic_regex {
            let re = crate::connector::topic_table::topic_regex(regex)?;
            if let Some(dlq) = self.dead_letter_topic.as_deref().filter(|d| re.is_match(d)) {
                fail!(
                    Config,
                    "--dead-letter-topic {dlq} matches --topic-regex {regex}: dead letters would \
                     loop; exclude it from the regex or name another topic"
                );
            }
        }
        self.routes()?;
        Ok(())
    }
}

/// `[topics]` with `TOPIC = "PIPE"` lines, in file order.
///
/// # Errors
/// Not TOML, no `[topics]` table, a value that is not a string.
pub(crate) fn parse_topic_map(text: &str) -> Result<Vec<(String, String)>> {
    let doc: toml::Table = text.parse().context(Error::Config, "not TOML")?;
    let Some(topics) = doc.get("topics").and_then(toml::Value::as_table) else {
        fail!(
            Config,
            "no [topics] table: write [topics] and then TOPIC = \"PIPE\" lines"
        );
    };
    topics
        .iter()
        .map(|(topic, pipe)| match pipe.as_str() {
            Some(p) if !p.trim().is_empty() => Ok((topic.clone(), p.to_owned())),
            _ => {
                fail!(
                Config,
                "topic {topic}: the pipe must be a non-empty string, e.g. {topic} = \"MY_PIPE\""
            )
            }
        })
        .collect()
}

pub(crate) fn is_consumer_only(key: &str) -> bool {
    key.starts_with("group.")
        || key.starts_with("session.")
        || key.starts_with("heartbeat.")
        || key.starts_with("auto.")
        || key.starts_with("enable.auto")
        || key.starts_with("partition.assignment")
        || key.starts_with("max.poll")
        || key.starts_with("fetch.")
        || key == "isolation.level"
}

/// The sink's options parsed from `argv` as the binary parses them (tests).
#[cfg(test)]
pub(crate) fn parse_args<I, T>(argv: I) -> Result<SinkArgs, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        sink: SinkArgs,
    }
    Cli::try_parse_from(argv).map(|c| c.sink)
}

/// The required options (brokers `b`, topic `t`, group `g`, database `d`, schema `s`, pipe
/// `p`), then the words of `extra` (tests).
#[cfg(test)]
pub(crate) fn args_with(extra: &str) -> Result<SinkArgs, clap::Error> {
    parse_args(
        "x --brokers b --topic t --group g --database d --schema s --pipe p"
            .split_whitespace()
            .chain(extra.split_whitespace()),
    )
}

#[cfg(test)]
mod tests;
