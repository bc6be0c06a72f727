//! What the command line becomes: the sink's [`Settings`], with the librdkafka properties, the
//! Snowflake client builder, the channel names and the one SQL API client the connector's
//! flags share.

use rdkafka::config::ClientConfig;
use snowpipe_streaming::sql::SqlClient;

use crate::cli::args::{fetch_properties, is_consumer_only, SinkArgs};
use crate::connector::create_tables::{TableCreator, TableNamedPipes};
use crate::connector::evolution_caps::EvolutionCaps;
use crate::connector::migrate_v3::{Migrator, Mode};
use crate::connector::naming::{ChannelNames, Naming};
use crate::connector::table_columns::ClientSide;
use crate::error::{err, fail, Context, Error, Result};
use crate::formats::ValueFormat;
use crate::rows::layout::{Layout, LayoutKind, ValueText};
use crate::rows::record::{RowOptions, MAX_ROW_BYTES};
use crate::rows::value_format::FormatArgs;
use crate::sink::settings::{DeadLetterTopic, Settings, Start};

impl SinkArgs {
    /// The sink's settings: the command line checked ([`validate`](Self::validate)) and turned
    /// into what the rooms take. Makes the SQL API client when a flag needs one (one client
    /// for all of them).
    ///
    /// # Errors
    /// What [`validate`](Self::validate) refuses, a `--topic2table-map` that does not parse, a
    /// layout the value format cannot have, a connection the SQL API client refuses, a
    /// connector flag on a pipe that is not a default pipe.
    pub fn settings(&self) -> Result<Settings> {
        self.validate()?;
        let layout = self.row_layout().map_err(|e| err!(Config, "{e}"))?;
        let sql = self.sql_client()?;
        let with_sql = |on: bool| on.then(|| sql.clone()).flatten();
        Ok(Settings {
            warnings: self.start_lines(),
            routes: self.routes()?,
            channels: self.channel_names(),
            database: self.database.clone(),
            schema: self.schema.clone(),
            start: self.start,
            hand_over_timeout: self.hand_over_timeout,
            queue_bytes: self.memory_budget.queues(),
            dead_letters: self
                .dead_letter_topic
                .as_ref()
                .map(|topic| DeadLetterTopic {
                    topic: topic.clone(),
                    producer: self.producer_config(),
                }),
            properties: self.properties.clone(),
            values: FormatArgs {
                value_format: self.value_format,
                schema_registry_url: self.schema_registry_url.clone(),
                schema_registry_basic_auth: self.schema_registry_basic_auth.clone(),
                registry_auth: self.registry_auth.clone(),
                registry_auth_inherit: self.registry_auth_inherit,
                kafka_login: crate::source::properties::kafka_login(&self.properties),
            },
            tables: with_sql(self.create_tables).map(|sql| TableCreator::new(sql, self.layout)),
            named_pipes: with_sql(self.table_named_pipes).map(TableNamedPipes::new),
            client_side: with_sql(self.client_side()).map(|sql| {
                let caps = EvolutionCaps {
                    per_message: self.max_new_columns_per_message,
                    per_minute: self.max_new_columns_per_minute,
                    per_table: self.max_evolved_table_columns,
                };
                ClientSide::new(sql, true, caps)
            }),
            migrator: with_sql(self.migrate_v3_offsets != Mode::Skip).map(|sql| {
                Migrator::new(
                    sql,
                    self.migrate_v3_offsets,
                    self.connector_name.clone(),
                    self.migrate_v3_include_connector_name,
                )
            }),
            rows: RowOptions {
                metadata: self.metadata,
                max_row_bytes: MAX_ROW_BYTES,
                layout,
            },
            consumer: self.consumer_config(),
            subscription: self.subscription(),
            listed_topics: self.topics.clone(),
            quiet: self.quiet,
            until_idle: self.until_idle,
            stall_after: self.stall_after,
        })
    }

