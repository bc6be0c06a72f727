//! Ranges: a large input split into parts that load side by side, each on a channel of its
//! own (issue 83).
//!
//! **Where the cuts fall.** A grid of `step` bytes ([`RANGE_BYTES`], 64 MiB: about 3.4 s of a
//! channel at the service's 20 MB/s) is laid over the file; cut `k` is the end of the first
//! record that ends at or after `k × step`:
//! - NDJSON: the byte after the first line break at or after `k × step - 1` (a few reads at
//!   each grid point; a line that spans several grid points makes one cut, not several);
//! - CSV: records are found by one pass over the whole file with `csv-core`, the same parser
//!   (and the same `--csv-*` options) the reader then uses, so a cut is always where that
//!   reader ends a record: never inside a quoted field, whatever line breaks, doubled quotes
//!   or escapes the fields hold. Looking near a grid point only cannot prove a line break is
//!   outside quotes (a quoted field may hold any text, lines that look like records too), so
//!   the file is parsed once, at the parser's speed, without building records. The header
//!   and the `--csv-skip-header` records are never cut: range 0 holds them;
//! - Parquet: by row groups, grouped until their uncompressed size (the footer's) reaches
//!   `step / 8` ([`PARQUET_SHRINK`]); a row group larger than that is split into equal row
//!   spans. What a channel's pace counts is the rows as sent (JSON text), several times
//!   their binary size in Parquet: a number of 4 or 8 bytes is up to 20 digits, a timestamp
//!   of 8 bytes 30 characters, and every value is named by its column's key; 1 M mixed rows
//!   are about 85 MB uncompressed in Parquet and 500 MB sent.
//!
//! The cuts depend only on the file's content and size (never on `--channels`), so a rerun
//! finds the same ranges; a file that grew keeps its earlier cuts (NDJSON, CSV).
//!
//! **Lanes, not a channel per range.** Range `k` loads on lane `k mod` [`LANES`]: the file is
//! a caller-routed lane stream of the SDK (`snowpipe_streaming::LaneStream`, its base the
//! file's one-range channel, `LOAD_<hash>`; lane `j`: `LOAD_<hash>_<j>`), each lane opened on
//! its own (`Pipe::open_lane`) as a `--channels` slot frees up. A lane loads its ranges in
//! file order, so its committed token's position (absolute: a byte offset or a row count of
//! the whole file) says which of its ranges are done (those ending at or before it), where
//! the one it is in resumes, and that the rest have not started. A file leaves at most 16
//! channels behind, however large; their committed tokens are what a rerun resumes from, so
//! they are closed, not dropped.
//!
//! **Caps.** At most [`MAX_RANGES`] ranges a file: past `MAX_RANGES × step` bytes the step
//! doubles until the ranges fit (files over 4 TiB; such a file's cuts then move when it grows
//! past the next doubling: load it whole again or keep it under that size).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use parquet::file::metadata::ParquetMetaData;

use crate::cli::Format;
use crate::csv_rows::CsvOptions;

/// The grid step: bytes of a range (text) or uncompressed bytes (Parquet).
pub(crate) const RANGE_BYTES: u64 = 64 << 20;

/// How much smaller a Parquet range's uncompressed size is than a text range's bytes (about
/// what the rows grow by as JSON).
pub(crate) const PARQUET_SHRINK: u64 = 8;

/// Channels of one file at most; range `k` loads on lane `k % LANES`.
pub(crate) const LANES: u64 = 16;

/// Ranges of one file at most.
pub(crate) const MAX_RANGES: u64 = 65_536;

/// One range: positions `start..end` (bytes of a text file, rows of a Parquet file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// Its grid index (text: the `k` of the cut it starts at; Parquet: its number).
    pub index: u64,
    /// Its first position.
    pub start: u64,
    /// The position after it.
    pub end: u64,
}

