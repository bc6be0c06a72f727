//! FLOAT, VARCHAR, BOOLEAN and BINARY values.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde_json::Value;

use crate::catalog::Column;

use super::value::*;

// ---------------------------------------------------------------------------------------
// FLOAT, VARCHAR, BOOLEAN, BINARY

pub(super) fn float(column: &Column, value: &Value) -> Result<SqlValue, RowError> {
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
            RowErrorKind::NumberOutOfRange,
            format!("Numeric value '{}' is out of range", display_value(value)),
        )),
        Some(f) => Ok(SqlValue::Real(f)),
        None => Err(RowError::column(
            column,
            RowErrorKind::NumberNotRecognized,
            format!("Numeric value '{}' is not recognized", display_value(value)),
        )),
    }
}

/// Bytes (UTF-8) of any `VARCHAR` value: 16 MB, with or without a declared length.
pub(crate) const VARCHAR_DEFAULT_MAX: u32 = 16_777_216;
/// Bytes of a `BINARY` declared without a length.
pub(crate) const BINARY_DEFAULT_MAX: u32 = 8_388_608;

pub(super) fn varchar(
    column: &Column,
    value: &Value,
    max_len: Option<u32>,
) -> Result<SqlValue, RowError> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    // A VARCHAR value holds at most 16 MB counted in UTF-8 bytes (16,777,216 one-byte
    // characters, 4,194,304 four-byte ones), whatever length the column declares.
    if text.len() > VARCHAR_DEFAULT_MAX as usize {
        return Err(RowError::column(
            column,
            RowErrorKind::LobTooLarge,
            format!(
                "String of {} bytes exceeds the maximum VARCHAR size ({VARCHAR_DEFAULT_MAX} bytes): '{}'",
                text.len(),
                truncate(&text, 100)
            ),
        ));
    }
    // A declared length `VARCHAR(n)` counts characters (Unicode code points).
    if let Some(max) = max_len {
        let max = max as usize;
        if text.len() > max && text.chars().count() > max {
            return Err(RowError::column(
                column,
                RowErrorKind::ValueTooLong,
                format!(
                    "User character length limit ({max}) exceeded by string '{}'",
                    truncate(&text, 100)
                ),
            ));
        }
    }
    Ok(SqlValue::Text(text))
}

/// BOOLEAN: JSON `true`/`false`, or a string token (`true/false/yes/no/on/off/1/0/t/f/y/n`,
/// any case). A JSON number is refused: the service does not take numbers for BOOLEAN
/// (docs/protocol-types-and-sql.md "Type conversion (emulator)").
pub(super) fn boolean(column: &Column, value: &Value) -> Result<SqlValue, RowError> {
    let parsed = match value {
        Value::Bool(b) => Some(*b),
        Value::Number(_) => {
            return Err(RowError::column(
                column,
                RowErrorKind::BooleanNotRecognized,
                format!(
                    "Failed to cast variant value {} to BOOLEAN: numbers are not booleans; send \
                     true/false, or the strings \"true\"/\"false\"",
                    display_value(value)
                ),
            ))
        }
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
                RowErrorKind::BooleanNotRecognized,
                format!(
                    "Boolean value '{}' is not recognized; send true/false, or one of the \
                     strings true/false, yes/no, on/off, 1/0, t/f, y/n",
                    display_value(value)
                ),
            )
        })
}

pub(super) fn binary(
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
            RowErrorKind::BinaryNotRecognized,
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
                RowErrorKind::ValueTooLong,
                format!(
                    "Binary value of {} bytes exceeds the column's limit ({max})",
                    bytes.len()
                ),
            ));
        }
    }
    Ok(SqlValue::Blob(bytes))
}

pub(super) fn decode_hex(text: &str) -> Option<Vec<u8>> {
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
