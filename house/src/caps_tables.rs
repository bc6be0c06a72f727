//! The inputs [`crate::caps`] lets go without a caps row: flags taking a value and variables
//! that are not outside inputs worth a generator (each with its reason), and the gaps still
//! open (`TODO(caps)`, naming the generator missing). Apart so the check reads as code.

/// Flags of `programs` (`"*"`: any of ours) that need no caps row, and why.
pub(crate) struct Allowed {
    pub(crate) programs: &'static [&'static str],
    pub(crate) names: &'static [&'static str],
    pub(crate) reason: &'static str,
}

impl Allowed {
    /// Whether this is a gap left open rather than a reason.
    pub(crate) fn is_todo(&self) -> bool {
        self.reason.starts_with("TODO(caps)")
    }
}

/// Flags taking a value that need no caps row of their own.
pub(crate) const FLAGS: &[Allowed] = &[
    Allowed {
        programs: &["*"],
        names: &[
            "--database",
            "--schema",
            "--table",
            "--pipe",
            "--channel",
            "--channel-prefix",
            "--channel-suffix",
            "--dead-letter-pipe",
            "--dlq-pipe",
            "--dest-table",
            "--warehouse",
            "--group",
            "--connector-name",
            "--topic",
            "--dead-letter-topic",
            "--stream",
            "--user",
            "--instance",
            "--queue",
            "--region",
            "--classic-channel",
            "--ingest-host",
            "--timezone",
            "--grant",
            "--migrate-v3-offsets", "--connection",
        ],
        reason: "a name the operator gives (a database, schema, table, pipe, channel, topic, \
                 group, user, role, region, time zone, a `connections.toml` section): not an outside input; the kernel's \
                 128 KiB an argument; the service (the emulator: 255 characters a name, \
                 `MAX_CHANNEL_NAME_CHARS`) refuses one it does not take",
    },
    Allowed {
        programs: &["*"],
        names: &[
            "--max-client-lag",
            "--max-client-lag-ms",
            "--commit-delay",
            "--commit-timeout",
            "--hand-over-timeout",
            "--stall-after",
            "--token-ttl",
            "--poll-interval",
            "--duration",
            "--seed",
            "--start",
            "--shard",
            "--progress-every",
            "--keep",
            "--zstd-level",
            "--max-requests-per-second",
            "--max-bytes-per-second",
            "--memory-budget-mb",
            "--page",
            "--parallelization-factor",
            "--max-key-channels",
            "--max-concurrent-decodes",
            "--max-connections",
            "--max-decompressed-bytes",
            "--max-rows-per-request",
            "--max-stage-bytes",
            "--max-stage-files",
        ],
        reason: "a number, duration or limit the operator gives, parsed by clap into a \
                 fixed-width type (or clamped: the SDK's `max_client_lag` at most 600 s, the \
                 sink's durations 30 days) before anything is sized by it: not an outside input",
    },
    Allowed {
        programs: &["*"],
        names: &[
            "--format",
            "--binary-format",
            "--connector-naming",
            "--layout",
            "--on-null-value",
            "--header-converter",
            "--key-converter",
            "--value-format",
            "--list",
            "--csv-delimiter",
            "--csv-quote",
            "--csv-escape",
            "--csv-skip-header",
            "--csv-columns",
            "--csv-null-if",
            "--csv-empty-field-as-null",
            "--topic-regex",
            "--log-format",
            "--fault",
            "--failure-mode",
        ],
        reason: "a choice the operator gives (a format, a mode, a CSV character, a fault \
                 rule `FaultRule` parses), checked against what it may be before use, or a \
                 regex librdkafka compiles: not an outside input; what it selects is read \
                 under its own row",
    },
    Allowed {
        programs: &["*"],
        names: &[
            "--out",
            "--ca-out",
            "--request-log",
            "--spool-dir",
            "--dead-letters",
            "--work-dir",
            "--report",
            "--write-rows",
            "--emulator-data-dir",
            "--new-key",
        ],
        reason: "a path the binary writes or creates (its own files: the emulator's database, \
                 a key it generates, a report, a spool): not read as outside input",
    },
    Allowed {
        programs: &[
            "snowpipe",
            "snowpipe-kafka",
            "ski_resort",
            "ecommerce",
            "sensor_stream",
            "throughput",
            "table_replay",
        ],
        names: &["--data-dir"],
        reason: "the directory of an embedded emulator's database the binary creates and \
                 writes (the emulator's own `--data-dir`, whose secret file it reads, has its \
                 row: `snowpipe-emulator --data-dir`)",
    },
    Allowed {
        programs: &[
            "snowpipe",
            "snowpipe-kafka",
            "ski_resort",
            "ecommerce",
            "sensor_stream",
            "throughput",
        ],
        names: &["--until-idle"],
        reason: "a duration the operator gives, parsed by clap before anything waits on it: not \
                 an outside input (`table_replay follow --until-idle` has its row beside its \
                 binlog connection's, which the silence generator drives)",
    },
    Allowed {
        programs: &["*"],
        names: &["--port", "--metrics-addr"],
        reason: "an address to listen on (what clients send there has its row: the emulator's \
                 request heads and bodies, the sink's `/metrics`)",
    },
    Allowed {
        programs: &["snowpipe-kafka-lab"],
        names: &[
            "--events",
            "--messages",
            "--partitions",
            "--topics",
            "--sizes",
            "--rounds",
            "--steady-rate",
            "--steady-seconds",
            "--rebalance-partitions",
            "--peer-python",
            "--poison-every",
            "--minutes",
            "--instances",
            "--tansu",
            "--moto",
            "--rate",
        ],
        reason: "`snowpipe-kafka-lab bench`, `demo` and `soak`: the developer's measuring tools, \
                 which start their own broker and emulator: not outside inputs",
    },
    Allowed {
        programs: &[
            "snowpipe",
            "snowpipe-kafka",
            "snowpipe-emulator",
            "ski_resort",
            "ecommerce",
            "sensor_stream",
            "table_replay",
        ],
        names: &["--channels"],
        reason: "channel names the operator gives (a list, or a count of channels named by \
                 the binary): not an outside input; `throughput --channels`, which sizes its \
                 tasks, has its row",
    },
    Allowed {
        programs: &["snowpipe-emulator"],
        names: &["--pat"],
        reason: "a token the operator gives the emulator to accept: compared, never printed; \
                 the kernel's 128 KiB an argument",
    },
];

