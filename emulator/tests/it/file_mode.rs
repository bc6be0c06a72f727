//! The official SDK's file mode (docs/protocol.md §4.6), driven by a test-side writer that
//! does what the SDK was captured doing: read the stage and key from `:pipe-info`, encrypt
//! zstd NDJSON with AES-256-CTR under the pipe key, upload it with an S3 `PutObject` in
//! `aws-chunked` framing with a CRC-32 trailer, and register byte ranges of it with
//! `POST …/filebuffer` on the channel's continuation chain.

use std::time::{Duration, Instant};

use aes::cipher::{KeyIvInit, StreamCipher};
use base64::Engine as _;
use serde_json::{json, Value};
use snowpipe_emulator::{aws_chunked, DuplicateAppendPolicy, Endpoint, FaultAction, FaultRule};

use crate::common::*;

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// The stage and key `:pipe-info` hands out.
struct StageInfo {
    /// `snowpipe-emulator/stage/<prefix>/`.
    location: String,
    key: [u8; 32],
    key_id: String,
    diversifier: String,
    aws_key_id: String,
    aws_token: String,
}

async fn stage_info(c: &Client) -> StageInfo {
    let r = c.pipe_action("pipe-info", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let stage = &r.body["rowset_stage_location"];
    assert_eq!(stage["location_type"], "S3");
    assert!(stage["storage_endpoint"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    let enc = &r.body["encryption_info"];
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
        aws_token: stage["creds"]["AWS_TOKEN"].as_str().unwrap().to_string(),
    }
}

/// One fragment's rows, as the SDK writes them into a file.
struct Part {
    ndjson: String,
    start: String,
    end: String,
    iv: [u8; 16],
}

impl Part {
    fn new(ids: std::ops::Range<u32>, iv: u8) -> Self {
        Part {
            ndjson: rows(ids.clone()),
            start: ids.start.to_string(),
            end: (ids.end - 1).to_string(),
            iv: [iv; 16],
        }
    }

    fn rows(&self) -> usize {
        self.ndjson.lines().count()
    }
}

/// A file of encrypted fragments and the registration entries that name them.
struct File {
    path: String,
    bytes: Vec<u8>,
    fragments: Vec<Value>,
}

fn file(info: &StageInfo, name: &str, parts: &[Part]) -> File {
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

/// Uploads `body` (already framed) as the SDK's S3 client does; returns the status, the
/// ETag (unquoted) and the body.
async fn put_raw(
    c: &Client,
    info: &StageInfo,
    path: &str,
    body: Vec<u8>,
    decoded: usize,
) -> (u16, String, String) {
    let r = c
        .http
        .put(format!("{}/{path}?x-id=PutObject", c.url))
        .header("content-encoding", "aws-chunked")
        .header("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        .header("x-amz-trailer", "x-amz-checksum-crc32")
        .header("x-amz-decoded-content-length", decoded.to_string())
        .header("x-amz-security-token", &info.aws_token)
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/20260101/us-west-2/s3/aws4_request, \
                 SignedHeaders=host, Signature=00",
                info.aws_key_id
            ),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().trim_matches('"').to_string())
        .unwrap_or_default();
    (status, etag, r.text().await.unwrap())
}

/// Uploads `f` and sets its ETag in its fragments.
async fn upload(c: &Client, info: &StageInfo, f: &mut File) {
    let (status, etag, text) =
        put_raw(c, info, &f.path, aws_chunked(&f.bytes, 8192), f.bytes.len()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(etag.len(), 32);
    for frag in &mut f.fragments {
        frag["file_etag"] = json!(etag);
    }
}

async fn register(
    c: &Client,
    channel: &str,
    ct: &str,
    fragments: &[Value],
    retry: u32,
) -> Result<Resp, reqwest::Error> {
    let q = if channel == "ELASTIC" {
        format!("requestId=r&retryCount={retry}")
    } else {
        format!("continuationToken={ct}&requestId=r&retryCount={retry}")
    };
    let r = c
        .http
        .post(format!("{}{DATA}/channels/{channel}/filebuffer?{q}", c.url))
        .bearer_auth(&c.token)
        .json(&fragments)
        .send()
        .await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Resp { status, body, text })
}

async fn stage_stats(emu: &snowpipe_emulator::Emulator) -> Value {
    get_json(&format!("{}/", emu.url())).await["stage"].clone()
}

#[tokio::test]
async fn an_encrypted_file_lands_its_rows_as_an_append_would() {
    let (emu, c) = connected(config()).await;
    let info = stage_info(&c).await;
    let ct = c.open_ok("files").await;
    // Two fragments in one file, each its own zstd frame under its own IV; the second
    // carries a row whose ID is not a number: a row error, as in row mode.
    let mut second = Part::new(6..11, 2);
    second
        .ndjson
        .push_str("{\"ID\":\"not a number\",\"NAME\":\"bad\"}\n");
    second.end = "11".into();
    let mut f = file(&info, "0.ndjson", &[Part::new(1..6, 1), second]);
    upload(&c, &info, &mut f).await;
    let r = register(&c, "files", &ct, &f.fragments, 0).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let next = r.body["next_continuation_token"]
        .as_str()
        .unwrap()
        .to_string();
    let s = c.wait_committed("files", "11").await;
    assert_eq!(
        (s["rows_inserted"].as_u64(), s["rows_error_count"].as_u64()),
        (Some(10), Some(1))
    );
    assert_eq!(count(&emu), 10);
    let ids = emu
        .query("SELECT MIN(ID), MAX(ID), COUNT(DISTINCT ID) FROM \"DB.SCH.T\"")
        .unwrap();
    assert_eq!(ids[0], vec![json!(1), json!(10), json!(10)]);
    // The registration continued the channel's chain: a row append follows it.
    c.append("files", &next, "12", "12", &rows(12..13))
        .await
        .next_token();
    c.wait_committed("files", "12").await;
    assert_eq!(count(&emu), 11);
    // Every byte of the file landed: the stage dropped it.
    let stats = stage_stats(&emu).await;
    assert_eq!(
        (stats["files"].as_u64(), stats["landed_files"].as_u64()),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn an_elastic_registration_lands() {
    let (emu, c) = connected(config()).await;
    let info = stage_info(&c).await;
    let r = c
        .pipe_action("bulk-channel-status", json!({"channel_names": ["ELASTIC"]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut f = file(&info, "e.ndjson", &[Part::new(1..41, 3)]);
    upload(&c, &info, &mut f).await;
    let r = register(&c, "ELASTIC", "", &f.fragments, 0).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&emu) < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&emu), 40);
}

#[tokio::test]
async fn a_corrupted_file_is_refused_whole() {
    let (emu, c) = connected(config()).await;
    let info = stage_info(&c).await;
    let ct = c.open_ok("corrupt").await;

    // Damaged on the way: the CRC-32 trailer no longer matches, and the stage refuses it.
    let f = file(&info, "0.ndjson", &[Part::new(1..6, 1)]);
    let mut framed = aws_chunked(&f.bytes, 8192);
    framed[10] ^= 0x01;
    let (status, _, text) = put_raw(&c, &info, &f.path, framed, f.bytes.len()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("<Code>BadDigest</Code>"), "{text}");

    // A good first fragment and a second encrypted under another IV than registered: the
    // second does not decrypt, and neither lands.
    let mut f = file(
        &info,
        "1.ndjson",
        &[Part::new(1..6, 1), Part::new(6..11, 2)],
    );
    upload(&c, &info, &mut f).await;
    let mut bad = f.fragments.clone();
    bad[1]["iv_base64"] = json!(base64::engine::general_purpose::STANDARD.encode([7u8; 16]));
    let r = register(&c, "corrupt", &ct, &bad, 0).await.unwrap();
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("ERR_INVALID_FILE_FRAGMENTS")),
        "{}",
        r.text
    );
    assert!(r.text.contains("fragment 1"), "{}", r.text);
    // A row count that is not the file's, and an ETag that is not the stored file's.
    let mut bad = f.fragments.clone();
    bad[0]["fragment_row_count"] = json!(4);
    assert_eq!(
        register(&c, "corrupt", &ct, &bad, 0).await.unwrap().status,
        400
    );
    let mut bad = f.fragments.clone();
    bad[1]["file_etag"] = json!("0".repeat(32));
    assert_eq!(
        register(&c, "corrupt", &ct, &bad, 0).await.unwrap().status,
        400
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(count(&emu), 0, "nothing of a refused registration lands");
    let stats = stage_stats(&emu).await;
    assert_eq!(stats["refused_registrations"], 3);
    assert_eq!(stats["files"], 1, "the file waits for a good registration");

    // The channel is not harmed: its token still stands, and the file registers fine.
    let r = register(&c, "corrupt", &ct, &f.fragments, 0).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    c.wait_committed("corrupt", "10").await;
    assert_eq!(count(&emu), 10);
}

#[tokio::test]
async fn a_registration_replayed_after_a_lost_answer_lands_once() {
    for policy in [
        DuplicateAppendPolicy::Idempotent,
        DuplicateAppendPolicy::RejectStale,
    ] {
        let mut cfg = config();
        cfg.duplicate_append = policy;
        let (emu, c) = connected(cfg).await;
        let info = stage_info(&c).await;
        let ct = c.open_ok("replay").await;
        let mut f = file(&info, "0.ndjson", &[Part::new(1..21, 1)]);
        upload(&c, &info, &mut f).await;
        emu.faults()
            .add(FaultRule::new(Endpoint::FileBuffer, FaultAction::LostAck).times(1));
        assert!(
            register(&c, "replay", &ct, &f.fragments, 0).await.is_err(),
            "the answer is lost"
        );
        c.wait_committed("replay", "20").await;
        assert_eq!(
            stage_stats(&emu).await["files"],
            0,
            "the file landed and is gone"
        );
        // The SDK retries the same registration: the file is gone, the answer is not.
        let r = register(&c, "replay", &ct, &f.fragments, 1).await.unwrap();
        match policy {
            DuplicateAppendPolicy::Idempotent => {
                assert_eq!(r.status, 200, "{}", r.text);
                // The returned token continues the chain.
                let next = r.body["next_continuation_token"].as_str().unwrap();
                c.append("replay", next, "21", "21", &rows(21..22))
                    .await
                    .next_token();
                c.wait_committed("replay", "21").await;
                assert_eq!(count(&emu), 21);
            }
            _ => {
                assert_eq!(r.status, 400, "{}", r.text);
                assert_eq!(r.body["code"], "STALE_CONTINUATION_TOKEN_SEQUENCER");
                assert_eq!(count(&emu), 20);
            }
        }
    }
}

#[tokio::test]
async fn the_stage_stays_within_its_bounds() {
    let mut cfg = config();
    cfg.max_stage_files = 2;
    cfg.max_stage_bytes = 64 * 1024;
    cfg.body_read_timeout = Duration::from_millis(600);
    let (emu, c) = connected(cfg).await;
    let info = stage_info(&c).await;
    let ct = c.open_ok("bounded").await;
    let mut files: Vec<File> = (0..3u32)
        .map(|i| {
            file(
                &info,
                &format!("{i}.ndjson"),
                &[Part::new(i * 10 + 1..i * 10 + 11, i as u8)],
            )
        })
        .collect();
    for f in &mut files[..2] {
        upload(&c, &info, f).await;
    }
    // A third file finds no free slot: it waits for room, then S3's 503 SlowDown.
    let started = Instant::now();
    let (status, _, text) = put_raw(
        &c,
        &info,
        &files[2].path,
        aws_chunked(&files[2].bytes, 8192),
        files[2].bytes.len(),
    )
    .await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("SlowDown"), "{text}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it waited for room"
    );
    // A file larger than the whole stage is refused at once, before its body is read.
    let (status, _, text) = put_raw(
        &c,
        &info,
        &format!("{}big", info.location),
        Vec::new(),
        1 << 20,
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("EntityTooLarge"), "{text}");
    // Wrong credentials.
    let mut wrong = StageInfo {
        aws_token: "guess".into(),
        ..stage_info(&c).await
    };
    wrong.location.clear();
    let (status, _, text) = put_raw(
        &c,
        &wrong,
        &files[2].path,
        aws_chunked(&files[2].bytes, 8192),
        files[2].bytes.len(),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(!text.contains("guess"));
    let stats = stage_stats(&emu).await;
    assert_eq!(stats["files"], 2);
    assert!(stats["bytes"].as_u64().unwrap() <= 64 * 1024);
    // Once a file landed, its slot is free again.
    let r = register(&c, "bounded", &ct, &files[0].fragments, 0)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    upload(&c, &info, &mut files[2]).await;
    let stats = stage_stats(&emu).await;
    assert_eq!(
        (stats["files"].as_u64(), stats["uploads"].as_u64()),
        (Some(2), Some(3))
    );
}
