//! The official SDK's file-mode writer, test side: the stage `:pipe-info` hands out, files of
//! encrypted zstd NDJSON fragments and their registration entries, and S3 upload headers
//! signed by `aws-sigv4` as the SDK's S3 client signs them. Used by `file_mode` and the
//! hostile suite's file-mode surfaces.

use aes::cipher::{KeyIvInit, StreamCipher};
use base64::Engine as _;
use serde_json::{json, Value};

use super::rows;

pub(crate) type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// The stage and key `:pipe-info` hands out.
pub(crate) struct StageInfo {
    /// `snowpipe-emulator/stage/<prefix>/`.
    pub location: String,
    pub key: [u8; 32],
    pub key_id: String,
    pub diversifier: String,
    pub aws_key_id: String,
    pub aws_secret_key: String,
    pub aws_token: String,
}

impl StageInfo {
    /// The stage of a `:pipe-info` answer.
    pub(crate) fn from_pipe_info(pipe_info: &Value) -> Self {
        let stage = &pipe_info["rowset_stage_location"];
        assert_eq!(stage["location_type"], "S3");
        assert!(stage["storage_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"));
        let enc = &pipe_info["encryption_info"];
        StageInfo {
            location: stage["location"].as_str().unwrap().to_string(),
            key: base64::engine::general_purpose::STANDARD
                .decode(enc["pipe_key"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
            key_id: enc["pipe_key_id"].to_string(),
            diversifier: enc["diversifier"].as_str().unwrap().to_string(),
            aws_key_id: stage["creds"]["AWS_KEY_ID"].as_str().unwrap().to_string(),
            aws_secret_key: stage["creds"]["AWS_SECRET_KEY"]
                .as_str()
                .unwrap()
                .to_string(),
            aws_token: stage["creds"]["AWS_TOKEN"].as_str().unwrap().to_string(),
        }
    }
}

/// One fragment's rows, as the SDK writes them into a file.
pub(crate) struct Part {
    pub ndjson: String,
    pub start: String,
    pub end: String,
    pub iv: [u8; 16],
}

impl Part {
    pub(crate) fn new(ids: std::ops::Range<u32>, iv: u8) -> Self {
        Part {
            ndjson: rows(ids.clone()),
            start: ids.start.to_string(),
            end: (ids.end - 1).to_string(),
            iv: [iv; 16],
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.ndjson.lines().count()
    }
}

/// A file of encrypted fragments and the registration entries that name them.
pub(crate) struct File {
    pub path: String,
    pub bytes: Vec<u8>,
    pub fragments: Vec<Value>,
}

pub(crate) fn file(info: &StageInfo, name: &str, parts: &[Part]) -> File {
    let path = format!("{}{name}", info.location);
    let mut bytes = Vec::new();
    let mut fragments = Vec::new();
    for p in parts {
        let mut data = zstd::encode_all(p.ndjson.as_bytes(), 3).unwrap();
        Aes256Ctr::new(&info.key.into(), &p.iv.into()).apply_keystream(&mut data);
        fragments.push(json!({
            "file_path": path, "content_type": "application/x-ndjson",
            "fragment_start_byte_offset": bytes.len(), "fragment_length_bytes": data.len(),
            "fragment_length_uncompressed_bytes": p.ndjson.len() + 2 * p.rows(),
            "fragment_start_offset_token": p.start, "fragment_end_offset_token": p.end,
            "fragment_row_count": p.rows(), "diversifier": info.diversifier,
            "master_key_id": info.key_id, "encryption_version": "AES-CTR-128.1",
            "iv_base64": base64::engine::general_purpose::STANDARD.encode(p.iv),
            "min_append_timestamp_ms": 1_700_000_000_000u64,
        }));
        bytes.extend_from_slice(&data);
    }
    for f in &mut fragments {
        f["file_length_bytes"] = json!(bytes.len());
    }
    File {
        path,
        bytes,
        fragments,
    }
}

/// The headers of an upload of `decoded` bytes to `url` as the SDK's S3 client sends them,
/// signed with `info`'s credentials by `aws-sigv4`.
pub(crate) fn signed_headers(
    info: &StageInfo,
    url: &str,
    decoded: usize,
) -> reqwest::header::HeaderMap {
    signed_headers_at(info, url, decoded, std::time::SystemTime::now())
}

/// [`signed_headers`] signed as at `time`.
pub(crate) fn signed_headers_at(
    info: &StageInfo,
    url: &str,
    decoded: usize,
    time: std::time::SystemTime,
) -> reqwest::header::HeaderMap {
    use aws_sigv4::http_request::{
        sign, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode,
    };
    let mut h = reqwest::header::HeaderMap::new();
    for (k, v) in [
        ("content-encoding", "aws-chunked"),
        ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
        ("x-amz-decoded-content-length", &decoded.to_string()),
    ] {
        h.insert(k, v.parse().unwrap());
    }
    let identity = aws_credential_types::Credentials::new(
        &info.aws_key_id,
        &info.aws_secret_key,
        Some(info.aws_token.clone()),
        None,
        "stage",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-west-2")
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "PUT",
        url,
        h.iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap())),
        SignableBody::Precomputed("STREAMING-UNSIGNED-PAYLOAD-TRAILER".into()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    for (k, v) in instructions.headers() {
        h.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}
