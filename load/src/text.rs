//! NDJSON and CSV files: records from a byte position on, in chunks with their tokens, and
//! `--follow` (a growing file, rotation, truncation). A reader may be given a range of the file
//! (`ranges.rs`): it then reads from the range's start (or the committed position within it)
//! to its end, with the ranged tokens, and counts lines from the range's start (the lines
//! before it are counted only when a bad record needs its line number).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::sync::mpsc::Sender;

use crate::chunk::{ChunkBuilder, Msg, CHUNK_BYTES};
use crate::cli::OnError;
use crate::csv_long::{Boundary, Capped, LongRecord};
use crate::csv_rows::CsvOptions;
use crate::dead_letter::{BadRecord, DeadLetter};
use crate::decode_budget::DecodeBudget;
use crate::names::shown;
use crate::record::{check_object, trim_line, without_bom, Line, Whole, MAX_RECORD_BYTES};
use crate::token::{ObjectTag, TextIdentity};

/// How often `--follow` looks for more data.
pub(crate) const POLL: Duration = Duration::from_millis(200);

/// What a text file holds.
#[derive(Debug, Clone)]
pub(crate) enum TextFormat {
    /// One JSON object per line.
    Ndjson,
    /// CSV records.
    Csv(CsvOptions),
}

/// What a text reader did.
#[derive(Debug, Default)]
pub(crate) struct TextReport {
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
pub(crate) struct TextReader<'a> {
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
    /// `--follow`: the line at `position` read so far, its line break still to come.
    partial: Line,
    /// CSV: a record at `position` past the limit, being read past.
    long: Option<LongRecord>,
    /// The range read: `position` never passes its end (the whole file: `0..u64::MAX`).
    span: (u64, u64),
    /// Lines before the range's start, once counted (for bad records' line numbers).
    lines_before: Option<u64>,
    /// What every lane's queued chunks count against (`decode_budget.rs`), when set.
    budget: Option<Arc<DecodeBudget>>,
}

/// The CSV reader's buffer.
const CSV_BUFFER: usize = 256 * 1024;

