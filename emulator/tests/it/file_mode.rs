//! The official SDK's file mode (docs/protocol-wire.md §4.6), driven by a test-side writer that
//! does what the SDK was captured doing: read the stage and key from `:pipe-info`, encrypt
//! zstd NDJSON with AES-256-CTR under the pipe key, upload it with an S3 `PutObject` in
//! `aws-chunked` framing with a CRC-32 trailer, signed with SigV4 by `aws-sigv4` (the AWS
//! SDKs' signer), and register byte ranges of it with `POST …/filebuffer` on the channel's
//! continuation chain.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use snowpipe_emulator::{aws_chunked, DuplicateAppendPolicy, Endpoint, FaultAction, FaultRule};

use crate::common::stage::*;
use crate::common::*;

async fn stage_info(c: &Client) -> StageInfo {
    let r = c.pipe_action("pipe-info", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    StageInfo::from_pipe_info(&r.body)
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
    let url = format!("{}/{path}?x-id=PutObject", c.url);
    put_with(c, &url, signed_headers(info, &url, decoded), body).await
}

/// Sends an upload with `headers` as they are.
async fn put_with(
    c: &Client,
    url: &str,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
) -> (u16, String, String) {
    let r = c
        .http
        .put(url)
        .headers(headers)
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
    // One caller's share: half of these, 2 files and 64 KiB.
    cfg.max_stage_files = 4;
    cfg.max_stage_bytes = 128 * 1024;
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

/// Issue 72: the stage credentials were the same for every caller and database, never
/// expired, and their SigV4 signature was never checked (`Signature=00` was accepted). Each
/// location now has its own, for its prefix only, until its `expiry_time_ms`, and the
/// signature is recomputed.
#[tokio::test]
async fn stage_credentials_are_the_locations_own_signed_and_expire() {
    let clock = snowpipe_emulator::Clock::new();
    let (emu, c) = connected(config().with_clock(clock.clone())).await;
    let info = stage_info(&c).await;
    let other = stage_info(&c).await;
    assert_ne!(info.aws_token, other.aws_token);
    assert_ne!(info.aws_key_id, other.aws_key_id);
    let f = file(&info, "0.ndjson", &[Part::new(1..6, 1)]);
    let body = aws_chunked(&f.bytes, 8192);
    let url = format!("{}/{}?x-id=PutObject", c.url, f.path);
    // The signature the issue sent.
    let mut forged = signed_headers(&info, &url, f.bytes.len());
    let auth = forged["authorization"].to_str().unwrap().to_string();
    let cut = auth.rfind("Signature=").unwrap();
    forged.insert(
        "authorization",
        format!("{}Signature=00", &auth[..cut]).parse().unwrap(),
    );
    let (status, _, text) = put_with(&c, &url, forged, body.clone()).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    // A signed header changed after signing.
    let mut changed = signed_headers(&info, &url, f.bytes.len());
    changed.insert("x-amz-trailer", "x-amz-checksum-sha256".parse().unwrap());
    let (status, _, text) = put_with(&c, &url, changed, body.clone()).await;
    assert_eq!(status, 403, "{text}");
    // Another location's credentials, rightly signed, on this location's key.
    let (status, _, text) = put_raw(&c, &other, &f.path, body.clone(), f.bytes.len()).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("AccessDenied"), "{text}");
    // Its own: stored.
    let (status, _, text) = put_raw(&c, &info, &f.path, body.clone(), f.bytes.len()).await;
    assert_eq!(status, 200, "{text}");
    // Past the location's expiry_time_ms (two hours): refused.
    clock.advance(Duration::from_secs(2 * 3600 + 1));
    let (status, _, text) = put_raw(&c, &info, &f.path, body, f.bytes.len()).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("ExpiredToken"), "{text}");
    assert_eq!(stage_stats(&emu).await["uploads"], 1);
}

/// Issue 72: a registration could name the same 100 MB range again and again (decoded each
/// time), and a landed range landed again on every registration, on any channel. Each byte
/// range now lands once.
#[tokio::test]
async fn a_byte_range_lands_once() {
    let (emu, c) = connected(config()).await;
    let info = stage_info(&c).await;
    let ct = c.open_ok("once").await;
    let mut f = file(
        &info,
        "0.ndjson",
        &[Part::new(1..6, 1), Part::new(6..11, 2)],
    );
    upload(&c, &info, &mut f).await;
    let twice = vec![f.fragments[0].clone(), f.fragments[0].clone()];
    let r = register(&c, "once", &ct, &twice, 0).await.unwrap();
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains("fragment 1") && r.text.contains("lands once"),
        "{}",
        r.text
    );
    let r = register(&c, "once", &ct, &f.fragments[..1], 0)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let next = r.body["next_continuation_token"]
        .as_str()
        .unwrap()
        .to_string();
    c.wait_committed("once", "5").await;
    // Landed: not again, on this channel or another.
    let other = c.open_ok("other").await;
    for (channel, token) in [("once", &next), ("other", &other)] {
        let r = register(&c, channel, token, &f.fragments[..1], 0)
            .await
            .unwrap();
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.text.contains("landed already"), "{}", r.text);
    }
    let r = register(&c, "once", &next, &f.fragments[1..], 0)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    c.wait_committed("once", "10").await;
    assert_eq!(count(&emu), 10);
    assert_eq!(stage_stats(&emu).await["files"], 0);
}