/// The grid step for `total` bytes: `step`, doubled until at most [`MAX_RANGES`] ranges.
fn grid(total: u64, step: u64) -> u64 {
    let mut s = step.max(1);
    while total / s >= MAX_RANGES {
        s = s.saturating_mul(2);
    }
    s
}

/// Spans from the cuts (increasing, each in `1..size`): `(index, cut)`.
fn spans(cuts: &[(u64, u64)], size: u64) -> Vec<Span> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let (mut index, mut start) = (0, 0);
    for &(k, cut) in cuts {
        out.push(Span {
            index,
            start,
            end: cut,
        });
        (index, start) = (k, cut);
    }
    out.push(Span {
        index,
        start,
        end: size,
    });
    out
}

/// The ranges of `path` (a file, or a Parquet object's spool file holding its footer).
///
/// # Errors
/// When the file cannot be opened or read.
pub(crate) fn of_path(
    path: &Path,
    format: Format,
    options: Option<&CsvOptions>,
    step: u64,
) -> Result<Vec<Span>> {
    let mut file = crate::files::open_input(path)?;
    let size = file.metadata()?.len();
    match (format, options) {
        (Format::Csv, Some(o)) => csv(&mut file, size, step, o),
        (Format::Parquet, _) => {
            // What parquet would parse is measured first; a file refused there is loaded
            // whole, and its reader says why.
            if crate::parquet_guard::check_footer(&file, path).is_err() {
                return Ok(Vec::new());
            }
            let meta =
                parquet::arrow::arrow_reader::ArrowReaderMetadata::load(&file, Default::default());
            // A file the reader cannot open is loaded whole: its reader says what is wrong.
            Ok(meta.map_or_else(|_| Vec::new(), |m| parquet(m.metadata(), step)))
        }
        _ => ndjson(&mut file, size, step),
    }
}

/// The ranges of an NDJSON file of `size` bytes.
///
/// # Errors
/// When the file cannot be read.
pub(crate) fn ndjson(file: &mut File, size: u64, step: u64) -> Result<Vec<Span>> {
    ndjson_by(size, step, |from| line_end_after(file, from, size))
}

/// The ranges of NDJSON bytes of `size`, `line_end_after(from)` finding the position after
/// the first line break at or after `from` (a file's reads, or an object's ranged GETs): the
/// same cuts wherever the bytes are.
///
/// # Errors
/// When `line_end_after` fails.
pub(crate) fn ndjson_by(
    size: u64,
    step: u64,
    mut line_end_after: impl FnMut(u64) -> Result<Option<u64>>,
) -> Result<Vec<Span>> {
    let step = grid(size, step);
    let mut cuts = Vec::new();
    let mut k = 1u64;
    while k.saturating_mul(step) < size {
        let Some(cut) = line_end_after(k * step - 1)? else {
            break;
        };
        if cut >= size {
            break;
        }
        cuts.push((k, cut));
        // Grid points up to the cut would find the same line break.
        k = (cut / step + 1).max(k + 1);
    }
    Ok(spans(&cuts, size))
}

/// The position after the first line break at or after `from`, if one comes before `size`.
fn line_end_after(file: &mut File, from: u64, size: u64) -> Result<Option<u64>> {
    file.seek(SeekFrom::Start(from))?;
    let mut input = BufReader::with_capacity(64 * 1024, file.by_ref().take(size - from));
    let mut at = from;
    loop {
        let buf = input.fill_buf().context("cannot read the file to cut it")?;
        if buf.is_empty() {
            return Ok(None);
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            return Ok(Some(at + i as u64 + 1));
        }
        let n = buf.len();
        at += n as u64;
        input.consume(n);
    }
}

