//! Stored values → text: one printer for every output of the emulator, so `snowpipe-emulator
//! query`, [`crate::storage::query`] (and through it `Emulator::query` and the console's table
//! previews) and the SQL API show a value the same way.
//!
//! * `NUMBER(p,s)` prints with exactly `s` decimals, as Snowflake's SQL API returns fixed
//!   values: `12.50` in a `NUMBER(10,2)`, `3194301642615.2778` in a `NUMBER(18,4)`,
//!   `18446744073709551615` in a `NUMBER(20,0)`. The storage (module docs of
//!   [`crate::convert`]) keeps every value exactly, and [`number_text`] reads each storage
//!   class back: an INTEGER with `s` zeros after the point, a REAL with `s` decimals (the
//!   storage keeps a REAL only when [`number_text`] prints it as the exact decimal: the same
//!   function decides both), a BLOB as the exact decimal text it holds.
//! * `BINARY` prints as upper-case hex, Snowflake's default `BINARY_OUTPUT_FORMAT`.
//!
//! In the JSON rows of [`crate::storage::query`], a `NUMBER(p,0)` value that fits `i64` or
//! `u64` is a JSON integer (exact: serde_json keeps both), any other NUMBER a JSON string of
//! its text at the column's scale (`"12.50"`), since a JSON number cannot carry trailing zeros
//! and a double prints in shortest form (`3194301642615.278`). BLOBs outside
//! NUMBER columns are hex strings; FLOAT values stay JSON numbers. A result column that is an
//! expression (`MAX(PRICE)`, `PRICE + 0`) has no declared type in SQLite, so its values print
//! by storage class alone.

use rusqlite::types::ValueRef;
use serde_json::Value;

/// The scale of a column declared `NUMBER(p,s)` (`NUMBER` or `NUMBER(p)` alone: 0), or `None`
/// when the declared type is not NUMBER.
pub(crate) fn number_scale(declared: &str) -> Option<u32> {
    let upper = declared.trim().trim_matches('"').to_ascii_uppercase();
    let (base, args) = upper.split_once('(').unwrap_or((&upper, ""));
    if base.trim() != "NUMBER" {
        return None;
    }
    let scale = args
        .trim_end_matches(')')
        .split(',')
        .nth(1)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    Some(scale)
}

/// A stored NUMBER value as text with exactly `scale` decimals (`None` for SQL NULL).
///
/// INTEGER `5` at scale 2 is `5.00`; REAL at scale `s` is the double's exact decimal expansion
/// rounded to `s` digits (`format!("{:.s}")`, which the storage checks gives the exact value
/// back before it stores a REAL); a BLOB holds the exact text already (`-0.05`). TEXT, which
/// ingestion never stores in a NUMBER column, prints as it is.
pub fn number_text(value: ValueRef<'_>, scale: u32) -> Option<String> {
    let scale = scale as usize;
    Some(match value {
        ValueRef::Null => return None,
        ValueRef::Integer(i) if scale == 0 => i.to_string(),
        ValueRef::Integer(i) => format!("{i}.{}", "0".repeat(scale)),
        ValueRef::Real(f) if f.is_finite() => {
            let text = format!("{f:.*}", scale);
            // No negative zero (`-0.00`): NUMBER has none.
            match text.strip_prefix('-') {
                Some(abs) if abs.bytes().all(|b| b == b'0' || b == b'.') => abs.to_owned(),
                _ => text,
            }
        }
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Blob(b) | ValueRef::Text(b) => String::from_utf8_lossy(b).into_owned(),
    })
}