    /// The one SQL API client of the flags that run statements on the default pipes' tables
    /// (`--create-tables`, `--table-named-pipes`, client-side validation,
    /// `--migrate-v3-offsets`); `None` without them.
    ///
    /// # Errors
    /// As [`default_pipes_sql_client`](Self::default_pipes_sql_client), naming the first such
    /// flag given.
    fn sql_client(&self) -> Result<Option<SqlClient>> {
        let flag = if self.create_tables {
            Some((
                "--create-tables",
                "create its table (and pipe) yourself and give --no-create-tables (a connector \
                 file's default is to create tables), or write to the table's default pipe",
            ))
        } else if self.table_named_pipes {
            Some((
                "--table-named-pipes",
                "name the pipe with --pipe and leave --table-named-pipes out",
            ))
        } else if self.client_side() {
            Some((
                "snowflake.validation=client_side",
                "set snowflake.validation=server_side, or pass --accept-server-side-validation \
                 to let the server validate",
            ))
        } else if self.migrate_v3_offsets != Mode::Skip {
            Some((
                "--migrate-v3-offsets",
                "write to the table's default pipe, or migrate with \
                 SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET yourself (kafka/README.md, \"From connector v3\")",
            ))
        } else {
            None
        };
        flag.map(|(flag, otherwise)| self.default_pipes_sql_client(flag, otherwise))
            .transpose()
    }

    /// Whether rows are validated client-side (`snowflake.validation=client_side`, unless
    /// `--accept-server-side-validation`).
    fn client_side(&self) -> bool {
        self.client_side_validation && !self.accept_server_side_validation
    }

    /// The layout the command line gives.
    ///
    /// # Errors
    /// `--value-format string` with `--layout columns` (text has no column names).
    pub fn row_layout(&self) -> Result<Layout, String> {
        let value_text = match self.value_format {
            ValueFormat::String => ValueText::Text,
            ValueFormat::Json => ValueText::Json,
            // Decoded by the partition worker into JSON, then written as JSON values are
            // (`value_format::Decoder::rows`).
            ValueFormat::Avro | ValueFormat::JsonSchema | ValueFormat::Protobuf => ValueText::Json,
        };
        if value_text == ValueText::Text && self.layout == LayoutKind::Columns {
            return Err(
                "--value-format string needs --layout record-content: text has no \
                        column names (the connector refuses it in schematized mode too)"
                    .into(),
            );
        }
        Ok(Layout {
            kind: self.layout,
            value_text,
            on_null: self.on_null_value,
            push_time: !self.no_push_time,
            structured_headers: self.structured_headers,
            fields: crate::rows::metadata_fields::MetadataFields {
                no_metadata_topic: self.no_metadata_topic,
                no_metadata_offset_and_partition: self.no_metadata_offset_and_partition,
                no_metadata_createtime: self.no_metadata_createtime,
            },
            key_converter: self.key_converter,
            header_converter: self.header_converter,
            normalize_columns: self.normalize_columns,
        })
    }

    /// What an instance continuing a connector logs at start (each a warning, one line): which
    /// channels it opens and that opening them fences the connector if it still runs; then any
    /// option that does not fit a take-over (`--group connect-<NAME>`, `--start latest`).
    pub fn start_lines(&self) -> Vec<String> {
        let Some(name) = &self.connector_name else {
            return Vec::new();
        };
        let naming = self.connector_naming.unwrap_or_default();
        let version = match naming {
            Naming::V4 => "v4",
            Naming::V3 => "v3",
            Naming::V3WithName => "v3-with-name",
        };
        let mut lines = vec![format!(
            "continuing Snowflake's Kafka connector {name:?}: opening its channels \
             {} ({version} names), each partition from the connector's committed offset + 1; \
             opening a channel fences whoever holds it, so if the connector still runs its tasks \
             lose these channels (and fence this sink in turn when they reopen them): stop the \
             connector before starting snowpipe-kafka",
            match name.prefix(naming) {
                Some(prefix) => format!("{prefix}_<topic>_<partition>"),
                None => "<topic>_<partition>".to_owned(),
            }
        )];
        if self.group == name.connect_group() {
            lines.push(format!(
                "--group {} is the connector's own consumer group: not needed (partitions start at \
                 Snowflake's committed offsets, never at group offsets), and if the connector still \
                 runs its members share the partitions with these instances: give a group of your own",
                self.group
            ));
        }
        if self.start == Start::Latest {
            lines.push(
                "--start latest with --connector-name: a partition the connector never wrote starts \
                 at its end, skipping what is there (the connector starts such a partition at its \
                 group's offset, by default the beginning): leave --start at earliest to land it"
                    .to_owned(),
            );
        }
        lines
    }

