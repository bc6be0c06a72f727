//! Serde wire types of the Snowpipe Streaming REST API (docs/protocol-wire.md §4).
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

/// Body of `POST …/pipes/{pipe}:pipe-info`: what the official SDK sends (docs/protocol.md
/// §4.2).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PipeInfoRequest {
    pub(crate) generate_new_token: bool,
    pub(crate) encryption_version: &'static str,
}

impl Default for PipeInfoRequest {
    fn default() -> Self {
        Self {
            generate_new_token: true,
            encryption_version: "AES-CTR-128.1",
        }
    }
}

/// Response of `:pipe-info`: only the parameters the SDK uses (the stage locations and keys
/// serve the official SDK's file mode, which this SDK does not use).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PipeInfoResponse {
    #[serde(default)]
    pub(crate) parameter_overrides: Option<ParameterOverrides>,
}

/// `parameter_overrides` of `:pipe-info`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ParameterOverrides {
    /// `HEX`, `BASE64` or `UTF-8`; absent means `BASE64` to the official SDK.
    #[serde(default)]
    pub(crate) binary_input_format: Option<String>,
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

/// A channel's status as the server reports it (docs/protocol-wire.md §4.3, §4.7; docs/protocol.md
/// "Channel status").
///
/// Parsed leniently, never failing a response over an optional field: the reference lists
/// two spellings of some fields (`rows_error_count` / `rows_errors`,
/// `last_error_timestamp_ms` / `last_error_timestamp`, `last_committed_offset_token` /
/// `latest_offset_token`), either or both may arrive; the first spelling wins when both hold a
/// usable value. Counters and timestamps may be numbers or strings (a timestamp string may
/// be epoch milliseconds or RFC 3339); a value of the wrong type reads as absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ChannelStatusWire {
    pub(crate) database_name: Option<String>,
    pub(crate) schema_name: Option<String>,
    pub(crate) pipe_name: Option<String>,
    pub(crate) channel_name: Option<String>,
    /// `"SUCCESS"` when healthy (see [`status_code_is_invalid`]).
    pub(crate) channel_status_code: Option<String>,
    pub(crate) last_committed_offset_token: Option<String>,
    pub(crate) created_on_ms: Option<i64>,
    pub(crate) rows_inserted: Option<u64>,
    pub(crate) rows_parsed: Option<u64>,
    pub(crate) rows_error_count: Option<u64>,
    pub(crate) last_error_offset_upper_bound: Option<String>,
    pub(crate) last_error_message: Option<String>,
    pub(crate) last_error_timestamp_ms: Option<i64>,
    pub(crate) snowflake_avg_processing_latency_ms: Option<i64>,
}

impl<'de> Deserialize<'de> for ChannelStatusWire {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde_json::Value;
        // Duplicate keys in the JSON text: the map keeps the last, never an error.
        let map = serde_json::Map::<String, Value>::deserialize(d)?;
        let first = |names: &[&str], read: &dyn Fn(&Value) -> Option<Value>| {
            names.iter().find_map(|n| map.get(*n).and_then(read))
        };
        let text = |names: &[&str]| {
            first(names, &|v| match v {
                Value::String(s) => Some(Value::String(s.clone())),
                Value::Number(n) => Some(Value::String(n.to_string())),
                _ => None,
            })
            .and_then(|v| v.as_str().map(str::to_owned))
        };
        let int = |names: &[&str]| first(names, &|v| lenient_i64(v).map(Value::from))?.as_i64();
        let count = |names: &[&str]| int(names).and_then(|n| u64::try_from(n).ok());
        let millis = |names: &[&str]| first(names, &|v| epoch_ms(v).map(Value::from))?.as_i64();
        Ok(Self {
            database_name: text(&["database_name"]),
            schema_name: text(&["schema_name"]),
            pipe_name: text(&["pipe_name"]),
            channel_name: text(&["channel_name"]),
            channel_status_code: text(&["channel_status_code"]),
            last_committed_offset_token: text(&[
                "last_committed_offset_token",
                "latest_offset_token",
                "latest_committed_offset_token",
            ]),
            created_on_ms: millis(&["created_on_ms", "created_on"]),
            rows_inserted: count(&["rows_inserted", "rows_inserted_count"]),
            rows_parsed: count(&["rows_parsed", "rows_parsed_count"]),
            rows_error_count: count(&["rows_error_count", "rows_errors"]),
            last_error_offset_upper_bound: text(&[
                "last_error_offset_upper_bound",
                "last_error_offset_token_upper_bound",
            ]),
            last_error_message: text(&["last_error_message"]),
            last_error_timestamp_ms: millis(&["last_error_timestamp_ms", "last_error_timestamp"]),
            snowflake_avg_processing_latency_ms: int(&["snowflake_avg_processing_latency_ms"]),
        })
    }
}

/// A JSON number or numeric string as an integer (a float is truncated).
fn lenient_i64(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        serde_json::Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f as i64)
            })
        }
        _ => None,
    }
}

