//! Whether a queue record can become a row of its table.
//!
//! The queue may hold records this example's generator did not write: another process, an
//! older version, a damaged write. A record becomes a row when its `json` value is text holding
//! one JSON object whose columns fit the table's types in `sql/setup.sql`:
//!
//! | column type            | accepted JSON                                               |
//! |------------------------|-------------------------------------------------------------|
//! | `TXID varchar(255)`    | a non-empty string (the report reconciles by it)            |
//! | other `varchar(255)`   | a string of at most 255 characters, or null                 |
//! | `datetime`             | `YYYY-MM-DD HH:MM:SS[.f]` (or with `T`), or null            |
//! | `date`                 | `YYYY-MM-DD`, or null                                       |
//! | `number` / `integer`   | an integer, or null                                         |
//! | `decimal(7,2)`         | a number below 100,000 in magnitude, or null                |
//! | `variant`              | anything                                                    |
//!
//! Other keys are passed on (the pipes match by column name and ignore them). Everything else
//! is refused with a reason, and the streamer dead-letters the record instead of sending it.
//! Reasons name the column and the expected type but never quote the record's values (they
//! go to the log).

use crate::common::json_type_name;
use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::ski_resort::model::Table;

/// The type of one landed column, as `sql/setup.sql` declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Txid,
    Text,
    Timestamp,
    Date,
    Integer,
    Decimal,
    Variant,
}

const CUSTOMER: [(&str, Kind); 5] = [
    ("NAME", Kind::Text),
    ("ADDRESS", Kind::Variant),
    ("PHONE", Kind::Text),
    ("EMAIL", Kind::Text),
    ("EMERGENCY_CONTACT", Kind::Variant),
];

fn columns(table: Table) -> Vec<(&'static str, Kind)> {
    let mut cols = match table {
        Table::ResortTicket => vec![
            ("TXID", Kind::Txid),
            ("RFID", Kind::Text),
            ("RESORT", Kind::Text),
            ("PURCHASE_TIME", Kind::Timestamp),
            ("PRICE_USD", Kind::Decimal),
            ("EXPIRATION_TIME", Kind::Date),
            ("DAYS", Kind::Integer),
        ],
        Table::SeasonPass => vec![
            ("TXID", Kind::Txid),
            ("RFID", Kind::Text),
            ("PURCHASE_TIME", Kind::Timestamp),
            ("PRICE_USD", Kind::Decimal),
            ("EXPIRATION_TIME", Kind::Date),
        ],
        Table::LiftRide => vec![
            ("TXID", Kind::Txid),
            ("RFID", Kind::Text),
            ("RESORT", Kind::Text),
            ("LIFT", Kind::Text),
            ("RIDE_TIME", Kind::Timestamp),
            ("ACTIVATION_DAY_COUNT", Kind::Integer),
        ],
    };
    if table != Table::LiftRide {
        cols.extend(CUSTOMER);
    }
    cols
}

fn check_value(kind: Kind, v: &Value) -> Result<(), String> {
    if v.is_null() {
        return if kind == Kind::Txid {
            Err("is null; expected a non-empty string".into())
        } else {
            Ok(())
        };
    }
    let bad = |expected: &str| Err(format!("is {}; expected {expected}", json_type_name(v)));
    match (kind, v) {
        (Kind::Variant, _) => Ok(()),
        (Kind::Txid, Value::String(s)) if s.is_empty() => Err("is empty".into()),
        (Kind::Txid | Kind::Text, Value::String(s)) if s.chars().count() > 255 => Err(format!(
            "has {} characters; varchar(255) holds at most 255",
            s.chars().count()
        )),
        (Kind::Txid | Kind::Text, Value::String(_)) => Ok(()),
        (Kind::Txid, _) => bad("a non-empty string"),
        (Kind::Text, _) => bad("a string"),
        (Kind::Timestamp, Value::String(s)) => {
            let ok = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .any(|f| chrono::NaiveDateTime::parse_from_str(s, f).is_ok());
            if ok {
                Ok(())
            } else {
                Err("is not a timestamp YYYY-MM-DD HH:MM:SS[.ffffff]".into())
            }
        }
        (Kind::Timestamp, _) => bad("a timestamp string"),
        (Kind::Date, Value::String(s)) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(|_| ())
            .map_err(|_| "is not a date YYYY-MM-DD".into()),
        (Kind::Date, _) => bad("a date string"),
        (Kind::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(()),
        (Kind::Integer, _) => bad("an integer"),
        (Kind::Decimal, Value::Number(n)) => match n.as_f64() {
            Some(f) if f.abs() < 100_000.0 => Ok(()),
            _ => Err("is out of range; decimal(7,2) holds less than 100,000".into()),
        },
        (Kind::Decimal, _) => bad("a number"),
    }
}

fn check_object(table: Table, row: &Map<String, Value>) -> Result<(), String> {
    for (column, kind) in columns(table) {
        // MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE: find the key in any case.
        let value = row
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(column))
            .map(|(_, v)| v);
        match value {
            Some(v) => check_value(kind, v).map_err(|e| format!("column {column} {e}"))?,
            None if kind == Kind::Txid => return Err(format!("column {column} is missing")),
            None => {}
        }
    }
    Ok(())
}

