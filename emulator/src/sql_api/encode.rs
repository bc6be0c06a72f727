//! Values encoded by their column's declared Snowflake type, as the SQL API sends them: numbers
//! at their scale, dates as epoch days, times and timestamps as epoch seconds with their
//! fraction (and offset), binary as hex, semi-structured values as JSON text.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rusqlite::types::ValueRef;
use serde_json::{json, Value};

use crate::base::float_text::float_text_for_sql_api;
use crate::convert::output::{binary_text, number_text};

/// A result column's type: from its declaration, else from its first non-NULL value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Fixed {
        precision: u32,
        scale: u32,
    },
    Real,
    Text,
    Boolean,
    Date,
    /// `TIME(scale)`.
    Time(u32),
    /// `TIMESTAMP_*(scale)`: the SQL API's type name and the scale.
    Timestamp(&'static str, u32),
    Binary,
    Json(&'static str),
}

/// The length a declared `VARCHAR(n)`/`BINARY(n)` gives (without one, Snowflake's longest:
/// 16,777,216 characters, 8,388,608 bytes), as Snowflake's rowType `length`; `None` for
/// other types.
pub(super) fn declared_length(decl: &str) -> Option<u64> {
    let upper = decl.to_ascii_uppercase();
    let base = upper.split('(').next().unwrap_or("").trim();
    let arg = || upper.split(['(', ')']).nth(1)?.trim().parse().ok();
    match base {
        "VARCHAR" => Some(arg().unwrap_or(16_777_216)),
        "BINARY" => Some(arg().unwrap_or(8_388_608)),
        _ => None,
    }
}

impl Kind {
    pub(super) fn declared(decl: &str) -> Self {
        let upper = decl.to_ascii_uppercase();
        let base = upper.split('(').next().unwrap_or("").trim();
        let args: Vec<u32> = upper
            .split(['(', ')', ','])
            .skip(1)
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let fraction = args.first().copied().unwrap_or(9).min(9);
        match base {
            "NUMBER" => Self::Fixed {
                precision: args.first().copied().unwrap_or(38),
                scale: args.get(1).copied().unwrap_or(0),
            },
            "FLOAT" => Self::Real,
            "BOOLEAN" => Self::Boolean,
            "DATE" => Self::Date,
            "TIME" => Self::Time(fraction),
            "TIMESTAMP_NTZ" => Self::Timestamp("timestamp_ntz", fraction),
            "TIMESTAMP_LTZ" => Self::Timestamp("timestamp_ltz", fraction),
            "TIMESTAMP_TZ" => Self::Timestamp("timestamp_tz", fraction),
            "BINARY" => Self::Binary,
            "VARIANT" => Self::Json("variant"),
            "OBJECT" => Self::Json("object"),
            "ARRAY" => Self::Json("array"),
            _ => Self::Text,
        }
    }

    /// The kind of an expression column, from its first value.
    pub(super) fn of_value(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Integer(_) => Self::Fixed {
                precision: 38,
                scale: 0,
            },
            ValueRef::Real(_) => Self::Real,
            ValueRef::Blob(_) => Self::Binary,
            ValueRef::Null | ValueRef::Text(_) => Self::Text,
        }
    }

    pub(super) fn row_type(&self, name: &str) -> Value {
        let (ty, precision, scale) = match self {
            Self::Fixed { precision, scale } => ("fixed", Some(*precision), Some(*scale)),
            Self::Real => ("real", None, None),
            Self::Text => ("text", None, None),
            Self::Boolean => ("boolean", None, None),
            Self::Date => ("date", None, None),
            Self::Time(scale) => ("time", None, Some(*scale)),
            Self::Timestamp(t, scale) => (*t, None, Some(*scale)),
            Self::Binary => ("binary", None, None),
            Self::Json(t) => (*t, None, None),
        };
        json!({"name": name, "type": ty, "precision": precision, "scale": scale,
               "nullable": true, "database": "", "schema": "", "table": ""})
    }

    /// The fewest bytes `v` takes in the answer, known before it is encoded: a binary's hex
    /// is twice its length, a text kept as text at least its length (JSON escaping only
    /// adds), plus the quotes and the comma; 0 for what encoding may shorten.
    pub(super) fn encoded_len_at_least(&self, v: ValueRef<'_>) -> usize {
        match (self, v) {
            (Self::Binary, ValueRef::Blob(b)) => 2 * b.len() + 3,
            (Self::Text | Self::Json(_), ValueRef::Text(t)) => t.len() + 3,
            (Self::Text | Self::Json(_), ValueRef::Blob(b)) => 2 * b.len() + 3,
            _ => 0,
        }
    }

    pub(super) fn encode(&self, v: ValueRef<'_>) -> Value {
        let text = match v {
            ValueRef::Null => return Value::Null,
            ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            _ => None,
        };
        let s = match (self, v) {
            // INTEGER, REAL or the BLOB of an exact decimal (see `convert/`), at the scale.
            (Self::Fixed { scale, .. }, _) => number_text(v, *scale).unwrap_or_default(),
            (Self::Real, ValueRef::Real(f)) => float_text_for_sql_api(f),
            (Self::Real, ValueRef::Integer(i)) => float_text_for_sql_api(i as f64),
            (Self::Boolean, ValueRef::Integer(i)) => (i != 0).to_string(),
            (Self::Binary, ValueRef::Blob(b)) => binary_text(b),
            (Self::Date, _) => match text
                .as_deref()
                .and_then(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok())
            {
                Some(d) => (d - NaiveDate::default()).num_days().to_string(),
                None => text.unwrap_or_default(),
            },
            (Self::Time(scale), _) => match text
                .as_deref()
                .and_then(|t| NaiveTime::parse_from_str(t, "%H:%M:%S%.f").ok())
            {
                Some(t) => {
                    let secs = t.signed_duration_since(NaiveTime::MIN);
                    seconds_text(i128::from(secs.num_nanoseconds().unwrap_or(0)), *scale)
                }
                None => text.unwrap_or_default(),
            },
            (Self::Timestamp(kind, scale), _) => {
                let raw = text.clone().unwrap_or_default();
                // TIMESTAMP_TZ is stored as the wall clock and its offset (`…+05:30`), LTZ in
                // UTC (`…Z`), NTZ as the wall clock.
                let (wall, offset_minutes) = split_offset(&raw);
                match NaiveDateTime::parse_from_str(wall, "%Y-%m-%d %H:%M:%S%.f") {
                    Ok(ts) => {
                        let local = ts.and_utc();
                        let total = i128::from(local.timestamp()) * 1_000_000_000
                            + i128::from(local.timestamp_subsec_nanos())
                            - i128::from(offset_minutes) * 60_000_000_000;
                        let base = seconds_text(total, *scale);
                        if *kind == "timestamp_tz" {
                            // The SQL API's TIMESTAMP_TZ: UTC epoch, then offset minutes + 1440.
                            format!("{base} {}", offset_minutes + 1440)
                        } else {
                            base
                        }
                    }
                    Err(_) => raw,
                }
            }
            (_, ValueRef::Integer(i)) => i.to_string(),
            (_, ValueRef::Real(f)) => float_text_for_sql_api(f),
            (_, ValueRef::Blob(b)) => binary_text(b),
            _ => text.unwrap_or_default(),
        };
        Value::String(s)
    }
}