    /// How partitions' channels are named: `<prefix>_<topic>_<partition>`, or the connector's
    /// names with `--connector-name`.
    pub fn channel_names(&self) -> ChannelNames {
        match &self.connector_name {
            Some(connector) => ChannelNames::Connector(
                connector.clone(),
                self.connector_naming.unwrap_or_default(),
            ),
            None => ChannelNames::Prefixed(
                self.channel_prefix
                    .clone()
                    .unwrap_or_else(|| self.group.clone()),
            ),
        }
    }

    /// The channel name of a partition (see [`channel_names`](Self::channel_names)).
    pub fn channel_name(&self, topic: &str, partition: i32) -> String {
        self.channel_names().channel_name(topic, partition)
    }

    /// The rules that give each topic its pipe, also topics found at run time
    /// (`connector::topic_table`).
    ///
    /// # Errors
    /// A `--topic2table-map` that does not parse.
    pub fn routes(&self) -> Result<crate::connector::topic_table::Routes> {
        let map = match &self.topic2table_map {
            Some(m) => Some(
                crate::connector::topic_table::TopicTableMap::parse(
                    m,
                    self.topic2table_regex_replacement,
                )
                .context(Error::Config, "--topic2table-map")?,
            ),
            None => None,
        };
        Ok(crate::connector::topic_table::Routes::new(
            &self.topics,
            &self.pipes,
            map,
        ))
    }

    /// What the consumer subscribes to: the listed topics, and `--topic-regex` as a pattern.
    pub fn subscription(&self) -> Vec<String> {
        let mut out = self.topics.clone();
        out.extend(
            self.topic_regex
                .as_deref()
                .map(crate::connector::topic_table::subscription_pattern),
        );
        out
    }

