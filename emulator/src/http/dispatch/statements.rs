//! The SQL API routes: `POST /api/v2/statements` (answered synchronously, or HTTP 202 past
//! the configured wait) and `GET /api/v2/statements/{handle}[?partition=N]` (the status of a
//! running statement, or a partition of its result, gzip-encoded when the client accepts it).

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderMap, Response, StatusCode};
use serde_json::Value;

use crate::base::api_error::ApiError;
use crate::base::error::chain;
use crate::service::Shared;
use crate::sql_api::{running, Ddl, Fetched, Migrate, Prepared};

use super::super::request::{dec, param};
use super::super::response::{json_response, Body};

/// Runs a prepared statement and answers its first partition, or HTTP 202 with its handle
/// when it is still running after `sql_async_after` (at once with `?async=true`).
///
/// The statement holds one of the store's slots while it runs (see `ResultStore::slot`).
///
/// In sink mode (no storage) only a `SELECT … LIMIT 0` runs, on the catalog's tables made
/// empty (`sql_api/sink.rs`).
///
/// # Errors
/// The statement's own error (422 with Snowflake's codes) when it finished failing within
/// the wait; 422 in sink mode for a statement that reads rows; 429 when no slot frees up in
/// time.
pub(crate) async fn submit(
    shared: &Arc<Shared>,
    owner: &str,
    prepared: Prepared,
    params: &[(String, String)],
) -> Result<Response<Body>, ApiError> {
    // Sink mode: the catalog's tables, empty, for a statement that reads no rows.
    let empty = match &shared.storage {
        Some(_) => None,
        None if crate::sql_api::sink::reads_no_rows(&prepared.sql) => Some(
            crate::sql_api::sink::creates(&shared.model().catalog, &prepared.sql),
        ),
        None => return Err(crate::sql_api::sink::rows_not_stored()),
    };
    let store = &shared.sql_results;
    let limit = store.statement_limit;
    // Before the statement is registered: a statement refused here leaves no handle.
    let slot = store.slot().await?;
    let handle = uuid::Uuid::new_v4().to_string();
    store.start(&handle, owner);
    let task = {
        let shared = Arc::clone(shared);
        let handle = handle.clone();
        tokio::spawn(async move {
            let h = handle.clone();
            let outcome = match (shared.storage.as_ref(), empty) {
                (Some(storage), _) => storage
                    .read(move |c| crate::sql_api::run(c, prepared, &h, limit))
                    .await
                    .map_err(|e| ApiError::new(500, "ERR_INTERNAL", chain(&e)))
                    .and_then(|r| r),
                (None, Some(creates)) => tokio::task::spawn_blocking(move || {
                    let conn = crate::sql_api::sink::empty_tables(&creates)?;
                    crate::sql_api::run(&conn, prepared, &h, limit)
                })
                .await
                .map_err(|e| ApiError::new(500, "ERR_INTERNAL", e.to_string()))
                .and_then(|r| r),
                (None, None) => Err(ApiError::new(500, "ERR_INTERNAL", "no storage")),
            };
            shared.sql_results.finish(&handle, outcome);
            drop(slot);
        })
    };
    let wait = if param(params, "async").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        Some(Duration::ZERO)
    } else {
        store.async_after
    };
    let finished = match wait {
        None => task.await.is_ok(),
        Some(d) if d.is_zero() => false,
        Some(d) => tokio::time::timeout(d, task).await.is_ok(),
    };
    if !finished {
        store.counters.async_answers.fetch_add(1, Ordering::Relaxed);
        return Ok(json_response(202, &running(&handle)));
    }
    Ok(match store.fetch(&handle, owner, 0)? {
        Fetched::Running(v) => json_response(202, &v),
        Fetched::Partition(v) => json_response(200, &v),
    })
}

/// Runs a DDL statement (`Shared::run_ddl`) and answers its one-row `status` result, held
/// under a handle like any statement's.
///
/// # Errors
/// The statement's refusal (422, Snowflake's codes); 500 when it cannot be stored.
pub(crate) async fn submit_ddl(
    shared: &Arc<Shared>,
    owner: &str,
    ddl: Ddl,
) -> Result<Response<Body>, ApiError> {
    let status = shared.run_ddl(&ddl).await?;
    let store = &shared.sql_results;
    let handle = uuid::Uuid::new_v4().to_string();
    store.start(&handle, owner);
    store.finish(&handle, Ok(crate::sql_api::ddl_answer(&status, &handle)));
    Ok(match store.fetch(&handle, owner, 0)? {
        Fetched::Running(v) => json_response(202, &v),
        Fetched::Partition(v) => json_response(200, &v),
    })
}

