//! One column value against its column's type, rule by rule as connector v4.1.0's
//! `RowValidator.validateAndNormalizeColumnValue` and the `DataValidationUtil` functions it
//! calls (`src/main/java/com/snowflake/kafka/connector/internal/validation/`): the value kept,
//! rewritten (its new JSON text), or refused with v4's message. `kafka/docs/
//! connector-compatibility-tables.md` §14 lists each rule with its source.

use serde_json::value::RawValue;

use super::json::{deeper_than, first_value, jackson_text, java, Java, MAX_DEPTH};
use super::time;

/// A column's logical type, from its `DESC TABLE` type (`ColumnSchema.parseTypeString`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// NUMBER and its synonyms: precision, scale.
    Fixed(u32, u32),
    /// FLOAT and its synonyms.
    Real,
    /// VARCHAR and its synonyms: the most characters.
    Text(u32),
    /// BINARY: the most bytes.
    Binary(u32),
    Boolean,
    Date,
    Time,
    TimestampNtz,
    TimestampLtz,
    TimestampTz,
    Variant,
    Object,
    Array,
}

/// The most bytes of a string (`BYTES_16_MB`).
const BYTES_16_MB: usize = 16 << 20;
/// The most bytes of a BINARY without a length (`BYTES_8_MB`).
const BYTES_8_MB: u32 = 8 << 20;
/// Where the service lists the formats it reads.
const FORMATS_URL: &str =
    "https://docs.snowflake.com/en/user-guide/data-load-snowpipe-streaming-overview";
/// The texts a BOOLEAN takes (`allowedBooleanStringsLowerCased`).
const BOOLEAN_TEXTS: [(&str, bool); 12] = [
    ("1", true),
    ("0", false),
    ("yes", true),
    ("no", false),
    ("y", true),
    ("n", false),
    ("t", true),
    ("f", false),
    ("true", true),
    ("false", false),
    ("on", true),
    ("off", false),
];

impl Kind {
    /// The kind of a `DESC TABLE` type (`NUMBER(38,0)`, `VARCHAR(16777216)`, `TIMESTAMP_NTZ(9)`,
    /// …). `Err`: a type v4 does not validate (GEOGRAPHY, VECTOR, a structured OBJECT or ARRAY),
    /// which turns its validation off for the whole table.
    ///
    /// # Errors
    /// The type, named, when v4 does not validate it.
    pub(crate) fn of(type_text: &str) -> Result<Kind, String> {
        let t = type_text.trim();
        let (base, params) = match t.find('(') {
            Some(i) if t.ends_with(')') => (&t[..i], Some(t[i + 1..t.len() - 1].trim())),
            Some(_) => return Err(format!("malformed type {t}")),
            None => (t, None),
        };
        let num = |p: &str| p.trim().parse::<u32>().map_err(|_| format!("type {t}"));
        Ok(match base.trim().to_ascii_uppercase().as_str() {
            "NUMBER" | "NUMERIC" | "DECIMAL" | "INT" | "INTEGER" | "BIGINT" | "SMALLINT"
            | "TINYINT" | "BYTEINT" => match params {
                Some(p) => match p.split_once(',') {
                    Some((pr, sc)) => Kind::Fixed(num(pr)?, num(sc)?),
                    None => Kind::Fixed(num(p)?, 0),
                },
                None => Kind::Fixed(38, 0),
            },
            "FLOAT" | "FLOAT4" | "FLOAT8" | "DOUBLE" | "DOUBLE PRECISION" | "REAL" => Kind::Real,
            "VARCHAR" | "STRING" | "TEXT" | "CHAR" | "CHARACTER" => {
                Kind::Text(params.map_or(Ok(16_777_216), num)?)
            }
            "BINARY" | "VARBINARY" => Kind::Binary(params.map_or(Ok(BYTES_8_MB), num)?),
            "BOOLEAN" => Kind::Boolean,
            "DATE" => Kind::Date,
            "TIME" => Kind::Time,
            "TIMESTAMP" | "DATETIME" | "TIMESTAMP_NTZ" => Kind::TimestampNtz,
            "TIMESTAMP_LTZ" => Kind::TimestampLtz,
            "TIMESTAMP_TZ" => Kind::TimestampTz,
            "VARIANT" => Kind::Variant,
            "OBJECT" if params.is_none_or(str::is_empty) => Kind::Object,
            "ARRAY" if params.is_none_or(str::is_empty) => Kind::Array,
            _ => return Err(format!("type {t} is not validated client-side")),
        })
    }
}

