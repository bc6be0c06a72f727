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
//! An object in a bucket (`object/`): `obj1:<size>:<h>:<position>`, `h` the first 16 hex
//! digits of the SHA-256 of its ETag and version (its last-modified time when the store gives
//! neither), `position` a byte offset (NDJSON, CSV) or rows (Parquet) as above. An object is
//! replaced whole, never grown: a new ETag or size is another object, loaded from its start.
//!
//! **One rule for ranges, files and objects alike.** A token is `<kind>:<identity>:<position>`;
//! a lane of an input split into ranges (`ranges.rs`) writes its kind with an `r`: `v1r:`,
//! `pq1r:`, `obj1r:` (the identity and the position unchanged: positions stay absolute, bytes or
//! rows of the whole file or object). A reader resumes from a token only when its kind (with or
//! without the `r`, as it loads), identity and position all match ([`TextIdentity::resume`],
//! [`ParquetIdentity::resume`], both through [`ObjectTag::resume`] for an object), so an input
//! whose lane 0 channel holds an unranged token of it was loaded as one range (by an older
//! version, or when it was small) and is resumed that way, whether a file or an object.
//!
//! Standard input: `stdin:<run>:<position>`, `run` the start time of the run in nanoseconds,
//! so one run's tokens never reach another's.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use snowpipe_streaming::OffsetToken;

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
    /// An object's identity, instead of its first bytes.
    object: Option<ObjectTag>,
    /// Tokens of a range of a file split into ranges (`ranges.rs`): `v1r:` instead of `v1:`.
    ranged: bool,
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
        if self.full.is_some() || self.object.is_some() {
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

    /// The identity of an object: its tokens are `obj1:…` (`ObjectTag`), its bytes are not read.
    pub(crate) fn of_object(tag: &ObjectTag) -> Self {
        Self {
            object: Some(tag.clone()),
            ..Self::default()
        }
    }

    /// Builds an identity from bytes already held.
    #[cfg(test)]
    pub(crate) fn from_prefix(prefix: &[u8]) -> Self {
        let prefix = prefix[..prefix.len().min(IDENTITY_BYTES as usize)].to_vec();
        let full = (prefix.len() as u64 == IDENTITY_BYTES).then(|| short_hash(&prefix));
        Self {
            prefix,
            full,
            object: None,
            ranged: false,
        }
    }

    /// The same identity writing (and resuming from) the tokens of a range, `v1r:…`: a
    /// file's lane 0 shares its channel with the one-channel load, and the tag tells which
    /// of the two wrote its committed token.
    pub(crate) fn ranged(mut self, ranged: bool) -> Self {
        self.ranged = ranged;
        self
    }

    fn tag(&self) -> &'static str {
        if self.ranged {
            "v1r:"
        } else {
            "v1:"
        }
    }

    /// The token of `position`, or `None` when the file's first `min(position, 4096)` bytes
    /// were not read (call [`refresh`](Self::refresh)).
    pub(crate) fn token(&self, position: u64) -> Option<String> {
        if let Some(tag) = &self.object {
            return Some(tag.token(position, self.ranged));
        }
        let k = position.min(IDENTITY_BYTES);
        let hash = match &self.full {
            Some(h) if k == IDENTITY_BYTES => h.clone(),
            _ => short_hash(self.prefix.get(..k as usize)?),
        };
        Some(format!("{}{k}:{hash}:{position}", self.tag()))
    }

    /// Where to resume from `committed` (a token this program wrote): its position when the
    /// file still starts with the bytes the token names and is at least that long. `None`
    /// when the token names other content (the file was replaced) or is not ours.
    pub(crate) fn resume(&self, committed: &str, size: u64) -> Option<u64> {
        if let Some(tag) = &self.object {
            return tag.resume(committed, size, self.ranged);
        }
        // The SDK reads the token (prefix + number); the prefix must be this file's at it.
        let committed = OffsetToken::new(committed).ok()?;
        let (prefix, position) = committed.prefixed_number()?;
        if position > size {
            return None;
        }
        let ours = self.token(position)?;
        (ours.strip_suffix(&position.to_string())? == prefix).then_some(position)
    }
}

/// A Parquet file's identity: its size and the hash of its footer (or, for an object, its
/// ETag: `kind` `obj1`).
#[derive(Debug, Clone)]
pub(crate) struct ParquetIdentity {
    kind: &'static str,
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
            kind: PARQUET_KIND,
            size,
            hash: short_hash(&buf),
        })
    }

    /// The identity of an object (its tokens are `obj1:…:<rows>`).
    pub(crate) fn of_object(tag: &ObjectTag) -> Self {
        Self {
            kind: OBJECT_KIND,
            size: tag.size,
            hash: tag.hash.clone(),
        }
    }

    /// The same identity writing (and resuming from) the tokens of a range: `pq1r:…`, or
    /// `obj1r:…` for an object.
    pub(crate) fn ranged(mut self, ranged: bool) -> Self {
        if ranged {
            self.kind = match self.kind {
                PARQUET_KIND => "pq1r",
                OBJECT_KIND => "obj1r",
                other => other,
            };
        }
        self
    }

    /// The token after `rows` rows.
    pub(crate) fn token(&self, rows: u64) -> String {
        format!("{}:{}:{}:{rows}", self.kind, self.size, self.hash)
    }

    /// The rows to skip when `committed` names this file, else `None`.
    pub(crate) fn resume(&self, committed: &str, num_rows: u64) -> Option<u64> {
        let committed = OffsetToken::new(committed).ok()?;
        let (prefix, rows) = committed.prefixed_number()?;
        let ours = format!("{}:{}:{}:", self.kind, self.size, self.hash);
        (prefix == ours && rows <= num_rows).then_some(rows)
    }
}

