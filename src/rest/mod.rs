//! [`RestApi`]: the [`IngestApi`] over HTTP, plus hostname discovery and the token exchange
//! (docs/protocol-wire.md §3, §4).
//!
//! ```text
//!  build()                         account host                      ingest host
//!    │ GET  /v2/streaming/hostname ───────►  (key-pair JWT or PAT)
//!    │ POST /oauth/token           ───────►  → scoped token (cached in TokenManager)
//!    ▼
//!  RestApi ── PUT/DELETE …/channels/{c}, POST …/rows, POST …:bulk-channel-status ──► (OAUTH)
//! ```
//!
//! Appends are not idempotent on the server: a retried append after a lost response may be
//! applied twice. So [`RestApi::append_rows`] retries only what cannot have reached the
//! server (connect failures) or what the server rejected without applying (429, 5xx, 401);
//! a timeout or a connection broken after sending is returned as
//! [`Error::Transport`] (kind `Timeout`/`Interrupted`) and the
//! channel reopens and replays after the committed offset token.
//!
//! A 5xx after the server applied an append (for example a proxy timing out on a slow
//! upstream) is indistinguishable from one before, so a retried 5xx can still duplicate rows;
//! the retry carries the same `requestId` and `retryCount > 0`, which is how Snowflake
//! documents that a duplicate is possible.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderValue, Method};

use crate::api::{
    AppendRowsResponse, BulkChannelStatusRequest, BulkChannelStatusResponse, ChannelStatusWire,
    DropChannelResponse, OpenChannelRequest, OpenChannelResponse, PipeInfoRequest,
    PipeInfoResponse,
};
use crate::auth::token::TokenFetcher;
use crate::auth::{Authenticator, ControlAuth, TokenManager};
use crate::error::Error;
use crate::http::{decode_error, encode, Call, HttpClient, SMALL_ANSWER_BYTES};
use crate::transport::{
    AppendAck, AppendRequest, ChannelPath, ChannelWire, ElasticAck, ElasticTarget, IngestApi,
    PipePath,
};
use crate::{Compression, Result};

/// At most this many channel names go in one bulk-status request.
pub(crate) const BULK_STATUS_CHUNK: usize = 100;

/// 409 codes on open channel that are retried with backoff.
const OPEN_RETRY_409: &[&str] = &[
    "ERR_OPEN_CHANNEL_IN_PROGRESS",
    "ERR_CHANNEL_HAS_UNCOMMITTED_DATA",
];

/// What [`RestApi::connect`] needs.
#[derive(Debug)]
pub(crate) struct ConnectOptions {
    pub(crate) http: HttpClient,
    /// `scheme://host[:port]` of the account (control plane), no trailing slash.
    pub(crate) account_url: url::Url,
    pub(crate) control: ControlAuth,
    pub(crate) role: Option<String>,
    pub(crate) replace_underscore_with_dash_in_host: bool,
    /// `http://` to a host that is not loopback is allowed (see the builder).
    pub(crate) danger_accept_cleartext_http: bool,
    pub(crate) auth_refresh_ahead: Duration,
    pub(crate) default_token_ttl: Duration,
    /// Least time between the starts of two appends of one channel (0: no pacing).
    pub(crate) min_append_interval: Duration,
    /// Uncompressed bytes per second per channel (0: unpaced).
    pub(crate) append_bytes_per_second: u64,
}

/// The sticky-session header: set by Snowflake on insert responses, echoed by Openflow on
/// the channel's next inserts (docs/protocol.md "Sticky sessions").
const SESSION_HEADER: &str = "x-snowflake-session";

/// The REST layer.
#[derive(Debug)]
pub(crate) struct RestApi {
    http: HttpClient,
    /// `scheme://ingest-host[:port]`, no trailing slash.
    ingest_base: String,
    tokens: Arc<TokenManager>,
    /// Least time between the starts of two appends of one channel: Snowflake allows 10
    /// requests/s per channel (docs/protocol.md "Limits"). Each channel's clock is its own
    /// ([`ChannelWire`], owned by its actor); its sticky session is the actor's too, passed
    /// in and returned with the ack ([`AppendAck`]).
    min_append_interval: Duration,
    append_bytes_per_second: u64,
}

