//! `snowpipe-emulator`: command-line wrapper over the `snowpipe_emulator` library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use snowpipe_emulator::option_file::{MAX_DDL_FILE_BYTES, MAX_SMALL_FILE_BYTES};
use snowpipe_emulator::{
    offline, DuplicateAppendPolicy, Emulator, EmulatorConfig, FaultPlan, TlsMode,
};

/// The emulator's command line: a subcommand, or the server's options.
type Cli = snowpipe_cli_support::invocation::Invocation<Command, ServeArgs>;

/// Who the binary is, for `--help` and `--version`.
const BINARY: snowpipe_cli_support::invocation::Binary = snowpipe_cli_support::invocation::Binary {
    name: "snowpipe-emulator",
    version: env!("CARGO_PKG_VERSION"),
    about: "A local Snowpipe Streaming server (REST API, high-performance architecture).",
};

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a read-only SQL query against a data directory and print the rows: NUMBER(p,s)
    /// columns exactly, with `s` decimals (as the SQL API), BINARY as upper-case hex.
    Query {
        /// The emulator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Output format: `table` (tab-separated with a header), `json` (one array per row;
        /// NUMBER(p,0) values that fit 64 bits as JSON integers, other NUMBERs as strings) or
        /// `csv`.
        #[arg(long, default_value = "table")]
        format: String,
        /// The SQL (SELECT …). Snowflake table DB.SCHEMA.T is the SQLite table "DB.SCHEMA.T".
        sql: String,
    },
    /// Print pipes, channels (committed tokens, counters) and row counts of a data directory.
    Status {
        /// The emulator's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Generate an RSA key pair for a Snowflake user, as Snowflake's key-pair guide does with
    /// openssl: `rsa_key.p8` (PKCS#8 PEM, mode 0600) and `rsa_key.pub` in DIR (never replaced),
    /// then print the key's fingerprint and the `ALTER USER … SET RSA_PUBLIC_KEY` statement that
    /// registers it (docs/snowflake-setup.md).
    Keygen {
        /// Directory to write the two files into (created when missing).
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Encrypt the private key with the passphrase in SNOWFLAKE_PRIVATE_KEY_PASSPHRASE
        /// (the variable the SDK unlocks it with; never a flag).
        #[arg(long)]
        encrypt: bool,
        /// The user the printed statement registers the key with.
        #[arg(long, default_value = "SNOWPIPE_INGEST")]
        user: String,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// TCP port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Serve HTTPS with a CA and certificate generated at start.
    #[arg(long)]
    tls: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where to write the generated CA certificate, mode 0600 (default: <data-dir>/ca.pem, else
    /// ca.pem in a new private temporary directory).
    #[arg(long)]
    ca_out: Option<PathBuf>,
    /// Keep rows and channel state in SQLite in this directory (default: a new private
    /// temporary directory, removed at exit).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Snowflake DDL file declaring databases, schemas, tables and pipes (repeatable).
    #[arg(long)]
    ddl: Vec<PathBuf>,
    /// RSA public key (PEM) allowed to sign key-pair JWTs (repeatable): `FILE` for any user,
    /// `USER=FILE` for that user only.
    #[arg(long, value_name = "[USER=]FILE")]
    public_key: Vec<String>,
    /// Accept any bearer token. INSECURE: for quick starts only.
    #[arg(long)]
    accept_any_key: bool,
    /// Programmatic access token to accept (repeatable).
    #[arg(long, env = "SNOWPIPE_EMULATOR_PAT", hide_env_values = true)]
    pat: Vec<String>,
    /// Enforce Snowflake's service limits: `snowflake` (10 appends/s and 20 MB/s per channel →
    /// 429, 2,000 channels per pipe, 10 pipes per table) or `off`.
    #[arg(long, default_value = "off", value_parser = |s: &str| s.parse::<snowpipe_emulator::Limits>())]
    limits: snowpipe_emulator::Limits,
    /// Grant ROLE the use of DATABASE (`ROLE=DATABASE`, `ROLE=*` for every database;
    /// repeatable). With any grant, data calls need a granted role (`PUBLIC` when the client
    /// names none); without, roles are not checked.
    #[arg(long, value_name = "ROLE=DATABASE")]
    grant: Vec<String>,
    /// Time between an accepted append and its commit (e.g. 1s, 500ms, 0).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    commit_delay: Duration,
    /// Benchmark mode: count rows and bytes, commit, store nothing.
    #[arg(long)]
    sink: bool,
    /// Fault plan (JSON file).
    #[arg(long)]
    faults: Option<PathBuf>,
    /// One fault rule, compact (`append_rows:status=503,bare=ERR_GENERAL_EXCEPTION_RETRY_REQUEST,every=5`,
    /// `append_rows:lost_ack,times=1`, `any:latency=20,p=0.1`) or JSON; repeatable, added after --faults.
    #[arg(long = "fault", value_name = "RULE")]
    fault: Vec<snowpipe_emulator::FaultRule>,
    /// Seed of the fault-injection random generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Lifetime of scoped tokens (the official SDK needs more than 300 s).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    token_ttl: Duration,
    /// Largest append body on the wire, in bytes (Snowflake's hard cap: 4 MB).
    #[arg(long, default_value_t = snowpipe_emulator::MAX_PAYLOAD_BYTES)]
    max_payload: usize,
    /// Answer a retried append (already-used continuation token) idempotently instead of stale.
    #[arg(long)]
    idempotent_retries: bool,
    /// Reject (400) an append whose numeric offset tokens cannot name its rows (start after
    /// end, or more rows than end - start + 1); without it such appends are counted and warned.
    #[arg(long)]
    strict_offsets: bool,
    /// A Snowpipe Streaming Classic channel's committed offset, `TABLE/CHANNEL=OFFSET`
    /// (`DB.SCHEMA.TABLE` to name the schema; an empty OFFSET: nothing committed), for
    /// `SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET(...)`. Repeatable.
    #[arg(long = "classic-channel", value_name = "TABLE/CHANNEL=OFFSET")]
    classic_channel: Vec<snowpipe_emulator::ClassicChannel>,
    /// How BINARY columns read JSON strings (Snowflake's BINARY_INPUT_FORMAT): `hex` (the
    /// default, as Snowflake's), `base64` or `utf8`. `:pipe-info` advertises it, so the
    /// official SDK encodes bytes to match.
    #[arg(long, default_value = "hex", value_parser = |s: &str| s.parse::<snowpipe_emulator::BinaryFormat>())]
    binary_format: snowpipe_emulator::BinaryFormat,
    /// Deprecated alias of `--binary-format hex` (the default), kept for older scripts.
    #[arg(long, hide = true, conflicts_with = "binary_format")]
    binary_hex: bool,
    /// The session time zone (Snowflake's TIMEZONE parameter; an IANA name such as `UTC` or
    /// `Europe/Zurich`): epoch numbers become wall clocks in it for TIMESTAMP_NTZ, DATE and
    /// TIME, and strings without an offset are read in it for TIMESTAMP_LTZ/TIMESTAMP_TZ.
    #[arg(long, default_value = "America/Los_Angeles", value_parser = parse_timezone)]
    timezone: chrono_tz::Tz,
    /// Host name returned by /v2/streaming/hostname (default: the host the client connected to).
    #[arg(long)]
    ingest_host: Option<String>,
    /// Append a JSON line per request to this file.
    #[arg(long)]
    request_log: Option<PathBuf>,
    /// Largest append body after decompression, in bytes (64 MiB: four times the official
    /// SDK's 16 MB rowset); larger ones get 413.
    #[arg(long, default_value_t = snowpipe_emulator::config::DEFAULT_MAX_UNCOMPRESSED_BYTES)]
    max_decompressed_bytes: usize,
    /// Most rows in one append request; more get 413 before any row is parsed.
    #[arg(long, default_value_t = snowpipe_emulator::config::DEFAULT_MAX_ROWS_PER_REQUEST)]
    max_rows_per_request: usize,
    /// Most bytes of memory appended rows hold, from decompression until they commit; appends
    /// beyond it get 429 (clients retry), one that alone needs more gets 413.
    #[arg(long, default_value_t = snowpipe_emulator::config::DEFAULT_MAX_PENDING_BYTES)]
    max_pending_bytes: usize,
    /// Most bytes of files the official SDK's file mode uploads and has not yet registered;
    /// an upload beyond it waits for room, then gets 503 SlowDown.
    #[arg(long, default_value_t = snowpipe_emulator::DEFAULT_MAX_STAGE_BYTES)]
    max_stage_bytes: usize,
    /// Most such files held at once.
    #[arg(long, default_value_t = snowpipe_emulator::DEFAULT_MAX_STAGE_FILES)]
    max_stage_files: usize,
    /// Most appends decompressed and converted at once; the others wait for a turn.
    #[arg(long, default_value_t = snowpipe_emulator::config::DEFAULT_MAX_CONCURRENT_DECODES)]
    max_concurrent_decodes: usize,
    /// Most connections served at once; further ones wait to be accepted until one closes.
    #[arg(long, default_value_t = snowpipe_emulator::config::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Longest wait for a request's headers (and for the next request on an idle
    /// connection) before the connection is closed.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    header_timeout: Duration,
    /// Longest wait for a request's body before answering 408.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    body_timeout: Duration,
}

/// A new directory only this user may enter (mode 0700, random name, never an existing one)
/// for the generated CA certificate when neither --ca-out nor --data-dir names a place.
fn private_temp_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "snowpipe-emulator-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(&dir).map_err(|e| {
        format!(
            "cannot create a private directory {} for the CA certificate: {e}; pass --ca-out or --data-dir",
            dir.display()
        )
    })?;
    Ok(dir)
}

