//! An object's bytes for one run: the ranges the run needs, fetched by ranged GETs into a
//! sparse local file of the object's size, at their own offsets, so that the file readers
//! (`text.rs`, `parquet_rows.rs`) read it as any file, with the same positions, guards and
//! dead letters. Memory stays bounded (each GET's body is streamed to disk); the disk holds
//! at most the object's remaining bytes, and the file is removed after the load.
//!
//! What is fetched: NDJSON and CSV from the committed position to the end (CSV also its first
//! [`CSV_HEAD_BYTES`], which hold the header when resuming); Parquet its footer (after the
//! guard's size check on the length its last 8 bytes claim) and then the column chunks of the
//! row groups not committed yet, as the footer places them (a range past the object's end is
//! refused). Each GET asks for at most [`PIECE_BYTES`], conditional on the listed ETag and
//! version; a body longer than asked (an endless one) is cut and refused, a shorter one is
//! refused; a wrong Content-Length cannot make either pass.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use futures::TryStreamExt as _;
use object_store::{GetOptions, GetRange};
use parquet::file::metadata::ParquetMetaDataReader;
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};

use super::Remote;
use crate::cli::Format;
use crate::parquet_guard::{self, MAX_FOOTER_BYTES};
use crate::token::{short_hash, ParquetIdentity};

/// The most bytes one GET asks for (each must finish within the client's request timeout).
pub(crate) const PIECE_BYTES: u64 = 8 << 20;

/// The start of a CSV object fetched when resuming past it: its skipped records and header.
pub(crate) const CSV_HEAD_BYTES: u64 = 8 << 20;

/// The spool file of `remote` in `dir`: a readable, unique name (a prefix of the object's name
/// with anything but letters, digits, `.`, `-` and `_` replaced, and a hash of the whole).
pub(crate) fn path_in(dir: &Path, remote: &Remote) -> PathBuf {
    let tail: String = remote
        .name
        .rsplit('/')
        .next()
        .unwrap_or("")
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{}-{tail}", short_hash(remote.name.as_bytes())))
}

/// Fetches what loading `remote` (as `format`, resuming after `committed`) reads, into
/// `path`; returns it.
///
/// # Errors
/// When a GET fails or answers other bytes than asked, the object changed since it was
/// listed, its Parquet footer is past the guard's limits or places data outside it, or the
/// file cannot be written.
pub(crate) async fn fetch(
    remote: &Remote,
    format: Format,
    committed: Option<&str>,
    path: &Path,
) -> Result<()> {
    let size = remote.meta.size;
    let mut file = tokio::fs::File::create(path)
        .await
        .with_context(|| format!("cannot create the spool file {}", path.display()))?;
    file.set_len(size).await?;
    let mut out = Spool {
        remote,
        file: &mut file,
    };
    match format {
        Format::Ndjson | Format::Csv => {
            let from = committed
                .and_then(|c| remote.tag.resume(c, size))
                .unwrap_or(0);
            if format == Format::Csv && from > 0 {
                out.range(0, from.min(CSV_HEAD_BYTES)).await?;
            }
            out.range(from, size).await?;
        }
        Format::Parquet => out.parquet(committed, path).await?,
    }
    file.flush().await?;
    Ok(())
}

/// Writes fetched ranges at their offsets.
struct Spool<'a> {
    remote: &'a Remote,
    file: &'a mut tokio::fs::File,
}

