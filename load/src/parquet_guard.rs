//! What a Parquet file claims, checked before the parquet crate builds anything from it
//! (issue 81, items 5 and 6). A few KB of Parquet can claim gigabytes: a dictionary value
//! repeated over a million rows, a zstd page that inflates a thousandfold, tens of thousands
//! of columns, a schema nested hundreds deep (the parquet crate builds its schema tree, its
//! Arrow schema and its readers recursively, one stack frame per level).
//!
//! - [`check_footer`]: the footer's schema, read with our own bounded Thrift reader
//!   (`thrift_compact.rs`) before parquet parses it: at most [`MAX_FOOTER_BYTES`] of
//!   footer, [`MAX_DEPTH`] levels of nesting and [`MAX_COLUMNS`] leaf columns, else the
//!   file is refused.
//! - [`plan`]: for one row group, every page header (the decoded size each page claims) and
//!   each string dictionary's longest value: a page past [`Limits::page`], pages held at once
//!   (each column's largest page and its dictionary) past [`Limits::pages`] or a row that may
//!   decode past [`Limits::row`] refuse the row group, naming it; otherwise the rows per batch
//!   that keep a batch's decoded size near [`Limits::batch`]. A list column counts its
//!   row group's average per row there; the rows whose values alone take more than the
//!   column's share of the row cap are found from the repetition levels
//!   (`parquet_lists.rs`) and listed in the plan, to be read around. GZIP and LZ4 pages, which the
//!   parquet crate inflates to their end whatever the header claims, are inflated once into
//!   a sink first (at most their claim + 1 bytes) and refused past the claim.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use parquet::basic::{Compression, Encoding, Type};
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use parquet::file::serialized_reader::SerializedPageReader;

use crate::parquet_lists::{heavy_rows, Heavy};
use crate::thrift_compact::{Kind, Reader};

/// How deep a schema may nest (the root's children are level 1). The parquet crate recurses
/// once per level while it parses the schema, converts it to Arrow and builds the readers, on
/// the 2 MiB stack of a blocking thread: 400 levels overflowed it. 64 is the depth parquet's
/// own Thrift reader skips to, and half `serde_json`'s recursion limit (128), which every
/// row's JSON goes through.
pub(crate) const MAX_DEPTH: usize = 64;

/// How many leaf columns a file may have: the emulator's (SQLite's) 2,000 columns of a table.
/// Each leaf gets its own reader, buffers and page; 50,000 took 1.7 GB.
pub(crate) const MAX_COLUMNS: usize = 2_000;

/// How large the footer may be (its schema and every row group's column metadata): parquet
/// reads it whole and builds several times its size of metadata.
pub(crate) const MAX_FOOTER_BYTES: u64 = 16 << 20;

/// Most rows in one batch, whatever their size.
const MAX_BATCH_ROWS: usize = 65_536;

/// Refuses `file` (at `path`) when its footer claims a schema past [`MAX_DEPTH`] or
/// [`MAX_COLUMNS`], or is past [`MAX_FOOTER_BYTES`]. A file that is not Parquet at all
/// passes: the parquet crate names what is wrong with it.
///
/// # Errors
/// Naming the file, the limit and the fix; or when the file cannot be read.
pub(crate) fn check_footer(file: &File, path: &Path) -> Result<()> {
    let size = file.metadata()?.len();
    if size < 12 {
        return Ok(());
    }
    let mut f = file;
    f.seek(SeekFrom::End(-8))?;
    let mut tail = [0u8; 8];
    f.read_exact(&mut tail)?;
    let footer = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if &tail[4..] != b"PAR1" || footer + 8 > size {
        return Ok(());
    }
    if footer > MAX_FOOTER_BYTES {
        bail!(
            "{}: the Parquet footer claims {footer} bytes, more than the {MAX_FOOTER_BYTES} \
             snowpipe load reads: write the file with fewer row groups or columns",
            path.display()
        );
    }
    f.seek(SeekFrom::Start(size - 8 - footer))?;
    let mut r = Reader::new(BufReader::new(f.take(footer)));
    let shape = schema_shape(&mut r)
        .with_context(|| format!("{}: cannot read the Parquet footer", path.display()))?;
    f.seek(SeekFrom::Start(0))?;
    if shape.depth > MAX_DEPTH {
        bail!(
            "{}: the Parquet schema is nested {} levels deep, more than the {MAX_DEPTH} \
             snowpipe load reads (the parquet reader recurses once per level): flatten the \
             schema, or write its deep parts as JSON text",
            path.display(),
            shape.depth
        );
    }
    if shape.leaves > MAX_COLUMNS {
        bail!(
            "{}: the Parquet file has {} columns, more than the {MAX_COLUMNS} snowpipe load \
             reads (a table holds at most {MAX_COLUMNS}): split the file by columns",
            path.display(),
            shape.leaves
        );
    }
    Ok(())
}

