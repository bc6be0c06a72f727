//! What is loaded and how: each input (its path, format and channel) and the settings every
//! file's load shares. Below both the loader (`load.rs`) and the standard-input reader
//! (`stdin.rs`), which each take them.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Format, OnError};
use crate::csv_rows::CsvOptions;

/// One input.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    /// As given.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// Its channel.
    pub channel: String,
    /// Standard input (`-`).
    pub stdin: bool,
    /// An object in a bucket (`path` is then its name, `object/`).
    pub object: Option<std::sync::Arc<crate::object::Remote>>,
    /// The ranges this channel loads, in order (`ranges.rs`: positions of the whole file,
    /// ranged tokens); empty: the whole file, with the one-range tokens.
    pub spans: Vec<(u64, u64)>,
    /// The lane this channel is of a file split into ranges (`None`: the input loaded whole).
    pub lane: Option<Lane>,
}

/// A lane of a file split into ranges: lane `index` of the caller-routed lane stream whose
/// base is the file's one-range channel (`snowpipe_streaming::LaneStream`), opened on its own
/// when one of `--channels`' slots frees up.
#[derive(Debug, Clone)]
pub(crate) struct Lane {
    /// The stream's base name: the file's one-range channel, lane 0's.
    pub stream: String,
    /// Its lane.
    pub index: usize,
}

/// What loading every file shares.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// CSV options (when a file is CSV).
    pub csv: Option<CsvOptions>,
    /// `--follow`.
    pub follow: bool,
    /// `--on-error`.
    pub on_error: OnError,
    /// How long to wait for the last commit.
    pub commit_timeout: Duration,
    /// The client's memory budget, bytes (what Parquet decoding stays within).
    pub memory_budget: usize,
    /// Where objects' dead letters go (`--dead-letters`) and the table records name.
    pub dead_letters: crate::dead_letter::Place,
    /// Where objects are spooled (`--spool-dir`).
    pub spool_dir: crate::object::spool::SpoolDir,
    /// Half of it: what every lane's Parquet readers hold together (`decode_budget.rs`).
    pub decoding: std::sync::Arc<crate::decode_budget::DecodeBudget>,
}