/// Exchanges control-plane credentials for a scoped token (`POST {account}/oauth/token`).
#[derive(Debug)]
struct TokenExchanger {
    http: HttpClient,
    url: String,
    control: ControlAuth,
    form: String,
}

#[async_trait]
impl TokenFetcher for TokenExchanger {
    async fn fetch(&self) -> Result<String> {
        let call = Call::new("token exchange", Method::POST, self.url.clone())
            .body(self.form.clone(), "application/x-www-form-urlencoded")
            .retry_auth_failures()
            .max_response_bytes(SMALL_ANSWER_BYTES);
        let resp = self
            .http
            .execute(&call, &self.control)
            .await
            .map_err(exchange_error)?;
        let text = resp.text();
        let token = if text.starts_with('{') {
            // Not what Snowflake sends (bare text), but harmless to accept.
            let v: serde_json::Value = resp.json("token exchange")?;
            v.get("token")
                .or_else(|| v.get("access_token"))
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_owned()
        } else {
            text
        };
        if token.is_empty() || token.chars().any(char::is_whitespace) {
            return Err(decode_error(
                "token exchange",
                "the token exchange returned an empty or malformed token".into(),
                Some(&resp.request_id),
                None,
            ));
        }
        Ok(token)
    }
}

/// Classifies a failed token exchange. The server refusing the grant (400 or 403: a bad
/// scope, role or credential) is [`Error::Auth`]; a 401 already is. Everything else keeps
/// its class, so a transient failure (5xx, 429, connect, timeout) stays a retryable
/// [`Error::Server`] / [`Error::Transport`] — also when it surfaces from a data-plane call
/// that triggered the refresh after a 401.
fn exchange_error(e: Error) -> Error {
    match e {
        Error::Server(s) if matches!(s.status, 400 | 403) => Error::Auth {
            message: format!(
                "the scoped-token exchange was refused (HTTP {}{}): check the role and its \
                 privileges, the user and the account url",
                s.status,
                s.code
                    .as_deref()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default()
            ),
            source: Some(Box::new(*s)),
        },
        other => other,
    }
}

impl RestApi {
    /// Discovers the ingest host and obtains the first scoped token.
    ///
    /// # Errors
    /// [`Error::Auth`] when the credentials are rejected, [`Error::Server`] /
    /// [`Error::Transport`] when the account host cannot be reached or answers an error.
    pub(crate) async fn connect(opts: ConnectOptions) -> Result<Self> {
        let account = opts.account_url.as_str().trim_end_matches('/').to_owned();
        let host = discover_host(&opts.http, &account, &opts.control).await?;
        let host = if opts.replace_underscore_with_dash_in_host {
            host.replace('_', "-")
        } else {
            host
        };
        let mut ingest = opts.account_url.clone();
        ingest.set_host(Some(&host)).map_err(|e| {
            decode_error(
                "hostname discovery",
                format!("the account host returned an invalid ingest hostname {host:?}"),
                None,
                Some(Box::new(e)),
            )
        })?;
        if ingest.scheme() == "http"
            && !opts.danger_accept_cleartext_http
            && !crate::http::is_loopback(&ingest)
        {
            return Err(decode_error(
                "hostname discovery",
                format!(
                    "the account host (http://, loopback) named the ingest host {host:?}, which \
                     is not loopback: the client will not send credentials and rows there \
                     without TLS (danger_accept_cleartext_http allows it)"
                ),
                None,
                None,
            ));
        }
        let ingest_base = ingest.as_str().trim_end_matches('/').to_owned();
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(opts.control.exchange_form(&host, opts.role.as_deref()))
            .finish();
        let exchanger = TokenExchanger {
            http: opts.http.clone(),
            url: format!("{account}/oauth/token"),
            control: opts.control,
            form,
        };
        let tokens = TokenManager::new(
            Arc::new(exchanger),
            opts.auth_refresh_ahead,
            opts.default_token_ttl,
        );
        tokens.token().await?;
        tracing::info!(ingest_host = %host, "connected to Snowpipe Streaming");
        Ok(Self {
            http: opts.http,
            ingest_base,
            tokens,
            min_append_interval: opts.min_append_interval,
            append_bytes_per_second: opts.append_bytes_per_second,
        })
    }

