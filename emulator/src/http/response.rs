//! The shapes of responses: JSON, text, API errors and injected faults.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use serde_json::{json, Value};

use crate::base::api_error::ApiError;
use crate::base::faults::FaultAction;

/// Every response's body: complete, never streamed.
pub(crate) type Body = http_body_util::Full<Bytes>;

/// Marker extension: close the connection instead of sending this response (lost ack).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropResponse;

pub(super) fn json_response(status: u16, v: &Value) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap_or_default()
}

pub(super) fn text_response(status: u16, text: String, content_type: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, text.len())
        .body(Body::from(text))
        .unwrap_or_default()
}

pub(super) fn error_response(e: &ApiError) -> Response<Body> {
    match &e.sql_state {
        Some(state) => json_response(
            e.status,
            &json!({"code": e.code, "message": e.message, "sqlState": state}),
        ),
        None => json_response(e.status, &json!({"code": e.code, "message": e.message})),
    }
}

pub(super) fn fault_response(a: &FaultAction) -> Response<Body> {
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
