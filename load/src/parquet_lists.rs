//! The rows of a Parquet row group whose list values alone would decode past the row cap,
//! found from the repetition levels before any reader decodes a value (`docs/SECURITY.md`,
//! the Parquet rows).
//!
//! `parquet_guard::plan` bounds a row by the row group's average of each list column's values
//! (its values over its rows): one row holding most of them passes. [`heavy_rows`] reads each
//! repeated column's pages (each already checked against the page cap by the plan) and
//! decodes only their repetition levels (the RLE / bit-packed hybrid of the Parquet format):
//! a level 0 starts a row, so the levels between two zeros are one row's values of that
//! column. A row is heavy when one column's values take more than that column's share of the
//! row cap (the cap less the row's flat columns, over the repeated columns): every other row
//! of the group is within the cap. `parquet_rows.rs` reads around the heavy rows and makes
//! each a dead letter naming it and the cap.

use std::fs::File;
use std::sync::Arc;

use anyhow::{bail, Result};
use parquet::basic::Encoding;
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::serialized_reader::SerializedPageReader;

/// The most heavy rows of one row group read around; past them the row group is refused
/// whole (each is a reader built again).
pub(crate) const MAX_HEAVY_ROWS: usize = 100;

/// A row too large for the row cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Heavy {
    /// Its index in the row group.
    pub row: u64,
    /// The list column that holds too much.
    pub column: String,
    /// Its values of that column.
    pub values: u64,
    /// What they decode to (the plan's count: 8 bytes a value besides its own).
    pub bytes: u64,
}

/// Adds row `row` of column `name` to `heavy` when its `values` take more than `share` bytes.
fn note_heavy(
    heavy: &mut Vec<Heavy>,
    name: &str,
    row: u64,
    values: u64,
    per_value: u64,
    share: u64,
) {
    let bytes = values.saturating_mul(per_value);
    if bytes > share {
        heavy.push(Heavy {
            row,
            column: name.to_owned(),
            values,
            bytes,
        });
    }
}

/// The rows of row group `index` whose values of one repeated column take more than
/// `share` bytes, `value_bytes(j)` being what a value of leaf column `j` takes, in row
/// order.
///
/// # Errors
/// Pages that cannot be read, levels that are not the hybrid encoding, or more than
/// [`MAX_HEAVY_ROWS`] heavy rows (naming the limit).
pub(crate) fn heavy_rows(
    file: &File,
    meta: &ParquetMetaData,
    index: usize,
    share: u64,
    value_bytes: &dyn Fn(usize) -> u64,
) -> Result<Vec<Heavy>> {
    let group = meta.row_group(index);
    let rows = usize::try_from(group.num_rows()).unwrap_or(0);
    let mut heavy: Vec<Heavy> = Vec::new();
    for (j, chunk) in group.columns().iter().enumerate() {
        let column = meta.file_metadata().schema_descr().column(j);
        let max = column.max_rep_level();
        if max == 0 {
            continue;
        }
        let per_value = value_bytes(j).saturating_add(8);
        let name = column.path().string();
        let mut counter = RowCounter::default();
        let mut pages = SerializedPageReader::new(Arc::new(file.try_clone()?), chunk, rows, None)?;
        while let Some(page) = pages.get_next_page()? {
            let (levels, count) = match &page {
                Page::DataPage {
                    buf,
                    num_values,
                    rep_level_encoding,
                    ..
                } => {
                    if *rep_level_encoding != Encoding::RLE {
                        bail!("column {name}: repetition levels encoded {rep_level_encoding}, not RLE");
                    }
                    let len = buf
                        .get(..4)
                        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
                    (buf.get(4..4 + len).unwrap_or_default(), *num_values)
                }
                Page::DataPageV2 {
                    buf,
                    num_values,
                    rep_levels_byte_len,
                    ..
                } => (
                    buf.get(..*rep_levels_byte_len as usize).unwrap_or_default(),
                    *num_values,
                ),
                Page::DictionaryPage { .. } => continue,
            };
            let width = 16 - max.leading_zeros() as u8;
            decode_hybrid(levels, width, count as usize, |level| {
                if let Some((row, values)) = counter.level(level) {
                    note_heavy(&mut heavy, &name, row, values, per_value, share);
                }
            })?;
            if heavy.len() > MAX_HEAVY_ROWS {
                bail!(
                    "more than {MAX_HEAVY_ROWS} of its rows hold more list values than the \
                     row cap allows (column {name}): raise memory_budget_bytes, or write \
                     shorter lists"
                );
            }
        }
        if let Some((row, values)) = counter.end() {
            note_heavy(&mut heavy, &name, row, values, per_value, share);
        }
    }
    heavy.sort_by_key(|h| h.row);
    heavy.dedup_by_key(|h| h.row);
    Ok(heavy)
}

