//! A file registration (`POST …/channels/{channel}/filebuffer`, docs/protocol-wire.md §4.6): a
//! JSON array of fragments, each a byte range of a stage file holding AES-256-CTR
//! encrypted zstd NDJSON. [`parse`] reads one; [`open`] checks a fragment against the
//! stored file and the stage's key and decrypts it; the service (`service/files.rs`)
//! decompresses it, counts its rows and lands the rows of all fragments as one append. Any
//! failed check refuses the whole registration before a row is handed on.
//!
//! What is checked, per fragment: the file exists, its ETag and length are the registered
//! ones, the range lies inside it, the key id, diversifier and encryption version are the
//! stage's, the content type is NDJSON, the IV is 16 bytes; then (in the service) the bytes
//! decrypt to zstd frames that decode whole (nothing after them) and the NDJSON has the
//! registered number of rows. The registered
//! uncompressed length is not checked: it is the SDK's estimate (2,000 rows of 171 bytes
//! were registered as 346,000 bytes for 344,001 decompressed), so decompression is bounded
//! by `--max-decompressed-bytes` instead.

use aes::cipher::{KeyIvInit, StreamCipher};
use base64::Engine as _;
use serde::Deserialize;

use crate::base::api_error::ApiError;

use super::{Stage, ENCRYPTION_VERSION};

/// Most fragments one registration may name.
pub(crate) const MAX_FRAGMENTS: usize = 1024;

/// AES-256 in CTR mode with a 128-bit big-endian counter: what `AES-CTR-128.1` names.
type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// A key id as the SDK sends it: a string (observed) or a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum KeyId {
    Text(String),
    Number(u64),
}

impl KeyId {
    fn matches(&self, id: u64) -> bool {
        match self {
            KeyId::Text(t) => t.trim().parse::<u64>().ok() == Some(id),
            KeyId::Number(n) => *n == id,
        }
    }
}

/// One fragment of a registration, as the official SDK sends it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Fragment {
    pub file_path: String,
    #[serde(default)]
    pub content_type: Option<String>,
    pub file_etag: String,
    pub file_length_bytes: u64,
    pub fragment_length_bytes: u64,
    #[serde(default)]
    pub fragment_start_offset_token: Option<String>,
    #[serde(default)]
    pub fragment_end_offset_token: Option<String>,
    pub fragment_row_count: u64,
    pub fragment_start_byte_offset: u64,
    pub diversifier: String,
    pub master_key_id: KeyId,
    pub iv_base64: String,
    pub encryption_version: String,
}

/// A fragment whose checks passed, decrypted: its zstd bytes, to decompress and count.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The decrypted bytes: zstd frames of NDJSON, if the fragment is what it claims.
    pub zstd: Vec<u8>,
    /// The rows the registration says it holds.
    pub rows: u64,
}

/// Parses a registration body.
///
/// # Errors
/// 400 `ERR_INVALID_FILE_FRAGMENTS` for a body that is not a non-empty array of fragments
/// (at most [`MAX_FRAGMENTS`]), naming the field serde could not read.
pub(crate) fn parse(body: &[u8]) -> Result<Vec<Fragment>, ApiError> {
    let fragments: Vec<Fragment> = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "the registration is not a JSON array of file fragments: {e}"
        ))
    })?;
    if fragments.is_empty() || fragments.len() > MAX_FRAGMENTS {
        return Err(invalid(format!(
            "a registration names 1 to {MAX_FRAGMENTS} fragments, not {}",
            fragments.len()
        )));
    }
    Ok(fragments)
}

fn invalid(message: String) -> ApiError {
    ApiError::new(400, "ERR_INVALID_FILE_FRAGMENTS", message)
}

/// The error for fragment `i` of a registration that fails a check.
pub(crate) fn refused(i: usize, f: &Fragment, what: impl std::fmt::Display) -> ApiError {
    invalid(format!("fragment {i} ({}): {what}", f.file_path))
}

/// Checks fragment `i` against the stored file and the stage's key (see the module docs)
/// and decrypts it.
///
/// # Errors
/// 404 `ERR_STAGE_FILE_NOT_FOUND` for a file the stage does not hold, 400
/// `ERR_INVALID_FILE_FRAGMENTS` naming the check that failed.
pub(crate) fn open(stage: &Stage, i: usize, f: &Fragment) -> Result<Opened, ApiError> {
    let name = |what: String| refused(i, f, what);
    let (file, etag) = stage.get(&f.file_path).ok_or_else(|| {
        ApiError::new(
            404,
            "ERR_STAGE_FILE_NOT_FOUND",
            format!(
                "fragment {i}: the stage holds no file {}; upload it to the stage :pipe-info \
                 returned first (files not registered within {:?}, and files from before a \
                 restart, are gone)",
                f.file_path,
                super::ORPHAN_TTL
            ),
        )
    })?;
    if f.file_etag.trim_matches('"') != etag {
        return Err(name(format!(
            "the file's ETag is {etag}, not the registered {}",
            f.file_etag
        )));
    }
    if f.file_length_bytes != file.len() as u64 {
        return Err(name(format!(
            "the file has {} bytes, not the registered {}",
            file.len(),
            f.file_length_bytes
        )));
    }
    let start = f.fragment_start_byte_offset;
    let end = start
        .checked_add(f.fragment_length_bytes)
        .filter(|&e| e <= file.len() as u64 && f.fragment_length_bytes > 0)
        .ok_or_else(|| {
            name(format!(
                "bytes {start}..+{} are not a non-empty range inside the file's {}",
                f.fragment_length_bytes,
                file.len()
            ))
        })?;
    let secrets = &stage.secrets;
    if !f.master_key_id.matches(secrets.pipe_key_id) {
        return Err(name(format!(
            "master_key_id {:?} is not the pipe key's id {}; fetch :pipe-info again",
            f.master_key_id, secrets.pipe_key_id
        )));
    }
    if f.diversifier != secrets.diversifier {
        return Err(name(format!(
            "diversifier {:?} is not the one :pipe-info returned",
            f.diversifier
        )));
    }
    if f.content_type
        .as_deref()
        .is_some_and(|t| t != "application/x-ndjson")
    {
        return Err(name(format!(
            "content_type {:?} is not application/x-ndjson",
            f.content_type
        )));
    }
    if f.encryption_version != ENCRYPTION_VERSION {
        return Err(name(format!(
            "encryption_version {:?} is not {ENCRYPTION_VERSION}",
            f.encryption_version
        )));
    }
    let iv: [u8; 16] = base64::engine::general_purpose::STANDARD
        .decode(f.iv_base64.trim())
        .ok()
        .and_then(|iv| iv.try_into().ok())
        .ok_or_else(|| name("iv_base64 is not 16 bytes in base64".into()))?;
    let mut zstd = file[start as usize..end as usize].to_vec();
    Aes256Ctr::new(&secrets.pipe_key.into(), &iv.into()).apply_keystream(&mut zstd);
    Ok(Opened {
        zstd,
        rows: f.fragment_row_count,
    })
}
