//! The emulator over HTTP: auth, every channel state transition, appends, status, limits.

use std::time::Duration;

use crate::common::*;
use reqwest::Method;
use serde_json::json;
use snowpipe_emulator::{DuplicateAppendPolicy, Emulator, EmulatorConfig};

#[tokio::test]
async fn auth_rejects_unregistered_key_and_missing_tokens() {
    let emu = Emulator::start(config()).await.unwrap();
    let http = reqwest::Client::new();
    let url = emu.url();
    // Key 1 is not registered.
    let r = request_token(&http, &token_url(&emu), &jwt(1), None, Some(JWT_BEARER)).await;
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("no registered public key"));
    // Hostname: bare text host, without port.
    let r = http
        .get(format!("{url}/v2/streaming/hostname"))
        .bearer_auth(jwt(0))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "127.0.0.1");
    let r = http
        .get(format!("{url}/v2/streaming/hostname"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Registered key: a scoped JWT as text/plain with exp in seconds.
    let c = Client::connect(&emu).await;
    let claims: serde_json::Value = jsonwebtoken::dangerous::insecure_decode(&c.token)
        .unwrap()
        .claims;
    let exp = claims["exp"].as_i64().unwrap();
    assert!((exp - chrono::Utc::now().timestamp() - 3600).abs() < 10);
    // The Redpanda flavour: assertion in the form, no Authorization header.
    let r = http
        .post(format!("{url}/oauth/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &jwt(0)),
            ("scope", "h session:role:R"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Data calls need the scoped token: the key-pair JWT itself is refused.
    let r = http
        .put(format!("{url}{BASE}/channels/c"))
        .bearer_auth(jwt(0))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c.open("c", json!({})).await;
    assert_eq!(r.status, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_key_registered_for_a_user_signs_only_for_that_user() {
    // Key 0 for BOB only (config form), key 1 for any user.
    let cfg = EmulatorConfig::for_tests()
        .with_user_public_key("bob", keys(0).1)
        .with_public_key(keys(1).1);
    let emu = Emulator::start(cfg).await.unwrap();
    let http = reqwest::Client::new();
    let hostname = |jwt: String| {
        http.get(format!("{}/v2/streaming/hostname", emu.url()))
            .bearer_auth(jwt)
            .send()
    };
    assert_eq!(hostname(jwt_for(0, "BOB")).await.unwrap().status(), 200);
    let r = hostname(jwt_for(0, "ALICE")).await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("registered for user BOB only, not ALICE"),
        "{msg}"
    );
    assert_eq!(hostname(jwt_for(1, "ALICE")).await.unwrap().status(), 200);
    // The library form adds ALICE for key 0.
    emu.register_user_public_key("alice", &keys(0).1).unwrap();
    assert_eq!(hostname(jwt_for(0, "ALICE")).await.unwrap().status(), 200);
    assert_eq!(hostname(jwt_for(0, "BOB")).await.unwrap().status(), 200);
    assert_eq!(hostname(jwt_for(0, "CAROL")).await.unwrap().status(), 401);
    emu.shutdown().await;
}

#[tokio::test]
async fn pat_accepted_when_configured_and_scoped_token_expires() {
    let clock = snowpipe_emulator::Clock::new();
    let mut cfg = config().with_clock(clock.clone());
    cfg.personal_access_tokens = vec!["my-pat".into()];
    cfg.scoped_token_ttl = Duration::from_secs(1);
    let emu = Emulator::start(cfg).await.unwrap();
    let http = reqwest::Client::new();
    let token = request_token(
        &http,
        &token_url(&emu),
        "my-pat",
        Some("PROGRAMMATIC_ACCESS_TOKEN"),
        Some("urn:ietf:params:oauth:grant-type:token-exchange"),
    )
    .await
    .text()
    .await
    .unwrap();
    let c = Client {
        http: http.clone(),
        url: emu.url(),
        token,
    };
    assert_eq!(c.open("c", json!({})).await.status, 200);
    // The token lives 1 s: past it, by the emulator's clock, it is refused.
    clock.advance(Duration::from_secs(2));
    let r = c.open("c", json!({})).await;
    assert_eq!(r.status, 401);
    assert!(r.body["message"].as_str().unwrap().contains("expired"));
    let r = request_token(
        &http,
        &token_url(&emu),
        "wrong-pat",
        Some("PROGRAMMATIC_ACCESS_TOKEN"),
        None,
    )
    .await;
    assert_eq!(r.status(), 401);
    emu.shutdown().await;
}

#[tokio::test]
async fn open_append_commit_status_drop() {
    let (emu, c) = connected(config()).await;
    let r = c
        .open("c1", json!({"fail_on_uncommitted_rows": true}))
        .await;
    assert_eq!(r.status, 200);
    let st = &r.body["channel_status"];
    for f in [
        "database_name",
        "schema_name",
        "pipe_name",
        "channel_name",
        "channel_status_code",
        "created_on_ms",
        "rows_inserted",
        "rows_parsed",
        "rows_error_count",
        "last_committed_offset_token",
        "last_error_offset_upper_bound",
        "last_error_message",
        "last_error_timestamp_ms",
        "snowflake_avg_processing_latency_ms",
    ] {
        assert!(st.get(f).is_some(), "missing {f}");
    }
    assert_eq!(st["channel_status_code"], "SUCCESS");
    assert_eq!(st["pipe_name"], "P");
    let mut ct = r.body["next_continuation_token"]
        .as_str()
        .unwrap()
        .to_string();
    // zstd with blank lines, as the official SDK sends.
    ct = c
        .append_ok(
            "c1",
            &ct,
            "2",
            "{\"ID\":1,\"NAME\":\"a\"}\n\n{\"ID\":2,\"NAME\":\"b\"}\n\n",
        )
        .await;
    // gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, rows(3..5).as_bytes()).unwrap();
    let q = format!("startOffsetToken=3&endOffsetToken=4&continuationToken={ct}");
    let r = c
        .append_raw("c1", &q, gz.finish().unwrap(), Some("gzip"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    ct = r.body["next_continuation_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Uncompressed, legacy offsetToken parameter.
    let q = format!("offsetToken=5&continuationToken={ct}");
    let r = c
        .append_raw("c1", &q, rows(5..6).into_bytes(), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let s = c.status(&["c1", "nope"]).await;
    assert!(s.get("nope").is_none(), "unknown channels are omitted");
    assert_eq!(s["c1"]["last_committed_offset_token"], "5");
    assert_eq!(s["c1"]["rows_inserted"], 5);
    assert_eq!(s["c1"]["rows_parsed"], 5);
    assert_eq!(count(&emu), 5);
    let landed = emu
        .query("SELECT ID, NAME FROM \"DB.SCH.T\" ORDER BY ID")
        .unwrap();
    assert_eq!(landed[0], vec![json!(1), json!("a")]);
    // An empty end token leaves the committed token alone.
    let q = format!(
        "startOffsetToken=&endOffsetToken=&continuationToken={}",
        r.body["next_continuation_token"].as_str().unwrap()
    );
    let r = c
        .append_raw("c1", &q, rows(6..7).into_bytes(), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        c.status(&["c1"]).await["c1"]["last_committed_offset_token"],
        "5"
    );
    // Drop returns the committed token; the channel is gone.
    let r = c
        .send(Method::DELETE, &format!("{BASE}/channels/c1"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"last_committed_offset_token": "5"}));
    assert!(c.status(&["c1"]).await.get("c1").is_none());
    let r = c
        .send(Method::DELETE, &format!("{BASE}/channels/c1"), None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body["code"],
        "ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
    );
    // The request log saw requestId/retryCount.
    let log = emu.requests();
    assert!(log
        .iter()
        .any(|r| r.request_id.as_deref() == Some("r1") && r.retry_count == Some(0)));
    emu.shutdown().await;
}

#[tokio::test]
async fn reopen_bumps_sequencer_and_keeps_counters() {
    let (emu, c) = connected(config()).await;
    let ct1 = c.open_append_ok("c", "10", &rows(0..10)).await;
    let r = c.open("c", json!({"fail_on_uncommitted_rows": true})).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["channel_status"]["last_committed_offset_token"],
        "10"
    );
    assert_eq!(
        r.body["channel_status"]["rows_inserted"], 10,
        "counters survive reopen"
    );
    let ct2 = r.body["next_continuation_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(ct2, ct1);
    let r = c.append("c", &ct1, "11", "11", &rows(10..11)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["code"], "STALE_CONTINUATION_TOKEN_SEQUENCER");
    let _ = c.append_ok("c", &ct2, "11", &rows(10..11)).await;
    assert_eq!(c.status(&["c"]).await["c"]["rows_inserted"], 11);
    // Open with an offset token overrides the committed token.
    let r = c.open("c", json!({"offset_token": "100"})).await;
    assert_eq!(
        r.body["channel_status"]["last_committed_offset_token"],
        "100"
    );
    // Missing or garbage continuation tokens.
    let ct = r.body["next_continuation_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .append_raw("c", "endOffsetToken=1", rows(0..1).into_bytes(), None)
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let r = c.append("c", "garbage", "", "1", &rows(0..1)).await;
    assert_eq!(r.body["code"], "ERR_INVALID_CONTINUATION_TOKEN");
    // Drop then recreate: the old channel's tokens are stale.
    c.send(Method::DELETE, &format!("{BASE}/channels/c"), None)
        .await;
    let r = c.append("c", &ct, "", "1", &rows(0..1)).await;
    assert_eq!(r.status, 404);
    let _fresh = c.open_ok("c").await;
    let r = c.append("c", &ct, "", "1", &rows(0..1)).await;
    assert_eq!(r.body["code"], "STALE_CONTINUATION_TOKEN_SEQUENCER");
    emu.shutdown().await;
}

/// Two opens of one channel are two writers: the first open's continuation token is fenced
/// (`400 STALE_CONTINUATION_TOKEN_SEQUENCER`) and counted in `GET /` (`fenced_appends`, per
/// channel and in total); a reused token is a retry, counted apart.
#[tokio::test]
async fn a_second_open_fences_the_first_writer_and_get_status_counts_it() {
    let (emu, c) = connected(config()).await;
    let get_status = || async { get_json(&format!("{}/", c.url)).await };
    let first = c.open_ok("c").await;
    let second = c.open_ok("c").await;
    let r = c.append("c", &first, "1", "1", &rows(0..1)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["code"], "STALE_CONTINUATION_TOKEN_SEQUENCER");
    let st = get_status().await;
    let ch = &st["channels"][0];
    assert_eq!(ch["channel_name"], "c");
    assert_eq!(ch["fenced_appends"], 1, "{ch}");
    assert_eq!(ch["reused_token_appends"], 0, "{ch}");
    assert_eq!(st["fenced_appends"], 1);

    // The second writer owns the channel; replaying its used token is a retry, not a fence.
    let next = c.append_ok("c", &second, "1", &rows(0..1)).await;
    let r = c.append("c", &second, "1", "1", &rows(0..1)).await;
    assert_eq!(r.body["code"], "STALE_CONTINUATION_TOKEN_SEQUENCER");
    let st = get_status().await;
    assert_eq!(st["channels"][0]["fenced_appends"], 1);
    assert_eq!(st["channels"][0]["reused_token_appends"], 1);

    // A reopen keeps the count; the second writer is fenced in turn.
    let _third = c.open_ok("c").await;
    let r = c.append("c", &next, "2", "2", &rows(1..2)).await;
    assert_eq!(r.body["code"], "STALE_CONTINUATION_TOKEN_SEQUENCER");
    let st = get_status().await;
    assert_eq!(st["channels"][0]["fenced_appends"], 2);

    // Dropped and recreated: the old incarnation's token is fenced on the new channel, and
    // the total keeps the dropped channel's count.
    c.send(Method::DELETE, &format!("{BASE}/channels/c"), None)
        .await;
    let _fresh = c.open_ok("c").await;
    let r = c.append("c", &next, "2", "2", &rows(1..2)).await;
    assert_eq!(r.body["code"], "STALE_CONTINUATION_TOKEN_SEQUENCER");
    let st = get_status().await;
    assert_eq!(st["channels"][0]["fenced_appends"], 1);
    assert_eq!(st["fenced_appends"], 3);
    assert_eq!(count(&emu), 1, "no fenced append landed");
    emu.shutdown().await;
}

/// An emulator that commits `commit_delay` after an append, with rows 0 to 4 appended on
/// channel `c` and not committed yet.
async fn with_uncommitted_rows(commit_delay: Duration) -> (Emulator, Client) {
    let (emu, c) = connected(config().with_commit_delay(commit_delay)).await;
    c.open_append_ok("c", "5", &rows(0..5)).await;
    let s = c.status(&["c"]).await;
    assert_eq!(s["c"]["last_committed_offset_token"], json!(null));
    (emu, c)
}

#[tokio::test]
async fn uncommitted_rows_409_and_reopen_discards_them() {
    let (emu, c) = with_uncommitted_rows(Duration::from_secs(3600)).await;
    let r = c.open("c", json!({"fail_on_uncommitted_rows": true})).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["code"], "ERR_CHANNEL_HAS_UNCOMMITTED_DATA");
    let r = c
        .open("c", json!({"fail_on_uncommitted_rows": false}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["channel_status"]["last_committed_offset_token"],
        json!(null)
    );
    emu.commit_now().await;
    assert_eq!(count(&emu), 0, "discarded rows never land");
    assert_eq!(emu.status()["channels"][0]["pending_rows"], 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn commit_delay_is_honoured() {
    let (emu, c) = with_uncommitted_rows(Duration::from_millis(300)).await;
    let s = c.wait_committed("c", "5").await;
    assert_eq!(s["rows_inserted"], 5);
    assert_eq!(count(&emu), 5);
    emu.shutdown().await;
}

#[tokio::test]
async fn duplicate_append_policies() {
    for policy in [
        DuplicateAppendPolicy::RejectStale,
        DuplicateAppendPolicy::Idempotent,
    ] {
        let mut cfg = config();
        cfg.duplicate_append = policy;
        let (emu, c) = connected(cfg).await;
        let ct0 = c.open_ok("c").await;
        let ct1 = c.append_ok("c", &ct0, "3", &rows(0..3)).await;
        let r = c.append("c", &ct0, "", "3", &rows(0..3)).await;
        match policy {
            DuplicateAppendPolicy::RejectStale => {
                assert_eq!(r.status, 400);
                assert_eq!(r.body["code"], "STALE_CONTINUATION_TOKEN_SEQUENCER");
            }
            _ => {
                assert_eq!(r.status, 200);
                assert_eq!(r.body["next_continuation_token"], json!(ct1));
            }
        }
        assert_eq!(count(&emu), 3, "never applied twice");
        // The chain continues with ct1 either way.
        c.append_ok("c", &ct1, "4", &rows(3..4)).await;
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn row_errors_do_not_fail_the_request() {
    let (emu, c) = connected(config()).await;
    let ct = c.open_ok("c").await;
    let body =
        "{\"ID\":1}\n{\"ID\":\"not a number\"}\nnot json\n{\"ID\":4,\"DOC\":{\"a\":[1,2]}}\n";
    c.append_ok("c", &ct, "7", body).await;
    let s = &c.status(&["c"]).await["c"];
    assert_eq!(s["rows_parsed"], 4);
    assert_eq!(s["rows_inserted"], 2);
    assert_eq!(s["rows_error_count"], 2);
    assert_eq!(s["last_error_offset_upper_bound"], "7");
    assert!(s["last_error_message"].as_str().unwrap().contains("row 3"));
    assert!(s["last_error_timestamp_ms"].as_i64().unwrap() > 0);
    assert_eq!(s["last_committed_offset_token"], "7");
    assert_eq!(count(&emu), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_row_error_without_an_end_token_has_no_error_upper_bound() {
    let (emu, c) = connected(config()).await;
    let ct = c.open_append_ok("c", "5", &rows(0..2)).await;
    c.wait_committed("c", "5").await;
    // A batch without endOffsetToken whose second row is bad.
    c.append_ok("c", &ct, "", "{\"ID\":2}\n{\"ID\":\"bad\"}\n")
        .await;
    let mut s = serde_json::Value::Null;
    for _ in 0..200 {
        s = c.status(&["c"]).await["c"].clone();
        if s["rows_parsed"] == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(s["rows_parsed"], 4, "{s}");
    assert_eq!(s["rows_error_count"], 1, "{s}");
    assert!(s["last_error_message"].is_string(), "{s}");
    // Not "5": the bad row comes after token 5, so 5 is no upper bound for it.
    assert_eq!(
        s["last_error_offset_upper_bound"],
        serde_json::Value::Null,
        "{s}"
    );
    assert_eq!(s["last_committed_offset_token"], "5");
    emu.shutdown().await;
}

#[tokio::test]
async fn catalog_lookup_errors_and_default_pipe() {
    let (emu, c) = connected(config()).await;
    let put = |p: String| {
        let c = &c;
        async move { c.send(Method::PUT, &p, Some(json!({}))).await }
    };
    let r = put("/v2/streaming/databases/NODB/schemas/SCH/pipes/P/channels/c".into()).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body["code"],
        "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
    );
    let r = put("/v2/streaming/databases/DB/schemas/NOSCH/pipes/P/channels/c".into()).await;
    assert_eq!(r.status, 404);
    let r = put("/v2/streaming/databases/DB/schemas/SCH/pipes/NOPE/channels/c".into()).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["code"], "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED");
    // Default pipe, lower-case database name, percent-encoded channel name.
    let r = put(
        "/v2/streaming/databases/db/schemas/sch/pipes/T-STREAMING/channels/my%20chan%2F1".into(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["channel_status"]["channel_name"], "my chan/1");
    assert_eq!(r.body["channel_status"]["database_name"], "DB");
    // Pipe info has every field the official SDK requires.
    let r = c
        .pipe_action("pipe-info", json!({"generate_new_token": true}))
        .await;
    assert_eq!(r.status, 200);
    for f in [
        "rowset_stage_location",
        "durable_stage_location",
        "encryption_info",
    ] {
        assert!(r.body[f].is_object(), "{f}");
    }
    assert_eq!(
        r.body["parameter_overrides"]["binary_input_format"], "HEX",
        "Snowflake's default"
    );
    // Bulk status: ELASTIC is implicit, >100 names refused.
    let s = c.status(&["ELASTIC"]).await;
    assert_eq!(s["ELASTIC"]["channel_status_code"], "SUCCESS");
    let names: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let r = c
        .pipe_action("bulk-channel-status", json!({"channel_names": names}))
        .await;
    assert_eq!(r.status, 400);
    // Elastic append without tokens, on the pipe and on the table endpoint.
    let r = c
        .append_raw(
            "ELASTIC",
            "requestId=a&retryCount=0",
            rows(0..3).into_bytes(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["next_continuation_token"].is_string());
    let r = c.post_data("tables/T/rows", rows(3..5)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(count(&emu), 5);
    // Telemetry sink.
    let r = c
        .http
        .post(format!("{}/telemetry/send/sessionless", c.url))
        .bearer_auth(jwt(0))
        .json(&json!({"logs": []}))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"success": true, "message": "ok", "data": "ok", "code": "0"})
    );
    // GET / shows pipes, channels and row counts.
    let st: serde_json::Value = get_json(&format!("{}/", c.url)).await;
    assert!(st["pipes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "T-STREAMING"));
    assert_eq!(st["tables"][0]["rows"], 5);
    emu.shutdown().await;
}

#[tokio::test]
async fn payload_limit_and_read_only_query() {
    let mut cfg = config();
    cfg.max_payload_bytes = 1000;
    let (emu, c) = connected(cfg).await;
    let ct = c.open_ok("c").await;
    let q = format!("endOffsetToken=1&continuationToken={ct}");
    let r = c
        .append_raw("c", &q, rows(0..100).into_bytes(), None)
        .await
        .unwrap();
    assert_eq!(r.status, 413);
    assert!(emu.query("DELETE FROM \"DB.SCH.T\"").is_err());
    assert!(emu.query("DROP TABLE \"DB.SCH.T\"").is_err());
    emu.shutdown().await;
}

#[tokio::test]
async fn sink_mode_counts_and_commits() {
    let mut cfg = config();
    cfg.sink = true;
    let (emu, c) = connected(cfg).await;
    c.open_append_ok("c", "1000", &(rows(0..1000) + "\n\n"))
        .await;
    let s = &c.status(&["c"]).await["c"];
    assert_eq!(s["last_committed_offset_token"], "1000");
    assert_eq!(s["rows_inserted"], 1000);
    assert_eq!(emu.status()["sink"]["rows"], 1000);
    assert!(emu.query("SELECT 1").is_err(), "sink stores nothing");
    emu.shutdown().await;
}

#[tokio::test]
async fn tls_with_generated_ca() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config()
        .with_tls(snowpipe_emulator::TlsMode::Generate)
        .with_data_dir(dir.path());
    let emu = Emulator::start(cfg).await.unwrap();
    assert!(emu.url().starts_with("https://127.0.0.1:"));
    let ca_path = emu.ca_path().unwrap();
    assert_eq!(ca_path, dir.path().join("ca.pem"));
    let pem = std::fs::read(&ca_path).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let c = Client::connect_with(&emu, http).await;
    c.open_append_ok("c", "1", &rows(0..1)).await;
    assert_eq!(count(&emu), 1);
    // A client that does not trust the CA fails the handshake.
    let plain = reqwest::Client::new();
    assert!(plain.get(format!("{}/", emu.url())).send().await.is_err());
    emu.shutdown().await;
}

#[tokio::test]
async fn accept_any_key_accepts_anything() {
    let mut cfg = EmulatorConfig::for_tests().with_ddl(DDL);
    cfg.accept_any_key = true;
    let emu = Emulator::start(cfg).await.unwrap();
    let http = reqwest::Client::new();
    let r = request_token(&http, &token_url(&emu), "whatever", None, None).await;
    assert_eq!(r.status(), 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn custom_pipe_transform_maps_paths_to_columns() {
    let ddl = "USE DATABASE DB; USE SCHEMA SCH;
        CREATE PIPE P2 AS COPY INTO T (ID, NAME) FROM (SELECT $1:id, $1:info.name FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')));";
    let (emu, c) = connected(config().with_ddl(ddl)).await;
    let ct = c.open_on("P2", "c").await;
    let q = format!("endOffsetToken=1&continuationToken={ct}");
    let r = c
        .post_data(
            &format!("pipes/P2/channels/c/rows?{q}"),
            "{\"id\":7,\"info\":{\"name\":\"seven\"}}\n",
        )
        .await;
    assert_eq!(r.status(), 200);
    let rows = emu.query("SELECT ID, NAME FROM \"DB.SCH.T\"").unwrap();
    assert_eq!(rows, vec![vec![json!(7), json!("seven")]]);
    emu.shutdown().await;
}

#[tokio::test]
async fn concurrent_channels_commit_everything_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config()
        .with_data_dir(dir.path())
        .with_commit_delay(Duration::from_millis(10));
    let emu = Emulator::start(cfg).await.unwrap();
    let c = std::sync::Arc::new(Client::connect(&emu).await);
    let mut tasks = Vec::new();
    for ch in 0..8u32 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("ch{ch}");
            let mut ct = c.open_ok(&name).await;
            for batch in 0..25u32 {
                let start = ch * 10_000 + batch * 20;
                let end = (batch + 1) * 20;
                ct = c
                    .append_ok(&name, &ct, &end.to_string(), &rows(start..start + 20))
                    .await;
            }
            c.wait_committed(&name, "500").await
        }));
    }
    for t in tasks {
        let s = t.await.unwrap();
        assert_eq!(s["rows_inserted"], 500);
    }
    assert_eq!(count(&emu), 8 * 500);
    let distinct = emu
        .query("SELECT COUNT(DISTINCT ID) FROM \"DB.SCH.T\"")
        .unwrap();
    assert_eq!(distinct[0][0], json!(4000));
    emu.shutdown().await;
}

/// The emulator checks, for its users, that an append's numeric offset tokens can name its
/// rows: lenient mode accepts and counts (GET /, request log), strict mode refuses with 400.
#[tokio::test]
async fn appends_whose_tokens_cannot_name_their_rows_are_counted_or_refused() {
    for strict in [false, true] {
        let mut cfg = config();
        cfg.strict_offsets = strict;
        let (emu, c) = connected(cfg).await;
        let ct = c.open_ok("ch").await;
        // 329 rows under tokens 1..300: 29 rows past the end token.
        let r = c.append("ch", &ct, "1", "300", &rows(0..329)).await;
        // A piece whose start is after its end.
        let r2 = c.append("ch", &ct, "2001", "2000", &rows(0..5)).await;
        let violations = emu.status()["channels"][0]["offset_span_violations"].as_u64();
        let logged = emu
            .requests()
            .iter()
            .filter(|r| r.offset_violation.is_some())
            .count();
        if strict {
            assert_eq!((r.status, r2.status), (400, 400), "{}", r.text);
            assert_eq!(r.body["code"], "ERR_OFFSET_TOKEN_SPAN", "{}", r.text);
            assert!(
                r.text.contains("name 300 rows but the request carries 329"),
                "{}",
                r.text
            );
            assert_eq!(count(&emu), 0, "nothing landed");
            assert_eq!(violations, Some(0));
        } else {
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(violations, Some(1), "the second append's token was stale");
            assert_eq!(logged, 1);
        }
        // Dense, sparse and one-token-per-append requests are fine in both modes.
        let ct = c.open_ok("ok").await;
        let ct = c
            .append("ok", &ct, "1", "10", &rows(0..10))
            .await
            .next_token();
        let ct = c
            .append("ok", &ct, "20", "90", &rows(10..15))
            .await
            .next_token();
        c.append("ok", &ct, "91", "91", &rows(15..40))
            .await
            .next_token();
        emu.shutdown().await;
    }
}

/// `:pipe-info` advertises the BINARY input format the emulator is configured with, so the
/// official SDK renders bytes the way the emulator reads them.
#[tokio::test]
async fn pipe_info_reports_the_configured_binary_format() {
    let mut cfg = config();
    cfg.binary_format = snowpipe_emulator::convert::BinaryFormat::Base64;
    let (_emu, c) = connected(cfg).await;
    let r = c
        .pipe_action("pipe-info", json!({"generate_new_token": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["parameter_overrides"]["binary_input_format"],
        "BASE64"
    );
}

/// `channel_totals` sums what `status` shows over the channels a prefix names, and only those.
#[tokio::test]
async fn channel_totals_agree_with_the_status_for_a_prefix() {
    let (emu, c) = connected(config()).await;
    let mut cts = Vec::new();
    for name in ["run1_0", "run1_1", "run2_0"] {
        let r = c.open(name, json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        cts.push(
            r.body["next_continuation_token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    c.append_ok("run1_0", &cts[0], "2", &rows(1..3)).await;
    c.append_ok("run2_0", &cts[2], "7", &rows(7..8)).await;
    emu.commit_now().await;

    let run1 = emu.channel_totals("run1_");
    assert_eq!(
        (run1.channels, run1.committed, run1.rows_inserted),
        (2, 1, 2),
        "two channels, one with rows"
    );
    let all = emu.channel_totals("");
    assert_eq!((all.channels, all.committed, all.rows_inserted), (3, 2, 3));
    // The same sums as the status document's.
    let status = emu.status();
    let chans = status["channels"].as_array().unwrap();
    let rows_in_status: u64 = chans
        .iter()
        .map(|c| c["rows_inserted"].as_u64().unwrap())
        .sum();
    assert_eq!(all.rows_inserted, rows_in_status);
    assert_eq!(all.channels, chans.len());
    assert_eq!(emu.channel_totals("nothing_"), Default::default());
    emu.shutdown().await;
}
