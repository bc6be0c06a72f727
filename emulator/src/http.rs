//! HTTP layer: routing (with percent-decoding of path segments and query values), auth,
//! fault application, response shapes and the request log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, Response, StatusCode};
use bytes::Bytes;
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

use crate::channels::ELASTIC;
use crate::faults::{Endpoint, FaultAction};
use crate::requests::RequestRecord;
use crate::service::{now_ms, ApiError, AppendRequest, Shared};

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

async fn read_body(
    body: Body,
    limit: usize,
    record: &mut RequestRecord,
) -> Result<Bytes, ApiError> {
    let b = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            413,
            "ERR_PAYLOAD_TOO_LARGE",
            format!("the request body is larger than {limit} bytes; send smaller batches"),
        )
    })?;
    record.request_bytes = b.len() as u64;
    Ok(b)
}

fn auth_control(
    shared: &Shared,
    headers: &HeaderMap,
    fallback: Option<&str>,
) -> Result<crate::auth::Principal, ApiError> {
    let token = bearer(headers)
        .or_else(|| fallback.map(str::to_string))
        .ok_or_else(|| {
            ApiError::new(
                401,
                "390101",
                "missing Authorization: Bearer <key-pair JWT or PAT>",
            )
        })?;
    shared
        .auth
        .verify_control(&token, token_type(headers).as_deref())
        .map_err(|e| {
            tracing::info!(reason = %e, "control-plane authentication failed");
            ApiError::new(401, "390144", format!("authentication failed: {e}"))
        })
}

/// Checks the scoped token of a data-plane call and, for a call about database `db`, that
/// the token's role may use it (see `EmulatorConfig::role_grants`).
fn auth_scoped(
    shared: &Shared,
    headers: &HeaderMap,
    allow_control: bool,
    db: Option<&str>,
) -> Result<crate::auth::Principal, ApiError> {
    let principal = verify_scoped(shared, headers, allow_control)?;
    if let Some(db) = db {
        shared.authorize(principal.role.as_deref(), db)?;
    }
    Ok(principal)
}

fn verify_scoped(
    shared: &Shared,
    headers: &HeaderMap,
    allow_control: bool,
) -> Result<crate::auth::Principal, ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::new(
            401,
            "390101",
            "missing Authorization: Bearer <scoped token>",
        )
    })?;
    match shared.auth.verify_scoped(&token) {
        Ok(p) => Ok(p),
        Err(e) => {
            if let Some(p) = allow_control
                .then(|| shared.auth.verify_control(&token, None).ok())
                .flatten()
            {
                return Ok(p);
            }
            tracing::info!(reason = %e, "data-plane authentication failed");
            Err(ApiError::new(
                401,
                "390114",
                format!("authentication failed: {e}"),
            ))
        }
    }
}

fn json_body<T: serde::de::DeserializeOwned + Default>(b: &[u8]) -> Result<T, ApiError> {
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(b).map_err(|e| {
        ApiError::new(
            400,
            "ERR_INVALID_REQUEST_BODY",
            format!("invalid JSON body: {e}"),
        )
    })
}