/// What a value becomes.
pub(crate) type Checked = Result<Option<String>, String>;

/// v4's `valueFormatNotAllowedException` (`INVALID_VALUE_ROW`).
fn bad_value(col: &str, ty: &str, reason: &str) -> String {
    format!(
        "The given row cannot be converted to the internal format due to invalid value: Value \
         cannot be ingested into Snowflake column {col} of type {ty}, rowIndex:0, reason: {reason}"
    )
}

/// v4's `typeNotAllowedException` (`INVALID_FORMAT_ROW`).
fn bad_type(col: &str, v: &Java<'_>, ty: &str, allowed: &str) -> String {
    format!(
        "The given row cannot be converted to the internal format: Object of type {} cannot be \
         ingested into Snowflake column {col} of type {ty}, rowIndex:0. Allowed Java types: \
         {allowed}",
        v.class()
    )
}

/// `raw` (not null) in column `col` of kind `kind`; `normalize_time`:
/// `snowflake.feature.normalize.time` (default true).
pub(crate) fn check(col: &str, kind: Kind, raw: &RawValue, normalize_time: bool) -> Checked {
    let v = java(raw);
    if let Java::Str(None) = v {
        let ty = match kind {
            Kind::Variant => "VARIANT",
            Kind::Object => "OBJECT",
            Kind::Array => "ARRAY",
            _ => "STRING",
        };
        return Err(bad_value(col, ty, "Invalid Unicode string"));
    }
    match kind {
        Kind::Boolean => boolean(col, &v),
        Kind::Fixed(p, s) => fixed(col, &v, p, s),
        Kind::Real => real(col, &v),
        Kind::Text(len) => text(col, &v, raw, len),
        Kind::Binary(max) => binary(col, &v, max),
        Kind::Date => date(col, &v),
        Kind::Time => time_of_day(col, &v, normalize_time),
        Kind::TimestampNtz => timestamp(col, &v, true),
        Kind::TimestampLtz | Kind::TimestampTz => timestamp(col, &v, false),
        Kind::Variant => variant(col, &v),
        Kind::Array => array(col, &v),
        Kind::Object => object(col, &v),
    }
}

/// A decimal's digits (no leading zeros) and exponent: `digits × 10^exp`; Java's
/// `new BigDecimal(text)` syntax.
fn decimal(text: &str) -> Option<(String, i64)> {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i64>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{int}{frac}").trim_start_matches('0').to_owned();
    Some((digits, exp.checked_sub(i64::try_from(frac.len()).ok()?)?))
}

/// How many digits the integer part of `digits × 10^exp` has once rounded half up to `scale`
/// decimals and scaled by `10^scale`.
fn scaled_digits(digits: &str, exp: i64, scale: u32) -> i64 {
    let len = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    if digits.is_empty() {
        return 0;
    }
    // Saturating: an exponent at the edge of a `long` is far out of every precision's range
    // (issue 81: `1e9223372036854775807` overflowed here).
    let shift = exp.saturating_add(i64::from(scale));
    if shift >= 0 {
        return len.saturating_add(shift);
    }
    let keep = len + shift;
    if keep < 0 {
        return 0;
    }
    let keep_us = usize::try_from(keep).unwrap_or(0);
    let rounds_up = digits.as_bytes()[keep_us] >= b'5';
    let carries = rounds_up && digits[..keep_us].bytes().all(|b| b == b'9');
    keep + i64::from(carries)
}

