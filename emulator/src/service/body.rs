//! Append bodies: decompression (zstd, gzip, none) with size checks, NDJSON line splitting,
//! and the sink mode's row count without parsing.

use bytes::Bytes;

use std::sync::Arc;

use crate::api_error::ApiError;

/// Rows decoded from one append body.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub rows: Vec<Vec<crate::convert::SqlValue>>,
    pub parsed: u64,
    pub errors: u64,
    /// Rows the pipe's `WHERE` dropped.
    pub filtered: u64,
    pub last_error: Option<String>,
    /// The decompressed body's size: what the rows hold in memory until they commit.
    pub raw_bytes: usize,
    /// For a table with `ERROR_LOGGING = TRUE`: its error table (SQLite name) and the rows
    /// rejected, with their payload.
    pub rejected: Option<(String, Vec<crate::storage::RejectedRow>)>,
    /// Where the rows go: the target of the columns they were converted against.
    pub target: Option<Arc<crate::channels::Target>>,
}

/// Decompresses an append body according to its `Content-Encoding`.
pub(crate) fn decompress(
    encoding: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, ApiError> {
    use std::io::Read;
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
    match enc.as_deref() {
        None | Some("") | Some("identity") | Some("none") => return Ok(body),
        Some("zstd") => {
            if let Ok(Some(n)) = zstd::zstd_safe::get_frame_content_size(&body) {
                if n as usize > limit {
                    return Err(too_big());
                }
                out.reserve(n as usize);
            }
            zstd::stream::read::Decoder::new(&body[..])
                .map_err(|e| bad(e, "zstd"))?
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad(e, "zstd"))?;
        }
        Some("gzip") | Some("x-gzip") => {
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad(e, "gzip"))?;
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
    let raw = decompress(encoding, body, limit)?;
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
        let text = b"{\"a\":1}\n".repeat(1000);
        let z = zstd::encode_all(&text[..], 3).unwrap();
        assert_eq!(
            &decompress(Some("zstd"), Bytes::from(z.clone()), 1 << 20).unwrap()[..],
            &text[..]
        );
        assert_eq!(
            decompress(Some("zstd"), Bytes::from(z), 100)
                .unwrap_err()
                .status,
            413
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &text).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            &decompress(Some("gzip"), Bytes::from(gz), 1 << 20).unwrap()[..],
            &text[..]
        );
        assert_eq!(
            decompress(Some("br"), Bytes::new(), 10).unwrap_err().status,
            400
        );
        assert_eq!(
            decompress(Some("zstd"), Bytes::from_static(b"nope"), 10)
                .unwrap_err()
                .status,
            400
        );
    }
}
