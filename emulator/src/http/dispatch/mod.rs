//! Dispatching a routed request to the protocol operations, and the append path.

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderMap, Response};
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::base::api_error::ApiError;
use crate::base::requests::RequestRecord;
use crate::channels::ELASTIC;
use crate::service::{AppendRequest, Shared};

use super::auth::{auth_control, auth_scoped};
use super::request::{bearer, dec, param, read_body, ChannelPath, Route, SESSION_HEADER};
use super::response::{json_response, text_response, Body};

mod file_mode;
mod statements;

pub(super) fn json_body<T: serde::de::DeserializeOwned + Default>(b: &[u8]) -> Result<T, ApiError> {
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
pub(super) struct OpenBody {
    #[serde(default)]
    offset_token: Option<String>,
    #[serde(default)]
    fail_on_uncommitted_rows: Option<bool>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct BulkBody {
    #[serde(default)]
    channel_names: Vec<String>,
}

/// The most bytes read from the body of a request that is not an append.
const SMALL: usize = 1024 * 1024;

/// Answers a routed request: each route's operation, after its own authentication.
pub(super) async fn dispatch(
    shared: &Arc<Shared>,
    route: &Route,
    headers: &HeaderMap,
    params: &[(String, String)],
    body: Incoming,
    record: &mut RequestRecord,
) -> Result<Response<Body>, ApiError> {
    match route {
        Route::Status => status(shared, params),
        Route::Hostname => hostname(shared, headers),
        Route::Token => token(shared, headers, body, record).await,
        Route::Telemetry => {
            auth_control(shared, headers, None)
                .or_else(|_| auth_scoped(shared, headers, false, None))?;
            let _ = read_body(shared, headers, body, 16 * SMALL, record).await?;
            Ok(json_response(
                200,
                &json!({"success": true, "message": "ok", "data": "ok", "code": "0"}),
            ))
        }
        Route::PipeInfo { db, schema, pipe } => {
            let principal = auth_scoped(shared, headers, false, Some(db))?;
            let _ = read_body(shared, headers, body, SMALL, record).await?;
            let (key, _) = shared.resolve(db, schema, pipe, "")?;
            shared.admit_default_pipe(&key)?;
            shared.default_pipe_used(&key).await;
            let owner = crate::stage::Stage::owner(&principal.subject, db);
            Ok(json_response(200, &pipe_info(shared, headers, &owner)))
        }
        Route::BulkStatus { db, schema, pipe } => {
            auth_scoped(shared, headers, true, Some(db))?;
            let b = read_body(shared, headers, body, SMALL, record).await?;
            let req: BulkBody = json_body(&b)?;
            Ok(json_response(
                200,
                &shared.bulk_status(db, schema, pipe, &req.channel_names)?,
            ))
        }
        Route::Open(path) => open(shared, headers, body, record, path).await,
        Route::Drop(path) => {
            let (key, req) = channel_request(shared, headers, body, record, path).await?;
            let v = shared
                .drop_channel(key, req.fail_on_uncommitted_rows.unwrap_or(false))
                .await?;
            Ok(json_response(200, &v))
        }
        Route::Append(ChannelPath {
            db,
            schema,
            pipe,
            channel,
        }) => {
            auth_scoped(shared, headers, false, Some(db))?;
            let (key, target) = shared.resolve(db, schema, pipe, channel)?;
            append(shared, key, target, headers, params, body, record).await
        }
        Route::TableAppend { db, schema, table } => {
            auth_scoped(shared, headers, false, Some(db))?;
            let (key, target) = shared.resolve(
                db,
                schema,
                &crate::catalog::default_pipe_for(table),
                ELASTIC,
            )?;
            append(shared, key, target, headers, params, body, record).await
        }
        Route::Statements => sql_statement(shared, headers, params, body, record).await,
        Route::StatementStatus => {
            let principal = auth_control(shared, headers, None)?;
            statements::status(shared, &principal.subject, &record.path, params, headers)
        }
        Route::FileBuffer(path) => {
            file_mode::file_buffer(shared, path, headers, params, body, record).await
        }
        Route::StagePut(path) => {
            Ok(file_mode::stage_put(shared, path, headers, body, record).await)
        }
        Route::NotFound => Err(ApiError::new(
            404,
            "ERR_NOT_FOUND",
            "no such endpoint in the Snowpipe Streaming REST API",
        )),
    }
}

/// `GET /`: the status page, with the SQL API's counts.
fn status(shared: &Shared, params: &[(String, String)]) -> Result<Response<Body>, ApiError> {
    let (from, limit) = status_page(params)?;
    let mut status = shared.status_page(from, limit);
    status["sql_api"] = shared.sql_results.stats();
    Ok(json_response(200, &status))
}

/// The ingest host name: `--ingest-host`, else the request's `Host` without its port.
fn hostname(shared: &Shared, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    auth_control(shared, headers, None)?;
    let host = shared.settings.ingest_host.clone().unwrap_or_else(|| {
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(host_without_port)
            .unwrap_or_else(|| "127.0.0.1".into())
    });
    Ok(text_response(200, host, "text/plain"))
}

/// A scoped token for the control-plane credential of the header or the form's `assertion`,
/// with the role of the form's `scope`.
async fn token(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: Incoming,
    record: &mut RequestRecord,
) -> Result<Response<Body>, ApiError> {
    // With an Authorization header, check it before reading the body; without one, the
    // credential is the body's `assertion` (at most SMALL bytes are read).
    let early = bearer(headers)
        .is_some()
        .then(|| auth_control(shared, headers, None))
        .transpose()?;
    let b = read_body(shared, headers, body, SMALL, record).await?;
    let form: Vec<(String, String)> = url_form(&b);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut principal = match early {
        Some(p) => p,
        None => auth_control(shared, headers, get("assertion"))?,
    };
    // The role: from the scope (what Redpanda sends) else the JWT's scp claim (what the
    // official SDK sends); docs/protocol.md "Authentication and role".
    if let Some(role) = get("scope").and_then(crate::security::auth::role_in_scope) {
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

/// Opens the channel at `path` on a pipe its limits admit; a default pipe is recorded as used.
async fn open(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: Incoming,
    record: &mut RequestRecord,
    path: &ChannelPath,
) -> Result<Response<Body>, ApiError> {
    let (key, req) = channel_request(shared, headers, body, record, path).await?;
    shared.admit_default_pipe(&key)?;
    let v = shared
        .open_channel(
            key.clone(),
            req.offset_token,
            req.fail_on_uncommitted_rows.unwrap_or(false),
        )
        .await?;
    shared.default_pipe_used(&key).await;
    Ok(json_response(200, &v))
}

/// `POST /api/v2/statements`: the statement prepared for the caller, then run or answered by
/// its kind.
async fn sql_statement(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    params: &[(String, String)],
    body: Incoming,
    record: &mut RequestRecord,
) -> Result<Response<Body>, ApiError> {
    let principal = auth_control(shared, headers, None)?;
    let b = read_body(shared, headers, body, SMALL, record).await?;
    let caller = crate::sql_api::Caller {
        grants: &shared.settings.role_grants,
        token_role: principal.role.as_deref(),
        user: principal.user(),
        any_role: shared.auth.accepts_any(),
    };
    let subject = &principal.subject;
    match crate::sql_api::prepare(&shared.model().catalog, &caller, &b)? {
        crate::sql_api::Request::Read(sql) => {
            statements::submit(shared, subject, sql, params).await
        }
        crate::sql_api::Request::Ddl(ddl) => statements::submit_ddl(shared, subject, ddl).await,
        crate::sql_api::Request::Migrate(m) => {
            statements::submit_migrate(shared, subject, &m).await
        }
        crate::sql_api::Request::Overwrite(o) => {
            statements::submit_overwrite(shared, subject, o).await
        }
        crate::sql_api::Request::ShowChannels(show, role) => {
            let granted = |db: &str| {
                crate::security::auth::role_granted(
                    &shared.settings.role_grants,
                    role.as_deref(),
                    db,
                )
            };
            let described = {
                let model = shared.model();
                show.rows(&model.catalog, shared.channels().iter(), &granted)
            };
            statements::answer_now(shared, subject, |handle| {
                crate::sql_api::describe_answer(&described, handle)
            })
        }
        crate::sql_api::Request::Describe(d) => statements::answer_now(shared, subject, |handle| {
            crate::sql_api::describe_answer(&d, handle)
        }),
    }
}

/// The channel page `GET /` asks for: `channels_from` (default 0) and `channels_limit`
/// (1 to [`STATUS_PAGE_CHANNELS`], the default).
///
/// # Errors
/// 400 naming the parameter and what it takes.
fn status_page(params: &[(String, String)]) -> Result<(usize, usize), ApiError> {
    use crate::service::STATUS_PAGE_CHANNELS;
    let number = |name: &str, default: usize, range: std::ops::RangeInclusive<usize>| {
        let Some(v) = param(params, name) else {
            return Ok(default);
        };
        v.parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    400,
                    "ERR_INVALID_PARAMETER",
                    format!(
                        "{name} takes a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )
            })
    };
    Ok((
        number("channels_from", 0, 0..=usize::MAX)?,
        number(
            "channels_limit",
            STATUS_PAGE_CHANNELS,
            1..=STATUS_PAGE_CHANNELS,
        )?,
    ))
}

/// Authorises an open or drop of the channel at `path` and reads its body: the channel's key
/// and the request.
async fn channel_request(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: Incoming,
    record: &mut RequestRecord,
    path: &ChannelPath,
) -> Result<(crate::channels::ChannelKey, OpenBody), ApiError> {
    auth_scoped(shared, headers, false, Some(&path.db))?;
    let b = read_body(shared, headers, body, SMALL, record).await?;
    let req: OpenBody = json_body(&b)?;
    let (key, _) = shared.resolve(&path.db, &path.schema, &path.pipe, &path.channel)?;
    Ok((key, req))
}

/// Appends the request's rows to channel `key` of a pipe its limits admit; a default pipe is
/// recorded as used once an append on it succeeds.
async fn append(
    shared: &Arc<Shared>,
    key: crate::channels::ChannelKey,
    target: Arc<crate::channels::Target>,
    headers: &HeaderMap,
    params: &[(String, String)],
    body: Incoming,
    record: &mut RequestRecord,
) -> Result<Response<Body>, ApiError> {
    shared.admit_default_pipe(&key)?;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > shared.settings.max_payload_bytes {
            return Err(ApiError::new(
                413,
                "ERR_PAYLOAD_TOO_LARGE",
                format!(
                    "the request body has {len} bytes; at most {} are accepted (--max-payload)",
                    shared.settings.max_payload_bytes
                ),
            ));
        }
    }
    let b = read_body(
        shared,
        headers,
        body,
        shared.settings.max_payload_bytes,
        record,
    )
    .await?;
    if key.channel == ELASTIC {
        // Elastic requests must not carry tokens (docs/protocol-types-and-sql.md "Elastic channels").
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
        body: b.bytes,
        body_charge: Some(b.charge),
    };
    let appended = shared.append(key.clone(), target, req).await?;
    let mut response = appended_answer(shared, &key, params, appended, record);
    let sent = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    if let Some((session, echo)) = shared.sticky_session(&key, sent) {
        tracing::debug!(channel = %key.channel, session = echo, "x-snowflake-session");
        record.session = Some(echo.to_owned());
        if let Ok(v) = http::HeaderValue::from_str(&session) {
            response.headers_mut().insert(SESSION_HEADER, v);
        }
    }
    shared.default_pipe_used(&key).await;
    Ok(response)
}

/// The answer to an accepted append or file registration (`(next token, offset-span
/// violation)`): a retried one (`retryCount` > 0) counted on its channel, the violation
/// recorded, and the next continuation token.
pub(super) fn appended_answer(
    shared: &Shared,
    key: &crate::channels::ChannelKey,
    params: &[(String, String)],
    (next, violation): (String, Option<String>),
    record: &mut RequestRecord,
) -> Response<Body> {
    let retried = param(params, "retryCount")
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|n| n > 0);
    if retried {
        shared.count_retried(key);
    }
    record.offset_violation = violation;
    json_response(
        200,
        &json!({"next_continuation_token": next, "message": "OK"}),
    )
}

pub(super) fn host_without_port(h: &str) -> String {
    if let Some(rest) = h.strip_prefix('[') {
        // [::1]:port
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    h.rsplit_once(':')
        .map(|(host, _)| host)
        .unwrap_or(h)
        .to_string()
}

pub(super) fn url_form(b: &[u8]) -> Vec<(String, String)> {
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

/// The `:pipe-info` response the official SDK requires (docs/protocol-wire.md §4.2). The stage is
/// the emulator itself (`stage`), at the host and port the request reached it on, so the
/// SDK's file mode uploads here, with S3 credentials of `owner`'s (the caller and database)
/// for that location only, until the `expiry_time_ms` (`stage::credentials`).
/// `binary_input_format` is the one the emulator reads BINARY columns with, so the official
/// SDK renders bytes to match.
pub(super) fn pipe_info(shared: &Shared, headers: &HeaderMap, owner: &str) -> Value {
    let expiry = shared.clock.now_ms() + Duration::from_secs(2 * 3600).as_millis() as i64;
    let endpoint = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let binary = shared.settings.binary_format;
    // Two locations, each with a prefix of its own: the SDK numbers its files from 0 in each
    // location it is given, so a shared prefix could have one overwrite the other's.
    json!({
        "rowset_stage_location": shared.stage.location(endpoint, expiry, owner),
        "durable_stage_location": shared.stage.location(endpoint, expiry, owner),
        "encryption_info": shared.stage.encryption_info(),
        // The BINARY_INPUT_FORMAT the emulator applies (Snowflake's default is HEX): the
        // official SDK renders bytes to it (official-sdk capture, docs/protocol.md).
        "parameter_overrides": {"binary_input_format": binary.name()},
    })
}