/// The ranges of a CSV file of `size` bytes read with `options`: one `csv-core` pass.
///
/// # Errors
/// When the file cannot be read.
pub(crate) fn csv(
    file: &mut File,
    size: u64,
    step: u64,
    options: &CsvOptions,
) -> Result<Vec<Span>> {
    use csv_core::ReadRecordResult as R;
    let step = grid(size, step);
    let uncut = options.skip + u64::from(options.header);
    let mut rdr = options.core_reader();
    file.seek(SeekFrom::Start(0))?;
    let mut input = BufReader::with_capacity(1 << 20, file.by_ref().take(size));
    let (mut out, mut ends) = (vec![0u8; 64 * 1024], vec![0usize; 1024]);
    let (mut pos, mut records, mut next) = (0u64, 0u64, step);
    let mut cuts = Vec::new();
    loop {
        let buf = input.fill_buf().context("cannot read the file to cut it")?;
        let (result, n, _, _) = rdr.read_record(buf, &mut out, &mut ends);
        input.consume(n);
        pos += n as u64;
        match result {
            R::Record => {
                records += 1;
                if records > uncut && pos >= next && pos < size {
                    cuts.push((next / step, pos));
                    next = (pos / step + 1) * step;
                }
            }
            R::End => break,
            R::InputEmpty | R::OutputFull | R::OutputEndsFull => {}
        }
    }
    Ok(spans(&cuts, size))
}

