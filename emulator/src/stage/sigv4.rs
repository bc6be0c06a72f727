//! AWS Signature Version 4 of an S3 request, recomputed as AWS documents it
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>) and
//! compared with the `Signature` of its `Authorization` header. The cryptography is the
//! `hmac` and `sha2` crates'; this file only builds the canonical request and the string to
//! sign. The tests sign with `aws-sigv4`, the AWS SDKs' signer, which the check must agree
//! with.
//!
//! S3's rules: the canonical URI is the path as sent (not normalized, not encoded again),
//! the payload hash is the `x-amz-content-sha256` header (which must be signed), and
//! `SignedHeaders` must include `host`. A request dated more than 15 minutes from the
//! emulator's clock is refused, as S3 refuses it (`RequestTimeTooSkewed`).

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::s3_error::S3Error;

type HmacSha256 = Hmac<Sha256>;

/// How far a request's `x-amz-date` may be from the emulator's clock.
const MAX_SKEW_MS: i64 = 15 * 60 * 1000;

/// A request's signed parts.
pub(crate) struct Request<'a> {
    pub method: &'a str,
    /// The path as received, percent-encoded.
    pub raw_path: &'a str,
    /// The query string as received.
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
}

/// The `Credential`, `SignedHeaders` and `Signature` of an `Authorization` header.
pub(crate) struct Authorization<'a> {
    pub key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub signed_headers: &'a str,
    pub signature: &'a str,
}

fn denied(code: &'static str, why: &str) -> S3Error {
    S3Error::new(403, code, why.to_string())
}

/// Reads `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
///
/// # Errors
/// 403 `AccessDenied` naming what is missing.
pub(crate) fn authorization(headers: &HeaderMap) -> Result<Authorization<'_>, S3Error> {
    let bad = |why: &str| {
        denied(
            "AccessDenied",
            &format!("{why}; sign the upload with AWS SigV4 (AWS4-HMAC-SHA256) and the credentials of the stage :pipe-info returned"),
        )
    };
    let value = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad("no Authorization header"))?;
    let rest = value
        .trim()
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or_else(|| bad("the Authorization header is not AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v.trim()),
            Some(("SignedHeaders", v)) => signed = Some(v.trim()),
            Some(("Signature", v)) => signature = Some(v.trim()),
            _ => {}
        }
    }
    let credential = credential.ok_or_else(|| bad("the Authorization header has no Credential"))?;
    let mut scope = credential.split('/');
    let (Some(key_id), Some(date), Some(region), Some(service), Some("aws4_request"), None) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    ) else {
        return Err(bad(
            "the Credential is not <key id>/<date>/<region>/<service>/aws4_request",
        ));
    };
    Ok(Authorization {
        key_id,
        date,
        region,
        service,
        signed_headers: signed
            .ok_or_else(|| bad("the Authorization header has no SignedHeaders"))?,
        signature: signature.ok_or_else(|| bad("the Authorization header has no Signature"))?,
    })
}

