//! NDJSON and CSV files: records from a byte position on, in chunks with their tokens, and
//! `--follow` (a growing file, rotation, truncation).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::sync::mpsc::Sender;

use crate::chunk::{BadRecord, ChunkBuilder, DeadLetter, Msg};
use crate::cli::OnError;
use crate::csv_rows::CsvOptions;
use crate::names::shown;
use crate::token::TextIdentity;

/// How often `--follow` looks for more data.
pub const POLL: Duration = Duration::from_millis(200);

/// What a text file holds.
#[derive(Debug, Clone)]
pub enum TextFormat {
    /// One JSON object per line.
    Ndjson,
    /// CSV records.
    Csv(CsvOptions),
}

/// What a text reader did.
#[derive(Debug, Default)]
pub struct TextReport {
    /// Where it started (after the committed token).
    pub start_position: u64,
    /// Where it stopped.
    pub end_position: u64,
    /// Whether the committed token named other content (a rewritten file).
    pub replaced: bool,
    /// Bad records met.
    pub bad_records: u64,
}

/// Reads one text file.
pub struct TextReader<'a> {
    path: PathBuf,
    format: TextFormat,
    follow: bool,
    on_error: OnError,
    tx: &'a Sender<Msg>,
    stop: &'a AtomicBool,
    file: File,
    identity: TextIdentity,
    position: u64,
    /// 1-based line of `position`.
    line: u64,
    /// CSV: the column names, once read.
    columns: Option<Vec<String>>,
    dead: DeadLetter,
}

impl<'a> TextReader<'a> {
    /// A reader of `path` resuming after `committed` when it names this file's content.
    ///
    /// # Errors
    /// When the file cannot be opened or read.
    pub fn open(
        path: &Path,
        format: TextFormat,
        committed: Option<&str>,
        (follow, on_error): (bool, OnError),
        tx: &'a Sender<Msg>,
        stop: &'a AtomicBool,
    ) -> Result<(Self, TextReport)> {
        let mut file = crate::files::open_input(path)?;
        let identity = TextIdentity::read(&mut file)?;
        let size = file.metadata()?.len();
        let resume = committed.and_then(|c| identity.resume(c, size));
        let replaced = committed.is_some() && resume.is_none();
        if let (true, Some(c)) = (replaced, committed) {
            tracing::warn!(
                file = %shown(path),
                committed = c,
                "the channel's committed offset token names other content (the file was \
                 replaced or rewritten): loading it from its start"
            );
        }
        let position = resume.unwrap_or(0);
        let line = 1 + count_lines(&mut file, position)?;
        let reader = Self {
            path: path.to_owned(),
            format,
            follow,
            on_error,
            tx,
            stop,
            file,
            identity,
            position,
            line,
            columns: None,
            dead: DeadLetter::new(path),
        };
        let report = TextReport {
            start_position: position,
            end_position: position,
            replaced,
            bad_records: 0,
        };
        Ok((reader, report))
    }

    /// Reads to the end (with `--follow`: until `stop`), sending chunks.
    ///
    /// # Errors
    /// When the file cannot be read, a bad record comes under `--on-error abort`, or the loader
    /// stopped listening.
    pub fn run(mut self, report: &mut TextReport) -> Result<()> {
        let outcome = self.run_inner();
        report.end_position = self.position;
        report.bad_records = self.dead.count;
        outcome
    }

    fn run_inner(&mut self) -> Result<()> {
        loop {
            self.round(false)?;
            if !self.follow || self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(POLL);
            self.check_rotation()?;
        }
    }

