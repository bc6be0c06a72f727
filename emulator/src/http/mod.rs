//! HTTP layer: the Host check, the console, routing, auth, fault application and the request
//! log, in front of the protocol operations (`service`). Files: `request` reads a request
//! (route, parameters, body), `response` shapes answers, `auth` checks credentials,
//! `dispatch` runs a routed request, `in_flight` runs it on its own task (a request read
//! whole outlives a client that hangs up) and places a `latency` fault's delay, `console`
//! serves the browser console.

use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::base::faults::{Endpoint, FaultAction};
use crate::base::requests::RequestRecord;
use crate::service::Shared;

mod auth;
mod console;
mod dispatch;
mod host;
mod in_flight;
mod request;
mod response;

use request::{param, query_params, route, token_type, Route};
use response::{error_response, fault_response};
pub(crate) use response::{Body, DropResponse};

/// What the HTTP layer serves from: the protocol state and the console's own cache.
pub(crate) struct App {
    shared: Arc<Shared>,
    console: console::ConsoleCache,
}

impl App {
    pub(crate) fn new(shared: Arc<Shared>) -> Arc<Self> {
        Arc::new(Self {
            shared,
            console: Default::default(),
        })
    }
}

/// Handles one request on its own task ([`in_flight::run`]): a request read whole runs to its
/// end even when the client hangs up. `None` when the runtime is shutting down.
pub(crate) async fn serve(app: Arc<App>, req: Request<Incoming>) -> Option<Response<Body>> {
    in_flight::run(handle(app, req)).await
}

/// Handles one request. Never fails: errors become error responses.
async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let shared = &app.shared;
    let (parts, body) = req.into_parts();
    // Before anything else, the console included (see `host`): not logged, so a page that
    // keeps trying cannot fill the request log.
    if let Err(e) = host::check(
        &parts.headers,
        &parts.uri,
        shared.settings.ingest_host.as_deref(),
    ) {
        tracing::info!(message = %e.message, "request refused");
        return error_response(&e);
    }
    if let Some(page) = console::handle(
        shared,
        &app.console,
        &parts.method,
        parts.uri.path(),
        &parts.headers,
    )
    .await
    {
        return page;
    }
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let params = query_params(&query);
    let route = route(&parts.method, &path);
    let endpoint = route.endpoint();
    let mut record = RequestRecord {
        timestamp_ms: shared.clock.now_ms(),
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
    in_flight::delay(decision.latency);
    let answer = answer(
        shared,
        &route,
        &parts.headers,
        &params,
        body,
        decision,
        &mut record,
    )
    .await;
    in_flight::elapse().await;
    answer.finish(shared, started, record)
}

/// A request's answer, and whether it is to be dropped unanswered (`lost_ack`).
struct Answer {
    response: Response<Body>,
    lost_ack: bool,
}

impl Answer {
    /// Logs the request and returns its response (marked to be dropped for a `lost_ack`).
    fn finish(
        self,
        shared: &Shared,
        started: Instant,
        mut record: RequestRecord,
    ) -> Response<Body> {
        let Self {
            mut response,
            lost_ack,
        } = self;
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
}

/// Applies the fault decision's side effects and answers: its terminal fault, else the
/// dispatched operation.
async fn answer(
    shared: &Arc<Shared>,
    route: &Route,
    headers: &http::HeaderMap,
    params: &[(String, String)],
    body: Incoming,
    decision: crate::base::faults::Decision,
    record: &mut RequestRecord,
) -> Answer {
    if decision.invalidate || decision.bump_sequencer {
        if let Some(key) = channel_key(shared, route) {
            if decision.invalidate {
                shared.invalidate(&key);
            }
            if decision.bump_sequencer {
                shared.bump_sequencer(&key);
            }
        }
    }
    let lost_ack = matches!(decision.terminal, Some(FaultAction::LostAck));
    if let Some(a) = decision.terminal.as_ref().filter(|_| !lost_ack) {
        if let FaultAction::Status {
            code, bare_string, ..
        } = a
        {
            record.error_code = code.clone().or_else(|| bare_string.clone());
        }
        return Answer {
            response: fault_response(a),
            lost_ack,
        };
    }
    let response = match dispatch::dispatch(shared, route, headers, params, body, record).await {
        Ok(r) => r,
        Err(e) => {
            let path = &record.path;
            if e.status >= 500 {
                tracing::warn!(code = %e.code, message = %e.message, %path, "request failed");
            } else {
                tracing::debug!(code = %e.code, message = %e.message, %path, "request rejected");
            }
            record.error_code = Some(e.code.clone());
            error_response(&e)
        }
    };
    Answer { response, lost_ack }
}

fn channel_key(shared: &Shared, route: &Route) -> Option<crate::channels::ChannelKey> {
    let p = route.channel_path()?;
    shared
        .resolve(&p.db, &p.schema, &p.pipe, &p.channel)
        .ok()
        .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::dispatch::host_without_port;
    use super::request::*;
    use http::Method;

    #[test]
    fn routes_decode_segments() {
        let r = route(
            &Method::POST,
            "/v2/streaming/data/databases/my%20db/schemas/S/pipes/P/channels/my%20chan%2F1%C3%A9/rows",
        );
        assert_eq!(
            r,
            Route::Append(ChannelPath {
                db: "my db".into(),
                schema: "S".into(),
                pipe: "P".into(),
                channel: "my chan/1é".into()
            })
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
