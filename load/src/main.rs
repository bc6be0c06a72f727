//! `snowpipe load`: NDJSON, CSV and Parquet files into a Snowflake table through Snowpipe
//! Streaming, exactly once across reruns.
//!
//! # Design
//!
//! **One channel per input file**, named `LOAD_<first 16 hex digits of the SHA-256 of the
//! canonical path>` (or `--channel`, with one input only). Appends on a channel are ordered
//! and the channel's committed offset token says how far the table holds the file. A file
//! larger than a range (64 MiB) is split into ranges (`ranges.rs`) on up to 16 lane channels
//! (`LOAD_<hash>_<j>`), and lanes of every file load side by side, at most `--channels` at
//! a time (`schedule.rs`).
//!
//! **The offset token is the file's identity and a position** (`token.rs`):
//! `v1:<K>:<16 hex of SHA-256 of the file's first K bytes>:<position>`, `K = min(position,
//! 4096)`, `position` the byte offset after the last row (NDJSON, CSV); for Parquet
//! `pq1:<size>:<hash of the footer>:<rows>`. On start the loader reads the channel's committed
//! token: when the file still begins with the bytes the token names and is at least as long
//! as its position, it resumes right after it; otherwise the file was replaced and it is
//! loaded from its start (logged, and `replaced` in the summary).
//!
//! **Why exactly once.** Rows go in appends of at most 1 MiB of NDJSON (`chunk.rs`), each
//! with the token of its first row as start token and the position after its last record as
//! end token. Snowflake commits a request whole and stores its end token as the channel's
//! committed token; the SDK never cuts an append across requests unless every piece can carry
//! its own exact tokens, which string tokens cannot — so a 1 MiB append (a quarter of a
//! request) always goes whole, and one that could not would be refused, never split with a
//! guessed token. The committed token therefore names a row boundary of the file, and every
//! row before it, and none after it, is in the table. A rerun after SIGKILL or Ctrl-C resumes
//! after it: nothing twice, nothing lost. Within a run the SDK's own recovery (reopen,
//! replay after the committed token) keeps the same rule. Numeric per-row tokens (`RawRows`)
//! would order better but cannot carry the identity, which would then have to live in the
//! channel name, and a rewritten file would resume at the old file's position.
//!
//! **Formats.** NDJSON: lines; a line that is not one JSON object is a bad record; blank lines
//! are skipped. CSV (`csv_rows.rs`): the header row names the columns (`--csv-no-header` with
//! `--csv-columns`), values go as JSON strings (Snowflake converts text per column, as for a
//! staged file), NULLs as `null`; a record with the wrong number of fields is a bad record.
//! Parquet (`parquet_rows.rs`): parquet's Arrow reader, one row group at a time, batches of
//! about 1 MiB of *decoded* rows into `Channel::append` (`Rows::arrow`, at the span of their
//! `pq1:…:<rows>` tokens, one number per row behind the file's prefix, which the SDK splits
//! exactly when a batch is larger than a request), resuming with `with_offset`; what the footer and page headers claim is checked first
//! (`parquet_guard.rs`): a schema past 64 levels or 2,000 columns refuses the file, a row
//! group that cannot be decoded within the client's memory budget is a bad record.
//!
//! **Bad records** go to `<input>.rejected.ndjson` (file, line, byte offset, error, the
//! record's first 64 KiB, its length and SHA-256) and the run goes on; `--on-error abort`
//! stops at the first, naming the file and line. A record is bad when it is longer than
//! 4,000,000 bytes (Snowflake's request size; read past in bounded memory, `record.rs`,
//! `csv_long.rs`), not UTF-8, nested deeper than 127 levels (NDJSON), or not one object; a
//! CSV header naming a column twice refuses the file. Inputs must be regular files (a FIFO is
//! refused, `files.rs`); the dead-letter file is never opened through a symbolic link and
//! gets the input's permissions; file names in logs have control characters escaped. The
//! dead-letter file is at-least-once: records between the committed token and a crash are
//! judged again by the rerun. Rows the server refuses are counted from the channel's
//! row-error events (`row_errors` in the summary).
//!
//! **`--follow`** (`text.rs`) polls every 200 ms and takes only whole lines (CSV: whole
//! records, quotes closed). Rotation (the path names another file): the old open file is read
//! to its end, then the new one from its start on a fresh channel handle. Truncation (the file
//! is shorter than the position): read from its start again. Limits: rotation is seen by inode
//! (Unix only); a truncation followed by writing past the old position between two polls,
//! with the same first bytes, looks like growth; a second rotation between two polls skips
//! the middle file.
//!
//! **Objects in buckets** (`object/`): an `s3://`, `gs://`, `az://` or `https://` URL (a
//! prefix, a glob, or one object) is listed through `object_store`; each object is an input
//! named by its URL, with `obj1:` tokens from its ETag and size (`token.rs`), its remaining
//! bytes fetched by ranged GETs into a sparse spool file that the readers above read.
//!
//! **`--shard I/N`** (`shard.rs`): only the inputs whose name hashes to `I` of `N`, so `N`
//! processes over the same inputs load each once.
//!
//! **Standard input** (`-`) is at-least-once: a rerun cannot know what it was given before.
//!
//! **Output.** A progress bar on stderr when it is a terminal (with `--log-format json`, a
//! JSON progress event per file and every 5 s instead, `progress.rs`, and the fatal error as
//! one JSON object); the last stdout line is a JSON summary; the exit status is 0 only when
//! every file's last row is committed.

