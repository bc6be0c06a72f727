//! Parquet files: record batches from a row on, through parquet's Arrow reader, one row group
//! at a time, within the client's memory budget.
//!
//! Before parquet parses anything, `parquet_guard::check_footer` refuses a schema nested or
//! wide past what the reader can take; before each row group's reader is built,
//! `parquet_guard::plan` reads its page headers and dictionaries: a row group that cannot be
//! decoded within the budget is a bad record (a line of `<input>.rejected.ndjson` naming the
//! file, the row group, its rows and the limit; `--on-error abort` stops there), and the row
//! groups after it still load. A row whose list values alone are past the row cap
//! (`parquet_lists.rs`) is a bad record of its own (a line naming the row and the cap): the
//! rows before and after it are read by readers of their own. Batches are sized by what their rows decode to, not by the
//! file's encoded size (a dictionary value repeated a million times is a few bytes encoded).

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use tokio::sync::mpsc::Sender;

use crate::chunk::{Batch, Msg};
use crate::cli::OnError;
use crate::dead_letter::{BadRecord, DeadLetter};
use crate::parquet_guard::{self, Limits};
use crate::text::TextReport;
use crate::token::{ObjectTag, ParquetIdentity};

/// What a reader's batches may hold on their way: the loader's queue (4) and the one being
/// appended, each about [`CHUNK_BYTES`](crate::chunk::CHUNK_BYTES) decoded.
const IN_FLIGHT: u64 = 5 * crate::chunk::CHUNK_BYTES as u64;

/// Where the rows go and what bounds their decoding.
pub(crate) struct Sink<'a> {
    /// The loader.
    pub tx: &'a Sender<Msg>,
    /// Set when the loader stops.
    pub stop: &'a AtomicBool,
    /// `--on-error`.
    pub on_error: OnError,
    /// The client's memory budget, bytes.
    pub memory_budget: usize,
    /// What the decoded pages of every lane's readers share.
    pub decoding: &'a crate::decode_budget::DecodeBudget,
}

/// Reads `path` (its rows `span`, when given: a range, `ranges.rs`, with the ranged tokens)
/// after the `committed` rows (when the token names this file, or `object`: the object whose
/// spool file `path` is, loaded as one range), sending batches. Positions in the report are
/// rows.
///
/// # Errors
/// When the file cannot be read as Parquet, its schema is past the guard's limits, a row
/// group cannot be read within the budget under `--on-error abort`, or the loader stopped
/// listening.
pub(crate) fn read(
    (path, span): (&Path, Option<(u64, u64)>),
    committed: Option<&str>,
    object: Option<&ObjectTag>,
    (sink, mut dead): (&Sink<'_>, DeadLetter),
    report: &mut TextReport,
) -> Result<()> {
    let mut file = crate::files::open_input(path)?;
    let identity = match object {
        Some(tag) => ParquetIdentity::of_object(tag),
        None => ParquetIdentity::read(&mut file)?,
    }
    .ranged(span.is_some());
    let size = file.metadata()?.len();
    parquet_guard::check_footer(&file, path)?;
    let meta =
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::default()).with_context(|| {
            format!(
                "{} is not a Parquet file (or a damaged one): pass --format for another format",
                crate::names::shown(path)
            )
        })?;
    let num_rows = u64::try_from(meta.metadata().file_metadata().num_rows()).unwrap_or(0);
    let resume = committed.and_then(|c| identity.resume(c, num_rows));
    report.replaced = committed.is_some() && resume.is_none();
    let (start, stop) = span.unwrap_or((0, num_rows));
    if report.replaced && start == 0 {
        tracing::warn!(
            file = %crate::names::shown(path),
            "the channel's committed offset token names another file: loading it from its start"
        );
    }
    // A lane's token is past its ranges before this one, inside this one, or before it.
    let skip = resume.unwrap_or(0).clamp(start, stop);
    report.start_position = skip;
    report.end_position = skip;
    let limits = Limits::of_budget(sink.memory_budget);
    let mut first = 0u64;
    for index in 0..meta.metadata().num_row_groups() {
        let group = meta.metadata().row_group(index);
        let rows = u64::try_from(group.num_rows()).unwrap_or(0);
        let group_end = first.saturating_add(rows);
        let end = group_end.min(stop);
        let from = skip.max(first);
        if from < end {
            if sink.stop.load(Ordering::Relaxed) {
                break;
            }
            // The file's share of `n` rows, for progress (the footer's counts are the
            // writer's word: no overflow).
            let share = |n: u64| {
                let bytes = u128::from(size) * u128::from(n) / u128::from(num_rows.max(1));
                u64::try_from(bytes).unwrap_or(size)
            };
            let group = GroupRead {
                path,
                file: &file,
                meta: &meta,
                index,
                first,
                from,
                to: end,
                identity: &identity,
            };
            if let Err(e) = group.send(&limits, sink, (&mut *report, &mut dead), &share) {
                let at = report.end_position.max(from);
                if sink.stop.load(Ordering::Relaxed) || sink.tx.is_closed() {
                    return Err(e);
                }
                // A row group split into ranges is refused once, by the range of its first row.
                if start > first {
                    report.end_position = end;
                    sink.tx
                        .blocking_send(Msg::Skipped {
                            bytes: share(end.saturating_sub(at)),
                        })
                        .map_err(|_| anyhow!("the loader stopped"))?;
                    first = group_end;
                    continue;
                }
                let offset = group_offset(&meta, index);
                refuse(
                    &mut dead,
                    sink.on_error,
                    (index, at, group_end, offset),
                    &e,
                    report,
                )?;
                report.end_position = end;
                sink.tx
                    .blocking_send(Msg::Skipped {
                        bytes: share(end.saturating_sub(at)),
                    })
                    .map_err(|_| anyhow!("the loader stopped"))?;
            }
        }
        if group_end >= stop {
            break;
        }
        first = group_end;
    }
    Ok(())
}

