//! HTTP layer: routing (with percent-decoding of path segments and query values), auth,
//! fault application, response shapes and the request log.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, Response, StatusCode};
use bytes::Bytes;
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

use crate::channels::ELASTIC;
use crate::faults::{Endpoint, FaultAction};
use crate::requests::RequestRecord;
use crate::service::{now_ms, ApiError, Shared};

mod auth;
mod dispatch;
mod host;

use auth::*;
use dispatch::*;

/// The sticky-session header Snowflake sets on insert responses and Openflow echoes on the
/// channel's next inserts (docs/protocol.md "Sticky sessions").
const SESSION_HEADER: &str = "x-snowflake-session";

/// Marker extension: close the connection instead of sending this response (lost ack).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropResponse;

/// A routed request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
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
    Open {
        db: String,
        schema: String,
        pipe: String,
        channel: String,
    },
    Drop {
        db: String,
        schema: String,
        pipe: String,
        channel: String,
    },
    Append {
        db: String,
        schema: String,
        pipe: String,
        channel: String,
    },
    TableAppend {
        db: String,
        schema: String,
        table: String,
    },
    FileBuffer,
    /// `POST /api/v2/statements` (the SQL API).
    Statements,
    /// `GET /api/v2/statements/{handle}`.
    StatementStatus,
    NotFound,
}

impl Route {
    fn endpoint(&self) -> Endpoint {
        match self {
            Route::Hostname => Endpoint::Hostname,
            Route::Token => Endpoint::Token,
            Route::Telemetry => Endpoint::Telemetry,
            Route::PipeInfo { .. } => Endpoint::PipeInfo,
            Route::BulkStatus { .. } => Endpoint::BulkStatus,
            Route::Open { .. } => Endpoint::OpenChannel,
            Route::Drop { .. } => Endpoint::DropChannel,
            Route::Append { .. } | Route::TableAppend { .. } | Route::FileBuffer => {
                Endpoint::AppendRows
            }
            Route::Status | Route::NotFound | Route::Statements | Route::StatementStatus => {
                Endpoint::Other
            }
        }
    }

    fn channel(&self) -> Option<&str> {
        match self {
            Route::Open { channel, .. }
            | Route::Drop { channel, .. }
            | Route::Append { channel, .. } => Some(channel),
            Route::TableAppend { .. } => Some(ELASTIC),
            _ => None,
        }
    }
}

fn dec(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn route(method: &Method, path: &str) -> Route {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        (&Method::GET, [""]) | (&Method::GET, ["status"]) => Route::Status,
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
            let (db, schema, pipe, channel) = (dec(db), dec(schema), dec(pipe), dec(ch));
            match *m {
                Method::PUT => Route::Open {
                    db,
                    schema,
                    pipe,
                    channel,
                },
                Method::DELETE => Route::Drop {
                    db,
                    schema,
                    pipe,
                    channel,
                },
                _ => Route::NotFound,
            }
        }
        (
            &Method::POST,
            ["v2", "streaming", "data", "databases", db, "schemas", schema, "pipes", pipe, "channels", ch, "rows"],
        ) => Route::Append {
            db: dec(db),
            schema: dec(schema),
            pipe: dec(pipe),
            channel: dec(ch),
        },
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
            ["v2", "streaming", "data", "databases", _, "schemas", _, "pipes", _, "channels", _, "filebuffer"],
        ) => Route::FileBuffer,
        _ => Route::NotFound,
    }
}

/// Percent-decoded query parameters (`+` is kept literally).
fn query_params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

fn token_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-snowflake-authorization-token-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn json_response(status: u16, v: &Value) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap_or_default()
}

fn text_response(status: u16, text: String, content_type: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, text.len())
        .body(Body::from(text))
        .unwrap_or_default()
}

fn error_response(e: &ApiError) -> Response<Body> {
    match &e.sql_state {
        Some(state) => json_response(
            e.status,
            &json!({"code": e.code, "message": e.message, "sqlState": state}),
        ),
        None => json_response(e.status, &json!({"code": e.code, "message": e.message})),
    }
}

fn fault_response(a: &FaultAction) -> Response<Body> {
    match a {
        FaultAction::Status {
            status,
            code,
            message,
            body,
            content_type,
            bare_string,
        } => {
            if let Some(b) = body {
                text_response(
                    *status,
                    b.clone(),
                    content_type.as_deref().unwrap_or("text/plain"),
                )
            } else if let Some(s) = bare_string {
                json_response(*status, &Value::String(s.clone()))
            } else {
                json_response(
                    *status,
                    &json!({"code": code, "message": message.clone().unwrap_or_else(|| "injected fault".into())}),
                )
            }
        }
        _ => json_response(
            500,
            &json!({"code": "ERR_INTERNAL", "message": "bad fault"}),
        ),
    }
}