mod chunk;
mod chunk_pool;
mod cli;
mod connect;
mod csv_long;
mod csv_rows;
mod dead_letter;
mod decode_budget;
mod files;
mod input;
mod load;
mod names;
mod object;
mod overhead;
mod parquet_guard;
mod parquet_lists;
mod parquet_rows;
mod progress;
mod ranges;
mod record;
mod schedule;
mod shard;
mod stdin;
mod text;
mod thrift_compact;
mod token;

#[cfg(test)]
mod module_graph_tests;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;
use snowpipe_cli_support::signal::terminated;

use cli::{Cli, Command, Format, LoadArgs};
use input::{Input, Settings};

/// The target of the lines `main` writes itself (the fatal error) in JSON format.
const TARGET: &str = "snowpipe_load";

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli: Cli = snowpipe_cli_support::env::parse(cli::ENV_PREFIX, argv, &[]);
    let Command::Load(args) = cli.command;
    args.log.init("warn,snowpipe_load=info");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            snowpipe_cli_support::log::fatal_chain(
                TARGET,
                [format!("cannot start the tokio runtime: {e}")],
            );
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(args));
    // A reader left blocked in a read (standard input after Ctrl-C: `load::join_reader`) must
    // not keep the process: the runtime is not waited for past this.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            snowpipe_cli_support::log::fatal(TARGET, e.as_ref());
            ExitCode::from(2)
        }
    }
}

