//! A binlog row value (`mysql_common`'s [`BinlogValue`]) → the [`Value`] the snapshot path
//! reads for the same column, so both go through [`schema::to_json`] and land alike.
//!
//! | binlog form | becomes |
//! |---|---|
//! | signed integer for an `UNSIGNED` column (MariaDB logs no signedness by default) | the same bits, unsigned |
//! | `YEAR` as the text `1900 + n` | the year as an integer (`1900`, the zero year, is 0) |
//! | `TIMESTAMP` as epoch seconds (`"sec[.usec]"`) | the UTC date and time (0 is the zero date) |
//! | `ENUM` as its 1-based index | the label (0, the invalid value, is the empty string) |
//! | `SET` as a little-endian bitmask | the labels, comma-separated |
//! | MySQL's binary JSON | the JSON text |
//! | `BINARY(n)` without its trailing zero bytes (the binlog strips them) | padded to `n` bytes, as the table returns it |
//!
//! An `ENUM`/`SET` index means the labels the column had when the row was written: the
//! TABLE_MAP event before the rows carries them with `binlog_row_metadata=FULL`
//! ([`event_labels`]), and those are used, so a column relabelled (`MODIFY e ENUM('a','c',
//! 'b')`) while `follow` was down or lagging decodes the older rows with their own labels.
//! Without that metadata the labels are the column type's read at the start and at each
//! `ALTER TABLE` `follow` meets, and a change written before the table was last altered
//! (while `follow` was down or behind) diverts the table rather than take labels that may
//! be newer (`relabel.rs`).
//!
//! Everything else (decimals as their text, `DATETIME`, `TIME`, `DATE`, floats, strings,
//! blobs, `BIT` bytes) already has the snapshot's form.
//!
//! [`schema::to_json`]: crate::table_replay::schema::to_json

use anyhow::{bail, Result};
use chrono::{Datelike, Timelike};
use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::Value;

use crate::table_replay::schema::{Kind, SourceTable};

/// The labels of each `ENUM` and `SET` column of `table` as a TABLE_MAP event carries them
/// (`binlog_row_metadata=FULL`; empty for other columns), `None` when the event has none or
/// they do not match the table's `ENUM`/`SET` columns.
pub(super) fn event_labels(
    tme: &TableMapEvent<'_>,
    table: &SourceTable,
) -> Option<Vec<Vec<String>>> {
    let wanted = |enums: bool| {
        table
            .columns
            .iter()
            .filter(|c| {
                matches!(
                    (&c.kind, enums),
                    (Kind::Enum { .. }, true) | (Kind::Set { .. }, false)
                )
            })
            .count()
    };
    let (n_enums, n_sets) = (wanted(true), wanted(false));
    if n_enums + n_sets == 0 {
        return None;
    }
    let (mut enums, mut sets) = (Vec::new(), Vec::new());
    for field in tme.iter_optional_meta() {
        match field {
            Ok(OptionalMetadataField::EnumStrValue(e)) => {
                for v in e.iter_values() {
                    let v = v.ok()?;
                    enums.push(v.values().iter().map(|l| l.value().into_owned()).collect());
                }
            }
            Ok(OptionalMetadataField::SetStrValue(s)) => {
                for v in s.iter_values() {
                    let v = v.ok()?;
                    sets.push(v.values().iter().map(|l| l.value().into_owned()).collect());
                }
            }
            _ => {}
        }
    }
    if enums.len() != n_enums || sets.len() != n_sets {
        return None;
    }
    let (mut enums, mut sets) = (enums.into_iter(), sets.into_iter());
    table
        .columns
        .iter()
        .map(|c| match c.kind {
            Kind::Enum { .. } => enums.next(),
            Kind::Set { .. } => sets.next(),
            _ => Some(Vec::new()),
        })
        .collect()
}

/// The labels of an `ENUM('a','b')` or `SET('a','b')` column type, in order.
pub(super) fn labels(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else {
        return Vec::new();
    };
    let body = &column_type[open + 1..column_type.rfind(')').unwrap_or(column_type.len())];
    let (mut out, mut cur, mut in_quote) = (Vec::new(), String::new(), false);
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_quote) {
            ('\'', true) if chars.peek() == Some(&'\'') => {
                chars.next();
                cur.push('\'');
            }
            ('\'', true) => {
                in_quote = false;
                out.push(std::mem::take(&mut cur));
            }
            ('\'', false) => in_quote = true,
            (c, true) => cur.push(c),
            _ => {}
        }
    }
    out
}

/// The width of a `BINARY(n)` column (the binlog drops its trailing zero bytes); `None` for
/// every other type.
pub(super) fn fixed_binary_len(column_type: &str) -> Option<usize> {
    let t = column_type.to_ascii_lowercase();
    t.strip_prefix("binary(")?.strip_suffix(')')?.parse().ok()
}

/// A binlog `BINARY(n)` value padded back to its `n` bytes.
pub(super) fn pad_binary(v: Value, width: Option<usize>) -> Value {
    match (v, width) {
        (Value::Bytes(mut b), Some(n)) if b.len() < n => {
            b.resize(n, 0);
            Value::Bytes(b)
        }
        (v, _) => v,
    }
}

