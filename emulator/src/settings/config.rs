//! Emulator configuration.

use std::path::PathBuf;
use std::time::Duration;

use crate::base::faults::FaultPlan;

/// How the emulator serves TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP (our client accepts it; the official SDK does not).
    #[default]
    Off,
    /// Generate a CA and a server certificate for `127.0.0.1` / `localhost` at start.
    Generate,
    /// Use the given PEM files (certificate chain and private key).
    Files {
        /// PEM certificate chain, leaf first.
        cert: PathBuf,
        /// PEM private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
}

/// Snowflake's hard cap on one append request on the wire: 4 MB (docs/protocol.md "Limits").
pub const MAX_PAYLOAD_BYTES: usize = 4_000_000;

/// Default [`EmulatorConfig::max_uncompressed_bytes`]: 64 MiB. Four times the official SDK's
/// 16 MB rowset target (`max_rowset_payload_size_mb`) and three times what a full 4 MB
/// request of our client holds at its measured zstd ratio (≈4.8, about 19 MB), yet a quarter
/// of the former 256 MiB, at which one ~20 KB zstd request could make the emulator allocate
/// gigabytes.
pub const DEFAULT_MAX_UNCOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

/// Default [`EmulatorConfig::max_rows_per_request`]: 500,000. Snowflake documents no row cap
/// per request; a channel may take 20 MB/s uncompressed (docs/protocol.md "Limits"), and
/// 500,000 rows of a 40-byte NDJSON line (one short key and value) are those 20 MB: one
/// request with more rows than that carries more than a second of a channel's documented
/// throughput. Real clients stay far below (a 16 MB rowset of 100-byte rows is 160,000).
pub const DEFAULT_MAX_ROWS_PER_REQUEST: usize = 500_000;

/// Default [`EmulatorConfig::max_pending_bytes`]: 512 MiB of appended rows not yet committed
/// (eight requests at the largest decompressed size), far above what the commit delay keeps
/// pending at Snowflake's per-channel limits for a few dozen busy channels.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 512 * 1024 * 1024;

/// Default [`EmulatorConfig::max_concurrent_decodes`]: 4 appends decompressed and converted
/// at once, enough to keep a few cores busy; the others wait for a turn.
pub const DEFAULT_MAX_CONCURRENT_DECODES: usize = 4;

/// Default [`EmulatorConfig::max_connections`]: 1,024 open connections, far above what a few
/// clients with their connection pools open; further connections wait to be accepted.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default [`EmulatorConfig::request_log_max_bytes`]: 32 MiB of request records in memory.
pub const DEFAULT_REQUEST_LOG_MAX_BYTES: usize = 32 * 1024 * 1024;

/// What an append does when it carries a continuation token that was already used (a client
/// retrying after a lost response). The real service's behaviour is undocumented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateAppendPolicy {
    /// Answer `400 STALE_CONTINUATION_TOKEN_SEQUENCER` (the client must reopen and replay).
    #[default]
    RejectStale,
    /// When the token is the one used by the channel's latest append, answer that append's
    /// response again without applying the rows a second time.
    Idempotent,
}