fn boolean(col: &str, v: &Java<'_>) -> Checked {
    let b = match v {
        // `Boolean.TRUE`/`FALSE`: the same value.
        Java::Bool(_) => return Ok(None),
        Java::Long(t) | Java::Double(t) => match decimal(t) {
            Some((d, _)) if d.is_empty() => false,
            Some((d, e))
                if !t.starts_with('-')
                    && d.trim_end_matches('0') == "1"
                    && i64::try_from(d.len() - 1)
                        .ok()
                        .and_then(|n| e.checked_add(n))
                        == Some(0) =>
            {
                true
            }
            _ => {
                return Err(bad_value(
                    col,
                    "BOOLEAN",
                    "Only 0 and 1 are accepted for numeric boolean values",
                ))
            }
        },
        Java::Str(Some(s)) => {
            let s = s.trim().to_lowercase();
            match BOOLEAN_TEXTS.iter().find(|(t, _)| *t == s) {
                Some((_, b)) => *b,
                None => {
                    return Err(bad_value(
                        col,
                        "BOOLEAN",
                        "Not a valid boolean, see https://docs.snowflake.com/en/sql-reference/\
                         data-types-logical.html#conversion-to-boolean for the list of supported \
                         formats",
                    ))
                }
            }
        }
        _ => return Err(bad_type(col, v, "BOOLEAN", "boolean, Number, String")),
    };
    Ok(Some(b.to_string()))
}

fn fixed(col: &str, v: &Java<'_>, precision: u32, scale: u32) -> Checked {
    let text = match v {
        Java::Long(t) | Java::Double(t) => *t,
        Java::Str(Some(s)) => s.trim(),
        _ => {
            return Err(bad_type(
                col,
                v,
                "NUMBER",
                "int, long, byte, short, float, double, BigDecimal, BigInteger, String",
            ))
        }
    };
    let Some((digits, exp)) = decimal(text) else {
        return Err(bad_value(col, "NUMBER", "Not a valid number"));
    };
    if scaled_digits(&digits, exp, scale) > i64::from(precision) {
        let range = i64::from(precision) - i64::from(scale);
        return Err(format!(
            "The given row cannot be converted to the internal format: Number out of \
             representable exclusive range of (-1e{range}..1e{range}), rowIndex:0, column:{col}, \
             value:{text}. {{1}}"
        ));
    }
    Ok(None)
}

fn real(col: &str, v: &Java<'_>) -> Checked {
    match v {
        Java::Long(_) | Java::Double(_) => Ok(None),
        Java::Str(Some(s)) => {
            let t = s.trim();
            // `Double.parseDouble`, then `nan`/`inf`/`-inf` in any case.
            let body = t.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(t);
            let plain = !body.is_empty()
                && body
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
                && body.parse::<f64>().is_ok();
            let special = ["NaN", "Infinity", "+Infinity", "-Infinity"].contains(&t)
                || ["nan", "inf", "-inf"].contains(&t.to_lowercase().as_str());
            if plain || special {
                Ok(None)
            } else {
                Err(bad_value(col, "REAL", "Not a valid decimal number"))
            }
        }
        _ => Err(bad_type(col, v, "REAL", "Number, String")),
    }
}

fn text(col: &str, v: &Java<'_>, raw: &RawValue, length: u32) -> Checked {
    // Sizes as `u128`: a number's plain form is measured, not written (`plain_len`).
    let (bytes, chars, rewritten): (u128, u128, _) = match v {
        Java::Map(_) | Java::List(_) => {
            if deeper_than(raw.get(), MAX_DEPTH) {
                let why =
                    format!("nested deeper than {MAX_DEPTH} levels (Jackson's maxNestingDepth)");
                return Err(bad_value(col, "STRING", &why));
            }
            let json = jackson_text(raw)
                .ok_or_else(|| bad_value(col, "STRING", "Invalid Unicode string"))?;
            let mut quoted = String::with_capacity(json.len() + 2);
            super::json::write_jackson_str(&mut quoted, &json);
            (
                json.len() as u128,
                json.chars().count() as u128,
                Some(quoted),
            )
        }
        Java::Str(Some(s)) => (s.len() as u128, s.chars().count() as u128, None),
        // The plain form is ASCII: as many characters as bytes.
        Java::Long(t) | Java::Double(t) => (plain_len(t), plain_len(t), None),
        Java::Bool(b) => (
            b.to_string().len() as u128,
            b.to_string().len() as u128,
            None,
        ),
        Java::Null | Java::Str(None) => return Ok(None),
    };
    if bytes > BYTES_16_MB as u128 {
        return Err(bad_value(
            col,
            "STRING",
            &format!("String too long: length={bytes} bytes maxLength={BYTES_16_MB} bytes"),
        ));
    }
    if chars > u128::from(length) {
        return Err(bad_value(
            col,
            "STRING",
            &format!("String too long: length={chars} characters maxLength={length} characters"),
        ));
    }
    Ok(rewritten)
}

