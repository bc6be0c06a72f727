//! Bad records and their dead-letter file: beside a local input, `<input>.rejected.ndjson` (a
//! name too long for that: cut, with a hash, [`DeadLetter::new`]); for an object in a bucket,
//! in the `--dead-letters` directory (default `snowpipe-dead-letters` in the working
//! directory, made 0700), one file per object and table named after both
//! ([`DeadLetter::for_input`]), never in the spool or the temporary directory. One JSON
//! line a record, with its source (the file or the object's URL) and table, line and byte
//! offset, why, the record's first bytes, and its
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
    /// What records name as their `file`: the input's path, or an object's URL.
    source: String,
    /// The table its rows go to.
    table: Option<String>,
    /// The directory to create (0700) before the file: an object's dead letters'.
    dir: Option<PathBuf>,
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
            source: input.display().to_string(),
            table: None,
            dir: None,
            path: dead_letter_path(input),
            file: None,
            count: 0,
        }
    }

    /// The dead-letter file of the input read at `path` (an object's spool file: `object` is
    /// its URL) loaded into `place.table`: a local file's beside it, an object's in
    /// `place.dir` ([`object_file`]), its records naming the URL.
    pub(crate) fn for_input(path: &Path, object: Option<&str>, place: &Place) -> Self {
        let mut dead = match object {
            Some(url) => Self {
                input: path.to_owned(),
                source: url.to_owned(),
                table: None,
                dir: Some(place.dir.clone()),
                path: place.dir.join(object_file(url, &place.table)),
                file: None,
                count: 0,
            },
            None => Self::new(path),
        };
        dead.table = Some(place.table.clone());
        dead
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
            if let Some(dir) = &self.dir {
                create_private_dir(dir)?;
            }
            let f = crate::files::open_dead_letter(&self.path, &self.input)?;
            if self.dir.is_none()
                && self.path.as_os_str().len() != self.input.as_os_str().len() + SUFFIX.len()
            {
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
            "file": self.source,
            "table": self.table,
            "line": bad.line,
            "byte_offset": bad.offset,
            "error": bad.error,
            "record": snowpipe_cli_support::text::cut_json_text(&text, KEPT_TEXT),
            "record_bytes": bad.whole.as_ref().map_or(bad.bytes, |w| w.len),
            "record_sha256": bad.whole.as_ref().map(|w| w.sha256.as_str()),
        });
        let f = self.file.as_mut().expect("opened above");
        // One write a line: the buffer flushes whole lines only, so the lanes of one object,
        // appending to one file, never interleave within a line.
        f.write_all(format!("{line}\n").as_bytes())
            .with_context(|| format!("cannot write {}", shown(&self.path)))?;
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

/// Where an object's dead letters go, and the table every record names.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// `--dead-letters`, else [`DEFAULT_DIR`].
    pub dir: PathBuf,
    /// The table (or pipe) loaded into.
    pub table: String,
}

/// The default directory of objects' dead letters, in the working directory.
pub(crate) const DEFAULT_DIR: &str = "snowpipe-dead-letters";

/// The dead-letter file name of the object at `url` loaded into `table`: the URL's last
/// segment (letters, digits, `.`, `-`, `_` kept, the rest `_`, at most 80), then 16 hex
/// digits of the SHA-256 of the URL and the table, so loads of one object into two tables
/// never share a file, and a rerun finds the same one.
pub(crate) fn object_file(url: &str, table: &str) -> String {
    let tail = crate::names::file_name_tail(url);
    let hash = crate::token::short_hash(format!("{url}\n{table}").as_bytes());
    format!("{tail}-{hash}{SUFFIX}")
}

/// Creates `dir` (0700) if missing.
fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| {
        format!(
            "cannot create the dead-letter directory {}: pass --dead-letters DIR with a \
             directory you can write, or --on-error abort",
            shown(dir)
        )
    })
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
    fn an_objects_dead_letter_file_is_named_by_its_url_and_table() {
        let a = object_file("s3://b/2026/part-0.ndjson", "ORDERS");
        assert!(
            a.starts_with("part-0.ndjson-") && a.ends_with(SUFFIX),
            "{a}"
        );
        assert_eq!(a, object_file("s3://b/2026/part-0.ndjson", "ORDERS"));
        assert_ne!(a, object_file("s3://b/2026/part-0.ndjson", "RETURNS"));
        assert_ne!(a, object_file("s3://b/2027/part-0.ndjson", "ORDERS"));
        let odd = object_file("s3://b/x/\u{1b}[2J..\n", "T");
        assert!(odd.starts_with("__2J.._-"), "{odd}");
        assert!(odd.len() <= NAME_MAX);
    }

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
