//! An object's ranges (issue 83): the same cuts `ranges.rs` makes in a local file of the same
//! bytes, found without fetching the object. NDJSON: at each grid point a ranged GET of
//! 64 KiB (doubling while no line break comes) finds the line break the file's cut would
//! follow. Parquet: the footer alone is fetched into a spool file and its row groups grouped
//! as a file's are. CSV objects are not ranged (`schedule.rs`): a safe cut needs a pass over
//! every byte before it.

use std::sync::Arc;

use anyhow::{Context, Result};

use super::{spool, Remote};
use crate::cli::Format;
use crate::ranges::{self, Span};

/// The ranges of `remote` read as `format` (NDJSON or Parquet) with the grid `step`; an
/// object that cannot be read or parsed gets none (it is loaded whole and its reader says
/// why).
///
/// # Errors
/// When the task finding them panics.
pub(crate) async fn spans(
    remote: &Arc<Remote>,
    format: Format,
    dir: &spool::SpoolDir,
    step: u64,
) -> Result<Vec<Span>> {
    let size = remote.meta.size;
    if size <= step && format != Format::Parquet {
        return Ok(Vec::new());
    }
    let found = match format {
        Format::Parquet => parquet(remote, dir, step).await,
        _ => {
            let (remote, runtime) = (Arc::clone(remote), tokio::runtime::Handle::current());
            tokio::task::spawn_blocking(move || {
                ranges::ndjson_by(size, step, |from| {
                    runtime.block_on(spool::line_end_after(&remote, from))
                })
            })
            .await
            .context("the range finder panicked")?
        }
    };
    Ok(found.unwrap_or_else(|e| {
        tracing::debug!(object = %remote.name, "no ranges: {e:#}");
        Vec::new()
    }))
}

/// A Parquet object's ranges, from its footer fetched into a spool file (removed after).
async fn parquet(remote: &Arc<Remote>, dir: &spool::SpoolDir, step: u64) -> Result<Vec<Span>> {
    let path = spool::spool_path(dir, remote, "_footer")?;
    // Removed on every path, a cancelled one too.
    let _spooled = spool::Spooled::at(path.clone());
    let fetched = spool::footer(remote, &path).await;
    let found = match fetched {
        Ok(()) => {
            let at = path.clone();
            tokio::task::spawn_blocking(move || ranges::of_path(&at, Format::Parquet, None, step))
                .await
                .context("the range finder panicked")
                .and_then(|r| r)
        }
        Err(e) => Err(e),
    };
    found
}