/// The ranges of a Parquet file, in rows.
pub(crate) fn parquet(meta: &ParquetMetaData, step: u64) -> Vec<Span> {
    let groups: Vec<(u64, u64)> = meta
        .row_groups()
        .iter()
        .map(|g| {
            let rows = u64::try_from(g.num_rows()).unwrap_or(0);
            (rows, u64::try_from(g.total_byte_size()).unwrap_or(0))
        })
        .collect();
    let total_bytes = groups.iter().fold(0u64, |a, g| a.saturating_add(g.1));
    let total_rows = groups.iter().fold(0u64, |a, g| a.saturating_add(g.0));
    let step = grid(total_bytes, (step / PARQUET_SHRINK).max(1));
    let mut cuts = Vec::new();
    let (mut row, mut bytes) = (0u64, 0u64);
    for (rows, size) in groups {
        let end = row.saturating_add(rows);
        if size > step && rows > 1 {
            if bytes > 0 && row > 0 {
                cuts.push(row);
            }
            let pieces = size.div_ceil(step).min(rows);
            for p in 1..pieces {
                cuts.push(row + (u128::from(rows) * u128::from(p) / u128::from(pieces)) as u64);
            }
            if end < total_rows {
                cuts.push(end);
            }
            bytes = 0;
        } else {
            bytes = bytes.saturating_add(size);
            if bytes >= step && end < total_rows {
                cuts.push(end);
                bytes = 0;
            }
        }
        row = end;
    }
    cuts.dedup();
    let numbered: Vec<(u64, u64)> = cuts
        .into_iter()
        .filter(|&c| c > 0 && c < total_rows)
        .enumerate()
        .map(|(i, c)| (i as u64 + 1, c))
        .collect();
    spans(&numbered, total_rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn file_of(data: &[u8]) -> File {
        let mut f = tempfile_in_target();
        f.write_all(data).unwrap();
        f
    }

    /// A scratch file (removed when dropped on Unix: unlinked at once).
    fn tempfile_in_target() -> File {
        let dir = std::env::temp_dir();
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = dir.join(format!("ranges-test-{}-{n}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    fn csv_options() -> CsvOptions {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            csv: crate::cli::CsvArgs,
        }
        CsvOptions::new(&T::parse_from(["t"]).csv).unwrap()
    }

    fn covers(spans: &[Span], size: u64) {
        assert_eq!(spans[0].start, 0);
        assert_eq!(spans.last().unwrap().end, size);
        for w in spans.windows(2) {
            assert_eq!(w[0].end, w[1].start);
            assert!(w[0].index < w[1].index && w[0].start < w[0].end);
        }
    }

    #[test]
    fn ndjson_cuts_fall_after_line_breaks_and_keep_when_the_file_grows() {
        let mut data = Vec::new();
        for i in 0..1000 {
            data.extend_from_slice(
                format!("{{\"id\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 37)).as_bytes(),
            );
        }
        let size = data.len() as u64;
        let spans = ndjson(&mut file_of(&data), size, 1000).unwrap();
        covers(&spans, size);
        assert!(spans.len() > 20, "{}", spans.len());
        for s in &spans[1..] {
            assert_eq!(data[s.start as usize - 1], b'\n');
        }
        let mut grown = data.clone();
        grown.extend_from_slice(&data);
        let more = ndjson(&mut file_of(&grown), grown.len() as u64, 1000).unwrap();
        assert_eq!(&more[..spans.len() - 1], &spans[..spans.len() - 1]);
    }

    #[test]
    fn cuts_found_through_any_reader_are_the_files_cuts() {
        // An object's cuts come from ranged GETs (`object/ranges.rs`): any finder of the line
        // end after a position gives the same ranges as the file's reads.
        let data = ndjson_bytes();
        let size = data.len() as u64;
        let from_file = ndjson(&mut file_of(&data), size, 700).unwrap();
        let from_bytes = ndjson_by(size, 700, |from| {
            let rest = &data[from as usize..];
            Ok(rest
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| from + i as u64 + 1))
        })
        .unwrap();
        assert_eq!(from_file, from_bytes);
        assert!(from_file.len() > 20, "{}", from_file.len());
    }

    fn ndjson_bytes() -> Vec<u8> {
        let mut data = Vec::new();
        for i in 0..1000 {
            data.extend_from_slice(
                format!("{{\"id\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 37)).as_bytes(),
            );
        }
        data
    }

    #[test]
    fn a_line_over_several_grid_points_makes_one_cut() {
        let mut data = b"{\"a\":1}\n".to_vec();
        data.extend_from_slice(&[b'x'; 5000]);
        data.extend_from_slice(b"\n{\"a\":2}\n{\"a\":3}\n");
        let size = data.len() as u64;
        let spans = ndjson(&mut file_of(&data), size, 1000).unwrap();
        covers(&spans, size);
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert_eq!(spans[1].start, 5009);
    }

    #[test]
    fn csv_cuts_never_fall_inside_a_quoted_field() {
        // Every record's last field is quoted and holds line breaks and text that looks like
        // records, so a cut at a line break near a grid point would fall inside it.
        let mut data = b"ID,NOTE\n".to_vec();
        for i in 0..400 {
            data.extend_from_slice(format!("{i},\"a\n{i},\"\"b\"\"\n{i},c\"\n").as_bytes());
        }
        let size = data.len() as u64;
        let o = csv_options();
        let spans = csv(&mut file_of(&data), size, 500, &o).unwrap();
        covers(&spans, size);
        assert!(spans.len() > 10);
        let record = |s: &Span| {
            let text = &data[s.start as usize..];
            let line = text.split(|&b| b == b'\n').next().unwrap();
            String::from_utf8_lossy(line).into_owned()
        };
        for s in &spans[1..] {
            let first = record(s);
            assert!(
                first.ends_with(",\"a"),
                "a cut at {} starts {first:?}",
                s.start
            );
        }
    }

    #[test]
    fn the_csv_header_is_never_cut_from_range_zero() {
        let mut data = format!("{}\n", "H".repeat(3000)).into_bytes();
        data.extend_from_slice(b"1\n2\n");
        let size = data.len() as u64;
        let spans = csv(&mut file_of(&data), size, 1000, &csv_options()).unwrap();
        covers(&spans, size);
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert_eq!(
            spans[1].start, 3003,
            "the first cut is after the header and a record"
        );
    }

    #[test]
    fn lanes_name_channels_stably() {
        // The names every earlier release gave a file's lanes: what a rerun resumes from.
        let name = snowpipe_streaming::LaneStream::lane_name;
        assert_eq!(name("LOAD_AB", 0), "LOAD_AB");
        assert_eq!(name("LOAD_AB", 7), "LOAD_AB_7");
        assert_eq!(grid(10, 1), 1);
        assert_eq!(grid(MAX_RANGES * 4, 1), 8);
    }
}