/// The kind of an object's tokens.
const OBJECT_KIND: &str = "obj1";

/// The kind of a Parquet file's tokens (loaded as one range).
const PARQUET_KIND: &str = "pq1";

/// An object's identity: its size and the hash of its ETag and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectTag {
    /// Its size, bytes.
    pub size: u64,
    /// 16 hex digits of the SHA-256 of its ETag and version.
    pub hash: String,
}

impl ObjectTag {
    /// The identity of a listed or HEAD object. ETags are compared without their quotes and
    /// weak marker (stores differ in which they send).
    ///
    /// # Errors
    /// Never for a store's answer; the signature leaves room for one that names nothing.
    pub(crate) fn of(meta: &object_store::ObjectMeta) -> Result<Self> {
        let etag = meta
            .e_tag
            .as_deref()
            .map(|e| e.trim_start_matches("W/").trim_matches('"'));
        let seed = match (etag, meta.version.as_deref()) {
            (None, None) => format!("modified\n{}", meta.last_modified.to_rfc3339()),
            (e, v) => format!("etag\n{}\nversion\n{}", e.unwrap_or(""), v.unwrap_or("")),
        };
        Ok(Self {
            size: meta.size,
            hash: short_hash(seed.as_bytes()),
        })
    }

    /// The kind of this object's tokens: `obj1`, or `obj1r` for a lane of its ranges.
    fn kind(ranged: bool) -> &'static str {
        if ranged {
            "obj1r"
        } else {
            OBJECT_KIND
        }
    }

    /// The token of `position` (bytes or rows), of a lane of ranges when `ranged`.
    pub(crate) fn token(&self, position: u64, ranged: bool) -> String {
        let kind = Self::kind(ranged);
        format!("{kind}:{}:{}:{position}", self.size, self.hash)
    }

    /// The position `committed` names when it is a token of this object of the same kind
    /// (`ranged` or not) and within it (`limit`: its size for bytes, its rows for Parquet),
    /// else `None`.
    pub(crate) fn resume(&self, committed: &str, limit: u64, ranged: bool) -> Option<u64> {
        let committed = OffsetToken::new(committed).ok()?;
        let (prefix, position) = committed.prefixed_number()?;
        let ours = format!("{}:{}:{}:", Self::kind(ranged), self.size, self.hash);
        (prefix == ours && position <= limit).then_some(position)
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
    fn an_object_token_names_its_etag_and_size() {
        let meta = |etag: &str, size| object_store::ObjectMeta {
            location: "k".into(),
            last_modified: chrono::DateTime::UNIX_EPOCH,
            size,
            e_tag: Some(etag.to_owned()),
            version: None,
        };
        let tag = ObjectTag::of(&meta("\"abc\"", 100)).unwrap();
        assert_eq!(tag, ObjectTag::of(&meta("abc", 100)).unwrap(), "quotes");
        let t = tag.token(40, false);
        assert!(t.starts_with("obj1:100:") && t.ends_with(":40"), "{t}");
        assert_eq!(tag.resume(&t, 100, false), Some(40));
        assert_eq!(tag.resume(&t, 39, false), None, "past the end");
        let rewritten = ObjectTag::of(&meta("\"abd\"", 100)).unwrap();
        assert_eq!(
            rewritten.resume(&t, 100, false),
            None,
            "a new ETag: another object"
        );
        assert_eq!(
            ObjectTag::of(&meta("abc", 101))
                .unwrap()
                .resume(&t, 200, false),
            None
        );
        let pq = ParquetIdentity::of_object(&tag);
        assert_eq!(pq.token(7), tag.token(7, false));
        assert_eq!(pq.resume(&tag.token(7, false), 7), Some(7));
    }

    #[test]
    fn a_ranged_object_token_follows_the_files_rule() {
        let meta = object_store::ObjectMeta {
            location: "k".into(),
            last_modified: chrono::DateTime::UNIX_EPOCH,
            size: 100,
            e_tag: Some("e".to_owned()),
            version: None,
        };
        let tag = ObjectTag::of(&meta).unwrap();
        let text = TextIdentity::of_object(&tag).ranged(true);
        let t = text.token(40).unwrap();
        assert!(t.starts_with("obj1r:100:") && t.ends_with(":40"), "{t}");
        assert_eq!(text.resume(&t, 100), Some(40));
        let whole = TextIdentity::of_object(&tag);
        assert_eq!(
            whole.resume(&t, 100),
            None,
            "a lane's token is not a whole load's"
        );
        assert_eq!(
            text.resume(&whole.token(40).unwrap(), 100),
            None,
            "nor the reverse"
        );
        let pq = ParquetIdentity::of_object(&tag).ranged(true);
        assert_eq!(pq.token(7), tag.token(7, true));
        assert_eq!(pq.resume(&t, 100), Some(40));
        assert_eq!(ParquetIdentity::of_object(&tag).resume(&t, 100), None);
    }

    #[test]
    fn ranged_and_whole_file_tokens_are_told_apart() {
        let id = TextIdentity::from_prefix(b"{\"a\":1}\n{\"a\":2}\n");
        let whole = id.token(8).unwrap();
        let ranged = id.clone().ranged(true);
        let t = ranged.token(8).unwrap();
        assert!(t.starts_with("v1r:8:"), "{t}");
        assert_eq!(ranged.resume(&t, 16), Some(8));
        assert_eq!(ranged.resume(&whole, 16), None);
        assert_eq!(id.resume(&t, 16), None);
    }

    #[test]
    fn channel_names_are_stable_and_valid() {
        let n = channel_name(Path::new("/data/events.ndjson"));
        assert!(n.starts_with("LOAD_") && n.len() == 21, "{n}");
        assert_eq!(n, channel_name(Path::new("/data/events.ndjson")));
    }
}
