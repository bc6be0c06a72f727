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
    /// What kind of failure: it gives the error table's `ERROR_CODE`.
    pub kind: RowErrorKind,
    /// A Snowflake-like message, e.g. `Numeric value 'abc' is not recognized`.
    pub message: String,
}

impl RowError {
    pub(super) fn column(column: &Column, kind: RowErrorKind, message: impl Into<String>) -> Self {
        Self {
            column: Some(column.name.clone()),
            kind,
            message: message.into(),
        }
    }

    /// Snowflake's error code for this failure, the error table's `ERROR_CODE`.
    pub fn code(&self) -> u32 {
        self.kind.code()
    }
}

/// The kinds of row failure, each with Snowflake's error code and SQLSTATE for it, as its
/// SQL statements answer the same failure (docs/protocol-types-and-sql.md "Table features"; the codes marked
/// *guessed* there are the emulator's choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowErrorKind {
    /// A NOT NULL column is NULL or missing: `100072` (`NULL result in a non-nullable column`).
    NullInNotNullColumn,
    /// Not a number: `100038` (`Numeric value '…' is not recognized`).
    NumberNotRecognized,
    /// A number beyond the column's precision, or beyond a double: `100039` (`Numeric value
    /// '…' is out of range`).
    NumberOutOfRange,
    /// Not a boolean: `100037` (`Boolean value '…' is not recognized`).
    BooleanNotRecognized,
    /// Not a date: `100040` (`Date '…' is not recognized`).
    DateNotRecognized,
    /// Not a time: `100108` (guessed).
    TimeNotRecognized,
    /// Not a timestamp, or outside years 1 to 9999: `100035` (`Timestamp '…' is not
    /// recognized`).
    TimestampNotRecognized,
    /// A string longer than its `VARCHAR(n)`, or a binary value longer than its `BINARY(n)`:
    /// `100078` (`String '…' is too long and would be truncated`; guessed for BINARY).
    ValueTooLong,
    /// A string beyond 16 MB: `100082` (`Max LOB size (16777216) exceeded`).
    LobTooLarge,
    /// Not binary in the input format: `100115` (`The following string is not a legal
    /// hex-encoded value`).
    BinaryNotRecognized,
    /// A line, or the text of an OBJECT value, that is not JSON; or a line that is JSON but
    /// not an object (guessed): `100069` (`Error parsing JSON`).
    InvalidJson,
    /// A value of the wrong JSON type for an OBJECT column: `100071` (`Failed to cast variant
    /// value … to OBJECT`).
    VariantCast,
    /// A pipe transform divided by zero: `100051` (`Division by zero`).
    DivisionByZero,
}

impl RowErrorKind {
    /// Snowflake's error code.
    pub fn code(self) -> u32 {
        match self {
            Self::NullInNotNullColumn => 100_072,
            Self::NumberNotRecognized => 100_038,
            Self::NumberOutOfRange => 100_039,
            Self::BooleanNotRecognized => 100_037,
            Self::DateNotRecognized => 100_040,
            Self::TimeNotRecognized => 100_108,
            Self::TimestampNotRecognized => 100_035,
            Self::ValueTooLong => 100_078,
            Self::LobTooLarge => 100_082,
            Self::BinaryNotRecognized => 100_115,
            Self::InvalidJson => 100_069,
            Self::VariantCast => 100_071,
            Self::DivisionByZero => 100_051,
        }
    }

    /// Every kind, with the start of its messages (SQL `LIKE` patterns).
    const PATTERNS: [(Self, &'static str); 14] = [
        (
            Self::NullInNotNullColumn,
            "NULL result in a non-nullable column%",
        ),
        (
            Self::NumberNotRecognized,
            "Numeric value % is not recognized%",
        ),
        (Self::NumberOutOfRange, "Numeric value % is out of range%"),
        (Self::BooleanNotRecognized, "Boolean value %"),
        (Self::DateNotRecognized, "Date %"),
        (Self::TimeNotRecognized, "Time '%"),
        (Self::TimestampNotRecognized, "Timestamp %"),
        (Self::ValueTooLong, "User character length limit%"),
        (Self::ValueTooLong, "Binary value of %"),
        (Self::LobTooLarge, "String of %"),
        (Self::BinaryNotRecognized, "Can't parse %"),
        (Self::VariantCast, "Failed to cast variant value%"),
        (Self::DivisionByZero, "Division by zero%"),
        (Self::InvalidJson, "%JSON%"),
    ];

    /// The kind of a row error from its message (the message of a pipe transform's
    /// expression names its failure as Snowflake words it); a failure no pattern names is a
    /// failed cast ([`RowErrorKind::VariantCast`]).
    pub(crate) fn from_message(message: &str) -> Self {
        Self::PATTERNS
            .iter()
            .find(|(_, pattern)| like(message, pattern))
            .map_or(Self::VariantCast, |(kind, _)| *kind)
    }

    /// A SQL expression giving the code of the row error whose message is in `column`, for
    /// error tables written before codes were stored (every message of this module matches a
    /// pattern; anything else reads as [`RowErrorKind::InvalidJson`]).
    pub(crate) fn code_from_message_sql(column: &str) -> String {
        let mut sql = String::from("CASE");
        for (kind, pattern) in Self::PATTERNS {
            sql.push_str(&format!(
                " WHEN {column} LIKE '{}' THEN {}",
                pattern.replace('\'', "''"),
                kind.code()
            ));
        }
        sql.push_str(&format!(" ELSE {} END", Self::InvalidJson.code()));
        sql
    }

    /// The SQLSTATE Snowflake answers with the code.
    pub fn sql_state(self) -> &'static str {
        match self {
            Self::NumberNotRecognized | Self::BooleanNotRecognized => "22018",
            Self::NumberOutOfRange => "22003",
            Self::DateNotRecognized | Self::TimeNotRecognized | Self::TimestampNotRecognized => {
                "22007"
            }
            Self::InvalidJson => "22P02",
            Self::DivisionByZero => "22012",
            Self::NullInNotNullColumn
            | Self::ValueTooLong
            | Self::LobTooLarge
            | Self::BinaryNotRecognized
            | Self::VariantCast => "22000",
        }
    }
}

