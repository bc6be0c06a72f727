//! The browser console: `GET /` from a browser (`Accept: text/html`) serves one small page
//! (`console.html`, `console.js` beside this file, embedded in the binary: no CDN, works
//! offline) that polls `GET /console/state` every second and shows pipes and tables, every
//! channel (status, committed offset token, rows, rows/s, commit latency, rows waiting to
//! commit, fenced appends, row errors), the latest requests and a preview of each table's
//! latest rows. Preview cells are text as `snowpipe-emulator query` prints it (NUMBER at its
//! column's scale, BINARY as hex: `convert::output`), numbers included, so the page shows
//! them without JavaScript's rounding; NUMBER and FLOAT columns are flagged to align right.
//!
//! Exposure: neither the page nor `GET /console/state` asks for credentials, so they show table
//! and channel names, offset tokens, request paths and the latest rows of every table to
//! whatever reaches the port. SQL API statement handles are not shown (a request path
//! `/api/v2/statements/<handle>` is shown as `/api/v2/statements/{handle}`): a handle is
//! its owner's only. The listener is on 127.0.0.1 only, and the `Host` check in
//! `http` (loopback names and `--ingest-host` only) runs before this module sees a request,
//! so a web page cannot read them through DNS rebinding.
//!
//! Clients that do not ask for HTML (curl, the SDK, tests) keep getting the JSON status.
//! Console requests are not written to the request log, so the log shows protocol traffic
//! only.
//!
//! Cost: the state is built from the in-memory channel map (one lock, compact arrays: about
//! 150 bytes per channel, names, tokens and messages clipped, the first 1,000 channels in
//! name order) and the request ring's tail; table previews are read from SQLite at
//! most once a second per table, and only when the table's row count moved.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{header, HeaderMap, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::service::Shared;

use super::response::Body;

const PAGE: &str = include_str!("console.html");
const SCRIPT: &str = include_str!("console.js");

/// Requests shown in the console.
const RECENT_REQUESTS: usize = 40;
/// Channels shown in the console (the first in name order; `channels_total` counts them
/// all): with channel names, offset tokens and error messages clipped to [`MAX_CELL`]
/// characters, one state stays under a megabyte however many channels there are.
const CONSOLE_CHANNELS: usize = 1_000;
/// Rows shown per table preview.
const PREVIEW_ROWS: usize = 10;
/// Characters shown per preview cell and per error message.
const MAX_CELL: usize = 120;
/// How often a table preview may be re-read from SQLite.
const PREVIEW_EVERY: Duration = Duration::from_secs(1);

/// The console's own state: cached table previews,
/// `table -> (row count when read, when read, preview)`.
#[derive(Default)]
pub(crate) struct ConsoleCache {
    previews: Mutex<HashMap<String, (u64, Instant, Value)>>,
}

/// Whether the client asked for HTML (a browser navigating to the page).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn respond(body: impl Into<Body>, len: usize, content_type: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, len)
        .header(header::CACHE_CONTROL, "no-store")
        .body(body.into())
        .unwrap_or_default()
}

/// Answers the console's requests; `None` for every other request.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    cache: &ConsoleCache,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    if method != Method::GET {
        return None;
    }
    match path {
        "/" | "/console" if wants_html(headers) => {
            Some(respond(PAGE, PAGE.len(), "text/html; charset=utf-8"))
        }
        "/console/console.js" => Some(respond(
            SCRIPT,
            SCRIPT.len(),
            "text/javascript; charset=utf-8",
        )),
        "/console/state" => {
            let body = serde_json::to_vec(&state(shared, cache).await).unwrap_or_default();
            let len = body.len();
            Some(respond(body, len, "application/json"))
        }
        _ => None,
    }
}

/// A request path as the console shows it: a SQL API statement handle replaced by
/// `{handle}`.
fn shown_path(path: &str) -> String {
    match path.strip_prefix(STATEMENTS_PREFIX) {
        Some(rest) if !rest.is_empty() => format!("{STATEMENTS_PREFIX}{{handle}}"),
        _ => path.to_owned(),
    }
}

