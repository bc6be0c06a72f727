//! Which channels load what, and how many at once (issue 83): each input becomes one channel
//! (a small file, standard input, `--follow`, `--channel`, a CSV object) or up to 16 lanes of
//! ranges (`ranges.rs`; an object's: `object/ranges.rs`), and the lanes of every file load side by side, at most `--channels` at a
//! time, within the client's one memory budget (the Parquet readers of every lane share half
//! of it for decoded pages, and the text readers' chunks on their way count against the same
//! half, which is taken from the SDK's budget at the start: `decode_budget.rs`).
//!
//! The default of `--channels` comes from the inputs' sizes and the service's pace of one
//! channel (20 MB/s): a range is [`RANGE_BYTES`](crate::ranges::RANGE_BYTES) (64 MiB, about
//! 3.4 s of one channel), a file of `S` bytes has `⌈S / 64 MiB⌉` ranges on `min(16, ranges)`
//! lanes (`S`: 8 × a Parquet file's uncompressed size, about its rows as JSON), and the default is the sum of the lanes
//! of every file, at most [`DEFAULT_MAX`] — so one small file keeps one channel, and a 1 GB
//! file gets 16.

use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use snowpipe_streaming::{LaneStream, Pipe};
use tokio::sync::watch;

use crate::cli::Format;
use crate::csv_rows::CsvOptions;
use crate::input::{Input, Lane, Settings};
use crate::load::FileOutcome;
use crate::names::shown;
use crate::progress::Progress;
use crate::ranges::{self, Span, LANES};
use crate::token::{ParquetIdentity, TextIdentity};

/// The most channels the default `--channels` opens at once.
pub(crate) const DEFAULT_MAX: usize = 16;

/// What one Parquet lane may hold outside the SDK's buffers: its decoded pages and batches
/// on their way (a few MiB each). Parquet lanes load at most `memory budget / 2 / this` at
/// once (16 with the default 256 MiB budget; one at a time under 32 MiB), whatever
/// `--channels` says.
pub(crate) const PARQUET_LANE_BYTES: usize = 8 << 20;

/// The channels of each input: its lanes (one for an input loaded whole).
///
/// # Errors
/// When the lane 0 channel's token cannot be read (a file that cannot be read is loaded as
/// one channel, whose reader reports it).
pub(crate) async fn plan(
    pipe: &Pipe,
    inputs: &[Input],
    (csv, spool_dir): (Option<&CsvOptions>, &crate::object::spool::SpoolDir),
    (whole, range_bytes): (bool, u64),
) -> Result<Vec<Vec<Input>>> {
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        // A CSV object is loaded whole: its safe cuts need a pass over all its bytes
        // (`ranges.rs`), which would fetch it twice.
        let csv_object = input.object.is_some() && input.format == Format::Csv;
        if whole || input.stdin || csv_object {
            out.push(vec![input.clone()]);
            continue;
        }
        let found = if let Some(remote) = &input.object {
            crate::object::ranges::spans(remote, input.format, spool_dir, range_bytes).await
        } else {
            let (path, format, csv) = (input.path.clone(), input.format, csv.cloned());
            tokio::task::spawn_blocking(move || {
                ranges::of_path(&path, format, csv.as_ref(), range_bytes)
            })
            .await
            .context("the range finder panicked")?
        };
        // A file that cannot be read (a FIFO, gone) is one channel: its reader says why, in
        // its line of the summary, and the other files load.
        let found = found.unwrap_or_default();
        if found.len() <= 1 {
            out.push(vec![input.clone()]);
            continue;
        }
        if started_whole(pipe, input).await? {
            tracing::info!(
                file = %shown(&input.path),
                "its channel holds a one-channel load's token: resuming it on one channel"
            );
            out.push(vec![input.clone()]);
            continue;
        }
        out.push(lanes(input, &found));
    }
    Ok(out)
}

/// Whether `input`'s channel holds a token of a one-channel load of this file (an older
/// version's, or from when it was small): that load resumes on one channel.
async fn started_whole(pipe: &Pipe, input: &Input) -> Result<bool> {
    let tokens = pipe
        .latest_committed_offset_tokens(&[input.channel.as_str()])
        .await
        .with_context(|| format!("cannot read the committed token of {}", input.channel))?;
    let Some(Some(token)) = tokens.get(&input.channel) else {
        return Ok(false);
    };
    let token = token.as_str().to_owned();
    if let Some(remote) = &input.object {
        // The same rule as a file's: an unranged token of this object (`token.rs`).
        return Ok(remote.tag.resume(&token, u64::MAX, false).is_some());
    }
    let (path, format) = (input.path.clone(), input.format);
    tokio::task::spawn_blocking(move || -> Result<bool> {
        let mut file = crate::files::open_input(&path)?;
        let size = file.metadata()?.len();
        Ok(match format {
            Format::Parquet => ParquetIdentity::read(&mut file)?
                .resume(&token, u64::MAX)
                .is_some(),
            _ => TextIdentity::read(&mut file)?
                .resume(&token, size)
                .is_some(),
        })
    })
    .await
    .context("the token check panicked")?
}