/// Environment variables read by name that need no caps row of their own: (name, reason).
pub(crate) const VARIABLES: &[(&str, &str)] = &[
    ("SNOWFLAKE_ACCOUNT", CONNECTION),
    ("SNOWFLAKE_USER", CONNECTION),
    ("SNOWFLAKE_URL", CONNECTION),
    ("SNOWFLAKE_ROLE", CONNECTION),
    ("SNOWFLAKE_WAREHOUSE", CONNECTION),
    ("SNOWFLAKE_DEFAULT_CONNECTION_NAME", CONNECTION),
    ("SNOWFLAKE_JWT", CONNECTION),
    ("SNOWFLAKE_PRIVATE_KEY", KEY_TEXT),
    ("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", KEY_TEXT),
    ("SNOWPIPE_EMULATOR_PAT", KEY_TEXT),
    ("SNOWPIPE_INGEST", CONNECTION),
    ("TABLE_REPLAY_SOURCE", CONNECTION),
    ("RUST_LOG", LOGGING),
    ("SNOWPIPE_EMULATOR_LOG", LOGGING),
    ("TABLE_REPLAY_LOG_FORMAT", LOGGING),
    ("SNOWPIPE_DATABASE", LAMBDA),
    ("SNOWPIPE_SCHEMA", LAMBDA),
    ("SNOWPIPE_PIPE", LAMBDA),
    ("SNOWPIPE_DEAD_LETTER_PIPE", LAMBDA),
    ("FAILURE_MODE", LAMBDA),
    ("PARALLELIZATION_FACTOR", LAMBDA),
    ("TRUST_SEQUENCE_NUMBERS", LAMBDA),
    ("PATH", TOOLS),
    ("USER", TOOLS),
    ("CI", TOOLS),
    ("KINESALITE", TOOLS),
    ("NATS_SERVER", TOOLS),
    ("SNOWPIPE_KAFKA_PEER_PYTHON", TOOLS),
    ("SOAK_MINUTES", TOOLS),
    ("SOAK_MOTO", TOOLS),
    ("SOAK_TANSU", TOOLS),
];

const CONNECTION: &str = "a name, URL or account the operator gives for a connection (or a \
    JWT it was handed), sent to or checked by the service: not an outside input; the kernel's \
    128 KiB a variable";
const KEY_TEXT: &str = "a key, passphrase or token the operator gives as text: at most the \
    kernel's 128 KiB a variable, parsed by the key's parser; never printed (`Secret`)";
const LOGGING: &str = "the log filter or format the operator chooses (tracing's `EnvFilter` \
    refuses what it cannot parse): not an outside input";
const LAMBDA: &str = "the Lambda function's configuration its deployer sets (names, a mode, \
    numbers parsed before use): not an outside input; the events have their row";
const TOOLS: &str = "where the tests and developer tools find their programs (a test-only \
    mode, a path to a broker or server binary): not an outside input";
