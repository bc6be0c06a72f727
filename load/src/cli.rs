//! The command line: `snowpipe load PATH... --database D --schema S --pipe P …`, every flag
//! also from `SNOWPIPE_LOAD_<FLAG>` (`snowpipe-cli-support`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use snowpipe_cli_support::log::LogArgs;

/// The prefix of every flag's environment variable.
pub(crate) const ENV_PREFIX: &str = "SNOWPIPE_LOAD_";

/// Snowpipe Streaming from the command line.
#[derive(Debug, Parser)]
#[command(name = "snowpipe", version, about)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Load NDJSON, CSV or Parquet files into a table, exactly once across reruns.
    #[command(long_about = LOAD_ABOUT)]
    Load(LoadArgs),
}

const LOAD_ABOUT: &str = "Load NDJSON, CSV or Parquet files into a table through Snowpipe \
Streaming, exactly once across reruns.

Each file gets its own channel (LOAD_<16 hex of the SHA-256 of its canonical path>); the \
channel's offset token holds the file's identity and the position after the last committed \
row, so a rerun after a crash, Ctrl-C or SIGKILL resumes after it and writes nothing twice. A \
file whose first bytes changed since is loaded anew from its start.

`-` reads standard input: AT-LEAST-ONCE only (a rerun cannot tell what it read before, so it \
loads everything it is given again).

Connection: --profile FILE (profile.json or connections.toml), else the SNOWFLAKE_* variables \
when SNOWFLAKE_ACCOUNT is set, else an emulator embedded in this process (--emulator-ddl).

Objects in buckets: s3://, gs://, az:// and https:// URLs, a prefix ending in `/` or a glob \
(* and ? within one path segment); credentials from each cloud's usual chain (environment, \
web identity, instance metadata; see load/README.md). An object overwritten since (a new \
ETag) is loaded anew. --shard I/N splits the inputs among N processes.

The last line on stdout is a JSON summary. Exit status 0 only when every file's last row is \
committed.";

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated values (see the --csv-* options).
    Csv,
    /// Apache Parquet.
    Parquet,
}

/// What to do with a bad record (a line that is not one JSON object, a CSV record with the
/// wrong number of fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnError {
    /// Write it to `<input>.rejected.ndjson` and go on.
    Continue,
    /// Stop, exit non-zero, naming the file and line.
    Abort,
}

