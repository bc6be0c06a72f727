//! The unit tests' additions to the shared mock account ([`crate::test_util`]): the
//! crate-internal REST layer, log capture, property-test settings, and the wiremock helpers
//! and canned requests and answers the wire tests (`rest/`, `http/`, `auth/`) share.

use std::sync::Arc;

use crate::config::ClientBuilder;

pub(crate) use crate::test_util::*;

pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
pub(crate) use std::time::{Duration, Instant};

pub(crate) use bytes::Bytes;
pub(crate) use wiremock::matchers::{method, path, path_regex};
pub(crate) use wiremock::{Mock, Request, Respond, ResponseTemplate};

pub(crate) use crate::api::OpenChannelRequest;
pub(crate) use crate::error::TransportErrorKind;
pub(crate) use crate::OffsetToken;
// What the wire tests (`rest/`, `http/`, `auth/`) all use.
#[allow(unused_imports)]
pub(crate) use crate::rest::RestApi;
#[allow(unused_imports)]
pub(crate) use crate::transport::*;
#[allow(unused_imports)]
pub(crate) use crate::{Compression, Error, Result};

/// What unit tests add to [`MockAccount`]: the crate-internal REST layer, connected to it.
pub(crate) trait MockAccountExt {
    /// The REST layer, connected.
    async fn rest(&self) -> RestApi;
    /// The REST layer of `builder`, connected.
    async fn rest_with(&self, builder: ClientBuilder) -> RestApi;
}

impl MockAccountExt for MockAccount {
    async fn rest(&self) -> RestApi {
        self.rest_with(self.builder()).await
    }

    async fn rest_with(&self, builder: ClientBuilder) -> RestApi {
        RestApi::connect(builder.resolve().unwrap().connect)
            .await
            .unwrap()
    }
}

/// The test key's fingerprint.
pub(crate) const TEST_FINGERPRINT: &str = include_str!("../tests/fixtures/test_key.fingerprint");

/// Captures everything logged (at trace level) by every test of this binary. A global
/// subscriber, because thread-local ones race with tracing's global callsite cache when tests
/// run in parallel.
#[derive(Clone, Default)]
pub(crate) struct LogCapture(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// The capture, installed as the global subscriber on first use.
    pub(crate) fn global() -> &'static Self {
        static CAPTURE: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
        CAPTURE.get_or_init(|| {
            let capture = Self::default();
            let writer = capture.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in unit tests");
            capture
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Property-test settings: `cases` cases from a fixed seed, so `cargo test` explores the same
/// inputs on every run; `PROPTEST_RNG_SEED=N` (or `PROPTEST_RNG_SEED=random` for a fresh
/// seed every run) and `PROPTEST_CASES=N` explore further.
pub(crate) fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    let mut config = Config::with_cases(cases);
    config.rng_seed = match std::env::var("PROPTEST_RNG_SEED").ok().as_deref() {
        Some("random") => RngSeed::Random,
        Some(s) => s.parse().map_or(RngSeed::Fixed(0x5EED), RngSeed::Fixed),
        None => RngSeed::Fixed(0x5EED),
    };
    if let Some(n) = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config.cases = n;
    }
    config
}

pub(crate) fn chan(db: &str, schema: &str, pipe: &str, channel: &str) -> ChannelPath {
    ChannelPath {
        pipe: PipePath {
            database: db.into(),
            schema: schema.into(),
            pipe: pipe.into(),
        },
        channel: channel.into(),
    }
}

pub(crate) fn simple() -> ChannelPath {
    chan("DB", "SCH", "PIPE", "CH")
}

pub(crate) const ROWS_PATH: &str =
    "/v2/streaming/data/databases/DB/schemas/SCH/pipes/PIPE/channels/CH/rows";
pub(crate) const CHANNEL_PATH: &str =
    "/v2/streaming/databases/DB/schemas/SCH/pipes/PIPE/channels/CH";
pub(crate) const STATUS_PATH: &str =
    "/v2/streaming/databases/DB/schemas/SCH/pipes/PIPE:bulk-channel-status";

pub(crate) fn append_request(compression: Compression) -> AppendRequest {
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
        end_offset_token: Some(OffsetToken::new("a b&c=d/é").unwrap()),
        continuation_token: "ct=0&x".into(),
        min_append_timestamp_ms: 1_700_000_000_123,
    }
}

pub(crate) fn status_json(name: &str) -> serde_json::Value {
    serde_json::json!({
        "database_name": "DB", "schema_name": "SCH", "pipe_name": "PIPE", "channel_name": name,
        "channel_status_code": "SUCCESS", "last_committed_offset_token": "5",
        "created_on_ms": 1_795_239_216_945_i64, "rows_inserted": 5, "rows_parsed": 5,
        "rows_error_count": 0, "last_error_offset_upper_bound": null, "last_error_message": null,
        "last_error_timestamp_ms": null, "snowflake_avg_processing_latency_ms": 12
    })
}

pub(crate) fn open_response() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "next_continuation_token": "ct0",
        "channel_status": status_json("CH"),
        "unexpected_field": [1, 2]
    }))
}

/// The `(row_index, max)` of an [`Error::RowTooLarge`]; panics on any other error.
pub(crate) fn row_too_large(err: &Error) -> (Option<usize>, usize) {
    match err {
        Error::RowTooLarge { row_index, max, .. } => (*row_index, *max),
        other => panic!("expected RowTooLarge, got {other:?}"),
    }
}