impl<'a> TextReader<'a> {
    /// A reader of `path` (of its range `span`, when given) resuming after `committed` when
    /// it names this file's content (an object's spool file: `object`, its identity).
    ///
    /// # Errors
    /// When the file cannot be opened or read.
    pub(crate) fn open(
        (path, span): (&Path, Option<(u64, u64)>),
        format: TextFormat,
        committed: Option<&str>,
        (follow, on_error): (bool, OnError),
        object: Option<&ObjectTag>,
        tx: &'a Sender<Msg>,
        stop: &'a AtomicBool,
    ) -> Result<(Self, TextReport)> {
        let mut file = crate::files::open_input(path)?;
        let identity = match object {
            Some(tag) => TextIdentity::of_object(tag),
            None => TextIdentity::read(&mut file)?,
        }
        .ranged(span.is_some());
        let size = file.metadata()?.len();
        let resume = committed.and_then(|c| identity.resume(c, size));
        let replaced = committed.is_some() && resume.is_none();
        let span = span.unwrap_or((0, u64::MAX));
        if replaced && span.0 > 0 {
            tracing::debug!(file = %shown(path), "a range's token names other content");
        } else if let (true, Some(c)) = (replaced, committed) {
            tracing::warn!(
                file = %shown(path),
                committed = c,
                "the channel's committed offset token names other content (the file was \
                 replaced or rewritten): loading it from its start"
            );
        }
        // A lane's token is past its ranges before this one, inside this one, or before it.
        let position = resume.unwrap_or(0).clamp(span.0, span.1);
        let line = 1 + count_lines(&mut file, span.0, position)?;
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
            partial: Line::default(),
            long: None,
            span,
            lines_before: (span.0 == 0).then_some(0),
            budget: None,
        };
        let report = TextReport {
            start_position: position,
            end_position: position,
            replaced,
            bad_records: 0,
        };
        Ok((reader, report))
    }

    /// The reader, each chunk holding its bytes of `budget` while it is queued.
    /// Its bad records go to `dead` (an object's: its own place, `dead_letter.rs`).
    pub(crate) fn dead_letters(mut self, dead: DeadLetter) -> Self {
        self.dead = dead;
        self
    }

    pub(crate) fn within(mut self, budget: &Arc<DecodeBudget>) -> Self {
        self.budget = Some(Arc::clone(budget));
        self
    }

    /// Reads to the end (with `--follow`: until `stop`), sending chunks.
    ///
    /// # Errors
    /// When the file cannot be read, a bad record comes under `--on-error abort`, or the loader
    /// stopped listening.
    pub(crate) fn run(mut self, report: &mut TextReport) -> Result<()> {
        let outcome = self.run_inner().and(self.dead.flush());
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
        self.partial = Line::default();
        self.long = None;
        self.send(Msg::Restart { reason })
    }

    /// Sends `msg`, the dead letters before it written out first (its token may cover them).
    fn send(&mut self, msg: Msg) -> Result<()> {
        self.dead.flush()?;
        self.tx
            .blocking_send(msg)
            .map_err(|_| anyhow!("the loader stopped"))
    }

    /// Before a chunk's first row is written: waits for the chunk's bytes of the budget (a
    /// whole chunk, or the row when it is larger), so what every lane builds and queues
    /// together stays within it.
    ///
    /// # Errors
    /// When the loader stopped while waiting.
    fn reserve(&self, chunk: &mut ChunkBuilder, row: usize) -> Result<()> {
        let Some(budget) = self.budget.as_ref().filter(|_| !chunk.holds()) else {
            return Ok(());
        };
        let bytes = CHUNK_BYTES.max(row + 1) as u64;
        let share = budget.hold_shared(bytes, || self.stop.load(Ordering::Relaxed));
        chunk.hold(share.ok_or_else(|| anyhow!("the loader stopped"))?);
        Ok(())
    }

    /// Reads what the file holds now from the position on; `last`: the file is complete (a
    /// rotated one), take a last line without its line break too.
    fn round(&mut self, last: bool) -> Result<()> {
        let size = self.file.metadata()?.len().min(self.span.1);
        let read = self.long.as_ref().map_or(self.partial.len, |l| l.len);
        if size <= self.position + read {
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

    fn bad(
        &mut self,
        (line, offset): (u64, u64),
        error: String,
        text: &[u8],
        whole: Whole,
    ) -> Result<()> {
        let line = line + self.lines_before()?;
        let bad = BadRecord {
            line,
            offset,
            error,
            text,
            whole: Some(whole),
            bytes: 0,
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

    /// Lines before the range's start: counted the first time a bad record needs them, on a
    /// handle of its own (the readers share this one's position).
    fn lines_before(&mut self) -> Result<u64> {
        if let Some(n) = self.lines_before {
            return Ok(n);
        }
        let mut file = crate::files::open_input(&self.path)?;
        let n = count_lines(&mut file, 0, self.span.0)?;
        self.lines_before = Some(n);
        Ok(n)
    }

    fn ndjson_round(&mut self, size: u64, complete: bool) -> Result<()> {
        let from = self.position + self.partial.len;
        self.file.seek(SeekFrom::Start(from))?;
        let file = self.file.try_clone()?;
        let mut input = BufReader::with_capacity(256 * 1024, file.take(size - from));
        let mut chunk = ChunkBuilder::default();
        let mut line = std::mem::take(&mut self.partial);
        loop {
            line.read_from(&mut input, MAX_RECORD_BYTES, self.stop)?;
            if line.len == 0 || self.stop.load(Ordering::Relaxed) {
                break;
            }
            if !line.ended && !complete {
                // Still being written: read on after it next time.
                self.partial = std::mem::take(&mut line);
                break;
            }
            let (start, n) = (self.position, line.len);
            let row = trim_line(&line.bytes);
            let row = if start == 0 { without_bom(row) } else { row };
            let check = if line.is_long() {
                Err(too_long(n))
            } else {
                check_object(row)
            };
            if check.is_ok() && chunk.full_for(row.len()) {
                if let Some(m) = chunk.take(|| self.token(start)) {
                    self.send(m)?;
                }
            }
            chunk.consumed(n);
            self.position += n;
            match check {
                Ok(true) => {
                    self.reserve(&mut chunk, row.len())?;
                    let end = self.position;
                    chunk.write_row(row, || self.token(end));
                }
                Ok(false) => {}
                Err(e) => self.bad((self.line, start), e, &line.bytes, line.whole())?,
            }
            self.line += 1;
            line.clear();
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
        let boundary = Rc::new(Boundary::default());
        let input = self.file.try_clone()?.take(size);
        let mut rdr = o.reader(Capped::new(input, CSV_BUFFER, Rc::clone(&boundary)));
        let mut rec = csv::ByteRecord::new();
        let wanted = o.skip + u64::from(o.header);
        let mut names = Vec::new();
        for i in 0..wanted {
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => boundary.at.set(rdr.position().byte()),
                Ok(false) => return Ok(false),
                Err(_) if boundary.refused.get() => bail!(
                    "{}: record {} (a skipped record or the header) is longer than \
                     {MAX_RECORD_BYTES} bytes, the limit of a record: check --csv-quote and \
                     --csv-delimiter, or fix the file's first records",
                    shown(&self.path),
                    i + 1
                ),
                Err(e) => return Err(e.into()),
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
        let given = !o.columns.is_empty();
        if given {
            names = o.columns.clone();
        }
        if names.is_empty() {
            bail!(
                "{}: no column names: give them with --csv-columns A,B,C (the file has no \
                 header row)",
                shown(&self.path)
            );
        }
        if let Some((a, b)) = crate::csv_rows::duplicate(&names) {
            let source = if given {
                "--csv-columns".to_owned()
            } else {
                format!("the header (line {})", rdr.position().line() - 1)
            };
            bail!(
                "{}: {source} names the column {:?} twice, at positions {} ({:?}) and {} \
                 ({:?}); columns are matched without regard to case, so one value would be \
                 lost: rename one (or give the names with --csv-columns)",
                shown(&self.path),
                names[b].to_ascii_uppercase(),
                a + 1,
                names[a],
                b + 1,
                names[b]
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
        loop {
            if self.long.is_some() && !self.read_past_long(size, complete)? {
                return Ok(());
            }
            if !self.csv_records(o, size, complete)? {
                return Ok(());
            }
            let long = LongRecord::new(o.core_reader(), self.position, self.line);
            self.long = Some(long);
        }
    }

    /// Reads on past the record too long to hold; `false` while its end has not come yet
    /// (`--follow`: the next poll reads on from there). Once it ended: its dead letter.
    fn read_past_long(&mut self, size: u64, complete: bool) -> Result<bool> {
        let long = self.long.as_mut().expect("called with a long record");
        let from = long.start + long.len;
        self.file.seek(SeekFrom::Start(from))?;
        let mut input = self.file.try_clone()?.take(size - from);
        if !long.read_from(&mut input, complete)? {
            return Ok(false);
        }
        let long = self.long.take().expect("called with a long record");
        self.position = long.start + long.len;
        self.line = long.line + long.lines();
        let at = (long.line, long.start);
        self.bad(at, too_long(long.len), long.first(), long.whole())?;
        self.send(Msg::Skipped { bytes: long.len })?;
        Ok(true)
    }

    /// Reads records from the position on; `true` when it stopped at one past the limit.
    fn csv_records(&mut self, o: &CsvOptions, size: u64, complete: bool) -> Result<bool> {
        let columns = self.columns.clone().unwrap_or_default();
        let base = self.position;
        let base_line = self.line;
        self.file.seek(SeekFrom::Start(base))?;
        let boundary = Rc::new(Boundary::default());
        let input = self.file.try_clone()?.take(size - base);
        let mut rdr = o.reader(Capped::new(input, CSV_BUFFER, Rc::clone(&boundary)));
        let mut chunk = ChunkBuilder::default();
        let mut rec = csv::ByteRecord::new();
        let mut row = Vec::new();
        let mut long = false;
        while !self.stop.load(Ordering::Relaxed) {
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => boundary.at.set(rdr.position().byte()),
                Ok(false) => break,
                Err(_) if boundary.refused.get() => {
                    long = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
            let pos = rec.position().cloned().unwrap_or_else(csv::Position::new);
            let (start, end) = (base + pos.byte(), base + rdr.position().byte());
            if !complete && end == size && !self.record_complete(o, start, end)? {
                break;
            }
            let line = base_line + pos.line() - 1;
            let next_line = base_line + rdr.position().line() - 1;
            if rec.len() == 1 && rec[0].is_empty() {
                chunk.consumed(end - start);
                (self.position, self.line) = (end, next_line);
                continue;
            }
            row.clear();
            let converted = if end - start > MAX_RECORD_BYTES as u64 {
                Err(too_long(end - start))
            } else {
                o.write_json(&columns, &rec, &mut row)
            };
            if converted.is_ok() && chunk.full_for(row.len()) {
                if let Some(m) = chunk.take(|| self.token(start)) {
                    self.send(m)?;
                }
            }
            chunk.consumed(end - start);
            (self.position, self.line) = (end, next_line);
            match converted {
                Ok(()) => {
                    self.reserve(&mut chunk, row.len())?;
                    chunk.write_row(&row, || self.token(end));
                }
                Err(e) => {
                    let raw = self.raw(start, end)?;
                    self.bad((line, start), e, &raw, Whole::of(&raw))?;
                }
            }
        }
        let end = self.position;
        if let Some(m) = chunk.take(|| self.token(end)) {
            self.send(m)?;
        }
        Ok(long)
    }

    /// `--follow`: whether the record in `start..end`, which reaches the end of the data, is
    /// whole (it ends in a line break outside quotes) rather than still being written.
    fn record_complete(&self, o: &CsvOptions, start: u64, end: u64) -> Result<bool> {
        let raw = self.raw(start, end)?;
        Ok(raw.last() == Some(&b'\n') && o.quotes_closed(&raw))
    }

    /// The file's bytes `start..end` (a record, at most about [`MAX_RECORD_BYTES`]), read
    /// without moving the file's position (the CSV reader reads on from it).
    fn raw(&self, start: u64, end: u64) -> Result<Vec<u8>> {
        let len = usize::try_from(end - start)?;
        let mut raw = vec![0u8; len];
        #[cfg(unix)]
        std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut raw, start)?;
        #[cfg(windows)]
        {
            let mut at = 0;
            while at < len {
                let n = std::os::windows::fs::FileExt::seek_read(
                    &self.file,
                    &mut raw[at..],
                    start + at as u64,
                )?;
                if n == 0 {
                    bail!("{} ended while a record was read", shown(&self.path));
                }
                at += n;
            }
        }
        Ok(raw)
    }
}

/// Why a record past [`MAX_RECORD_BYTES`] is a bad record.
fn too_long(len: u64) -> String {
    format!(
        "a record of {len} bytes, longer than the limit of {MAX_RECORD_BYTES} bytes (Snowflake's \
         request size): it was not loaded; split it, or load such values another way"
    )
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

/// Line breaks in the file's bytes `start..end`.
fn count_lines(file: &mut File, start: u64, end: u64) -> Result<u64> {
    if end <= start {
        return Ok(0);
    }
    file.seek(SeekFrom::Start(start))?;
    let mut input = BufReader::with_capacity(256 * 1024, file.try_clone()?.take(end - start));
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
