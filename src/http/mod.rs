//! The HTTP layer: one reqwest client per [`StreamingIngestClient`](crate::StreamingIngestClient),
//! request building (headers, `requestId`/`retryCount`), the retry loop and error
//! classification (docs/protocol-wire.md §2.6, §5.3).

mod authenticator;
mod errors;
mod host;
pub(crate) mod options;
pub(crate) mod retry;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use tokio::time::Instant;

use crate::api::ErrorBody;

use crate::error::{Error, TransportErrorKind};
use crate::Result;

pub(crate) use authenticator::{AuthHeader, Authenticator};
pub(crate) use errors::{classify, decode_error};
use errors::{describe_error_body, is_dns_failure, server_error, transport_error};
pub use host::is_loopback;
pub(crate) use retry::{Backoff, RetryConfig};

/// Everything outside the RFC 3986 unreserved set `A-Za-z0-9-._~` is percent-encoded.
pub(crate) const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a path segment or query value.
pub(crate) fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

/// Attempts a control-plane call makes while the server answers 401 or 403: a transient
/// refusal (a key just registered, a clock briefly ahead) gets two more chances, a wrong
/// credential still fails within a second or so.
pub(crate) const AUTH_FAILURE_ATTEMPTS: u32 = 3;

/// How many times one call may refresh the token after a 401 before giving up.
const MAX_REFRESHES_PER_CALL: u32 = 2;

/// Attempts made when the host name does not resolve (a wrong account URL, usually): enough
/// to ride out a resolver hiccup without spending the whole retry budget on a typo.
const MAX_DNS_ATTEMPTS: u32 = 2;

/// Longest snippet of a non-JSON error body kept in an error message.
const BODY_SNIPPET: usize = 200;

/// The `User-Agent` of every request, in the shape the official SDKs send
/// (`SnowpipeStreamingSDK/{version} ({platform}) {LANGUAGE}/{language_version}`, docs/protocol.md
/// "Headers"): `SnowpipeStreamingSDK/v<crate version> (<os> <family> <arch>)
/// RUST/<rustc version>[ (app=<application>)]`.
pub(crate) fn user_agent(application: Option<&str>) -> String {
    let mut ua = format!(
        "SnowpipeStreamingSDK/v{} ({} {} {}) RUST/{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::FAMILY,
        std::env::consts::ARCH,
        env!("SNOWPIPE_RUSTC_VERSION"),
    );
    if let Some(app) = application {
        ua.push_str(&format!(" (app={app})"));
    }
    ua
}

/// One logical call (all its attempts). `Debug` omits the body (it may hold credentials,
/// e.g. the OAuth refresh token) and prints only its size and content type.
#[derive(Clone)]
pub(crate) struct Call {
    /// For errors and logs, e.g. `"append rows"`.
    pub(crate) operation: &'static str,
    pub(crate) method: Method,
    /// The full URL with the call's own query, without `requestId`/`retryCount`.
    pub(crate) url: String,
    /// Body and its content type.
    pub(crate) body: Option<(Bytes, &'static str)>,
    /// Extra headers (e.g. `Content-Encoding`).
    pub(crate) headers: HeaderMap,
    /// Whether repeating the request after a timeout or broken connection is safe.
    pub(crate) idempotent: bool,
    /// Snowflake codes that make a 409 retryable for this call.
    pub(crate) retry_409_codes: &'static [&'static str],
    /// Whether a 401 or 403 is retried with backoff (control-plane calls; the official SDK
    /// does since 1.8.1, docs/protocol.md "Retries"), up to [`AUTH_FAILURE_ATTEMPTS`].
    pub(crate) retry_auth_failures: bool,
    /// Error statuses returned as a [`Response`] for the caller to decode (the SQL API's 422
    /// "statement failed" carries the SQL error in its body).
    #[cfg_attr(not(feature = "sql"), allow(dead_code))]
    pub(crate) returned_statuses: &'static [u16],
    /// The largest response body read; a longer one fails the call (never retried: the same
    /// server would send it again) instead of growing memory without bound.
    pub(crate) max_response_bytes: usize,
    /// Every attempt after the first adds `retry=true` (the SQL API's rule for resubmitting a
    /// statement with the same `requestId`: the server runs it at most once).
    pub(crate) mark_retries: bool,
}