#[derive(Debug, Default, serde::Deserialize)]
struct OpenBody {
    #[serde(default)]
    offset_token: Option<String>,
    #[serde(default)]
    fail_on_uncommitted_rows: Option<bool>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct BulkBody {
    #[serde(default)]
    channel_names: Vec<String>,
}

async fn dispatch(
    shared: &Arc<Shared>,
    route: &Route,
    headers: &HeaderMap,
    params: &[(String, String)],
    body: Body,
    record: &mut RequestRecord,
) -> Result<Response<Body>, ApiError> {
    const SMALL: usize = 1024 * 1024;
    match route {
        Route::Status => Ok(json_response(200, &shared.status())),
        Route::Hostname => {
            auth_control(shared, headers, None)?;
            let host = shared.ingest_host.clone().unwrap_or_else(|| {
                headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(host_without_port)
                    .unwrap_or_else(|| "127.0.0.1".into())
            });
            Ok(text_response(200, host, "text/plain"))
        }
        Route::Token => {
            let b = read_body(body, SMALL, record).await?;
            let form: Vec<(String, String)> = url_form(&b);
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let mut principal = auth_control(shared, headers, get("assertion"))?;
            // The role: from the scope (what Redpanda sends) else the JWT's scp claim (what the
            // official SDK sends); docs/protocol.md "Authentication and role".
            if let Some(role) = get("scope").and_then(crate::auth::role_in_scope) {
                principal.role = Some(role);
            }
            let scope = get("scope")
                .and_then(|s| s.split_whitespace().next())
                .map(str::to_string)
                .unwrap_or_else(|| "snowpipe-emulator".into());
            Ok(text_response(
                200,
                shared.auth.mint_scoped(&principal, &scope),
                "text/plain",
            ))
        }
        Route::Telemetry => {
            let _ = read_body(body, 16 * SMALL, record).await?;
            auth_control(shared, headers, None)
                .or_else(|_| auth_scoped(shared, headers, false, None))?;
            Ok(json_response(
                200,
                &json!({"success": true, "message": "ok", "data": "ok", "code": "0"}),
            ))
        }
        Route::PipeInfo { db, schema, pipe } => {
            let _ = read_body(body, SMALL, record).await?;
            auth_scoped(shared, headers, false, Some(db))?;
            shared.resolve(db, schema, pipe, "")?;
            Ok(json_response(200, &pipe_info()))
        }
        Route::BulkStatus { db, schema, pipe } => {
            let b = read_body(body, SMALL, record).await?;
            auth_scoped(shared, headers, true, Some(db))?;
            let req: BulkBody = json_body(&b)?;
            Ok(json_response(
                200,
                &shared.bulk_status(db, schema, pipe, &req.channel_names)?,
            ))
        }
        Route::Open { db, schema, pipe, channel } => {
            let b = read_body(body, SMALL, record).await?;
            auth_scoped(shared, headers, false, Some(db))?;
            let req: OpenBody = json_body(&b)?;
            let (key, _) = shared.resolve(db, schema, pipe, channel)?;
            let v = shared
                .open_channel(key, req.offset_token, req.fail_on_uncommitted_rows.unwrap_or(false))
                .await?;
            Ok(json_response(200, &v))
        }
        Route::Drop { db, schema, pipe, channel } => {
            let b = read_body(body, SMALL, record).await?;
            auth_scoped(shared, headers, false, Some(db))?;
            let req: OpenBody = json_body(&b)?;
            let (key, _) = shared.resolve(db, schema, pipe, channel)?;
            let v = shared
                .drop_channel(key, req.fail_on_uncommitted_rows.unwrap_or(false))
                .await?;
            Ok(json_response(200, &v))
        }
        Route::Append { db, schema, pipe, channel } => {
            auth_scoped(shared, headers, false, Some(db))?;
            let (key, target) = shared.resolve(db, schema, pipe, channel)?;
            append(shared, key, target, headers, params, body, record).await
        }
        Route::TableAppend { db, schema, table } => {
            auth_scoped(shared, headers, false, Some(db))?;
            let (key, target) = shared.resolve(db, schema, &crate::catalog::default_pipe_for(table), ELASTIC)?;
            append(shared, key, target, headers, params, body, record).await
        }
        Route::Statements => {
            let b = read_body(body, SMALL, record).await?;
            auth_control(shared, headers, None)?;
            let sql = crate::sql_api::prepare(&shared.catalog, &b)?;
            let storage = shared.storage.as_ref().ok_or_else(|| {
                ApiError::new(422, "002003", "sink mode stores no rows: nothing to query")
            })?;
            let handle = uuid::Uuid::new_v4().to_string();
            let answer = storage
                .run(move |c| crate::sql_api::run(c, &sql, &handle))
                .await
                .map_err(|e| ApiError::new(500, "ERR_INTERNAL", e.to_string()))??;
            Ok(json_response(200, &answer))
        }
        Route::StatementStatus => {
            auth_control(shared, headers, None)?;
            Err(ApiError::new(
                422,
                "000709",
                "statement not found: the emulator answers every statement synchronously and keeps no results",
            )
            .with_sql_state("02000"))
        }
        Route::FileBuffer => Err(ApiError::new(
            400,
            "ERR_FILE_MODE_NOT_SUPPORTED",
            "the emulator does not implement file mode; keep the official SDK in rowset mode (max_buffered_kb_for_rowset_mode=300000, max_rowset_payload_size_mb=16)",
        )),
        Route::NotFound => Err(ApiError::new(
            404,
            "ERR_NOT_FOUND",
            "no such endpoint in the Snowpipe Streaming REST API",
        )),
    }
}

async fn append(
    shared: &Arc<Shared>,
    key: crate::channels::ChannelKey,
    target: Arc<crate::channels::Target>,
    headers: &HeaderMap,
    params: &[(String, String)],
    body: Body,
    record: &mut RequestRecord,
) -> Result<Response<Body>, ApiError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > shared.max_payload_bytes {
            return Err(ApiError::new(
                413,
                "ERR_PAYLOAD_TOO_LARGE",
                format!(
                    "the request body has {len} bytes; at most {} are accepted (--max-payload)",
                    shared.max_payload_bytes
                ),
            ));
        }
    }
    let b = read_body(body, shared.max_payload_bytes, record).await?;
    if key.channel == ELASTIC {
        // Elastic requests must not carry tokens (docs/protocol.md "Elastic channels").
        if let Some(name) = [
            "offsetToken",
            "startOffsetToken",
            "endOffsetToken",
            "continuationToken",
        ]
        .into_iter()
        .find(|n| param(params, n).is_some_and(|v| !v.is_empty()))
        {
            return Err(ApiError::new(
                400,
                "ERR_ELASTIC_CHANNEL_TOKENS_NOT_ALLOWED",
                format!("{name} is not allowed on an elastic channel; send only requestId and retryCount"),
            ));
        }
    }
    let retried = param(params, "retryCount")
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|n| n > 0);
    let end = param(params, "endOffsetToken")
        .or_else(|| param(params, "offsetToken"))
        .map(str::to_string);
    let req = AppendRequest {
        continuation_token: param(params, "continuationToken").map(str::to_string),
        start_offset_token: param(params, "startOffsetToken")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        end_offset_token: end,
        content_encoding: headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        uncompressed_len: headers
            .get("x-snowflake-uncompressed-content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(b.len()),
        body: b,
    };
    let (next, violation) = shared.append(key.clone(), target, req).await?;
    if retried {
        shared.count_retried(&key);
    }
    record.offset_violation = violation;
    let mut response = json_response(
        200,
        &json!({"next_continuation_token": next, "message": "OK"}),
    );
    let sent = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    if let Some((session, echo)) = shared.sticky_session(&key, sent) {
        tracing::debug!(channel = %key.channel, session = echo, "x-snowflake-session");
        record.session = Some(echo.to_owned());
        if let Ok(v) = axum::http::HeaderValue::from_str(&session) {
            response.headers_mut().insert(SESSION_HEADER, v);
        }
    }
    Ok(response)
}

