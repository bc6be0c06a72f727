//! Append bodies: decompression (zstd, gzip, none) with size checks, NDJSON line splitting,
//! and the sink mode's row count without parsing.

use bytes::Bytes;

use std::sync::Arc;

use crate::base::api_error::ApiError;

/// Rows decoded from one append body.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub rows: Vec<Vec<crate::convert::SqlValue>>,
    pub parsed: u64,
    pub errors: u64,
    /// Rows the pipe's `WHERE` dropped.
    pub filtered: u64,
    pub last_error: Option<String>,
    /// The share of the pending budget the rows hold in memory until they commit (`None`
    /// in sink mode, which keeps no rows).
    pub reserved: Option<crate::base::pending_budget::Reservation>,
    /// For a table with `ERROR_LOGGING = TRUE`: its error table (SQLite name) and the rows
    /// rejected, with their payload.
    pub rejected: Option<(String, Vec<crate::storage::RejectedRow>)>,
    /// Where the rows go: the target of the columns they were converted against.
    pub target: Option<Arc<crate::channels::Target>>,
}

impl Decoded {
    /// The rows with their charge lowered to what they hold now that the body and the
    /// parsed JSON are gone: the rows' vector, each row's values and what they own.
    pub(crate) fn settled(mut self, mut meter: super::memory::Meter) -> Self {
        let rows = self.rows.capacity() * std::mem::size_of::<Vec<crate::convert::SqlValue>>();
        let held: usize = self.rows.iter().map(super::memory::row_bytes).sum();
        let rejected: usize = self.rejected.as_ref().map_or(0, |(_, r)| {
            r.iter()
                .map(|r| r.metadata.to_string().len() + r.data.to_string().len() + 256)
                .sum()
        });
        meter.settle(rows + held + rejected);
        self.reserved = Some(meter.into_reservation());
        self
    }
}

/// The size of each read of a decompressor.
const CHUNK: usize = 256 * 1024;

/// Decompresses an append body according to its `Content-Encoding`, calling `charge` with
/// the bytes held while it decodes before each time they grow: the compressed body and the
/// result so far (the body alone when it is not compressed). The compressed body is dropped
/// on return.
///
/// # Errors
///
/// 413 when the result passes `limit` (`--max-decompressed-bytes`), 400 for an unknown
/// encoding or a corrupt body, and what `charge` answers.
pub(crate) fn decompress(
    encoding: Option<&str>,
    body: Bytes,
    limit: usize,
    charge: &mut dyn FnMut(usize) -> Result<(), ApiError>,
) -> Result<Bytes, ApiError> {
    let too_big = || {
        ApiError::new(
            413,
            "ERR_PAYLOAD_TOO_LARGE",
            format!(
                "the decompressed body is larger than {limit} bytes, the emulator's limit \
                 (--max-decompressed-bytes); send smaller batches"
            ),
        )
    };
    let bad = |e: std::io::Error, what: &str| {
        ApiError::new(
            400,
            "ERR_INVALID_CONTENT_ENCODING",
            format!("cannot decode the {what} body: {e}"),
        )
    };
    let enc = encoding.map(|e| e.trim().to_ascii_lowercase());
    let mut out = Vec::new();
    let compressed = body.len();
    let charge = &mut |n: usize| charge(compressed.saturating_add(n));
    match enc.as_deref() {
        None | Some("") | Some("identity") | Some("none") => {
            charge(0)?;
            return Ok(body);
        }
        Some("zstd") => {
            if let Ok(Some(n)) = zstd::zstd_safe::get_frame_content_size(&body) {
                if n as usize > limit {
                    return Err(too_big());
                }
                charge(n as usize)?;
                out.reserve_exact(n as usize);
            }
            let decoder =
                zstd::stream::read::Decoder::new(&body[..]).map_err(|e| bad(e, "zstd"))?;
            read_charged(decoder, limit, &mut out, charge, &|e| bad(e, "zstd"))?;
        }
        Some("gzip") | Some("x-gzip") => {
            let decoder = flate2::read::MultiGzDecoder::new(&body[..]);
            read_charged(decoder, limit, &mut out, charge, &|e| bad(e, "gzip"))?;
        }
        Some(other) => {
            return Err(ApiError::new(
                400,
                "ERR_UNSUPPORTED_CONTENT_ENCODING",
                format!("Content-Encoding {other} is not supported; use zstd, gzip or none"),
            ))
        }
    }
    if out.len() > limit {
        return Err(too_big());
    }
    Ok(Bytes::from(out))
}

