//! An S3 `PutObject` as the official SDK's S3 client sends it (captured: docs/protocol.md
//! §4.6): SigV4 with the session token `:pipe-info` handed out, and the body in
//! `aws-chunked` framing with a CRC-32 trailer:
//!
//! ```text
//! content-encoding: aws-chunked
//! x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER
//! x-amz-decoded-content-length: 9105
//! x-amz-trailer: x-amz-checksum-crc32
//!
//! 2391\r\n<9105 bytes>\r\n0\r\nx-amz-checksum-crc32:RSQC3A==\r\n\r\n
//! ```
//!
//! The credential checked is the session token (`x-amz-security-token`) and the access key
//! id in `Authorization`; the SigV4 signature itself is not recomputed. Plain (not chunked)
//! bodies are read too, with their `x-amz-content-sha256` or `x-amz-checksum-crc32` header
//! checked when given.

use base64::Engine as _;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::StageSecrets;

/// Why an upload is refused: an S3 error code, its HTTP status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Error {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl S3Error {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// The XML body S3 answers errors with.
    pub(crate) fn xml(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
            self.code,
            esc(&self.message)
        )
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Checks the upload's credentials: the session token and the access key id `:pipe-info`
/// handed out.
///
/// # Errors
/// 403 `AccessDenied` naming what is missing or wrong (never the values).
pub(crate) fn check_credentials(
    headers: &HeaderMap,
    secrets: &StageSecrets,
) -> Result<(), S3Error> {
    let denied = |why: &str| {
        S3Error::new(
            403,
            "AccessDenied",
            format!("{why}; upload with the credentials of the stage :pipe-info returned"),
        )
    };
    let token =
        header(headers, "x-amz-security-token").ok_or_else(|| denied("no x-amz-security-token"))?;
    if !bool::from(token.as_bytes().ct_eq(secrets.aws_token.as_bytes())) {
        return Err(denied("the x-amz-security-token is not this emulator's"));
    }
    let auth = header(headers, "authorization").unwrap_or("");
    let key_id = auth
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .unwrap_or("");
    if key_id != secrets.aws_key_id {
        return Err(denied(
            "the access key id in Authorization is not this emulator's",
        ));
    }
    Ok(())
}

/// The length the decoded object will have, from `x-amz-decoded-content-length` (chunked)
/// or `Content-Length` (plain), to reserve before the body is read.
///
/// # Errors
/// 411 `MissingContentLength` without either.
pub(crate) fn declared_len(headers: &HeaderMap) -> Result<u64, S3Error> {
    header(headers, "x-amz-decoded-content-length")
        .or_else(|| header(headers, "content-length"))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            S3Error::new(
                411,
                "MissingContentLength",
                "send Content-Length (and x-amz-decoded-content-length for aws-chunked bodies)",
            )
        })
}

fn is_chunked(headers: &HeaderMap) -> bool {
    header(headers, "content-encoding").is_some_and(|e| {
        e.split(',')
            .any(|p| p.trim().eq_ignore_ascii_case("aws-chunked"))
    }) || header(headers, "x-amz-content-sha256").is_some_and(|v| v.starts_with("STREAMING-"))
}

/// The object's bytes from the request body: `aws-chunked` framing removed, its length and
/// checksum (trailer or header) checked.
///
/// # Errors
/// 400 `IncompleteBody`, `InvalidChunkSizeError`, `BadDigest` or `XAmzContentChecksumMismatch`
/// naming what does not add up.
pub(crate) fn decode(headers: &HeaderMap, raw: &[u8]) -> Result<Vec<u8>, S3Error> {
    let (data, trailers) = if is_chunked(headers) {
        unchunk(raw)?
    } else {
        (raw.to_vec(), Vec::new())
    };
    if let Some(want) = header(headers, "x-amz-decoded-content-length").or_else(|| {
        (!is_chunked(headers))
            .then(|| header(headers, "content-length"))
            .flatten()
    }) {
        if want.parse::<usize>().ok() != Some(data.len()) {
            return Err(S3Error::new(
                400,
                "IncompleteBody",
                format!(
                    "the body holds {} bytes where {want} were declared",
                    data.len()
                ),
            ));
        }
    }
    let checksum = |name: &str| {
        trailers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .or_else(|| header(headers, name))
    };
    if let Some(want) = checksum("x-amz-checksum-crc32") {
        let got =
            base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(&data).to_be_bytes());
        if got != want {
            return Err(S3Error::new(
                400,
                "BadDigest",
                format!("the CRC-32 of the body is {got}, not the {want} sent"),
            ));
        }
    }
    if let Some(want) = checksum("x-amz-checksum-sha256") {
        let got = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&data));
        if got != want {
            return Err(S3Error::new(
                400,
                "BadDigest",
                format!("the SHA-256 of the body is {got}, not the {want} sent"),
            ));
        }
    }
    if let Some(want) = header(headers, "x-amz-content-sha256")
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        let got: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !got.eq_ignore_ascii_case(want) {
            return Err(S3Error::new(
                400,
                "XAmzContentSHA256Mismatch",
                "the body's SHA-256 is not the x-amz-content-sha256 sent",
            ));
        }
    }
    Ok(data)
}

/// Trailer lines of an `aws-chunked` body: `(name, value)`.
type Trailers = Vec<(String, String)>;