fn host_without_port(h: &str) -> String {
    if let Some(rest) = h.strip_prefix('[') {
        // [::1]:port
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    h.rsplit_once(':')
        .map(|(host, _)| host)
        .unwrap_or(h)
        .to_string()
}

fn url_form(b: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(b);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let d = |s: &str| dec(&s.replace('+', " "));
            (d(k), d(v))
        })
        .collect()
}

/// The `:pipe-info` response the official SDK requires (official-sdk-capture §2.4). The stage
/// is fake: the emulator does not implement file mode.
fn pipe_info() -> Value {
    let expiry = now_ms() + Duration::from_secs(2 * 3600).as_millis() as i64;
    let stage = json!({
        "expiry_time_ms": expiry,
        "location_type": "S3",
        "use_s3_regional_url": false,
        "location": "snowpipe-emulator/stage/",
        "region": "us-west-2",
        "creds": {"AWS_KEY_ID": "emulator", "AWS_SECRET_KEY": "emulator", "AWS_TOKEN": "emulator"},
    });
    json!({
        "rowset_stage_location": stage,
        "durable_stage_location": stage,
        "encryption_info": {
            "pipe_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "pipe_key_id": 1,
            "diversifier": "snowpipe-emulator",
        },
        // Snowflake's BINARY_INPUT_FORMAT default, which the emulator applies: the official
        // SDK then renders bytes as hex (official-sdk capture, docs/protocol.md).
        "parameter_overrides": {"binary_input_format": "HEX"},
    })
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
