//! Standard input (`-`): NDJSON lines, AT-LEAST-ONCE. A rerun cannot tell what it was given
//! before, so every run loads all of its input; the tokens (`stdin:<run>:<position>`) only
//! let this run wait for its own commit.

use std::io::BufRead as _;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use tokio::sync::mpsc::Sender;

use crate::chunk::{BadRecord, ChunkBuilder, DeadLetter, Msg};
use crate::cli::{Format, OnError};
use crate::input::{Input, Settings};
use crate::text::{check_object, trim_line, TextReport};

/// Reads standard input to its end.
///
/// # Errors
/// When it is not NDJSON, cannot be read, a bad record comes under `--on-error abort`, or the
/// loader stopped listening.
pub fn read(
    input: &Input,
    settings: &Settings,
    tx: &Sender<Msg>,
    report: &mut TextReport,
) -> Result<()> {
    if input.format != Format::Ndjson {
        bail!("standard input is read as NDJSON only: save CSV to a file and load that");
    }
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let token = |p: u64| format!("stdin:{run}:{p}");
    let send = |m: Msg| {
        tx.blocking_send(m)
            .map_err(|_| anyhow!("the loader stopped"))
    };
    let mut dead = DeadLetter::new(Path::new("stdin"));
    let mut stdin = std::io::stdin().lock();
    let (mut position, mut line_no) = (0u64, 1u64);
    let mut chunk = ChunkBuilder::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = stdin.read_until(b'\n', &mut line)? as u64;
        if n == 0 {
            break;
        }
        let start = position;
        let row = trim_line(&line);
        let check = check_object(row);
        if check.is_ok() && chunk.full_for(row.len()) {
            if let Some(m) = chunk.take(|| token(start)) {
                send(m)?;
            }
        }
        chunk.consumed(n);
        position += n;
        match check {
            Ok(true) => {
                chunk.buf().extend_from_slice(row);
                chunk.row_written(|| token(position));
            }
            Ok(false) => {}
            Err(error) if settings.on_error == OnError::Abort => {
                bail!("bad record on standard input at line {line_no}: {error}")
            }
            Err(error) => dead.write(&BadRecord {
                line: line_no,
                offset: start,
                error,
                text: row,
            })?,
        }
        line_no += 1;
        report.end_position = position;
        report.bad_records = dead.count;
    }
    if let Some(m) = chunk.take(|| token(position)) {
        send(m)?;
    }
    Ok(())
}