/// The format of `path`: `--format`, else its extension.
fn format_of(path: &Path, given: Option<Format>) -> Result<Format> {
    if let Some(f) = given {
        return Ok(f);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    Ok(match ext.as_deref() {
        Some("ndjson" | "jsonl" | "json" | "ldjson") => Format::Ndjson,
        Some("csv") => Format::Csv,
        Some("parquet" | "pq") => Format::Parquet,
        _ if path == Path::new("-") => Format::Ndjson,
        _ => bail!(
            "cannot tell the format of {} from its extension: pass --format ndjson, csv or \
             parquet",
            names::shown(path)
        ),
    })
}

/// The inputs of the command line (objects listed, `--shard`'s share only), each with its
/// format and channel.
/// The inputs the command line names, and the objects under its prefixes that cannot be loaded
/// (each said on stderr here).
async fn inputs(args: &LoadArgs) -> Result<(Vec<Input>, Vec<object::SkippedObject>)> {
    if args.channel.is_some() && args.paths.len() > 1 {
        bail!("--channel names the channel of one input, but {} were given: drop --channel (each file gets its own)", args.paths.len());
    }
    if args.follow && args.paths.iter().any(|p| p == Path::new("-")) {
        bail!("--follow reads files: standard input is read to its end anyway");
    }
    if args.shard.is_some() && args.paths.iter().any(|p| p == Path::new("-")) {
        bail!("--shard shares files and objects among processes: standard input cannot be shared");
    }
    let takes = |name: &str| args.shard.is_none_or(|s| s.takes(name));
    let (mut out, mut skipped) = (Vec::new(), Vec::new());
    for path in &args.paths {
        if let Some(url) = path.to_str().filter(|p| object::is_url(p)) {
            if args.follow {
                bail!(
                    "--follow reads growing local files: {url} is an object, complete when written"
                );
            }
            let resolved = object::resolve(url).await?;
            for s in resolved.skipped {
                if !takes(&s.url) {
                    continue;
                }
                tracing::error!(
                    object = %names::shown(Path::new(&s.url)),
                    "skipped: {}",
                    s.reason
                );
                skipped.push(s);
            }
            for remote in resolved.remotes {
                if !takes(&remote.name) {
                    continue;
                }
                let name = PathBuf::from(&remote.name);
                out.push(Input {
                    format: format_of(&name, args.format)?,
                    channel: args
                        .channel
                        .clone()
                        .unwrap_or_else(|| token::channel_name(&name)),
                    path: name,
                    stdin: false,
                    object: Some(std::sync::Arc::new(remote)),
                    spans: Vec::new(),
                    lane: None,
                });
            }
            continue;
        }
        let stdin = path == Path::new("-");
        let format = format_of(path, args.format)?;
        let canonical: PathBuf = if stdin {
            PathBuf::from("-")
        } else {
            std::fs::canonicalize(path)
                .with_context(|| format!("cannot read {}: check the path", names::shown(path)))?
        };
        let channel = match (&args.channel, stdin) {
            (Some(c), _) => c.clone(),
            (None, true) => "LOAD_STDIN".to_owned(),
            (None, false) => token::channel_name(&canonical),
        };
        if format == Format::Parquet && args.follow {
            bail!("--follow reads NDJSON and CSV: a Parquet file is complete when written");
        }
        if !stdin && !takes(&canonical.to_string_lossy()) {
            continue;
        }
        out.push(Input {
            path: path.clone(),
            format,
            channel,
            stdin,
            object: None,
            spans: Vec::new(),
            lane: None,
        });
    }
    if args.channel.is_some() && out.len() > 1 {
        bail!("--channel names the channel of one input, but the URLs name {} objects: drop --channel (each gets its own)", out.len());
    }
    Ok((out, skipped))
}

/// Loads every input; `Ok(false)` when one is not fully committed.
async fn run(args: LoadArgs) -> Result<bool> {
    let started = Instant::now();
    let (inputs, skipped) = inputs(&args).await?;
    let csv = if inputs.iter().any(|i| i.format == Format::Csv) {
        Some(csv_rows::CsvOptions::new(&args.csv)?)
    } else {
        None
    };
    let mut settings = Settings {
        csv,
        follow: args.follow,
        on_error: args.on_error,
        commit_timeout: args.commit_timeout,
        memory_budget: 0,
        spool_dir: object::spool::SpoolDir::new(args.spool_dir.as_deref()),
        dead_letters: dead_letter::Place {
            dir: args
                .dead_letters
                .clone()
                .unwrap_or_else(|| PathBuf::from(dead_letter::DEFAULT_DIR)),
            table: args
                .table
                .clone()
                .or_else(|| args.pipe.clone())
                .unwrap_or_default(),
        },
        decoding: std::sync::Arc::new(decode_budget::DecodeBudget::new(0)),
    };
    let conn = connect::connect(&args).await?;
    settings.memory_budget = conn.client.memory_budget_bytes();
    // The readers' share is taken from the client's one budget: the SDK buffers within the
    // rest, so the budget bounds both (`decode_budget.rs`). Held until the run ends.
    let (decoding, _readers) = decode_budget::reserve(&conn.client)?;
    settings.decoding = std::sync::Arc::new(decoding);
    let pipe = match (&args.pipe, &args.table) {
        (Some(p), _) => conn.client.pipe(&args.database, &args.schema, p),
        (None, Some(t)) => conn.client.table_pipe(&args.database, &args.schema, t),
        (None, None) => bail!("pass --pipe P (or --table T for its default pipe)"),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let terminated = terminated();
    tokio::spawn(async move {
        terminated.await;
        let _ = stop_tx.send(true);
    });
    let total: u64 = inputs
        .iter()
        .filter_map(|i| match &i.object {
            Some(o) => Some(o.meta.size),
            None => std::fs::metadata(&i.path).ok().map(|m| m.len()),
        })
        .sum();
    let progress = std::sync::Arc::new(progress::Progress::new(!args.no_progress, total));
    // One channel per input when one is named or the input is read as it grows.
    let whole = args.channel.is_some() || args.follow;
    let plan = schedule::plan(
        &pipe,
        &inputs,
        (settings.csv.as_ref(), &settings.spool_dir),
        (whole, args.range_bytes.unwrap_or(ranges::RANGE_BYTES)),
    )
    .await?;
    let channels = args
        .channels
        .map_or_else(|| schedule::default_channels(&plan), usize::from);
    // What the process holds outside rows is taken from the budget too, so the peak RSS stays
    // within it (`overhead.rs`): for the channels that can load at once. Held until the run ends.
    let loading = channels.min(plan.iter().map(Vec::len).sum());
    let (_overhead, estimate) = overhead::reserve(&conn.client, loading)?;
    tracing::debug!(
        ?estimate,
        "the loader's fixed memory, taken from the budget"
    );
    let outcomes = schedule::run(
        &pipe,
        plan.clone(),
        &settings,
        channels,
        &stop_rx,
        &progress,
    )
    .await;
    let mut files = Vec::new();
    let mut ok = true;
    let (mut rows, mut bytes, mut bad, mut row_errors) = (0, 0, 0, 0);
    for (lanes, outs) in plan.iter().zip(&outcomes) {
        if outs.is_empty() {
            continue;
        }
        let dead: u64 = outs.iter().map(|o| o.bad_records).sum();
        if let Some(at) = outs.iter().find_map(|o| o.rejected_path.as_ref()) {
            tracing::warn!(
                file = %names::shown(&lanes[0].path),
                "{dead} bad records: in {}",
                names::shown(at)
            );
        }
        for out in outs {
            if let Some(e) = &out.error {
                tracing::error!(file = %names::shown(&lanes[0].path), channel = %lanes[0].channel, "{e}");
            }
            rows += out.rows;
            bytes += out.bytes;
            bad += out.bad_records;
            row_errors += out.row_errors;
        }
        ok &= schedule::ok(lanes, outs);
        files.push(schedule::json(lanes, outs));
    }
    progress.finish();
    let _ = conn.client.close().await;
    #[cfg(feature = "emulator")]
    if let Some(emulator) = conn.emulator {
        emulator.shutdown().await;
    }
    let complete = ok && files.len() == inputs.len() && skipped.is_empty();
    let summary = json!({
        "ok": complete,
        "files": inputs.len(),
        "rows": rows,
        "bytes": bytes,
        "bad_records": bad,
        "row_errors": row_errors,
        "seconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        "per_file": files,
        "skipped": skipped,
    });
    println!("{summary}");
    let mut why = Vec::new();
    if !(ok && files.len() == inputs.len()) {
        why.push(
            "not every file's rows are committed (see the summary's per_file errors); run again \
             to resume"
                .to_owned(),
        );
    }
    if !skipped.is_empty() {
        why.push(format!(
            "{} object(s) under the URLs were skipped, their keys not paths snowpipe load can \
             read (see the summary's skipped): rename them, or name prefixes or globs that leave \
             them out",
            skipped.len()
        ));
    }
    if !why.is_empty() {
        snowpipe_cli_support::log::fatal_chain(TARGET, [why.join("; ")]);
    }
    Ok(complete)
}