    /// The ingest (data-plane) base URL.
    #[cfg(test)]
    pub(crate) fn ingest_base(&self) -> &str {
        &self.ingest_base
    }

    /// The token manager.
    #[cfg(test)]
    pub(crate) fn tokens(&self) -> &Arc<TokenManager> {
        &self.tokens
    }

    fn auth(&self) -> &dyn Authenticator {
        self.tokens.as_ref()
    }

    /// Waits until the channel whose clock is `next_append` may start another append of
    /// `bytes` uncompressed bytes: the per-channel request rate and byte rate (see
    /// [`append_gap`] and [`take_slot`]).
    async fn pace(
        &self,
        next_append: &std::sync::Mutex<Option<tokio::time::Instant>>,
        bytes: usize,
    ) {
        let gap = append_gap(
            self.min_append_interval,
            self.append_bytes_per_second,
            bytes,
        );
        if gap.is_zero() {
            return;
        }
        let start = take_slot(
            &mut crate::sync::lock(next_append),
            tokio::time::Instant::now(),
            gap,
        );
        tokio::time::sleep_until(start).await;
    }

    fn pipe_url(&self, pipe: &PipePath) -> Result<String> {
        Ok(format!(
            "{}/v2/streaming/databases/{}/schemas/{}/pipes/{}",
            self.ingest_base,
            segment("database", &pipe.database)?,
            segment("schema", &pipe.schema)?,
            segment("pipe", &pipe.pipe)?,
        ))
    }

    fn channel_url(&self, channel: &ChannelPath) -> Result<String> {
        Ok(format!(
            "{}/channels/{}",
            self.pipe_url(&channel.pipe)?,
            segment("channel", &channel.channel)?
        ))
    }

    fn rows_url(&self, channel: &ChannelPath, req: &AppendRequest) -> Result<String> {
        let p = &channel.pipe;
        let token = |t: &Option<crate::OffsetToken>| {
            t.as_ref().map(|t| encode(t.as_ref())).unwrap_or_default()
        };
        Ok(format!(
            "{}/v2/streaming/data/databases/{}/schemas/{}/pipes/{}/channels/{}/rows\
             ?startOffsetToken={}&endOffsetToken={}&continuationToken={}",
            self.ingest_base,
            segment("database", &p.database)?,
            segment("schema", &p.schema)?,
            segment("pipe", &p.pipe)?,
            segment("channel", &channel.channel)?,
            token(&req.start_offset_token),
            token(&req.end_offset_token),
            encode(&req.continuation_token),
        ))
    }
}

/// A `POST …/rows` call carrying `request`'s body with its headers (the earliest append's
/// timestamp; for a compressed body its `Content-Encoding` and uncompressed length): the same
/// for named and elastic appends.
fn rows_call(operation: &'static str, url: String, request: &AppendRequest) -> Call {
    let call = Call::new(operation, Method::POST, url)
        .body(request.body.clone(), "application/x-ndjson")
        .header(
            "x-snowflake-min-append-timestamp-ms",
            HeaderValue::from(request.min_append_timestamp_ms),
        );
    let encoding = match request.compression {
        Compression::Zstd => "zstd",
        Compression::Gzip => "gzip",
        Compression::None => return call,
    };
    call.header("content-encoding", HeaderValue::from_static(encoding))
        .header(
            "x-snowflake-uncompressed-content-length",
            HeaderValue::from(request.uncompressed_len),
        )
}

