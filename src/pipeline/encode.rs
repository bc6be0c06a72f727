//! Serialization on the caller's task: rows → NDJSON pieces of at most one request each.

use bytes::Bytes;
use serde::Serialize;

use super::compress::codec::Codec;
use super::pool::{trimmed, BufferPool, RowSize};
use crate::Compression;
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

/// A row of `size` bytes (without its newline) over the limit of `max` bytes.
pub(crate) fn too_large(size: usize, max: usize, row_index: usize) -> Error {
    Error::RowTooLarge {
        size,
        max,
        row_index: Some(row_index),
    }
}

/// How large one row may be. Up to `cap` bytes (with its newline) it shares requests with
/// other rows, which are cut at `cap` uncompressed bytes, so their bodies always fit a
/// request. A larger row, up to `max_row` bytes, goes alone in its own request when it
/// compresses into `cap` bytes: the service's 4 MB cap is on the request as sent, after
/// compression, while values go up to 16 MB (docs/protocol.md "Limits").
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowCap {
    pub(crate) cap: usize,
    /// Largest row (without its newline) sent alone; 0 when rows are not compressed.
    pub(crate) max_row: usize,
    compression: Compression,
    level: i32,
}

impl RowCap {
    /// Rows of at most `cap - 1` bytes, none alone (no compression).
    #[cfg(any(test, feature = "bench-internals"))]
    pub(crate) fn uncompressed(cap: usize) -> Self {
        Self {
            cap,
            max_row: 0,
            compression: Compression::None,
            level: 0,
        }
    }

    /// Rows up to `cap - 1` bytes in shared requests, and rows up to `max_row` bytes alone
    /// when `compression` at `level` makes them at most `cap` bytes.
    pub(crate) fn new(cap: usize, max_row: usize, compression: Compression, level: i32) -> Self {
        let max_row = if compression == Compression::None {
            0
        } else {
            max_row
        };
        Self {
            cap,
            max_row,
            compression,
            level,
        }
    }

    /// Whether `line` (one row and its newline, longer than `cap`) may go alone in a
    /// request: at most `max_row` bytes, and at most `cap` bytes compressed (found by
    /// compressing it once, here, so the append fails rather than the channel later).
    ///
    /// # Errors
    /// [`Error::RowTooLarge`] naming the row's size and the limit it broke.
    fn check_alone(&self, line: &[u8], row_index: usize) -> Result<()> {
        let size = line.len().saturating_sub(1);
        if size > self.max_row {
            let max = if self.max_row == 0 {
                self.cap.saturating_sub(1)
            } else {
                self.max_row
            };
            return Err(too_large(size, max, row_index));
        }
        let mut codec = Codec::for_trial(self.compression, self.level);
        let body = codec
            .encode(
                &[Bytes::copy_from_slice(line)],
                line.len(),
                &BufferPool::new(0),
            )
            .map_err(|e| Error::Serialization {
                row_index,
                message: format!("compressing a row larger than a request failed: {e}"),
                source: Some(Box::new(e)),
            })?;
        if body.len() > self.cap {
            return Err(Error::RowTooLarge {
                size: body.len(),
                max: self.cap,
                row_index: Some(row_index),
            });
        }
        Ok(())
    }
}

impl RowCap {
    /// Whether `line` (one row and its newline) may be sent: at most `cap` bytes, or a row
    /// [`check_alone`](Self::check_alone) lets go alone. The rule every encoder applies.
    ///
    /// # Errors
    /// [`Error::RowTooLarge`] naming the row's size and the limit it broke.
    pub(crate) fn check_line(&self, line: &[u8], row_index: usize) -> Result<()> {
        if line.len() > self.cap {
            self.check_alone(line, row_index)?;
        }
        Ok(())
    }
}