impl Spool<'_> {
    /// The footer, then the row groups after the committed rows.
    async fn parquet(&mut self, committed: Option<&str>, path: &Path) -> Result<()> {
        let size = self.remote.meta.size;
        if size < 12 {
            self.range(0, size).await?;
            return Ok(());
        }
        let tail = self.range(size - 8, size).await?;
        let claimed = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
        if claimed > MAX_FOOTER_BYTES || claimed + 8 > size {
            // The guard and the parquet reader name what is wrong, from the bytes themselves.
            self.range(size.saturating_sub(MAX_FOOTER_BYTES + 8), size)
                .await?;
            return Ok(());
        }
        self.range(size - 8 - claimed, size - 8).await?;
        self.file.flush().await?;
        let std = std::fs::File::open(path)?;
        parquet_guard::check_footer(&std, Path::new(&self.remote.name))?;
        let meta = ParquetMetaDataReader::new()
            .parse_and_finish(&std)
            .with_context(|| format!("{} is not a Parquet file", self.remote.name))?;
        let num_rows = u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0);
        let skip = committed
            .and_then(|c| ParquetIdentity::of_object(&self.remote.tag).resume(c, num_rows))
            .unwrap_or(0);
        let mut first = 0u64;
        for group in meta.row_groups() {
            let end = first.saturating_add(u64::try_from(group.num_rows()).unwrap_or(0));
            if end > skip {
                let (mut lo, mut hi) = (u64::MAX, 0u64);
                for column in group.columns() {
                    let (start, len) = column.byte_range();
                    lo = lo.min(start);
                    hi = hi.max(start.saturating_add(len));
                }
                if hi > size {
                    bail!(
                        "{}: the Parquet footer places a row group at bytes {lo}..{hi}, past \
                         the object's {size} bytes: the object is damaged",
                        self.remote.name
                    );
                }
                if lo < hi {
                    self.range(lo, hi).await?;
                }
            }
            first = end;
        }
        Ok(())
    }

    /// Fetches bytes `from..to` in GETs of at most [`PIECE_BYTES`]; returns the last piece.
    async fn range(&mut self, from: u64, to: u64) -> Result<Vec<u8>> {
        let mut at = from;
        let mut last = Vec::new();
        while at < to {
            let end = to.min(at + PIECE_BYTES);
            last = self.piece(at, end, end == to && end - at <= 8).await?;
            at = end;
        }
        Ok(last)
    }

    /// One GET of `from..to`, written at `from`; its bytes returned when `keep`.
    async fn piece(&mut self, from: u64, to: u64, keep: bool) -> Result<Vec<u8>> {
        let meta = &self.remote.meta;
        let options = GetOptions {
            range: Some(GetRange::Bounded(from..to)),
            if_match: meta.e_tag.clone(),
            version: meta.version.clone(),
            ..GetOptions::default()
        };
        let name = &self.remote.name;
        let got = self
            .remote
            .store
            .get_opts(&meta.location, options)
            .await
            .with_context(|| {
                format!(
                    "cannot read bytes {from}..{to} of {name} (when it was overwritten since it \
                     was listed, run again: it is loaded anew)"
                )
            })?;
        self.file.seek(std::io::SeekFrom::Start(from)).await?;
        let want = to - from;
        let (mut n, mut kept) = (0u64, Vec::new());
        let mut body = got.into_stream();
        while let Some(bytes) = body
            .try_next()
            .await
            .with_context(|| format!("cannot read bytes {from}..{to} of {name}"))?
        {
            n += bytes.len() as u64;
            if n > want {
                bail!(
                    "{name}: the store sent more than the {want} bytes asked for ({from}..{to}): \
                     refused (a misbehaving server or proxy)"
                );
            }
            self.file.write_all(&bytes).await?;
            if keep {
                kept.extend_from_slice(&bytes);
            }
        }
        if n != want {
            bail!(
                "{name}: the store sent {n} of the {want} bytes asked for ({from}..{to}): the \
                 object is shorter than listed (overwritten?); run again"
            );
        }
        Ok(kept)
    }
}

/// An object's spool file while it loads; removed when dropped (its dead letters stay).
#[derive(Debug)]
pub(crate) struct Spooled {
    path: PathBuf,
}

impl Spooled {
    /// The spool file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Fetches what loading `remote` (an input of `format`) after `committed` reads into a spool
/// file in `dir`; `None` for a local file (no `remote`).
///
/// # Errors
/// As [`fetch`], and when the spool directory cannot be created.
pub(crate) async fn prepare(
    remote: Option<&Remote>,
    format: Format,
    dir: &Path,
    committed: Option<&str>,
) -> Result<Option<Spooled>> {
    let Some(remote) = remote else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create the spool directory {}: pass --spool-dir DIR",
            dir.display()
        )
    })?;
    let spooled = Spooled {
        path: path_in(dir, remote),
    };
    fetch(remote, format, committed, &spooled.path).await?;
    Ok(Some(spooled))
}
