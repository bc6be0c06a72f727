//! wiremock tests of the REST layer (real time, one server per test).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use super::*;
use crate::api::OpenChannelRequest;
use crate::error::TransportErrorKind;
use crate::test_support::*;
use crate::OffsetToken;

fn chan(db: &str, schema: &str, pipe: &str, channel: &str) -> ChannelPath {
    ChannelPath {
        pipe: PipePath {
            database: db.into(),
            schema: schema.into(),
            pipe: pipe.into(),
        },
        channel: channel.into(),
    }
}

fn simple() -> ChannelPath {
    chan("DB", "SCH", "PIPE", "CH")
}

const ROWS_PATH: &str = "/v2/streaming/data/databases/DB/schemas/SCH/pipes/PIPE/channels/CH/rows";
const CHANNEL_PATH: &str = "/v2/streaming/databases/DB/schemas/SCH/pipes/PIPE/channels/CH";
const STATUS_PATH: &str = "/v2/streaming/databases/DB/schemas/SCH/pipes/PIPE:bulk-channel-status";

fn append_request(compression: Compression) -> AppendRequest {
    let ndjson = b"{\"a\":1}\n{\"a\":2}\n".to_vec();
    let body = match compression {
        Compression::Zstd => zstd::encode_all(&ndjson[..], 3).unwrap(),
        _ => ndjson.clone(),
    };
    AppendRequest {
        body: Bytes::from(body),
        compression,
        uncompressed_len: ndjson.len(),
        row_count: 2,
        start_offset_token: Some(OffsetToken::from(1u64)),
        end_offset_token: Some(OffsetToken::from("a b&c=d/é")),
        continuation_token: "ct=0&x".into(),
        min_append_timestamp_ms: 1_700_000_000_123,
    }
}

fn status_json(name: &str) -> serde_json::Value {
    serde_json::json!({
        "database_name": "DB", "schema_name": "SCH", "pipe_name": "PIPE", "channel_name": name,
        "channel_status_code": "SUCCESS", "last_committed_offset_token": "5",
        "created_on_ms": 1_795_239_216_945_i64, "rows_inserted": 5, "rows_parsed": 5,
        "rows_error_count": 0, "last_error_offset_upper_bound": null, "last_error_message": null,
        "last_error_timestamp_ms": null, "snowflake_avg_processing_latency_ms": 12
    })
}

fn open_response() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "next_continuation_token": "ct0",
        "channel_status": status_json("CH"),
        "unexpected_field": [1, 2]
    }))
}

fn assert_uuid(s: &str) {
    assert!(
        uuid::Uuid::parse_str(s).is_ok(),
        "requestId {s:?} is not a UUID"
    );
}

// ----- connect: discovery and token exchange ---------------------------------------------------

#[tokio::test]
async fn connect_discovers_the_host_and_exchanges_a_scoped_token() {
    // Arrange
    let account = MockAccount::start().await;

    // Act
    let api = account.rest().await;

    // Assert
    assert_eq!(api.ingest_base(), account.server.uri());
    let hostname = account.requests_to("/v2/streaming/hostname").await;
    assert_eq!(hostname.len(), 1);
    let h = &hostname[0];
    assert_eq!(h.method.as_str(), "GET");
    assert_eq!(
        header(h, "x-snowflake-authorization-token-type").as_deref(),
        Some("KEYPAIR_JWT")
    );
    assert_eq!(header(h, "accept").as_deref(), Some("application/json"));
    assert!(header(h, "user-agent")
        .unwrap()
        .starts_with("snowpipe-streaming-rs/"));
    assert_uuid(&query(h, "requestId").unwrap());
    assert_eq!(query(h, "retryCount").as_deref(), Some("0"));
    let jwt = header(h, "authorization").unwrap();
    let jwt = jwt.strip_prefix("Bearer ").unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()).unwrap();
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        jwt,
        &key,
        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256),
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "MYORG-MYACCT.TESTER");
    assert_eq!(
        claims["iss"],
        format!("MYORG-MYACCT.TESTER.SHA256:{}", TEST_FINGERPRINT.trim())
    );
    assert!(claims.get("scp").is_none());

    let token = account.requests_to("/oauth/token").await;
    assert_eq!(token.len(), 1);
    let t = &token[0];
    assert_eq!(t.method.as_str(), "POST");
    assert_eq!(
        header(t, "content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        header(t, "x-snowflake-authorization-token-type").as_deref(),
        Some("KEYPAIR_JWT")
    );
    assert_eq!(
        std::str::from_utf8(&t.body).unwrap(),
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&scope=127.0.0.1"
    );
    // A fresh JWT per control-plane request (both valid; they may share a second).
    assert!(header(t, "authorization").unwrap().starts_with("Bearer ey"));
}

#[tokio::test]
async fn role_goes_into_the_jwt_scp_claim_and_the_scope() {
    let account = MockAccount::start().await;
    account.rest_with(account.builder().role("MyRole")).await;
    let t = &account.requests_to("/oauth/token").await[0];
    assert!(std::str::from_utf8(&t.body)
        .unwrap()
        .ends_with("&scope=127.0.0.1+session%3Arole%3AMyRole"));
    let jwt = header(t, "authorization").unwrap()[7..].to_owned();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()).unwrap();
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &jwt,
        &key,
        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256),
    )
    .unwrap()
    .claims;
    assert_eq!(claims["scp"], "session:role:MyRole");
}