/// The default [`Call::max_response_bytes`]: 16 MiB, room for a bulk status answer of tens of
/// thousands of channels; calls with small answers set less.
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;

/// The most a host name or token answer may hold: a scoped token is a few KB.
pub(crate) const SMALL_ANSWER_BYTES: usize = 64 << 10;

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = self
            .body
            .as_ref()
            .map(|(b, content_type)| format!("<{} bytes of {content_type}>", b.len()));
        f.debug_struct("Call")
            .field("operation", &self.operation)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body", &body)
            .field("headers", &self.headers)
            .field("idempotent", &self.idempotent)
            .field("retry_409_codes", &self.retry_409_codes)
            .field("retry_auth_failures", &self.retry_auth_failures)
            .finish()
    }
}

impl Call {
    pub(crate) fn new(operation: &'static str, method: Method, url: String) -> Self {
        Self {
            operation,
            method,
            url,
            body: None,
            headers: HeaderMap::new(),
            idempotent: true,
            retry_409_codes: &[],
            retry_auth_failures: false,
            returned_statuses: &[],
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            mark_retries: false,
        }
    }

    /// See [`Call::mark_retries`].
    #[cfg(feature = "sql")]
    pub(crate) fn mark_retries(mut self) -> Self {
        self.mark_retries = true;
        self
    }

    /// Caps the response body (see [`Call::max_response_bytes`]).
    pub(crate) fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    pub(crate) fn body(mut self, body: impl Into<Bytes>, content_type: &'static str) -> Self {
        self.body = Some((body.into(), content_type));
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    pub(crate) fn not_idempotent(mut self) -> Self {
        self.idempotent = false;
        self
    }

    /// Returns these error statuses as a [`Response`] instead of an error.
    #[cfg(feature = "sql")]
    pub(crate) fn returning(mut self, statuses: &'static [u16]) -> Self {
        self.returned_statuses = statuses;
        self
    }

    pub(crate) fn retry_409(mut self, codes: &'static [&'static str]) -> Self {
        self.retry_409_codes = codes;
        self
    }

    /// Retries a 401 or 403 with backoff (control-plane calls).
    pub(crate) fn retry_auth_failures(mut self) -> Self {
        self.retry_auth_failures = true;
        self
    }
}

/// A successful (2xx) response, fully read.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// The call's `requestId`.
    pub(crate) request_id: String,
    /// The `retryCount` of the attempt that succeeded.
    pub(crate) retry_count: u32,
}

impl Response {
    /// Decodes a JSON body.
    ///
    /// # Errors
    /// [`Error::Transport`] of kind `Decode` when the body is not the expected JSON.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
    ) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            decode_error(
                operation,
                format!(
                    "the HTTP {} response is not the expected JSON",
                    self.status.as_u16()
                ),
                Some(&self.request_id),
                Some(Box::new(e)),
            )
        })
    }

    /// The body as trimmed text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }
}

/// The HTTP client: reqwest plus the user agent and retry policy. Cheap to clone.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
    user_agent: HeaderValue,
    retry: RetryConfig,
}

impl std::fmt::Debug for HttpClient {
    /// Omits the reqwest client, whose proxy settings may hold credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// What one attempt produced.
enum Attempt {
    Response {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    Failed {
        kind: TransportErrorKind,
        error: reqwest::Error,
    },
    /// The body passed [`Call::max_response_bytes`].
    TooLarge { status: StatusCode },
}

impl HttpClient {
    pub(crate) fn new(
        client: reqwest::Client,
        user_agent: &str,
        retry: RetryConfig,
    ) -> Result<Self> {
        let user_agent = HeaderValue::from_str(user_agent).map_err(|_| {
            Error::config("application", "the user agent contains invalid characters")
        })?;
        Ok(Self {
            client,
            user_agent,
            retry,
        })
    }

