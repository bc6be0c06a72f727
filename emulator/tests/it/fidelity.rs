//! Protocol fidelity with the real service (docs/protocol.md): the hard 4 MB cap,
//! names, roles, sticky sessions, limits and elastic channels.

use crate::common::*;
use serde_json::json;
use snowpipe_emulator::{Emulator, EmulatorConfig, MAX_PAYLOAD_BYTES};

/// `n` bytes of NDJSON: rows, then blank lines (which the server skips) up to exactly `n`.
fn body_of(n: usize) -> Vec<u8> {
    let mut b = rows(0..1000).into_bytes();
    b.resize(n, b'\n');
    b
}

#[tokio::test]
async fn the_default_payload_cap_is_4_mb_on_the_wire() {
    assert_eq!(EmulatorConfig::default().max_payload_bytes, 4_000_000);
    let (emu, c) = connected(config()).await;
    let ct = c.open_ok("c").await;
    let q = format!("endOffsetToken=1&continuationToken={ct}");
    let r = c
        .append_raw("c", &q, body_of(MAX_PAYLOAD_BYTES + 1), None)
        .await
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["code"], "ERR_PAYLOAD_TOO_LARGE");
    let r = c
        .append_raw("c", &q, body_of(MAX_PAYLOAD_BYTES), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(c.wait_committed("c", "1").await["rows_inserted"], 1000);
    emu.shutdown().await;
}

#[tokio::test]
async fn channel_names_fold_case_in_urls_but_not_in_bulk_status() {
    let (emu, c) = connected(config()).await;
    let ct = c.open_ok("Orders").await;
    // The URL names the channel in another case: the same channel.
    let next = c.append_ok("ORDERS", &ct, "1", &rows(0..3)).await;
    c.append_ok("orders", &next, "2", &rows(3..5)).await;
    let s = c.status(&["Orders", "orders", "ORDERS"]).await;
    assert_eq!(s["Orders"]["last_committed_offset_token"], "2");
    assert_eq!(s["Orders"]["channel_name"], "Orders");
    assert!(
        s.get("orders").is_none() && s.get("ORDERS").is_none(),
        "{s}"
    );
    assert_eq!(count(&emu), 5);
    // Reopening under another case bumps the same channel's sequencer.
    let r = c.open("oRdErS", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["channel_status"]["channel_name"], "Orders");
    let stale = c.append("Orders", &next, "", "3", &rows(5..6)).await;
    assert_eq!(stale.status, 400, "{}", stale.text);
    emu.shutdown().await;
}

#[tokio::test]
async fn elastic_is_reserved_in_any_case() {
    let (emu, c) = connected(config()).await;
    for name in ["ELASTIC", "elastic", "Elastic"] {
        let r = c.open(name, json!({})).await;
        assert_eq!(r.status, 400, "{name}: {}", r.text);
        assert_eq!(r.body["code"], "ERR_ELASTIC_CHANNEL_RESERVED_NAME");
        let r = c
            .send(
                reqwest::Method::DELETE,
                &format!("{BASE}/channels/{name}"),
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{name}: {}", r.text);
    }
    emu.shutdown().await;
}

/// A key-pair JWT of `ACME.BOB` like `jwt(0)`, with an `scp` claim naming `role`.
fn jwt_with_role(role: &str) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    signed_jwt(
        0,
        "BOB",
        json!({"iat": now, "exp": now + 3_540_000, "scp": format!("session:role:{role}")}),
    )
}

/// A client whose scoped token came from `jwt` and `scope`.
async fn client_with(emu: &Emulator, jwt: String, scope: &str) -> Client {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/oauth/token", emu.url()))
        .bearer_auth(jwt)
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.text().await.unwrap();
    Client {
        http,
        url: emu.url(),
        token,
    }
}