    /// The consumer's librdkafka properties: ours, then the user's `-X` ones (which win).
    pub fn consumer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group)
            // Snowflake's committed token is the position; Kafka's group offsets follow it.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // Every partition starts at an explicit offset (Snowflake's committed token + 1,
            // or `--start`); this applies only when that offset is out of range (retention
            // deleted it before it landed), and loses the least.
            .set("auto.offset.reset", "earliest")
            // Eager: every rebalance revokes all partitions, then assigns anew (each a
            // hand-over). `-X partition.assignment.strategy=cooperative-sticky` moves only the
            // partitions that change owner; the sink handles both, but only eager is covered
            // by the mock-cluster tests (librdkafka's mock stalls cooperative rebalances).
            // Every member of a group must list the same strategy.
            .set("partition.assignment.strategy", "roundrobin")
            // Consumer lag and high watermarks per partition: the progress line, and
            // `--until-idle` (which waits until every partition is read to its end).
            .set("statistics.interval.ms", "1000");
        for (key, value) in fetch_properties(self.memory_budget) {
            c.set(key, value);
        }
        trust_the_systems_certificates(&mut c);
        for p in &self.properties {
            c.set(&p.key, &p.value);
        }
        c
    }

    /// The dead-letter producer's properties (the `-X` ones too: security settings apply to
    /// both; consumer-only ones are ignored by librdkafka with a warning).
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true");
        trust_the_systems_certificates(&mut c);
        for p in &self.properties {
            if !is_consumer_only(&p.key) {
                c.set(&p.key, &p.value);
            }
        }
        c
    }

    /// The Snowflake client builder: `--profile` (a profile.json, or a connections.toml and
    /// its `--connection`), else `--connection` alone (Snowflake's own connections.toml),
    /// else the connector file's connection over `SNOWFLAKE_*` (an option on the command line
    /// wins over the file, as for every key).
    ///
    /// # Errors
    /// When the profile or the connection cannot be read, or `--connection` names a section of
    /// a `--profile` that is not a `.toml` file.
    pub fn client_builder(&self) -> Result<snowpipe_streaming::ClientBuilder> {
        use snowpipe_streaming::ClientBuilder;
        // `--connection` without NAME: the default connection.
        let name = self
            .connection_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        if (self.profile.is_some() || self.connection_name.is_some()) && self.connection.is_some() {
            tracing::info!(
                "--profile or --connection given: the connector file's snowflake.* connection \
                 is not used"
            );
        }
        let builder = match (&self.profile, &self.connection_name) {
            (Some(p), Some(_)) => {
                if !p
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
                {
                    fail!(
                        Config,
                        "--connection names a connection of a connections.toml, but --profile {} \
                         is a profile.json: give --profile a .toml file, or leave --profile out \
                         to read Snowflake's own connections.toml",
                        p.display()
                    );
                }
                ClientBuilder::from_connections_toml(p, name).with_context(Error::Config, || {
                    format!("cannot read the profile {}", p.display())
                })?
            }
            (Some(p), None) => ClientBuilder::from_profile_file(p)
                .with_context(Error::Config, || {
                    format!("cannot read the profile {}", p.display())
                })?,
            (None, Some(_)) => ClientBuilder::from_connection(name).context(
                Error::Config,
                "cannot read the --connection from Snowflake's connections.toml",
            )?,
            (None, None) => match &self.connection {
                Some(c) => c.apply(snowpipe_streaming::ClientBuilder::from_env()),
                None => snowpipe_streaming::ClientBuilder::from_env(),
            },
        };
        let builder = builder.memory_budget_bytes(self.memory_budget.sdk());
        Ok(match self.max_client_lag {
            Some(lag) => builder.max_client_lag(lag),
            None => builder,
        })
    }

    /// The SQL API client for the statements a flag runs on the tables of the default pipes
    /// (`--create-tables`, `--migrate-v3-offsets`), in `--database`/`--schema`, with the
    /// streaming client's connection.
    ///
    /// # Errors
    /// A `--pipe` that is not a default pipe `<TABLE>-STREAMING` (its table cannot be known;
    /// the message names `flag` and `otherwise`, what to do instead), a connection setting the
    /// SQL client refuses.
    fn default_pipes_sql_client(
        &self,
        flag: &str,
        otherwise: &str,
    ) -> Result<snowpipe_streaming::sql::SqlClient> {
        if let Some(pipe) = self
            .pipes
            .iter()
            .find(|p| snowpipe_streaming::default_pipe_table(p).is_none())
        {
            fail!(
                Config,
                "{flag} works on the table of a default pipe, <TABLE>-STREAMING; --pipe {pipe} \
                 is not one: {otherwise}"
            );
        }
        Ok(self
            .client_builder()?
            .build_sql()
            .with_context(Error::Config, || {
                format!("{flag}: cannot make the SQL API client")
            })?
            .database(&self.database)
            .schema(&self.schema))
    }
}