/// SQL `LIKE` with `%` wildcards only (the patterns above).
fn like(text: &str, pattern: &str) -> bool {
    let mut parts = pattern.split('%');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
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

impl std::str::FromStr for BinaryFormat {
    type Err = String;

    /// `hex`, `base64` or `utf8` (also `utf-8`), in any case.
    ///
    /// # Errors
    ///
    /// A message naming the accepted values.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hex" => Ok(Self::Hex),
            "base64" => Ok(Self::Base64),
            "utf8" | "utf-8" => Ok(Self::Utf8),
            other => Err(format!(
                "unknown binary format {other:?}; use hex (Snowflake's default \
                 BINARY_INPUT_FORMAT), base64 or utf8"
            )),
        }
    }
}

/// Snowflake's default `TIMEZONE` parameter: `America/Los_Angeles`.
pub const DEFAULT_TIMEZONE: chrono_tz::Tz = chrono_tz::America::Los_Angeles;

/// Options of a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvertOptions {
    /// How BINARY columns read strings; default hex.
    pub binary_format: BinaryFormat,
    /// The session time zone (Snowflake's `TIMEZONE` parameter; default
    /// [`DEFAULT_TIMEZONE`]): epoch numbers become wall clocks in it for TIMESTAMP_NTZ, DATE
    /// and TIME, and strings without an offset are read in it for TIMESTAMP_LTZ and
    /// TIMESTAMP_TZ.
    pub timezone: chrono_tz::Tz,
    /// When the rows were ingested: `METADATA$START_SCAN_TIME` and `CURRENT_TIMESTAMP` in a
    /// pipe transform. `None`: the time of the conversion.
    pub scan_time: Option<chrono::DateTime<chrono::Utc>>,
    /// When a pipe transform's rows stop being evaluated: past it, each remaining row of the
    /// append is a row error (docs/SECURITY.md "A pipe's per-row cost"). `None`: no deadline
    /// (one row's work is bounded still).
    pub deadline: Option<std::time::Instant>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            binary_format: BinaryFormat::default(),
            timezone: DEFAULT_TIMEZONE,
            scan_time: None,
            deadline: None,
        }
    }
}

pub(super) fn cast_error(column: &Column, value: &Value, target: &str) -> RowError {
    RowError::column(
        column,
        RowErrorKind::VariantCast,
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

/// The longest pipe-evaluation message kept, in characters: one quotes the value it could not
/// use (up to 16 MiB), and a message is kept in the channel's `last_error` and in each
/// error-table row.
const MAX_MESSAGE_CHARS: usize = 1_000;

/// `message` cut to [`MAX_MESSAGE_CHARS`], saying how much was cut.
pub(super) fn bounded_message(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}... ({} more bytes)", &message[..at], message.len() - at),
        None => message,
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    /// A pipe transform's failure gets the code of what it says (as error-table rows written
    /// before codes were stored do): the code is never left to chance.
    #[test]
    fn a_message_names_its_kind() {
        for (message, kind) in [
            (
                "Numeric value 'x' is not recognized",
                RowErrorKind::NumberNotRecognized,
            ),
            (
                "Boolean value 'maybe' is not recognized",
                RowErrorKind::BooleanNotRecognized,
            ),
            ("Division by zero", RowErrorKind::DivisionByZero),
            ("Error parsing JSON: EOF", RowErrorKind::InvalidJson),
            (
                "Time '25:00' is not recognized",
                RowErrorKind::TimeNotRecognized,
            ),
            (
                "a path applies to a VARIANT, not to 'a'",
                RowErrorKind::VariantCast,
            ),
        ] {
            assert_eq!(RowErrorKind::from_message(message), kind, "{message}");
        }
        assert_eq!(RowErrorKind::DivisionByZero.code(), 100_051);
    }
}