#[tokio::test]
async fn underscores_in_the_ingest_host_become_dashes_and_scheme_and_port_are_kept() {
    let server = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/streaming/hostname"))
        .respond_with(ResponseTemplate::new(200).set_body_string(" my_acct.ingest.example\n"))
        .mount(&server)
        .await;
    let tokens = TokenResponder {
        count: std::sync::Arc::new(AtomicUsize::new(0)),
        ttl: Duration::from_secs(3600),
        delay: Duration::ZERO,
    };
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(tokens)
        .mount(&server)
        .await;
    let account = MockAccount {
        server,
        exchanges: std::sync::Arc::new(AtomicUsize::new(0)),
    };
    let api = account.rest().await;
    let port = account.server.address().port();
    assert_eq!(
        api.ingest_base(),
        format!("http://my-acct.ingest.example:{port}")
    );
    let t = &account.requests_to("/oauth/token").await[0];
    assert!(std::str::from_utf8(&t.body)
        .unwrap()
        .ends_with("&scope=my-acct.ingest.example"));

    let api = account
        .rest_with(
            account
                .builder()
                .replace_underscore_with_dash_in_host(false),
        )
        .await;
    assert_eq!(
        api.ingest_base(),
        format!("http://my_acct.ingest.example:{port}")
    );
}

#[tokio::test]
async fn pat_authenticates_the_control_plane_with_a_token_exchange() {
    let account = MockAccount::start().await;
    let builder = crate::config::ClientBuilder::new()
        .account("myacct")
        .url(account.server.uri())
        .personal_access_token("pat-secret")
        .role("R1")
        .retry(fast_retry());
    account.rest_with(builder).await;
    for p in ["/v2/streaming/hostname", "/oauth/token"] {
        let r = &account.requests_to(p).await[0];
        assert_eq!(
            header(r, "authorization").as_deref(),
            Some("Bearer pat-secret")
        );
        assert_eq!(
            header(r, "x-snowflake-authorization-token-type").as_deref(),
            Some("PROGRAMMATIC_ACCESS_TOKEN")
        );
    }
    let t = &account.requests_to("/oauth/token").await[0];
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&t.body).into_owned().collect();
    assert_eq!(
        form,
        vec![
            (
                "grant_type".into(),
                "urn:ietf:params:oauth:grant-type:token-exchange".into()
            ),
            ("scope".into(), "127.0.0.1 session:role:R1".into()),
            (
                "subject_token_type".into(),
                "programmatic_access_token".into()
            ),
        ]
    );
}