/// Percent-encodes one path segment after checking it is usable.
fn segment(what: &'static str, name: &str) -> Result<String> {
    if name.is_empty() {
        return Err(Error::invalid_argument(
            what,
            format!("the {what} name is empty"),
        ));
    }
    if name == "." || name == ".." {
        return Err(Error::invalid_argument(
            what,
            format!("{name:?} cannot be used as a {what} name in a URL"),
        ));
    }
    Ok(encode(name))
}

/// Whether `host` can be a host name (letters, digits, `-`, `.`, `_`; at most 253 bytes) or
/// an IP address literal.
fn is_host_name(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    (1..=253).contains(&host.len())
        && host.split('.').all(|label| (1..=63).contains(&label.len()))
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// `GET {account}/v2/streaming/hostname`: the bare ingest host name.
async fn discover_host(http: &HttpClient, account: &str, control: &ControlAuth) -> Result<String> {
    let call = Call::new(
        "hostname discovery",
        Method::GET,
        format!("{account}/v2/streaming/hostname"),
    )
    .retry_auth_failures()
    .max_response_bytes(SMALL_ANSWER_BYTES);
    let resp = http.execute(&call, control).await?;
    let text = resp.text();
    let host = if text.starts_with('{') {
        // The docs show JSON; every working client sees bare text. Accept both.
        let v: serde_json::Value = resp.json("hostname discovery")?;
        v.get("hostname")
            .and_then(|h| h.as_str())
            .unwrap_or_default()
            .to_owned()
    } else {
        text.trim_matches('"').to_owned()
    };
    let host = host.trim().to_owned();
    if !is_host_name(&host) {
        let shown: String = host.chars().take(80).collect();
        let more = if shown.len() < host.len() {
            format!(" … ({} bytes)", host.len())
        } else {
            String::new()
        };
        return Err(decode_error(
            "hostname discovery",
            format!("the account host returned an unusable ingest hostname {shown:?}{more}"),
            Some(&resp.request_id),
            None,
        ));
    }
    Ok(host)
}

#[async_trait]
impl IngestApi for RestApi {
    async fn open_channel(
        &self,
        channel: &ChannelPath,
        request: &OpenChannelRequest,
    ) -> Result<OpenChannelResponse> {
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::invalid_argument("open channel request", e.to_string()))?;
        let call = Call::new("open channel", Method::PUT, self.channel_url(channel)?)
            .body(body, "application/json")
            .retry_409(OPEN_RETRY_409);
        self.http
            .execute(&call, self.auth())
            .await?
            .json("open channel")
    }

    async fn append_rows(
        &self,
        channel: &ChannelPath,
        request: &AppendRequest,
        session: Option<&HeaderValue>,
        wire: &ChannelWire,
    ) -> Result<AppendAck> {
        let mut call =
            rows_call("append rows", self.rows_url(channel, request)?, request).not_idempotent();
        if let Some(session) = session {
            call = call.header(SESSION_HEADER, session.clone());
        }
        tracing::debug!(
            channel = %channel,
            rows = request.row_count,
            bytes = request.body.len(),
            "append rows"
        );
        self.pace(&wire.next_append, request.uncompressed_len).await;
        let resp = self.http.execute(&call, self.auth()).await?;
        let session = resp
            .headers
            .get(SESSION_HEADER)
            .filter(|v| !v.is_empty())
            .cloned();
        let resp: AppendRowsResponse = resp.json("append rows")?;
        Ok(AppendAck {
            next_continuation_token: resp.next_continuation_token,
            session,
        })
    }

    async fn bulk_channel_status(
        &self,
        pipe: &PipePath,
        channel_names: &[String],
    ) -> Result<HashMap<String, ChannelStatusWire>> {
        let mut out = HashMap::with_capacity(channel_names.len());
        if channel_names.is_empty() {
            return Ok(out);
        }
        let url = format!("{}:bulk-channel-status", self.pipe_url(pipe)?);
        for chunk in channel_names.chunks(BULK_STATUS_CHUNK) {
            let body = serde_json::to_vec(&BulkChannelStatusRequest {
                channel_names: chunk,
            })
            .map_err(|e| Error::invalid_argument("channel_names", e.to_string()))?;
            let call = Call::new("bulk channel status", Method::POST, url.clone())
                .body(body, "application/json");
            let resp: BulkChannelStatusResponse = self
                .http
                .execute(&call, self.auth())
                .await?
                .json("bulk channel status")?;
            out.extend(resp.channel_statuses);
        }
        Ok(out)
    }

    async fn pipe_info(&self, pipe: &PipePath) -> Result<PipeInfoResponse> {
        let url = format!("{}:pipe-info", self.pipe_url(pipe)?);
        let body = serde_json::to_vec(&PipeInfoRequest::default())
            .map_err(|e| Error::invalid_argument("pipe-info request", e.to_string()))?;
        let call = Call::new("pipe info", Method::POST, url).body(body, "application/json");
        self.http
            .execute(&call, self.auth())
            .await?
            .json("pipe info")
    }

    async fn append_elastic(
        &self,
        target: &ElasticTarget,
        request: &AppendRequest,
    ) -> Result<ElasticAck> {
        let url = match target {
            ElasticTarget::Table {
                database,
                schema,
                table,
            } => format!(
                "{}/v2/streaming/data/databases/{}/schemas/{}/tables/{}/rows",
                self.ingest_base,
                segment("database", database)?,
                segment("schema", schema)?,
                segment("table", table)?,
            ),
            ElasticTarget::Pipe(p) => format!(
                "{}/v2/streaming/data/databases/{}/schemas/{}/pipes/{}/channels/ELASTIC/rows",
                self.ingest_base,
                segment("database", &p.database)?,
                segment("schema", &p.schema)?,
                segment("pipe", &p.pipe)?,
            ),
        };
        // Idempotent from the client's side: a timeout is retried in place with the same
        // requestId (at-least-once; the duplicate is reported through retryCount).
        let call = rows_call("append rows (elastic)", url, request);
        // The docs answer {"message":"OK"}, the official SDK wants a continuation token:
        // any 2xx body is accepted (docs/protocol-types-and-sql.md "Elastic channels").
        let resp = self.http.execute(&call, self.auth()).await?;
        Ok(ElasticAck {
            request_id: resp.request_id,
            retry_count: resp.retry_count,
        })
    }

    async fn drop_channel(&self, channel: &ChannelPath) -> Result<Option<String>> {
        let call = Call::new("drop channel", Method::DELETE, self.channel_url(channel)?);
        let resp = self.http.execute(&call, self.auth()).await?;
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let parsed: DropChannelResponse = resp.json("drop channel")?;
        Ok(parsed.last_committed_offset_token)
    }
}

/// The least time after an append of `bytes` uncompressed bytes before the channel's next may
/// start: the request spacing or `bytes / bytes_per_second`, whichever is longer (0 for
/// either: that limit is off).
fn append_gap(min_interval: Duration, bytes_per_second: u64, bytes: usize) -> Duration {
    let for_bytes = if bytes_per_second == 0 {
        Duration::ZERO
    } else {
        let secs = bytes as f64 / bytes_per_second as f64;
        // At most an hour (a 1 byte/s setting must not overflow the clock).
        Duration::try_from_secs_f64(secs)
            .unwrap_or(Duration::MAX)
            .min(Duration::from_secs(3600))
    };
    min_interval.max(for_bytes)
}

/// When an append asked for at `now` starts, given its channel's clock `slot` (the earliest
/// start of its next append; `None` before its first): at its slot, or at once when that has
/// passed. Moves the clock `gap` past the start.
fn take_slot(
    slot: &mut Option<tokio::time::Instant>,
    now: tokio::time::Instant,
    gap: Duration,
) -> tokio::time::Instant {
    let start = slot.map_or(now, |s| s.max(now));
    *slot = Some(start + gap);
    start
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod protocol_tests;