#[tokio::test]
async fn the_role_is_honoured_from_the_scope_or_the_jwt_claim() {
    let emu = Emulator::start(config().with_role_grant("loader", "db"))
        .await
        .unwrap();
    // The official SDK's form: the role in the JWT's scp claim, the scope is the host.
    let sdk = client_with(&emu, jwt_with_role("LOADER"), "127.0.0.1").await;
    assert_eq!(sdk.open("a", json!({})).await.status, 200);
    // Redpanda's form: the role in the scope.
    let rp = client_with(&emu, jwt(0), "127.0.0.1 session:role:Loader").await;
    assert_eq!(rp.open("b", json!({})).await.status, 200);
    // The scope wins over the claim.
    let both = client_with(
        &emu,
        jwt_with_role("LOADER"),
        "127.0.0.1 session:role:OTHER",
    )
    .await;
    let r = both.open("c", json!({})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(
        r.body["code"],
        "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
    );
    // No role at all is PUBLIC, which has no grant.
    let none = client_with(&emu, jwt(0), "127.0.0.1").await;
    assert_eq!(none.open("d", json!({})).await.status, 404);
    let r = none
        .pipe_action("bulk-channel-status", json!({"channel_names": ["a"]}))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    emu.shutdown().await;
}

fn limited() -> EmulatorConfig {
    let mut cfg = config();
    cfg.limits = snowpipe_emulator::Limits::Snowflake;
    cfg
}

#[tokio::test]
async fn limits_snowflake_caps_each_channels_append_rate() {
    for (cfg, limited) in [(config(), false), (limited(), true)] {
        let (emu, c) = connected(cfg).await;
        let mut ct = c.open_ok("c").await;
        let mut refused = None;
        for i in 0..11u32 {
            let r = c
                .append("c", &ct, "", &i.to_string(), &rows(i..i + 1))
                .await;
            if r.status == 429 {
                refused = Some((i, r.body["code"].clone()));
                break;
            }
            assert_eq!(r.status, 200, "{}", r.text);
            ct = r.body["next_continuation_token"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        if limited {
            assert_eq!(refused, Some((10, json!("ERR_TOO_MANY_REQUESTS"))));
            // Another channel has its own budget.
            c.open_append_ok("d", "0", &rows(0..1)).await;
            // And the channel recovers after a tenth of a second.
            tokio::time::sleep(std::time::Duration::from_millis(120)).await;
            c.append_ok("c", &ct, "10", &rows(10..11)).await;
        } else {
            assert_eq!(refused, None);
        }
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn limits_snowflake_caps_each_channels_uncompressed_throughput() {
    let (emu, c) = connected(limited()).await;
    let ct = c.open_ok("c").await;
    let send = |ct: String, end: u32| {
        let c = &c;
        async move {
            let q = format!("endOffsetToken={end}&continuationToken={ct}");
            let body = zstd::encode_all(rows(end..end + 1).as_bytes(), 3).unwrap();
            c.http
                .post(format!("{}{DATA}/channels/c/rows?{q}", c.url))
                .bearer_auth(&c.token)
                .header("Content-Encoding", "zstd")
                // What the client says it compressed: 30 MB, over one second's worth.
                .header("x-snowflake-uncompressed-content-length", "30000000")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = send(ct, 1).await;
    assert_eq!(r.status(), 200, "one request over the rate is admitted");
    let ct = r.json::<serde_json::Value>().await.unwrap()["next_continuation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = send(ct, 2).await;
    assert_eq!(r.status(), 429);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("MB/s"), "{body}");
    emu.shutdown().await;
}

#[tokio::test]
async fn limits_snowflake_caps_channels_per_pipe_and_pipes_per_table() {
    let (emu, c) = connected(limited()).await;
    for i in 0..2000 {
        assert_eq!(c.open(&format!("c{i}"), json!({})).await.status, 200);
    }
    let r = c.open("one-too-many", json!({})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["code"], "ERR_TOO_MANY_CHANNELS");
    assert_eq!(
        c.open("c7", json!({})).await.status,
        200,
        "reopening is fine"
    );
    emu.shutdown().await;

    let pipes: String = (0..10)
        .map(|i| {
            format!("CREATE PIPE DB.SCH.P{i} AS COPY INTO DB.SCH.T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;\n")
        })
        .collect();
    let Err(err) = Emulator::start(limited().with_ddl(pipes.clone())).await else {
        panic!("11 pipes (10 + the default) on T must be refused");
    };
    assert!(err.to_string().contains("10 per table"), "{err}");
    Emulator::start(config().with_ddl(pipes))
        .await
        .expect("no limit without --limits")
        .shutdown()
        .await;
}

/// `n` more declared pipes on `DB.SCH.T` (the DDL already declares `P`).
fn more_pipes(n: usize) -> String {
    (1..=n)
        .map(|i| {
            format!("CREATE PIPE DB.SCH.P{i} AS COPY INTO DB.SCH.T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;\n")
        })
        .collect()
}

#[tokio::test]
async fn an_unused_default_pipe_does_not_count_against_the_pipes_per_table() {
    // 10 declared pipes (P, P1..P9) and a default pipe nobody used: 10 pipes, accepted.
    let (emu, c) = connected(limited().with_ddl(more_pipes(9))).await;
    let ct = c.open_on("P9", "c").await;
    c.append_on("P9", "c", &ct, "1", &rows(0..2)).await;
    // Every call that would create the default pipe (the 11th) is refused, and says why.
    let path = pipe_path("T-STREAMING");
    for (method, what) in [
        (reqwest::Method::POST, format!("{path}:pipe-info")),
        (reqwest::Method::PUT, format!("{path}/channels/d")),
    ] {
        let r = c.send(method, &what, Some(json!({}))).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert_eq!(r.body["code"], "ERR_TOO_MANY_PIPES", "{what}");
        let message = r.body["message"].as_str().unwrap();
        assert!(
            message.contains("DB.SCH.T") && message.contains("declared pipes"),
            "{message}"
        );
    }
    let r = c
        .post_data("tables/T/rows?requestId=a&retryCount=0", rows(0..1))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("ERR_TOO_MANY_PIPES"));
    assert_eq!(count(&emu), 2, "nothing went through the default pipe");
    let listed: Vec<String> = emu.status()["pipes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!listed.contains(&"T-STREAMING".to_owned()), "{listed:?}");
    emu.shutdown().await;

    // 9 declared pipes: the default pipe is the 10th, created on its first use.
    let (emu, c) = connected(limited().with_ddl(more_pipes(8))).await;
    let r = c
        .send(
            reqwest::Method::POST,
            &format!("{}:pipe-info", pipe_path("T-STREAMING")),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    c.open_on("T-STREAMING", "d").await;
    emu.shutdown().await;

    // Without --limits nothing counts.
    let (emu, c) = connected(config().with_ddl(more_pipes(9))).await;
    c.open_on("T-STREAMING", "d").await;
    emu.shutdown().await;
}

#[tokio::test]
async fn elastic_appends_refuse_tokens_dedupe_nothing_and_count_retries() {
    let (emu, c) = connected(config()).await;
    let post = |query: &'static str| {
        let c = &c;
        async move {
            let r = c
                .post_data(&format!("tables/T/rows?{query}"), rows(0..2))
                .await;
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    for q in [
        "continuationToken=ct&requestId=a&retryCount=0",
        "offsetToken=1&requestId=a&retryCount=0",
        "startOffsetToken=1&endOffsetToken=2&requestId=a&retryCount=0",
    ] {
        let (status, text) = post(q).await;
        assert_eq!(status, 400, "{q}: {text}");
        assert!(
            text.contains("ERR_ELASTIC_CHANNEL_TOKENS_NOT_ALLOWED"),
            "{text}"
        );
    }
    assert_eq!(post("requestId=b&retryCount=0").await.0, 200);
    assert_eq!(post("requestId=b&retryCount=1").await.0, 200);
    assert_eq!(
        count(&emu),
        4,
        "the retry is applied again: nothing is deduplicated"
    );
    let st = emu.status();
    let elastic = st["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel_name"] == "ELASTIC")
        .unwrap()
        .clone();
    assert_eq!(elastic["retried_appends"], 1);
    emu.shutdown().await;
}

/// A DDL script that fails at start is named once in the error's whole chain (`{:#}`, as the
/// binaries print it): the message held the cause and the cause again as its source.
#[tokio::test]
async fn a_failing_ddl_script_is_named_once_in_the_error_chain() {
    let ddl = "CREATE DATABASE DEMO; CREATE SCHEMA DEMO.PUBLIC;";
    let Err(err) = Emulator::start(config().with_ddl(ddl)).await else {
        panic!("CREATE SCHEMA of the database's own PUBLIC must be refused");
    };
    let mut chain = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        chain = format!("{chain}: {c}");
        cause = c.source();
    }
    assert_eq!(chain.matches("already exists").count(), 1, "{chain}");
}