    /// `--follow`: the path names another file (rotation: finish the old one, then start the
    /// new), or the file is shorter than the position (truncation: start over).
    fn check_rotation(&mut self) -> Result<()> {
        let open = self.file.metadata()?;
        let now = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            // Between a rename and the new file's creation: look again next time.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot stat {}", shown(&self.path))),
        };
        let reason = if !same_file(&open, &now) {
            self.round(true)?;
            self.file = crate::files::open_input(&self.path)?;
            format!(
                "{} was rotated: now reading the new file",
                shown(&self.path)
            )
        } else if open.len() < self.position {
            format!(
                "{} was truncated ({} bytes, was read to {}): reading it from its start",
                shown(&self.path),
                open.len(),
                self.position
            )
        } else {
            return Ok(());
        };
        self.identity = TextIdentity::read(&mut self.file)?;
        self.position = 0;
        self.line = 1;
        self.columns = None;
        self.send(Msg::Restart { reason })
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.tx
            .blocking_send(msg)
            .map_err(|_| anyhow!("the loader stopped"))
    }

    /// Reads what the file holds now from the position on; `last`: the file is complete (a
    /// rotated one), take a last line without its line break too.
    fn round(&mut self, last: bool) -> Result<()> {
        let size = self.file.metadata()?.len();
        if size <= self.position {
            return Ok(());
        }
        self.identity.refresh(&mut self.file)?;
        let complete = !self.follow || last;
        match self.format.clone() {
            TextFormat::Ndjson => self.ndjson_round(size, complete),
            TextFormat::Csv(o) => self.csv_round(&o, size, complete),
        }
    }

    fn token(&self, position: u64) -> String {
        // `round` read the first bytes up to the data it reads: every position is covered.
        self.identity
            .token(position)
            .expect("the file's first bytes were read before its records")
    }

    fn bad(&mut self, line: u64, offset: u64, error: String, text: &[u8]) -> Result<()> {
        let bad = BadRecord {
            line,
            offset,
            error,
            text,
        };
        if self.on_error == OnError::Abort {
            bail!(
                "bad record in {} at line {line} (byte {offset}): {}; fix the record, or pass \
                 --on-error continue to write bad records to {} and go on",
                shown(&self.path),
                bad.error,
                shown(self.dead.path())
            );
        }
        self.dead.write(&bad)
    }

    fn ndjson_round(&mut self, size: u64, complete: bool) -> Result<()> {
        self.file.seek(SeekFrom::Start(self.position))?;
        let file = self.file.try_clone()?;
        let mut input = BufReader::with_capacity(256 * 1024, file.take(size - self.position));
        let mut chunk = ChunkBuilder::default();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = input.read_until(b'\n', &mut line)? as u64;
            if n == 0 || (!complete && line.last() != Some(&b'\n')) {
                break;
            }
            let start = self.position;
            let row = trim_line(&line);
            let check = check_object(row);
            if check.is_ok() && chunk.full_for(row.len()) {
                if let Some(m) = chunk.take(|| self.token(start)) {
                    self.send(m)?;
                }
            }
            chunk.consumed(n);
            self.position += n;
            match check {
                Ok(true) => {
                    chunk.buf().extend_from_slice(row);
                    let end = self.position;
                    chunk.row_written(|| self.token(end));
                }
                Ok(false) => {}
                Err(e) => self.bad(self.line, start, e, row)?,
            }
            self.line += 1;
        }
        let end = self.position;
        if let Some(m) = chunk.take(|| self.token(end)) {
            self.send(m)?;
        }
        Ok(())
    }

    /// Reads the skipped records and the header (from the file's start); `false` when the
    /// file does not hold them yet (`--follow`).
    fn csv_header(&mut self, o: &CsvOptions, size: u64, complete: bool) -> Result<bool> {
        self.file.seek(SeekFrom::Start(0))?;
        let mut rdr = o.reader(self.file.try_clone()?.take(size));
        let mut rec = csv::ByteRecord::new();
        let wanted = o.skip + u64::from(o.header);
        let mut names = Vec::new();
        for i in 0..wanted {
            if !rdr.read_byte_record(&mut rec)? {
                return Ok(false);
            }
            if i + 1 == wanted && o.header {
                names = rec
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
            }
        }
        let end = rdr.position().byte();
        if wanted > 0 && !complete && !ends_record(&mut self.file, end)? {
            return Ok(false);
        }
        if !o.columns.is_empty() {
            names = o.columns.clone();
        }
        if names.is_empty() {
            bail!(
                "{}: no column names: give them with --csv-columns A,B,C (the file has no \
                 header row)",
                shown(&self.path)
            );
        }
        if self.position < end {
            self.position = end;
            self.line = rdr.position().line();
            let skipped = Msg::Skipped { bytes: end };
            self.send(skipped)?;
        }
        self.columns = Some(names);
        Ok(true)
    }

    fn csv_round(&mut self, o: &CsvOptions, size: u64, complete: bool) -> Result<()> {
        if self.columns.is_none() && !self.csv_header(o, size, complete)? {
            return Ok(());
        }
        let columns = self.columns.clone().unwrap_or_default();
        let base = self.position;
        let base_line = self.line;
        self.file.seek(SeekFrom::Start(base))?;
        let mut rdr = o.reader(self.file.try_clone()?.take(size - base));
        let mut chunk = ChunkBuilder::default();
        let mut rec = csv::ByteRecord::new();
        let mut row = Vec::new();
        while rdr.read_byte_record(&mut rec)? {
            let pos = rec.position().cloned().unwrap_or_else(csv::Position::new);
            let (start, end) = (base + pos.byte(), base + rdr.position().byte());
            if !complete && end == size && !self.record_complete(o, start, end)? {
                break;
            }
            let line = base_line + pos.line() - 1;
            if rec.len() == 1 && rec[0].is_empty() {
                chunk.consumed(end - start);
                self.position = end;
                continue;
            }
            row.clear();
            let converted = o.write_json(&columns, &rec, &mut row);
            if converted.is_ok() && chunk.full_for(row.len()) {
                if let Some(m) = chunk.take(|| self.token(start)) {
                    self.send(m)?;
                }
            }
            chunk.consumed(end - start);
            self.position = end;
            self.line = base_line + rdr.position().line() - 1;
            match converted {
                Ok(()) => {
                    chunk.buf().extend_from_slice(&row);
                    chunk.row_written(|| self.token(end));
                }
                Err(e) => self.bad(line, start, e, &o.text(&rec))?,
            }
        }
        let end = self.position;
        if let Some(m) = chunk.take(|| self.token(end)) {
            self.send(m)?;
        }
        Ok(())
    }

    /// `--follow`: whether the record in `start..end`, which reaches the end of the data, is
    /// whole (it ends in a line break outside quotes) rather than still being written.
    fn record_complete(&self, o: &CsvOptions, start: u64, end: u64) -> Result<bool> {
        let mut f = self.file.try_clone()?;
        let mut raw = Vec::new();
        f.seek(SeekFrom::Start(start))?;
        f.take(end - start).read_to_end(&mut raw)?;
        Ok(raw.last() == Some(&b'\n') && o.quotes_closed(&raw))
    }
}