/// Handles one request. Never fails: errors become error responses.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Body>) -> Response<Body> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    // Before anything else, the console included (see `host`): not logged, so a page that
    // keeps trying cannot fill the request log.
    if let Err(e) = host::check(&parts.headers, &parts.uri, shared.ingest_host.as_deref()) {
        tracing::info!(message = %e.message, "request refused");
        return error_response(&e);
    }
    if let Some(page) =
        crate::console::handle(&shared, &parts.method, parts.uri.path(), &parts.headers).await
    {
        return page;
    }
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let params = query_params(&query);
    let route = route(&parts.method, &path);
    let endpoint = route.endpoint();
    let mut record = RequestRecord {
        timestamp_ms: now_ms(),
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        endpoint,
        channel: route.channel().map(str::to_string),
        status: 0,
        error_code: None,
        request_id: param(&params, "requestId").map(str::to_string),
        retry_count: param(&params, "retryCount").and_then(|v| v.parse().ok()),
        request_bytes: 0,
        duration_ms: 0.0,
        faults: Vec::new(),
        token_type: token_type(&parts.headers),
        offset_violation: None,
        session: None,
    };

    let decision = if endpoint == Endpoint::Other {
        Default::default()
    } else {
        shared.faults.decide(endpoint, route.channel())
    };
    record.faults = decision.names.clone();
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if decision.invalidate || decision.bump_sequencer {
        if let Some(key) = channel_key(&shared, &route) {
            if decision.invalidate {
                shared.invalidate(&key);
            }
            if decision.bump_sequencer {
                shared.bump_sequencer(&key);
            }
        }
    }
    let mut lost_ack = false;
    let response = match &decision.terminal {
        Some(FaultAction::LostAck) => {
            lost_ack = true;
            None
        }
        Some(a) => {
            if let FaultAction::Status {
                code, bare_string, ..
            } = a
            {
                record.error_code = code.clone().or_else(|| bare_string.clone());
            }
            Some(fault_response(a))
        }
        None => None,
    };
    let mut response = match response {
        Some(r) => r,
        None => match dispatch(&shared, &route, &parts.headers, &params, body, &mut record).await {
            Ok(r) => r,
            Err(e) => {
                if e.status >= 500 {
                    tracing::warn!(code = %e.code, message = %e.message, %path, "request failed");
                } else {
                    tracing::debug!(code = %e.code, message = %e.message, %path, "request rejected");
                }
                record.error_code = Some(e.code.clone());
                error_response(&e)
            }
        },
    };
    record.status = if lost_ack {
        0
    } else {
        response.status().as_u16()
    };
    record.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    shared.requests.push(record);
    if lost_ack {
        response.extensions_mut().insert(DropResponse);
    }
    response
}

fn channel_key(shared: &Shared, route: &Route) -> Option<crate::channels::ChannelKey> {
    match route {
        Route::Open {
            db,
            schema,
            pipe,
            channel,
        }
        | Route::Drop {
            db,
            schema,
            pipe,
            channel,
        }
        | Route::Append {
            db,
            schema,
            pipe,
            channel,
        } => shared
            .resolve(db, schema, pipe, channel)
            .ok()
            .map(|(k, _)| k),
        _ => None,
    }
}

/// Reads a request body of at most `limit` bytes within the body deadline
/// (`--body-timeout`). A `Content-Length` over the limit is refused before any byte is read.
///
/// # Errors
/// 413 `ERR_PAYLOAD_TOO_LARGE` over the limit (or on a broken body), 408
/// `ERR_REQUEST_TIMEOUT` past the deadline.
async fn read_body(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    record: &mut RequestRecord,
) -> Result<Bytes, ApiError> {
    let too_large = |len: String| {
        ApiError::new(
            413,
            "ERR_PAYLOAD_TOO_LARGE",
            format!("the request body has {len} bytes; at most {limit} are accepted here; send smaller batches"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&len| len > limit as u64)
    {
        return Err(too_large(len.to_string()));
    }
    let deadline = shared.body_read_timeout;
    let b = tokio::time::timeout(deadline, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| {
            ApiError::new(
                408,
                "ERR_REQUEST_TIMEOUT",
                format!(
                    "the request body did not arrive within {deadline:?} (--body-timeout); \
                     send the whole body at once"
                ),
            )
        })?
        .map_err(|_| too_large(format!("more than {limit}")))?;
    record.request_bytes = b.len() as u64;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_decode_segments() {
        let r = route(
            &Method::POST,
            "/v2/streaming/data/databases/my%20db/schemas/S/pipes/P/channels/my%20chan%2F1%C3%A9/rows",
        );
        assert_eq!(
            r,
            Route::Append {
                db: "my db".into(),
                schema: "S".into(),
                pipe: "P".into(),
                channel: "my chan/1é".into()
            }
        );
        assert_eq!(
            route(
                &Method::POST,
                "/v2/streaming/databases/D/schemas/S/pipes/T-STREAMING:pipe-info"
            ),
            Route::PipeInfo {
                db: "D".into(),
                schema: "S".into(),
                pipe: "T-STREAMING".into()
            }
        );
        assert_eq!(route(&Method::GET, "/"), Route::Status);
        assert_eq!(route(&Method::GET, "/nope"), Route::NotFound);
        let q = query_params(
            "startOffsetToken=&endOffsetToken=a%20b%26c%3Dd%2F%C3%A9&continuationToken=x_1_0",
        );
        assert_eq!(param(&q, "startOffsetToken"), Some(""));
        assert_eq!(param(&q, "endOffsetToken"), Some("a b&c=d/é"));
        assert_eq!(host_without_port("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(host_without_port("[::1]:8443"), "::1");
    }
}