/// The length of `new BigDecimal(t).stripTrailingZeros().toPlainString()`, the text v4
/// measures a number into a text column by (`DataValidationUtil.validateAndParseString`),
/// worked out from the digits and the exponent without writing it: 22 bytes of JSON
/// (`1e9223372036854775807`) stand for 9.2 × 10^18 digits. Text that is not a decimal is
/// measured as it is.
fn plain_len(t: &str) -> u128 {
    let Some((digits, exp)) = decimal(t) else {
        return t.len() as u128;
    };
    let stripped = digits.trim_end_matches('0');
    if stripped.is_empty() {
        return 1; // "0"
    }
    let sign = u128::from(t.starts_with('-'));
    let len = stripped.len() as i128;
    let exp = i128::from(exp) + (digits.len() - stripped.len()) as i128;
    let body = if exp >= 0 {
        len + exp // the digits, then `exp` zeros
    } else if -exp < len {
        len + 1 // a point among the digits
    } else {
        2 + -exp // "0.", then zeros and the digits: `-exp` places
    };
    sign + body.unsigned_abs()
}

fn binary(col: &str, v: &Java<'_>, max: u32) -> Checked {
    let Java::Str(Some(s)) = v else {
        return Err(bad_type(col, v, "BINARY", "byte[], String"));
    };
    let hex = s.trim();
    if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_value(col, "BINARY", "Not a valid hex string"));
    }
    let len = hex.len() / 2;
    if len > max as usize {
        return Err(bad_value(
            col,
            "BINARY",
            &format!("Binary too long: length={len} maxLength={max}"),
        ));
    }
    // v4 hands the SDK the bytes; the text the service reads as these bytes is their hex
    // (its default BINARY_INPUT_FORMAT), without the white space v4 trims.
    Ok((hex != s.as_str()).then(|| serde_json::Value::from(hex).to_string()))
}

/// A Schema Registry `bytes` value (Connect BYTES, which the decoded row holds as base64
/// text) into a BINARY column: v4 hands `validateAndParseBinary` the `byte[]` itself, which
/// passes whatever its bytes (only their length is checked) and lands as those bytes. The
/// text the service reads as them is their hex (its default `BINARY_INPUT_FORMAT`), as for
/// `binary`'s hex text.
pub(crate) fn connect_bytes(col: &str, raw: &RawValue, max: u32) -> Checked {
    use base64::Engine as _;
    let v = java(raw);
    let Java::Str(Some(s)) = &v else {
        return Err(bad_type(col, &v, "BINARY", "byte[], String"));
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s.as_bytes()) else {
        // Not the decoder's base64: text like any other.
        return binary(col, &v, max);
    };
    if bytes.len() > max as usize {
        return Err(bad_value(
            col,
            "BINARY",
            &format!("Binary too long: length={} maxLength={max}", bytes.len()),
        ));
    }
    let mut hex = String::with_capacity(bytes.len() * 2 + 2);
    hex.push('"');
    for b in bytes {
        hex.push_str(&format!("{b:02X}"));
    }
    hex.push('"');
    Ok(Some(hex))
}

