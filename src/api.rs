//! Serde wire types of the Snowpipe Streaming REST API (protocol.md §4).
//!
//! Deserialization is lenient: unknown fields are ignored, optional fields may be missing or
//! `null`, and error bodies may use `code` or `error_code`, or be a bare JSON string.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Body of `PUT …/channels/{channel}` (open or reopen).
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct OpenChannelRequest {
    /// Sets the channel's committed offset token at open (a reset); omitted when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) offset_token: Option<String>,
    /// When true the server answers 409 `ERR_CHANNEL_HAS_UNCOMMITTED_DATA` instead of
    /// discarding rows still in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fail_on_uncommitted_rows: Option<bool>,
}

/// Response of open channel.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OpenChannelResponse {
    pub(crate) next_continuation_token: String,
    pub(crate) channel_status: ChannelStatusWire,
}

/// Response of append rows.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AppendRowsResponse {
    pub(crate) next_continuation_token: String,
}

/// Body of `:bulk-channel-status`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BulkChannelStatusRequest<'a> {
    pub(crate) channel_names: &'a [String],
}

/// Response of `:bulk-channel-status`: unknown channels are absent from the map.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BulkChannelStatusResponse {
    #[serde(default)]
    pub(crate) channel_statuses: HashMap<String, ChannelStatusWire>,
}

/// Response of drop channel (the docs say no payload; the official SDK parses this).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct DropChannelResponse {
    #[serde(default)]
    pub(crate) last_committed_offset_token: Option<String>,
}

/// A channel's status as the server reports it (protocol.md §4.3, §4.7).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct ChannelStatusWire {
    #[serde(default)]
    pub(crate) database_name: Option<String>,
    #[serde(default)]
    pub(crate) schema_name: Option<String>,
    #[serde(default)]
    pub(crate) pipe_name: Option<String>,
    #[serde(default)]
    pub(crate) channel_name: Option<String>,
    /// `"SUCCESS"` when healthy.
    #[serde(default)]
    pub(crate) channel_status_code: Option<String>,
    #[serde(default, alias = "latest_offset_token")]
    pub(crate) last_committed_offset_token: Option<String>,
    #[serde(default)]
    pub(crate) created_on_ms: Option<i64>,
    #[serde(default)]
    pub(crate) rows_inserted: Option<u64>,
    #[serde(default)]
    pub(crate) rows_parsed: Option<u64>,
    #[serde(default, alias = "rows_errors")]
    pub(crate) rows_error_count: Option<u64>,
    #[serde(default)]
    pub(crate) last_error_offset_upper_bound: Option<String>,
    #[serde(default)]
    pub(crate) last_error_message: Option<String>,
    #[serde(default, alias = "last_error_timestamp")]
    pub(crate) last_error_timestamp_ms: Option<i64>,
    #[serde(default)]
    pub(crate) snowflake_avg_processing_latency_ms: Option<i64>,
}

/// An error body: `{"code"|"error_code": "...", "message": "..."}` or a bare JSON string.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ErrorBody {
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
}

impl ErrorBody {
    /// Parses an error body; `None` when the body is not JSON at all (e.g. an HTML proxy page).
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Obj {
            #[serde(default)]
            code: Option<serde_json::Value>,
            #[serde(default)]
            error_code: Option<serde_json::Value>,
            #[serde(default)]
            message: Option<String>,
        }
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        match value {
            serde_json::Value::String(s) => Some(Self {
                code: Some(s),
                message: None,
            }),
            serde_json::Value::Object(_) => {
                let obj: Obj = serde_json::from_value(value).ok()?;
                let code = obj.code.or(obj.error_code).and_then(|v| match v {
                    serde_json::Value::String(s) => Some(s),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
                Some(Self {
                    code,
                    message: obj.message,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_forms() {
        let a = ErrorBody::parse(br#"{"code":"STALE_CONTINUATION_TOKEN_SEQUENCER","message":"m"}"#)
            .unwrap();
        assert_eq!(
            a.code.as_deref(),
            Some("STALE_CONTINUATION_TOKEN_SEQUENCER")
        );
        assert_eq!(a.message.as_deref(), Some("m"));
        let b = ErrorBody::parse(br#"{"error_code":"ERR_X","message":"m","extra":1}"#).unwrap();
        assert_eq!(b.code.as_deref(), Some("ERR_X"));
        let c = ErrorBody::parse(br#""ERR_GENERAL_EXCEPTION_RETRY_REQUEST""#).unwrap();
        assert_eq!(
            c.code.as_deref(),
            Some("ERR_GENERAL_EXCEPTION_RETRY_REQUEST")
        );
        let d = ErrorBody::parse(br#"{"code":390114,"message":"expired"}"#).unwrap();
        assert_eq!(d.code.as_deref(), Some("390114"));
        assert_eq!(ErrorBody::parse(b"<html>nope</html>"), None);
    }

    #[test]
    fn status_tolerates_missing_and_unknown_fields() {
        let s: ChannelStatusWire = serde_json::from_str(
            r#"{"channel_status_code":"SUCCESS","rows_inserted":3,"new_field":true,"last_committed_offset_token":null}"#,
        )
        .unwrap();
        assert_eq!(s.channel_status_code.as_deref(), Some("SUCCESS"));
        assert_eq!(s.rows_inserted, Some(3));
        assert_eq!(s.last_committed_offset_token, None);
    }
}
