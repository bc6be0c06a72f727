//! The stage of the official SDK's file mode (docs/protocol.md §4.6, "File mode"), served by
//! the emulator itself.
//!
//! Under load, on large batches, or when told to (`SWITCH_TO_FILE_MODE`), the official SDK
//! stops posting rows and instead uploads an encrypted zstd NDJSON file to the stage that
//! `:pipe-info` names, then registers byte ranges of it (fragments) on a channel with
//! `POST …/channels/{channel}/filebuffer`. The emulator names itself as that stage: an S3
//! location whose `storage_endpoint` is the host and port the SDK reached `:pipe-info` on,
//! so the SDK's S3 client sends a path-style `PUT /snowpipe-emulator/stage/<prefix>/<n>.ndjson`
//! to the emulator.
//!
//! - [`upload`] reads such a PUT: credentials, `aws-chunked` framing, the checksum trailer,
//!   and the ETag the SDK later registers.
//! - [`fragment`] reads a registration and checks each fragment against the stored file
//!   (ETag, lengths, key, encryption version) and decrypts it; the service
//!   (`service/files.rs`) decompresses it, checks its row count, and hands the rows to the
//!   append path: same conversions, row errors, offset tokens and commit as row mode.
//! - [`Stage`] (this file) holds the uploaded files: in memory only, charged to a budget of
//!   their own (`--max-stage-bytes`), at most `--max-stage-files` of them. A file is removed
//!   once every byte of it was landed by registrations, and one never fully registered is
//!   removed [`ORPHAN_TTL`] after its upload (its writer died or gave up). Nothing of file
//!   mode is written to disk: a restart forgets the stage, and a registration of a file
//!   uploaded before the restart is refused (404 `ERR_STAGE_FILE_NOT_FOUND`).
//!
//! The stage's secrets (the pipe key the SDK encrypts with and the S3 credentials it signs
//! with) derive from the scoped-token secret, which a data directory keeps across restarts.

pub(crate) mod fragment;
pub(crate) mod upload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::pending_budget::{PendingBudget, Refusal, Reservation};

/// The bucket (first path segment) of the emulator's stage.
pub(crate) const BUCKET: &str = "snowpipe-emulator";

/// How long an uploaded file that was never fully registered is kept.
pub(crate) const ORPHAN_TTL: Duration = Duration::from_secs(600);

/// Default [`crate::EmulatorConfig::max_stage_bytes`]: 256 MiB of uploaded files.
pub const DEFAULT_MAX_STAGE_BYTES: usize = 256 * 1024 * 1024;

/// Default [`crate::EmulatorConfig::max_stage_files`]: 1,024 uploaded files.
pub const DEFAULT_MAX_STAGE_FILES: usize = 1024;

/// The encryption version the official SDK writes and the emulator reads.
pub(crate) const ENCRYPTION_VERSION: &str = "AES-CTR-128.1";

/// The key and credentials the stage hands out in `:pipe-info`.
pub(crate) struct StageSecrets {
    /// The pipe key: AES-256 key of every file (raw, not diversified: docs/protocol.md §4.6).
    pub pipe_key: [u8; 32],
    pub pipe_key_id: u64,
    pub diversifier: String,
    pub aws_key_id: String,
    pub aws_secret_key: String,
    /// The session token the SDK sends as `x-amz-security-token`: the upload's credential.
    pub aws_token: String,
}

impl StageSecrets {
    /// Secrets derived from `secret` (32 random bytes), one SHA-256 per label.
    pub(crate) fn derive(secret: &[u8]) -> Self {
        let part = |label: &str| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update(secret);
            h.update(b"\0snowpipe-emulator stage\0");
            h.update(label.as_bytes());
            h.finalize().into()
        };
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let id = part("key id");
        Self {
            pipe_key: part("pipe key"),
            pipe_key_id: u64::from_be_bytes(id[..8].try_into().unwrap_or_default()) >> 12,
            diversifier: format!("emulator-{}", &hex(&part("diversifier"))[..12]),
            aws_key_id: format!("EMULATOR{}", hex(&part("aws key id"))[..12].to_uppercase()),
            aws_secret_key: hex(&part("aws secret key")),
            aws_token: hex(&part("aws session token")),
        }
    }
}

impl std::fmt::Debug for StageSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageSecrets")
            .field("pipe_key_id", &self.pipe_key_id)
            .field("diversifier", &self.diversifier)
            .field("aws_key_id", &self.aws_key_id)
            .finish_non_exhaustive()
    }
}

/// One uploaded file.
struct Object {
    data: Bytes,
    etag: String,
    uploaded: Instant,
    /// Byte ranges `[start, end)` registrations have landed, merged.
    landed: Vec<(u64, u64)>,
    _charge: Reservation,
}

/// Why an upload does not fit now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// Larger than the whole stage: never fits.
    TooLarge,
    /// The stage's bytes or files are taken by files not yet registered: retry later.
    Busy,
}

