//! NUMBER: exact decimal parsing, rounding to the scale, precision checks, exact storage.

use rusqlite::types::ValueRef;
use serde_json::Value;

use crate::catalog::Column;

use super::output;
use super::value::*;

// ---------------------------------------------------------------------------------------
// NUMBER

/// A decimal number: `±digits × 10^exponent`, digits without leading zeros (empty for 0).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decimal {
    pub(super) negative: bool,
    pub(super) digits: Vec<u8>,
    pub(super) exponent: i64,
}

impl Decimal {
    /// Parses `[+-]digits[.digits][e[+-]digits]` (also `.5` and `5.`), surrounding
    /// whitespace allowed.
    pub(super) fn parse(text: &str) -> Option<Self> {
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

    pub(super) fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => Self::parse(&n.to_string()),
            Value::String(s) => Self::parse(s),
            _ => None,
        }
    }

    pub(super) fn is_integer(&self) -> bool {
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
    pub(super) fn rescale(&self, scale: u8, max_digits: usize) -> Option<Vec<u8>> {
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
pub(super) fn increment(digits: &mut Vec<u8>) {
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
pub(super) fn decimal_text(negative: bool, digits: &[u8], scale: u8) -> String {
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

pub(super) fn number(
    column: &Column,
    value: &Value,
    precision: u8,
    scale: u8,
) -> Result<SqlValue, RowError> {
    let decimal = Decimal::from_json(value).ok_or_else(|| {
        RowError::column(
            column,
            RowErrorKind::NumberNotRecognized,
            format!("Numeric value '{}' is not recognized", display_value(value)),
        )
    })?;
    let digits = decimal
        .rescale(scale, usize::from(precision))
        .ok_or_else(|| {
            RowError::column(
                column,
                RowErrorKind::NumberOutOfRange,
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
/// `scale` is 0 and it fits `i64`; else REAL when the nearest double, printed at `scale` by
/// [`output::number_text`] (what every output prints), gives `text` back; else
/// [`SqlValue::Decimal`].
pub(super) fn exact_number(text: String, scale: u8) -> SqlValue {
    if scale == 0 {
        if let Ok(i) = text.parse::<i64>() {
            return SqlValue::Integer(i);
        }
    }
    match text.parse::<f64>() {
        Ok(real)
            if output::number_text(ValueRef::Real(real), u32::from(scale)).as_deref()
                == Some(text.as_str()) =>
        {
            SqlValue::Real(real)
        }
        _ => SqlValue::Decimal(text),
    }
}