/// `snowpipe load`'s options.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// Files to load (`-`: standard input, at-least-once), or objects: s3://B/KEY, gs://,
    /// az://, https:// (a prefix ending in `/`, or a glob: s3://B/exports/2026-*/part-*.parquet).
    #[arg(required = true, value_name = "PATH|URL")]
    pub paths: Vec<PathBuf>,
    /// Load only share I of N of the inputs (0 <= I < N), chosen by a hash of each input's
    /// name: N processes with the same inputs and I = 0..N-1 load each input exactly once.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::shard::Shard>,
    /// Where bad records of objects in a bucket go: one file per object and table,
    /// `<object's name>-<hash>.rejected.ndjson`, each record naming the URL and the table.
    /// Created 0700 when missing. Default: `snowpipe-dead-letters` in the working directory.
    /// (A local file's bad records go beside it, `<file>.rejected.ndjson`.)
    #[arg(long, value_name = "DIR")]
    pub dead_letters: Option<PathBuf>,
    /// Where an object's bytes are kept while it loads (a sparse file per object, 0600,
    /// removed after). Created 0700 when missing; one that
    /// another user owns or that others can write is refused. Default: the loader's own
    /// `snowpipe-load-<uid>` in the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Database of the pipe.
    #[arg(long)]
    pub database: String,
    /// Schema of the pipe.
    #[arg(long)]
    pub schema: String,
    /// Pipe to stream into.
    #[arg(long, required_unless_present = "table", conflicts_with = "table")]
    pub pipe: Option<String>,
    /// Table to stream into through its default pipe (`<TABLE>-STREAMING`), instead of --pipe.
    #[arg(long)]
    pub table: Option<String>,
    /// Input format (default: from the extension: .ndjson/.jsonl/.json, .csv/.tsv, .parquet).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Keep reading a growing file (log shipping) until Ctrl-C or SIGTERM; survives rotation
    /// and truncation (NDJSON and CSV).
    #[arg(long)]
    pub follow: bool,
    /// Channel name (only with one input; default: LOAD_ and a hash of the canonical path).
    #[arg(long)]
    pub channel: Option<String>,
    /// Channels loading at once: files, and the ranges of a large file (64 MiB each, up to 16
    /// channels a file), side by side. Default: the inputs' channels, at most 16, where a
    /// file of S bytes (Parquet: 8 × uncompressed) has min(16, ceil(S / 64 MiB)) (a channel is
    /// paced at 20 MB/s: a range is about 3.4 s of one).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=2000))]
    pub channels: Option<u16>,
    /// Bytes of a range (tests; default 64 MiB; a rerun of a file must use the value its
    /// first run used).
    #[arg(long, hide = true)]
    pub range_bytes: Option<u64>,
    /// Connection profile: profile.json or connections.toml.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// What a bad record does.
    #[arg(long, value_enum, default_value = "continue")]
    pub on_error: OnError,
    /// How long to wait for the last rows' commit at the end.
    #[arg(long, default_value = "2min", value_parser = snowpipe_streaming::duration::parse)]
    pub commit_timeout: std::time::Duration,
    /// How long appended rows wait to share a request (the SDK's max_client_lag; its
    /// default 1s). Lower: rows committed sooner, in more requests.
    #[arg(long, value_parser = snowpipe_streaming::duration::parse)]
    pub max_client_lag: Option<std::time::Duration>,
    /// CSV options (Snowflake's file format options).
    #[command(flatten)]
    pub csv: CsvArgs,
    /// DDL for the embedded emulator (SQL, or @FILE), when no account is configured.
    #[arg(long, value_name = "SQL|@FILE")]
    pub emulator_ddl: Option<String>,
    /// Where the embedded emulator keeps its tables (in memory when omitted); a rerun against
    /// the same directory resumes.
    #[arg(long, value_name = "DIR")]
    pub emulator_data_dir: Option<PathBuf>,
    /// `--log-format`.
    #[command(flatten)]
    pub log: LogArgs,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// The CSV options, named after Snowflake's file format options where they mean the same.
#[derive(Debug, Clone, Args)]
pub(crate) struct CsvArgs {
    /// FIELD_DELIMITER: one byte (`\t` for a tab).
    #[arg(long, default_value = ",")]
    pub csv_delimiter: String,
    /// FIELD_OPTIONALLY_ENCLOSED_BY: one byte, or NONE.
    #[arg(long, default_value = "\"")]
    pub csv_quote: String,
    /// ESCAPE: one byte escaping the quote inside an enclosed field (NONE: quotes are doubled).
    #[arg(long, default_value = "NONE")]
    pub csv_escape: String,
    /// SKIP_HEADER: records skipped at the start of the file (before the header row, if any).
    #[arg(long, default_value_t = 0)]
    pub csv_skip_header: u64,
    /// The first record is data, not column names (give them with --csv-columns).
    #[arg(long, requires = "csv_columns")]
    pub csv_no_header: bool,
    /// Column names, comma-separated (with --csv-no-header, or to rename a header's).
    #[arg(long, value_delimiter = ',')]
    pub csv_columns: Vec<String>,
    /// NULL_IF: a field equal to this is NULL (repeatable; default `\N`).
    #[arg(long)]
    pub csv_null_if: Vec<String>,
    /// EMPTY_FIELD_AS_NULL: an empty field is NULL (else an empty string).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub csv_empty_field_as_null: bool,
    /// TRIM_SPACE: trim white space around fields.
    #[arg(long)]
    pub csv_trim_space: bool,
}
