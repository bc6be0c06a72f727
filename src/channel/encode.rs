//! Serialization on the caller's task: rows → NDJSON pieces of at most one request each.

use bytes::Bytes;
use serde::Serialize;

use super::pool::{trimmed, BufferPool, RowSize};
use crate::{Error, Result};

/// One piece of an append: NDJSON rows, each ending in `\n`, at most `cap` bytes.
#[derive(Debug)]
pub(crate) struct Piece {
    pub(crate) data: Bytes,
    pub(crate) rows: usize,
    /// Memory the piece holds: its buffer's capacity (at least `data.len()`), which is what
    /// the memory budget is charged.
    pub(crate) held: usize,
}

/// The serialized form of one append call.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub(crate) pieces: Vec<Piece>,
    pub(crate) bytes: usize,
    pub(crate) rows: usize,
    /// Sum of the pieces' `held`.
    pub(crate) held: usize,
}

impl Encoded {
    fn push(&mut self, data: Bytes, rows: usize, held: usize) {
        if rows == 0 {
            return;
        }
        let held = held.max(data.len());
        self.bytes += data.len();
        self.rows += rows;
        self.held += held;
        self.pieces.push(Piece { data, rows, held });
    }

    fn push_buffer(&mut self, buf: Vec<u8>, rows: usize) {
        let held = buf.capacity();
        self.push(Bytes::from(buf), rows, held);
    }
}

/// A row of `size` bytes (without its newline) that does not fit a request of `cap` bytes.
pub(crate) fn too_large(size: usize, cap: usize, row_index: usize) -> Error {
    Error::RowTooLarge {
        size,
        max: cap.saturating_sub(1),
        row_index: Some(row_index),
    }
}

/// Appends row `index` to `out` as one NDJSON line (serde_json's bytes, by [`crate::json`],
/// then `\n`) and returns the line's length.
///
/// # Errors
/// [`Error::Serialization`] for a row serde_json rejects or that is not a JSON object (`out`
/// may then hold part of the row).
pub(crate) fn write_row<T: Serialize>(out: &mut Vec<u8>, row: &T, index: usize) -> Result<usize> {
    let start = out.len();
    crate::json::write_or_fallback(out, row).map_err(|e| Error::Serialization {
        row_index: index,
        message: e.to_string(),
        source: Some(Box::new(e)),
    })?;
    if out.get(start) != Some(&b'{') {
        return Err(Error::Serialization {
            row_index: index,
            message: "a row must serialize to a JSON object (a struct or a map)".into(),
            source: None,
        });
    }
    out.push(b'\n');
    Ok(out.len() - start)
}

/// Serializes `rows` as NDJSON (one [`write_row`] each), in pieces of at most `cap` bytes, into buffers from `pool` (sized from the first row of each piece and the
/// iterator's length hint, so a typical append is written once, into one buffer, with no
/// regrowth).
///
/// # Errors
/// [`Error::Serialization`] for a row serde_json rejects or that is not a JSON object,
/// [`Error::RowTooLarge`] for a row longer than `cap - 1` bytes.
pub(crate) fn encode_rows<I>(
    rows: I,
    cap: usize,
    pool: &BufferPool,
    row_size: &RowSize,
) -> Result<Encoded>
where
    I: IntoIterator,
    I::Item: Serialize,
{
    let iter = rows.into_iter();
    let hint = iter.size_hint().0.max(1);
    let mut out = Encoded::default();
    // The first row of each piece goes here; its size tells how big the piece's buffer
    // should be. Small, so its allocation never reaches the kernel.
    let mut probe: Vec<u8> = Vec::with_capacity(1024);
    let mut buf: Option<Vec<u8>> = None;
    let mut buf_rows = 0usize;
    for (index, row) in iter.enumerate() {
        let target = buf.as_mut().unwrap_or(&mut probe);
        let start = target.len();
        let row_len = write_row(target, &row, index)?;
        if row_len > cap {
            return Err(too_large(row_len - 1, cap, index));
        }
        let Some(b) = buf.as_mut() else {
            buf = Some(sized_buffer(
                pool,
                row_size,
                &probe,
                row_len,
                hint.saturating_sub(index),
                cap,
            ));
            probe.clear();
            buf_rows = 1;
            continue;
        };
        if b.len() > cap {
            // This row starts the next piece.
            let mut full = buf.take().unwrap_or_default();
            let next = sized_buffer(
                pool,
                row_size,
                &full[start..],
                row_len,
                hint.saturating_sub(index),
                cap,
            );
            full.truncate(start);
            finish_piece(&mut out, row_size, full, buf_rows);
            buf = Some(next);
            buf_rows = 1;
            continue;
        }
        buf_rows += 1;
        if b.capacity() - b.len() < 2 * row_len && index + 1 < hint {
            // The estimate was short and more rows are coming: grow by an eighth now rather
            // than let the next row double the buffer (which the trim would then cut back).
            b.reserve_exact((b.capacity() / 8).max(2 * row_len));
        }
    }
    if let Some(b) = buf {
        finish_piece(&mut out, row_size, b, buf_rows);
    }
    Ok(out)
}