async fn account_rejecting(p: &'static str) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    Mock::given(path(p))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            serde_json::json!({"code": "390144", "message": "JWT token is invalid."}),
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/streaming/hostname"))
        .respond_with(ResponseTemplate::new(200).set_body_string("127.0.0.1"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_401_on_discovery_or_exchange_is_an_auth_error_naming_the_fingerprint() {
    for p in ["/v2/streaming/hostname", "/oauth/token"] {
        let server = account_rejecting(p).await;
        let account = MockAccount {
            server,
            exchanges: Default::default(),
        };
        let resolved = account.builder().resolve().unwrap();
        let err = RestApi::connect(resolved.connect).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Auth { .. }), "{err:?}");
        assert!(msg.contains(TEST_FINGERPRINT.trim()), "{msg}");
        assert!(msg.contains("MYORG-MYACCT.TESTER"), "{msg}");
        assert!(msg.contains("390144"), "{msg}");
        assert!(!err.is_retryable());
        // Retried with backoff like the official SDK (>= 1.8.1), then given up: the same
        // credentials are most likely rejected again.
        let tries = account.requests_to(p).await;
        assert_eq!(tries.len(), 3, "{p}");
        assert_eq!(query(&tries[2], "retryCount").as_deref(), Some("2"));
        assert_eq!(query(&tries[0], "requestId"), query(&tries[2], "requestId"));
    }
}

#[tokio::test]
async fn non_jwt_scoped_token_falls_back_to_the_default_ttl() {
    let server = wiremock::MockServer::start().await;
    Mock::given(path("/v2/streaming/hostname"))
        .respond_with(ResponseTemplate::new(200).set_body_string("127.0.0.1"))
        .mount(&server)
        .await;
    Mock::given(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_string("opaque-token"))
        .mount(&server)
        .await;
    let account = MockAccount {
        server,
        exchanges: Default::default(),
    };
    let api = account.rest().await;
    let t = api.tokens().token().await.unwrap();
    let left = t.expires_at - tokio::time::Instant::now();
    assert!(
        left > Duration::from_secs(3500) && left <= Duration::from_secs(3600),
        "{left:?}"
    );
}

// ----- request shapes ---------------------------------------------------------------------------

#[tokio::test]
async fn open_channel_request_shape_and_response() {
    // Arrange
    let account = MockAccount::start().await;
    let encoded =
        "/v2/streaming/databases/my%20db/schemas/S%2F1/pipes/P%C3%9C-STREAMING/channels/ch%20a%2B1";
    Mock::given(method("PUT"))
        .and(path(encoded))
        .respond_with(open_response())
        .expect(1)
        .mount(&account.server)
        .await;
    let api = account.rest().await;

    // Act
    let resp = api
        .open_channel(
            &chan("my db", "S/1", "PÜ-STREAMING", "ch a+1"),
            &OpenChannelRequest {
                offset_token: Some("100".into()),
                fail_on_uncommitted_rows: Some(true),
            },
        )
        .await
        .unwrap();

    // Assert
    assert_eq!(resp.next_continuation_token, "ct0");
    assert_eq!(
        resp.channel_status.channel_status_code.as_deref(),
        Some("SUCCESS")
    );
    assert_eq!(
        resp.channel_status.last_committed_offset_token.as_deref(),
        Some("5")
    );
    let r = &account.requests_to(encoded).await[0];
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"offset_token": "100", "fail_on_uncommitted_rows": true})
    );
    assert_eq!(
        header(r, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(header(r, "accept").as_deref(), Some("application/json"));
    assert_eq!(
        header(r, "x-snowflake-authorization-token-type").as_deref(),
        Some("OAUTH")
    );
    assert_eq!(
        header(r, "authorization"),
        Some(format!(
            "Bearer {}",
            api.tokens().token().await.unwrap().value.expose()
        ))
    );
    assert_uuid(&query(r, "requestId").unwrap());
    assert_eq!(query(r, "retryCount").as_deref(), Some("0"));
}

#[tokio::test]
async fn open_channel_without_options_sends_an_empty_object() {
    let account = MockAccount::start().await;
    Mock::given(method("PUT"))
        .and(path(CHANNEL_PATH))
        .respond_with(open_response())
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    api.open_channel(&simple(), &OpenChannelRequest::default())
        .await
        .unwrap();
    let r = &account.requests_to(CHANNEL_PATH).await[0];
    assert_eq!(&r.body[..], b"{}");
}

#[tokio::test]
async fn append_rows_request_shape() {
    // Arrange
    let account = MockAccount::start().await;
    Mock::given(method("POST"))
        .and(path(ROWS_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"next_continuation_token": "ct1"})),
        )
        .expect(1)
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    let req = append_request(Compression::Zstd);

    // Act
    let next = api.append_rows(&simple(), &req).await.unwrap();

    // Assert
    assert_eq!(next, "ct1");
    let r = &account.requests_to(ROWS_PATH).await[0];
    let q = raw_query(r);
    let request_id = query(r, "requestId").unwrap();
    assert_eq!(
        q,
        format!(
            "startOffsetToken=1&endOffsetToken=a%20b%26c%3Dd%2F%C3%A9&continuationToken=ct%3D0%26x\
             &requestId={request_id}&retryCount=0"
        )
    );
    assert_eq!(
        header(r, "content-type").as_deref(),
        Some("application/x-ndjson")
    );
    assert_eq!(header(r, "content-encoding").as_deref(), Some("zstd"));
    assert_eq!(
        header(r, "x-snowflake-uncompressed-content-length").as_deref(),
        Some("16")
    );
    assert_eq!(
        header(r, "x-snowflake-min-append-timestamp-ms").as_deref(),
        Some("1700000000123")
    );
    assert_eq!(
        header(r, "x-snowflake-authorization-token-type").as_deref(),
        Some("OAUTH")
    );
    assert_eq!(r.body, req.body.to_vec());
    assert_eq!(
        zstd::decode_all(&r.body[..]).unwrap(),
        b"{\"a\":1}\n{\"a\":2}\n"
    );
}

#[tokio::test]
async fn append_rows_uncompressed_and_without_start_token() {
    let account = MockAccount::start().await;
    Mock::given(method("POST"))
        .and(path(ROWS_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"next_continuation_token": "ct1"})),
        )
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    let mut req = append_request(Compression::None);
    req.start_offset_token = None;
    req.end_offset_token = None;
    api.append_rows(&simple(), &req).await.unwrap();
    let r = &account.requests_to(ROWS_PATH).await[0];
    assert!(raw_query(r)
        .starts_with("startOffsetToken=&endOffsetToken=&continuationToken=ct%3D0%26x&requestId="));
    assert_eq!(header(r, "content-encoding"), None);
    assert_eq!(header(r, "x-snowflake-uncompressed-content-length"), None);
    assert_eq!(&r.body[..], b"{\"a\":1}\n{\"a\":2}\n");

    let req = append_request(Compression::Gzip);
    api.append_rows(&simple(), &req).await.unwrap();
    let r = &account.requests_to(ROWS_PATH).await[1];
    assert_eq!(header(r, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(
        header(r, "x-snowflake-uncompressed-content-length").as_deref(),
        Some("16")
    );
}

#[tokio::test]
async fn bulk_status_splits_into_chunks_of_100_and_merges() {
    // Arrange: the server reports every requested name except those ending in 7.
    struct Echo;
    impl Respond for Echo {
        fn respond(&self, req: &Request) -> ResponseTemplate {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let mut statuses = serde_json::Map::new();
            for n in body["channel_names"].as_array().unwrap() {
                let n = n.as_str().unwrap();
                if !n.ends_with('7') {
                    statuses.insert(n.to_owned(), status_json(n));
                }
            }
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"channel_statuses": statuses}))
        }
    }
    let account = MockAccount::start().await;
    Mock::given(method("POST"))
        .and(path(STATUS_PATH))
        .respond_with(Echo)
        .expect(3)
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    let names: Vec<String> = (0..250).map(|i| format!("c{i}")).collect();

    // Act
    let map = api
        .bulk_channel_status(&simple().pipe, &names)
        .await
        .unwrap();

    // Assert
    assert_eq!(map.len(), 225);
    assert!(!map.contains_key("c7"));
    assert_eq!(map["c249"].rows_inserted, Some(5));
    let reqs = account.requests_to(STATUS_PATH).await;
    let sizes: Vec<usize> = reqs
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            v["channel_names"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(
        header(&reqs[0], "content-type").as_deref(),
        Some("application/json")
    );

    // An empty list makes no request.
    assert!(api
        .bulk_channel_status(&simple().pipe, &[])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(account.requests_to(STATUS_PATH).await.len(), 3);
}

#[tokio::test]
async fn drop_channel_parses_the_committed_token_or_nothing() {
    let account = MockAccount::start().await;
    Mock::given(method("DELETE"))
        .and(path(CHANNEL_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"last_committed_offset_token": "7"})),
        )
        .up_to_n_times(1)
        .mount(&account.server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(CHANNEL_PATH))
        .respond_with(ResponseTemplate::new(200))
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    assert_eq!(
        api.drop_channel(&simple()).await.unwrap().as_deref(),
        Some("7")
    );
    assert_eq!(api.drop_channel(&simple()).await.unwrap(), None);
    let r = &account.requests_to(CHANNEL_PATH).await[0];
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn unusable_names_are_rejected_before_any_request() {
    let account = MockAccount::start().await;
    let api = account.rest().await;
    let err = api
        .drop_channel(&chan("DB", "", "P", "C"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { what: "schema", .. }),
        "{err:?}"
    );
    let err = api
        .drop_channel(&chan("DB", "S", "P", ".."))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                what: "channel",
                ..
            }
        ),
        "{err:?}"
    );
}

