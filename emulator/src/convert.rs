//! JSON rows → typed column values, with Snowflake's conversion rules, for storage in SQLite.
//!
//! Columns are matched to JSON keys by name, case-insensitively (`MATCH_BY_COLUMN_NAME =
//! CASE_INSENSITIVE`; an exact match wins over a case-insensitive one). A column missing from
//! the row, or given as JSON `null`, is SQL NULL; keys that match no column are ignored. Any
//! failure rejects the whole row with a [`RowError`].
//!
//! How each Snowflake type is stored in SQLite (the SQLite column is declared with
//! [`ColumnType::sql_name`], so tools show Snowflake types):
//!
//! | Snowflake type | accepted JSON | stored as |
//! | --- | --- | --- |
//! | `NUMBER(p,0)` | numbers, numeric strings (`"123"`, `"1e3"`, `"12.5"` rounds to 13) | INTEGER when it fits `i64`, else exact (see below) |
//! | `NUMBER(p,s>0)` | same | rounded half away from zero to `s` digits, precision checked, then stored exactly (see below) |
//! | `FLOAT` | numbers, numeric strings, `"NaN"`, `"inf"`, `"-inf"`, `"Infinity"`; a finite string beyond a double (`"1e400"`) is out of range | REAL; NaN as TEXT `'NaN'` (SQLite would store NaN as NULL) |
//! | `VARCHAR(n)` | strings as-is; numbers/booleans as their text; objects/arrays as compact JSON | TEXT; at most `n` characters (16 MB without `n`) |
//! | `BOOLEAN` | `true`/`false`; strings `true/false/yes/no/on/off/1/0/t/f/y/n` (any case); numbers (0 = false) | INTEGER 0/1 |
//! | `DATE` | `"YYYY-MM-DD"`, a timestamp string (date part), epoch numbers (see below) | TEXT `YYYY-MM-DD` |
//! | `TIME(p)` | `"HH:MM[:SS[.fffffffff]]"`, a timestamp string (time part) | TEXT `HH:MM:SS.fffffffff` |
//! | `TIMESTAMP_NTZ(p)` | `"YYYY-MM-DD[T ]HH:MM[:SS[.f{1,9}]][offset]"` (offset dropped: wall clock kept), `"YYYY-MM-DD"`, epoch numbers | TEXT `YYYY-MM-DD HH:MM:SS.fffffffff` |
//! | `TIMESTAMP_LTZ(p)` | same; no offset means UTC | converted to UTC, TEXT `YYYY-MM-DD HH:MM:SS.fffffffffZ` |
//! | `TIMESTAMP_TZ(p)` | same; no offset means UTC | the wall clock and its offset, TEXT `YYYY-MM-DD HH:MM:SS.fffffffff+hh:mm` |
//! | `VARIANT` | any JSON; JSON `null` is a VARIANT null (TEXT `null`), a missing key SQL NULL | TEXT of compact JSON (a string is stored as a JSON string: `"abc"` → `"\"abc\""`) |
//! | `OBJECT` / `ARRAY` | a JSON object / array | TEXT of compact JSON |
//! | `BINARY(n)` | a hex string (default, Snowflake's `BINARY_INPUT_FORMAT`), or base64 / UTF-8 text per [`BinaryFormat`]; whitespace ignored | BLOB; at most `n` bytes (8 MB without `n`) |
//!
//! Times and timestamps keep `p` fractional digits (9 when the type has none): the digits
//! past `p` are dropped (truncated, as Snowflake's ingest SDKs do: `12:00:00.1239` in a
//! `TIME(3)` is `12:00:00.123`). The text always has 9 fractional digits (zeros past `p`), so
//! text order is time order, and SQLite's date functions (`strftime`, `datetime`,
//! `julianday`) parse them.
//!
//! Epoch numbers (for DATE and TIMESTAMP_*), as Snowflake reads integer strings: a JSON
//! integer or integer string `v` is seconds when `v < 31536000000`, milliseconds when
//! `v < 31536000000000`, microseconds when `v < 31536000000000000`, else nanoseconds; a
//! number with a fraction is seconds.
//!
//! NUMBER values are stored exactly, never rounded through a double: after rounding to the
//! column's scale, a value is stored as INTEGER when the scale is 0 and it fits `i64`; else
//! as REAL when the nearest double printed with `s` decimals is the exact decimal again (so
//! `0.1234567890` in `NUMBER(38,10)` is a REAL, and the SQL API prints it back as
//! `0.1234567890`); else ([`SqlValue::Decimal`]) as a BLOB of its decimal text
//! (`123456789012345678901234567890`), because SQLite's NUMERIC affinity (from the declared
//! type `NUMBER(..)`) turns TEXT that looks like a number into a REAL. The SQL API and
//! [`crate::storage::query`] give such BLOBs back as their text. Arithmetic in SQL (`SUM`,
//! `+`) reads them as numbers (to about 15 digits); comparisons and `ORDER BY` see a BLOB,
//! which SQLite orders after every number: compare such values in the client.
//!
//! Known limit: JSON integers beyond the `u64` range arrive as `f64` from `serde_json` and keep
//! only 17 significant digits; send such values as strings (as the Python SDK does for
//! `Decimal`).

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use rusqlite::types::{ToSqlOutput, ValueRef};
use serde_json::{Map, Value};

