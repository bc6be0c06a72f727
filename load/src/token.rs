//! Offset tokens: a file's identity and a position, as one string.
//!
//! NDJSON and CSV: `v1:<K>:<h>:<position>`, where `position` is the byte offset just after
//! the last row the token covers, `K = min(position, 4096)` and `h` the first 16 hex digits
//! of the SHA-256 of the file's first `K` bytes. A growing file keeps its identity (its first
//! bytes do not change); a rewritten one is told from the old one by its first bytes.
//!
//! Parquet: `pq1:<size>:<h>:<rows>`, `h` over the file's last `min(size, 4096)` bytes (the
//! footer: the schema, row counts and column statistics; a Parquet file's first bytes are
//! `PAR1` and its first column's pages, the same in many rewrites), `rows` the rows before
//! the next one to load.
//!
//! Standard input: `stdin:<run>:<position>`, `run` the start time of the run in nanoseconds,
//! so one run's tokens never reach another's.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// The most bytes of a file its identity covers.
pub(crate) const IDENTITY_BYTES: u64 = 4096;

/// The first 16 hex digits of the SHA-256 of `bytes`.
pub(crate) fn short_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The default channel of an input: `LOAD_` and 16 hex digits of the SHA-256 of its
/// canonical path (upper case, as Snowflake shows names).
pub(crate) fn channel_name(canonical: &Path) -> String {
    let hash = short_hash(canonical.as_os_str().as_encoded_bytes());
    format!("LOAD_{}", hash.to_uppercase())
}

/// The first bytes of a text file, up to [`IDENTITY_BYTES`], for its tokens.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextIdentity {
    prefix: Vec<u8>,
    /// The hash of all [`IDENTITY_BYTES`] bytes, once the file has them.
    full: Option<String>,
}

impl TextIdentity {
    /// The identity of `file`'s first bytes as they are now.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub(crate) fn read(file: &mut File) -> Result<Self> {
        let mut id = Self::default();
        id.refresh(file)?;
        Ok(id)
    }

    /// Reads the first bytes again when fewer than [`IDENTITY_BYTES`] were there (a growing
    /// file). The position of `file` is kept.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub(crate) fn refresh(&mut self, file: &mut File) -> Result<()> {
        if self.full.is_some() {
            return Ok(());
        }
        let at = file.stream_position()?;
        file.seek(SeekFrom::Start(0))?;
        self.prefix.clear();
        file.by_ref()
            .take(IDENTITY_BYTES)
            .read_to_end(&mut self.prefix)
            .context("cannot read the file's first bytes")?;
        file.seek(SeekFrom::Start(at))?;
        if self.prefix.len() as u64 == IDENTITY_BYTES {
            self.full = Some(short_hash(&self.prefix));
        }
        Ok(())
    }

    /// Builds an identity from bytes already held.
    #[cfg(test)]
    pub(crate) fn from_prefix(prefix: &[u8]) -> Self {
        let prefix = prefix[..prefix.len().min(IDENTITY_BYTES as usize)].to_vec();
        let full = (prefix.len() as u64 == IDENTITY_BYTES).then(|| short_hash(&prefix));
        Self { prefix, full }
    }

    /// The token of `position`, or `None` when the file's first `min(position, 4096)` bytes
    /// were not read (call [`refresh`](Self::refresh)).
    pub(crate) fn token(&self, position: u64) -> Option<String> {
        let k = position.min(IDENTITY_BYTES);
        let hash = match &self.full {
            Some(h) if k == IDENTITY_BYTES => h.clone(),
            _ => short_hash(self.prefix.get(..k as usize)?),
        };
        Some(format!("v1:{k}:{hash}:{position}"))
    }

    /// Where to resume from `committed` (a token this program wrote): its position when the
    /// file still starts with the bytes the token names and is at least that long. `None`
    /// when the token names other content (the file was replaced) or is not ours.
    pub(crate) fn resume(&self, committed: &str, size: u64) -> Option<u64> {
        let rest = committed.strip_prefix("v1:")?;
        let mut parts = rest.splitn(3, ':');
        let k: u64 = parts.next()?.parse().ok()?;
        let hash = parts.next()?;
        let position: u64 = parts.next()?.parse().ok()?;
        if k != position.min(IDENTITY_BYTES) || position > size {
            return None;
        }
        let prefix = self.prefix.get(..k as usize)?;
        (short_hash(prefix) == hash).then_some(position)
    }
}

/// A Parquet file's identity: its size and the hash of its footer.
#[derive(Debug, Clone)]
pub(crate) struct ParquetIdentity {
    size: u64,
    hash: String,
}

impl ParquetIdentity {
    /// The identity of `file` (its size and last bytes).
    ///
    /// # Errors
    /// When the file cannot be read.
    pub(crate) fn read(file: &mut File) -> Result<Self> {
        let size = file.metadata()?.len();
        let tail = size.min(IDENTITY_BYTES);
        file.seek(SeekFrom::Start(size - tail))?;
        let mut buf = Vec::with_capacity(tail as usize);
        file.by_ref().take(tail).read_to_end(&mut buf)?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Self {
            size,
            hash: short_hash(&buf),
        })
    }

    /// The token after `rows` rows.
    pub(crate) fn token(&self, rows: u64) -> String {
        format!("pq1:{}:{}:{rows}", self.size, self.hash)
    }

    /// The rows to skip when `committed` names this file, else `None`.
    pub(crate) fn resume(&self, committed: &str, num_rows: u64) -> Option<u64> {
        let prefix = format!("pq1:{}:{}:", self.size, self.hash);
        let rows: u64 = committed.strip_prefix(&prefix)?.parse().ok()?;
        (rows <= num_rows).then_some(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_token_names_the_first_bytes_and_the_position() {
        let id = TextIdentity::from_prefix(b"{\"a\":1}\n{\"a\":2}\n");
        let t = id.token(8).unwrap();
        assert_eq!(t, format!("v1:8:{}:8", short_hash(b"{\"a\":1}\n")));
        assert_eq!(id.resume(&t, 16), Some(8));
        assert_eq!(
            id.resume(&t, 7),
            None,
            "shorter than the position: replaced"
        );
        let other = TextIdentity::from_prefix(b"{\"b\":1}\n");
        assert_eq!(other.resume(&t, 16), None, "other first bytes: replaced");
        assert_eq!(id.resume("42", 16), None, "not ours");
        assert!(id.token(17).is_none(), "bytes not read yet");
    }

    #[test]
    fn a_long_file_hashes_its_first_4096_bytes_only() {
        let mut data = vec![b'x'; 5000];
        let id = TextIdentity::from_prefix(&data);
        let t = id.token(4999).unwrap();
        assert!(t.starts_with("v1:4096:") && t.ends_with(":4999"), "{t}");
        data[4500] = b'y';
        assert_eq!(
            TextIdentity::from_prefix(&data).resume(&t, 5000),
            Some(4999)
        );
        data[10] = b'y';
        assert_eq!(TextIdentity::from_prefix(&data).resume(&t, 5000), None);
    }

    #[test]
    fn channel_names_are_stable_and_valid() {
        let n = channel_name(Path::new("/data/events.ndjson"));
        assert!(n.starts_with("LOAD_") && n.len() == 21, "{n}");
        assert_eq!(n, channel_name(Path::new("/data/events.ndjson")));
    }
}