/// Runs `SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET` (`Shared::migrate_classic`) and answers its
/// one-row JSON result, held under a handle like any statement's.
///
/// # Errors
/// The call's refusal (422, Snowflake's codes); 500 when the channel cannot be stored.
pub(crate) async fn submit_migrate(
    shared: &Arc<Shared>,
    owner: &str,
    m: &Migrate,
) -> Result<Response<Body>, ApiError> {
    let result = shared.migrate_classic(m).await?;
    answer_now(shared, owner, |handle| {
        crate::sql_api::migrate_answer(&result, handle)
    })
}

/// Runs `INSERT OVERWRITE INTO t SELECT * FROM t QUALIFY …` (`sql_api/overwrite.rs`): on the
/// writer, in one transaction, the condition evaluated in the sandbox and the rows it does
/// not keep deleted by `rowid`; answers `number of rows inserted` (the rows kept).
///
/// Both steps run in the writer's transaction so no append and no other overwrite comes
/// between them: evaluated on a reader and deleted later, a second overwrite deleted by
/// `rowid`s the first had freed and SQLite had given to rows appended since (issue 81). The
/// writer waits for the evaluation, at most the statement time limit, as Snowflake's DML
/// waits for a table's lock.
///
/// # Errors
/// 422 in sink mode and for a condition SQLite or the sandbox refuses; 500 when the storage
/// fails.
pub(crate) async fn submit_overwrite(
    shared: &Arc<Shared>,
    owner: &str,
    o: crate::sql_api::overwrite::Overwrite,
) -> Result<Response<Body>, ApiError> {
    let Some(storage) = shared.storage.as_ref() else {
        return Err(crate::sql_api::sink::rows_not_stored());
    };
    let internal = |e: &dyn std::fmt::Display| ApiError::new(500, "ERR_INTERNAL", e.to_string());
    let limit = shared.sql_results.statement_limit;
    let (total, deleted) = storage
        .run(move |c| crate::sql_api::overwrite::run(c, o, limit))
        .await
        .map_err(|e| internal(&chain(&e)))??;
    answer_now(shared, owner, |handle| {
        crate::sql_api::overwrite::answer(total.saturating_sub(deleted), handle)
    })
}

/// Answers a statement whose result is known at once (`answer` builds it for its handle),
/// through the result store like any other, so its handle can be fetched again.
///
/// # Errors
/// The store's errors.
pub(crate) fn answer_now(
    shared: &Shared,
    owner: &str,
    answer: impl FnOnce(&str) -> Value,
) -> Result<Response<Body>, ApiError> {
    let store = &shared.sql_results;
    let handle = uuid::Uuid::new_v4().to_string();
    store.start(&handle, owner);
    store.finish(&handle, Ok(answer(&handle)));
    Ok(match store.fetch(&handle, owner, 0)? {
        Fetched::Running(v) => json_response(202, &v),
        Fetched::Partition(v) => json_response(200, &v),
    })
}

/// Answers `GET /api/v2/statements/{handle}` (`path` is the request's path) to `owner` (the
/// credential's subject): HTTP 202 while the statement runs, then its first partition, or
/// partition `?partition=N`.
///
/// # Errors
/// 400 for a `partition` that is not a number; the store's errors (unknown handle, a handle
/// another credential made, missing partition) and the statement's own error.
pub(crate) fn status(
    shared: &Shared,
    owner: &str,
    path: &str,
    params: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let handle = dec(path.rsplit('/').next().unwrap_or(""));
    let partition = match param(params, "partition") {
        None => 0,
        Some(p) => p.parse::<usize>().map_err(|_| {
            ApiError::new(
                400,
                "390142",
                format!("invalid partition {p:?}: expected a partition number"),
            )
        })?,
    };
    let store = &shared.sql_results;
    match store.fetch(&handle, owner, partition)? {
        Fetched::Running(v) => Ok(json_response(202, &v)),
        Fetched::Partition(v) if partition > 0 && accepts_gzip(headers) => {
            store.counters.gzip_answers.fetch_add(1, Ordering::Relaxed);
            Ok(gzip_json_response(&v))
        }
        Fetched::Partition(v) => Ok(json_response(200, &v)),
    }
}

/// Whether `Accept-Encoding` lists `gzip` (with a non-zero weight).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let gzip = parts.next().is_some_and(|c| c.eq_ignore_ascii_case("gzip"));
            let zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            gzip && !zero
        })
}

/// An HTTP 200 JSON answer, gzip-encoded (`Content-Encoding: gzip`).
fn gzip_json_response(v: &Value) -> Response<Body> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let body = serde_json::to_vec(v)
        .ok()
        .and_then(|raw| enc.write_all(&raw).ok())
        .and_then(|()| enc.finish().ok())
        .unwrap_or_default();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_accepted_unless_weighted_zero() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
            accepts_gzip(&h)
        };
        assert!(with("gzip"));
        assert!(with("br, GZIP;q=0.5"));
        assert!(!with("gzip;q=0"));
        assert!(!with("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