/// Splits an `aws-chunked` body into its data and trailers:
/// `hex-size[;ext]\r\n data \r\n` … `0[;ext]\r\n` then `name:value\r\n` lines and `\r\n`.
fn unchunk(raw: &[u8]) -> Result<(Vec<u8>, Trailers), S3Error> {
    let bad = |why: &str| {
        S3Error::new(
            400,
            "InvalidChunkSizeError",
            format!("the aws-chunked body is malformed: {why}"),
        )
    };
    let line_end = |from: usize| -> Option<usize> {
        raw.get(from..)?
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| from + p)
    };
    let mut data = Vec::with_capacity(raw.len());
    let mut at = 0;
    loop {
        let end = line_end(at).ok_or_else(|| bad("a chunk header has no CRLF"))?;
        let head =
            std::str::from_utf8(&raw[at..end]).map_err(|_| bad("a chunk header is not text"))?;
        let size_hex = head.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| bad("a chunk size is not hexadecimal"))?;
        at = end + 2;
        if size == 0 {
            break;
        }
        let stop = at
            .checked_add(size)
            .filter(|&s| s.saturating_add(2) <= raw.len())
            .ok_or_else(|| bad("a chunk is longer than the body"))?;
        data.extend_from_slice(&raw[at..stop]);
        if &raw[stop..stop + 2] != b"\r\n" {
            return Err(bad("a chunk does not end with CRLF"));
        }
        at = stop + 2;
    }
    let mut trailers = Vec::new();
    loop {
        let end = line_end(at).ok_or_else(|| bad("the trailers do not end with an empty line"))?;
        if end == at {
            break;
        }
        let line = std::str::from_utf8(&raw[at..end]).map_err(|_| bad("a trailer is not text"))?;
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad("a trailer has no colon"))?;
        trailers.push((k.trim().to_string(), v.trim().to_string()));
        at = end + 2;
    }
    if at + 2 != raw.len() {
        return Err(bad("bytes follow the trailers"));
    }
    Ok((data, trailers))
}

/// `aws-chunked` framing of `data` in `chunk`-byte chunks with a CRC-32 trailer, as the AWS
/// SDK uploads a file: what [`decode`] reads. For tests of the upload path.
#[cfg(any(test, feature = "internals"))]
pub fn aws_chunked(data: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    let crc = base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(data).to_be_bytes());
    out.extend_from_slice(format!("0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn sdk_headers(len: usize) -> HeaderMap {
        headers(&[
            ("content-encoding", "aws-chunked"),
            ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
            ("x-amz-decoded-content-length", &len.to_string()),
        ])
    }

    #[test]
    fn an_sdk_upload_is_unchunked_and_its_crc_checked() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in [1, 8192, 65536, 100_000] {
            let raw = aws_chunked(&data, chunk);
            assert_eq!(
                decode(&sdk_headers(data.len()), &raw).unwrap(),
                data,
                "{chunk}"
            );
        }
        // One flipped bit in the data: the CRC trailer no longer matches.
        let mut raw = aws_chunked(&data, 65536);
        raw[100] ^= 1;
        assert_eq!(
            decode(&sdk_headers(data.len()), &raw).unwrap_err().code,
            "BadDigest"
        );
        // A declared length the body does not have.
        let raw = aws_chunked(&data, 65536);
        assert_eq!(
            decode(&sdk_headers(data.len() + 1), &raw).unwrap_err().code,
            "IncompleteBody"
        );
    }

    #[test]
    fn malformed_framing_is_refused_not_guessed() {
        let h = sdk_headers(3);
        for raw in [
            &b"3\r\nabc"[..],
            b"zz\r\nabc\r\n0\r\n\r\n",
            b"5\r\nabc\r\n0\r\n\r\n",
            b"3\r\nabcXY0\r\n\r\n",
            b"3\r\nabc\r\n0\r\nnocolon\r\n\r\n",
            b"3\r\nabc\r\n0\r\n\r\ntrailing",
            b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        ] {
            assert_eq!(decode(&h, raw).unwrap_err().status, 400, "{raw:?}");
        }
        assert_eq!(
            decode(&h, b"3;chunk-signature=ab\r\nabc\r\n0\r\n\r\n").unwrap(),
            b"abc"
        );
    }

    #[test]
    fn a_plain_body_is_checked_by_its_sha256() {
        let body = b"hello";
        let sha: String = Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let ok = headers(&[("content-length", "5"), ("x-amz-content-sha256", &sha)]);
        assert_eq!(decode(&ok, body).unwrap(), body);
        let bad = headers(&[
            ("content-length", "5"),
            ("x-amz-content-sha256", &"0".repeat(64)),
        ]);
        assert_eq!(
            decode(&bad, body).unwrap_err().code,
            "XAmzContentSHA256Mismatch"
        );
    }

    #[test]
    fn credentials_are_the_stages_and_never_echoed() {
        let s = StageSecrets::derive(&[3u8; 32]);
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/us-west-2/s3/aws4_request, Signature=x",
            s.aws_key_id
        );
        let ok = headers(&[
            ("x-amz-security-token", &s.aws_token),
            ("authorization", &auth),
        ]);
        assert!(check_credentials(&ok, &s).is_ok());
        let wrong = headers(&[("x-amz-security-token", "guess"), ("authorization", &auth)]);
        let e = check_credentials(&wrong, &s).unwrap_err();
        assert_eq!((e.status, e.code), (403, "AccessDenied"));
        assert!(!e.message.contains("guess") && !e.message.contains(&s.aws_token));
        let no_key = headers(&[("x-amz-security-token", &s.aws_token)]);
        assert_eq!(check_credentials(&no_key, &s).unwrap_err().status, 403);
        assert_eq!(
            check_credentials(&HeaderMap::new(), &s).unwrap_err().status,
            403
        );
    }
}