use crate::catalog::{Column, ColumnType, MatchByColumnName, PipeDefinition, Table};

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
    fn column(column: &Column, message: impl Into<String>) -> Self {
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
    fn name(self) -> &'static str {
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
}

/// Converts one NDJSON row (a JSON object) to values in the table's column order, with the
/// default [`ConvertOptions`].
///
/// # Errors
///
/// A [`RowError`] when a NOT NULL column is NULL or missing, a value cannot be converted to
/// its column's type, a string is longer than `VARCHAR(n)`, or a number overflows
/// `NUMBER(p,s)`.
pub fn convert_row(table: &Table, row: &Map<String, Value>) -> Result<Vec<SqlValue>, RowError> {
    convert_row_with(table, row, &ConvertOptions::default())
}

/// Like [`convert_row`], with options.
///
/// # Errors
///
/// As [`convert_row`].
pub fn convert_row_with(
    table: &Table,
    row: &Map<String, Value>,
    options: &ConvertOptions,
) -> Result<Vec<SqlValue>, RowError> {
    convert_matched(table, row, options, true)
}

fn convert_matched(
    table: &Table,
    row: &Map<String, Value>,
    options: &ConvertOptions,
    ignore_case: bool,
) -> Result<Vec<SqlValue>, RowError> {
    let columns = &table.columns;
    let mut slots: Vec<Option<&Value>> = vec![None; columns.len()];
    for (key, value) in row {
        if let Some(i) = columns.iter().position(|c| c.name == *key) {
            slots[i] = Some(value);
        } else if let Some(i) = columns
            .iter()
            .position(|c| ignore_case && same_name_ignoring_case(&c.name, key))
        {
            // An exact match (before or after) wins; else the first case-insensitive one.
            if slots[i].is_none() {
                slots[i] = Some(value);
            }
        }
    }
    columns
        .iter()
        .zip(slots)
        .map(|(column, value)| convert_slot(column, value, options))
        .collect()
}

fn convert_slot(
    column: &Column,
    value: Option<&Value>,
    options: &ConvertOptions,
) -> Result<SqlValue, RowError> {
    match value {
        None | Some(Value::Null) if !column.nullable => Err(RowError::column(
            column,
            "NULL result in a non-nullable column",
        )),
        // A JSON null in a VARIANT is a VARIANT null (the JSON text `null`), not SQL NULL;
        // a missing key is SQL NULL.
        Some(Value::Null) if column.ty == ColumnType::Variant => Ok(SqlValue::Text("null".into())),
        None | Some(Value::Null) => Ok(SqlValue::Null),
        Some(value) => convert_value(column, value, options),
    }
}