/// An IANA time zone name (`America/Los_Angeles`, `UTC`, `Europe/Zurich`).
fn parse_timezone(s: &str) -> Result<chrono_tz::Tz, String> {
    s.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        format!(
            "unknown time zone {s:?}; use an IANA name such as America/Los_Angeles \
             (Snowflake's default), UTC or Europe/Zurich"
        )
    })
}

/// `1s`, `500ms`, `0.5s`, `1min`, `2m`, `1h` or `0`: the workspace's one duration syntax (the
/// SDK's `snowpipe_streaming::duration`: humantime's units, a fraction of one unit; the
/// emulator shares no code with the SDK).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let hint = || format!("{s:?} is not a duration: write e.g. 500ms, 1.5s, 3s, 1min, 2m or 1h");
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.parse::<f64>().is_ok() {
        return Err(format!(
            "{s:?} has no unit: write e.g. 500ms, 3s, 1min or 1h"
        ));
    }
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.contains('.') {
        let n: f64 = number.parse().map_err(|_| hint())?;
        let one = humantime::parse_duration(&format!("1{}", unit.trim())).map_err(|_| hint())?;
        return Duration::try_from_secs_f64(one.as_secs_f64() * n).map_err(|_| hint());
    }
    humantime::parse_duration(t).map_err(|e| format!("{} ({e})", hint()))
}