    /// Runs `call` with retries, authenticating every attempt with `auth`.
    ///
    /// # Errors
    /// [`Error::Server`] for a non-retryable status or when retries ran out on a retryable
    /// one; [`Error::Transport`] for network failures (immediately for a timeout or broken
    /// connection of a non-idempotent call); [`Error::Auth`] when 401s persist.
    pub(crate) async fn execute(&self, call: &Call, auth: &dyn Authenticator) -> Result<Response> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let mut backoff = Backoff::new(&self.retry);
        let mut attempts: u32 = 0;
        let mut refreshes: u32 = 0;
        let mut auth_failures: u32 = 0;
        loop {
            let header = auth.authorization().await?;
            let outcome = self.attempt(call, &header, &request_id, attempts).await;
            attempts += 1;
            let (failure, retry_after): (Error, Option<Duration>) = match outcome {
                Attempt::Response {
                    status,
                    headers,
                    body,
                } if status.is_success() || call.returned_statuses.contains(&status.as_u16()) => {
                    return Ok(Response {
                        status,
                        headers,
                        retry_count: attempts - 1,
                        body,
                        request_id,
                    });
                }
                Attempt::Response {
                    status: StatusCode::UNAUTHORIZED,
                    body,
                    ..
                } => {
                    if refreshes < MAX_REFRESHES_PER_CALL
                        && attempts < self.retry.max_attempts
                        && auth.unauthorized(&header).await?
                    {
                        refreshes += 1;
                        tracing::info!(
                            operation = call.operation,
                            attempt = attempts,
                            "HTTP 401: retrying with a refreshed token"
                        );
                        continue;
                    }
                    let detail = ErrorBody::parse(&body)
                        .map(|b| describe_error_body(&b))
                        .unwrap_or_default();
                    let err = Error::auth(format!(
                        "{} failed with HTTP 401{detail}: {} [request id {request_id}]",
                        call.operation,
                        auth.rejection_hint()
                    ));
                    auth_failures += 1;
                    if !call.retry_auth_failures || auth_failures >= AUTH_FAILURE_ATTEMPTS {
                        return Err(err);
                    }
                    (err, None)
                }
                Attempt::Response {
                    status,
                    headers,
                    body,
                } => {
                    let parsed = ErrorBody::parse(&body);
                    let code = parsed.as_ref().and_then(|b| b.code.as_deref());
                    let retryable = code == Some(errors::SWITCH_TO_FILE_MODE)
                        || match status.as_u16() {
                            // 408: the server gave up waiting for the request, so it did not
                            // apply it (docs/protocol.md "Retries").
                            408 | 429 | 500 | 502 | 503 | 504 => true,
                            403 if call.retry_auth_failures => {
                                auth_failures += 1;
                                auth_failures < AUTH_FAILURE_ATTEMPTS
                            }
                            404 => parsed.is_none(),
                            409 => code.is_some_and(|c| call.retry_409_codes.contains(&c)),
                            _ => false,
                        };
                    let err =
                        server_error(call.operation, status, parsed, &body, &request_id, attempts);
                    if !retryable {
                        return Err(err);
                    }
                    let retry_after = headers
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
                    (err, retry_after)
                }
                Attempt::TooLarge { status } => {
                    return Err(errors::decode_error(
                        call.operation,
                        format!(
                            "the answer (HTTP {status}) is larger than {} bytes, the most this \
                             call reads: the server is not Snowflake or is misbehaving [request \
                             id {request_id}]",
                            call.max_response_bytes
                        ),
                        Some(&request_id),
                        None,
                    ));
                }
                Attempt::Failed { kind, error } => {
                    let dns = is_dns_failure(&error);
                    let retryable = match kind {
                        TransportErrorKind::Connect => !dns || attempts < MAX_DNS_ATTEMPTS,
                        TransportErrorKind::Timeout | TransportErrorKind::Interrupted => {
                            call.idempotent
                        }
                        _ => false,
                    };
                    let err = transport_error(call, kind, error, &request_id, attempts);
                    if !retryable {
                        return Err(err);
                    }
                    (err, None)
                }
            };
            if attempts >= self.retry.max_attempts {
                return Err(failure);
            }
            let remaining = self.retry.total_budget.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                return Err(failure);
            }
            let delay = retry_after
                .unwrap_or_else(|| backoff.next_delay())
                .min(remaining);
            tracing::info!(
                operation = call.operation,
                attempt = attempts,
                error = %failure,
                sleep_ms = delay.as_millis() as u64,
                "retrying after backoff"
            );
            metrics::counter!("snowpipe_streaming_http_retries_total", "operation" => call.operation)
                .increment(1);
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        call: &Call,
        auth: &AuthHeader,
        request_id: &str,
        retry_count: u32,
    ) -> Attempt {
        let sep = if call.url.contains('?') { '&' } else { '?' };
        let retry = if call.mark_retries && retry_count > 0 {
            "&retry=true"
        } else {
            ""
        };
        let url = format!(
            "{}{sep}requestId={request_id}&retryCount={retry_count}{retry}",
            call.url
        );
        let mut authorization =
            HeaderValue::from_str(&format!("{} {}", auth.scheme, auth.token.expose()))
                .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
        authorization.set_sensitive(true);
        let mut req = self
            .client
            .request(call.method.clone(), url)
            .header(http::header::AUTHORIZATION, authorization);
        if let Some(token_type) = auth.token_type {
            req = req.header(
                "X-Snowflake-Authorization-Token-Type",
                HeaderValue::from_static(token_type),
            );
        }
        let mut req = req
            .header(
                http::header::ACCEPT,
                HeaderValue::from_static("application/json"),
            )
            .header(http::header::USER_AGENT, self.user_agent.clone())
            .headers(call.headers.clone());
        if let Some((body, content_type)) = &call.body {
            req = req
                .header(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type),
                )
                .body(body.clone());
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                match read_body(resp, call.max_response_bytes).await {
                    Ok(Some(body)) => Attempt::Response {
                        status,
                        headers,
                        body,
                    },
                    Ok(None) => Attempt::TooLarge { status },
                    Err(error) => Attempt::Failed {
                        kind: if error.is_timeout() {
                            TransportErrorKind::Timeout
                        } else {
                            TransportErrorKind::Interrupted
                        },
                        error,
                    },
                }
            }
            Err(error) => Attempt::Failed {
                kind: classify(&error),
                error,
            },
        }
    }
}

