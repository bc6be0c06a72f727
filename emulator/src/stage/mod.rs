//! The stage of the official SDK's file mode (docs/protocol-wire.md §4.6, "File mode"), served by
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

pub(crate) mod credentials;
pub(crate) mod fragment;
mod s3_error;
pub(crate) mod sigv4;
pub(crate) mod upload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::base::pending_budget::{PendingBudget, Refusal, Reservation};

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
    /// The pipe key: AES-256 key of every file (raw, not diversified: docs/protocol-wire.md §4.6).
    pub pipe_key: [u8; 32],
    pub pipe_key_id: u64,
    pub diversifier: String,
    /// The key of the S3 credentials each location gets (`credentials`): the session tokens'
    /// HMAC key, from which their access key ids and secret keys derive.
    pub credentials_key: [u8; 32],
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
            credentials_key: part("aws credentials"),
        }
    }
}

impl std::fmt::Debug for StageSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageSecrets")
            .field("pipe_key_id", &self.pipe_key_id)
            .field("diversifier", &self.diversifier)
            .finish_non_exhaustive()
    }
}

/// One uploaded file.
struct Object {
    data: Bytes,
    etag: String,
    uploaded: Instant,
    /// Who uploaded it ([`Stage::owner`] of the credentials' grant): only they register it.
    owner: String,
    /// Byte ranges `[start, end)` registrations have landed, merged.
    landed: Vec<(u64, u64)>,
    /// Byte ranges registrations being decoded have claimed ([`Claim`]).
    claimed: Vec<(u64, u64)>,
    _charge: Reservation,
}

impl Object {
    /// Marks `[start, end)` landed; whether all of the file has.
    fn land(&mut self, start: u64, end: u64) -> bool {
        self.landed.push((start, end));
        self.landed.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.landed.len());
        for &(s, e) in &self.landed {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.landed = merged;
        self.landed
            .first()
            .is_some_and(|&(s, e)| s == 0 && e >= self.data.len() as u64)
    }
}

/// Whether `[a, b)` and `[c, d)` share a byte.
fn overlaps((a, b): (u64, u64), (c, d): (u64, u64)) -> bool {
    a < d && c < b
}

/// The byte ranges one registration is landing: no other registration may claim them while
/// it holds them, and none after they landed. Dropped without [`Claim::land`] (refused,
/// cancelled), it frees them.
pub(crate) struct Claim<'a> {
    stage: &'a Stage,
    /// `(file, ETag when claimed, start, end)`.
    ranges: Vec<(String, String, u64, u64)>,
}

impl Claim<'_> {
    /// The ranges landed: each file is removed once all of it has.
    pub(crate) fn land(mut self) {
        let ranges = std::mem::take(&mut self.ranges);
        let mut objects = self.stage.objects();
        for (path, etag, start, end) in ranges {
            let Some(o) = objects.get_mut(&path) else {
                continue;
            };
            if o.etag != etag {
                // Replaced meanwhile: the new file's bytes were not the ones landed.
                continue;
            }
            if let Some(i) = o.claimed.iter().position(|&r| r == (start, end)) {
                o.claimed.swap_remove(i);
            }
            if o.land(start, end) {
                objects.remove(&path);
                self.stage.landed_files.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if self.ranges.is_empty() {
            return;
        }
        let mut objects = self.stage.objects();
        for (path, etag, start, end) in self.ranges.drain(..) {
            if let Some(o) = objects.get_mut(&path).filter(|o| o.etag == etag) {
                if let Some(i) = o.claimed.iter().position(|&r| r == (start, end)) {
                    o.claimed.swap_remove(i);
                }
            }
        }
    }
}

/// Why a registration may not claim a fragment: its index and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unclaimable {
    pub fragment: usize,
    pub why: String,
}

/// Why an upload does not fit now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// Larger than the whole stage: never fits.
    TooLarge,
    /// The stage's bytes or files are taken by files not yet registered: retry later.
    Busy,
    /// The caller's share of the stage (half its bytes and files) is taken by its own files
    /// and uploads: retry once some landed.
    Share,
}

/// An upload's room in the stage, reserved before its body is read: its bytes charged to
/// the stage's budget and counted in its owner's share until the file is stored or the
/// upload ends.
pub(crate) struct Reserved<'a> {
    stage: &'a Stage,
    owner: String,
    bytes: usize,
    charge: Reservation,
}

