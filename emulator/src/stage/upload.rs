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
//! The credentials checked: the session token (`x-amz-security-token`) must be one a
//! `:pipe-info` issued (`credentials`), not expired, for the location the object's key is
//! under; the access key id in `Authorization` must be that token's, and the SigV4
//! signature must be the one its secret key gives (`sigv4`). Plain (not chunked) bodies are
//! read too, with their `x-amz-content-sha256` or `x-amz-checksum-crc32` header checked when
//! given. Trailers are few and short, and a value the emulator quotes back (in an error and
//! so in the log) is quoted escaped and cut.

use base64::Engine as _;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::credentials::{self, Grant};
pub(crate) use super::s3_error::S3Error;
use super::sigv4;
use super::{StageSecrets, BUCKET};

/// Most trailers an `aws-chunked` body may end with, and most bytes one trailer line may
/// hold (the SDK sends one, `x-amz-checksum-crc32:<8 characters>`).
const MAX_TRAILERS: usize = 8;
const MAX_TRAILER_LINE: usize = 256;

/// `value` as an error message quotes it: escaped (no line breaks or control characters
/// reach the log raw) and cut to 64 characters, with its length when cut.
pub(crate) fn quoted(value: &str) -> String {
    const MOST: usize = 64;
    if value.chars().count() <= MOST {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MOST).collect();
        format!("{head:?}… ({} bytes)", value.len())
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Checks the upload of object `key` (`snowpipe-emulator/…`, decoded): its session token
/// was issued by a `:pipe-info` of this stage, has not expired at `now_ms`, and grants the
/// location `key` is under; the access key id is the token's, and the SigV4 signature is
/// the one the token's secret key gives. Returns the grant (whose owner the file gets).
///
/// # Errors
/// 403 `InvalidToken`, `ExpiredToken`, `InvalidAccessKeyId`, `AccessDenied`,
/// `SignatureDoesNotMatch` or `RequestTimeTooSkewed`, naming what is wrong (never a
/// secret); 501 `NotImplemented` for signed-chunk bodies.
pub(crate) fn check_credentials(
    req: &sigv4::Request<'_>,
    key: &str,
    secrets: &StageSecrets,
    now_ms: i64,
) -> Result<Grant, S3Error> {
    let headers = req.headers;
    let again = "; fetch :pipe-info again and upload with the credentials of the stage it returns";
    let token = header(headers, "x-amz-security-token").ok_or_else(|| {
        S3Error::new(
            403,
            "AccessDenied",
            format!("no x-amz-security-token{again}"),
        )
    })?;
    let (grant, key_id, secret_key) = credentials::open(&secrets.credentials_key, token)
        .map_err(|why| S3Error::new(403, "InvalidToken", format!("{why}{again}")))?;
    if grant.expiry_ms <= now_ms {
        return Err(S3Error::new(
            403,
            "ExpiredToken",
            format!(
                "the stage credentials expired at {} ms (their expiry_time_ms){again}",
                grant.expiry_ms
            ),
        ));
    }
    let auth = sigv4::authorization(headers)?;
    if !bool::from(auth.key_id.as_bytes().ct_eq(key_id.as_bytes())) {
        return Err(S3Error::new(
            403,
            "InvalidAccessKeyId",
            format!("the access key id in Authorization is not the x-amz-security-token's{again}"),
        ));
    }
    let location = format!("{BUCKET}/stage/{}/", grant.prefix);
    if !key.starts_with(&location) || key[location.len()..].split('/').any(|p| p == "..") {
        return Err(S3Error::new(
            403,
            "AccessDenied",
            format!(
                "these credentials upload under {location} only, not to {}",
                quoted(key)
            ),
        ));
    }
    if header(headers, "x-amz-content-sha256").is_some_and(|v| v.starts_with("STREAMING-AWS4")) {
        return Err(S3Error::new(
            501,
            "NotImplemented",
            "the emulator's stage reads unsigned aws-chunked bodies \
             (STREAMING-UNSIGNED-PAYLOAD-TRAILER) or plain ones, not signed chunks",
        ));
    }
    sigv4::verify(req, &auth, &secret_key, now_ms)?;
    Ok(grant)
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
                    "the body holds {} bytes where {} were declared",
                    data.len(),
                    quoted(want)
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
                format!(
                    "the CRC-32 of the body is {got}, not the {} sent",
                    quoted(want)
                ),
            ));
        }
    }
    if let Some(want) = checksum("x-amz-checksum-sha256") {
        let got = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&data));
        if got != want {
            return Err(S3Error::new(
                400,
                "BadDigest",
                format!(
                    "the SHA-256 of the body is {got}, not the {} sent",
                    quoted(want)
                ),
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
        if trailers.len() == MAX_TRAILERS {
            return Err(bad(&format!("more than {MAX_TRAILERS} trailers")));
        }
        if end - at > MAX_TRAILER_LINE {
            return Err(bad(&format!(
                "a trailer has {} bytes; at most {MAX_TRAILER_LINE} are read",
                end - at
            )));
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

    /// Signs `headers` as the AWS SDKs' signer does (aws-sigv4: S3's settings, the session
    /// token signed, the payload hash from `x-amz-content-sha256`) at `at`.
    pub(crate) fn sign(
        method: &str,
        url: &str,
        headers: &mut HeaderMap,
        creds: &credentials::Credentials,
        at: std::time::SystemTime,
    ) {
        use aws_sigv4::http_request::{
            sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
            SigningSettings, UriPathNormalizationMode,
        };
        let identity = aws_credential_types::Credentials::new(
            &creds.key_id,
            &creds.secret_key,
            Some(creds.token.clone()),
            None,
            "stage",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-west-2")
            .name("s3")
            .time(at)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let payload = header(headers, "x-amz-content-sha256")
            .unwrap_or("UNSIGNED-PAYLOAD")
            .to_string();
        let signable = SignableRequest::new(
            method,
            url,
            headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_str().unwrap())),
            SignableBody::Precomputed(payload),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        for (k, v) in instructions.headers() {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
    }

    #[test]
    fn an_upload_needs_its_locations_own_unexpired_credentials_and_signature() {
        let s = StageSecrets::derive(&[3u8; 32]);
        let now = std::time::SystemTime::now();
        let now_ms = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let grant = Grant {
            prefix: "p1".into(),
            expiry_ms: now_ms + 3_600_000,
            owner: "ME\0DB".into(),
        };
        let creds = credentials::issue(&s.credentials_key, &grant);
        let key = "snowpipe-emulator/stage/p1/0.ndjson";
        let signed = |path: &str, creds: &credentials::Credentials, at| {
            let mut h = sdk_headers(10);
            h.insert("host", "127.0.0.1:8080".parse().unwrap());
            sign(
                "PUT",
                &format!("http://127.0.0.1:8080/{path}?x-id=PutObject"),
                &mut h,
                creds,
                at,
            );
            h
        };
        let check = |h: &HeaderMap, path: &str, now_ms: i64| {
            let req = sigv4::Request {
                method: "PUT",
                raw_path: &format!("/{path}"),
                raw_query: "x-id=PutObject",
                headers: h,
            };
            check_credentials(&req, path, &s, now_ms)
        };
        let h = signed(key, &creds, now);
        assert_eq!(check(&h, key, now_ms).unwrap(), grant);
        // The same credentials, another location's key: refused, signature or not.
        let other = "snowpipe-emulator/stage/p2/0.ndjson";
        let e = check(&signed(other, &creds, now), other, now_ms).unwrap_err();
        assert_eq!((e.status, e.code), (403, "AccessDenied"), "{e:?}");
        // Past the grant's expiry.
        let e = check(&h, key, grant.expiry_ms).unwrap_err();
        assert_eq!(e.code, "ExpiredToken");
        // The signature the captured request had (`Signature=00`), or one over other headers.
        let mut forged = h.clone();
        let auth = header(&h, "authorization").unwrap();
        let cut = auth.rfind("Signature=").unwrap();
        forged.insert(
            "authorization",
            format!("{}Signature=00", &auth[..cut]).parse().unwrap(),
        );
        assert_eq!(
            check(&forged, key, now_ms).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        let mut changed = h.clone();
        changed.insert("x-amz-decoded-content-length", "11".parse().unwrap());
        assert_eq!(
            check(&changed, key, now_ms).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        // Signed with the right key id and token but another secret.
        let wrong = credentials::Credentials {
            secret_key: "x".repeat(40),
            key_id: creds.key_id.clone(),
            token: creds.token.clone(),
        };
        let e = check(&signed(key, &wrong, now), key, now_ms).unwrap_err();
        assert_eq!(e.code, "SignatureDoesNotMatch");
        assert!(!e.message.contains(&creds.secret_key) && !e.message.contains(&creds.token));
        // Another stage's token, an old date, no token, nothing.
        let theirs = credentials::issue(&StageSecrets::derive(&[4u8; 32]).credentials_key, &grant);
        let e = check(&signed(key, &theirs, now), key, now_ms).unwrap_err();
        assert_eq!(e.code, "InvalidToken");
        let old = now - std::time::Duration::from_secs(3600);
        let e = check(&signed(key, &creds, old), key, now_ms).unwrap_err();
        assert_eq!(e.code, "RequestTimeTooSkewed");
        let mut no_token = h.clone();
        no_token.remove("x-amz-security-token");
        assert_eq!(check(&no_token, key, now_ms).unwrap_err().status, 403);
        assert_eq!(
            check(&HeaderMap::new(), key, now_ms).unwrap_err().status,
            403
        );
    }

    #[test]
    fn trailer_values_are_bounded_and_quoted_escaped() {
        let h = sdk_headers(3);
        let forged = "AAAAAA==\nlevel=ERROR forged log line";
        let raw = format!("3\r\nabc\r\n0\r\nx-amz-checksum-crc32:{forged}\r\n\r\n");
        let e = decode(&h, raw.as_bytes()).unwrap_err();
        assert_eq!(e.code, "BadDigest");
        assert!(!e.message.contains('\n'), "{}", e.message);
        assert!(e.message.contains("\\n"), "{}", e.message);
        let long = "A".repeat(10_000);
        let raw = format!("3\r\nabc\r\n0\r\nx-amz-checksum-crc32:{long}\r\n\r\n");
        let e = decode(&h, raw.as_bytes()).unwrap_err();
        assert!(e.message.len() < 300, "{}", e.message.len());
        let many: String = (0..9).map(|i| format!("x-{i}:v\r\n")).collect();
        let raw = format!("3\r\nabc\r\n0\r\n{many}\r\n");
        assert_eq!(decode(&h, raw.as_bytes()).unwrap_err().status, 400);
        // A value that fits is quoted whole.
        let raw = "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        let e = decode(&h, raw.as_bytes()).unwrap_err();
        assert!(e.message.contains("\"AAAAAA==\""), "{}", e.message);
    }
}