/// Everything that configures an [`Emulator`](crate::server::Emulator).
///
/// All fields are public; start from [`EmulatorConfig::default`] and change what you need.
#[derive(Clone)]
#[non_exhaustive]
pub struct EmulatorConfig {
    /// TCP port on 127.0.0.1; `0` picks a free one.
    pub port: u16,
    /// TLS mode.
    pub tls: TlsMode,
    /// Where to write the generated CA certificate (PEM). Default: `<data_dir>/ca.pem` when a
    /// data directory is set, else nowhere (read it with [`Emulator::ca_pem`](crate::server::Emulator::ca_pem)).
    pub ca_out: Option<PathBuf>,
    /// Directory of the SQLite database; `None` keeps it in a private temporary directory
    /// removed at the end (see `storage.rs`).
    pub data_dir: Option<PathBuf>,
    /// DDL scripts (SQL text) declaring databases, schemas, tables and pipes.
    pub ddl: Vec<String>,
    /// Where each script of [`ddl`](Self::ddl) came from, in the same order (the `--ddl`
    /// file's path), named in its errors; a script without one is called `DDL script N`.
    pub ddl_sources: Vec<String>,
    /// Registered public keys (PEM, `PUBLIC KEY` or `RSA PUBLIC KEY`) for key-pair JWTs of
    /// any user.
    pub public_keys: Vec<String>,
    /// Public keys (user, PEM) accepted only for key-pair JWTs of that user (`ACCOUNT.USER`
    /// matched on USER, case-insensitively).
    pub user_public_keys: Vec<(String, String)>,
    /// Accept any bearer token without checking it. Insecure; for quick starts only.
    pub accept_any_key: bool,
    /// Role grants `(role, database)`: when any is given, a data-plane call is authorised
    /// only when its session role (from the token exchange's `scope` or the key-pair JWT's
    /// `scp` claim; `PUBLIC` when neither names one) is granted the database (`*`: every
    /// database); otherwise 404 `ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED`, as Snowflake
    /// answers a role without privileges. Roles compare ignoring case. Empty: no checks.
    pub role_grants: Vec<(String, String)>,
    /// Programmatic access tokens accepted on `/v2/streaming/hostname` and `/oauth/token`.
    pub personal_access_tokens: Vec<String>,
    /// Time between an accepted append and its commit (default 1 s; zero commits before the
    /// append's response is sent).
    pub commit_delay: Duration,
    /// Benchmark mode: validate framing, count rows and bytes, commit, store nothing.
    pub sink: bool,
    /// Fault rules active from the start.
    pub faults: FaultPlan,
    /// Seed of the fault-injection random generator.
    pub seed: u64,
    /// Lifetime of the scoped tokens `/oauth/token` hands out (default 1 h; the official SDK
    /// wants more than 300 s).
    pub scoped_token_ttl: Duration,
    /// Largest append body accepted on the wire, in bytes; larger ones get 413
    /// `ERR_PAYLOAD_TOO_LARGE`. Default 4,000,000: Snowflake's hard 4 MB per-request cap
    /// (docs/protocol.md "Limits").
    pub max_payload_bytes: usize,
    /// Largest append body after decompression, in bytes; larger ones get 413
    /// `ERR_PAYLOAD_TOO_LARGE` (`--max-decompressed-bytes`). Default
    /// [`DEFAULT_MAX_UNCOMPRESSED_BYTES`] (64 MiB).
    pub max_uncompressed_bytes: usize,
    /// Most rows one append request may carry; more get 413 `ERR_TOO_MANY_ROWS` before any
    /// row is parsed (`--max-rows-per-request`). Default [`DEFAULT_MAX_ROWS_PER_REQUEST`].
    pub max_rows_per_request: usize,
    /// Most bytes of memory appended rows may hold, from decompression until they commit
    /// (the decompressed bodies, the rows as they are parsed and converted, then the
    /// converted rows; `--max-pending-bytes`). An append that does not fit now gets 429
    /// `ERR_TOO_MANY_REQUESTS`, which clients retry; one that needs more than the whole
    /// budget gets 413 `ERR_PAYLOAD_TOO_LARGE`. Default [`DEFAULT_MAX_PENDING_BYTES`].
    pub max_pending_bytes: usize,
    /// Most bytes the stage of the official SDK's file mode holds: files uploaded and not
    /// yet landed by their registrations (`--max-stage-bytes`; docs/protocol-wire.md §4.6). An
    /// upload that does not fit waits for room up to the body deadline, then gets S3's 503
    /// `SlowDown`; one larger than the whole stage gets 400 `EntityTooLarge`. Default
    /// [`DEFAULT_MAX_STAGE_BYTES`](crate::DEFAULT_MAX_STAGE_BYTES).
    pub max_stage_bytes: usize,
    /// Most files the stage holds at once (`--max-stage-files`). Default
    /// [`DEFAULT_MAX_STAGE_FILES`](crate::DEFAULT_MAX_STAGE_FILES).
    pub max_stage_files: usize,
    /// Most appends decompressed and converted at once (`--max-concurrent-decodes`, at
    /// least 1); the others wait for a turn. Default [`DEFAULT_MAX_CONCURRENT_DECODES`].
    pub max_concurrent_decodes: usize,
    /// Most connections served at once (`--max-connections`, at least 1); further ones wait
    /// in the listen backlog until one closes. Default [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// Longest time a client may take to send a request's headers (and an idle keep-alive
    /// connection may wait for its next request) before the connection is closed
    /// (`--header-timeout`, default 20 s).
    pub header_read_timeout: Duration,
    /// Longest time a client may take to send a request's body; slower ones get 408
    /// `ERR_REQUEST_TIMEOUT` (`--body-timeout`, default 30 s).
    pub body_read_timeout: Duration,
    /// Retried appends with an already-used continuation token.
    pub duplicate_append: DuplicateAppendPolicy,
    /// Reject (400 `ERR_OFFSET_TOKEN_SPAN`) an append whose numeric offset tokens cannot name
    /// its rows: start after end, or more rows than `end - start + 1`. Off, such an append is
    /// accepted, counted in `GET /` (`offset_span_violations`) and the request log, and
    /// warned about. See [`offset_span_violation`](crate::service::offsets::offset_span_violation).
    pub strict_offsets: bool,
    /// Snowpipe Streaming Classic channels and their committed offsets, for
    /// `SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET` (`--classic-channel`; see [`crate::classic`]).
    pub classic_channels: Vec<crate::ClassicChannel>,
    /// Which of Snowflake's service limits to enforce (`--limits snowflake`): per-channel
    /// append rate and throughput, channels per pipe, pipes per table. Default
    /// [`Limits::Off`](crate::limits::Limits::Off) (the 4 MB request cap applies either way).
    pub limits: crate::base::limits::Limits,
    /// How BINARY columns read JSON strings (Snowflake's `BINARY_INPUT_FORMAT`): hex by
    /// default, as Snowflake's; [`BinaryFormat::Base64`](crate::convert::BinaryFormat::Base64)
    /// for clients that send base64.
    pub binary_format: crate::convert::BinaryFormat,
    /// The session time zone (Snowflake's `TIMEZONE` parameter, `--timezone`): epoch numbers
    /// become wall clocks in it for TIMESTAMP_NTZ, DATE and TIME, strings without an offset
    /// are read in it for TIMESTAMP_LTZ/TIMESTAMP_TZ, and `DEFAULT CURRENT_*` columns get
    /// its current time. Default `America/Los_Angeles`, Snowflake's default
    /// ([`DEFAULT_TIMEZONE`](crate::convert::DEFAULT_TIMEZONE)).
    pub timezone: chrono_tz::Tz,
    /// Host name returned by `/v2/streaming/hostname`; default: the host the client connected to.
    pub ingest_host: Option<String>,
    /// Append every request record as a JSON line to this file.
    pub request_log: Option<PathBuf>,
    /// How many request records [`Emulator::requests`](crate::server::Emulator::requests) keeps (default 100 000).
    pub request_log_capacity: usize,
    /// How many bytes of request records the in-memory log keeps at most (oldest dropped
    /// first; each record's text fields are cut to 1 KiB). Default
    /// [`DEFAULT_REQUEST_LOG_MAX_BYTES`] (32 MiB).
    pub request_log_max_bytes: usize,
    /// Rows per SQL API result partition: a larger result answers its first partition and
    /// lists them all in `resultSetMetaData.partitionInfo`, the others fetched with
    /// `GET /api/v2/statements/{handle}?partition=N` (gzip-encoded when the client accepts
    /// it). Default [`DEFAULT_SQL_PARTITION_ROWS`]; tests set a few rows.
    pub sql_partition_rows: usize,
    /// Answer a SQL API statement still running after this long with HTTP 202 and its
    /// `statementHandle`/`statementStatusUrl`, to be polled; `Some(Duration::ZERO)` answers
    /// every statement so. Default 45 s, Snowflake's documented synchronous wait; `None`
    /// always waits.
    pub sql_async_after: Option<Duration>,
    /// The most SQL API statements that run at once (at least 1; default
    /// [`DEFAULT_SQL_MAX_RUNNING`]). A statement beyond them waits for one to finish, at most
    /// [`sql_queue_wait`](Self::sql_queue_wait), then is answered 429 (retry later); with
    /// `?async=true` too, so polling clients cannot pile statements up.
    pub sql_max_running: usize,
    /// How long a SQL API statement waits for a free slot before it is answered 429 (default
    /// [`DEFAULT_SQL_QUEUE_WAIT`]).
    pub sql_queue_wait: Duration,
    /// How long one SQL API statement may run before it is cancelled with `000630` (default
    /// [`DEFAULT_SQL_STATEMENT_TIMEOUT`]).
    pub sql_statement_timeout: Duration,
    /// The wall clock the emulator reads (token expiry, channel creation times, request
    /// timestamps). Default: the system clock; a test keeps a clone and
    /// [`advance`](crate::clock::Clock::advance)s it instead of sleeping.
    pub clock: crate::base::clock::Clock,
}

