//! Logs on stderr for terminals and for machines, the same in every binary.
//!
//! - `--log-format text` (the default): tracing's human format; colours only when stderr is a
//!   terminal, so a file or a container's log collector never gets ANSI codes.
//! - `--log-format json`: one JSON object per line, `timestamp`, `level`, `target`, `fields`
//!   (the message is `fields.message`) and the fields of the spans the event is in (`span`,
//!   `spans`: a partition's worker runs in a span with its topic, partition and channel).
//! - The filter is `RUST_LOG` (tracing's `EnvFilter` syntax, as the ecosystem expects), else the
//!   binary's default.
//! - What a binary writes on stderr itself (its progress, its fatal error, a command-line error,
//!   a panic) follows the same format: [`lines`] (the JSON schema of those events is there).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

pub mod lines;

pub use lines::{fatal, fatal_chain, format, notice, progress};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: tracing's human format, coloured on a terminal.
    #[default]
    Text,
    /// For machines: one JSON object per line.
    Json,
}

/// The `--log-format` flag, the same in every binary: `#[command(flatten)] log: LogArgs` in
/// its top-level command (global, so it is also taken after a subcommand).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::Args)]
pub struct LogArgs {
    /// Log lines on stderr: `text` for people (coloured only on a terminal) or `json`, one
    /// object per line for a log collector; the filter is `RUST_LOG` (else the binary's
    /// default level, in its README).
    #[arg(
        id = "log_format",
        long = "log-format",
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value_t
    )]
    pub format: LogFormat,
}

impl LogArgs {
    /// Installs the logger in the format asked for ([`init`]), filtered by `RUST_LOG`, else
    /// by `default_filter`.
    pub fn init(&self, default_filter: &str) {
        init(self.format, default_filter);
    }
}

/// The filter: `RUST_LOG` when it is set and valid, else `default` (a directive such as
/// `warn` or `info`). An invalid `RUST_LOG` is reported once the logger is up.
fn filter(default: &str) -> (EnvFilter, Option<String>) {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new(default),
                Some(format!(
                    "RUST_LOG={v:?} is not a log filter ({e}); logging at {default:?}: write e.g. \
                     RUST_LOG=info or RUST_LOG=snowpipe_kafka=debug,warn"
                )),
            ),
        },
        _ => (EnvFilter::new(default), None),
    }
}

/// Installs the process's logger on stderr in `format`, filtered by `RUST_LOG` (else
/// `default_filter`). Does nothing when a logger is already installed (a test harness's).
/// In JSON format a panic is written as one JSON object too.
pub fn init(format: LogFormat, default_filter: &str) {
    let (filter, problem) = filter(default_filter);
    let installed = match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
            .is_ok(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init()
            .is_ok(),
    };
    if installed {
        lines::set_format(format);
        if format == LogFormat::Json {
            lines::json_panics();
        }
    }
    if let (true, Some(problem)) = (installed, problem) {
        tracing::warn!("{problem}");
    }
}

impl LogFormat {
    /// The format `argv` asks for (`--log-format json` or `--log-format=json`), else the
    /// variable `<prefix>LOG_FORMAT`, else text: for a binary that logs before clap has parsed
    /// its command line (reading a configuration file the command line names). An unknown
    /// value is text here; clap refuses it when it parses.
    pub fn from_args(argv: &[std::ffi::OsString], prefix: &str) -> Self {
        let mut value = None;
        let mut args = argv.iter().filter_map(|a| a.to_str());
        while let Some(a) = args.next() {
            if a == "--log-format" {
                value = args.next().map(str::to_owned);
            } else if let Some(v) = a.strip_prefix("--log-format=") {
                value = Some(v.to_owned());
            }
        }
        let value = value.or_else(|| std::env::var(format!("{prefix}LOG_FORMAT")).ok());
        match value.as_deref().map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Text,
        }
    }
}