/// Whether the byte before `end` is a line break.
fn ends_record(file: &mut File, end: u64) -> Result<bool> {
    if end == 0 {
        return Ok(true);
    }
    let mut b = [0u8];
    file.seek(SeekFrom::Start(end - 1))?;
    file.read_exact(&mut b)?;
    Ok(b[0] == b'\n')
}

/// A line without its line break (`\n` or `\r\n`).
pub(crate) fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `Ok(true)` for one JSON object, `Ok(false)` for a blank line, else why not.
pub(crate) fn check_object(row: &[u8]) -> Result<bool, String> {
    let first = row.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Ok(false),
        Some(b'{') => serde_json::from_slice::<serde::de::IgnoredAny>(row)
            .map(|_| true)
            .map_err(|e| format!("not valid JSON: {e}")),
        Some(_) => Err("not a JSON object (a row is one object per line)".to_owned()),
    }
}

/// Line breaks in the file's first `end` bytes.
fn count_lines(file: &mut File, end: u64) -> Result<u64> {
    if end == 0 {
        return Ok(0);
    }
    file.seek(SeekFrom::Start(0))?;
    let mut input = BufReader::with_capacity(256 * 1024, file.try_clone()?.take(end));
    let mut lines = 0u64;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let n = buf.len();
        input.consume(n);
    }
    Ok(lines)
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    // No inode to compare: rotation is not detected (documented).
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_one_json_object() {
        assert_eq!(check_object(br#" {"a": [1, 2]} "#), Ok(true));
        assert_eq!(check_object(b"   "), Ok(false));
        assert!(check_object(b"[1]")
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(check_object(br#"{"a":"#)
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(check_object(br#"{"a":1} x"#).is_err());
        assert_eq!(trim_line(b"{}\r\n"), b"{}");
    }
}