pub(crate) fn assert_uuid(s: &str) {
    assert!(
        uuid::Uuid::parse_str(s).is_ok(),
        "requestId {s:?} is not a UUID"
    );
}

/// 401 for requests carrying scoped token number `reject` (by its payload marker), else `ok`.
pub(crate) struct RejectToken {
    pub(crate) reject: usize,
    pub(crate) ok: ResponseTemplate,
    pub(crate) hits: std::sync::Arc<AtomicUsize>,
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

/// The server's answer to an accepted append: 200 with continuation token `ct1`.
pub(crate) fn append_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({"next_continuation_token": "ct1"}))
}

/// A mock answering `verb` requests to exactly `p` with `response`: chain what else it
/// needs (`.up_to_n_times(n)`, `.with_priority(1)`, `.expect(n)`), then `.mount(&account.server)`.
pub(crate) fn answering(verb: &str, p: &str, response: impl Respond + 'static) -> Mock {
    Mock::given(method(verb))
        .and(path(p))
        .respond_with(response)
}

/// [`append_request`] of `compression` to [`simple`]'s channel, with no session and a fresh
/// wire state: the next continuation token.
pub(crate) async fn append_simple(api: &RestApi, compression: Compression) -> Result<String> {
    api.append_rows(
        &simple(),
        &append_request(compression),
        None,
        &ChannelWire::default(),
    )
    .await
    .map(|ack| ack.next_continuation_token)
}

/// The account host naming `host` as the ingest host (`GET /v2/streaming/hostname`).
pub(crate) fn hostname_answer(host: &str) -> Mock {
    answering(
        "GET",
        "/v2/streaming/hostname",
        ResponseTemplate::new(200).set_body_string(host),
    )
}

/// A token exchange answered with [`token_response`].
pub(crate) fn token_answer() -> Mock {
    answering("POST", "/oauth/token", token_response())
}

/// The exchange's answer: scoped token number 1, valid for an hour.
pub(crate) fn token_response() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string(scoped_token(Duration::from_secs(3600), 1))
}

/// Answers `verb` requests to exactly `p` with `first` once, then with `then` every time.
pub(crate) async fn answer_first_then(
    account: &MockAccount,
    verb: &str,
    p: &str,
    first: impl Respond + 'static,
    then: impl Respond + 'static,
) {
    answer_once(&account.server, 1, verb, p, first).await;
    answer(account, verb, p, then).await;
}

/// Answers `verb` requests to exactly `p` on `server` with `response` once, ahead of the mocks
/// of a larger `priority`.
pub(crate) async fn answer_once(
    server: &wiremock::MockServer,
    priority: u8,
    verb: &str,
    p: &str,
    response: impl Respond + 'static,
) {
    answering(verb, p, response)
        .up_to_n_times(1)
        .with_priority(priority)
        .mount(server)
        .await;
}

/// Mounts `response` for `verb` requests to exactly `p` on the account (every time).
pub(crate) async fn answer(
    account: &MockAccount,
    verb: &str,
    p: &str,
    response: impl Respond + 'static,
) {
    answering(verb, p, response).mount(&account.server).await;
}

/// A mock account answering `verb` requests to exactly `p` with `response` (every time), and
/// its REST layer, connected.
pub(crate) async fn rest_answering(
    verb: &str,
    p: &str,
    response: impl Respond + 'static,
) -> (MockAccount, RestApi) {
    let account = MockAccount::start().await;
    answer(&account, verb, p, response).await;
    let api = account.rest().await;
    (account, api)
}

/// A mock account answering `verb` requests to exactly `p` with `first` once, then with `then`
/// every time, and its REST layer, connected.
pub(crate) async fn rest_answering_first_then(
    verb: &str,
    p: &str,
    first: impl Respond + 'static,
    then: impl Respond + 'static,
) -> (MockAccount, RestApi) {
    let account = MockAccount::start().await;
    answer_first_then(&account, verb, p, first, then).await;
    let api = account.rest().await;
    (account, api)
}

/// The form fields of the account's first scoped-token exchange.
pub(crate) async fn exchange_form(account: &MockAccount) -> Vec<(String, String)> {
    let t = &account.requests_to("/oauth/token").await[0];
    url::form_urlencoded::parse(&t.body).into_owned().collect()
}

/// Asserts that hostname discovery and the scoped-token exchange both sent `authorization` with
/// token type `token_type`, and that the exchange asked for `scope` for a subject token of type
/// `subject_token_type`.
pub(crate) async fn assert_exchanged_with(
    account: &MockAccount,
    authorization: &str,
    token_type: &str,
    scope: &str,
    subject_token_type: &str,
) {
    for p in ["/v2/streaming/hostname", "/oauth/token"] {
        let r = &account.requests_to(p).await[0];
        assert_eq!(header(r, "authorization").as_deref(), Some(authorization));
        assert_eq!(
            header(r, "x-snowflake-authorization-token-type").as_deref(),
            Some(token_type)
        );
    }
    let form = exchange_form(account).await;
    assert_eq!(
        form,
        vec![
            (
                "grant_type".into(),
                "urn:ietf:params:oauth:grant-type:token-exchange".into()
            ),
            ("scope".into(), scope.into()),
            ("subject_token_type".into(), subject_token_type.into()),
        ]
    );
}
