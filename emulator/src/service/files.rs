//! File registrations of the official SDK's file mode (docs/protocol-wire.md §4.6): the stage's
//! files checked, decrypted and decompressed into one NDJSON body (`stage::fragment`), which
//! then takes the append path as a row append does, so its rows get the same conversions,
//! row errors, offset tokens, fencing and commit. The fragments' ranges are marked landed
//! once the append is taken, and a file is dropped from the stage when all of it landed.
//!
//! What one registration may cost (the fourth security round,
//! `docs/log/security/2026-11-26-hostile-input-fourth-round-issue-72.md`): its ranges are claimed
//! before anything is decoded (`Stage::claim`: the caller's own files, each byte range once,
//! never one landed or being landed), so a registration decodes at most the stage's bytes;
//! the decoding takes one decode turn and must end within [`REGISTRATION_TIME`]; the
//! decompressed body is charged to the pending budget as it grows and stays charged until
//! its rows commit (the charge goes with it into the append); zstd's skippable frames,
//! which hold nothing but cost a pass, are refused.
//!
//! A registration replayed after a lost answer is answered from its continuation token before
//! any file is looked up, as a replayed append is: with `--idempotent-retries` the first
//! answer again (the file may be gone by then), else `STALE_CONTINUATION_TOKEN_SEQUENCER`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::base::api_error::ApiError;
use crate::channels::{ChannelKey, Target, TokenCheck, ELASTIC};
use crate::settings::config::DuplicateAppendPolicy;
use crate::stage::fragment::{self, Fragment};
use crate::stage::Stage;

use super::memory::Meter;
use super::{AppendRequest, Shared};

/// How long one registration's fragments may take to decrypt, decompress and count: the
/// whole stage (256 MiB by default) takes well under a second.
pub(crate) const REGISTRATION_TIME: Duration = Duration::from_secs(10);

impl Shared {
    /// Lands the rows of a file registration on `key`. Returns what an append returns: the
    /// next continuation token and, when the offset tokens cannot name the rows, why.
    ///
    /// # Errors
    /// What [`assemble`] refuses (the whole registration, before any row is queued), and
    /// what an append refuses.
    ///
    /// # Cancellation
    /// Cancelling before the rows are queued lands nothing; after, they commit (as an append).
    pub(crate) async fn register_files(
        self: &Arc<Self>,
        key: ChannelKey,
        target: Arc<Target>,
        continuation_token: Option<String>,
        fragments: Vec<Fragment>,
        owner: &str,
    ) -> Result<(String, Option<String>), ApiError> {
        let elastic = key.channel == ELASTIC;
        let request =
            |body: Bytes,
             start: Option<String>,
             end: Option<String>,
             charge: Option<crate::base::pending_budget::Reservation>| AppendRequest {
                continuation_token: continuation_token.clone(),
                start_offset_token: if elastic { None } else { start },
                end_offset_token: if elastic { None } else { end },
                content_encoding: None,
                uncompressed_len: body.len(),
                body,
                // The decompressed body's charge, held from its first byte until its rows commit.
                body_charge: charge,
            };
        if !elastic && !self.fresh_token(&key, continuation_token.as_deref()) {
            // A replay, a fenced writer or a bad token: the append path answers it (a
            // duplicate without decoding anything), and the files are not needed.
            return self
                .append(key, target, request(Bytes::new(), None, None, None))
                .await;
        }
        let refused = |e: ApiError| {
            self.stage.count_registration(false);
            e
        };
        let ranges: Vec<(&str, u64, u64)> = fragments
            .iter()
            .map(|f| {
                (
                    f.file_path.as_str(),
                    f.fragment_start_byte_offset,
                    f.fragment_length_bytes,
                )
            })
            .collect();
        // Held until the rows are taken (then landed) or the registration fails (then freed).
        let claim = self
            .stage
            .claim(owner, &ranges)
            .map_err(|u| refused(fragment::refused(u.fragment, &fragments[u.fragment], u.why)))?;
        let permit = self.decode_permit().await?;
        let shared = self.clone();
        let deadline = Instant::now() + REGISTRATION_TIME;
        let assembled = tokio::task::spawn_blocking(move || {
            let mut meter = Meter::new(&shared.state.pending_budget);
            let limit = shared.settings.max_uncompressed_bytes;
            assemble(&shared.stage, &fragments, limit, deadline, &mut |n| {
                meter.charge(n)
            })
            .map(|a| {
                meter.settle(a.body.len());
                (a, meter)
            })
        })
        .await
        .map_err(|e| ApiError::new(500, "ERR_GENERAL_EXCEPTION_RETRY_REQUEST", e.to_string()))?;
        drop(permit);
        let (assembled, meter) = assembled.map_err(refused)?;
        let answer = self
            .append(
                key,
                target,
                request(
                    Bytes::from(assembled.body),
                    assembled.start_offset_token,
                    assembled.end_offset_token,
                    Some(meter.into_reservation()),
                ),
            )
            .await;
        self.stage.count_registration(answer.is_ok());
        if answer.is_ok() {
            claim.land();
        }
        answer
    }