/// A schema's deepest level and leaf count.
#[derive(Debug, Default, PartialEq, Eq)]
struct Shape {
    depth: usize,
    leaves: usize,
}

/// Reads `FileMetaData` up to its schema (field 2: the schema tree flattened depth first,
/// each element with its `num_children`, field 5) and measures it without recursion (the
/// footer is bounded, so the whole schema is measured: the errors give the real figures).
fn schema_shape<R: Read>(r: &mut Reader<R>) -> std::io::Result<Shape> {
    let mut id = 0;
    while let Some(kind) = r.field(&mut id)? {
        if id != 2 || kind != Kind::List {
            r.skip(kind)?;
            continue;
        }
        let (element, len) = r.list()?;
        let mut shape = Shape::default();
        // Children still to come of each open group.
        let mut open: Vec<i64> = Vec::new();
        for _ in 0..len {
            if element != Kind::Struct {
                r.skip(element)?;
                continue;
            }
            let children = schema_element_children(r)?;
            while open.last() == Some(&0) {
                open.pop();
            }
            let depth = open.len();
            if let Some(left) = open.last_mut() {
                *left -= 1;
            }
            shape.depth = shape.depth.max(depth);
            if children > 0 {
                open.push(children);
            } else if depth > 0 {
                shape.leaves += 1;
            }
        }
        return Ok(shape);
    }
    Ok(Shape::default())
}

/// A `SchemaElement`'s `num_children` (0 when absent: a leaf).
fn schema_element_children<R: Read>(r: &mut Reader<R>) -> std::io::Result<i64> {
    let mut id = 0;
    let mut children = 0;
    while let Some(kind) = r.field(&mut id)? {
        if id == 5 && kind == Kind::Int {
            children = r.int()?;
        } else {
            r.skip(kind)?;
        }
    }
    Ok(children)
}

/// Decode limits from the client's memory budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The decoded pages a row group's readers hold at once: a quarter of the budget (a
    /// batch may also hold up to two pages' worth of each column's uneven values).
    pub pages: u64,
    /// One page's decoded bytes: an eighth of the budget.
    pub page: u64,
    /// What one row may decode to: an eighth of the budget.
    pub row: u64,
    /// What a batch should decode to.
    pub batch: u64,
}

impl Limits {
    /// The limits of a client whose memory budget is `budget` bytes.
    pub(crate) fn of_budget(budget: usize) -> Self {
        let budget = budget as u64;
        Self {
            pages: budget / 4,
            page: budget / 8,
            row: budget / 8,
            batch: crate::chunk::CHUNK_BYTES as u64,
        }
    }
}

/// How to read a row group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Rows per batch.
    pub batch_rows: usize,
    /// What a row may decode to (an upper bound for flat columns).
    pub row_bytes: u64,
    /// The decoded pages its readers hold at once (each column's largest and dictionary).
    pub held: u64,
    /// The rows whose list values alone would decode past the row cap, in row order
    /// (`parquet_lists.rs`): read around, each a dead letter.
    pub heavy: Vec<Heavy>,
    /// The row cap they are past.
    pub row_cap: u64,
}

/// What one column chunk's page headers claim.
#[derive(Debug, Default)]
struct Pages {
    dictionary: u64,
    largest: u64,
    /// The most decoded bytes per value of a data page (its size over its values).
    per_value: u64,
}