/// Converts one row for a declared pipe: by name as the pipe's `MATCH_BY_COLUMN_NAME` says
/// (`CASE_SENSITIVE` matches keys exactly, otherwise case-insensitively), or through its
/// transform `FROM (SELECT $1:A, $1:B::TYPE, ... )`.
///
/// With a transform, the i-th SELECT item fills the i-th target column (the column list
/// after `COPY INTO t`, else the table's columns in order); columns not filled are NULL. A
/// `$1:path` item reads that path (keys case-sensitive, as in Snowflake); `$1` alone is the
/// whole row; other expressions are not evaluated and give NULL. Casts (`::TYPE`) are not
/// applied separately: the value is converted to the target column's type.
///
/// # Errors
///
/// As [`convert_row`].
pub fn convert_row_for_pipe(
    table: &Table,
    pipe: &PipeDefinition,
    row: &Map<String, Value>,
    options: &ConvertOptions,
) -> Result<Vec<SqlValue>, RowError> {
    let Some(transform) = &pipe.transform else {
        let ignore_case = pipe.match_by_column_name != MatchByColumnName::CaseSensitive;
        return convert_matched(table, row, options, ignore_case);
    };
    let columns = &table.columns;
    let mut slots: Vec<Option<Value>> = vec![None; columns.len()];
    for (i, item) in transform.items.iter().enumerate() {
        let target = match &transform.target_columns {
            Some(names) => names
                .get(i)
                .and_then(|name| columns.iter().position(|c| c.name == *name)),
            None => (i < columns.len()).then_some(i),
        };
        let (Some(target), Some(path)) = (target, &item.path) else {
            continue;
        };
        slots[target] = if path.is_empty() {
            Some(Value::Object(row.clone()))
        } else {
            let mut object = Some(row);
            let mut current: Option<&Value> = None;
            for key in path {
                current = object.and_then(|o| o.get(key));
                object = match current {
                    Some(Value::Object(o)) => Some(o),
                    _ => None,
                };
            }
            current.cloned()
        };
    }
    columns
        .iter()
        .zip(&slots)
        .map(|(column, value)| convert_slot(column, value.as_ref(), options))
        .collect()
}

/// Converts one NDJSON line with [`convert_row`].
///
/// Callers skip blank lines (NDJSON allows them); a blank line here is an error.
///
/// # Errors
///
/// A [`RowError`] without a column when the line is not a JSON object, else the errors of
/// [`convert_row`].
pub fn convert_line(table: &Table, line: &[u8]) -> Result<Vec<SqlValue>, RowError> {
    convert_line_with(table, line, &ConvertOptions::default())
}

/// Like [`convert_line`], with options.
///
/// # Errors
///
/// As [`convert_line`].
pub fn convert_line_with(
    table: &Table,
    line: &[u8],
    options: &ConvertOptions,
) -> Result<Vec<SqlValue>, RowError> {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(row)) => convert_row_with(table, &row, options),
        Ok(other) => Err(RowError {
            column: None,
            message: format!(
                "Row is not a JSON object: {}",
                truncate(&other.to_string(), 100)
            ),
        }),
        Err(e) => Err(RowError {
            column: None,
            message: format!("Error parsing JSON: {e}"),
        }),
    }
}

/// `CREATE TABLE IF NOT EXISTS "DB.SCHEMA.TABLE" ("COL" <TYPE>, ...)` for SQLite, with the
/// declared column types from [`ColumnType::sql_name`] (so the SQLite file shows Snowflake
/// types). NOT NULL is enforced by the conversion, not declared.
pub fn sqlite_create_table(table: &Table) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("{} {}", quote_ident(&c.name), c.ty.sql_name()))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        quote_ident(&table.qualified_name()),
        columns.join(", ")
    )
}

/// `INSERT INTO "DB.SCHEMA.TABLE" ("A", "B") VALUES (?1, ?2)`: binds the values of
/// [`convert_row`] in order.
pub fn sqlite_insert(table: &Table) -> String {
    let columns: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let params: Vec<String> = (1..=table.columns.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote_ident(&table.qualified_name()),
        columns.join(", "),
        params.join(", ")
    )
}

/// A SQLite identifier in double quotes, inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn same_name_ignoring_case(column: &str, key: &str) -> bool {
    if column.is_ascii() && key.is_ascii() {
        column.eq_ignore_ascii_case(key)
    } else {
        column.to_uppercase() == key.to_uppercase()
    }
}