/// The size of `row` as one NDJSON line (serde_json's bytes, without the newline) when
/// `limit` lets it be sent: the check [`encode_rows`] makes, on one row, before an append.
///
/// # Errors
/// [`Error::Serialization`] as [`write_row`], [`Error::RowTooLarge`] as
/// [`RowCap::check_line`] (its `row_index` is `None`: there is no append).
pub(crate) fn measure_row<T: Serialize + ?Sized>(row: &T, limit: &RowCap) -> Result<usize> {
    let mut line = Vec::new();
    let len = write_row(&mut line, &row, 0)?;
    limit.check_line(&line, 0).map_err(|e| match e {
        Error::RowTooLarge { size, max, .. } => Error::RowTooLarge {
            size,
            max,
            row_index: None,
        },
        other => other,
    })?;
    Ok(len - 1)
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

/// Serializes `rows` as NDJSON (one [`write_row`] each), in pieces of at most `limit.cap`
/// bytes (a row larger than that, which [`RowCap`] lets go alone, is a piece of its own),
/// into buffers from `pool` (sized from the first row of each piece and the iterator's length
/// hint, so a typical append is written once, into one buffer, with no regrowth).
///
/// # Errors
/// [`Error::Serialization`] for a row serde_json rejects or that is not a JSON object,
/// [`Error::RowTooLarge`] for a row [`RowCap`] refuses.
pub(crate) fn encode_rows<I>(
    rows: I,
    limit: &RowCap,
    pool: &BufferPool,
    row_size: &RowSize,
) -> Result<Encoded>
where
    I: IntoIterator,
    I::Item: Serialize,
{
    let cap = limit.cap;
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
            limit.check_line(&target[start..], index)?;
            // The rows before it make a piece, and it another of its own.
            let alone = Bytes::copy_from_slice(&target[start..]);
            target.truncate(start);
            if let Some(b) = buf.take() {
                finish_piece(&mut out, row_size, b, buf_rows);
            }
            probe.clear();
            let held = alone.len();
            out.push(alone, 1, held);
            continue;
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
/// newline is added; `\r\n` is accepted), none empty, in pieces of at most `limit.cap`
/// bytes (a longer row that [`RowCap`] lets go alone is a piece of its own).
///
/// # Errors
/// [`Error::Serialization`] for an empty line, [`Error::RowTooLarge`] for a line [`RowCap`]
/// refuses.
pub(crate) fn encode_raw(data: Bytes, limit: &RowCap) -> Result<Encoded> {
    let cap = limit.cap;
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
            limit.check_line(&data[row_start..row_end], index)?;
            // The rows before it make a piece, and it another of its own.
            out.push(data.slice(piece_start..row_start), piece_rows, 0);
            out.push(data.slice(row_start..row_end), 1, 0);
            piece_start = row_end;
            piece_rows = 0;
            index += 1;
            row_start = row_end;
            continue;
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
    use crate::test_support::row_too_large;

    #[derive(Serialize)]
    struct Row {
        id: u32,
        name: &'static str,
    }

    /// [`encode_rows`] with no pooled buffers and no size history.
    fn encode<I>(rows: I, limit: &RowCap) -> Result<Encoded>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        encode_rows(rows, limit, &BufferPool::disabled(), &RowSize::default())
    }

    #[test]
    fn rows_become_ndjson_pieces_within_cap() {
        let rows = (0..10).map(|id| Row { id, name: "ab" });
        let enc = encode(rows, &RowCap::uncompressed(64)).unwrap();
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
        let err = encode(
            [serde_json::json!({"a": 1}), serde_json::json!({ "a": big })],
            &RowCap::uncompressed(64),
        )
        .unwrap_err();
        assert_eq!(row_too_large(&err), (Some(1), 63), "{err:?}");
        let err = encode([1, 2], &RowCap::uncompressed(64)).unwrap_err();
        assert!(
            matches!(err, Error::Serialization { row_index: 0, .. }),
            "{err:?}"
        );
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1);
        let err = encode([bad], &RowCap::uncompressed(64)).unwrap_err();
        assert!(
            matches!(err, Error::Serialization { row_index: 0, .. }),
            "{err:?}"
        );
    }

    /// A row larger than a request goes alone when it compresses into one; the rows around
    /// it keep sharing pieces. One that does not compress, or is over the row limit, is
    /// refused naming the size that broke the limit.
    #[test]
    fn a_row_larger_than_a_request_goes_alone_when_it_compresses_into_one() {
        let limit = RowCap::new(1024, 64 << 10, Compression::Zstd, 1);
        let big = "all work and no play ".repeat(500); // 10.5 KB, compresses to ~100 B
        let rows = vec![
            serde_json::json!({"id": 0}),
            serde_json::json!({"id": 1, "doc": big}),
            serde_json::json!({"id": 2}),
            serde_json::json!({"id": 3}),
        ];
        let enc = encode(&rows, &limit).unwrap();
        let shape: Vec<usize> = enc.pieces.iter().map(|p| p.rows).collect();
        assert_eq!(shape, [1, 1, 2], "before, alone, after");
        assert!(enc.pieces[1].data.len() > 10_000);
        assert_eq!(enc.rows, 4);
        let ndjson: Vec<u8> = enc.pieces.iter().flat_map(|p| p.data.to_vec()).collect();
        let raw = encode_raw(Bytes::from(ndjson.clone()), &limit).unwrap();
        let raw_shape: Vec<usize> = raw.pieces.iter().map(|p| p.rows).collect();
        assert_eq!(raw_shape, [1, 1, 2]);
        let again: Vec<u8> = raw.pieces.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(again, ndjson);

        // Incompressible: refused with its compressed size against the request.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        let noise: String = (0..3000)
            .map(|_| char::from(rand::Rng::gen_range(&mut rng, b'a'..=b'z')))
            .collect();
        let err = encode([serde_json::json!({ "n": noise })], &limit).unwrap_err();
        assert!(
            matches!(err, Error::RowTooLarge { size, max: 1024, row_index: Some(0) } if size > 1024),
            "{err:?}"
        );
        // Over the row limit, however well it compresses.
        let huge = "x".repeat(70 << 10);
        let err = encode_raw(Bytes::from(format!("{{\"a\":\"{huge}\"}}\n")), &limit).unwrap_err();
        assert!(
            matches!(err, Error::RowTooLarge { max, .. } if max == 64 << 10),
            "{err:?}"
        );
        // Uncompressed requests: no row goes alone.
        let err = encode(&rows, &RowCap::new(1024, 64 << 10, Compression::None, 1)).unwrap_err();
        assert_eq!(row_too_large(&err), (Some(1), 1023), "{err:?}");
    }

    #[test]
    fn raw_ndjson_is_checked_and_split() {
        let enc = encode_raw(
            Bytes::from_static(b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}"),
            &RowCap::uncompressed(16),
        )
        .unwrap();
        assert_eq!(enc.rows, 3);
        assert_eq!(enc.pieces.len(), 2);
        assert_eq!(&enc.pieces[1].data[..], b"{\"a\":3}\n");
        assert!(encode_raw(Bytes::from_static(b"{}\n\n{}\n"), &RowCap::uncompressed(16)).is_err());
        assert!(matches!(
            encode_raw(
                Bytes::from_static(b"{\"aaaaaaaaaaaaaaaaaaaa\":1}\n"),
                &RowCap::uncompressed(16)
            ),
            Err(Error::RowTooLarge {
                row_index: Some(0),
                ..
            })
        ));
    }
}