/// Reads `reader` into `out`, at most `limit + 1` bytes, [`CHUNK`] at a time, growing `out`
/// by doubling and charging each new capacity before it is allocated.
fn read_charged(
    reader: impl std::io::Read,
    limit: usize,
    out: &mut Vec<u8>,
    charge: &mut dyn FnMut(usize) -> Result<(), ApiError>,
    bad: &dyn Fn(std::io::Error) -> ApiError,
) -> Result<(), ApiError> {
    use std::io::Read;
    let mut reader = reader.take(limit as u64 + 1);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad(e)),
        };
        if out.capacity() - out.len() < n {
            let len = out.len();
            let ceiling = (limit + 1).max(len + n);
            let capacity = out.capacity().saturating_mul(2).clamp(len + n, ceiling);
            charge(capacity)?;
            out.reserve_exact(capacity - len);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Sink mode: counts the rows of an append body (see [`count_lines`]) and returns them with
/// the uncompressed length. A zstd body whose frame states its size is decompressed into a
/// buffer and context kept per thread, so a busy sink neither allocates nor faults in fresh
/// memory per request; anything else goes through [`decompress`].
pub(super) fn sink_count(
    encoding: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<(Decoded, usize), ApiError> {
    thread_local! {
        static ZSTD: std::cell::RefCell<Option<(zstd::bulk::Decompressor<'static>, Vec<u8>)>> =
            const { std::cell::RefCell::new(None) };
    }
    let is_zstd = encoding.is_some_and(|e| e.trim().eq_ignore_ascii_case("zstd"));
    let size = if is_zstd {
        zstd::zstd_safe::get_frame_content_size(&body)
            .ok()
            .flatten()
    } else {
        None
    };
    if let Some(n) = size
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= limit)
    {
        let counted = ZSTD.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.is_none() {
                *cell = Some((zstd::bulk::Decompressor::new().ok()?, Vec::new()));
            }
            let (dctx, buf) = cell.as_mut()?;
            buf.clear();
            buf.reserve(n);
            let len = dctx.decompress_to_buffer(&body[..], buf).ok()?;
            Some((count_lines(&buf[..len]), len))
        });
        if let Some(c) = counted {
            return Ok(c);
        }
        // Corrupt or a size mismatch: the general path reports it properly.
    }
    let raw = decompress(encoding, body, limit, &mut |_| Ok(()))?;
    Ok((count_lines(&raw), raw.len()))
}

/// Refuses an append of more than `cap` rows (`--max-rows-per-request`); `rows` may stop
/// counting at `cap + 1`.
pub(crate) fn check_row_count(rows: u64, cap: usize) -> Result<(), ApiError> {
    if rows > cap as u64 {
        return Err(ApiError::new(
            413,
            "ERR_TOO_MANY_ROWS",
            format!(
                "the request has more than {cap} rows, the emulator's limit per append \
                 (--max-rows-per-request); send smaller batches"
            ),
        ));
    }
    Ok(())
}

/// The non-blank lines of an NDJSON body (a `\r` before `\n` is dropped).
pub(crate) fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|b| *b == b'\n').filter_map(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if l.iter().all(|b| b.is_ascii_whitespace()) {
            None
        } else {
            Some(l)
        }
    })
}