/// `[-]seconds[.fraction]` from nanoseconds, with `scale` fractional digits (truncated).
fn seconds_text(nanos: i128, scale: u32) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.abs();
    let whole = abs / 1_000_000_000;
    if scale == 0 {
        return format!("{sign}{whole}");
    }
    let fraction = format!("{:09}", abs % 1_000_000_000);
    format!("{sign}{whole}.{}", &fraction[..scale.min(9) as usize])
}

/// A stored timestamp → (wall clock text, offset in minutes): `…Z` and no suffix are UTC,
/// `…+hh:mm`/`…-hh:mm` the offset.
fn split_offset(raw: &str) -> (&str, i32) {
    if let Some(wall) = raw.strip_suffix('Z') {
        return (wall, 0);
    }
    // The offset follows the time, so look for its sign after the date's dashes.
    match raw.get(10..).and_then(|rest| rest.rfind(['+', '-'])) {
        Some(i) => {
            let at = 10 + i;
            let sign = if raw.as_bytes()[at] == b'-' { -1 } else { 1 };
            let digits: String = raw[at + 1..].chars().filter(char::is_ascii_digit).collect();
            let hours = digits.get(..2).and_then(|h| h.parse::<i32>().ok());
            let minutes = digits
                .get(2..4)
                .and_then(|m| m.parse::<i32>().ok())
                .unwrap_or(0);
            match hours {
                Some(h) => (&raw[..at], sign * (h * 60 + minutes)),
                None => (raw, 0),
            }
        }
        None => (raw, 0),
    }
}

/// A statement's whole answer when it is one row of one text column (what DDL and the
/// `SYSTEM$` functions answer), with the SQL API's success envelope.
pub(crate) fn one_text_row(column: &str, value: &str, handle: &str) -> serde_json::Value {
    text_rows(&[column], &[vec![value.to_owned()]], handle)
}

/// A SQL API answer of text `columns` and `rows` (one partition).
pub(crate) fn text_rows(columns: &[&str], rows: &[Vec<String>], handle: &str) -> serde_json::Value {
    let row_type = columns.iter().map(|c| Kind::Text.row_type(c)).collect();
    success(handle, row_type, rows.iter().map(|r| json!(r)).collect())
}

/// The SQL API's success envelope of statement `handle`: one partition of the rows `data`,
/// whose columns `row_type` describes.
pub(crate) fn success(handle: &str, row_type: Vec<Value>, data: Vec<Value>) -> Value {
    let num_rows = data.len();
    json!({
        "code": "090001",
        "sqlState": "00000",
        "message": "Statement executed successfully.",
        "statementHandle": handle,
        "statementStatusUrl": format!("/api/v2/statements/{handle}"),
        "createdOn": crate::base::clock::Clock::new().now_ms(),
        "resultSetMetaData": {
            "numRows": num_rows,
            "format": "jsonv2",
            "partitionInfo": [{"rowCount": num_rows}],
            "rowType": row_type,
        },
        "data": data,
    })
}