impl std::fmt::Debug for Reserved<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reserved")
            .field("owner", &self.owner)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        let mut uploading = self.stage.uploading();
        if let Some(u) = uploading.get_mut(&self.owner) {
            u.0 = u.0.saturating_sub(self.bytes);
            u.1 = u.1.saturating_sub(1);
            if u.1 == 0 {
                uploading.remove(&self.owner);
            }
        }
    }
}

/// The uploaded files, their bounds and counters.
pub(crate) struct Stage {
    pub(crate) secrets: StageSecrets,
    budget: Arc<PendingBudget>,
    max_files: usize,
    orphan_ttl: Duration,
    objects: Mutex<HashMap<String, Object>>,
    /// Per owner, the bytes and count of uploads reserved and not yet stored.
    uploading: Mutex<HashMap<String, (usize, usize)>>,
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
            uploading: Mutex::new(HashMap::new()),
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

    /// Taken after `objects` when both are.
    fn uploading(&self) -> MutexGuard<'_, HashMap<String, (usize, usize)>> {
        self.uploading.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One caller's share of the stage: half its bytes and half its files (at least one),
    /// so one caller's files and idle uploads cannot keep every other caller out.
    pub(crate) fn share(&self) -> (usize, usize) {
        ((self.budget.max() / 2).max(1), (self.max_files / 2).max(1))
    }

    /// Most bytes the stage holds.
    pub(crate) fn max_bytes(&self) -> usize {
        self.budget.max()
    }