fn convert_value(
    column: &Column,
    value: &Value,
    options: &ConvertOptions,
) -> Result<SqlValue, RowError> {
    match &column.ty {
        ColumnType::Number { precision, scale } => number(column, value, *precision, *scale),
        ColumnType::Float => float(column, value),
        ColumnType::Varchar { max_len } => varchar(column, value, *max_len),
        ColumnType::Boolean => boolean(column, value),
        ColumnType::Date => date(column, value),
        ColumnType::Time { scale } => time(column, value, *scale),
        ColumnType::TimestampNtz { scale } => timestamp(column, value, Zone::Wall, *scale),
        ColumnType::TimestampLtz { scale } => timestamp(column, value, Zone::Utc, *scale),
        ColumnType::TimestampTz { scale } => timestamp(column, value, Zone::Offset, *scale),
        ColumnType::Variant => Ok(SqlValue::Text(value.to_string())),
        ColumnType::Object => match value {
            Value::Object(_) => Ok(SqlValue::Text(value.to_string())),
            _ => Err(cast_error(column, value, "OBJECT")),
        },
        ColumnType::Array => match value {
            Value::Array(_) => Ok(SqlValue::Text(value.to_string())),
            _ => Err(cast_error(column, value, "ARRAY")),
        },
        ColumnType::Binary { max_len } => binary(column, value, *max_len, options.binary_format),
    }
}

fn cast_error(column: &Column, value: &Value, target: &str) -> RowError {
    RowError::column(
        column,
        format!(
            "Failed to cast variant value {} to {target}",
            truncate(&value.to_string(), 100)
        ),
    )
}

/// The text of a scalar for messages: strings without quotes, others as JSON.
fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => truncate(s, 100),
        other => truncate(&other.to_string(), 100),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// NUMBER

/// A decimal number: `±digits × 10^exponent`, digits without leading zeros (empty for 0).
#[derive(Debug, Clone, PartialEq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

impl Decimal {
    /// Parses `[+-]digits[.digits][e[+-]digits]` (also `.5` and `5.`), surrounding
    /// whitespace allowed.
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(i) => {
                let exp = &rest[i + 1..];
                let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                // Saturate absurd exponents; they end as overflow or zero.
                let value: i64 = digits.parse().unwrap_or(i64::from(i32::MAX));
                let value = value.min(i64::from(i32::MAX));
                (
                    &rest[..i],
                    if exp.starts_with('-') { -value } else { value },
                )
            }
            None => (rest, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int_part.is_empty() && frac_part.is_empty()
            || !int_part
                .bytes()
                .chain(frac_part.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let digits: Vec<u8> = int_part
            .bytes()
            .chain(frac_part.bytes())
            .skip_while(|&b| b == b'0')
            .collect();
        Some(Self {
            negative: negative && !digits.is_empty(),
            digits,
            exponent: exponent - frac_part.len() as i64,
        })
    }

    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => Self::parse(&n.to_string()),
            Value::String(s) => Self::parse(s),
            _ => None,
        }
    }

    fn is_integer(&self) -> bool {
        self.exponent >= 0
            || self
                .digits
                .iter()
                .rev()
                .take(usize::try_from(-self.exponent).unwrap_or(usize::MAX))
                .all(|&d| d == b'0')
    }

    /// The coefficient `c` with `value ≈ c × 10^-scale`, rounded half away from zero, or
    /// `None` when it has more than `max_digits` digits.
    fn rescale(&self, scale: u8, max_digits: usize) -> Option<Vec<u8>> {
        if self.digits.is_empty() {
            return Some(Vec::new());
        }
        let shift = self.exponent + i64::from(scale);
        let mut coefficient = if shift >= 0 {
            let zeros = usize::try_from(shift).ok()?;
            if self.digits.len().checked_add(zeros)? > max_digits {
                return None;
            }
            let mut c = self.digits.clone();
            c.resize(c.len() + zeros, b'0');
            c
        } else {
            let drop = usize::try_from(-shift).unwrap_or(usize::MAX);
            if drop > self.digits.len() {
                return Some(Vec::new());
            }
            let keep = self.digits.len() - drop;
            let mut c = self.digits[..keep].to_vec();
            if self.digits[keep] >= b'5' {
                increment(&mut c);
            }
            c
        };
        let leading_zeros = coefficient.iter().take_while(|&&d| d == b'0').count();
        coefficient.drain(..leading_zeros);
        (coefficient.len() <= max_digits).then_some(coefficient)
    }
}

