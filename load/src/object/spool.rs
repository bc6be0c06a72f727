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
//! refused). A lane of a ranged object (`object/ranges.rs`) fetches one range at a time, just
//! before reading it, into its own spool file (`_<channel>` in the name): only that range's
//! bytes after the lane's committed position (Parquet: the footer and the row groups the range
//! overlaps), so its first row goes in after one range (64 MiB), not the whole object, and the
//! disk holds about a range a lane (16 × 64 MiB at most with the default `--channels`). Each GET asks for at most [`PIECE_BYTES`], conditional on the listed ETag and
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

/// The first GET looking for a line break at a cut of an NDJSON object (`line_end_after`).
pub(crate) const PROBE_BYTES: u64 = 64 << 10;

/// The start of a CSV object fetched when resuming past it: its skipped records and header.
pub(crate) const CSV_HEAD_BYTES: u64 = 8 << 20;

/// The spool file of `remote` in `dir`: a readable, unique name (a prefix of the object's name
/// with anything but letters, digits, `.`, `-` and `_` replaced, and a hash of the whole).
pub(crate) fn path_in(dir: &Path, remote: &Remote, lane: &str) -> PathBuf {
    let tail = crate::names::file_name_tail(&remote.name);
    dir.join(format!(
        "{}{lane}-{tail}",
        short_hash(remote.name.as_bytes())
    ))
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
    (committed, span): (Option<&str>, Option<(u64, u64)>),
    path: &Path,
) -> Result<()> {
    let size = remote.meta.size;
    let mut file = create(path, size).await?;
    let mut out = Spool {
        remote,
        file: Some(&mut file),
    };
    let ranged = span.is_some();
    match format {
        Format::Ndjson | Format::Csv => {
            // A lane's token is past this range, inside it or before it (as `text.rs` reads).
            let (start, end) = span.unwrap_or((0, size));
            let from = committed
                .and_then(|c| remote.tag.resume(c, size, ranged))
                .unwrap_or(0)
                .clamp(start, end);
            if format == Format::Csv && from > 0 {
                out.range(0, from.min(CSV_HEAD_BYTES)).await?;
            }
            out.range(from, end).await?;
        }
        Format::Parquet => out.parquet(committed, span, path).await?,
    }
    file.flush().await?;
    Ok(())
}

/// A sparse spool file of `size` bytes at `path`.
async fn create(path: &Path, size: u64) -> Result<tokio::fs::File> {
    let file = tokio::fs::File::from_std(super::spool_dir::create_file(path)?);
    file.set_len(size).await.with_context(|| {
        format!(
            "cannot size the spool file {} to the object's {size} bytes (a full disk?)",
            path.display()
        )
    })?;
    Ok(file)
}

/// Fetches only a Parquet object's footer (after the guard's checks) into a sparse spool file
/// at `path`, for its ranges (`object/ranges.rs`), read there as a file's footer is.
///
/// # Errors
/// As [`fetch`].
pub(crate) async fn footer(remote: &Remote, path: &Path) -> Result<()> {
    let mut file = create(path, remote.meta.size).await?;
    Spool {
        remote,
        file: Some(&mut file),
    }
    .footer(path)
    .await?;
    file.flush().await?;
    Ok(())
}

/// The position after the first line break at or after `from` in `remote`, if one comes
/// before its end: where an NDJSON object's range ends, found as `ranges.rs` finds a file's
/// (GETs of [`PROBE_BYTES`], doubling up to [`PIECE_BYTES`] while no line break comes; only
/// the last one is held).
///
/// # Errors
/// As [`fetch`].
pub(crate) async fn line_end_after(remote: &Remote, from: u64) -> Result<Option<u64>> {
    let size = remote.meta.size;
    let mut spool = Spool { remote, file: None };
    let (mut at, mut window) = (from, PROBE_BYTES);
    while at < size {
        let to = size.min(at + window);
        let bytes = spool.piece(at, to, true).await?;
        if let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            return Ok(Some(at + i as u64 + 1));
        }
        at = to;
        window = (window * 2).min(PIECE_BYTES);
    }
    Ok(None)
}

/// Writes fetched ranges at their offsets (or only returns them: no file).
struct Spool<'a> {
    remote: &'a Remote,
    file: Option<&'a mut tokio::fs::File>,
}

