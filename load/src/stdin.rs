//! Standard input (`-`): NDJSON lines, AT-LEAST-ONCE. A rerun cannot tell what it was given
//! before, so every run loads all of its input; the tokens (`stdin:<run>:<position>`) only
//! let this run wait for its own commit. Lines are read in bounded memory (`record.rs`): an
//! endless line is a bad record, read past, and Ctrl-C stops the reading.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{anyhow, bail, Result};
use tokio::sync::mpsc::Sender;

use crate::chunk::{ChunkBuilder, Msg};
use crate::cli::{Format, OnError};
use crate::dead_letter::{BadRecord, DeadLetter};
use crate::input::{Input, Settings};
use crate::record::{check_object, trim_line, without_bom, Line, MAX_RECORD_BYTES};
use crate::text::TextReport;

/// Reads standard input to its end (or until `stop`).
///
/// # Errors
/// When it is not NDJSON, cannot be read, a bad record comes under `--on-error abort`, or the
/// loader stopped listening.
pub(crate) fn read(
    input: &Input,
    settings: &Settings,
    (tx, stop): (&Sender<Msg>, &AtomicBool),
    report: &mut TextReport,
) -> Result<()> {
    if input.format != Format::Ndjson {
        bail!("standard input is read as NDJSON only: save CSV to a file and load that");
    }
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let token = |p: u64| format!("stdin:{run}:{p}");
    let mut dead = DeadLetter::new(Path::new("stdin"));
    let send = |m: Msg, dead: &mut DeadLetter| {
        dead.flush()?;
        tx.blocking_send(m)
            .map_err(|_| anyhow!("the loader stopped"))
    };
    let mut stdin = std::io::stdin().lock();
    let (mut position, mut line_no) = (0u64, 1u64);
    let mut chunk = ChunkBuilder::default();
    let mut line = Line::default();
    loop {
        line.clear();
        let n = line.read_from(&mut stdin, MAX_RECORD_BYTES, stop)?;
        if n == 0 || stop.load(Ordering::Relaxed) {
            break;
        }
        let start = position;
        let row = trim_line(&line.bytes);
        let row = if start == 0 { without_bom(row) } else { row };
        let check = if line.is_long() {
            Err(format!(
                "a record of {n} bytes, longer than the limit of {MAX_RECORD_BYTES} bytes \
                 (Snowflake's request size): it was not loaded"
            ))
        } else {
            check_object(row)
        };
        if check.is_ok() && chunk.full_for(row.len()) {
            if let Some(m) = chunk.take(|| token(start)) {
                send(m, &mut dead)?;
            }
        }
        chunk.consumed(n);
        position += n;
        match check {
            Ok(true) => {
                chunk.write_row(row, || token(position));
            }
            Ok(false) => {}
            Err(error) if settings.on_error == OnError::Abort => {
                bail!("bad record on standard input at line {line_no}: {error}")
            }
            Err(error) => dead.write(&BadRecord {
                line: line_no,
                offset: start,
                error,
                text: &line.bytes,
                whole: Some(line.whole()),
                bytes: 0,
            })?,
        }
        line_no += 1;
        report.end_position = position;
        report.bad_records = dead.count;
    }
    if let Some(m) = chunk.take(|| token(position)) {
        send(m, &mut dead)?;
    }
    dead.flush()
}