    /// Reserves room for an upload of `bytes` by `owner` before it is read: the bytes
    /// against the stage's budget and the owner's share ([`Stage::share`]: its stored
    /// files and its uploads in flight), and a free file slot. Files past their time are
    /// dropped first.
    ///
    /// # Errors
    /// [`Full::TooLarge`] when `bytes` is more than one caller's share of the stage,
    /// [`Full::Share`] when the owner's share is taken, [`Full::Busy`] when the room is
    /// taken by files not yet registered.
    pub(crate) fn reserve(&self, bytes: usize, owner: &str) -> Result<Reserved<'_>, Full> {
        let (share_bytes, share_files) = self.share();
        if bytes > share_bytes {
            return Err(Full::TooLarge);
        }
        self.expire(Instant::now());
        let objects = self.objects();
        if objects.len() >= self.max_files {
            return Err(Full::Busy);
        }
        let mut uploading = self.uploading();
        let (mut held_bytes, mut held_files) = uploading.get(owner).copied().unwrap_or_default();
        for o in objects.values().filter(|o| o.owner == owner) {
            held_bytes += o.data.len();
            held_files += 1;
        }
        if held_files >= share_files || held_bytes.saturating_add(bytes) > share_bytes {
            return Err(Full::Share);
        }
        let mut charge = self.budget.reservation();
        charge.grow_to(bytes).map_err(|e| match e {
            Refusal::TooLarge => Full::TooLarge,
            Refusal::Full => Full::Busy,
        })?;
        let u = uploading.entry(owner.to_string()).or_default();
        u.0 += bytes;
        u.1 += 1;
        Ok(Reserved {
            stage: self,
            owner: owner.to_string(),
            bytes,
            charge,
        })
    }

    /// Stores `data` at `path` (replacing a file there, as S3 does) and returns its ETag,
    /// the hex of the first 16 bytes of its SHA-256 (S3's is an MD5: 32 hex digits too).
    /// The reservation's charge is shrunk to the file's size and held while it is stored;
    /// the file is its owner's.
    ///
    /// # Errors
    /// [`Full::Busy`] when the files slots were all taken meanwhile.
    pub(crate) fn put(&self, path: &str, data: Bytes, room: Reserved<'_>) -> Result<String, Full> {
        let mut room = room;
        let mut charge = std::mem::replace(&mut room.charge, self.budget.reservation());
        charge.shrink_to(data.len());
        let owner = room.owner.clone();
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
                owner,
                landed: Vec::new(),
                claimed: Vec::new(),
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

    /// Who holds files in the stage: the caller (`Principal::subject`) and the database.
    pub(crate) fn owner(subject: &str, db: &str) -> String {
        format!("{subject}\0{db}")
    }

    /// Claims the byte ranges `(file, start, length)` of one registration by `owner`: each
    /// file must be `owner`'s, and no range may overlap another of the registration, one
    /// another registration is landing, or one already landed. A file the stage does not
    /// hold is left to `fragment::open` to refuse.
    ///
    /// # Errors
    /// The first fragment that may not be claimed, and why; nothing is claimed then.
    pub(crate) fn claim(
        &self,
        owner: &str,
        ranges: &[(&str, u64, u64)],
    ) -> Result<Claim<'_>, Unclaimable> {
        let mut objects = self.objects();
        let mut claimed: Vec<(String, String, u64, u64)> = Vec::with_capacity(ranges.len());
        for (i, &(path, start, len)) in ranges.iter().enumerate() {
            let Some(o) = objects.get_mut(path) else {
                continue;
            };
            let range = (start, start.saturating_add(len));
            let why = if o.owner != owner {
                Some(
                    "the file was uploaded with the stage credentials another caller or \
                     database was given; register only files uploaded with this channel's \
                     :pipe-info credentials"
                        .to_string(),
                )
            } else if o.landed.iter().any(|&r| overlaps(r, range)) {
                Some(format!(
                    "bytes {}..{} were landed already by an earlier registration; a byte \
                     range lands once",
                    range.0, range.1
                ))
            } else if o.claimed.iter().any(|&r| overlaps(r, range)) {
                Some(format!(
                    "bytes {}..{} overlap another fragment of this registration or of one \
                     being landed; a byte range lands once",
                    range.0, range.1
                ))
            } else {
                None
            };
            if let Some(why) = why {
                // Undone under the same lock: no other registration saw these claims.
                for (path, _, start, end) in claimed {
                    if let Some(o) = objects.get_mut(&path) {
                        if let Some(j) = o.claimed.iter().position(|&r| r == (start, end)) {
                            o.claimed.swap_remove(j);
                        }
                    }
                }
                return Err(Unclaimable { fragment: i, why });
            }
            o.claimed.push(range);
            claimed.push((path.to_string(), o.etag.clone(), range.0, range.1));
        }
        drop(objects);
        Ok(Claim {
            stage: self,
            ranges: claimed,
        })
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

    /// The stage location `:pipe-info` hands out (docs/protocol-wire.md §4.2): S3 at
    /// `endpoint` (`host:port`, which the SDK reaches over HTTPS), under a prefix of its
    /// own, since the SDK numbers its files from 0 in each location it is given.
    ///
    /// Its credentials are its own: they upload under this prefix only, for `owner` only,
    /// until `expiry_ms` (`credentials`).
    pub(crate) fn location(&self, endpoint: &str, expiry_ms: i64, owner: &str) -> Value {
        let prefix = uuid::Uuid::new_v4().simple().to_string();
        let creds = credentials::issue(
            &self.secrets.credentials_key,
            &credentials::Grant {
                prefix: prefix.clone(),
                expiry_ms,
                owner: owner.to_string(),
            },
        );
        json!({
            "expiry_time_ms": expiry_ms,
            "location_type": "S3",
            "use_s3_regional_url": false,
            "location": format!("{BUCKET}/stage/{prefix}/"),
            "region": "us-west-2",
            "storage_endpoint": endpoint,
            "creds": {
                "AWS_KEY_ID": creds.key_id,
                "AWS_SECRET_KEY": creds.secret_key,
                "AWS_TOKEN": creds.token,
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
        let s = stage(200, 4);
        let r = s.reserve(60, "me").unwrap();
        let etag = s.put("b/f", Bytes::from(vec![1u8; 60]), r).unwrap();
        assert_eq!(etag.len(), 32);
        assert_eq!(
            s.reserve(50, "me").unwrap_err(),
            Full::Share,
            "60 of my 100 held"
        );
        s.claim("me", &[("b/f", 20, 40)]).unwrap().land();
        assert!(s.get("b/f").is_some(), "bytes 0..20 not landed yet");
        s.claim("me", &[("b/f", 0, 20)]).unwrap().land();
        assert!(s.get("b/f").is_none(), "all 60 bytes landed");
        assert!(s.reserve(100, "me").is_ok(), "its room is free again");
        assert_eq!(s.stats()["landed_files"], 1);
    }

    #[test]
    fn a_range_is_claimed_once_by_its_owner_and_lands_once() {
        let s = stage(200, 4);
        let r = s.reserve(60, "me").unwrap();
        s.put("b/f", Bytes::from(vec![1u8; 60]), r).unwrap();
        let refused = |r: Result<Claim<'_>, Unclaimable>| r.err().map(|e| e.fragment);
        assert_eq!(
            refused(s.claim("you", &[("b/f", 0, 10)])),
            Some(0),
            "not yours"
        );
        assert_eq!(
            refused(s.claim("me", &[("b/f", 0, 10), ("b/f", 5, 10)])),
            Some(1),
            "the same bytes twice in one registration"
        );
        let held = s.claim("me", &[("b/f", 0, 10)]).unwrap();
        assert_eq!(
            refused(s.claim("me", &[("b/f", 9, 1)])),
            Some(0),
            "claimed by a registration being landed"
        );
        drop(held);
        s.claim("me", &[("b/f", 0, 10)]).unwrap().land();
        assert_eq!(
            refused(s.claim("me", &[("b/f", 20, 5), ("b/f", 0, 10)])),
            Some(1),
            "landed already"
        );
        // A refused claim frees what it took before the refusal.
        s.claim("me", &[("b/f", 20, 5)]).unwrap().land();
    }

    #[test]
    fn the_stage_bounds_bytes_and_files() {
        let s = stage(100, 4);
        assert_eq!(s.share(), (50, 2));
        assert_eq!(s.reserve(51, "me").unwrap_err(), Full::TooLarge);
        for name in ["a", "b"] {
            let r = s.reserve(10, "me").unwrap();
            s.put(name, Bytes::from_static(b"0123456789"), r).unwrap();
        }
        assert_eq!(
            s.reserve(1, "me").unwrap_err(),
            Full::Share,
            "two files, my two slots"
        );
        for name in ["c", "d"] {
            let r = s.reserve(10, "you").unwrap();
            s.put(name, Bytes::from_static(b"0123456789"), r).unwrap();
        }
        assert_eq!(
            s.reserve(1, "them").unwrap_err(),
            Full::Busy,
            "four files, four slots"
        );
        // Replacing a file needs no new slot.
        let mut charge = s.budget.reservation();
        charge.grow_to(1).unwrap();
        let r = Reserved {
            stage: &s,
            owner: "me".into(),
            bytes: 1,
            charge,
        };
        s.put("a", Bytes::from_static(b"x"), r).unwrap();
        assert_eq!(s.budget.used(), 31);
    }

    /// Issue 72: 1,024 one-byte uploads filled the stage's files, and one idle upload that
    /// declared the stage's size reserved all its bytes: every other caller waited and got
    /// 503. A caller now holds at most half the stage, in files and in uploads under way.
    #[test]
    fn one_caller_holds_at_most_its_share() {
        let s = stage(1000, 8);
        let idle = s.reserve(500, "me").unwrap();
        assert_eq!(s.reserve(1, "me").unwrap_err(), Full::Share, "its bytes");
        let r = s.reserve(500, "you").unwrap();
        s.put("y/0", Bytes::from(vec![0u8; 10]), r).unwrap();
        drop(idle);
        for i in 0..4 {
            let r = s.reserve(1, "me").unwrap();
            s.put(&format!("m/{i}"), Bytes::from_static(b"x"), r)
                .unwrap();
        }
        assert_eq!(s.reserve(1, "me").unwrap_err(), Full::Share, "its files");
        for i in 1..4 {
            let r = s.reserve(1, "you").unwrap();
            s.put(&format!("y/{i}"), Bytes::from_static(b"x"), r)
                .unwrap();
        }
        assert_eq!(s.stats()["files"], 8);
    }

    #[test]
    fn a_file_never_registered_expires() {
        let s = stage(100, 1).with_orphan_ttl(Duration::ZERO);
        let r = s.reserve(10, "me").unwrap();
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
        assert_ne!(a.credentials_key, b.credentials_key);
        let shown = format!("{a:?}");
        let hex: String = a.credentials_key.iter().map(|b| format!("{b}")).collect();
        assert!(!shown.contains(&hex) && !shown.contains("credentials_key"));
    }
}