/// `input` split into its lanes: range `k` on lane `k % 16`, in file order.
fn lanes(input: &Input, spans: &[Span]) -> Vec<Input> {
    (0..LANES)
        .filter_map(|lane| {
            let mine: Vec<(u64, u64)> = spans
                .iter()
                .filter(|s| s.index % LANES == lane)
                .map(|s| (s.start, s.end))
                .collect();
            (!mine.is_empty()).then(|| {
                let index = lane as usize;
                Input {
                    channel: LaneStream::lane_name(&input.channel, index),
                    spans: mine,
                    lane: Some(Lane {
                        stream: input.channel.clone(),
                        index,
                    }),
                    ..input.clone()
                }
            })
        })
        .collect()
}

/// `--channels`' default for `plan`'s lanes: their number, at most [`DEFAULT_MAX`].
pub(crate) fn default_channels(plan: &[Vec<Input>]) -> usize {
    plan.iter()
        .map(Vec::len)
        .sum::<usize>()
        .clamp(1, DEFAULT_MAX)
}

/// Loads every lane of `plan`, at most `channels` at once; each input's outcomes, in its
/// lanes' order (an input not started after a stop has none).
pub(crate) async fn run(
    pipe: &Pipe,
    plan: Vec<Vec<Input>>,
    settings: &Settings,
    channels: usize,
    stop: &watch::Receiver<bool>,
    progress: &Arc<Progress>,
) -> Vec<Vec<FileOutcome>> {
    let channels = channels.max(1);
    let settings = Arc::new(settings.clone());
    let files = plan.len();
    let mut left: Vec<usize> = plan.iter().map(Vec::len).collect();
    let mut outcomes: Vec<Vec<Option<FileOutcome>>> = plan
        .iter()
        .map(|l| l.iter().map(|_| None).collect())
        .collect();
    let jobs: Vec<(usize, usize, Input)> = plan
        .into_iter()
        .enumerate()
        .flat_map(|(f, lanes)| lanes.into_iter().enumerate().map(move |(l, i)| (f, l, i)))
        .collect();
    let mut jobs = jobs.into_iter().peekable();
    let mut running = tokio::task::JoinSet::new();
    let parquet_slots = (settings.memory_budget / 2 / PARQUET_LANE_BYTES).max(1);
    let mut parquet_running = 0;
    loop {
        while running.len() < channels && !*stop.borrow() {
            let parquet = matches!(jobs.peek(), Some((_, _, i)) if i.format == Format::Parquet);
            if parquet && parquet_running >= parquet_slots {
                break;
            }
            let Some((f, l, input)) = jobs.next() else {
                break;
            };
            parquet_running += usize::from(parquet);
            if l == 0 {
                progress.file(f + 1, files, &shown(&input.path).to_string());
            }
            let (pipe, settings, stop, progress) = (
                pipe.clone(),
                Arc::clone(&settings),
                stop.clone(),
                Arc::clone(progress),
            );
            running.spawn(async move {
                let progress = crate::progress::FileProgress::new(progress, f + 1);
                let out = crate::load::load(&pipe, &input, &settings, stop, &progress).await;
                (f, l, out, parquet)
            });
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let Ok((f, l, out, parquet)) = done else {
            continue;
        };
        parquet_running -= usize::from(parquet);
        outcomes[f][l] = Some(out);
        left[f] -= 1;
        if left[f] == 0 {
            progress.file_done(f + 1);
        }
    }
    outcomes
        .into_iter()
        .map(|lanes| lanes.into_iter().flatten().collect())
        .collect()
}

/// The summary's object of an input loaded on `lanes` (with their outcomes `outs`): one
/// lane's as [`FileOutcome::json`] has it, several summed, with `ranges` and `channels`.
pub(crate) fn json(lanes: &[Input], outs: &[FileOutcome]) -> Value {
    if let ([input], [out]) = (lanes, outs) {
        return out.json(input);
    }
    let mut first = outs
        .first()
        .zip(lanes.first())
        .map_or_else(|| json!({}), |(o, i)| o.json(i));
    let sum = |f: fn(&FileOutcome) -> u64| outs.iter().map(f).sum::<u64>();
    let error = if outs.len() < lanes.len() {
        Some("interrupted before every range started: run again to resume".to_owned())
    } else {
        outs.iter().find_map(|o| o.error.clone())
    };
    let fields = json!({
        "rows": sum(|o| o.rows),
        "bytes": sum(|o| o.bytes),
        "bad_records": sum(|o| o.bad_records),
        "row_errors": sum(|o| o.row_errors),
        "start_position": outs.iter().map(|o| o.report.start_position).min(),
        "end_position": outs.iter().map(|o| o.report.end_position).max(),
        "replaced": outs.iter().any(|o| o.report.replaced),
        "ok": error.is_none() && outs.iter().all(FileOutcome::ok),
        "error": error,
        "ranges": lanes.iter().map(|l| l.spans.len()).sum::<usize>(),
        "channels": lanes.iter().map(|l| l.channel.clone()).collect::<Vec<_>>(),
    });
    if let (Some(obj), Value::Object(more)) = (first.as_object_mut(), fields) {
        obj.extend(more);
    }
    first
}

/// Whether an input's lanes all loaded fully.
pub(crate) fn ok(lanes: &[Input], outs: &[FileOutcome]) -> bool {
    outs.len() == lanes.len() && outs.iter().all(FileOutcome::ok)
}