    /// Whether `token` is the one the channel expects next (not a replay, not fenced).
    fn fresh_token(&self, key: &ChannelKey, token: Option<&str>) -> bool {
        let idempotent = self.settings.duplicate_append == DuplicateAppendPolicy::Idempotent;
        let chans = self.channels();
        match (chans.get(key), token) {
            (Some(ch), Some(t)) => matches!(ch.check_token(t, idempotent), Ok(TokenCheck::Fresh)),
            _ => false,
        }
    }
}

/// The rows of a registration, ready for the append path.
#[derive(Debug)]
pub(crate) struct Assembled {
    /// The fragments' NDJSON, in order.
    pub body: Vec<u8>,
    pub rows: u64,
    /// The first fragment's start offset token and the last one's end offset token.
    pub start_offset_token: Option<String>,
    pub end_offset_token: Option<String>,
}

/// Refuses zstd data that is not only zstd frames (a skippable frame holds nothing for the
/// rows and costs a pass; the SDK writes none), walking the frames' headers.
fn only_zstd_frames(z: &[u8]) -> Result<(), &'static str> {
    const ZSTD_MAGIC: u32 = 0xFD2F_B528;
    let mut at = 0;
    while at < z.len() {
        let magic = z
            .get(at..at + 4)
            .and_then(|m| m.try_into().ok())
            .map(u32::from_le_bytes);
        match magic {
            Some(ZSTD_MAGIC) => {}
            Some(m) if m & 0xFFFF_FFF0 == 0x184D_2A50 => {
                return Err(
                    "it holds a skippable zstd frame; the SDK's files hold zstd frames of \
                            rows only",
                );
            }
            _ => return Err("it does not decrypt with the pipe key to zstd frames"),
        }
        match zstd::zstd_safe::find_frame_compressed_size(&z[at..]) {
            Ok(n) if n > 0 => at += n,
            _ => return Err("a zstd frame in it is cut short or corrupt"),
        }
    }
    Ok(())
}