// ----- retries and error classification --------------------------------------------------------

#[tokio::test]
async fn retryable_statuses_are_retried_with_the_same_request_id() {
    for status in [429u16, 500, 502, 503, 504] {
        // Arrange
        let account = MockAccount::start().await;
        Mock::given(method("DELETE"))
            .and(path(CHANNEL_PATH))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_string("\"ERR_GENERAL_EXCEPTION_RETRY_REQUEST\""),
            )
            .up_to_n_times(2)
            .with_priority(1)
            .mount(&account.server)
            .await;
        Mock::given(method("DELETE"))
            .and(path(CHANNEL_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .expect(1)
            .mount(&account.server)
            .await;
        let api = account.rest().await;

        // Act
        api.drop_channel(&simple()).await.unwrap();

        // Assert
        let reqs = account.requests_to(CHANNEL_PATH).await;
        assert_eq!(reqs.len(), 3, "status {status}");
        let ids: Vec<_> = reqs
            .iter()
            .map(|r| query(r, "requestId").unwrap())
            .collect();
        assert!(
            ids.iter().all(|id| id == &ids[0]),
            "status {status}: {ids:?}"
        );
        let counts: Vec<_> = reqs
            .iter()
            .map(|r| query(r, "retryCount").unwrap())
            .collect();
        assert_eq!(counts, ["0", "1", "2"], "status {status}");
    }
}

#[tokio::test]
async fn exhausted_retries_return_the_last_server_error() {
    let account = MockAccount::start().await;
    Mock::given(method("POST"))
        .and(path(STATUS_PATH))
        .respond_with(
            ResponseTemplate::new(503).set_body_string("\"ERR_GENERAL_EXCEPTION_RETRY_REQUEST\""),
        )
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    let err = api
        .bulk_channel_status(&simple().pipe, &["CH".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        err.snowflake_code(),
        Some("ERR_GENERAL_EXCEPTION_RETRY_REQUEST")
    );
    assert!(err.is_retryable());
    assert!(err.request_id().is_some());
    let Error::Server(s) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(s.attempts, 5);
    assert_eq!(account.requests_to(STATUS_PATH).await.len(), 5);
    assert!(err.to_string().contains("after 5 attempts"), "{err}");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let account = MockAccount::start().await;
    Mock::given(method("DELETE"))
        .and(path(CHANNEL_PATH))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&account.server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(CHANNEL_PATH))
        .respond_with(ResponseTemplate::new(200))
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    let start = Instant::now();
    api.drop_channel(&simple()).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn the_total_budget_caps_retry_after() {
    let account = MockAccount::start().await;
    Mock::given(method("DELETE"))
        .and(path(CHANNEL_PATH))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "30"))
        .mount(&account.server)
        .await;
    let api = account
        .rest_with(
            account
                .builder()
                .retry(fast_retry().total_budget(Duration::from_millis(200))),
        )
        .await;
    let start = Instant::now();
    let err = api.drop_channel(&simple()).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(account.requests_to(CHANNEL_PATH).await.len(), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (status, body, code) in [
        (
            400u16,
            r#"{"code":"STALE_CONTINUATION_TOKEN_SEQUENCER","message":"reopen"}"#,
            Some("STALE_CONTINUATION_TOKEN_SEQUENCER"),
        ),
        (
            403,
            r#"{"error_code":"ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED","message":"no"}"#,
            Some("ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"),
        ),
        (404, r#"{"message":"pipe not found"}"#, None),
        (
            409,
            r#"{"code":"ERR_CHANNEL_MUST_BE_REOPENED","message":"x"}"#,
            Some("ERR_CHANNEL_MUST_BE_REOPENED"),
        ),
    ] {
        let account = MockAccount::start().await;
        Mock::given(method("POST"))
            .and(path(ROWS_PATH))
            .respond_with(ResponseTemplate::new(status).set_body_string(body))
            .mount(&account.server)
            .await;
        let api = account.rest().await;
        let err = api
            .append_rows(&simple(), &append_request(Compression::Zstd))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.snowflake_code(), code, "{err}");
        assert!(!err.is_retryable(), "{status}");
        assert_eq!(account.requests_to(ROWS_PATH).await.len(), 1, "{status}");
    }
}

#[tokio::test]
async fn a_non_json_404_is_retried_as_a_misrouted_request() {
    let account = MockAccount::start().await;
    Mock::given(method("DELETE"))
        .and(path(CHANNEL_PATH))
        .respond_with(
            ResponseTemplate::new(404).set_body_string("<html><body>Not Found</body></html>"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&account.server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(CHANNEL_PATH))
        .respond_with(ResponseTemplate::new(200))
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    api.drop_channel(&simple()).await.unwrap();
    assert_eq!(account.requests_to(CHANNEL_PATH).await.len(), 2);
}

#[tokio::test]
async fn open_channel_retries_409_in_progress_and_uncommitted_data_only() {
    // Arrange: two retryable 409s, then success.
    let account = MockAccount::start().await;
    Mock::given(method("PUT"))
        .and(path(CHANNEL_PATH))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_string(r#"{"code":"ERR_OPEN_CHANNEL_IN_PROGRESS","message":"busy"}"#),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&account.server)
        .await;
    Mock::given(method("PUT"))
        .and(path(CHANNEL_PATH))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_string(r#"{"code":"ERR_CHANNEL_HAS_UNCOMMITTED_DATA","message":"wait"}"#),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&account.server)
        .await;
    Mock::given(method("PUT"))
        .and(path(CHANNEL_PATH))
        .respond_with(open_response())
        .with_priority(3)
        .mount(&account.server)
        .await;
    let api = account.rest().await;

    // Act
    let resp = api
        .open_channel(&simple(), &OpenChannelRequest::default())
        .await
        .unwrap();

    // Assert
    assert_eq!(resp.next_continuation_token, "ct0");
    assert_eq!(account.requests_to(CHANNEL_PATH).await.len(), 3);

    // The same 409 on append rows is not retried.
    Mock::given(method("POST"))
        .and(path(ROWS_PATH))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_string(r#"{"code":"ERR_OPEN_CHANNEL_IN_PROGRESS"}"#),
        )
        .mount(&account.server)
        .await;
    let err = api
        .append_rows(&simple(), &append_request(Compression::None))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert_eq!(account.requests_to(ROWS_PATH).await.len(), 1);
}

#[tokio::test]
async fn open_channel_gives_up_on_a_persistent_409() {
    let account = MockAccount::start().await;
    Mock::given(method("PUT"))
        .and(path(CHANNEL_PATH))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_string(r#"{"code":"ERR_CHANNEL_HAS_UNCOMMITTED_DATA","message":"wait"}"#),
        )
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    let err = api
        .open_channel(&simple(), &OpenChannelRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.snowflake_code(),
        Some("ERR_CHANNEL_HAS_UNCOMMITTED_DATA")
    );
    assert_eq!(account.requests_to(CHANNEL_PATH).await.len(), 5);
}

#[tokio::test]
async fn a_retried_append_resends_the_identical_request() {
    // Documents the duplicate risk: after a 503 the same body, continuation token and
    // requestId are sent again (retryCount 1). If the first attempt had been applied, the
    // rows would land twice; Snowflake documents retryCount > 0 as "duplicates possible".
    let account = MockAccount::start().await;
    Mock::given(method("POST"))
        .and(path(ROWS_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&account.server)
        .await;
    Mock::given(method("POST"))
        .and(path(ROWS_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"next_continuation_token": "ct1"})),
        )
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    api.append_rows(&simple(), &append_request(Compression::Zstd))
        .await
        .unwrap();
    let reqs = account.requests_to(ROWS_PATH).await;
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!(
        query(&reqs[0], "continuationToken"),
        query(&reqs[1], "continuationToken")
    );
    assert_eq!(query(&reqs[0], "requestId"), query(&reqs[1], "requestId"));
    assert_eq!(query(&reqs[1], "retryCount").as_deref(), Some("1"));
}

#[tokio::test]
async fn an_append_timeout_is_not_resent() {
    // Arrange: the server takes longer than the request timeout.
    let account = MockAccount::start().await;
    Mock::given(method("POST"))
        .and(path(ROWS_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"next_continuation_token": "ct1"}))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&account.server)
        .await;
    let api = account
        .rest_with(
            account
                .builder()
                .request_timeout(Duration::from_millis(300)),
        )
        .await;

    // Act
    let err = api
        .append_rows(&simple(), &append_request(Compression::Zstd))
        .await
        .unwrap_err();

    // Assert: one attempt, reported as a timeout the channel must recover from by replay.
    let Error::Transport(t) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(t.kind, TransportErrorKind::Timeout);
    assert_eq!(t.attempts, 1);
    assert!(err.request_id().is_some());
    assert_eq!(account.requests_to(ROWS_PATH).await.len(), 1);
}

#[tokio::test]
async fn an_idempotent_call_is_retried_after_a_timeout() {
    let account = MockAccount::start().await;
    Mock::given(method("POST"))
        .and(path(STATUS_PATH))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&account.server)
        .await;
    Mock::given(method("POST"))
        .and(path(STATUS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"channel_statuses":{}}"#))
        .mount(&account.server)
        .await;
    let api = account
        .rest_with(
            account
                .builder()
                .request_timeout(Duration::from_millis(300)),
        )
        .await;
    let map = api
        .bulk_channel_status(&simple().pipe, &["CH".into()])
        .await
        .unwrap();
    assert!(map.is_empty());
    assert_eq!(account.requests_to(STATUS_PATH).await.len(), 2);
}

#[tokio::test]
async fn connection_failures_are_retried_then_reported() {
    // A port nothing listens on: connection refused on every attempt.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let account = MockAccount::start().await;
    let resolved = account.builder().resolve().unwrap();
    let call = Call::new(
        "append rows",
        Method::POST,
        format!("http://127.0.0.1:{port}/rows"),
    )
    .not_idempotent();
    let err = resolved
        .connect
        .http
        .execute(&call, &resolved.connect.control)
        .await
        .unwrap_err();
    let Error::Transport(t) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(t.kind, TransportErrorKind::Connect);
    assert_eq!(
        t.attempts, 5,
        "connect failures are retried even for appends"
    );
    assert!(err.is_retryable());
    // The host is named (it is what to check); the path and query (tokens) are not.
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "the host is named: {err}"
    );
    assert!(
        !err.to_string().contains("/rows"),
        "no URL path in the message: {err}"
    );
    assert!(
        err.to_string().contains("cannot connect to 127.0.0.1"),
        "{err}"
    );
}

