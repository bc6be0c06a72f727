//! The conversion's vocabulary: the SQLite value a JSON value becomes, the row error a failed
//! conversion gives, how BINARY columns read strings, and the messages' value text.

use std::fmt;

use rusqlite::types::{ToSqlOutput, ValueRef};
use serde_json::Value;

use crate::catalog::Column;

/// A value ready to bind in SQLite.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// An exact NUMBER that neither INTEGER nor REAL gives back exactly at its column's
    /// scale: its decimal text (e.g. `123456789012345678901234567890`), stored as a BLOB of
    /// that text, because SQLite's NUMERIC affinity would turn TEXT into a REAL.
    Decimal(String),
    /// The next value of the column's `AUTOINCREMENT`/`IDENTITY` sequence, numbered by the
    /// storage when the row is written (so values follow commit order); bound as NULL if
    /// anything else binds it.
    NextIdentity,
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Null => ValueRef::Null,
            Self::Integer(i) => ValueRef::Integer(*i),
            Self::Real(f) => ValueRef::Real(*f),
            Self::Text(s) => ValueRef::Text(s.as_bytes()),
            Self::Blob(b) => ValueRef::Blob(b),
            Self::Decimal(d) => ValueRef::Blob(d.as_bytes()),
            Self::NextIdentity => ValueRef::Null,
        }))
    }
}

/// Why a row was rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    /// The column whose value failed, if the failure is about one column.
    pub column: Option<String>,
    /// A Snowflake-like message, e.g. `Numeric value 'abc' is not recognized`.
    pub message: String,
}

impl RowError {
    pub(super) fn column(column: &Column, message: impl Into<String>) -> Self {
        Self {
            column: Some(column.name.clone()),
            message: message.into(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "{} (column \"{column}\")", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for RowError {}

/// How BINARY columns read JSON strings (Snowflake's `BINARY_INPUT_FORMAT`, whose default
/// is `HEX`; the emulator's `:pipe-info` says so, which makes the official SDK send hex).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BinaryFormat {
    /// Base64 (standard alphabet, padding optional, whitespace ignored).
    Base64,
    /// Hexadecimal, either case (whitespace ignored): the default.
    #[default]
    Hex,
    /// The string's UTF-8 bytes.
    Utf8,
}

impl BinaryFormat {
    /// The `BINARY_INPUT_FORMAT` value: `HEX`, `BASE64` or `UTF-8`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Base64 => "BASE64",
            Self::Hex => "HEX",
            Self::Utf8 => "UTF-8",
        }
    }
}

/// Options of a conversion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConvertOptions {
    /// How BINARY columns read strings; default hex.
    pub binary_format: BinaryFormat,
    /// When the rows were ingested: `METADATA$START_SCAN_TIME` and `CURRENT_TIMESTAMP` in a
    /// pipe transform. `None`: the time of the conversion.
    pub scan_time: Option<chrono::DateTime<chrono::Utc>>,
}

pub(super) fn cast_error(column: &Column, value: &Value, target: &str) -> RowError {
    RowError::column(
        column,
        format!(
            "Failed to cast variant value {} to {target}",
            truncate(&value.to_string(), 100)
        ),
    )
}

/// The text of a scalar for messages: strings without quotes, others as JSON.
pub(super) fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => truncate(s, 100),
        other => truncate(&other.to_string(), 100),
    }
}

pub(super) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}