/// The path prefix of the SQL API's statement status requests.
const STATEMENTS_PREFIX: &str = "/api/v2/statements/";

fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_CELL {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX_CELL - 1).collect();
        t.push('…');
        t
    }
}

/// What the page shows, compact: rows as arrays, column names once.
async fn state(shared: &Arc<Shared>, cache: &ConsoleCache) -> Value {
    let delay_ms = shared.settings.commit_delay.as_secs_f64() * 1000.0;
    let (channels, channels_total): (Vec<Value>, usize) = {
        let chans = shared.channels();
        let mut keys: Vec<_> = chans.keys().collect();
        keys.sort_unstable();
        let shown = keys
            .into_iter()
            .take(CONSOLE_CHANNELS)
            .map(|k| {
                let c = &chans[k];
                let latency = c
                    .commit_lag_us
                    .map(|lag| ((delay_ms + lag as f64 / 1000.0) * 10.0).round() / 10.0);
                json!([
                    format!("{}.{}.{}", k.database, k.schema, k.pipe),
                    clip(&k.channel),
                    c.status,
                    c.committed.as_deref().map(clip),
                    c.counters.rows_inserted,
                    c.counters.rows_error_count,
                    c.counters.last_error_message.as_deref().map(clip),
                    latency,
                    c.pending_rows(),
                    c.fenced_appends,
                ])
            })
            .collect();
        (shown, chans.len())
    };
    let rows_by_table = shared.table_rows();
    let model = shared.model();
    let mut tables: Vec<(String, u64)> = model
        .catalog
        .tables()
        .map(|t| {
            let q = t.qualified_name();
            let n = rows_by_table.get(&q).copied().unwrap_or(0);
            (q, n)
        })
        .collect();
    tables.sort();
    let pipes: Vec<Value> = model
        .catalog
        .pipes()
        .into_iter()
        .filter(|p| shared.pipe_exists(p))
        .map(|p| {
            json!([
                format!("{}.{}.{}", p.database, p.schema, p.name),
                p.table_qualified
            ])
        })
        .collect();
    let requests: Vec<Value> = shared
        .requests
        .recent(RECENT_REQUESTS)
        .into_iter()
        .rev()
        .map(|r| {
            // Protocol calls by endpoint; anything else (status, SQL API, 404s) by its path.
            let call = match r.endpoint {
                crate::base::faults::Endpoint::Other => Value::String(shown_path(&r.path)),
                e => json!(e),
            };
            json!([
                r.timestamp_ms,
                r.method,
                call,
                r.channel,
                r.status,
                r.error_code,
                r.faults,
                (r.duration_ms * 100.0).round() / 100.0,
            ])
        })
        .collect();
    let previews = previews(shared, cache, &tables).await;
    json!({
        "now_ms": shared.clock.now_ms(),
        "version": env!("CARGO_PKG_VERSION"),
        "mode": if shared.settings.sink { "sink" } else { "store" },
        "uptime_s": (shared.clock.now_ms() - shared.settings.started_ms) / 1000,
        "commit_delay_ms": delay_ms,
        "requests_total": shared.requests.total(),
        "faults_fired": shared.faults.fired(),
        "sink_rows": shared.sink_rows(),
        "fenced_appends": shared.fenced_appends(),
        "pipes": pipes,
        "tables": tables.iter().map(|(n, r)| json!([n, r])).collect::<Vec<_>>(),
        "channel_columns": ["pipe", "channel", "status", "committed", "rows", "errors",
                            "last_error", "latency_ms", "pending", "fenced"],
        "channels": channels,
        "channels_total": channels_total,
        "request_columns": ["ts_ms", "method", "endpoint", "channel", "status", "error",
                            "faults", "ms"],
        "requests": requests,
        "previews": previews,
    })
}

