//! The values a pipe transform computes with ([`Val`]): exact numbers with Snowflake's result
//! scales ([`Dec`]), the implicit conversions between values (to text, to a number, to a
//! boolean), their comparison and arithmetic, and the JSON a value is written as.

use std::cmp::Ordering;

use serde_json::Value;

use crate::base::float_text::float_text_for_pipe_transform;
use crate::catalog::pipe_expr::BinOp;
use crate::catalog::{Column, ColumnType};

use super::number::Decimal;
use super::{convert_value, ConvertOptions, SqlValue};

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    Null,
    Variant(Value),
    Text(String),
    Number(Dec),
    Float(f64),
    Bool(bool),
    /// A DATE, TIME or TIMESTAMP_* value, as the emulator stores that type.
    Temporal(ColumnType, String),
}

/// An exact decimal: `m × 10^-s`, at most 38 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dec {
    pub(super) m: i128,
    pub(super) s: u32,
}

pub(super) const MAX_MANTISSA: i128 = 10i128.pow(38) - 1;

pub(super) const OUT_OF_RANGE: &str = "Number out of representable range";

impl Dec {
    pub(super) fn new(m: i128, s: u32) -> Result<Self, String> {
        if m.abs() > MAX_MANTISSA || s > 37 {
            return Err(OUT_OF_RANGE.into());
        }
        Ok(Self { m, s })
    }

    /// Parses decimal text (no exponent needed); `None` past 38 digits.
    pub(super) fn parse(text: &str) -> Option<Self> {
        let d = Decimal::parse(text)?;
        let mut m: i128 = 0;
        for digit in &d.digits {
            m = m.checked_mul(10)?.checked_add(i128::from(digit - b'0'))?;
        }
        let (m, s) = if d.exponent >= 0 {
            let factor = 10i128.checked_pow(u32::try_from(d.exponent).ok()?)?;
            (m.checked_mul(factor)?, 0)
        } else {
            (m, u32::try_from(-d.exponent).ok()?)
        };
        Self::new(if d.negative { -m } else { m }, s).ok()
    }

    /// This value at scale `s`, rounded half away from zero when `s` is smaller.
    pub(super) fn rescale(self, s: u32) -> Result<Self, String> {
        if s >= self.s {
            let factor = 10i128.checked_pow(s - self.s).ok_or(OUT_OF_RANGE)?;
            Self::new(self.m.checked_mul(factor).ok_or(OUT_OF_RANGE)?, s)
        } else {
            let factor = 10i128.checked_pow(self.s - s).ok_or(OUT_OF_RANGE)?;
            Self::new(div_round(self.m, factor), s)
        }
    }

    pub(super) fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    pub(super) fn is_zero(self) -> bool {
        self.m == 0
    }
}

impl std::fmt::Display for Dec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.m.unsigned_abs().to_string();
        let sign = if self.m < 0 { "-" } else { "" };
        let s = self.s as usize;
        if s == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = s + 1);
        let (int, frac) = padded.split_at(padded.len() - s);
        write!(f, "{sign}{int}.{frac}")
    }
}

/// `n / d` rounded half away from zero (`d > 0`).
pub(super) fn div_round(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    if r.abs() * 2 >= d {
        q + n.signum()
    } else {
        q
    }
}

/// A number during arithmetic.
#[derive(Debug, Clone, Copy)]
pub(super) enum Num {
    Dec(Dec),
    Float(f64),
}

impl Num {
    pub(super) fn to_f64(self) -> f64 {
        match self {
            Self::Dec(d) => d.to_f64(),
            Self::Float(f) => f,
        }
    }
}

/// The JSON a value is converted from into a column (or a cast) of type `ty`. Exact numbers
/// travel as decimal text, which NUMBER, FLOAT, VARCHAR and the time types read exactly;
/// VARIANT, OBJECT, ARRAY and BOOLEAN get a JSON number.
pub(super) fn to_json(value: Val, ty: &ColumnType) -> Value {
    match value {
        Val::Null => Value::Null,
        Val::Variant(v) => v,
        Val::Text(s) | Val::Temporal(_, s) => Value::String(s),
        Val::Number(d) => match ty {
            ColumnType::Variant | ColumnType::Object | ColumnType::Array | ColumnType::Boolean => {
                serde_json::from_str(&d.to_string()).unwrap_or(Value::String(d.to_string()))
            }
            _ => Value::String(d.to_string()),
        },
        Val::Float(f) => serde_json::Number::from_f64(f).map_or_else(
            || Value::String(float_text_for_pipe_transform(f)),
            Value::Number,
        ),
        Val::Bool(b) => Value::Bool(b),
    }
}

