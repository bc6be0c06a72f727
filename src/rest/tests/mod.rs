//! Tests of the REST layer against a wiremock account: connecting (discovery, token
//! exchange), request shapes, logging. The retry loop's tests are in `http/`, token refresh
//! and OAuth in `auth/`; all share the helpers here.

pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
pub(crate) use std::time::{Duration, Instant};

pub(crate) use bytes::Bytes;
pub(crate) use wiremock::matchers::{method, path, path_regex};
pub(crate) use wiremock::{Mock, Request, Respond, ResponseTemplate};

#[allow(unused_imports)]
pub(crate) use super::*;
pub(crate) use crate::api::OpenChannelRequest;
pub(crate) use crate::error::TransportErrorKind;
pub(crate) use crate::test_support::*;
pub(crate) use crate::OffsetToken;
// What the topic files (here, in `http/` and in `auth/`) all use.
#[allow(unused_imports)]
pub(crate) use crate::rest::RestApi;
#[allow(unused_imports)]
pub(crate) use crate::transport::*;
#[allow(unused_imports)]
pub(crate) use crate::{Error, Result};

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
        end_offset_token: Some(OffsetToken::from("a b&c=d/é")),
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

/// Mounts `response` for `verb` requests to exactly `p` on the account.
pub(crate) async fn answer(
    account: &MockAccount,
    verb: &str,
    p: &str,
    response: impl Respond + 'static,
) {
    answer_limited(account, verb, p, response, None, None).await;
}

/// [`answer`], at most `times` times (all when `None`), at wiremock `priority` (1 wins; the
/// default is 5).
pub(crate) async fn answer_limited(
    account: &MockAccount,
    verb: &str,
    p: &str,
    response: impl Respond + 'static,
    times: Option<u64>,
    priority: Option<u8>,
) {
    let mut mock = Mock::given(method(verb))
        .and(path(p))
        .respond_with(response);
    if let Some(n) = times {
        mock = mock.up_to_n_times(n);
    }
    if let Some(p) = priority {
        mock = mock.with_priority(p);
    }
    mock.mount(&account.server).await;
}

/// The form fields of the account's first scoped-token exchange.
pub(crate) async fn exchange_form(account: &MockAccount) -> Vec<(String, String)> {
    let t = &account.requests_to("/oauth/token").await[0];
    url::form_urlencoded::parse(&t.body).into_owned().collect()
}

mod connect;
mod hostile;
mod logging;
mod requests;