/// Plans row group `index` of `file` (`meta` its metadata) within `limits`: every page
/// header is read, and each string dictionary decoded once, before any reader is built.
///
/// # Errors
/// Why the row group cannot be read within the limits (or its pages are damaged), naming
/// the row group, the column, the bytes claimed, the limit and the fix.
pub(crate) fn plan(
    file: &File,
    meta: &ParquetMetaData,
    index: usize,
    limits: &Limits,
) -> Result<Plan> {
    let group = meta.row_group(index);
    let rows = u64::try_from(group.num_rows()).unwrap_or(0).max(1);
    let (mut held, mut row) = (0u64, 0u64);
    // The flat columns' part of a row, and each list column's value bytes.
    let (mut flat, mut lists) = (0u64, Vec::new());
    for (j, chunk) in group.columns().iter().enumerate() {
        let column = meta.file_metadata().schema_descr().column(j);
        let name = column.path().string();
        let pages = walk_pages(file, chunk, limits).with_context(|| format!("column {name}"))?;
        held = held.saturating_add(pages.largest.saturating_add(pages.dictionary));
        let width = match chunk.column_type() {
            Type::BOOLEAN => 1,
            Type::INT32 | Type::FLOAT => 4,
            Type::INT64 | Type::DOUBLE => 8,
            Type::INT96 => 12,
            Type::FIXED_LEN_BYTE_ARRAY => u64::try_from(column.type_length()).unwrap_or(0),
            Type::BYTE_ARRAY => {
                let mut value = 0;
                if pages.dictionary > 0 {
                    value = longest_dictionary_value(file, chunk, rows)
                        .with_context(|| format!("column {name}"))?;
                }
                if chunk.encodings().any(|e| e == Encoding::DELTA_BYTE_ARRAY) {
                    // Each value may repeat its predecessor's prefix: bounded by its page.
                    value = value.max(pages.largest);
                }
                value
            }
        };
        let values = u64::try_from(chunk.num_values()).unwrap_or(0);
        let per_row = if column.max_rep_level() > 0 {
            values.div_ceil(rows).max(1)
        } else {
            1
        };
        // A batch's values decode to at most its rows times the most bytes a value takes in
        // any page (a dictionary's longest entry; a plain page's size over its values),
        // plus the two pages it starts and ends in (a plain page's values may be uneven):
        // those are within `held`.
        let value = if chunk.column_type() == Type::BYTE_ARRAY {
            width.max(pages.per_value)
        } else {
            width
        };
        // Saturating: the footer's counts are the writer's word.
        let bytes = per_row.saturating_mul(value.saturating_add(8));
        row = row.saturating_add(bytes.saturating_add(name.len() as u64 + 4));
        if column.max_rep_level() > 0 {
            lists.push((j, value));
            flat = flat.saturating_add(name.len() as u64 + 4);
        } else {
            flat = flat.saturating_add(bytes.saturating_add(name.len() as u64 + 4));
        }
    }
    if held > limits.pages {
        bail!(
            "its readers would hold {held} bytes of decoded pages at once (each column's \
             largest page and dictionary), more than the {} a quarter of the client's memory \
             budget allows: raise memory_budget_bytes, or write smaller pages or fewer columns",
            limits.pages
        );
    }
    if row > limits.row {
        bail!(
            "a row may decode to {row} bytes, more than the {} an eighth of the client's \
             memory budget allows: raise memory_budget_bytes, or write smaller values",
            limits.row
        );
    }
    // The average is not the longest row: each list column's share of the cap, per row.
    let heavy = if lists.is_empty() {
        Vec::new()
    } else {
        let share = limits.row.saturating_sub(flat) / lists.len() as u64;
        let value_bytes = |j: usize| lists.iter().find(|l| l.0 == j).map_or(0, |l| l.1);
        heavy_rows(file, meta, index, share, &value_bytes)?
    };
    let batch_rows = usize::try_from(limits.batch / row.max(1)).unwrap_or(MAX_BATCH_ROWS);
    Ok(Plan {
        batch_rows: batch_rows.clamp(1, MAX_BATCH_ROWS),
        row_bytes: row,
        held,
        heavy,
        row_cap: limits.row,
    })
}

