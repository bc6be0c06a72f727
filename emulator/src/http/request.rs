//! Reading a request: its route (with percent-decoding of path segments and query values),
//! query parameters, credentials headers and body.

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, Method};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;

use crate::base::api_error::ApiError;
use crate::base::faults::Endpoint;
use crate::base::pending_budget::Reservation;
use crate::base::requests::RequestRecord;
use crate::channels::ELASTIC;
use crate::service::Shared;

/// The sticky-session header Snowflake sets on insert responses and Openflow echoes on the
/// channel's next inserts (docs/protocol.md "Sticky sessions").
pub(super) const SESSION_HEADER: &str = "x-snowflake-session";

/// A channel as a request path names it (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChannelPath {
    pub db: String,
    pub schema: String,
    pub pipe: String,
    pub channel: String,
}

/// A routed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    Status,
    Hostname,
    Token,
    Telemetry,
    PipeInfo {
        db: String,
        schema: String,
        pipe: String,
    },
    BulkStatus {
        db: String,
        schema: String,
        pipe: String,
    },
    Open(ChannelPath),
    Drop(ChannelPath),
    Append(ChannelPath),
    TableAppend {
        db: String,
        schema: String,
        table: String,
    },
    /// `POST …/channels/{channel}/filebuffer` (named or `ELASTIC`).
    FileBuffer(ChannelPath),
    /// `PUT /snowpipe-emulator/<key>`: an upload to the stage; the object's key.
    StagePut(String),
    /// `POST /api/v2/statements` (the SQL API).
    Statements,
    /// `GET /api/v2/statements/{handle}`.
    StatementStatus,
    NotFound,
}

impl ChannelPath {
    fn decoded(db: &str, schema: &str, pipe: &str, channel: &str) -> Self {
        Self {
            db: dec(db),
            schema: dec(schema),
            pipe: dec(pipe),
            channel: dec(channel),
        }
    }
}

impl Route {
    /// The channel an open, drop or append names.
    pub(super) fn channel_path(&self) -> Option<&ChannelPath> {
        match self {
            Route::Open(p) | Route::Drop(p) | Route::Append(p) | Route::FileBuffer(p) => Some(p),
            _ => None,
        }
    }

    pub(super) fn endpoint(&self) -> Endpoint {
        match self {
            Route::Hostname => Endpoint::Hostname,
            Route::Token => Endpoint::Token,
            Route::Telemetry => Endpoint::Telemetry,
            Route::PipeInfo { .. } => Endpoint::PipeInfo,
            Route::BulkStatus { .. } => Endpoint::BulkStatus,
            Route::Open(_) => Endpoint::OpenChannel,
            Route::Drop(_) => Endpoint::DropChannel,
            Route::Append(_) | Route::TableAppend { .. } => Endpoint::AppendRows,
            Route::FileBuffer(_) => Endpoint::FileBuffer,
            Route::StagePut(_) => Endpoint::StageUpload,
            Route::Status | Route::NotFound | Route::Statements | Route::StatementStatus => {
                Endpoint::Other
            }
        }
    }

    pub(super) fn channel(&self) -> Option<&str> {
        match self {
            Route::TableAppend { .. } => Some(ELASTIC),
            _ => self.channel_path().map(|p| p.channel.as_str()),
        }
    }
}

pub(super) fn dec(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

pub(super) fn route(method: &Method, path: &str) -> Route {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        (&Method::GET, [""]) | (&Method::GET, ["status"]) => Route::Status,
        (&Method::PUT, [bucket, key @ ..])
            if *bucket == crate::stage::BUCKET && !key.is_empty() =>
        {
            let key: Vec<String> = key.iter().map(|k| dec(k)).collect();
            Route::StagePut(format!("{bucket}/{}", key.join("/")))
        }
        (&Method::GET, ["v2", "streaming", "hostname"]) => Route::Hostname,
        (&Method::POST, ["oauth", "token"]) => Route::Token,
        (&Method::POST, ["telemetry", "send", "sessionless"]) => Route::Telemetry,
        (&Method::POST, ["api", "v2", "statements"]) => Route::Statements,
        (&Method::GET, ["api", "v2", "statements", _]) => Route::StatementStatus,
        (m, ["v2", "streaming", "databases", db, "schemas", schema, "pipes", last])
            if m == Method::POST =>
        {
            match last.rsplit_once(':') {
                Some((pipe, "pipe-info")) => Route::PipeInfo {
                    db: dec(db),
                    schema: dec(schema),
                    pipe: dec(pipe),
                },
                Some((pipe, "bulk-channel-status")) => Route::BulkStatus {
                    db: dec(db),
                    schema: dec(schema),
                    pipe: dec(pipe),
                },
                _ => Route::NotFound,
            }
        }
        (
            m,
            ["v2", "streaming", "databases", db, "schemas", schema, "pipes", pipe, "channels", ch],
        ) => {
            let path = ChannelPath::decoded(db, schema, pipe, ch);
            match *m {
                Method::PUT => Route::Open(path),
                Method::DELETE => Route::Drop(path),
                _ => Route::NotFound,
            }
        }
        (
            &Method::POST,
            ["v2", "streaming", "data", "databases", db, "schemas", schema, "pipes", pipe, "channels", ch, "rows"],
        ) => Route::Append(ChannelPath::decoded(db, schema, pipe, ch)),
        (
            &Method::POST,
            ["v2", "streaming", "data", "databases", db, "schemas", schema, "tables", table, "rows"],
        ) => Route::TableAppend {
            db: dec(db),
            schema: dec(schema),
            table: dec(table),
        },
        (
            &Method::POST,
            ["v2", "streaming", "data", "databases", db, "schemas", schema, "pipes", pipe, "channels", ch, "filebuffer"],
        ) => Route::FileBuffer(ChannelPath::decoded(db, schema, pipe, ch)),
        _ => Route::NotFound,
    }
}