/// Default [`EmulatorConfig::sql_partition_rows`]: 10,000 rows.
pub const DEFAULT_SQL_PARTITION_ROWS: usize = 10_000;

/// Default [`EmulatorConfig::sql_max_running`]: 4 statements.
pub const DEFAULT_SQL_MAX_RUNNING: usize = 4;

/// Default [`EmulatorConfig::sql_queue_wait`]: 10 s, one statement time limit.
pub const DEFAULT_SQL_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// The default [`EmulatorConfig::sql_statement_timeout`]: 10 s.
pub const DEFAULT_SQL_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            port: 0,
            tls: TlsMode::Off,
            ca_out: None,
            data_dir: None,
            ddl: Vec::new(),
            ddl_sources: Vec::new(),
            public_keys: Vec::new(),
            user_public_keys: Vec::new(),
            accept_any_key: false,
            personal_access_tokens: Vec::new(),
            role_grants: Vec::new(),
            commit_delay: Duration::from_secs(1),
            sink: false,
            faults: FaultPlan::default(),
            seed: 0,
            scoped_token_ttl: Duration::from_secs(3600),
            max_payload_bytes: MAX_PAYLOAD_BYTES,
            max_uncompressed_bytes: DEFAULT_MAX_UNCOMPRESSED_BYTES,
            max_rows_per_request: DEFAULT_MAX_ROWS_PER_REQUEST,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            max_stage_bytes: crate::stage::DEFAULT_MAX_STAGE_BYTES,
            max_stage_files: crate::stage::DEFAULT_MAX_STAGE_FILES,
            max_concurrent_decodes: DEFAULT_MAX_CONCURRENT_DECODES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(20),
            body_read_timeout: Duration::from_secs(30),
            duplicate_append: DuplicateAppendPolicy::RejectStale,
            strict_offsets: false,
            classic_channels: Vec::new(),
            limits: crate::base::limits::Limits::Off,
            binary_format: crate::convert::BinaryFormat::default(),
            timezone: crate::convert::DEFAULT_TIMEZONE,
            ingest_host: None,
            request_log: None,
            request_log_capacity: 100_000,
            request_log_max_bytes: DEFAULT_REQUEST_LOG_MAX_BYTES,
            sql_partition_rows: DEFAULT_SQL_PARTITION_ROWS,
            sql_async_after: Some(Duration::from_secs(45)),
            sql_max_running: DEFAULT_SQL_MAX_RUNNING,
            sql_queue_wait: DEFAULT_SQL_QUEUE_WAIT,
            sql_statement_timeout: DEFAULT_SQL_STATEMENT_TIMEOUT,
            clock: crate::base::clock::Clock::default(),
        }
    }
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("ca_out", &self.ca_out)
            .field("data_dir", &self.data_dir)
            .field("ddl_scripts", &self.ddl.len())
            .field("public_keys", &self.public_keys.len())
            .field("user_public_keys", &self.user_public_keys.len())
            .field("accept_any_key", &self.accept_any_key)
            .field("role_grants", &self.role_grants)
            .field("personal_access_tokens", &"[redacted]")
            .field("commit_delay", &self.commit_delay)
            .field("sink", &self.sink)
            .field("faults", &self.faults.rules.len())
            .field("seed", &self.seed)
            .field("scoped_token_ttl", &self.scoped_token_ttl)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("max_uncompressed_bytes", &self.max_uncompressed_bytes)
            .field("max_rows_per_request", &self.max_rows_per_request)
            .field("max_pending_bytes", &self.max_pending_bytes)
            .field("max_stage_bytes", &self.max_stage_bytes)
            .field("max_stage_files", &self.max_stage_files)
            .field("max_concurrent_decodes", &self.max_concurrent_decodes)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("duplicate_append", &self.duplicate_append)
            .field("strict_offsets", &self.strict_offsets)
            .field("classic_channels", &self.classic_channels)
            .field("limits", &self.limits)
            .field("binary_format", &self.binary_format)
            .field("timezone", &self.timezone)
            .field("sql_partition_rows", &self.sql_partition_rows)
            .field("sql_async_after", &self.sql_async_after)
            .field("sql_max_running", &self.sql_max_running)
            .field("sql_queue_wait", &self.sql_queue_wait)
            .field("sql_statement_timeout", &self.sql_statement_timeout)
            .finish_non_exhaustive()
    }
}