impl Spool<'_> {
    /// The footer; `false` when it is not there to parse (a tiny object, or a length past
    /// the guard's: the bytes are fetched for the reader to name what is wrong).
    async fn footer(&mut self, path: &Path) -> Result<bool> {
        let size = self.remote.meta.size;
        if size < 12 {
            self.range(0, size).await?;
            return Ok(false);
        }
        let tail = self.range(size - 8, size).await?;
        let claimed = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
        if claimed > MAX_FOOTER_BYTES || claimed + 8 > size {
            // The guard and the parquet reader name what is wrong, from the bytes themselves.
            self.range(size.saturating_sub(MAX_FOOTER_BYTES + 8), size)
                .await?;
            return Ok(false);
        }
        self.range(size - 8 - claimed, size - 8).await?;
        if let Some(file) = self.file.as_mut() {
            file.flush().await?;
        }
        let std = std::fs::File::open(path)?;
        parquet_guard::check_footer(&std, Path::new(&self.remote.name))?;
        Ok(true)
    }

    /// The footer, then the row groups (of the rows `span`, when given) after the committed
    /// rows.
    async fn parquet(
        &mut self,
        committed: Option<&str>,
        span: Option<(u64, u64)>,
        path: &Path,
    ) -> Result<()> {
        let size = self.remote.meta.size;
        if !self.footer(path).await? {
            return Ok(());
        }
        let std = std::fs::File::open(path)?;
        let meta = ParquetMetaDataReader::new()
            .parse_and_finish(&std)
            .with_context(|| format!("{} is not a Parquet file", self.remote.name))?;
        let num_rows = u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0);
        let (start, stop) = span.unwrap_or((0, num_rows));
        let identity = ParquetIdentity::of_object(&self.remote.tag).ranged(span.is_some());
        let skip = committed
            .and_then(|c| identity.resume(c, num_rows))
            .unwrap_or(0)
            .clamp(start, stop);
        let mut first = 0u64;
        for group in meta.row_groups() {
            let end = first.saturating_add(u64::try_from(group.num_rows()).unwrap_or(0));
            if end > skip && first < stop {
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
            .map_err(|e| match e {
                object_store::Error::Precondition { .. }
                | object_store::Error::NotModified { .. } => {
                    anyhow::anyhow!(
                        "cannot read bytes {from}..{to} of {name}: it was overwritten since it \
                         was listed; run again: it is loaded anew"
                    )
                }
                e => anyhow::anyhow!(super::store_error::explain(
                    &format!("cannot read bytes {from}..{to} of {name}"),
                    &e
                )),
            })?;
        if let Some(file) = self.file.as_mut() {
            file.seek(std::io::SeekFrom::Start(from)).await?;
        }
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
            if let Some(file) = self.file.as_mut() {
                file.write_all(&bytes).await?;
            }
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
    /// The spool file at `path`, removed when this is dropped.
    pub(crate) fn at(path: PathBuf) -> Self {
        Self { path }
    }

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
/// file in `dir`: the whole object from the committed position on, or (`span`: a lane's range,
/// `lane` its suffix in the file's name) only that range, so a lane of a large object starts
/// on its first range's bytes and the disk holds about a range a lane. `None` for a local
/// file (no `remote`).
///
/// # Errors
/// As [`fetch`], and when the spool directory cannot be created.
pub(crate) async fn prepare(
    (remote, format): (Option<&Remote>, Format),
    dir: &SpoolDir,
    committed: Option<&str>,
    (span, lane): (Option<(u64, u64)>, &str),
) -> Result<Option<Spooled>> {
    let Some(remote) = remote else {
        return Ok(None);
    };
    let spooled = Spooled {
        path: spool_path(dir, remote, lane)?,
    };
    fetch(remote, format, (committed, span), &spooled.path).await?;
    Ok(Some(spooled))
}

/// The spool file of `remote` (its `lane`) in `dir`, the directory created if missing and
/// checked to be this user's alone (`spool_dir.rs`).
///
/// # Errors
/// When the spool directory cannot be created or others can write into it.
pub(crate) fn spool_path(dir: &SpoolDir, remote: &Remote, lane: &str) -> Result<PathBuf> {
    super::spool_dir::ensure(&dir.path, dir.chosen)?;
    Ok(path_in(&dir.path, remote, lane))
}

/// The spool directory of a run: `--spool-dir`, else the loader's own under the temporary
/// directory (`spool_dir::default_dir`).
#[derive(Debug, Clone)]
pub(crate) struct SpoolDir {
    pub(crate) path: PathBuf,
    /// Named by the user (a link to a private directory is taken).
    pub(crate) chosen: bool,
}

impl SpoolDir {
    /// `--spool-dir`, else the default.
    pub(crate) fn new(chosen: Option<&Path>) -> Self {
        match chosen {
            Some(p) => Self {
                path: p.to_path_buf(),
                chosen: true,
            },
            None => Self {
                path: super::spool_dir::default_dir(),
                chosen: false,
            },
        }
    }
}