/// Reads at most `limit` bytes of body: `None` when there is more (a declared length over the
/// limit is refused before reading). Memory is bounded by `limit`, whatever the server sends.
async fn read_body(
    mut resp: reqwest::Response,
    limit: usize,
) -> std::result::Result<Option<Bytes>, reqwest::Error> {
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Ok(None);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

#[cfg(test)]
mod retry_loop_tests;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_the_official_sdk() {
        assert_eq!(encode("my db"), "my%20db");
        assert_eq!(encode("a/b"), "a%2Fb");
        assert_eq!(encode("Ü"), "%C3%9C");
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(encode("100%"), "100%25");
        assert_eq!(encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(encode("T-STREAMING"), "T-STREAMING");
    }

    #[test]
    fn call_debug_omits_the_body() {
        let call = Call::new(
            "OAuth token request",
            Method::POST,
            "https://idp.example/token".into(),
        )
        .body(
            "grant_type=refresh_token&refresh_token=s3cr3t-refresh",
            "application/x-www-form-urlencoded",
        );
        let dbg = format!("{call:?}");
        assert!(!dbg.contains("s3cr3t-refresh"), "{dbg}");
        assert!(
            dbg.contains("<53 bytes of application/x-www-form-urlencoded>"),
            "{dbg}"
        );
    }

    #[test]
    fn user_agent_shape() {
        // The official Python SDK sends
        // `SnowpipeStreamingSDK/v1.9.1 (linux unix x86_64) PYTHON/3.11.7`.
        let ua = user_agent(None);
        let (product, rest) = ua.split_once(' ').unwrap();
        assert_eq!(
            product,
            format!("SnowpipeStreamingSDK/v{}", env!("CARGO_PKG_VERSION"))
        );
        let platform = format!(
            "({} {} {}) ",
            std::env::consts::OS,
            std::env::consts::FAMILY,
            std::env::consts::ARCH
        );
        let language = rest.strip_prefix(&platform).unwrap();
        let version = language.strip_prefix("RUST/").unwrap();
        assert!(
            version.split('.').take(2).all(|n| n.parse::<u32>().is_ok()),
            "{ua}"
        );
        assert_eq!(user_agent(Some("myapp")), format!("{ua} (app=myapp)"));
    }
}