/// The text of the file an option names, within `limit` bytes (`option_file::read`).
fn read(path: &Path, what: &str, limit: u64) -> Result<String, String> {
    let shown = || path.display().to_string().escape_debug().to_string();
    let bytes = snowpipe_emulator::option_file::read(path, what, limit)
        .map_err(|e| format!("cannot read {what} \"{}\": {e}", shown()))?;
    String::from_utf8(bytes)
        .map_err(|_| format!("cannot read {what} \"{}\": it is not UTF-8 text", shown()))
}

async fn serve(a: ServeArgs) -> Result<(), Failure> {
    let mut cfg = EmulatorConfig::default();
    cfg.port = a.port;
    cfg.tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => TlsMode::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ if a.tls => TlsMode::Generate,
        _ => TlsMode::Off,
    };
    cfg.ca_out = a.ca_out.clone();
    if cfg.tls == TlsMode::Generate && a.ca_out.is_none() && a.data_dir.is_none() {
        cfg.ca_out = Some(private_temp_dir()?.join("ca.pem"));
    }
    cfg.data_dir = a.data_dir.clone();
    for f in &a.ddl {
        cfg.ddl.push(read(f, "DDL file", MAX_DDL_FILE_BYTES)?);
        cfg.ddl_sources.push(f.display().to_string());
    }
    for arg in &a.public_key {
        // `USER=FILE`, unless the whole argument names an existing file.
        match arg.split_once('=') {
            Some((user, f)) if !user.is_empty() && !Path::new(arg).exists() => {
                let pem = read(Path::new(f), "public key", MAX_SMALL_FILE_BYTES)?;
                cfg.user_public_keys.push((user.to_owned(), pem));
            }
            _ => cfg
                .public_keys
                .push(read(Path::new(arg), "public key", MAX_SMALL_FILE_BYTES)?),
        }
    }
    cfg.accept_any_key = a.accept_any_key;
    cfg.personal_access_tokens = a.pat.clone();
    cfg.limits = a.limits;
    for g in &a.grant {
        let (role, db) = g
            .split_once('=')
            .filter(|(r, d)| !r.is_empty() && !d.is_empty())
            .ok_or_else(|| format!("--grant {g:?}: expected ROLE=DATABASE (or ROLE=*)"))?;
        cfg.role_grants.push((role.to_owned(), db.to_owned()));
    }
    cfg.commit_delay = a.commit_delay;
    cfg.sink = a.sink;
    if let Some(f) = &a.faults {
        cfg.faults = FaultPlan::from_json(&read(f, "fault plan", MAX_SMALL_FILE_BYTES)?)
            .map_err(|e| format!("invalid fault plan {}: {e}", f.display()))?;
    }
    cfg.faults.rules.extend(a.fault.iter().cloned());
    cfg.seed = a.seed;
    cfg.scoped_token_ttl = a.token_ttl;
    cfg.max_payload_bytes = a.max_payload;
    cfg.max_uncompressed_bytes = a.max_decompressed_bytes;
    cfg.max_rows_per_request = a.max_rows_per_request;
    cfg.max_pending_bytes = a.max_pending_bytes;
    cfg.max_stage_bytes = a.max_stage_bytes;
    cfg.max_stage_files = a.max_stage_files;
    cfg.max_concurrent_decodes = a.max_concurrent_decodes;
    cfg.max_connections = a.max_connections;
    cfg.header_read_timeout = a.header_timeout;
    cfg.body_read_timeout = a.body_timeout;
    cfg.duplicate_append = if a.idempotent_retries {
        DuplicateAppendPolicy::Idempotent
    } else {
        DuplicateAppendPolicy::RejectStale
    };
    cfg.strict_offsets = a.strict_offsets;
    cfg.classic_channels = a.classic_channel.clone();
    // `--binary-hex` is the default's old spelling: it conflicts with any `--binary-format`.
    cfg.binary_format = a.binary_format;
    cfg.timezone = a.timezone;
    cfg.ingest_host = a.ingest_host.clone();
    cfg.request_log = a.request_log.clone();

    if a.accept_any_key {
        snowpipe_cli_support::log::notice(tracing::Level::WARN, TARGET, "WARNING: --accept-any-key accepts ANY bearer token without checking it. This emulator is INSECURE; use it only for local quick starts.");
    }
    // Listened for before `listening on` announces the server: a SIGTERM sent right after the
    // line shuts down cleanly instead of killing the process by the signal's default action.
    let stop = snowpipe_cli_support::signal::terminated();
    let emu = Emulator::start(cfg).await.map_err(|e| Failure::of(&e))?;
    println!("listening on {}", emu.url());
    if let Some(p) = emu.ca_path() {
        println!("CA certificate: {}", p.display());
    }
    if a.sink {
        println!("sink mode: rows are counted, not stored");
    }
    {
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    stop.await;
    snowpipe_cli_support::log::notice(tracing::Level::INFO, TARGET, "shutting down");
    emu.shutdown().await;
    Ok(())
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "NULL".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn run_query(data_dir: &std::path::Path, sql: &str, format: &str) -> Result<(), Failure> {
    let conn = offline::open_read_only(data_dir).map_err(|e| Failure::of(&e))?;
    let (cols, rows) = offline::query(&conn, sql).map_err(|e| Failure::of(&e))?;
    match format {
        "json" => {
            for r in rows {
                println!("{}", serde_json::Value::Array(r));
            }
        }
        "csv" | "table" => {
            let sep = if format == "csv" { "," } else { "\t" };
            let esc = |s: String| {
                if format == "csv" && (s.contains(',') || s.contains('"') || s.contains('\n')) {
                    format!("\"{}\"", s.replace('"', "\"\""))
                } else {
                    s
                }
            };
            println!(
                "{}",
                cols.into_iter().map(esc).collect::<Vec<_>>().join(sep)
            );
            for r in rows {
                println!(
                    "{}",
                    r.iter().map(|v| esc(cell(v))).collect::<Vec<_>>().join(sep)
                );
            }
        }
        other => return Err(format!("unknown --format {other}; use table, json or csv").into()),
    }
    Ok(())
}

/// The target of the lines `main` writes itself (the fatal error, notices) in JSON format.
const TARGET: &str = "snowpipe_emulator";

/// The error that ends the process, as its chain of messages (outermost first): one line
/// `error: a: b` in text, an object with `message` and `causes` in JSON
/// (`snowpipe_cli_support::log::lines`).
struct Failure(Vec<String>);

impl Failure {
    /// `error` and its sources.
    fn of(error: &(dyn std::error::Error + 'static)) -> Self {
        let chain = std::iter::successors(Some(error), |e| e.source());
        Self(chain.map(ToString::to_string).collect())
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self(vec![message])
    }
}

/// The prefix of the variables every option is also read from
/// ([`snowpipe_cli_support::env`] has the rules).
const ENV_PREFIX: &str = "SNOWPIPE_EMULATOR_";

fn main() -> ExitCode {
    // Before anything in the process uses SQLite (docs/log/security/, issue 56).
    let bounded = snowpipe_emulator::bound_sql_statement_memory();
    // `SNOWPIPE_EMULATOR_LOG` was the filter's variable before `RUST_LOG`, the one every
    // binary here reads.
    let legacy_filter = std::env::var_os("RUST_LOG").is_none()
        && std::env::var_os("SNOWPIPE_EMULATOR_LOG").is_some();
    if legacy_filter {
        if let Some(v) = std::env::var_os("SNOWPIPE_EMULATOR_LOG") {
            // Still one thread: nothing else reads the environment yet.
            std::env::set_var("RUST_LOG", v);
        }
    }
    // Every option also from `SNOWPIPE_EMULATOR_<FLAG>` (`--data-dir` is
    // `SNOWPIPE_EMULATOR_DATA_DIR`).
    let cli = Cli::parse(BINARY, ENV_PREFIX, std::env::args_os().collect());
    cli.log.init("info");
    if legacy_filter {
        tracing::warn!("SNOWPIPE_EMULATOR_LOG is read as RUST_LOG: name the filter RUST_LOG");
    }
    if !bounded {
        tracing::warn!("SQLite was in use before main: one SQL API statement's memory is bounded per value only");
    }
    let result = match cli.command {
        Some(Command::Query {
            data_dir,
            format,
            sql,
        }) => run_query(&data_dir, &sql, &format),
        Some(Command::Keygen { out, encrypt, user }) => {
            snowpipe_emulator::KeyFiles::generate(&out, &user, encrypt)
                .map(|files| print!("{files}"))
                .map_err(|e| Failure::of(&e))
        }
        Some(Command::Status { data_dir }) => snowpipe_emulator::status_from_data_dir(&data_dir)
            .map(|v| println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()))
            .map_err(|e| Failure::of(&e)),
        None => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(serve(cli.run)),
            Err(e) => Err(format!("cannot start the Tokio runtime: {e}").into()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(chain)) => {
            snowpipe_cli_support::log::fatal_chain(TARGET, chain);
            ExitCode::FAILURE
        }
    }
}