/// Counts the levels of each row (a level 0 starts one).
#[derive(Default)]
struct RowCounter {
    /// The row being counted and its levels so far.
    current: Option<(u64, u64)>,
    next_row: u64,
}

impl RowCounter {
    /// Takes one level; a finished row (its index and levels) when `level` starts the next.
    fn level(&mut self, level: u16) -> Option<(u64, u64)> {
        if level == 0 {
            let done = self.current.take();
            self.current = Some((self.next_row, 1));
            self.next_row += 1;
            done
        } else {
            if let Some((_, n)) = &mut self.current {
                *n += 1;
            }
            None
        }
    }

    /// The last row, when the levels end.
    fn end(&mut self) -> Option<(u64, u64)> {
        self.current.take()
    }
}

/// Decodes `count` levels of `width` bits from the RLE / bit-packed hybrid `data`, giving
/// each to `each` (at most `count`, whatever the runs claim).
///
/// # Errors
/// Data cut short, or a width past 16 bits.
pub(crate) fn decode_hybrid(
    data: &[u8],
    width: u8,
    count: usize,
    mut each: impl FnMut(u16),
) -> Result<()> {
    if width > 16 {
        bail!("a level width of {width} bits");
    }
    let (mut at, mut left) = (0usize, count);
    let bytes_of_value = usize::from(width).div_ceil(8);
    while left > 0 {
        let mut header = 0u64;
        let mut shift = 0;
        loop {
            let Some(&b) = data.get(at) else {
                bail!("repetition levels cut short");
            };
            at += 1;
            header |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                bail!("a repetition level run header is not a varint");
            }
        }
        if header & 1 == 0 {
            let run = usize::try_from(header >> 1).unwrap_or(usize::MAX).min(left);
            let mut value = 0u16;
            for k in 0..bytes_of_value {
                let Some(&b) = data.get(at + k) else {
                    bail!("repetition levels cut short");
                };
                value |= u16::from(b) << (8 * k);
            }
            at += bytes_of_value;
            for _ in 0..run {
                each(value);
            }
            left -= run;
        } else {
            let groups = usize::try_from(header >> 1).unwrap_or(usize::MAX);
            let values = groups.saturating_mul(8).min(left);
            let mut bit = at.saturating_mul(8);
            for _ in 0..values {
                let mut value = 0u16;
                for b in 0..usize::from(width) {
                    let Some(&byte) = data.get((bit + b) / 8) else {
                        bail!("repetition levels cut short");
                    };
                    value |= u16::from((byte >> ((bit + b) % 8)) & 1) << b;
                }
                bit += usize::from(width);
                each(value);
            }
            at = at.saturating_add(groups.saturating_mul(usize::from(width)));
            left -= values;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(data: &[u8], width: u8, count: usize) -> Vec<u16> {
        let mut out = Vec::new();
        decode_hybrid(data, width, count, |l| out.push(l)).unwrap();
        out
    }

    #[test]
    fn rle_and_bit_packed_runs_decode_and_rows_are_counted_from_their_zeros() {
        // An RLE run of 3 zeros, a bit-packed group of 8 one-bit values 0,1,1,0,1,1,1,0.
        let data = [0x06, 0x00, 0x03, 0b0111_0110];
        let got = levels(&data, 1, 11);
        assert_eq!(got, [0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0]);
        let mut c = RowCounter::default();
        let mut rows: Vec<_> = got.iter().filter_map(|&l| c.level(l)).collect();
        rows.extend(c.end());
        assert_eq!(rows, [(0, 1), (1, 1), (2, 1), (3, 3), (4, 4), (5, 1)]);
        // Cut short, and a run past the count stops at the count.
        assert!(decode_hybrid(&[0x03], 1, 8, |_| {}).is_err());
        assert_eq!(levels(&[0xfe, 0x7f, 0x01], 1, 4), [1, 1, 1, 1]);
    }
}