/// Reads every page header of `chunk` (none of its pages), refusing a page past
/// `limits.page`.
fn walk_pages(file: &File, chunk: &ColumnChunkMetaData, limits: &Limits) -> Result<Pages> {
    let start = chunk
        .dictionary_page_offset()
        .unwrap_or_else(|| chunk.data_page_offset());
    let size = file.metadata()?.len();
    let (start, len) = match (u64::try_from(start), u64::try_from(chunk.compressed_size())) {
        (Ok(s), Ok(l)) if s.checked_add(l).is_some_and(|e| e <= size) => (s, l),
        _ => bail!("the column chunk lies outside the file"),
    };
    let mut f = file;
    f.seek(SeekFrom::Start(start))?;
    let mut input = BufReader::with_capacity(16 << 10, f);
    let mut pages = Pages::default();
    let mut at = 0u64;
    while at < len {
        let mut r = Reader::new(&mut input);
        let header = page_header(&mut r).context("a damaged page header")?;
        at += r.read + header.stored;
        let Header {
            kind,
            decoded,
            stored,
            values,
            ..
        } = header;
        if decoded > limits.page {
            bail!(
                "a page claims {decoded} bytes decoded ({stored} stored), more than the {} \
                 an eighth of the client's memory budget allows: raise memory_budget_bytes, \
                 or write smaller pages",
                limits.page
            );
        }
        match kind {
            2 => pages.dictionary = pages.dictionary.max(decoded),
            0 | 3 => {
                pages.largest = pages.largest.max(decoded);
                pages.per_value = pages.per_value.max(decoded / values.max(1));
            }
            _ => {}
        }
        if unbounded_codec(chunk.compression()) && matches!(kind, 0 | 2 | 3) {
            // Read through the page, counting what it inflates to (at most its claim + 1).
            let mut body = (&mut input).take(stored);
            std::io::copy(&mut (&mut body).take(header.levels), &mut std::io::sink())?;
            let claim = decoded.saturating_sub(header.levels);
            let past = header.compressed && inflates_past(chunk.compression(), &mut body, claim);
            std::io::copy(&mut body, &mut std::io::sink())?;
            if past {
                let codec = if chunk.compression() == Compression::LZ4 {
                    "LZ4"
                } else {
                    "GZIP"
                };
                bail!(
                    "a {codec} page claims {decoded} bytes decoded ({stored} stored) but \
                     inflates to more: the parquet reader would inflate it whole, unbounded \
                     (a damaged or hostile page header)"
                );
            }
        } else {
            input.seek_relative(i64::try_from(stored)?)?;
        }
    }
    Ok(pages)
}

/// Whether the parquet crate inflates `codec` without the page header's decoded size (GZIP
/// and the LZ4 frame codec read to the end of their stream; Snappy, LZ4_RAW and ZSTD stop
/// at the size the header claims).
fn unbounded_codec(codec: Compression) -> bool {
    matches!(codec, Compression::GZIP(_) | Compression::LZ4)
}

/// Whether `body`, compressed with `codec`, inflates to more than `claim` bytes (read
/// through a sink, at most `claim + 1` bytes of output). A stream that does not decode is
/// left to the parquet reader to report.
fn inflates_past(codec: Compression, body: &mut impl Read, claim: u64) -> bool {
    let limit = claim.saturating_add(1);
    let sink = &mut std::io::sink();
    let inflated = match codec {
        Compression::GZIP(_) => std::io::copy(
            &mut flate2::read::MultiGzDecoder::new(body).take(limit),
            sink,
        ),
        Compression::LZ4 => std::io::copy(
            &mut lz4_flex::frame::FrameDecoder::new(body).take(limit),
            sink,
        ),
        _ => return false,
    };
    inflated.is_ok_and(|n| n > claim)
}

/// What a page header claims.
#[derive(Debug, Default, PartialEq, Eq)]
struct Header {
    /// `PageType`: 0 data, 2 dictionary, 3 data v2.
    kind: i64,
    /// `uncompressed_page_size`.
    decoded: u64,
    /// `compressed_page_size`.
    stored: u64,
    /// A data page's `num_values` (v1 and v2 headers' field 1), 0 when absent.
    values: u64,
    /// A v2 data page's uncompressed level bytes before its values (fields 5 and 6).
    levels: u64,
    /// Whether the values are compressed (a v2 page's field 7, default true).
    compressed: bool,
}