/// Rows `at..end` of row group `index` cannot be read: a dead letter (or, under `--on-error
/// abort`, the error).
fn refuse(
    dead: &mut DeadLetter,
    on_error: OnError,
    (index, at, end, (offset, bytes)): (usize, u64, u64, (u64, u64)),
    e: &anyhow::Error,
    report: &mut TextReport,
) -> Result<()> {
    let error = format!(
        "{}: row group {index} (rows {} to {end}) not loaded: {e:#}",
        dead_name(dead),
        at + 1
    );
    if on_error == OnError::Abort {
        bail!("{error} (--on-error abort)");
    }
    tracing::warn!("{error}");
    dead.write(&BadRecord {
        line: at + 1,
        offset,
        error,
        text: b"",
        whole: None,
        bytes,
    })?;
    // The rows after it are appended with tokens past it: the dead letter is on disk first.
    dead.flush()?;
    report.bad_records += 1;
    Ok(())
}

/// Where row group `index` starts in the file (its first column chunk) and its bytes there.
fn group_offset(meta: &ArrowReaderMetadata, index: usize) -> (u64, u64) {
    let group = meta.metadata().row_group(index);
    let start = group.columns().first().map_or(0, |c| c.byte_range().0);
    let bytes = group
        .columns()
        .iter()
        .map(|c| c.byte_range().1)
        .fold(0u64, u64::saturating_add);
    (start, bytes)
}

/// The input a dead-letter file belongs to, for messages.
fn dead_name(dead: &DeadLetter) -> String {
    let p = crate::names::shown(dead.path()).to_string();
    p.strip_suffix(".rejected.ndjson").unwrap_or(&p).to_owned()
}

/// One row group's read.
struct GroupRead<'a> {
    path: &'a Path,
    file: &'a File,
    meta: &'a ArrowReaderMetadata,
    index: usize,
    /// Rows of the file before the group.
    first: u64,
    /// The first row to send.
    from: u64,
    /// The row after the last to send.
    to: u64,
    identity: &'a ParquetIdentity,
}

impl GroupRead<'_> {
    /// Plans the row group within `limits`, then sends its batches from `from` on, each row
    /// too large for the row cap (`parquet_lists.rs`) a dead letter in `dead` between them.
    fn send(
        &self,
        limits: &Limits,
        sink: &Sink<'_>,
        (report, dead): (&mut TextReport, &mut DeadLetter),
        share: &dyn Fn(u64) -> u64,
    ) -> Result<()> {
        let plan = parquet_guard::plan(self.file, self.meta.metadata(), self.index, limits)?;
        tracing::debug!(
            row_group = self.index,
            rows_per_batch = plan.batch_rows,
            row_bytes = plan.row_bytes,
            heavy_rows = plan.heavy.len(),
            "row group planned"
        );
        let hold = plan.held.saturating_add(IN_FLIGHT);
        let Some(_held) = sink
            .decoding
            .hold(hold, || sink.stop.load(Ordering::Relaxed))
        else {
            return Ok(());
        };
        let mut at = self.from;
        for heavy in &plan.heavy {
            let row = self.first.saturating_add(heavy.row);
            if row < at || row >= self.to {
                continue;
            }
            self.send_rows((at, row), plan.batch_rows, sink, report, share)?;
            if sink.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let error = format!(
                "{}: row {} (row group {}) not loaded: its list column {} holds {} values, \
                 {} bytes decoded, past its share of the row cap of {} bytes (an eighth of \
                 the client's memory budget): raise memory_budget_bytes, or write shorter lists",
                dead_name(dead),
                row + 1,
                self.index,
                heavy.column,
                heavy.values,
                heavy.bytes,
                plan.row_cap
            );
            if sink.on_error == OnError::Abort {
                bail!("{error} (--on-error abort)");
            }
            tracing::warn!("{error}");
            dead.write(&BadRecord {
                line: row + 1,
                offset: group_offset(self.meta, self.index).0,
                error,
                text: b"",
                whole: None,
                bytes: share(1),
            })?;
            // The rows after it are appended with tokens past it: the dead letter is on disk
            // first.
            dead.flush()?;
            report.bad_records += 1;
            report.end_position = row + 1;
            sink.tx
                .blocking_send(Msg::Skipped { bytes: share(1) })
                .map_err(|_| anyhow!("the loader stopped"))?;
            at = row + 1;
        }
        self.send_rows((at, self.to), plan.batch_rows, sink, report, share)
    }

    /// Sends rows `from..to` of the file (within this row group) in batches of `batch_rows`.
    fn send_rows(
        &self,
        (from, to): (u64, u64),
        batch_rows: usize,
        sink: &Sink<'_>,
        report: &mut TextReport,
        share: &dyn Fn(u64) -> u64,
    ) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.file.try_clone()?,
            self.meta.clone(),
        )
        .with_row_groups(vec![self.index])
        .with_batch_size(batch_rows)
        .with_offset(usize::try_from(from - self.first)?)
        .with_limit(usize::try_from(to - from)?)
        .build()?;
        let mut before = from;
        for batch in reader {
            if sink.stop.load(Ordering::Relaxed) {
                break;
            }
            let batch =
                batch.with_context(|| format!("cannot read {}", crate::names::shown(self.path)))?;
            let rows = batch.num_rows() as u64;
            sink.tx
                .blocking_send(Msg::Batch(Batch {
                    batch,
                    before,
                    identity: self.identity.clone(),
                    bytes: share(rows),
                }))
                .map_err(|_| anyhow!("the loader stopped"))?;
            before += rows;
            report.end_position = before;
        }
        Ok(())
    }
}