/// The uploaded files, their bounds and counters.
pub(crate) struct Stage {
    pub(crate) secrets: StageSecrets,
    budget: Arc<PendingBudget>,
    max_files: usize,
    orphan_ttl: Duration,
    objects: Mutex<HashMap<String, Object>>,
    uploads: AtomicU64,
    landed_files: AtomicU64,
    expired_files: AtomicU64,
    registrations: AtomicU64,
    refused_registrations: AtomicU64,
}

impl Stage {
    /// An empty stage holding at most `max_bytes` in at most `max_files` files.
    pub(crate) fn new(secrets: StageSecrets, max_bytes: usize, max_files: usize) -> Self {
        Self {
            secrets,
            budget: PendingBudget::new(max_bytes),
            max_files: max_files.max(1),
            orphan_ttl: ORPHAN_TTL,
            objects: Mutex::new(HashMap::new()),
            uploads: AtomicU64::new(0),
            landed_files: AtomicU64::new(0),
            expired_files: AtomicU64::new(0),
            registrations: AtomicU64::new(0),
            refused_registrations: AtomicU64::new(0),
        }
    }

    /// Sets how long a file never fully registered is kept (tests shorten it).
    #[cfg(test)]
    pub(crate) fn with_orphan_ttl(mut self, ttl: Duration) -> Self {
        self.orphan_ttl = ttl;
        self
    }

    fn objects(&self) -> MutexGuard<'_, HashMap<String, Object>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Most bytes the stage holds.
    pub(crate) fn max_bytes(&self) -> usize {
        self.budget.max()
    }

    /// Reserves room for an upload of `bytes` before it is read: the bytes against the
    /// stage's budget, and a free file slot. Files past their time are dropped first.
    ///
    /// # Errors
    /// [`Full::TooLarge`] when `bytes` is more than the whole stage, [`Full::Busy`] when the
    /// room is taken by files not yet registered.
    pub(crate) fn reserve(&self, bytes: usize) -> Result<Reservation, Full> {
        if bytes > self.budget.max() {
            return Err(Full::TooLarge);
        }
        self.expire(Instant::now());
        if self.objects().len() >= self.max_files {
            return Err(Full::Busy);
        }
        let mut r = self.budget.reservation();
        r.grow_to(bytes).map_err(|e| match e {
            Refusal::TooLarge => Full::TooLarge,
            Refusal::Full => Full::Busy,
        })?;
        Ok(r)
    }

    /// Stores `data` at `path` (replacing a file there, as S3 does) and returns its ETag,
    /// the hex of the first 16 bytes of its SHA-256 (S3's is an MD5: 32 hex digits too).
    /// `charge` is shrunk to the file's size and held while it is stored.
    ///
    /// # Errors
    /// [`Full::Busy`] when the files slots were all taken meanwhile.
    pub(crate) fn put(
        &self,
        path: &str,
        data: Bytes,
        mut charge: Reservation,
    ) -> Result<String, Full> {
        charge.shrink_to(data.len());
        let digest = Sha256::digest(&data);
        let etag: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let mut objects = self.objects();
        if objects.len() >= self.max_files && !objects.contains_key(path) {
            return Err(Full::Busy);
        }
        objects.insert(
            path.to_string(),
            Object {
                data,
                etag: etag.clone(),
                uploaded: Instant::now(),
                landed: Vec::new(),
                _charge: charge,
            },
        );
        self.uploads.fetch_add(1, Ordering::Relaxed);
        Ok(etag)
    }

    /// The file at `path` and its ETag.
    pub(crate) fn get(&self, path: &str) -> Option<(Bytes, String)> {
        self.objects()
            .get(path)
            .map(|o| (o.data.clone(), o.etag.clone()))
    }