/// Adds the piece in `buf` (`rows` rows) to `out` and to the channel's row-size estimate.
fn finish_piece(out: &mut Encoded, row_size: &RowSize, buf: Vec<u8>, rows: usize) {
    row_size.record(buf.len(), rows);
    out.push_buffer(trimmed(buf), rows);
}

/// A buffer for a piece whose first row is `first` (`row_len` bytes), expecting about
/// `rows_left` rows of the channel's typical size ([`RowSize`], else `row_len`), at most
/// `cap` bytes plus one row, with `first` copied in.
fn sized_buffer(
    pool: &BufferPool,
    row_size: &RowSize,
    first: &[u8],
    row_len: usize,
    rows_left: usize,
    cap: usize,
) -> Vec<u8> {
    // Room for the expected rows plus 1/16 (rows vary in size; the loop grows a short buffer
    // by an eighth); a single row gets exactly its size (the budget is charged the buffer's
    // capacity).
    let typical = row_size.get().unwrap_or(row_len);
    let expected = row_len + typical.saturating_mul(rows_left.saturating_sub(1));
    let headroom = if rows_left > 1 { expected / 16 } else { 0 };
    let want = (expected + headroom).min(cap + row_len);
    let mut b = pool.take(want.max(first.len()));
    b.extend_from_slice(first);
    b
}

/// Checks and splits caller-provided NDJSON: rows are separated by `\n` (a missing final
/// newline is added; `\r\n` is accepted), none empty, none longer than `cap - 1` bytes.
///
/// # Errors
/// [`Error::Serialization`] for an empty line, [`Error::RowTooLarge`] for a long line.
pub(crate) fn encode_raw(data: Bytes, cap: usize) -> Result<Encoded> {
    let data = if data.last().is_some_and(|&b| b != b'\n') {
        let mut v = Vec::with_capacity(data.len() + 1);
        v.extend_from_slice(&data);
        v.push(b'\n');
        Bytes::from(v)
    } else {
        data
    };
    let mut out = Encoded::default();
    let mut piece_start = 0usize;
    let mut piece_rows = 0usize;
    let mut row_start = 0usize;
    let mut index = 0usize;
    while row_start < data.len() {
        let nl =
            memchr::memchr(b'\n', &data[row_start..]).map_or(data.len() - 1, |p| row_start + p);
        let line = &data[row_start..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::Serialization {
                row_index: index,
                message: "empty line in NDJSON input; every line must hold one JSON object".into(),
                source: None,
            });
        }
        let row_end = nl + 1;
        if row_end - row_start > cap {
            return Err(too_large(row_end - row_start - 1, cap, index));
        }
        if row_end - piece_start > cap {
            out.push(data.slice(piece_start..row_start), piece_rows, 0);
            piece_start = row_start;
            piece_rows = 0;
        }
        piece_rows += 1;
        index += 1;
        row_start = row_end;
    }
    out.push(data.slice(piece_start..), piece_rows, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        id: u32,
        name: &'static str,
    }

    #[test]
    fn rows_become_ndjson_pieces_within_cap() {
        let rows = (0..10).map(|id| Row { id, name: "ab" });
        let enc = encode_rows(rows, 64, &BufferPool::disabled(), &RowSize::default()).unwrap();
        assert_eq!(enc.rows, 10);
        assert!(enc.pieces.len() > 1);
        let mut all = Vec::new();
        for p in &enc.pieces {
            assert!(p.data.len() <= 64);
            assert_eq!(p.data.iter().filter(|&&b| b == b'\n').count(), p.rows);
            all.extend_from_slice(&p.data);
        }
        assert!(all.starts_with(b"{\"id\":0,\"name\":\"ab\"}\n{\"id\":1,"));
        assert_eq!(all.len(), enc.bytes);
    }

    #[test]
    fn oversized_and_unserializable_rows_fail_with_their_index() {
        let big = "x".repeat(100);
        let err = encode_rows(
            [serde_json::json!({"a": 1}), serde_json::json!({ "a": big })],
            64,
            &BufferPool::disabled(),
            &RowSize::default(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::RowTooLarge {
                    row_index: Some(1),
                    max: 63,
                    ..
                }
            ),
            "{err:?}"
        );
        let err =
            encode_rows([1, 2], 64, &BufferPool::disabled(), &RowSize::default()).unwrap_err();
        assert!(
            matches!(err, Error::Serialization { row_index: 0, .. }),
            "{err:?}"
        );
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1);
        let err = encode_rows([bad], 64, &BufferPool::disabled(), &RowSize::default()).unwrap_err();
        assert!(
            matches!(err, Error::Serialization { row_index: 0, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn raw_ndjson_is_checked_and_split() {
        let enc = encode_raw(Bytes::from_static(b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}"), 16).unwrap();
        assert_eq!(enc.rows, 3);
        assert_eq!(enc.pieces.len(), 2);
        assert_eq!(&enc.pieces[1].data[..], b"{\"a\":3}\n");
        assert!(encode_raw(Bytes::from_static(b"{}\n\n{}\n"), 16).is_err());
        assert!(matches!(
            encode_raw(Bytes::from_static(b"{\"aaaaaaaaaaaaaaaaaaaa\":1}\n"), 16),
            Err(Error::RowTooLarge {
                row_index: Some(0),
                ..
            })
        ));
    }
}
