//! Bad records and the dead-letter file beside an input, `<input>.rejected.ndjson` (a name too
//! long for that: cut, with a hash, [`DeadLetter::new`]): one JSON
//! line a record, with the file, line and byte offset, why, the record's first bytes, and its
//! length and SHA-256 (as the Kinesis path's dead letters keep them: a long record is never
//! written whole). Written through a buffer, flushed before any append whose token covers
//! the records (the readers call [`DeadLetter::flush`]); opened by `files::open_dead_letter`.

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::names::shown;
use crate::record::{trim_line, Whole};

/// The most of a record's text a dead letter keeps: its JSON string form, escapes counted.
pub(crate) const KEPT_TEXT: usize = 64 * 1024;

/// A bad record: where, why, its first bytes, and its length and hash.
#[derive(Debug)]
pub(crate) struct BadRecord<'a> {
    /// 1-based line where it starts.
    pub line: u64,
    /// Byte offset where it starts.
    pub offset: u64,
    /// Why it was refused.
    pub error: String,
    /// The record as read (its first bytes when it is long; a line break at its end is
    /// dropped).
    pub text: &'a [u8],
    /// Its length and SHA-256 in the input (`None` for a Parquet row group, which is never
    /// read whole: its bytes in the file are `record_bytes`, with no hash).
    pub whole: Option<Whole>,
    /// Its bytes in the input when `whole` is `None`.
    pub bytes: u64,
}

/// The dead-letter file of one input, created on the first bad record, appended to.
/// At-least-once: a rerun that reads a bad record again writes it again.
pub(crate) struct DeadLetter {
    input: PathBuf,
    path: PathBuf,
    file: Option<BufWriter<std::fs::File>>,
    /// Bad records written.
    pub count: u64,
}

impl DeadLetter {
    /// The dead-letter file of `input`: `<input>.rejected.ndjson`, or where that name would
    /// be longer than a file name may be ([`NAME_MAX`]), the input's name cut and 16 hex
    /// digits of its SHA-256 (`<cut>-<hash>.rejected.ndjson`: the same on every rerun).
    pub(crate) fn new(input: &Path) -> Self {
        Self {
            input: input.to_owned(),
            path: dead_letter_path(input),
            file: None,
            count: 0,
        }
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bad` as one JSON line (into the buffer).
    ///
    /// # Errors
    /// When the file cannot be opened or written.
    pub(crate) fn write(&mut self, bad: &BadRecord<'_>) -> Result<()> {
        if self.file.is_none() {
            let f = crate::files::open_dead_letter(&self.path, &self.input)?;
            if self.path.as_os_str().len() != self.input.as_os_str().len() + SUFFIX.len() {
                tracing::warn!(
                    file = %shown(&self.input),
                    "bad records go to {}: the name `<input>{SUFFIX}` would be longer than a \
                     file name may be ({NAME_MAX} bytes)",
                    shown(&self.path)
                );
            }
            self.file = Some(BufWriter::with_capacity(256 * 1024, f));
        }
        let text = String::from_utf8_lossy(trim_line(bad.text));
        let line = serde_json::json!({
            "file": self.input.display().to_string(),
            "line": bad.line,
            "byte_offset": bad.offset,
            "error": bad.error,
            "record": snowpipe_cli_support::text::cut_json_text(&text, KEPT_TEXT),
            "record_bytes": bad.whole.as_ref().map_or(bad.bytes, |w| w.len),
            "record_sha256": bad.whole.as_ref().map(|w| w.sha256.as_str()),
        });
        let f = self.file.as_mut().expect("opened above");
        writeln!(f, "{line}").with_context(|| format!("cannot write {}", shown(&self.path)))?;
        self.count += 1;
        Ok(())
    }

    /// Writes what the buffer holds to the file.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub(crate) fn flush(&mut self) -> Result<()> {
        match &mut self.file {
            Some(f) => f
                .flush()
                .with_context(|| format!("cannot write {}", shown(&self.path))),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("path", &self.path)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// The longest file name (bytes) Linux's file systems and macOS's take.
pub(crate) const NAME_MAX: usize = 255;

const SUFFIX: &str = ".rejected.ndjson";

/// See [`DeadLetter::new`].
fn dead_letter_path(input: &Path) -> PathBuf {
    let name = input.file_name().unwrap_or(input.as_os_str());
    let bytes = name.as_encoded_bytes();
    if bytes.len() + SUFFIX.len() <= NAME_MAX {
        let mut path = input.as_os_str().to_owned();
        path.push(SUFFIX);
        return PathBuf::from(path);
    }
    let hash = crate::token::short_hash(bytes);
    // `-` and 16 hex digits; the cut at a character where the name is UTF-8.
    let mut keep = NAME_MAX - SUFFIX.len() - 1 - hash.len();
    let text = name.to_string_lossy();
    while keep > 0 && !text.is_char_boundary(keep) {
        keep -= 1;
    }
    // A name that is not UTF-8 is cut in its lossy form (its hash is of its bytes).
    let cut: String = text
        .chars()
        .scan(0, |n, c| {
            *n += c.len_utf8();
            (*n <= keep).then_some(c)
        })
        .collect();
    input.with_file_name(format!("{cut}-{hash}{SUFFIX}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_name_gets_a_dead_letter_name_that_fits_and_stays_the_same() {
        assert_eq!(
            dead_letter_path(Path::new("/d/ev.ndjson")),
            Path::new("/d/ev.ndjson.rejected.ndjson")
        );
        let long = format!("/d/{}.ndjson", "é".repeat(120));
        let dead = dead_letter_path(Path::new(&long));
        let name = dead.file_name().unwrap().to_str().unwrap();
        assert!(name.len() <= NAME_MAX, "{}", name.len());
        assert!(name.starts_with("éé") && name.ends_with(SUFFIX), "{name}");
        assert_eq!(dead.parent(), Some(Path::new("/d")));
        assert_eq!(dead, dead_letter_path(Path::new(&long)));
        let other = format!("/d/{}x.ndjson", "é".repeat(120));
        assert_ne!(dead, dead_letter_path(Path::new(&other)));
    }
}