    /// Records that a registration landed `[start, start + len)` of the file at `path`,
    /// and removes the file once all of it has landed.
    pub(crate) fn landed(&self, path: &str, start: u64, len: u64) {
        let mut objects = self.objects();
        let Some(o) = objects.get_mut(path) else {
            return;
        };
        o.landed.push((start, start.saturating_add(len)));
        o.landed.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(o.landed.len());
        for &(s, e) in &o.landed {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        let whole = merged
            .first()
            .is_some_and(|&(s, e)| s == 0 && e >= o.data.len() as u64);
        o.landed = merged;
        if whole {
            objects.remove(path);
            self.landed_files.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a registration that landed (`ok`) or was refused.
    pub(crate) fn count_registration(&self, ok: bool) {
        let counter = if ok {
            &self.registrations
        } else {
            &self.refused_registrations
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops files uploaded more than the orphan time before `now` and not fully landed.
    pub(crate) fn expire(&self, now: Instant) {
        let ttl = self.orphan_ttl;
        let mut objects = self.objects();
        let before = objects.len();
        objects.retain(|_, o| now.saturating_duration_since(o.uploaded) < ttl);
        let gone = before - objects.len();
        if gone > 0 {
            self.expired_files.fetch_add(gone as u64, Ordering::Relaxed);
            tracing::warn!(
                files = gone,
                "stage files uploaded {ttl:?} ago and never fully registered were removed"
            );
        }
    }

    /// The stage's share of `GET /`.
    pub(crate) fn stats(&self) -> Value {
        let (files, bytes) = {
            let objects = self.objects();
            (
                objects.len(),
                objects.values().map(|o| o.data.len()).sum::<usize>(),
            )
        };
        json!({
            "files": files,
            "bytes": bytes,
            "max_bytes": self.budget.max(),
            "max_files": self.max_files,
            "uploads": self.uploads.load(Ordering::Relaxed),
            "registrations": self.registrations.load(Ordering::Relaxed),
            "refused_registrations": self.refused_registrations.load(Ordering::Relaxed),
            "landed_files": self.landed_files.load(Ordering::Relaxed),
            "expired_files": self.expired_files.load(Ordering::Relaxed),
        })
    }

    /// The stage location `:pipe-info` hands out (docs/protocol.md §4.2): S3 at
    /// `endpoint` (`host:port`, which the SDK reaches over HTTPS), under a prefix of its
    /// own, since the SDK numbers its files from 0 in each location it is given.
    pub(crate) fn location(&self, endpoint: &str, expiry_ms: i64) -> Value {
        let prefix = uuid::Uuid::new_v4().simple().to_string();
        json!({
            "expiry_time_ms": expiry_ms,
            "location_type": "S3",
            "use_s3_regional_url": false,
            "location": format!("{BUCKET}/stage/{prefix}/"),
            "region": "us-west-2",
            "storage_endpoint": endpoint,
            "creds": {
                "AWS_KEY_ID": self.secrets.aws_key_id,
                "AWS_SECRET_KEY": self.secrets.aws_secret_key,
                "AWS_TOKEN": self.secrets.aws_token,
            },
        })
    }

    /// The `encryption_info` of `:pipe-info`.
    pub(crate) fn encryption_info(&self) -> Value {
        json!({
            "pipe_key": base64::engine::general_purpose::STANDARD.encode(self.secrets.pipe_key),
            "pipe_key_id": self.secrets.pipe_key_id,
            "diversifier": self.secrets.diversifier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(bytes: usize, files: usize) -> Stage {
        Stage::new(StageSecrets::derive(&[7u8; 32]), bytes, files)
    }

    #[test]
    fn a_file_is_removed_once_every_byte_landed_and_frees_its_room() {
        let s = stage(100, 4);
        let r = s.reserve(60).unwrap();
        let etag = s.put("b/f", Bytes::from(vec![1u8; 60]), r).unwrap();
        assert_eq!(etag.len(), 32);
        assert_eq!(s.reserve(50).unwrap_err(), Full::Busy, "60 of 100 held");
        s.landed("b/f", 20, 40);
        assert!(s.get("b/f").is_some(), "bytes 0..20 not landed yet");
        s.landed("b/f", 0, 25);
        assert!(s.get("b/f").is_none(), "all 60 bytes landed");
        assert!(s.reserve(100).is_ok(), "its room is free again");
        assert_eq!(s.stats()["landed_files"], 1);
    }

    #[test]
    fn the_stage_bounds_bytes_and_files() {
        let s = stage(100, 2);
        assert_eq!(s.reserve(101).unwrap_err(), Full::TooLarge);
        for name in ["a", "b"] {
            let r = s.reserve(10).unwrap();
            s.put(name, Bytes::from_static(b"0123456789"), r).unwrap();
        }
        assert_eq!(
            s.reserve(1).unwrap_err(),
            Full::Busy,
            "two files, two slots"
        );
        // Replacing a file needs no new slot.
        let mut r = s.budget.reservation();
        r.grow_to(1).unwrap();
        s.put("a", Bytes::from_static(b"x"), r).unwrap();
        assert_eq!(s.budget.used(), 11);
    }

    #[test]
    fn a_file_never_registered_expires() {
        let s = stage(100, 1).with_orphan_ttl(Duration::ZERO);
        let r = s.reserve(10).unwrap();
        s.put("a", Bytes::from_static(b"0123456789"), r).unwrap();
        s.expire(Instant::now());
        assert!(s.get("a").is_none());
        assert_eq!(s.stats()["expired_files"], 1);
        assert_eq!(s.budget.used(), 0);
    }

    #[test]
    fn secrets_differ_per_secret_and_stay_out_of_debug() {
        let a = StageSecrets::derive(&[1u8; 32]);
        let b = StageSecrets::derive(&[2u8; 32]);
        assert_ne!(a.pipe_key, b.pipe_key);
        assert_ne!(a.aws_token, b.aws_token);
        let shown = format!("{a:?}");
        assert!(!shown.contains(&a.aws_token) && !shown.contains(&a.aws_secret_key));
    }
}