#[tokio::test]
async fn an_undecodable_success_body_is_a_decode_error() {
    let account = MockAccount::start().await;
    Mock::given(method("POST"))
        .and(path(ROWS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"unexpected\":true}"))
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    let err = api
        .append_rows(&simple(), &append_request(Compression::Zstd))
        .await
        .unwrap_err();
    let Error::Transport(t) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(t.kind, TransportErrorKind::Decode);
    assert!(err.request_id().is_some());
    assert!(!err.is_retryable(), "a malformed 200 is not retry-later");
}

// ----- 401 and token refresh ------------------------------------------------------------------

/// 401 for requests carrying scoped token number `reject` (by its payload marker), else `ok`.
struct RejectToken {
    reject: usize,
    ok: ResponseTemplate,
    hits: std::sync::Arc<AtomicUsize>,
}

impl Respond for RejectToken {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.hits.fetch_add(1, Ordering::SeqCst);
        let auth = req.headers.get("authorization").unwrap().to_str().unwrap();
        let payload = auth.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        if claims["n"].as_u64() == Some(self.reject as u64) {
            ResponseTemplate::new(401)
                .set_body_string(r#"{"code":"390114","message":"token expired"}"#)
        } else {
            self.ok.clone()
        }
    }
}

#[tokio::test]
async fn a_401_refreshes_the_token_and_retries_with_the_same_request_id() {
    let account = MockAccount::start().await;
    Mock::given(method("POST"))
        .and(path(STATUS_PATH))
        .respond_with(RejectToken {
            reject: 1,
            ok: ResponseTemplate::new(200).set_body_string(r#"{"channel_statuses":{}}"#),
            hits: Default::default(),
        })
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    assert_eq!(account.exchanges(), 1);

    api.bulk_channel_status(&simple().pipe, &["CH".into()])
        .await
        .unwrap();

    assert_eq!(account.exchanges(), 2);
    let reqs = account.requests_to(STATUS_PATH).await;
    assert_eq!(reqs.len(), 2);
    assert_eq!(query(&reqs[0], "requestId"), query(&reqs[1], "requestId"));
    assert_eq!(query(&reqs[1], "retryCount").as_deref(), Some("1"));
    assert_ne!(
        header(&reqs[0], "authorization"),
        header(&reqs[1], "authorization")
    );
}

#[tokio::test]
async fn concurrent_401s_share_one_token_exchange() {
    // Arrange: every call made with token #1 is rejected; the exchange is slow so the
    // callers pile up behind one refresh.
    const N: usize = 16;
    let account =
        MockAccount::start_with(Duration::from_secs(3600), Duration::from_millis(100)).await;
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path_regex(r":bulk-channel-status$"))
        .respond_with(RejectToken {
            reject: 1,
            ok: ResponseTemplate::new(200).set_body_string(r#"{"channel_statuses":{}}"#),
            hits: std::sync::Arc::clone(&hits),
        })
        .mount(&account.server)
        .await;
    let api = std::sync::Arc::new(account.rest().await);
    assert_eq!(account.exchanges(), 1);

    // Act
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let api = std::sync::Arc::clone(&api);
            tokio::spawn(async move {
                let pipe = PipePath {
                    database: "DB".into(),
                    schema: "SCH".into(),
                    pipe: format!("P{i}"),
                };
                api.bulk_channel_status(&pipe, &["CH".into()]).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }

    // Assert: exactly one extra exchange, and every call retried once.
    assert_eq!(account.exchanges(), 2);
    assert_eq!(hits.load(Ordering::SeqCst), 2 * N);
}

#[tokio::test]
async fn repeated_401s_become_an_auth_error() {
    let account = MockAccount::start().await;
    Mock::given(method("POST"))
        .and(path(STATUS_PATH))
        .respond_with(
            ResponseTemplate::new(401).set_body_string(r#"{"code":"390303","message":"invalid"}"#),
        )
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    let err = api
        .bulk_channel_status(&simple().pipe, &["CH".into()])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("scoped token"), "{err}");
    // The first attempt and one retry per refresh (two refreshes).
    assert_eq!(account.requests_to(STATUS_PATH).await.len(), 3);
    assert_eq!(account.exchanges(), 3);
}

#[tokio::test]
async fn the_token_is_refreshed_ahead_of_expiry() {
    // A 4 s token is refreshed at half its life. Its `exp` has whole-second precision, so the
    // lifetime the client sees is between 3 and 4 s: at 2.6 s it is inside the refresh window
    // (after 1.5–2 s) and not yet expired (3–4 s), whatever the sub-second phase.
    let account = MockAccount::start_with(Duration::from_secs(4), Duration::ZERO).await;
    Mock::given(method("DELETE"))
        .and(path(CHANNEL_PATH))
        .respond_with(ResponseTemplate::new(200))
        .mount(&account.server)
        .await;
    let api = account.rest().await;
    api.drop_channel(&simple()).await.unwrap();
    assert_eq!(account.exchanges(), 1);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    // Inside the refresh window: the call goes out with the still-valid token at once and
    // the refresh runs in the background.
    let first = api.tokens().token().await.unwrap().generation;
    api.drop_channel(&simple()).await.unwrap();
    for _ in 0..500 {
        if api.tokens().token().await.unwrap().generation != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(account.exchanges(), 2);
    api.drop_channel(&simple()).await.unwrap();
    let reqs = account.requests_to(CHANNEL_PATH).await;
    assert_eq!(
        header(&reqs[0], "authorization"),
        header(&reqs[1], "authorization")
    );
    assert_ne!(
        header(&reqs[0], "authorization"),
        header(&reqs[2], "authorization")
    );
}

/// An account whose first token exchange succeeds and every later one answers `status`.
async fn account_whose_refresh_fails(status: u16) -> MockAccount {
    let server = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/streaming/hostname"))
        .respond_with(ResponseTemplate::new(200).set_body_string("127.0.0.1"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(scoped_token(Duration::from_secs(3600), 1)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(
            ResponseTemplate::new(status).set_body_string(r#"{"code":"390400","message":"x"}"#),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(STATUS_PATH))
        .respond_with(RejectToken {
            reject: 1,
            ok: ResponseTemplate::new(200).set_body_string(r#"{"channel_statuses":{}}"#),
            hits: Default::default(),
        })
        .mount(&server)
        .await;
    MockAccount {
        server,
        exchanges: Default::default(),
    }
}

/// The error of a status call whose token, refused with a 401, cannot be refreshed because
/// the exchange answers `status`.
async fn error_when_refresh_fails(status: u16) -> Error {
    let account = account_whose_refresh_fails(status).await;
    account
        .rest()
        .await
        .bulk_channel_status(&simple().pipe, &["CH".into()])
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_transient_exchange_failure_after_a_401_stays_retryable() {
    for status in [500, 503] {
        let err = error_when_refresh_fails(status).await;
        assert!(matches!(err, Error::Server(_)), "{status}: {err:?}");
        assert_eq!(err.status(), Some(status));
        assert!(err.is_retryable(), "{status}: {err}");
        assert!(err.to_string().contains("token exchange"), "{err}");
    }
}

#[tokio::test]
async fn a_refused_exchange_is_an_auth_error() {
    for status in [400, 403] {
        let err = error_when_refresh_fails(status).await;
        assert!(matches!(err, Error::Auth { .. }), "{status}: {err:?}");
        assert!(!err.is_retryable());
        let msg = err.to_string();
        assert!(msg.contains(&format!("HTTP {status} 390400")), "{msg}");
        assert!(msg.contains("role"), "{msg}");
    }
}

#[tokio::test]
async fn the_user_agent_carries_the_application() {
    let account = MockAccount::start().await;
    account
        .rest_with(account.builder().application("ski_resort"))
        .await;
    let r = &account.requests_to("/v2/streaming/hostname").await[0];
    assert!(header(r, "user-agent")
        .unwrap()
        .ends_with(" (app=ski_resort)"));
}

// ----- OAuth ----------------------------------------------------------------------------------

/// Answers the OAuth token endpoint with access tokens `at1`, `at2`, ... and rotated refresh
/// tokens `rt1`, `rt2`, ...
struct IdP(std::sync::Arc<AtomicUsize>);

impl Respond for IdP {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": format!("at{n}"), "expires_in": 600, "refresh_token": format!("rt{n}"),
            "token_type": "Bearer"
        }))
    }
}

fn oauth_builder(account: &MockAccount) -> crate::config::ClientBuilder {
    crate::config::ClientBuilder::new()
        .account("myacct")
        .url(account.server.uri())
        .authorization_type(crate::AuthorizationType::OAuth)
        .oauth_client("cid", "csecret")
        .oauth_refresh_token("rt0")
        .role("R")
        .retry(fast_retry())
}

#[tokio::test]
async fn oauth_gets_an_access_token_then_exchanges_it() {
    // Arrange
    let account = MockAccount::start().await;
    let idp_calls = std::sync::Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path("/oauth/token-request"))
        .respond_with(IdP(std::sync::Arc::clone(&idp_calls)))
        .mount(&account.server)
        .await;

    // Act
    account.rest_with(oauth_builder(&account)).await;

    // Assert: one IdP call with Basic client credentials and the refresh token.
    let idp = account.requests_to("/oauth/token-request").await;
    assert_eq!(idp.len(), 1);
    assert_eq!(
        header(&idp[0], "authorization").as_deref(),
        Some("Basic Y2lkOmNzZWNyZXQ=")
    );
    assert_eq!(
        header(&idp[0], "x-snowflake-authorization-token-type"),
        None
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&idp[0].body)
        .into_owned()
        .collect();
    assert_eq!(
        form,
        vec![
            ("grant_type".into(), "refresh_token".into()),
            ("refresh_token".into(), "rt0".into()),
            ("scope".into(), "session:role:R".into()),
        ]
    );
    // Hostname and exchange with the access token, token type OAUTH.
    for p in ["/v2/streaming/hostname", "/oauth/token"] {
        let r = &account.requests_to(p).await[0];
        assert_eq!(header(r, "authorization").as_deref(), Some("Bearer at1"));
        assert_eq!(
            header(r, "x-snowflake-authorization-token-type").as_deref(),
            Some("OAUTH")
        );
    }
    let t = &account.requests_to("/oauth/token").await[0];
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&t.body).into_owned().collect();
    assert_eq!(
        form,
        vec![
            (
                "grant_type".into(),
                "urn:ietf:params:oauth:grant-type:token-exchange".into()
            ),
            ("scope".into(), "127.0.0.1 session:role:R".into()),
            (
                "subject_token_type".into(),
                "urn:ietf:params:oauth:token-type:access_token".into()
            ),
        ]
    );
}

#[tokio::test]
async fn oauth_refreshes_a_rejected_access_token_with_the_rotated_refresh_token() {
    let account = MockAccount::start().await;
    let idp_calls = std::sync::Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path("/oauth/token-request"))
        .respond_with(IdP(std::sync::Arc::clone(&idp_calls)))
        .mount(&account.server)
        .await;
    // The first hostname call is rejected (revoked access token).
    Mock::given(method("GET"))
        .and(path("/v2/streaming/hostname"))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&account.server)
        .await;
    account.rest_with(oauth_builder(&account)).await;

    let idp = account.requests_to("/oauth/token-request").await;
    assert_eq!(idp.len(), 2);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&idp[1].body)
        .into_owned()
        .collect();
    assert!(
        form.contains(&("refresh_token".into(), "rt1".into())),
        "{form:?}"
    );
    let hostname = account.requests_to("/v2/streaming/hostname").await;
    assert_eq!(
        header(&hostname[1], "authorization").as_deref(),
        Some("Bearer at2")
    );
}

#[tokio::test]
async fn oauth_settings_are_required() {
    let account = MockAccount::start().await;
    let err = crate::config::ClientBuilder::new()
        .account("a")
        .url(account.server.uri())
        .authorization_type(crate::AuthorizationType::OAuth)
        .resolve()
        .unwrap_err();
    assert!(
        matches!(err, Error::Config { ref setting, .. } if setting == "oauth_client_id"),
        "{err:?}"
    );
}

// ----- logging ---------------------------------------------------------------------------------

#[tokio::test]
async fn logs_show_retries_but_never_tokens() {
    // Arrange: a 503, then a 401 (refresh), then success, with every log line captured.
    let logs = LogCapture::global();
    let account = MockAccount::start().await;
    Mock::given(method("POST"))
        .and(path(ROWS_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&account.server)
        .await;
    Mock::given(method("POST"))
        .and(path(ROWS_PATH))
        .respond_with(RejectToken {
            reject: 1,
            ok: ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"next_continuation_token": "ct1"})),
            hits: Default::default(),
        })
        .with_priority(2)
        .mount(&account.server)
        .await;
    let api = account.rest().await;

    // Act
    api.append_rows(&simple(), &append_request(Compression::Zstd))
        .await
        .unwrap();

    // Assert (on everything logged by every test so far, which only strengthens the
    // no-secrets checks).
    let text = logs.text();
    assert!(text.contains("retrying after backoff"), "{text}");
    assert!(
        text.contains("HTTP 401: retrying with a refreshed token"),
        "{text}"
    );
    assert!(!text.contains("eyJ"), "a JWT leaked into the logs:\n{text}");
    assert!(
        !text.contains("Bearer"),
        "an authorization header leaked:\n{text}"
    );
    assert!(
        !text.contains("BEGIN PRIVATE KEY") && !text.contains("MII"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_profile_keys_are_logged_as_warnings() {
    let logs = LogCapture::global();
    let _ = crate::config::ClientBuilder::from_profile_json(
        r#"{"account":"a","enable_telemetry_reporting":false}"#,
    )
    .unwrap();
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("enable_telemetry_reporting"))
        .unwrap_or_else(|| panic!("no warning logged:\n{text}"));
    assert!(line.contains("WARN"), "{line}");
}