/// Issue 72: the checksum trailer was echoed whole into the answer and the log (60 MB gave
/// a 60 MB answer; a bare newline forged log lines). It is bounded, quoted and escaped.
#[tokio::test]
async fn a_checksum_trailer_is_bounded_and_quoted_escaped() {
    let (_emu, c) = connected(config()).await;
    let info = stage_info(&c).await;
    let f = file(&info, "0.ndjson", &[Part::new(1..3, 1)]);
    let framed = |trailer: &str| {
        let mut b = format!("{:x}\r\n", f.bytes.len()).into_bytes();
        b.extend_from_slice(&f.bytes);
        b.extend_from_slice(format!("\r\n0\r\nx-amz-checksum-crc32:{trailer}\r\n\r\n").as_bytes());
        b
    };
    let (status, _, text) = put_raw(
        &c,
        &info,
        &f.path,
        framed("AAAAAA==\nlevel=ERROR forged"),
        f.bytes.len(),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(!text.contains("\nlevel=ERROR"), "{text}");
    assert!(text.contains("\\nlevel=ERROR"), "{text}");
    let (status, _, text) = put_raw(
        &c,
        &info,
        &f.path,
        framed(&"A".repeat(3_000)),
        f.bytes.len(),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.len() < 600, "{} bytes answered", text.len());
}

/// Issue 72's registrations measured (opt-in: `SNOWPIPE_MEASURE_STAGE=1`, run with
/// `--nocapture`; in process, so `VmHWM` is the emulator's and the test's together): 48
/// registrations at once of one file whose rows decompress to 50 MB (issue: 3.0 GB RSS),
/// then 4 registrations each naming the file's whole range 1,024 times while a 1-row append
/// waits (issue: ~2 min of CPU each, the append 15.9 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_hostile_registrations() {
    if std::env::var_os("SNOWPIPE_MEASURE_STAGE").is_none() {
        return;
    }
    let hwm = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .unwrap()
            .to_string()
    };
    let (emu, c) = connected(config()).await;
    let info = stage_info(&c).await;
    let mut part = Part::new(1..2, 1);
    part.ndjson = format!("{{\"ID\":1,\"NAME\":\"{}\"}}\n", "x".repeat(1000)).repeat(50_000);
    part.end = "50000".into();
    let mut f = file(&info, "big.ndjson", &[part]);
    upload(&c, &info, &mut f).await;
    println!("file {} bytes; before: {}", f.bytes.len(), hwm());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..48 {
        let ct = c.open_ok(&format!("m{i}")).await;
        let c = Client {
            http: c.http.clone(),
            url: c.url.clone(),
            token: c.token.clone(),
        };
        let frags = f.fragments.clone();
        tasks.push(tokio::spawn(async move {
            register(&c, &format!("m{i}"), &ct, &frags, 0)
                .await
                .unwrap()
                .status
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    println!(
        "48 registrations: {statuses:?} in {:?}; after: {}",
        started.elapsed(),
        hwm()
    );
    let mut g = file(&info, "again.ndjson", &[Part::new(1..1001, 2)]);
    upload(&c, &info, &mut g).await;
    let repeated: Vec<Value> = std::iter::repeat_n(g.fragments[0].clone(), 1024).collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let ct = c.open_ok(&format!("r{i}")).await;
        let c = Client {
            http: c.http.clone(),
            url: c.url.clone(),
            token: c.token.clone(),
        };
        let frags = repeated.clone();
        tasks.push(tokio::spawn(async move {
            register(&c, &format!("r{i}"), &ct, &frags, 0)
                .await
                .unwrap()
                .status
        }));
    }
    let ct = c.open_ok("one").await;
    let one = Instant::now();
    c.append("one", &ct, "1", "1", &rows(1..2))
        .await
        .next_token();
    let one = one.elapsed();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 400);
    }
    println!(
        "4 registrations of 1,024 repeated fragments: {:?}; a 1-row append meanwhile: {one:?}",
        started.elapsed()
    );
    drop(emu);
}