/// Adds one to a decimal digit string.
fn increment(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

/// `digits × 10^-scale` as text with exactly `scale` decimals.
fn decimal_text(negative: bool, digits: &[u8], scale: u8) -> String {
    let scale = usize::from(scale);
    let mut padded = vec![b'0'; (scale + 1).saturating_sub(digits.len())];
    padded.extend_from_slice(digits);
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    let mut out = String::with_capacity(padded.len() + 2);
    if negative && !digits.is_empty() {
        out.push('-');
    }
    out.push_str(std::str::from_utf8(int_part).unwrap_or("0"));
    if scale > 0 {
        out.push('.');
        out.push_str(std::str::from_utf8(frac_part).unwrap_or_default());
    }
    out
}

fn number(column: &Column, value: &Value, precision: u8, scale: u8) -> Result<SqlValue, RowError> {
    let decimal = Decimal::from_json(value).ok_or_else(|| {
        RowError::column(
            column,
            format!("Numeric value '{}' is not recognized", display_value(value)),
        )
    })?;
    let digits = decimal
        .rescale(scale, usize::from(precision))
        .ok_or_else(|| {
            RowError::column(
                column,
                format!(
                    "Numeric value '{}' is out of range for NUMBER({precision},{scale})",
                    display_value(value)
                ),
            )
        })?;
    Ok(exact_number(
        decimal_text(decimal.negative, &digits, scale),
        scale,
    ))
}

/// The storage of an exact decimal (`text`, with exactly `scale` decimals): INTEGER when
/// `scale` is 0 and it fits `i64`; else REAL when the nearest double, printed with `scale`
/// decimals, gives `text` back (what the SQL API prints); else [`SqlValue::Decimal`].
fn exact_number(text: String, scale: u8) -> SqlValue {
    if scale == 0 {
        if let Ok(i) = text.parse::<i64>() {
            return SqlValue::Integer(i);
        }
    }
    match text.parse::<f64>() {
        Ok(real) if format!("{real:.*}", usize::from(scale)) == text => SqlValue::Real(real),
        _ => SqlValue::Decimal(text),
    }
}

// ---------------------------------------------------------------------------------------
// FLOAT, VARCHAR, BOOLEAN, BINARY

fn float(column: &Column, value: &Value) -> Result<SqlValue, RowError> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            // Rust's parser also accepts "inf", "infinity" and "nan" in any case, like
            // Snowflake; reject hex-like or empty strings it would not accept anyway.
            s.parse::<f64>().ok()
        }
        _ => None,
    };
    // "inf"/"Infinity" are infinite on purpose; a finite literal too large for a double
    // ("1e400") is out of range, as in Snowflake.
    let explicit_infinity = matches!(value, Value::String(s)
        if s.trim().trim_start_matches(['+', '-']).to_ascii_lowercase().starts_with("inf"));
    match parsed {
        Some(f) if f.is_nan() => Ok(SqlValue::Text("NaN".into())),
        Some(f) if f.is_infinite() && !explicit_infinity => Err(RowError::column(
            column,
            format!("Numeric value '{}' is out of range", display_value(value)),
        )),
        Some(f) => Ok(SqlValue::Real(f)),
        None => Err(RowError::column(
            column,
            format!("Numeric value '{}' is not recognized", display_value(value)),
        )),
    }
}

/// Characters of a `VARCHAR` declared without a length.
pub const VARCHAR_DEFAULT_MAX: u32 = 16_777_216;
/// Bytes of a `BINARY` declared without a length.
pub const BINARY_DEFAULT_MAX: u32 = 8_388_608;

fn varchar(column: &Column, value: &Value, max_len: Option<u32>) -> Result<SqlValue, RowError> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    // VARCHAR without a length holds 16 MB (16,777,216 characters), Snowflake's default.
    if let Some(max) = max_len.or(Some(VARCHAR_DEFAULT_MAX)) {
        let max = max as usize;
        if text.len() > max && text.chars().count() > max {
            return Err(RowError::column(
                column,
                format!(
                    "User character length limit ({max}) exceeded by string '{}'",
                    truncate(&text, 100)
                ),
            ));
        }
    }
    Ok(SqlValue::Text(text))
}

fn boolean(column: &Column, value: &Value) -> Result<SqlValue, RowError> {
    let parsed = match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "on" | "1" => Some(true),
            "false" | "f" | "no" | "n" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    parsed
        .map(|b| SqlValue::Integer(i64::from(b)))
        .ok_or_else(|| {
            RowError::column(
                column,
                format!("Boolean value '{}' is not recognized", display_value(value)),
            )
        })
}