/// Bytes as upper-case hex (`00FF`), Snowflake's default `BINARY_OUTPUT_FORMAT`.
pub fn binary_text(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// One cell of [`crate::storage::query`]'s rows, from the stored value and the result
/// column's declared type (`None` for an expression).
pub(crate) fn json_cell(value: ValueRef<'_>, declared: Option<&str>) -> Value {
    if let (Some(scale), false) = (declared.and_then(number_scale), value == ValueRef::Null) {
        let text = number_text(value, scale).unwrap_or_default();
        if scale == 0 {
            if let Ok(i) = text.parse::<i64>() {
                return i.into();
            }
            if let Ok(u) = text.parse::<u64>() {
                return u.into();
            }
        }
        return Value::String(text);
    }
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => binary_text(b).into(),
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    use super::*;
    use crate::catalog::{Column, ColumnType};
    use crate::convert::SqlValue;

    #[test]
    fn declared_number_types_give_their_scale() {
        assert_eq!(number_scale("NUMBER(18,4)"), Some(4));
        assert_eq!(number_scale("number(20, 0)"), Some(0));
        assert_eq!(number_scale("\"NUMBER(10,2)\""), Some(2));
        assert_eq!(number_scale("NUMBER"), Some(0));
        assert_eq!(number_scale("NUMBER(5)"), Some(0));
        assert_eq!(number_scale("NUMBERS"), None);
        assert_eq!(number_scale("FLOAT"), None);
        assert_eq!(number_scale("BINARY(4)"), None);
    }

    #[test]
    fn each_storage_class_prints_at_the_scale() {
        assert_eq!(number_text(ValueRef::Integer(5), 2).unwrap(), "5.00");
        assert_eq!(number_text(ValueRef::Integer(-5), 2).unwrap(), "-5.00");
        assert_eq!(
            number_text(ValueRef::Integer(i64::MIN), 0).unwrap(),
            i64::MIN.to_string()
        );
        // The double nearest 3194301642615.2778, whose shortest form is 3194301642615.278.
        let issue: f64 = "3194301642615.2778".parse().unwrap();
        assert_eq!(issue.to_string(), "3194301642615.278");
        assert_eq!(
            number_text(ValueRef::Real(issue), 4).unwrap(),
            "3194301642615.2778"
        );
        assert_eq!(number_text(ValueRef::Real(-0.0), 2).unwrap(), "0.00");
        assert_eq!(number_text(ValueRef::Real(-0.001), 2).unwrap(), "0.00");
        assert_eq!(number_text(ValueRef::Real(-0.5), 2).unwrap(), "-0.50");
        assert_eq!(number_text(ValueRef::Real(12.5), 4).unwrap(), "12.5000");
        assert_eq!(
            number_text(ValueRef::Blob(b"18446744073709551615"), 0).unwrap(),
            "18446744073709551615"
        );
        assert_eq!(number_text(ValueRef::Null, 3), None);
        assert_eq!(binary_text(&[0x00, 0xab, 0xff]), "00ABFF");
        assert_eq!(binary_text(&[]), "");
    }

    #[test]
    fn json_cells_are_integers_only_when_exact() {
        let n = |v: ValueRef<'_>, decl: &str| json_cell(v, Some(decl));
        let issue: f64 = "3194301642615.2778".parse().unwrap();
        assert_eq!(n(ValueRef::Integer(7), "NUMBER(38,0)"), json!(7));
        assert_eq!(
            n(ValueRef::Blob(b"18446744073709551615"), "NUMBER(20,0)"),
            json!(18_446_744_073_709_551_615_u64)
        );
        assert_eq!(
            n(ValueRef::Blob(b"-99999999999999999999"), "NUMBER(20,0)"),
            json!("-99999999999999999999")
        );
        assert_eq!(
            n(ValueRef::Real(1e20), "NUMBER(38,0)"),
            json!("100000000000000000000")
        );
        assert_eq!(n(ValueRef::Integer(12), "NUMBER(10,2)"), json!("12.00"));
        assert_eq!(
            n(ValueRef::Real(issue), "NUMBER(18,4)"),
            json!("3194301642615.2778")
        );
        assert_eq!(n(ValueRef::Null, "NUMBER(18,4)"), Value::Null);
        assert_eq!(n(ValueRef::Blob(&[0xde, 0xad]), "BINARY(2)"), json!("DEAD"));
        assert_eq!(json_cell(ValueRef::Blob(&[1]), None), json!("01"));
        assert_eq!(n(ValueRef::Real(0.5), "FLOAT"), json!(0.5));
        assert_eq!(json_cell(ValueRef::Integer(3), None), json!(3));
    }

    /// Random `NUMBER(p,s)` values (p up to 38, a fixed seed) go through the conversion, an
    /// SQLite column declared as the emulator declares it, and back out as the same text.
    #[test]
    fn random_decimals_come_back_as_the_same_text() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(306);
        let mut reals = 0;
        for case in 0..4000 {
            let precision: u8 = rng.gen_range(1..=38);
            let scale: u8 = rng.gen_range(0..=precision);
            // Any number of digits up to p, so small values (REAL) and long ones (BLOB) mix.
            let len = rng.gen_range(0..=usize::from(precision));
            let digits: Vec<u8> = (0..len)
                .map(|i| {
                    if i == 0 {
                        rng.gen_range(b'1'..=b'9')
                    } else {
                        rng.gen_range(b'0'..=b'9')
                    }
                })
                .collect();
            let negative = rng.gen_bool(0.5);
            let text = super::super::decimal_text(negative, &digits, scale);
            let column = Column {
                name: "N".into(),
                ty: ColumnType::Number { precision, scale },
                nullable: true,
                default: None,
            };
            let stored = super::super::number(&column, &json!(text), precision, scale)
                .unwrap_or_else(|e| panic!("{text} in NUMBER({precision},{scale}): {e}"));
            reals += usize::from(matches!(stored, SqlValue::Real(_)));
            let table = format!("t{case}");
            conn.execute_batch(&format!(
                "CREATE TABLE {table} (N \"NUMBER({precision},{scale})\")"
            ))
            .unwrap();
            conn.execute(&format!("INSERT INTO {table} VALUES (?1)"), [&stored])
                .unwrap();
            let (_, rows) =
                crate::storage::query(&conn, &format!("SELECT N FROM {table}")).unwrap();
            let got = match &rows[0][0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(
                got, text,
                "NUMBER({precision},{scale}) stored as {stored:?}"
            );
        }
        assert!(reals > 500, "the sample covers REAL storage too: {reals}");
    }
}