/// Converts one binlog value of a column of `kind` (`labels` for `ENUM`/`SET`).
///
/// # Errors
/// For a partial JSON update (MySQL's `binlog_row_value_options=PARTIAL_JSON`: set it off),
/// binary JSON that is not JSON, or an `ENUM` index past the labels.
pub(super) fn to_value(kind: &Kind, labels: &[String], v: BinlogValue<'_>) -> Result<Value> {
    let v = match v {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            let json = serde_json::Value::try_from(j)
                .map_err(|e| anyhow::anyhow!("binary JSON that is not JSON: {e}"))?;
            return Ok(Value::Bytes(json.to_string().into_bytes()));
        }
        BinlogValue::JsonDiff(_) => bail!(
            "a partial JSON update in the binlog: table_replay needs whole values \
             (set binlog_row_value_options='' on the server)"
        ),
    };
    Ok(match (kind, v) {
        (_, Value::NULL) => Value::NULL,
        (
            Kind::Int {
                unsigned: true,
                digits,
            },
            Value::Int(i),
        ) if i < 0 => {
            let bits = match digits {
                3 => 8,
                5 => 16,
                7 | 8 => 24,
                10 => 32,
                _ => 64,
            };
            Value::UInt((i as u64) & (u64::MAX >> (64 - bits)))
        }
        (Kind::Year, Value::Bytes(b)) => {
            let year: i64 = std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            Value::Int(if year == 1900 { 0 } else { year })
        }
        (Kind::Timestamp { .. }, Value::Int(secs)) => timestamp(secs, 0)?,
        (Kind::Timestamp { .. }, Value::Bytes(b)) => {
            let text = String::from_utf8_lossy(&b);
            let (secs, frac) = text.split_once('.').unwrap_or((&text, "0"));
            let secs: i64 = secs.parse().unwrap_or(0);
            let micros: u32 = format!("{frac:0<6}")[..6].parse().unwrap_or(0);
            timestamp(secs, micros)?
        }
        (Kind::Inet6, Value::Bytes(b)) => Value::Bytes(super::inet6::text(&b)?.into_bytes()),
        (Kind::Enum { .. }, Value::Int(i)) => match usize::try_from(i) {
            Ok(0) => Value::Bytes(Vec::new()),
            Ok(n) if n <= labels.len() => Value::Bytes(labels[n - 1].clone().into_bytes()),
            _ => bail!("ENUM index {i} past the column's {} labels", labels.len()),
        },
        (Kind::Set { .. }, Value::Bytes(mask)) => {
            let chosen: Vec<&str> = labels
                .iter()
                .enumerate()
                .filter(|(i, _)| mask.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
                .map(|(_, l)| l.as_str())
                .collect();
            Value::Bytes(chosen.join(",").into_bytes())
        }
        (_, v) => v,
    })
}

/// Epoch seconds (UTC) → the date value the snapshot reads in a UTC session.
fn timestamp(secs: i64, micros: u32) -> Result<Value> {
    if secs == 0 && micros == 0 {
        return Ok(Value::Date(0, 0, 0, 0, 0, 0, 0));
    }
    let Some(t) = chrono::DateTime::from_timestamp(secs, micros * 1000) else {
        bail!("TIMESTAMP {secs} seconds is out of range");
    };
    Ok(Value::Date(
        t.year() as u16,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        micros,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_quotes_commas_and_order() {
        assert_eq!(labels("enum('a','it''s','x,y')"), vec!["a", "it's", "x,y"]);
        assert!(labels("int(11)").is_empty());
    }

    #[test]
    fn fixed_binary_is_padded_back_and_varbinary_is_not() {
        assert_eq!(fixed_binary_len("binary(4)"), Some(4));
        assert_eq!(fixed_binary_len("varbinary(4)"), None);
        let w = fixed_binary_len("BINARY(4)");
        assert_eq!(
            pad_binary(Value::Bytes(vec![0x80]), w),
            Value::Bytes(vec![0x80, 0, 0, 0])
        );
        assert_eq!(
            pad_binary(Value::Bytes(vec![]), w),
            Value::Bytes(vec![0; 4])
        );
        assert_eq!(pad_binary(Value::NULL, w), Value::NULL);
    }

    #[test]
    fn binlog_forms_become_the_snapshot_forms() {
        let v = |kind: &Kind, labels: &[String], b: Value| {
            to_value(kind, labels, BinlogValue::Value(b)).unwrap()
        };
        let u64k = Kind::Int {
            unsigned: true,
            digits: 20,
        };
        assert_eq!(v(&u64k, &[], Value::Int(-1)), Value::UInt(u64::MAX));
        let u8k = Kind::Int {
            unsigned: true,
            digits: 3,
        };
        assert_eq!(v(&u8k, &[], Value::Int(-1)), Value::UInt(255));
        assert_eq!(
            v(&Kind::Year, &[], Value::Bytes(b"2024".to_vec())),
            Value::Int(2024)
        );
        assert_eq!(
            v(&Kind::Year, &[], Value::Bytes(b"1900".to_vec())),
            Value::Int(0)
        );
        let ts = Kind::Timestamp { fsp: 6 };
        assert_eq!(
            v(&ts, &[], Value::Bytes(b"1700000000.000123".to_vec())),
            Value::Date(2023, 11, 14, 22, 13, 20, 123)
        );
        assert_eq!(
            v(&ts, &[], Value::Bytes(b"0".to_vec())),
            Value::Date(0, 0, 0, 0, 0, 0, 0)
        );
        let l = labels("set('a','b','c')");
        let set = Kind::Set { max_chars: None };
        assert_eq!(
            v(&set, &l, Value::Bytes(vec![0b101])),
            Value::Bytes(b"a,c".to_vec())
        );
        let en = Kind::Enum { max_chars: None };
        assert_eq!(v(&en, &l, Value::Int(2)), Value::Bytes(b"b".to_vec()));
        assert_eq!(v(&en, &l, Value::Int(0)), Value::Bytes(Vec::new()));
        assert!(to_value(&en, &l, BinlogValue::Value(Value::Int(9))).is_err());
    }
}