/// With the `tls` feature: librdkafka looks for the system's CA certificates where OpenSSL's
/// build put them (`/usr/local/ssl/cert.pem` for the vendored build), not where the system
/// keeps them (`/etc/ssl/certs/…` on Debian), so managed Kafka's public certificates would not
/// verify without `ssl.ca.location`. `probe` makes librdkafka look in the usual places; the
/// user's `ssl.ca.location` (`-X`, `--kafka-config`) wins.
fn trust_the_systems_certificates(c: &mut ClientConfig) {
    #[cfg(feature = "tls")]
    c.set("ssl.ca.location", "probe");
    #[cfg(not(feature = "tls"))]
    let _ = c;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<SinkArgs, clap::Error> {
        let base = "x --brokers h:9092 --topic orders --pipe P --database D --schema S";
        crate::cli::args::parse_args(format!("{base} {extra}").split_whitespace())
    }

    #[test]
    fn an_instance_continuing_the_connector_says_it_fences_it() {
        assert!(parse("--group g").unwrap().start_lines().is_empty());
        let lines = parse("--group new --connector-name snowflake-sink")
            .unwrap()
            .start_lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("SNOWFLAKE_SINK_1996731346_<topic>_<partition>")
                && lines[0].contains("fences")
                && lines[0].contains("stop the connector"),
            "{}",
            lines[0]
        );
        let lines =
            parse("--group connect-snowflake-sink --connector-name snowflake-sink --start latest")
                .unwrap()
                .start_lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[1].contains("connector's own consumer group"),
            "{}",
            lines[1]
        );
        assert!(lines[2].contains("--start latest"), "{}", lines[2]);
    }

    /// A connector flag that needs the default pipes' tables refuses a pipe that is not one,
    /// at start, naming the flag.
    #[test]
    fn a_pipe_that_is_not_a_default_pipe_is_refused_at_start() {
        for (flag, named) in [
            ("--create-tables", "--create-tables"),
            ("--table-named-pipes", "--table-named-pipes"),
            ("--migrate-v3-offsets best-effort", "--migrate-v3-offsets"),
            (
                "--migrate-v3-offsets strict --create-tables",
                "--create-tables",
            ),
        ] {
            let argv = format!(
                "x --brokers b --topic t --group g --database d --schema s --pipe MY_PIPE {flag}"
            );
            let err = crate::cli::args::parse_args(argv.split_whitespace())
                .map(|a| a.settings().unwrap_err().to_string());
            let err = err.unwrap_or_else(|e| e.to_string());
            assert!(
                err.contains("--pipe MY_PIPE is not one") && err.starts_with(named),
                "{flag}: {err}"
            );
        }
    }

    /// `--profile FILE.toml` reads Snowflake's connections.toml (its default connection, or
    /// the one `--connection` names); `--connection` refuses a profile.json; `--connection`
    /// alone asks for Snowflake's default connection.
    #[test]
    fn a_toml_profile_is_a_connections_toml_and_connection_chooses_its_section() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("connections.toml");
        std::fs::write(
            &toml,
            "[default]\naccount = \"FROM_DEFAULT\"\n[ingest]\naccount = \"FROM_INGEST\"\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&toml, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let account = |extra: &str| {
            let b = parse(&format!("--group g {extra}"))
                .unwrap()
                .client_builder()
                .unwrap();
            let debug = format!("{b:?}");
            ["FROM_DEFAULT", "FROM_INGEST"]
                .into_iter()
                .find(|a| debug.contains(&format!("account: Some(\"{a}\")")))
                .unwrap_or("none")
        };
        let t = toml.display();
        assert_eq!(account(&format!("--profile {t}")), "FROM_DEFAULT");
        assert_eq!(
            account(&format!("--profile {t} --connection ingest")),
            "FROM_INGEST"
        );
        // `--connection` without NAME: Snowflake's default connection.
        assert_eq!(
            account(&format!("--profile {t} --connection")),
            "FROM_DEFAULT"
        );
        let e = parse(&format!("--group g --profile {t} --connection nope"))
            .unwrap()
            .client_builder()
            .unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("no connection \"nope\"") && e.contains("default, ingest"),
            "{e}"
        );
        let e = parse("--group g --profile profile.json --connection ingest")
            .unwrap()
            .client_builder()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--profile profile.json is a profile.json"),
            "{e}"
        );
        assert_eq!(
            parse("--group g --connection")
                .unwrap()
                .connection_name
                .as_deref(),
            Some("")
        );
    }
}