fn date(col: &str, v: &Java<'_>) -> Checked {
    let Java::Str(Some(s)) = v else {
        return Err(bad_type(
            col,
            v,
            "DATE",
            "String, LocalDate, LocalDateTime, ZonedDateTime, OffsetDateTime",
        ));
    };
    match time::date_time(s) {
        Some(c) if (-9999..=9999).contains(&c.year) => Ok(None),
        Some(c) => Err(format!(
            "The given row cannot be converted to the internal format due to invalid value: Date \
             out of representable inclusive range of years between -9999 and 9999, rowIndex:0, \
             column:{col}, value:{}",
            time::java_local_date_time(&c)
        )),
        None => Err(bad_value(
            col,
            "DATE",
            &format!("Not a valid value, see {FORMATS_URL} for the list of supported formats"),
        )),
    }
}

fn time_of_day(col: &str, v: &Java<'_>, normalize: bool) -> Checked {
    let Java::Str(Some(s)) = v else {
        return Err(bad_type(col, v, "TIME", "String, LocalTime, OffsetTime"));
    };
    let Some(t) = time::time_of_day(s) else {
        return Err(bad_value(
            col,
            "TIME",
            &format!("Not a valid time, see {FORMATS_URL} for the list of supported formats"),
        ));
    };
    let local = time::iso_local_time(t);
    Ok((normalize && local != *s).then(|| serde_json::Value::from(local).to_string()))
}

fn timestamp(col: &str, v: &Java<'_>, trim_zone: bool) -> Checked {
    let (clock, epoch) = match v {
        Java::Long(t) => (time::epoch(t), true),
        Java::Str(Some(s)) => (time::date_time(s), false),
        _ => {
            return Err(bad_type(
                col,
                v,
                "TIMESTAMP",
                "String, LocalDate, LocalDateTime, ZonedDateTime, OffsetDateTime",
            ))
        }
    };
    let Some(c) = clock else {
        return Err(bad_value(
            col,
            "TIMESTAMP",
            &format!("Not a valid value, see {FORMATS_URL} for the list of supported formats"),
        ));
    };
    if !(1..=9999).contains(&c.year) {
        return Err(format!(
            "The given row cannot be converted to the internal format due to invalid value: \
             Timestamp out of representable inclusive range of years between 1 and 9999, \
             rowIndex:0, column:{col}, value:{}",
            time::java_utc(&c)
        ));
    }
    if !epoch {
        return Ok(None);
    }
    // `validateAndFormatTimestamp`: an integer epoch is an instant, written in UTC.
    let text = if trim_zone {
        time::java_local_date_time(&c)
    } else {
        time::java_utc(&c)
    };
    Ok(Some(serde_json::Value::from(text).to_string()))
}

/// A string of JSON text for a semi-structured column: its first value, on one line.
fn parsed<'a>(col: &str, ty: &str, s: &'a str) -> Result<Option<&'a RawValue>, String> {
    first_value(s).map_err(|()| bad_value(col, ty, "Not a valid JSON"))
}

fn one_line(raw: &RawValue) -> String {
    raw.get().replace(['\n', '\r'], " ")
}

fn variant(col: &str, v: &Java<'_>) -> Checked {
    match v {
        Java::Str(Some(s)) => Ok(Some(
            parsed(col, "VARIANT", s)?.map_or_else(|| "null".into(), one_line),
        )),
        _ => Ok(None),
    }
}

fn array(col: &str, v: &Java<'_>) -> Checked {
    let Java::Str(Some(s)) = v else {
        return Ok(None);
    };
    match parsed(col, "ARRAY", s)? {
        Some(r) if r.get().starts_with('[') => Ok(Some(one_line(r))),
        Some(r) => Ok(Some(format!("[{}]", one_line(r)))),
        // Jackson's tree of `[MissingNode]` does not turn into a list: v4 fails there.
        None => Err(bad_value(col, "ARRAY", "Not a valid JSON")),
    }
}

fn object(col: &str, v: &Java<'_>) -> Checked {
    let is_object = match v {
        Java::Map(_) => true,
        Java::Str(Some(s)) => parsed(col, "OBJECT", s)?.is_some_and(|r| r.get().starts_with('{')),
        _ => false,
    };
    if is_object {
        Ok(None)
    } else {
        Err(bad_value(col, "OBJECT", "Not an object"))
    }
}