/// AWS's URI encoding of a query name or value: unreserved characters as they are, every
/// other byte `%XX`.
fn uri_encode(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical_query(raw: &str) -> String {
    let decode = |s: &str| -> Vec<u8> { percent_encoding::percent_decode_str(s).collect() };
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&decode(k)), uri_encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header's canonical value: every value of it, trimmed, inner runs of spaces collapsed,
/// joined by commas.
fn canonical_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Milliseconds since the Unix epoch of an `x-amz-date` (`20260101T000000Z`).
fn amz_date_ms(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// Checks the request's signature with `secret_key`, the secret of `auth.key_id`, at
/// `now_ms` (the emulator's clock).
///
/// # Errors
/// 403 `SignatureDoesNotMatch`, `RequestTimeTooSkewed` or `AccessDenied`, naming what
/// differs (never a key or the expected signature).
pub(crate) fn verify(
    req: &Request<'_>,
    auth: &Authorization<'_>,
    secret_key: &str,
    now_ms: i64,
) -> Result<(), S3Error> {
    let header = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let amz_date = header("x-amz-date").ok_or_else(|| {
        denied(
            "AccessDenied",
            "no x-amz-date header; sign the upload with AWS SigV4",
        )
    })?;
    let at = amz_date_ms(amz_date)
        .ok_or_else(|| denied("AccessDenied", "the x-amz-date is not <YYYYMMDD>T<HHMMSS>Z"))?;
    if (at - now_ms).abs() > MAX_SKEW_MS {
        return Err(denied(
            "RequestTimeTooSkewed",
            "the x-amz-date is more than 15 minutes from the emulator's clock; sign with the current time",
        ));
    }
    if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(denied(
            "SignatureDoesNotMatch",
            "the Credential's date is not the x-amz-date's",
        ));
    }
    let signed: Vec<&str> = auth.signed_headers.split(';').collect();
    for needed in ["host", "x-amz-content-sha256", "x-amz-date"] {
        if !signed.contains(&needed) {
            return Err(denied(
                "AccessDenied",
                &format!("SignedHeaders must include {needed}"),
            ));
        }
    }
    let mut canonical = format!(
        "{}\n{}\n{}\n",
        req.method,
        req.raw_path,
        canonical_query(req.raw_query)
    );
    for name in &signed {
        let value = canonical_value(req.headers, name).ok_or_else(|| {
            denied(
                "AccessDenied",
                &format!("the signed header {name:?} is not in the request"),
            )
        })?;
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&value);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(auth.signed_headers);
    canonical.push('\n');
    canonical.push_str(header("x-amz-content-sha256").unwrap_or(""));
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{secret_key}").as_bytes(), auth.date.as_bytes());
    let k = hmac(&k, auth.region.as_bytes());
    let k = hmac(&k, auth.service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    let given: Option<Vec<u8>> = (auth.signature.len() == 64)
        .then(|| {
            (0..64)
                .step_by(2)
                .map(|i| u8::from_str_radix(&auth.signature[i..i + 2], 16).ok())
                .collect()
        })
        .flatten();
    let mut m = <HmacSha256 as Mac>::new_from_slice(&k).unwrap_or_else(|_| unreachable!());
    m.update(to_sign.as_bytes());
    match given {
        Some(sig) if m.verify_slice(&sig).is_ok() => Ok(()),
        _ => Err(denied(
            "SignatureDoesNotMatch",
            "the request signature we calculated does not match the signature you provided; \
             sign with the AWS_SECRET_KEY of the stage :pipe-info returned, over the headers \
             sent",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example (S3 `GET /test.txt` with a range, Signature Version 4 header
    /// examples): its canonical request and signature.
    #[test]
    fn the_documented_example_verifies() {
        let mut h = HeaderMap::new();
        h.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        h.insert("range", "bytes=0-9".parse().unwrap());
        h.insert(
            "x-amz-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse()
                .unwrap(),
        );
        h.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
                .parse()
                .unwrap(),
        );
        let req = Request {
            method: "GET",
            raw_path: "/test.txt",
            raw_query: "",
            headers: &h,
        };
        let auth = authorization(&h).unwrap();
        let now = amz_date_ms("20130524T000100Z").unwrap();
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        verify(&req, &auth, secret, now).unwrap();
        let e = verify(&req, &auth, "another secret", now).unwrap_err();
        assert_eq!(e.code, "SignatureDoesNotMatch");
        let e = verify(&req, &auth, secret, now + 3_600_000).unwrap_err();
        assert_eq!(e.code, "RequestTimeTooSkewed");
        let mut other = h.clone();
        other.insert("range", "bytes=0-99".parse().unwrap());
        let req = Request {
            headers: &other,
            ..req
        };
        let auth = authorization(&other).unwrap();
        assert_eq!(
            verify(&req, &auth, secret, now).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
    }

    #[test]
    fn the_query_is_canonicalized_as_aws_does() {
        assert_eq!(canonical_query("x-id=PutObject"), "x-id=PutObject");
        assert_eq!(canonical_query("b=2&a=1&a"), "a=&a=1&b=2");
        assert_eq!(canonical_query("k=a%20b+c"), "k=a%20b%2Bc");
    }
}