/// The latest rows of each table, re-read when its row count moved (at most once a second).
async fn previews(shared: &Arc<Shared>, cache: &ConsoleCache, tables: &[(String, u64)]) -> Value {
    let Some(storage) = &shared.storage else {
        return json!({});
    };
    let now = Instant::now();
    let stale: Vec<(String, u64)> = {
        let cache = cache.previews.lock().unwrap_or_else(|e| e.into_inner());
        tables
            .iter()
            .filter(|(name, rows)| match cache.get(name) {
                None => true,
                Some((n, at, _)) => n != rows && now.duration_since(*at) >= PREVIEW_EVERY,
            })
            .cloned()
            .collect()
    };
    if !stale.is_empty() {
        let names: Vec<String> = stale.iter().map(|(n, _)| n.clone()).collect();
        let read = storage
            .read(move |c| {
                names
                    .iter()
                    .map(|name| {
                        let sql = format!(
                            "SELECT * FROM {} ORDER BY rowid DESC LIMIT {PREVIEW_ROWS}",
                            crate::convert::quote_ident(name)
                        );
                        crate::storage::query_declared(c, &sql).ok()
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        // Columns stored under another name (`catalog::storage_names`) shown by their own.
        let shown_names: std::collections::HashMap<String, Vec<String>> = shared
            .model()
            .catalog
            .tables()
            .map(|t| {
                (
                    t.qualified_name(),
                    t.columns.iter().map(|c| c.name.clone()).collect(),
                )
            })
            .collect();
        let mut cache = cache.previews.lock().unwrap_or_else(|e| e.into_inner());
        for ((name, rows), result) in stale.into_iter().zip(read) {
            let Some((mut cols, declared, data)) = result else {
                continue;
            };
            // `SELECT *` lists the table's columns in order.
            if let Some(shown) = shown_names.get(&name).filter(|s| s.len() == cols.len()) {
                cols.clone_from(shown);
            }
            let data: Vec<Value> = data.into_iter().map(preview_row).collect();
            // NUMBER and FLOAT columns are right-aligned.
            let numeric: Vec<bool> = declared
                .iter()
                .map(|d| {
                    d.as_deref().is_some_and(|d| {
                        crate::convert::output::number_scale(d).is_some()
                            || d.eq_ignore_ascii_case("FLOAT")
                    })
                })
                .collect();
            cache.insert(
                name,
                (
                    rows,
                    Instant::now(),
                    json!({"columns": cols, "numeric": numeric, "rows": data}),
                ),
            );
        }
    }
    let cache = cache.previews.lock().unwrap_or_else(|e| e.into_inner());
    Value::Object(
        tables
            .iter()
            .filter_map(|(name, _)| cache.get(name).map(|(_, _, v)| (name.clone(), v.clone())))
            .collect(),
    )
}

/// One preview row: every value as the text `snowpipe-emulator query` prints (numbers too, so
/// the page shows `18446744073709551615` and `3194301642615.2778` as they are, where a
/// JavaScript number would round them), clipped to [`MAX_CELL`] characters.
fn preview_row(row: Vec<Value>) -> Value {
    Value::Array(
        row.into_iter()
            .map(|v| match v {
                Value::String(s) => Value::String(clip(&s)),
                Value::Number(n) => Value::String(n.to_string()),
                other => other,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_only_for_clients_that_ask_for_it() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert!(!wants_html(&h));
        h.insert(
            header::ACCEPT,
            "text/html,application/xhtml+xml,*/*;q=0.8".parse().unwrap(),
        );
        assert!(wants_html(&h));
    }

    #[test]
    fn long_values_are_clipped() {
        assert_eq!(clip("abc"), "abc");
        let long = "x".repeat(500);
        let c = clip(&long);
        assert_eq!(c.chars().count(), MAX_CELL);
        assert!(c.ends_with('…'));
    }
}
