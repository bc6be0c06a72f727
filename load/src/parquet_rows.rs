//! Parquet files: record batches from a row on, through parquet's Arrow reader.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{anyhow, Context, Result};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tokio::sync::mpsc::Sender;

use crate::chunk::{Batch, Msg};
use crate::text::TextReport;
use crate::token::ParquetIdentity;

/// Rows per batch: about 1 MiB of NDJSON by the file's own sizes (at least 1, at most 65,536).
fn batch_rows(uncompressed: i64, rows: i64, columns: usize) -> usize {
    if rows <= 0 {
        return 1024;
    }
    // JSON text is larger than Parquet's plain encoding: names, quotes, digits.
    let per_row = (uncompressed / rows).max(1) as usize * 3 + columns * 12;
    (crate::chunk::CHUNK_BYTES / per_row).clamp(1, 65_536)
}

/// Reads `path` after the `committed` rows (when the token names this file), sending batches.
/// Positions in the report are rows.
///
/// # Errors
/// When the file cannot be read as Parquet, or the loader stopped listening.
pub fn read(
    path: &Path,
    committed: Option<&str>,
    tx: &Sender<Msg>,
    stop: &AtomicBool,
    report: &mut TextReport,
) -> Result<()> {
    let mut file = crate::files::open_input(path)?;
    let identity = ParquetIdentity::read(&mut file)?;
    let size = file.metadata()?.len();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).with_context(|| {
        format!(
            "{} is not a Parquet file (or a damaged one): pass --format for another format",
            crate::names::shown(path)
        )
    })?;
    let meta = builder.metadata().file_metadata();
    let num_rows = u64::try_from(meta.num_rows()).unwrap_or(0);
    let uncompressed: i64 = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.total_byte_size())
        .sum();
    let columns = builder.schema().fields().len();
    let resume = committed.and_then(|c| identity.resume(c, num_rows));
    report.replaced = committed.is_some() && resume.is_none();
    if report.replaced {
        tracing::warn!(
            file = %crate::names::shown(path),
            "the channel's committed offset token names another file: loading it from its start"
        );
    }
    let skip = resume.unwrap_or(0);
    report.start_position = skip;
    report.end_position = skip;
    let rows_per_batch = batch_rows(uncompressed, meta.num_rows(), columns);
    let reader = builder
        .with_batch_size(rows_per_batch)
        .with_offset(usize::try_from(skip)?)
        .build()?;
    let mut before = skip;
    for batch in reader {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let batch = batch.with_context(|| format!("cannot read {}", crate::names::shown(path)))?;
        let rows = batch.num_rows() as u64;
        let bytes = size * rows / num_rows.max(1);
        tx.blocking_send(Msg::Batch(Batch {
            batch,
            before,
            identity: identity.clone(),
            bytes,
        }))
        .map_err(|_| anyhow!("the loader stopped"))?;
        before += rows;
        report.end_position = before;
    }
    Ok(())
}