fn binary(
    column: &Column,
    value: &Value,
    max_len: Option<u32>,
    format: BinaryFormat,
) -> Result<SqlValue, RowError> {
    const BASE64: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let error = || {
        RowError::column(
            column,
            format!(
                "Can't parse '{}' as binary value with format {}",
                display_value(value),
                format.name()
            ),
        )
    };
    let Value::String(s) = value else {
        return Err(error());
    };
    // Encoders wrap long base64 (MIME: every 76 characters); hex may be grouped.
    let compact = || s.split_whitespace().collect::<String>();
    let bytes = match format {
        BinaryFormat::Base64 => BASE64.decode(compact()).map_err(|_| error())?,
        BinaryFormat::Hex => decode_hex(&compact()).ok_or_else(error)?,
        BinaryFormat::Utf8 => s.as_bytes().to_vec(),
    };
    // BINARY without a length holds 8 MB (8,388,608 bytes), Snowflake's default maximum.
    if let Some(max) = max_len.or(Some(BINARY_DEFAULT_MAX)) {
        if bytes.len() > max as usize {
            return Err(RowError::column(
                column,
                format!(
                    "Binary value of {} bytes exceeds the column's limit ({max})",
                    bytes.len()
                ),
            ));
        }
    }
    Ok(SqlValue::Blob(bytes))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hex = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(hex, 16).ok()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// DATE, TIME, TIMESTAMP

const NTZ_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.9f";
const UTC_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.9fZ";

/// A timestamp string → wall-clock time and the offset, if one was given.
fn parse_timestamp(text: &str) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    let text = text.trim();
    let date = NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()?;
    let rest = &text[10..];
    if rest.is_empty() {
        return Some((date.and_time(NaiveTime::MIN), None));
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?.trim_start_matches(' ');
    let offset_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let time = parse_time(rest[..offset_at].trim_end())?;
    let offset = match &rest[offset_at..] {
        "" => None,
        offset => Some(parse_offset(offset)?),
    };
    Some((date.and_time(time), offset))
}

/// `HH:MM[:SS[.f{1,9}]]`.
fn parse_time(text: &str) -> Option<NaiveTime> {
    if text.len() < 5 || text.as_bytes().get(2) != Some(&b':') {
        return None;
    }
    NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
        .ok()
}

/// `Z`, `±HH:MM`, `±HHMM` or `±HH`.
fn parse_offset(text: &str) -> Option<FixedOffset> {
    if text.eq_ignore_ascii_case("z") {
        return FixedOffset::east_opt(0);
    }
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits = digits.replacen(':', "", 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// An epoch number (see the module docs for the unit rule) → UTC wall-clock time.
fn epoch(decimal: &Decimal) -> Option<NaiveDateTime> {
    let nanos_digits = decimal.rescale(9, 38)?;
    let mut nanos: i128 = if nanos_digits.is_empty() {
        0
    } else {
        std::str::from_utf8(&nanos_digits).ok()?.parse().ok()?
    };
    if decimal.negative {
        nanos = -nanos;
    }
    const SECOND: i128 = 1_000_000_000;
    let total_nanos = if decimal.is_integer() {
        let value = nanos / SECOND;
        match value {
            v if v < 31_536_000_000 => nanos,
            v if v < 31_536_000_000_000 => v * 1_000_000,
            v if v < 31_536_000_000_000_000 => v * 1_000,
            v => v,
        }
    } else {
        nanos
    };
    let seconds = i64::try_from(total_nanos.div_euclid(SECOND)).ok()?;
    let subsec = u32::try_from(total_nanos.rem_euclid(SECOND)).ok()?;
    DateTime::from_timestamp(seconds, subsec).map(|dt| dt.naive_utc())
}

/// A JSON value → (wall-clock time, offset if known); strings or epoch numbers.
fn datetime_of(value: &Value) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    match value {
        Value::String(s) => parse_timestamp(s).or_else(|| {
            let decimal = Decimal::parse(s).filter(Decimal::is_integer)?;
            Some((epoch(&decimal)?, None))
        }),
        Value::Number(_) => Some((epoch(&Decimal::from_json(value)?)?, None)),
        _ => None,
    }
}

/// How a timestamp column keeps the offset of its input.
enum Zone {
    /// `TIMESTAMP_NTZ`: the wall clock, offset dropped.
    Wall,
    /// `TIMESTAMP_LTZ`: the instant, in UTC.
    Utc,
    /// `TIMESTAMP_TZ`: the wall clock and its offset (UTC when none was given).
    Offset,
}

/// Drops the fractional-second digits past `scale` (Snowflake's TIME(p)/TIMESTAMP(p); the
/// Snowpipe Streaming SDKs truncate, they do not round).
fn truncate_fraction<T: Timelike>(t: T, scale: u8) -> T {
    let unit = 10u32.pow(9 - u32::from(scale.min(9)));
    let nanos = t.nanosecond();
    // A leap second's nanoseconds (>= 1e9) keep their leap part.
    t.with_nanosecond(nanos - nanos % unit).unwrap_or(t)
}

fn timestamp(column: &Column, value: &Value, zone: Zone, scale: u8) -> Result<SqlValue, RowError> {
    let (wall_clock, offset) = datetime_of(value).ok_or_else(|| {
        RowError::column(
            column,
            format!("Timestamp '{}' is not recognized", display_value(value)),
        )
    })?;
    let wall_clock = truncate_fraction(wall_clock, scale);
    Ok(SqlValue::Text(match zone {
        Zone::Wall => wall_clock.format(NTZ_FORMAT).to_string(),
        Zone::Utc => {
            let utc = match offset {
                Some(offset) => wall_clock - offset,
                None => wall_clock,
            };
            utc.format(UTC_FORMAT).to_string()
        }
        Zone::Offset => {
            let offset = offset.unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
            format!("{}{offset}", wall_clock.format(NTZ_FORMAT))
        }
    }))
}

fn date(column: &Column, value: &Value) -> Result<SqlValue, RowError> {
    let (wall_clock, _) = datetime_of(value).ok_or_else(|| {
        RowError::column(
            column,
            format!("Date '{}' is not recognized", display_value(value)),
        )
    })?;
    Ok(SqlValue::Text(
        wall_clock.date().format("%Y-%m-%d").to_string(),
    ))
}

fn time(column: &Column, value: &Value, scale: u8) -> Result<SqlValue, RowError> {
    let parsed = match value {
        Value::String(s) => {
            parse_time(s.trim()).or_else(|| parse_timestamp(s).map(|(dt, _)| dt.time()))
        }
        _ => None,
    };
    parsed
        .map(|t| {
            SqlValue::Text(
                truncate_fraction(t, scale)
                    .format("%H:%M:%S%.9f")
                    .to_string(),
            )
        })
        .ok_or_else(|| {
            RowError::column(
                column,
                format!("Time '{}' is not recognized", display_value(value)),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_and_round_half_away_from_zero() {
        let d = Decimal::parse("-0012.345e1").unwrap();
        assert_eq!(d.digits, b"12345");
        assert_eq!(d.exponent, -2);
        assert!(d.negative);
        assert_eq!(d.rescale(0, 38).unwrap(), b"123");
        assert_eq!(
            Decimal::parse("0.005").unwrap().rescale(2, 38).unwrap(),
            b"1"
        );
        assert_eq!(
            Decimal::parse("0.004").unwrap().rescale(2, 38).unwrap(),
            b""
        );
        assert_eq!(
            Decimal::parse("9.995").unwrap().rescale(2, 4).unwrap(),
            b"1000"
        );
        assert_eq!(Decimal::parse("9.995").unwrap().rescale(2, 3), None);
        assert_eq!(
            Decimal::parse("1e5").unwrap().rescale(0, 38).unwrap(),
            b"100000"
        );
        assert_eq!(
            Decimal::parse("1e999999999999").unwrap().rescale(0, 38),
            None
        );
        assert_eq!(
            Decimal::parse("1e-999999999999")
                .unwrap()
                .rescale(2, 38)
                .unwrap(),
            b""
        );
        for bad in [
            "", "-", ".", "e5", "1e", "1.2.3", "0x10", "1_000", "NaN", "inf",
        ] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
        assert_eq!(decimal_text(true, b"5", 2), "-0.05");
        assert_eq!(decimal_text(false, b"", 2), "0.00");
        assert_eq!(decimal_text(false, b"12345", 2), "123.45");
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_offset("+05:30").unwrap().local_minus_utc(), 19_800);
        assert_eq!(parse_offset("-0800").unwrap().local_minus_utc(), -28_800);
        assert_eq!(parse_offset("+02").unwrap().local_minus_utc(), 7_200);
        assert_eq!(parse_offset("Z").unwrap().local_minus_utc(), 0);
        assert!(parse_offset("+5").is_none());
        assert!(parse_offset("+25:00").is_none());
    }
}