/// A value as text, `None` for NULL (SQL or VARIANT null).
pub(super) fn to_text(value: &Val) -> Option<String> {
    Some(match value {
        Val::Null | Val::Variant(Value::Null) => return None,
        Val::Text(s) | Val::Temporal(_, s) | Val::Variant(Value::String(s)) => s.clone(),
        Val::Variant(other) => other.to_string(),
        Val::Number(d) => d.to_string(),
        Val::Float(f) => float_text_for_pipe_transform(*f),
        Val::Bool(b) => b.to_string(),
    })
}

pub(super) fn parse_num(text: &str) -> Option<Num> {
    let text = text.trim();
    let exponent_or_special = text
        .bytes()
        .any(|b| matches!(b, b'e' | b'E' | b'n' | b'N' | b'i' | b'I'));
    if !exponent_or_special {
        if let Some(d) = Dec::parse(text) {
            return Some(Num::Dec(d));
        }
    }
    text.parse::<f64>().ok().map(Num::Float)
}

/// A value as a number, `None` for NULL.
pub(super) fn num(value: &Val) -> Result<Option<Num>, String> {
    let text = match value {
        Val::Null | Val::Variant(Value::Null) => return Ok(None),
        Val::Number(d) => return Ok(Some(Num::Dec(*d))),
        Val::Float(f) => return Ok(Some(Num::Float(*f))),
        Val::Text(s) | Val::Variant(Value::String(s)) => s.clone(),
        Val::Variant(Value::Number(n)) => n.to_string(),
        other => {
            return Err(format!(
                "Numeric value '{}' is not recognized",
                to_text(other).unwrap_or_default()
            ))
        }
    };
    parse_num(&text)
        .map(Some)
        .ok_or_else(|| format!("Numeric value '{text}' is not recognized"))
}

/// A value as a boolean, `None` for NULL.
pub(super) fn to_bool(value: &Val) -> Result<Option<bool>, String> {
    Ok(Some(match value {
        Val::Null | Val::Variant(Value::Null) => return Ok(None),
        Val::Bool(b) | Val::Variant(Value::Bool(b)) => *b,
        Val::Number(d) => !d.is_zero(),
        Val::Float(f) => *f != 0.0,
        Val::Variant(Value::Number(n)) => n.as_f64() != Some(0.0),
        Val::Text(s) | Val::Variant(Value::String(s)) => {
            match s.trim().to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "on" | "1" => true,
                "false" | "f" | "no" | "n" | "off" | "0" => false,
                _ => return Err(format!("Boolean value '{s}' is not recognized")),
            }
        }
        other => {
            return Err(format!(
                "Boolean value '{}' is not recognized",
                to_text(other).unwrap_or_default()
            ))
        }
    }))
}

pub(super) fn is_numeric(value: &Val) -> bool {
    matches!(
        value,
        Val::Number(_) | Val::Float(_) | Val::Variant(Value::Number(_))
    )
}

/// Compares two values as Snowflake's implicit conversions do; `None` when either is NULL.
pub(super) fn compare(a: &Val, b: &Val) -> Result<Option<Ordering>, String> {
    if matches!(a, Val::Null | Val::Variant(Value::Null))
        || matches!(b, Val::Null | Val::Variant(Value::Null))
    {
        return Ok(None);
    }
    if is_numeric(a) || is_numeric(b) {
        let (Some(x), Some(y)) = (num(a)?, num(b)?) else {
            return Ok(None);
        };
        return Ok(match (x, y) {
            (Num::Dec(x), Num::Dec(y)) => {
                let s = x.s.max(y.s);
                Some(x.rescale(s)?.m.cmp(&y.rescale(s)?.m))
            }
            (x, y) => x.to_f64().partial_cmp(&y.to_f64()),
        });
    }
    if let Val::Temporal(ty, _) = a {
        if let Val::Temporal(..) | Val::Text(_) | Val::Variant(_) = b {
            return compare_temporal(a, b, ty);
        }
    }
    if let Val::Temporal(ty, _) = b {
        return compare_temporal(a, b, ty);
    }
    if matches!(a, Val::Bool(_) | Val::Variant(Value::Bool(_)))
        || matches!(b, Val::Bool(_) | Val::Variant(Value::Bool(_)))
    {
        return Ok(match (to_bool(a)?, to_bool(b)?) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => None,
        });
    }
    if let (Some(x), Some(y)) = (as_str(a), as_str(b)) {
        // Texts compare where they are, as far as they agree.
        return Ok(Some(x.cmp(y)));
    }
    Ok(match (to_text(a), to_text(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => None,
    })
}