/// Percent-decoded query parameters (`+` is kept literally).
pub(super) fn query_params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

pub(super) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

pub(super) fn token_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-snowflake-authorization-token-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Bytes of each request body read without a charge to the memory budget
/// (`--max-pending-bytes`): a token, an open or a status request never waits for room, and
/// these first bytes of all connections together are at most 16 MiB (1,024 connections,
/// `--max-connections`).
pub(super) const FREE_BODY_BYTES: usize = 16 << 10;

/// Grows `charge` to hold a body buffer of `capacity` bytes, its first [`FREE_BODY_BYTES`]
/// free.
///
/// # Errors
/// 413 when the buffer alone is larger than the budget, 429 when others hold the room.
fn charge_for(charge: &mut Reservation, capacity: usize) -> Result<(), ApiError> {
    charge
        .grow_to(capacity.saturating_sub(FREE_BODY_BYTES))
        .map_err(|refusal| crate::service::refused(refusal, charge.budget(), capacity))
}

/// A request body, with its charge to the memory budget (the bytes past
/// [`FREE_BODY_BYTES`]), held as long as the body is.
pub(crate) struct ChargedBody {
    pub bytes: Bytes,
    pub charge: Reservation,
}

impl std::ops::Deref for ChargedBody {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Reads a request body of at most `limit` bytes within the body deadline
/// (`--body-timeout`), charging the memory budget (`--max-pending-bytes`) for each buffer
/// before it is allocated, past the first [`FREE_BODY_BYTES`]. A `Content-Length` over the
/// limit, or one the budget has no room for, is refused before any byte is read; a stated
/// length is charged at once and allocated with the first bytes, a body without one grows by
/// doubling.
///
/// # Errors
/// 413 `ERR_PAYLOAD_TOO_LARGE` over the limit (or on a broken body), 408
/// `ERR_REQUEST_TIMEOUT` past the deadline, 429 `ERR_TOO_MANY_REQUESTS` while other requests
/// and pending rows hold the budget (413 when the body alone is larger than it).
///
/// A `latency` fault's delay elapses once the body is read, and from then on the request
/// outlives a client that hangs up (`in_flight`).
///
/// # Cancellation
/// Dropping the future drops what was read and its charge.
pub(super) async fn read_body(
    shared: &Shared,
    headers: &HeaderMap,
    mut body: Incoming,
    limit: usize,
    record: &mut RequestRecord,
) -> Result<ChargedBody, ApiError> {
    let too_large = |len: String| {
        ApiError::new(
            413,
            "ERR_PAYLOAD_TOO_LARGE",
            format!("the request body has {len} bytes; at most {limit} are accepted here; send smaller batches"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared.filter(|&len| len > limit as u64) {
        return Err(too_large(len.to_string()));
    }
    let declared = declared.map(|d| d as usize);
    let mut charge = shared.pending_budget().reservation();
    let mut buf = BytesMut::new();
    if let Some(len) = declared {
        // Refused before any byte is read when it cannot fit; allocated with the first.
        charge_for(&mut charge, len)?;
    }
    let deadline = shared.settings.body_read_timeout;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| too_large(format!("more than {limit}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let total = buf.len() + data.len();
            if total > limit {
                return Err(too_large(format!("more than {limit}")));
            }
            if buf.capacity() < total {
                let capacity = match declared {
                    Some(d) if d >= total => d,
                    _ => buf.capacity().saturating_mul(2).clamp(total, limit),
                };
                charge_for(&mut charge, capacity)?;
                // Exactly the capacity charged (`reserve` may round up).
                let mut bigger = BytesMut::with_capacity(capacity);
                bigger.extend_from_slice(&buf);
                buf = bigger;
            }
            buf.extend_from_slice(&data);
        }
        Ok(())
    };
    tokio::time::timeout(deadline, read).await.map_err(|_| {
        ApiError::new(
            408,
            "ERR_REQUEST_TIMEOUT",
            format!(
                "the request body did not arrive within {deadline:?} (--body-timeout); \
                 send the whole body at once"
            ),
        )
    })??;
    record.request_bytes = buf.len() as u64;
    // Read whole: an injected latency elapses now, before the request is applied.
    super::in_flight::read_whole().await;
    Ok(ChargedBody {
        bytes: buf.freeze(),
        charge,
    })
}