impl EmulatorConfig {
    /// A configuration for tests: no data directory, plain HTTP, commit before the append response,
    /// strict offset tokens.
    pub fn for_tests() -> Self {
        Self {
            commit_delay: Duration::ZERO,
            strict_offsets: true,
            ..Self::default()
        }
    }

    /// Adds a DDL script (SQL text).
    pub fn with_ddl(mut self, sql: impl Into<String>) -> Self {
        self.ddl.push(sql.into());
        self
    }

    /// Where the `index`-th DDL script came from, escaped for one line of text: its file
    /// (`DDL file "…"`), else `DDL script N` (1-based).
    pub(crate) fn ddl_source(&self, index: usize) -> String {
        match self.ddl_sources.get(index) {
            Some(source) => format!("DDL file \"{}\"", source.escape_debug()),
            None => format!("DDL script {}", index + 1),
        }
    }

    /// Registers a public key (PEM) for any user.
    pub fn with_public_key(mut self, pem: impl Into<String>) -> Self {
        self.public_keys.push(pem.into());
        self
    }

    /// Registers a public key (PEM) for `user` only: a JWT of another user signed with it
    /// is refused with 401.
    pub fn with_user_public_key(mut self, user: impl Into<String>, pem: impl Into<String>) -> Self {
        self.user_public_keys.push((user.into(), pem.into()));
        self
    }

    /// Grants `role` the use of `database` (`*`: every database); see
    /// [`role_grants`](Self::role_grants).
    pub fn with_role_grant(mut self, role: impl Into<String>, database: impl Into<String>) -> Self {
        self.role_grants.push((role.into(), database.into()));
        self
    }

    /// Sets the commit delay.
    pub fn with_commit_delay(mut self, d: Duration) -> Self {
        self.commit_delay = d;
        self
    }

    /// Seeds a Snowpipe Streaming Classic channel (see [`EmulatorConfig::classic_channels`]).
    pub fn with_classic_channel(mut self, channel: crate::ClassicChannel) -> Self {
        self.classic_channels.push(channel);
        self
    }

    /// Sets the data directory.
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Sets the TLS mode.
    pub fn with_tls(mut self, tls: TlsMode) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the fault plan.
    pub fn with_faults(mut self, faults: FaultPlan) -> Self {
        self.faults = faults;
        self
    }

    /// Sets the wall clock (a test advances its clone instead of sleeping).
    pub fn with_clock(mut self, clock: crate::base::clock::Clock) -> Self {
        self.clock = clock;
        self
    }
}