/// The text a VARCHAR or a VARIANT string holds.
pub(super) fn as_str(value: &Val) -> Option<&str> {
    match value {
        Val::Text(s) | Val::Variant(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// Compares after casting both sides to `ty` (stored texts of one type sort in time order).
pub(super) fn compare_temporal(
    a: &Val,
    b: &Val,
    ty: &ColumnType,
) -> Result<Option<Ordering>, String> {
    let options = ConvertOptions::default();
    let (x, y) = (
        cast(a.clone(), ty, &options, "comparison")?,
        cast(b.clone(), ty, &options, "comparison")?,
    );
    Ok(match (to_text(&x), to_text(&y)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => None,
    })
}

pub(super) fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

pub(super) fn or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

pub(super) fn arithmetic(op: BinOp, a: Num, b: Num) -> Result<Val, String> {
    const DIVISION_BY_ZERO: &str = "Division by zero";
    let (Num::Dec(x), Num::Dec(y)) = (a, b) else {
        let (x, y) = (a.to_f64(), b.to_f64());
        if matches!(op, BinOp::Div | BinOp::Mod) && y == 0.0 {
            return Err(DIVISION_BY_ZERO.into());
        }
        return Ok(Val::Float(match op {
            BinOp::Add => x + y,
            BinOp::Sub => x - y,
            BinOp::Mul => x * y,
            BinOp::Div => x / y,
            _ => x % y,
        }));
    };
    let checked = |m: Option<i128>, s: u32| {
        m.ok_or_else(|| OUT_OF_RANGE.to_string())
            .and_then(|m| Dec::new(m, s))
    };
    let d = match op {
        BinOp::Add | BinOp::Sub | BinOp::Mod => {
            let s = x.s.max(y.s);
            let (x, y) = (x.rescale(s)?, y.rescale(s)?);
            match op {
                BinOp::Add => checked(x.m.checked_add(y.m), s)?,
                BinOp::Sub => checked(x.m.checked_sub(y.m), s)?,
                _ if y.is_zero() => return Err(DIVISION_BY_ZERO.into()),
                _ => checked(x.m.checked_rem(y.m), s)?,
            }
        }
        BinOp::Mul => {
            let raw = x.s + y.s;
            let s = raw.min(x.s.max(y.s).max(12));
            let m = x.m.checked_mul(y.m).ok_or(OUT_OF_RANGE)?;
            let factor = 10i128.pow(raw - s);
            Dec::new(div_round(m, factor), s)?
        }
        _ => {
            if y.is_zero() {
                return Err(DIVISION_BY_ZERO.into());
            }
            let s = x.s.max((x.s + 6).min(12));
            // x.m × 10^(s + y.s − x.s) / y.m, rounded.
            let shift = 10i128.checked_pow(s + y.s - x.s).ok_or(OUT_OF_RANGE)?;
            let n = x.m.checked_mul(shift).ok_or(OUT_OF_RANGE)?;
            let (n, d) = if y.m < 0 { (-n, -y.m) } else { (n, y.m) };
            Dec::new(div_round(n, d), s)?
        }
    };
    Ok(Val::Number(d))
}

/// Converts `value` to `ty` through the column conversion of a column of that type.
pub(super) fn cast(
    value: Val,
    ty: &ColumnType,
    options: &ConvertOptions,
    column: &str,
) -> Result<Val, String> {
    if matches!(value, Val::Null | Val::Variant(Value::Null)) {
        return Ok(Val::Null);
    }
    let json = to_json(value, ty);
    let target = Column {
        name: column.to_owned(),
        ty: ty.clone(),
        nullable: true,
        default: None,
    };
    let stored = convert_value(&target, &json, options).map_err(|e| e.message)?;
    Ok(match (ty, stored) {
        (_, SqlValue::Null) => Val::Null,
        (ColumnType::Number { scale, .. }, stored) => {
            let text = match stored {
                SqlValue::Integer(i) => i.to_string(),
                SqlValue::Real(f) => super::output::number_text(
                    rusqlite::types::ValueRef::Real(f),
                    u32::from(*scale),
                )
                .unwrap_or_default(),
                SqlValue::Decimal(t) | SqlValue::Text(t) => t,
                other => return Err(format!("unexpected NUMBER value {other:?}")),
            };
            let d = Dec::parse(&text).ok_or(OUT_OF_RANGE)?;
            Val::Number(d.rescale(u32::from(*scale))?)
        }
        (ColumnType::Float, SqlValue::Real(f)) => Val::Float(f),
        (ColumnType::Float, SqlValue::Text(t)) => Val::Float(t.parse().unwrap_or(f64::NAN)),
        (ColumnType::Boolean, SqlValue::Integer(i)) => Val::Bool(i != 0),
        (ColumnType::Varchar { .. }, SqlValue::Text(t)) => Val::Text(t),
        (ColumnType::Variant | ColumnType::Object | ColumnType::Array, SqlValue::Text(t)) => {
            Val::Variant(serde_json::from_str(&t).map_err(|e| e.to_string())?)
        }
        (
            ColumnType::Date
            | ColumnType::Time { .. }
            | ColumnType::TimestampNtz { .. }
            | ColumnType::TimestampLtz { .. }
            | ColumnType::TimestampTz { .. },
            SqlValue::Text(t),
        ) => Val::Temporal(ty.clone(), t),
        (ty, other) => return Err(format!("cannot cast to {}: {other:?}", ty.sql_name())),
    })
}