/// Sink mode: count rows without parsing JSON; a line that does not look like an object is an
/// error row.
pub(crate) fn count_lines(body: &[u8]) -> Decoded {
    let mut d = Decoded::default();
    let mut start = 0;
    let check = |line: &[u8], d: &mut Decoded| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return;
        }
        d.parsed += 1;
        if line[0] != b'{' || line[line.len() - 1] != b'}' {
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                d.parsed -= 1;
                return;
            }
            d.errors += 1;
            d.last_error = Some("row is not a JSON object".into());
        }
    };
    for nl in memchr::memchr_iter(b'\n', body) {
        check(&body[start..nl], &mut d);
        start = nl + 1;
    }
    if start < body.len() {
        check(&body[start..], &mut d);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_counts_rows_of_every_encoding_and_refuses_bad_bodies() {
        let text = b"{\"a\":1}\n{\"a\":2}\nnope\n".repeat(1000);
        let z = Bytes::from(zstd::bulk::compress(&text, 1).unwrap());
        for _ in 0..2 {
            // Twice: the second call reuses the thread's buffer and context.
            let (d, len) = sink_count(Some("zstd"), z.clone(), 1 << 20).unwrap();
            assert_eq!((d.parsed, d.errors, len), (3000, 1000, text.len()));
        }
        // A frame without its size (streamed) takes the general path.
        let streamed = zstd::stream::encode_all(&text[..], 1).unwrap();
        let (d, _) = sink_count(Some("ZSTD"), Bytes::from(streamed), 1 << 20).unwrap();
        assert_eq!(d.parsed, 3000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &text).unwrap();
        let (d, _) = sink_count(Some("gzip"), Bytes::from(gz.finish().unwrap()), 1 << 20).unwrap();
        assert_eq!(d.parsed, 3000);
        let (d, _) = sink_count(None, Bytes::from(text.clone()), 1 << 20).unwrap();
        assert_eq!(d.parsed, 3000);
        let err = sink_count(Some("zstd"), z.clone(), 1000).unwrap_err();
        assert_eq!(err.status, 413);
        let mut bad = z.to_vec();
        let n = bad.len();
        bad.truncate(n / 2);
        let err = sink_count(Some("zstd"), Bytes::from(bad), 1 << 20).unwrap_err();
        assert_eq!(err.status, 400);
    }

    #[test]
    fn blank_lines_and_crlf() {
        let body = b"{\"a\":1}\n\n{\"a\":2}\r\n{\"a\":3}\n\n  \n{\"a\":4}";
        assert_eq!(lines(body).count(), 4);
        let d = count_lines(body);
        assert_eq!((d.parsed, d.errors), (4, 0));
        let d = count_lines(b"{}\nnot json\n");
        assert_eq!((d.parsed, d.errors), (2, 1));
    }

    #[test]
    fn decompression() {
        let mut free = |_: usize| Ok(());
        let text = b"{\"a\":1}\n".repeat(1000);
        let z = zstd::encode_all(&text[..], 3).unwrap();
        assert_eq!(
            &decompress(Some("zstd"), Bytes::from(z.clone()), 1 << 20, &mut free).unwrap()[..],
            &text[..]
        );
        assert_eq!(
            decompress(Some("zstd"), Bytes::from(z), 100, &mut free)
                .unwrap_err()
                .status,
            413
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &text).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            &decompress(Some("gzip"), Bytes::from(gz), 1 << 20, &mut free).unwrap()[..],
            &text[..]
        );
        assert_eq!(
            decompress(Some("br"), Bytes::new(), 10, &mut free)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            decompress(Some("zstd"), Bytes::from_static(b"nope"), 10, &mut free)
                .unwrap_err()
                .status,
            400
        );
    }

    /// The charge comes before the memory: every capacity the buffer takes was charged
    /// first, the charge stays within twice the result plus a chunk, and a refused charge
    /// stops the decompression.
    #[test]
    fn decompression_is_charged_as_it_grows() {
        let text = b"{}\n".repeat(2_000_000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &text).unwrap();
        let gz = Bytes::from(gz.finish().unwrap());
        let streamed = Bytes::from(zstd::stream::encode_all(&text[..], 19).unwrap());
        let sized = Bytes::from(zstd::bulk::compress(&text, 19).unwrap());
        for (enc, body) in [("gzip", gz), ("zstd", streamed), ("zstd", sized)] {
            let mut charged = 0;
            let out = decompress(Some(enc), body.clone(), 64 << 20, &mut |n| {
                charged = charged.max(n);
                Ok(())
            })
            .unwrap();
            assert_eq!(out.len(), text.len(), "{enc}");
            assert!(charged >= out.len(), "{enc}: {charged}");
            assert!(charged <= 2 * out.len() + CHUNK, "{enc}: {charged}");
            let refused = decompress(Some(enc), body, 64 << 20, &mut |n| {
                if n > 1 << 20 {
                    Err(ApiError::new(429, "ERR_TOO_MANY_REQUESTS", "full"))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
            assert_eq!(refused.status, 429, "{enc}");
        }
    }
}