/// Reads a `PageHeader`.
fn page_header<R: Read>(r: &mut Reader<R>) -> Result<Header> {
    let (mut id, mut kind, mut decoded, mut stored) = (0, -1, None, None);
    let mut data = DataPage {
        values: 0,
        levels: 0,
        compressed: true,
    };
    while let Some(k) = r.field(&mut id)? {
        match (id, k) {
            (1, Kind::Int) => kind = r.int()?,
            (2, Kind::Int) => decoded = Some(r.int()?),
            (3, Kind::Int) => stored = Some(r.int()?),
            (5 | 8, Kind::Struct) => data = data_page(r)?,
            _ => r.skip(k)?,
        }
    }
    match (decoded.map(u64::try_from), stored.map(u64::try_from)) {
        (Some(Ok(decoded)), Some(Ok(stored))) => Ok(Header {
            kind,
            decoded,
            stored,
            values: data.values,
            levels: data.levels,
            compressed: data.compressed,
        }),
        _ => bail!("page sizes missing or negative"),
    }
}

/// What a `DataPageHeader` or `DataPageHeaderV2` says of its values.
struct DataPage {
    values: u64,
    levels: u64,
    compressed: bool,
}

/// Reads a `DataPageHeader` (field 1: `num_values`) or `DataPageHeaderV2` (also 5 and 6:
/// the level bytes, 7: `is_compressed`; a v1 header's 5 is a struct, skipped).
fn data_page<R: Read>(r: &mut Reader<R>) -> Result<DataPage> {
    let mut id = 0;
    let mut page = DataPage {
        values: 0,
        levels: 0,
        compressed: true,
    };
    while let Some(k) = r.field(&mut id)? {
        match (id, k) {
            (1, Kind::Int) => page.values = u64::try_from(r.int()?).unwrap_or(0),
            (5 | 6, Kind::Int) => page.levels += u64::try_from(r.int()?).unwrap_or(0),
            (7, Kind::Bool(Some(b))) => page.compressed = b,
            _ => r.skip(k)?,
        }
    }
    Ok(page)
}

/// The longest value of `chunk`'s dictionary (plain-encoded byte arrays: a 4-byte length
/// before each), its page already checked against the page limit.
fn longest_dictionary_value(file: &File, chunk: &ColumnChunkMetaData, rows: u64) -> Result<u64> {
    let mut pages =
        SerializedPageReader::new(Arc::new(file.try_clone()?), chunk, rows as usize, None)?;
    let Some(Page::DictionaryPage { buf, .. }) = pages.get_next_page()? else {
        return Ok(0);
    };
    let (mut at, mut longest) = (0usize, 0u64);
    while at + 4 <= buf.len() {
        let len = u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        longest = longest.max(u64::from(len));
        at = at.saturating_add(4).saturating_add(len as usize);
    }
    Ok(longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `FileMetaData` of version 1 and `elements` (each its `num_children`).
    fn footer(elements: &[i64]) -> Vec<u8> {
        let mut b = vec![0x15, 0x02]; // field 1: i32 1
        b.push(0x19); // field 2: list
        b.push(0xfc); // of structs, long length
        let mut n = elements.len() as u64;
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                b.push(byte);
                break;
            }
            b.push(byte | 0x80);
        }
        for &c in elements {
            if c > 0 {
                b.extend([0x55, (c << 1) as u8]); // field 5: i32 children
            }
            b.push(0);
        }
        b.push(0);
        b
    }

    fn shape(elements: &[i64]) -> Shape {
        schema_shape(&mut Reader::new(&footer(elements)[..])).unwrap()
    }

    #[test]
    fn the_schema_is_measured_from_the_flattened_tree() {
        // root { a; b { c; d { e } }; f }
        assert_eq!(
            shape(&[3, 0, 2, 0, 1, 0, 0]),
            Shape {
                depth: 3,
                leaves: 4
            }
        );
        // A chain 100 deep.
        let mut chain = vec![1; 100];
        chain.push(0);
        assert_eq!(
            shape(&chain),
            Shape {
                depth: 100,
                leaves: 1
            }
        );
    }
}