/// Checks one record of `table`'s queue. Returns the NDJSON line to send (the record itself,
/// or re-encoded on one line when it spans several), or why it cannot become a row.
///
/// # Errors
/// The reason, naming the problem (never the record's values).
pub(super) fn check(table: Table, json: &str) -> Result<Cow<'_, str>, String> {
    if json.trim().is_empty() {
        return Err("empty record (no JSON)".into());
    }
    let value: Value = serde_json::from_str(json).map_err(|e| {
        format!(
            "not JSON ({} at line {} column {})",
            match e.classify() {
                serde_json::error::Category::Eof => "ends early",
                _ => "syntax error",
            },
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(row) = &value else {
        return Err(format!(
            "JSON {}, not an object: a row is one JSON object",
            json_type_name(&value)
                .trim_start_matches("a ")
                .trim_start_matches("an ")
        ));
    };
    check_object(table, row)?;
    if json.contains(['\n', '\r']) {
        // NDJSON: one row per line. serde_json re-encodes compactly.
        return Ok(Cow::Owned(value.to_string()));
    }
    Ok(Cow::Borrowed(json))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::ski_resort::generator::{Generator, GeneratorConfig};

    #[test]
    fn generated_rows_pass_unchanged() {
        let mut g = Generator::new(&GeneratorConfig {
            seed: 3,
            start: NaiveDate::from_ymd_opt(2025, 12, 20).unwrap(),
            events_per_day: 1500,
        });
        let mut seen = [0; 3];
        for _ in 0..3000 {
            let row = g.next_row();
            let json = row.to_json();
            let checked = check(row.table(), &json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert!(matches!(checked, Cow::Borrowed(_)));
            seen[row.table().index()] += 1;
        }
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
    }

    #[test]
    fn refuses_what_cannot_become_a_row_with_a_reason() {
        let cases = [
            (Table::LiftRide, "", "empty record"),
            (Table::LiftRide, "  \t", "empty record"),
            (Table::LiftRide, "{\"TXID\": ", "not JSON (ends early"),
            (Table::LiftRide, "hello", "not JSON (syntax error"),
            (Table::LiftRide, "[1,2]", "JSON array, not an object"),
            (Table::LiftRide, "\"x\"", "JSON string, not an object"),
            (Table::LiftRide, "null", "JSON null, not an object"),
            (
                Table::LiftRide,
                "{\"RFID\":\"r\"}",
                "column TXID is missing",
            ),
            (Table::LiftRide, "{\"TXID\":\"\"}", "column TXID is empty"),
            (
                Table::LiftRide,
                "{\"TXID\":\"t\",\"ACTIVATION_DAY_COUNT\":\"secret-value\"}",
                "column ACTIVATION_DAY_COUNT is a string; expected an integer",
            ),
            (
                Table::ResortTicket,
                "{\"txid\":\"t\",\"price_usd\":1e9}",
                "column PRICE_USD is out of range",
            ),
            (
                Table::SeasonPass,
                "{\"TXID\":\"t\",\"PURCHASE_TIME\":\"yesterday\"}",
                "column PURCHASE_TIME is not a timestamp",
            ),
            (
                Table::SeasonPass,
                "{\"TXID\":\"t\",\"EXPIRATION_TIME\":7}",
                "column EXPIRATION_TIME is a number; expected a date string",
            ),
        ];
        for (table, json, want) in cases {
            let err = check(table, json).expect_err(json);
            assert!(err.contains(want), "{json:?}: {err:?} lacks {want:?}");
            assert!(
                !err.contains("secret-value"),
                "reason quotes a value: {err}"
            );
        }
    }

    #[test]
    fn accepts_nulls_extra_keys_and_reencodes_multiline_objects() {
        let json = "{\n  \"TXID\": \"t\",\n  \"RIDE_TIME\": null,\n  \"OTHER\": [1]\n}";
        let line = check(Table::LiftRide, json).unwrap();
        assert!(!line.contains('\n'));
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["TXID"], "t");
        assert!(check(
            Table::LiftRide,
            "{\"TXID\":\"t\",\"RIDE_TIME\":\"2025-12-20T09:00:00\"}"
        )
        .is_ok());
    }
}