/// A timestamp as epoch milliseconds: a number (seconds when it is below 10^11, i.e. before
/// 1973 read as milliseconds), a numeric string, or an RFC 3339 string.
fn epoch_ms(v: &serde_json::Value) -> Option<i64> {
    let n = lenient_i64(v).or_else(|| {
        let s = v.as_str()?.trim();
        Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()?
                .timestamp_millis(),
        )
    })?;
    Some(if n.unsigned_abs() < 100_000_000_000 {
        n * 1000
    } else {
        n
    })
}

/// Channel status codes that mean the channel is unusable until reopened (or that the pipe
/// or channel is gone), as listed by Snowflake's error-handling page and the clients in
/// docs/protocol.md "Channel status codes". `SUCCESS` is healthy; the reference's example
/// shows `ACTIVE`; any other unknown code is treated as healthy (and logged once by the
/// caller) so that a new informational code never makes every channel reopen in a loop.
pub(crate) fn status_code_is_invalid(code: &str) -> bool {
    const INVALID: &[&str] = &[
        "ERR_CHANNEL_MUST_BE_REOPENED",
        "ERR_CHANNEL_MUST_BE_REOPENED_DUE_TO_ROW_SEQ_GAP",
        "ERR_CHANNEL_HAS_INVALID_ROW_SEQUENCER",
        "ERR_CHANNEL_HAS_INVALID_CLIENT_SEQUENCER",
        "ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        "ERR_CHANNEL_DOES_NOT_EXIST_OR_IS_NOT_AUTHORIZED",
        "ERR_CHANNEL_NO_LONGER_EXISTS",
        "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        "ERR_TABLE_DOES_NOT_EXIST_NOT_AUTHORIZED",
        "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        "ERR_PIPE_IN_INVALID_STATE",
        "STALE_PIPE_CACHE",
        "STALE_CONTINUATION_TOKEN_SEQUENCER",
    ];
    let code = code.trim();
    if INVALID.iter().any(|c| c.eq_ignore_ascii_case(code)) {
        return true;
    }
    if !code.eq_ignore_ascii_case("SUCCESS") && !code.eq_ignore_ascii_case("ACTIVE") {
        warn_unknown_status_code(code);
    }
    false
}

/// Logs an unknown status code once per code.
fn warn_unknown_status_code(code: &str) {
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut seen = crate::sync::lock(&SEEN);
    if seen.len() < 64 && !seen.iter().any(|c| c == code) {
        seen.push(code.to_owned());
        tracing::warn!(
            status_code = code,
            "unknown channel_status_code from the server; treating the channel as healthy"
        );
    }
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

    /// Every field of a channel status, fed what a hostile or broken server might send:
    /// huge, negative, fractional, NaN-like, non-numeric, nested, empty. Nothing panics;
    /// counters that cannot be counts read as absent, numbers saturate instead of wrapping.
    #[test]
    fn a_status_with_extreme_values_never_panics_and_reads_sanely() {
        let counters = [
            "rows_inserted",
            "rows_parsed",
            "rows_error_count",
            "rows_errors",
        ];
        let times = [
            "created_on_ms",
            "last_error_timestamp_ms",
            "last_error_timestamp",
            "snowflake_avg_processing_latency_ms",
        ];
        let texts = [
            "channel_name",
            "channel_status_code",
            "last_committed_offset_token",
            "last_error_offset_upper_bound",
            "last_error_message",
        ];
        let values = [
            "1e30",
            "-1e30",
            "18446744073709551615",
            "-9223372036854775808",
            "-1",
            "0.5",
            "\"NaN\"",
            "\"inf\"",
            "\"-inf\"",
            "\"1e400\"",
            "\"99999999999999999999999\"",
            "\"not a number\"",
            "\"9999-99-99T99:99:99Z\"",
            "\"\"",
            "null",
            "true",
            "[1,2]",
            "{\"a\":1}",
        ];
        for v in values {
            for k in counters.iter().chain(&times).chain(&texts) {
                let text = format!(r#"{{"{k}": {v}}}"#);
                let status: ChannelStatusWire = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{text}: refused the whole status: {e}"));
                for c in [
                    status.rows_inserted,
                    status.rows_parsed,
                    status.rows_error_count,
                ]
                .into_iter()
                .flatten()
                {
                    // A count from a negative number is never made up.
                    assert!(!v.starts_with('-') && !v.starts_with("\"-"), "{text}: {c}");
                }
            }
        }
        // Large values saturate; fractional ones truncate; the timestamp in seconds scales.
        let s: ChannelStatusWire =
            serde_json::from_str(r#"{"rows_inserted": 1e30, "created_on_ms": 1700000000}"#)
                .unwrap();
        assert_eq!(s.rows_inserted, Some(i64::MAX as u64));
        assert_eq!(s.created_on_ms, Some(1_700_000_000_000));
        let s: ChannelStatusWire =
            serde_json::from_str(r#"{"created_on_ms": -1e30, "last_error_timestamp": 1e30}"#)
                .unwrap();
        assert_eq!(s.created_on_ms, Some(i64::MIN));
        assert_eq!(s.last_error_timestamp_ms, Some(i64::MAX));
    }

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
