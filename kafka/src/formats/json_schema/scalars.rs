//! Connect's primitive and logical types written from a payload's scalars as the connector
//! writes them: integers keep the low bits of the truncated value (`longValue()`), floats the
//! nearest double (or float), decimals up to [`MAX_NUMBER_DIGITS`] digits as numbers and more
//! as text, dates, times and timestamps as ISO text, bytes as base64.

use crate::formats::connect_type::ConnectType;
use std::fmt::Write as _;

use base64::Engine as _;

use super::{field, Kind, MAX_NUMBER_DIGITS};
use crate::formats::avro::{java_big_decimal, special};
use crate::formats::json_tree::{Decimal, J};

/// Writes the number `t` as an integer of `kind` (`Int8` … `Int64`): its low bits, as Java
/// narrows a `long`.
pub(super) fn write_int(out: &mut String, kind: &Kind, t: &str, path: &str) -> Result<(), String> {
    let n = finite(t, path)?.low_bits();
    let n = match kind {
        Kind::Scalar(ConnectType::Int8) => i64::from(n as i8),
        Kind::Scalar(ConnectType::Int16) => i64::from(n as i16),
        Kind::Scalar(ConnectType::Int32) => i64::from(n as i32),
        _ => n,
    };
    let _ = write!(out, "{n}");
    Ok(())
}

/// Writes the number `t` as a float of `kind` (`Float32`, `Float64`); `NaN` and the
/// infinities as the connector's text. `mismatch`: the reason when `t` is no number.
pub(super) fn write_float(
    out: &mut String,
    kind: &Kind,
    t: &str,
    mismatch: impl Fn() -> String,
) -> Result<(), String> {
    let f: f64 = match t {
        "NaN" => f64::NAN,
        "Infinity" | "+Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        t => t.parse().map_err(|_| mismatch())?,
    };
    let f = if matches!(kind, Kind::Scalar(ConnectType::Float32)) {
        f64::from(t.parse::<f32>().unwrap_or(f as f32))
    } else {
        f
    };
    match special(f) {
        Some(s) => out.push_str(s),
        None if matches!(kind, Kind::Scalar(ConnectType::Float32)) => {
            out.push_str(&serde_json::to_string(&(f as f32)).unwrap_or_default());
        }
        None => out.push_str(&serde_json::to_string(&f).unwrap_or_default()),
    }
    Ok(())
}

/// Writes `v` as a `Decimal` of `scale` (from `connect.parameters`): a number as it is, or
/// base64 text of the unscaled value's two's-complement bytes. `mismatch`: the reason for
/// any other JSON type.
pub(super) fn write_decimal_value(
    out: &mut String,
    scale: Option<i64>,
    v: &J<'_>,
    path: &str,
    mismatch: impl Fn() -> String,
) -> Result<(), String> {
    let (unscaled, scale) = match v {
        J::Num(t) => finite(t, path)?.unscaled_and_scale(),
        J::Str(s) => {
            let bytes = base64_of(s, path)?;
            if bytes.is_empty() {
                return Err(format!("{}: a decimal of no bytes", field(path)));
            }
            let scale = scale.ok_or_else(|| {
                format!(
                    "{}: the Decimal schema has no scale in connect.parameters",
                    field(path)
                )
            })?;
            let n = num_bigint::BigInt::from_signed_bytes_be(&bytes);
            (n.to_string(), scale)
        }
        _ => return Err(mismatch()),
    };
    write_decimal(out, &unscaled, scale);
    Ok(())
}

/// Writes the number `t` as a `Date` (days) or `Time` (milliseconds of the day) of `kind`.
pub(super) fn write_date_or_time(
    out: &mut String,
    kind: &Kind,
    t: &str,
    path: &str,
) -> Result<(), String> {
    let d = finite(t, path)?;
    let date = matches!(kind, Kind::Scalar(ConnectType::Date));
    if !d.is_int() {
        return Err(format!(
            "{}: a {} must be an int (Connect's DataException)",
            field(path),
            if date { "Date" } else { "Time" }
        ));
    }
    let n = d.low_bits();
    if date {
        crate::formats::avro::write_iso_millis(out, n * 86_400_000);
    } else {
        if !(0..=86_400_000).contains(&n) {
            return Err(format!(
                "{}: a Time must be 0 to 86400000 ms (Connect's DataException)",
                field(path)
            ));
        }
        crate::formats::avro::write_time_millis(out, n);
    }
    Ok(())
}

/// Writes the number `t` as a `Timestamp` (milliseconds since the epoch).
pub(super) fn write_timestamp(out: &mut String, t: &str, path: &str) -> Result<(), String> {
    let d = finite(t, path)?;
    if !d.is_integral() {
        return Err(format!(
            "{}: a Timestamp must be an integer (Connect's DataException)",
            field(path)
        ));
    }
    crate::formats::avro::write_iso_millis(out, d.low_bits());
    Ok(())
}

/// The number `t` taken apart, or why not (`NaN` and the infinities).
fn finite<'t>(t: &'t str, path: &str) -> Result<Decimal<'t>, String> {
    Decimal::of(t).ok_or_else(|| format!("{}: {t} is not a finite number", field(path)))
}

/// `s` decoded as base64 (Jackson's `TextNode.binaryValue`).
pub(super) fn base64_of(s: &str, path: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("{}: bytes that are not base64 ({e})", field(path)))
}

/// A `BigDecimal` as the connector writes it: a number up to 38 digits, else its text.
fn write_decimal(out: &mut String, unscaled: &str, scale: i64) {
    let digits = unscaled.trim_start_matches('-').len();
    // `BigDecimal.toString` (as Jackson writes one): plain, or `1E+1000000` where plain text
    // would be a million digits long.
    let text = java_big_decimal(unscaled, scale);
    if digits <= MAX_NUMBER_DIGITS {
        out.push_str(&text);
    } else {
        crate::formats::avro::write_str(out, &text);
    }
}