/// Checks and decrypts every fragment (`stage::fragment::open`), decompresses it (bounded
/// by `limit` in all, `charge` called with the bytes held before they are allocated: the
/// body so far, the decrypted fragment and its output) and checks its row count, each
/// fragment started before `deadline`.
///
/// # Errors
/// What `open` refuses, 400 `ERR_INVALID_FILE_FRAGMENTS` for bytes that are not zstd NDJSON
/// (or hold a skippable frame) or hold another number of rows, 413 past `limit`, 503 past
/// `deadline`, and what `charge` answers. Nothing is returned in part.
pub(crate) fn assemble(
    stage: &Stage,
    fragments: &[Fragment],
    limit: usize,
    deadline: Instant,
    charge: &mut dyn FnMut(usize) -> Result<(), ApiError>,
) -> Result<Assembled, ApiError> {
    let mut out = Assembled {
        body: Vec::new(),
        rows: 0,
        start_offset_token: fragments
            .first()
            .and_then(|f| f.fragment_start_offset_token.clone()),
        end_offset_token: fragments
            .last()
            .and_then(|f| f.fragment_end_offset_token.clone()),
    };
    for (i, f) in fragments.iter().enumerate() {
        if Instant::now() > deadline {
            return Err(ApiError::new(
                503,
                "ERR_SERVICE_UNAVAILABLE",
                format!(
                    "fragment {i}: the registration's fragments took longer than \
                     {REGISTRATION_TIME:?} to decode; register fewer or smaller fragments"
                ),
            ));
        }
        let held = out.body.len();
        // The decrypted copy, before it is made.
        charge(
            held.saturating_add(usize::try_from(f.fragment_length_bytes).unwrap_or(usize::MAX)),
        )?;
        let opened = fragment::open(stage, i, f)?;
        only_zstd_frames(&opened.zstd).map_err(|why| fragment::refused(i, f, why))?;
        let room = limit.saturating_sub(out.body.len());
        let mut charge_here = |n: usize| charge(held.saturating_add(n));
        let ndjson = super::decompress(Some("zstd"), opened.zstd.into(), room, &mut charge_here)
            .map_err(|e| {
                if e.status == 413 || e.status == 429 {
                    e
                } else {
                    fragment::refused(
                        i,
                        f,
                        format!(
                            "it does not decrypt with the pipe key to zstd data ({}); the file \
                             is corrupt or was encrypted with another key",
                            e.message
                        ),
                    )
                }
            })?;
        let rows = super::lines(&ndjson).count() as u64;
        if rows != opened.rows {
            return Err(fragment::refused(
                i,
                f,
                format!("it holds {rows} rows, not the registered {}", opened.rows),
            ));
        }
        if out.body.is_empty() {
            // The one fragment of most registrations: its buffer becomes the body.
            out.body = Vec::from(ndjson);
        } else {
            out.body.extend_from_slice(&ndjson);
        }
        if !out.body.ends_with(b"\n") {
            out.body.push(b'\n');
        }
        out.rows += rows;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use aes::cipher::{KeyIvInit, StreamCipher};
    use base64::Engine as _;
    use bytes::Bytes;

    use super::*;
    use crate::service::test_channel::{open_c, DDL};
    use crate::stage::fragment::{parse, KeyId};
    use crate::stage::{Stage, StageSecrets};

    type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

    const IV: [u8; 16] = [9u8; 16];

    fn stage() -> Stage {
        Stage::new(StageSecrets::derive(&[5u8; 32]), 1 << 20, 8)
    }

    /// Uploads `rows` NDJSON rows as one zstd-compressed, encrypted file and returns the
    /// fragment that registers it.
    fn upload(stage: &Stage, path: &str, rows: u64) -> Fragment {
        let ndjson: String = (0..rows).map(|i| format!("{{\"ID\":{i}}}\n")).collect();
        upload_zstd(
            stage,
            path,
            zstd::encode_all(ndjson.as_bytes(), 3).unwrap(),
            rows,
        )
    }

    /// Uploads `data` (zstd) encrypted, as a file of `rows` rows.
    fn upload_zstd(stage: &Stage, path: &str, mut data: Vec<u8>, rows: u64) -> Fragment {
        Aes256Ctr::new(&stage.secrets.pipe_key.into(), &IV.into()).apply_keystream(&mut data);
        let len = data.len() as u64;
        let r = stage.reserve(data.len(), "me").unwrap();
        let etag = stage.put(path, Bytes::from(data), r).unwrap();
        fragment(stage, path, &etag, len, rows)
    }

    fn fragment(stage: &Stage, path: &str, etag: &str, len: u64, rows: u64) -> Fragment {
        serde_json::from_value(serde_json::json!({
            "file_path": path, "content_type": "application/x-ndjson", "file_etag": etag,
            "file_length_bytes": len, "fragment_length_bytes": len,
            "fragment_length_uncompressed_bytes": rows * 20,
            "fragment_start_offset_token": "1", "fragment_end_offset_token": rows.to_string(),
            "fragment_row_count": rows, "fragment_start_byte_offset": 0,
            "diversifier": stage.secrets.diversifier,
            "master_key_id": stage.secrets.pipe_key_id.to_string(),
            "iv_base64": base64::engine::general_purpose::STANDARD.encode(IV),
            "encryption_version": "AES-CTR-128.1", "min_append_timestamp_ms": 1
        }))
        .unwrap()
    }

    fn far() -> Instant {
        Instant::now() + REGISTRATION_TIME
    }

    fn no_charge(_: usize) -> Result<(), ApiError> {
        Ok(())
    }

    #[test]
    fn an_encrypted_file_decrypts_to_its_rows() {
        let s = stage();
        let a = upload(&s, "b/a", 3);
        let b = upload(&s, "b/b", 2);
        let got = assemble(&s, &[a, b], 1 << 20, far(), &mut no_charge).unwrap();
        assert_eq!(
            std::str::from_utf8(&got.body).unwrap(),
            "{\"ID\":0}\n{\"ID\":1}\n{\"ID\":2}\n{\"ID\":0}\n{\"ID\":1}\n"
        );
        assert_eq!(got.rows, 5);
        assert_eq!(got.start_offset_token.as_deref(), Some("1"));
        assert_eq!(got.end_offset_token.as_deref(), Some("2"));
    }

    #[test]
    fn every_failed_check_refuses_the_whole_registration() {
        let s = stage();
        let good = upload(&s, "b/good", 4);
        let base = upload(&s, "b/x", 4);
        type Change = Box<dyn Fn(&mut Fragment)>;
        let cases: Vec<(&str, Change)> = vec![
            ("etag", Box::new(|f| f.file_etag = "0".repeat(32))),
            ("file length", Box::new(|f| f.file_length_bytes += 1)),
            ("range", Box::new(|f| f.fragment_length_bytes += 1)),
            ("empty range", Box::new(|f| f.fragment_length_bytes = 0)),
            (
                "offset overflow",
                Box::new(|f| f.fragment_start_byte_offset = u64::MAX),
            ),
            ("key id", Box::new(|f| f.master_key_id = KeyId::Number(1))),
            ("diversifier", Box::new(|f| f.diversifier = "other".into())),
            (
                "version",
                Box::new(|f| f.encryption_version = "AES-GCM".into()),
            ),
            ("iv", Box::new(|f| f.iv_base64 = "AAAA".into())),
            (
                "wrong iv",
                Box::new(|f| {
                    f.iv_base64 = base64::engine::general_purpose::STANDARD.encode([1u8; 16])
                }),
            ),
            ("rows", Box::new(|f| f.fragment_row_count = 5)),
            (
                "content type",
                Box::new(|f| f.content_type = Some("text/csv".into())),
            ),
            ("missing file", Box::new(|f| f.file_path = "b/none".into())),
        ];
        for (what, change) in cases {
            let mut bad = base.clone();
            change(&mut bad);
            let mut charged = 0;
            let e = assemble(&s, &[good.clone(), bad], 1 << 20, far(), &mut |n| {
                charged = n;
                Ok(())
            })
            .unwrap_err();
            assert!(matches!(e.status, 400 | 404), "{what}: {e:?}");
        }
        // The file replaced by other bytes after the SDK registered its ETag: refused. (AES-CTR
        // is malleable and the SDK's zstd frames carry no checksum, so a flipped bit in the
        // data can still decode: the upload's CRC-32 and the ETag are what catch it.)
        let (data, etag) = s.get("b/x").unwrap();
        let mut corrupt = data.to_vec();
        let mid = corrupt.len() / 2;
        corrupt[mid] ^= 0x40;
        let r = s.reserve(corrupt.len(), "me").unwrap();
        let new_etag = s.put("b/x", Bytes::from(corrupt.clone()), r).unwrap();
        assert_ne!(etag, new_etag);
        let e = assemble(
            &s,
            &[good.clone(), base.clone()],
            1 << 20,
            far(),
            &mut no_charge,
        )
        .unwrap_err();
        assert!(e.message.contains("ETag"), "{e:?}");
        // Bytes that do not decrypt to zstd (here the frame's magic number is hit), under a
        // matching ETag: refused too.
        corrupt[mid] ^= 0x40;
        corrupt[0] ^= 0x01;
        let r = s.reserve(corrupt.len(), "me").unwrap();
        let mut f = base.clone();
        f.file_etag = s.put("b/x", Bytes::from(corrupt), r).unwrap();
        let e = assemble(&s, &[good, f], 1 << 20, far(), &mut no_charge).unwrap_err();
        assert!(e.message.contains("zstd"), "{e:?}");
    }

    #[test]
    fn decompression_is_bounded_and_charged() {
        let s = stage();
        let f = upload(&s, "b/big", 10_000);
        let e = assemble(&s, std::slice::from_ref(&f), 1000, far(), &mut no_charge).unwrap_err();
        assert_eq!(e.status, 413);
        let mut most = 0;
        let got = assemble(&s, &[f], 1 << 20, far(), &mut |n| {
            most = most.max(n);
            Ok(())
        })
        .unwrap();
        assert!(
            most >= got.body.len(),
            "charged {most} for {}",
            got.body.len()
        );
    }

    /// The file the official SDK uploaded and registered (tests/fixtures/official_sdk_file):
    /// its body unchunked, checked and stored as the stage does, then its registration.
    #[test]
    fn a_file_the_official_sdk_wrote_decodes_to_its_rows() {
        const DIR: &str = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/official_sdk_file"
        );
        let read = |name: &str| std::fs::read(format!("{DIR}/{name}")).unwrap();
        let mut headers = http::HeaderMap::new();
        for line in String::from_utf8(read("upload.headers")).unwrap().lines() {
            if let Some((k, v)) = line.split_once(": ") {
                if let (Ok(k), Ok(v)) = (k.parse::<http::HeaderName>(), v.parse()) {
                    headers.insert(k, v);
                }
            }
        }
        let data = crate::stage::upload::decode(&headers, &read("upload.body")).unwrap();
        assert_eq!(data.len(), 9105);
        let mut secrets = StageSecrets::derive(&[0u8; 32]);
        secrets.pipe_key = std::array::from_fn(|i| i as u8);
        secrets.pipe_key_id = 1;
        secrets.diversifier = "snowpipe-emulator".into();
        let s = Stage::new(secrets, 1 << 20, 8);
        let r = s.reserve(data.len(), "me").unwrap();
        let etag = s
            .put("snowpipe-emulator/stage/0.ndjson", Bytes::from(data), r)
            .unwrap();
        let mut fragments = parse(&read("registration.json")).unwrap();
        // The capture's stage answered a made-up ETag; this one answers the content's.
        fragments[0].file_etag = etag;
        let got = assemble(&s, &fragments, 1 << 20, far(), &mut no_charge).unwrap();
        assert_eq!(got.rows, 2000);
        let first = crate::service::lines(&got.body).next().unwrap();
        assert!(
            first.starts_with(b"{\"TXID\":\"00000000-0000-0000-0000-000000000001\""),
            "{}",
            String::from_utf8_lossy(first)
        );
        assert_eq!(got.end_offset_token.as_deref(), Some("2000"));
        // The same bytes under a key that is not the pipe key: refused, not landed.
        let mut other = StageSecrets::derive(&[0u8; 32]);
        other.pipe_key_id = 1;
        other.diversifier = "snowpipe-emulator".into();
        let s2 = Stage::new(other, 1 << 20, 8);
        let (bytes, _) = s.get("snowpipe-emulator/stage/0.ndjson").unwrap();
        let r = s2.reserve(bytes.len(), "me").unwrap();
        let etag = s2
            .put("snowpipe-emulator/stage/0.ndjson", bytes, r)
            .unwrap();
        fragments[0].file_etag = etag;
        assert_eq!(
            assemble(&s2, &fragments, 1 << 20, far(), &mut no_charge)
                .unwrap_err()
                .code,
            "ERR_INVALID_FILE_FRAGMENTS"
        );
    }

    #[test]
    fn registrations_parse_the_sdks_shape_only() {
        assert!(parse(b"[]").is_err());
        assert!(parse(b"{}").is_err());
        assert!(parse(b"[{\"file_path\":\"x\"}]").is_err());
        let one = serde_json::to_vec(&serde_json::json!([{
            "file_path": "snowpipe-emulator/stage/p/0.ndjson", "content_type": "application/x-ndjson",
            "file_etag": "e", "file_length_bytes": 9105, "fragment_length_bytes": 9105,
            "fragment_length_uncompressed_bytes": 346000, "fragment_start_offset_token": "1",
            "fragment_end_offset_token": "2000", "fragment_row_count": 2000,
            "fragment_start_byte_offset": 0, "diversifier": "d", "master_key_id": "1",
            "iv_base64": "X3JL6mnNTet2lBqL0bM+vQ==", "encryption_version": "AES-CTR-128.1",
            "min_append_timestamp_ms": 1795585595491u64
        }]))
        .unwrap();
        assert_eq!(parse(&one).unwrap()[0].fragment_row_count, 2000);
    }

    /// Issue 72: a skippable frame passes zstd's decoder (it skips it) but holds nothing for
    /// the rows; 100 MB of them cost a pass per fragment naming them. Refused.
    #[test]
    fn a_skippable_zstd_frame_is_refused() {
        let s = stage();
        let mut data = Vec::new();
        data.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        data.extend_from_slice(&1000u32.to_le_bytes());
        data.extend_from_slice(&[0u8; 1000]);
        data.extend_from_slice(&zstd::encode_all(&b"{\"ID\":1}\n"[..], 3).unwrap());
        let f = upload_zstd(&s, "b/skip", data, 1);
        let e = assemble(&s, &[f], 1 << 20, far(), &mut no_charge).unwrap_err();
        assert_eq!(e.code, "ERR_INVALID_FILE_FRAGMENTS");
        assert!(e.message.contains("skippable"), "{}", e.message);
        // Past the registration's deadline: refused before the next fragment is decoded.
        let f = upload(&s, "b/late", 2);
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(
            assemble(&s, &[f], 1 << 20, past, &mut no_charge)
                .unwrap_err()
                .status,
            503
        );
    }

    /// Issue 72: a registration's decompressed body was charged to nothing between its
    /// decoding and its append's decode turn (48 registrations of one 423 KB file: 3.0 GB).
    /// With the only turn taken when the body exists, the body is charged while it waits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registrations_body_is_charged_while_it_waits_for_its_decode_turn() {
        let mut config = crate::settings::config::EmulatorConfig::for_tests().with_ddl(DDL);
        config.max_concurrent_decodes = 1;
        let shared = Arc::new(Shared::build(&config).await.unwrap());
        let (key, target, token) = open_c(&shared).await;
        let f = upload(&shared.stage, "b/f", 2000);
        let body_len: usize = (0..2000).map(|i| format!("{{\"ID\":{i}}}\n").len()).sum();
        let turn = shared.state.decode_permits.acquire().await.unwrap();
        let registering = {
            let shared = shared.clone();
            tokio::spawn(async move {
                shared
                    .register_files(key, target, Some(token), vec![f], "me")
                    .await
            })
        };
        // The registration queues for a turn to decode its fragments; then this test queues
        // behind it, so the registration's append waits for the turn this test gets next.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (got_tx, got_rx) = tokio::sync::oneshot::channel();
        let (free_tx, free_rx) = tokio::sync::oneshot::channel::<()>();
        let holder = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let _turn = shared.state.decode_permits.acquire().await.unwrap();
                got_tx.send(()).unwrap();
                let _ = free_rx.await;
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(turn);
        got_rx.await.unwrap();
        assert!(!registering.is_finished());
        let used = shared.state.pending_budget.used();
        assert!(
            used >= body_len,
            "the decoded body ({body_len} bytes) waits for its turn charged {used}"
        );
        free_tx.send(()).unwrap();
        holder.await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), registering)
            .await
            .unwrap()
            .unwrap();
        assert!(answer.is_ok(), "{:?}", answer.err());
    }
}
