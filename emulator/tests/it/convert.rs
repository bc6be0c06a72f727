//! Conversion tests: JSON values → SQLite values per Snowflake column type.

use crate::common::{assert_query, connected, keys};
use rusqlite::Connection;
use serde_json::{json, Map, Value};
use snowpipe_emulator::catalog::{Catalog, Column, ColumnType, Table};
use snowpipe_emulator::convert::{
    convert_line, convert_row, convert_row_for_pipe, convert_row_with, sqlite_create_table,
    sqlite_insert, BinaryFormat, ConvertOptions, RowError, SqlValue,
};
use snowpipe_emulator::EmulatorConfig;

use ColumnType as T;
use SqlValue::{Blob, Integer, Null, Real, Text};

fn table(columns: &[(&str, ColumnType, bool)]) -> Table {
    Table {
        database: "DB".into(),
        schema: "SCH".into(),
        name: "T".into(),
        columns: columns
            .iter()
            .map(|(name, ty, nullable)| Column {
                name: (*name).into(),
                ty: ty.clone(),
                nullable: *nullable,
                default: None,
            })
            .collect(),
        error_logging: false,
        schema_evolution: false,
    }
}

fn row(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// `value` converted for a column of type `ty`, in the session time zone UTC (so epoch
/// numbers keep their UTC wall clock; `tz_` tests cover the zone).
fn convert_one(ty: &ColumnType, value: Value) -> Result<SqlValue, RowError> {
    let table = table(&[("C", ty.clone(), true)]);
    let options = ConvertOptions {
        timezone: chrono_tz::UTC,
        ..ConvertOptions::default()
    };
    convert_row_with(&table, &row(json!({ "c": value })), &options)
        .map(|mut values| values.remove(0))
}

fn text(s: &str) -> SqlValue {
    Text(s.into())
}

fn exact(s: &str) -> SqlValue {
    SqlValue::Decimal(s.into())
}

const fn number(precision: u8, scale: u8) -> ColumnType {
    T::Number { precision, scale }
}

/// (type, input, expected value); every case is also checked for "no error".
fn valid_cases() -> Vec<(ColumnType, Value, SqlValue)> {
    vec![
        // NUMBER(p,0)
        (number(38, 0), json!(42), Integer(42)),
        (number(38, 0), json!(-7), Integer(-7)),
        (number(38, 0), json!("123"), Integer(123)),
        (number(38, 0), json!(" 1e3 "), Integer(1000)),
        (number(38, 0), json!(2.5), Integer(3)),
        (number(38, 0), json!(-2.5), Integer(-3)),
        (number(38, 0), json!("2.4"), Integer(2)),
        // Beyond i64 and beyond what a double gives back: the exact decimal.
        (
            number(38, 0),
            json!(u64::MAX),
            exact("18446744073709551615"),
        ),
        (
            number(38, 0),
            json!("123456789012345678901234567890"),
            exact("123456789012345678901234567890"),
        ),
        // Beyond i64 but a double prints it back exactly: REAL.
        (number(38, 0), json!("1e20"), Real(1e20)),
        (
            number(38, 0),
            json!("-9223372036854775808"),
            Integer(i64::MIN),
        ),
        (number(3, 0), json!(999), Integer(999)),
        // NUMBER(p,s): rounded half away from zero, then REAL when the double prints back
        // as the same decimal at the column's scale, else the exact decimal.
        (number(7, 2), json!(123.45), Real(123.45)),
        (number(7, 2), json!("123.455"), Real(123.46)),
        (number(7, 2), json!("-123.455"), Real(-123.46)),
        (number(7, 2), json!(12.344), Real(12.34)),
        (number(7, 2), json!("99999.994"), Real(99999.99)),
        (number(7, 2), json!(0), Real(0.0)),
        (number(7, 2), json!("1.5e2"), Real(150.0)),
        (number(5, 5), json!(0.123456), Real(0.12346)),
        (number(20, 4), json!("12.3"), Real(12.3)),
        (number(20, 4), json!("-0.00005"), Real(-0.0001)),
        (number(20, 4), json!("0.00004"), Real(0.0)),
        (
            number(38, 2),
            json!("123456789012345678901234567890.125"),
            exact("123456789012345678901234567890.13"),
        ),
        (number(38, 10), json!("0.1234567890"), Real(0.123456789)),
        (
            number(38, 10),
            json!("-12345678901234567890.12345678905"),
            exact("-12345678901234567890.1234567891"),
        ),
        (
            number(38, 37),
            json!(0.1),
            exact(&format!("0.1{}", "0".repeat(36))),
        ),
        // FLOAT
        (T::Float, json!(1.5), Real(1.5)),
        (T::Float, json!(3), Real(3.0)),
        (T::Float, json!("2.5e-3"), Real(0.0025)),
        (T::Float, json!("inf"), Real(f64::INFINITY)),
        (T::Float, json!("-Infinity"), Real(f64::NEG_INFINITY)),
        (T::Float, json!("NaN"), text("NaN")),
        // VARCHAR
        (T::Varchar { max_len: None }, json!("hello"), text("hello")),
        (T::Varchar { max_len: None }, json!(12.5), text("12.5")),
        (T::Varchar { max_len: None }, json!(true), text("true")),
        (
            T::Varchar { max_len: None },
            json!({"a": [1, "x"]}),
            text(r#"{"a":[1,"x"]}"#),
        ),
        (T::Varchar { max_len: Some(3) }, json!("abc"), text("abc")),
        (T::Varchar { max_len: Some(3) }, json!("é€ü"), text("é€ü")),
        // BOOLEAN
        (T::Boolean, json!(true), Integer(1)),
        (T::Boolean, json!(false), Integer(0)),
        (T::Boolean, json!("YES"), Integer(1)),
        (T::Boolean, json!("off"), Integer(0)),
        (T::Boolean, json!("t"), Integer(1)),
        (T::Boolean, json!("N"), Integer(0)),
        (T::Boolean, json!("1"), Integer(1)),
        (T::Boolean, json!(" False "), Integer(0)),
        // DATE
        (T::Date, json!("2024-01-02"), text("2024-01-02")),
        (
            T::Date,
            json!("2024-01-02T23:59:59.999+05:00"),
            text("2024-01-02"),
        ),
        (T::Date, json!(86_400), text("1970-01-02")),
        // The service's other date formats.
        (T::Date, json!("01/02/2024"), text("2024-01-02")),
        (T::Date, json!("17-DEC-1980"), text("1980-12-17")),
        // TIME
        (
            T::Time { scale: 9 },
            json!("03:04:05"),
            text("03:04:05.000000000"),
        ),
        (
            T::Time { scale: 9 },
            json!("03:04:05.123456"),
            text("03:04:05.123456000"),
        ),
        (
            T::Time { scale: 9 },
            json!("23:59"),
            text("23:59:00.000000000"),
        ),
        // HH24:MI:SS.FFTZH:TZM (offset dropped), 12-hour forms, integer-stored times (the
        // time of day of that epoch value in UTC).
        (
            T::Time { scale: 9 },
            json!("20:57:01.123456789+07:00"),
            text("20:57:01.123456789"),
        ),
        (
            T::Time { scale: 9 },
            json!("08:57:01.5 PM"),
            text("20:57:01.500000000"),
        ),
        (
            T::Time { scale: 9 },
            json!("12:30 AM"),
            text("00:30:00.000000000"),
        ),
        (
            T::Time { scale: 9 },
            json!(3600),
            text("01:00:00.000000000"),
        ),
        (
            T::Time { scale: 9 },
            json!("-1"),
            text("23:59:59.000000000"),
        ),
        // TIME(p) / TIMESTAMP_*(p): fractional digits past p are dropped (truncated).
        (
            T::Time { scale: 3 },
            json!("03:04:05.123999"),
            text("03:04:05.123000000"),
        ),
        (
            T::Time { scale: 0 },
            json!("03:04:05.9"),
            text("03:04:05.000000000"),
        ),
        (
            T::TimestampNtz { scale: 3 },
            json!("2024-01-02T03:04:05.678901"),
            text("2024-01-02 03:04:05.678000000"),
        ),
        (
            T::TimestampNtz { scale: 6 },
            json!(1_700_000_000_123_456_789_i64),
            text("2023-11-14 22:13:20.123456000"),
        ),
        (
            T::TimestampLtz { scale: 0 },
            json!("2024-01-02T03:04:05.999+01:00"),
            text("2024-01-02 02:04:05.000000000Z"),
        ),
        (
            T::TimestampTz { scale: 2 },
            json!("2024-01-02T03:04:05.999-08:00"),
            text("2024-01-02 03:04:05.990000000-08:00"),
        ),
        // TIMESTAMP_NTZ: wall clock kept, offset dropped.
        (
            T::TimestampNtz { scale: 9 },
            json!("2024-01-02T03:04:05.678901"),
            text("2024-01-02 03:04:05.678901000"),
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!("2024-01-02 03:04:05"),
            text("2024-01-02 03:04:05.000000000"),
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!("2024-01-02T03:04:05.123456789Z"),
            text("2024-01-02 03:04:05.123456789"),
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!("2024-01-02T03:04:05+05:30"),
            text("2024-01-02 03:04:05.000000000"),
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!("2024-01-02"),
            text("2024-01-02 00:00:00.000000000"),
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!("2024-01-02T03:04"),
            text("2024-01-02 03:04:00.000000000"),
        ),
        // Epochs: seconds below 31536000000, then ms, µs, ns.
        (
            T::TimestampNtz { scale: 9 },
            json!(1_700_000_000),
            text("2023-11-14 22:13:20.000000000"),
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!("1700000000"),
            text("2023-11-14 22:13:20.000000000"),
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!(1_700_000_000_123_i64),
            text("2023-11-14 22:13:20.123000000"),
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!(1_700_000_000_123_456_i64),
            text("2023-11-14 22:13:20.123456000"),
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!(1_700_000_000_123_456_789_i64),
            text("2023-11-14 22:13:20.123456789"),
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!(1_700_000_000.25),
            text("2023-11-14 22:13:20.250000000"),
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!(-1),
            text("1969-12-31 23:59:59.000000000"),
        ),
        // Negative epochs are scaled by magnitude like positive ones: milliseconds here.
        (
            T::TimestampNtz { scale: 9 },
            json!(-1_700_000_000_123_i64),
            text("1916-02-18 01:46:39.877000000"),
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!("9999-12-31 23:59:59.999999999"),
            text("9999-12-31 23:59:59.999999999"),
        ),
        // TIMESTAMP_LTZ: converted to UTC, 'Z' suffix; TIMESTAMP_TZ keeps its offset; no
        // offset means UTC.
        (
            T::TimestampLtz { scale: 9 },
            json!("2024-01-02T03:04:05+05:30"),
            text("2024-01-01 21:34:05.000000000Z"),
        ),
        (
            T::TimestampTz { scale: 9 },
            json!("2024-01-02 03:04:05.5 -0800"),
            text("2024-01-02 03:04:05.500000000-08:00"),
        ),
        (
            T::TimestampTz { scale: 9 },
            json!("2024-01-02T03:04:05"),
            text("2024-01-02 03:04:05.000000000+00:00"),
        ),
        (
            T::TimestampLtz { scale: 9 },
            json!(0),
            text("1970-01-01 00:00:00.000000000Z"),
        ),
        // VARIANT / OBJECT / ARRAY: compact JSON.
        (
            T::Variant,
            json!({"street": "1 Main St", "zip": 12345}),
            text(r#"{"street":"1 Main St","zip":12345}"#),
        ),
        (T::Variant, json!("abc"), text("\"abc\"")),
        (T::Variant, json!(12), text("12")),
        (T::Variant, json!([1, 2]), text("[1,2]")),
        (T::Object, json!({"a": 1}), text(r#"{"a":1}"#)),
        (T::Array, json!([{"a": 1}]), text(r#"[{"a":1}]"#)),
        // A string into an OBJECT is JSON text; any other value into an ARRAY is a
        // one-element array (a string is not parsed).
        (T::Object, json!(r#"{"a": [1, 2]}"#), text(r#"{"a":[1,2]}"#)),
        (T::Array, json!("x"), text(r#"["x"]"#)),
        (T::Array, json!("[1,2]"), text(r#"["[1,2]"]"#)),
        (T::Array, json!({"a": 1}), text(r#"[{"a":1}]"#)),
        (T::Array, json!(7), text("[7]")),
        // BINARY: hex by default (Snowflake's BINARY_INPUT_FORMAT), whitespace ignored.
        (
            T::Binary { max_len: None },
            json!("0001fF"),
            Blob(vec![0, 1, 255]),
        ),
        (
            T::Binary { max_len: None },
            json!("68 69\n"),
            Blob(b"hi".to_vec()),
        ),
        // A JSON null in a VARIANT is a VARIANT null, not SQL NULL.
        (T::Variant, json!(null), text("null")),
        (
            T::Binary { max_len: Some(3) },
            json!("0001FF"),
            Blob(vec![0, 1, 255]),
        ),
    ]
}

/// (type, input, start of the expected message).
fn invalid_cases() -> Vec<(ColumnType, Value, &'static str)> {
    vec![
        (
            number(38, 0),
            json!("abc"),
            "Numeric value 'abc' is not recognized",
        ),
        (
            number(38, 0),
            json!(true),
            "Numeric value 'true' is not recognized",
        ),
        (
            number(38, 0),
            json!([1]),
            "Numeric value '[1]' is not recognized",
        ),
        (
            number(38, 0),
            json!("NaN"),
            "Numeric value 'NaN' is not recognized",
        ),
        (
            number(3, 0),
            json!(1000),
            "Numeric value '1000' is out of range for NUMBER(3,0)",
        ),
        (
            number(3, 0),
            json!(999.5),
            "Numeric value '999.5' is out of range",
        ),
        (
            number(7, 2),
            json!(100000),
            "Numeric value '100000' is out of range for NUMBER(7,2)",
        ),
        (
            number(7, 2),
            json!("99999.995"),
            "Numeric value '99999.995' is out of range",
        ),
        (
            number(38, 0),
            json!("1e40"),
            "Numeric value '1e40' is out of range",
        ),
        (
            T::Float,
            json!("twelve"),
            "Numeric value 'twelve' is not recognized",
        ),
        (
            T::Float,
            json!(false),
            "Numeric value 'false' is not recognized",
        ),
        (
            T::Varchar { max_len: Some(3) },
            json!("abcd"),
            "User character length limit (3) exceeded by string 'abcd'",
        ),
        (
            T::Varchar { max_len: Some(2) },
            json!(123),
            "User character length limit (2) exceeded",
        ),
        (
            T::Boolean,
            json!("maybe"),
            "Boolean value 'maybe' is not recognized",
        ),
        (
            T::Boolean,
            json!("2"),
            "Boolean value '2' is not recognized",
        ),
        (
            T::Boolean,
            json!({}),
            "Boolean value '{}' is not recognized",
        ),
        (
            T::Date,
            json!("2024-13-01"),
            "Date '2024-13-01' is not recognized",
        ),
        (
            T::Date,
            json!("2024/01/02"),
            "Date '2024/01/02' is not recognized",
        ),
        // The service takes no number for BOOLEAN.
        (
            T::Boolean,
            json!(0),
            "Failed to cast variant value 0 to BOOLEAN",
        ),
        (
            T::Boolean,
            json!(2.5),
            "Failed to cast variant value 2.5 to BOOLEAN",
        ),
        // TIME takes no timestamp and no lower-case am/pm.
        (
            T::Time { scale: 9 },
            json!("2024-01-02 03:04:05.5"),
            "Time '2024-01-02 03:04:05.5' is not recognized",
        ),
        (
            T::Time { scale: 9 },
            json!("08:57 pm"),
            "Time '08:57 pm' is not recognized",
        ),
        (T::Date, json!(true), "Date 'true' is not recognized"),
        (
            T::Time { scale: 9 },
            json!("25:00:00"),
            "Time '25:00:00' is not recognized",
        ),
        // An offset needs fractional seconds (HH24:MI:SS.FFTZH:TZM); 13 is no 12-hour hour.
        (
            T::Time { scale: 9 },
            json!("20:57:01+07:00"),
            "Time '20:57:01+07:00' is not recognized",
        ),
        (
            T::Time { scale: 9 },
            json!("13:00 PM"),
            "Time '13:00 PM' is not recognized",
        ),
        (
            T::Time { scale: 9 },
            json!(3600.5),
            "Time '3600.5' is not recognized",
        ),
        // Timestamps hold years 1 to 9999.
        (
            T::TimestampNtz { scale: 9 },
            json!("0000-12-31 23:59:59"),
            "Timestamp '0000-12-31 23:59:59' is out of the representable range of years 1 to 9999",
        ),
        (
            T::TimestampLtz { scale: 9 },
            json!("253402300800000000000"),
            "Timestamp '253402300800000000000' is out of the representable range",
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!("2024-01-02T03:04:05+99:00"),
            "Timestamp '2024-01-02T03:04:05+99:00' is not recognized",
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!("2024-01-02X03:04:05"),
            "Timestamp '2024-01-02X03:04:05' is not recognized",
        ),
        (
            T::TimestampNtz { scale: 9 },
            json!("yesterday"),
            "Timestamp 'yesterday' is not recognized",
        ),
        (
            T::TimestampLtz { scale: 9 },
            json!("2024-02-30 00:00:00"),
            "Timestamp '2024-02-30 00:00:00' is not recognized",
        ),
        (
            T::TimestampTz { scale: 9 },
            json!(false),
            "Timestamp 'false' is not recognized",
        ),
        (
            T::Object,
            json!([1]),
            "Failed to cast variant value [1] to OBJECT",
        ),
        (
            T::Object,
            json!("[1]"),
            "Failed to cast variant value [1] to OBJECT",
        ),
        (
            T::Object,
            json!("{not json"),
            "Error parsing JSON for OBJECT",
        ),
        (
            T::Binary { max_len: None },
            json!("not hex!"),
            "Can't parse 'not hex!' as binary value with format HEX",
        ),
        (
            T::Binary { max_len: None },
            json!(12),
            "Can't parse '12' as binary value",
        ),
        (
            T::Binary { max_len: Some(2) },
            json!("0001ff"),
            "Binary value of 3 bytes exceeds the column's limit (2)",
        ),
        // Default maxima: VARCHAR 16 MB of UTF-8 bytes (whatever its length), BINARY 8 MB.
        (
            T::Varchar { max_len: None },
            json!("x".repeat(16_777_217)),
            "String of 16777217 bytes exceeds the maximum VARCHAR size (16777216 bytes)",
        ),
        (
            T::Varchar {
                max_len: Some(16_777_216),
            },
            json!("é".repeat(8_388_609)),
            "String of 16777218 bytes exceeds the maximum VARCHAR size (16777216 bytes)",
        ),
        (
            T::Binary { max_len: None },
            json!("00".repeat(8_388_609)),
            "Binary value of 8388609 bytes exceeds the column's limit (8388608)",
        ),
        // A finite number too large for a double is out of range (not infinity).
        (
            T::Float,
            json!("1e400"),
            "Numeric value '1e400' is out of range",
        ),
    ]
}

#[test]
fn valid_values_convert_per_type() {
    for (ty, input, expected) in valid_cases() {
        let actual = convert_one(&ty, input.clone());
        assert_eq!(actual, Ok(expected), "{} <- {input}", ty.sql_name());
    }
}

#[test]
fn invalid_values_are_row_errors_naming_the_column() {
    for (ty, input, expected) in invalid_cases() {
        let error = convert_one(&ty, input.clone())
            .expect_err(&format!("{} <- {input} must fail", ty.sql_name()));
        assert_eq!(error.column.as_deref(), Some("C"), "{input}");
        assert!(
            error.message.starts_with(expected),
            "{} <- {input}: got {:?}, want {expected:?}",
            ty.sql_name(),
            error.message
        );
        assert!(error.to_string().ends_with("(column \"C\")"), "{error}");
    }
}

#[test]
fn binary_formats_base64_and_utf8_are_options() {
    let table = table(&[("B", T::Binary { max_len: None }, true)]);
    let hex = ConvertOptions::default();
    let base64 = ConvertOptions {
        binary_format: BinaryFormat::Base64,
        ..ConvertOptions::default()
    };
    assert_eq!(
        convert_row_with(&table, &row(json!({"b": "AAH/\naGk="})), &base64),
        Ok(vec![Blob(vec![0, 1, 255, b'h', b'i'])]),
        "base64 with a line break"
    );
    let utf8 = ConvertOptions {
        binary_format: BinaryFormat::Utf8,
        ..ConvertOptions::default()
    };
    assert_eq!(
        convert_row_with(&table, &row(json!({"b": "01fF41"})), &hex),
        Ok(vec![Blob(vec![1, 255, 0x41])])
    );
    assert!(convert_row_with(&table, &row(json!({"b": "0g"})), &hex).is_err());
    assert!(convert_row_with(&table, &row(json!({"b": "abc"})), &hex).is_err());
    assert_eq!(
        convert_row_with(&table, &row(json!({"b": "hé"})), &utf8),
        Ok(vec![Blob("hé".as_bytes().to_vec())])
    );
}

#[test]
fn not_null_columns_reject_null_and_missing_values() {
    let table = table(&[
        ("ID", number(38, 0), false),
        ("NOTE", T::Varchar { max_len: None }, true),
    ]);
    for input in [json!({"id": null, "note": "x"}), json!({"note": "x"})] {
        let error = convert_row(&table, &row(input)).unwrap_err();
        assert_eq!(error.column.as_deref(), Some("ID"));
        assert_eq!(error.message, "NULL result in a non-nullable column");
    }
    assert_eq!(
        convert_row(&table, &row(json!({"id": 1, "note": null}))),
        Ok(vec![Integer(1), Null])
    );
}

#[test]
fn names_match_case_insensitively_missing_columns_are_null_and_unknown_keys_ignored() {
    let table = table(&[
        ("TXID", T::Varchar { max_len: None }, true),
        ("Price", number(7, 2), true),
        ("DAYS", number(38, 0), true),
    ]);
    let values = convert_row(
        &table,
        &row(json!({"txId": "a1", "PRICE": "9.99", "unknown": [1, 2, 3]})),
    )
    .unwrap();
    assert_eq!(values, [text("a1"), Real(9.99), Null]);
    // An exact match wins over a case-insensitive one, whatever the key order.
    let values = convert_row(&table, &row(json!({"PRICE": 1, "Price": 2}))).unwrap();
    assert_eq!(values[1], Real(2.0));
    let values = convert_row(&table, &row(json!({"Price": 2, "price": 1}))).unwrap();
    assert_eq!(values[1], Real(2.0));
}

#[test]
fn lines_that_are_not_json_objects_are_row_errors() {
    let table = table(&[("A", number(38, 0), true)]);
    assert_eq!(convert_line(&table, br#"{"a": 5}"#), Ok(vec![Integer(5)]));
    assert_eq!(
        convert_line(&table, b"{\"A\": \"6\"}\r\n"),
        Ok(vec![Integer(6)])
    );
    for line in [
        &b"[1, 2]"[..],
        b"42",
        b"\"str\"",
        b"{\"a\": ",
        b"not json",
        b"",
    ] {
        let error = convert_line(&table, line).unwrap_err();
        assert_eq!(error.column, None, "{}", String::from_utf8_lossy(line));
        assert!(
            error.message.starts_with("Row is not a JSON object")
                || error.message.starts_with("Error parsing JSON"),
            "{}",
            error.message
        );
    }
}

#[test]
fn sqlite_tables_accept_converted_rows_and_read_back() {
    let table = Table {
        database: "STREAMING_INGEST".into(),
        schema: "STREAMING_INGEST".into(),
        name: "RESORT_TICKET".into(),
        columns: vec![
            Column {
                name: "TXID".into(),
                ty: T::Varchar { max_len: Some(255) },
                nullable: false,
                default: None,
            },
            Column {
                name: "PURCHASE_TIME".into(),
                ty: T::TimestampNtz { scale: 9 },
                nullable: true,
                default: None,
            },
            Column {
                name: "PRICE_USD".into(),
                ty: number(7, 2),
                nullable: true,
                default: None,
            },
            Column {
                name: "DAYS".into(),
                ty: number(38, 0),
                nullable: true,
                default: None,
            },
            Column {
                name: "ADDRESS".into(),
                ty: T::Variant,
                nullable: true,
                default: None,
            },
            Column {
                name: "SEEN_AT".into(),
                ty: T::TimestampTz { scale: 9 },
                nullable: true,
                default: None,
            },
            Column {
                name: "ACTIVE".into(),
                ty: T::Boolean,
                nullable: true,
                default: None,
            },
            Column {
                name: "PAYLOAD".into(),
                ty: T::Binary { max_len: None },
                nullable: true,
                default: None,
            },
            Column {
                name: "BIG".into(),
                ty: number(38, 0),
                nullable: true,
                default: None,
            },
            Column {
                name: "weird \"name\"".into(),
                ty: T::Float,
                nullable: true,
                default: None,
            },
        ],
        error_logging: false,
        schema_evolution: false,
    };
    let ddl = sqlite_create_table(&table);
    assert!(ddl.starts_with(
        "CREATE TABLE IF NOT EXISTS \"STREAMING_INGEST.STREAMING_INGEST.RESORT_TICKET\" (\"TXID\" VARCHAR(255), \"PURCHASE_TIME\" TIMESTAMP_NTZ, \"PRICE_USD\" NUMBER(7,2)"
    ), "{ddl}");
    let db = Connection::open_in_memory().unwrap();
    db.execute(&ddl, []).unwrap();
    db.execute(&ddl, []).unwrap(); // IF NOT EXISTS

    let rows = [
        json!({"txid": "t1", "purchase_time": "2024-01-02T03:04:05.678901", "price_usd": "19.99",
               "days": 3, "address": {"city": "Zermatt", "zip": "3920"},
               "seen_at": "2024-01-02T03:04:05+01:00", "active": "yes", "payload": "0001ff",
               "big": "123456789012345678901234567890", "weird \"name\"": 1.5}),
        json!({"txid": "t2", "purchase_time": "2024-01-03 10:00:00", "price_usd": 5.015, "days": null}),
    ];
    let insert = sqlite_insert(&table);
    for r in rows {
        let values = convert_row(&table, &row(r)).unwrap();
        db.execute(&insert, rusqlite::params_from_iter(values.iter()))
            .unwrap();
    }

    let (sum, hour, city, seen_utc, active, payload, big, weird): (
        f64,
        String,
        String,
        String,
        i64,
        Vec<u8>,
        Vec<u8>,
        f64,
    ) = db
        .query_row(
            "SELECT (SELECT SUM(PRICE_USD) FROM \"STREAMING_INGEST.STREAMING_INGEST.RESORT_TICKET\"),
                    strftime('%Y-%m-%d %H', PURCHASE_TIME), json_extract(ADDRESS, '$.city'),
                    datetime(SEEN_AT), ACTIVE, PAYLOAD, BIG, \"weird \"\"name\"\"\"
             FROM \"STREAMING_INGEST.STREAMING_INGEST.RESORT_TICKET\" WHERE TXID = 't1'",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .unwrap();
    assert!((sum - 25.01).abs() < 1e-9, "{sum}");
    assert_eq!(hour, "2024-01-02 03");
    assert_eq!(city, "Zermatt");
    assert_eq!(seen_utc, "2024-01-02 02:04:05");
    assert_eq!(active, 1);
    assert_eq!(payload, vec![0, 1, 255]);
    // Beyond what INTEGER or REAL gives back, the exact decimal is stored as the BLOB of its
    // text (SQLite's NUMERIC affinity would turn TEXT into a REAL)...
    assert_eq!(big, b"123456789012345678901234567890");
    // ...which SQL arithmetic still reads as a number.
    let plus: f64 = db
        .query_row(
            "SELECT BIG + 0 FROM \"STREAMING_INGEST.STREAMING_INGEST.RESORT_TICKET\" WHERE TXID = 't1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(plus, 1.2345678901234568e29);
    assert_eq!(weird, 1.5);

    let days: Option<i64> = db
        .query_row(
            "SELECT DAYS FROM \"STREAMING_INGEST.STREAMING_INGEST.RESORT_TICKET\" WHERE TXID = 't2'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(days, None);
}

#[test]
fn pipes_map_columns_by_their_transform_or_match_mode() {
    let mut catalog = Catalog::new();
    catalog
        .apply_sql(
            r#"CREATE DATABASE D; CREATE SCHEMA S;
            CREATE TABLE T (ID int not null, TS timestamp_ntz, DOC variant, CITY varchar);
            CREATE PIPE BY_PATH AS COPY INTO T FROM (
                SELECT $1:id, $1:meta.when::TIMESTAMP_NTZ, $1, $1:addr.city
                FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')));
            CREATE PIPE SOME_COLUMNS AS COPY INTO T (CITY, ID) FROM (
                SELECT $1['town'], $1:n FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')));
            CREATE PIPE EXACT AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))
                MATCH_BY_COLUMN_NAME = CASE_SENSITIVE;"#,
        )
        .unwrap();
    let table = catalog.table("D", "S", "T").unwrap();
    let options = ConvertOptions::default();
    let pipe = |name| catalog.pipe_definition("D", "S", name).unwrap();

    let input =
        row(json!({"id": 7, "meta": {"when": "2024-01-02T03:04:05"}, "addr": {"city": "Sion"}}));
    let values = convert_row_for_pipe(table, pipe("BY_PATH"), &input, &options)
        .unwrap()
        .unwrap();
    assert_eq!(
        values,
        [
            Integer(7),
            text("2024-01-02 03:04:05.000000000"),
            text(r#"{"addr":{"city":"Sion"},"id":7,"meta":{"when":"2024-01-02T03:04:05"}}"#),
            text("Sion"),
        ]
    );
    // Paths are case-sensitive: $1:id does not read "ID", so the NOT NULL column fails.
    let error =
        convert_row_for_pipe(table, pipe("BY_PATH"), &row(json!({"ID": 7})), &options).unwrap_err();
    assert_eq!(error.column.as_deref(), Some("ID"));

    let values = convert_row_for_pipe(
        table,
        pipe("SOME_COLUMNS"),
        &row(json!({"town": "Brig", "n": "3"})),
        &options,
    )
    .unwrap()
    .unwrap();
    assert_eq!(values, [Integer(3), Null, Null, text("Brig")]);

    let values = convert_row_for_pipe(
        table,
        pipe("EXACT"),
        &row(json!({"ID": 1, "city": "ignored"})),
        &options,
    )
    .unwrap()
    .unwrap();
    assert_eq!(values, [Integer(1), Null, Null, Null]);
}

/// The service conversions through the HTTP append path: accepted values land
/// converted, refused ones are row errors that name the column and the problem.
#[tokio::test]
async fn the_service_conversions_apply_to_appended_rows() {
    let ddl = "
        CREATE DATABASE IF NOT EXISTS DB;
        CREATE SCHEMA IF NOT EXISTS SCH;
        CREATE OR REPLACE TABLE T (ID NUMBER, TM TIME, TS TIMESTAMP_NTZ, ARR ARRAY, OBJ OBJECT,
            S VARCHAR(16777216));
        CREATE OR REPLACE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))
            MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;
    ";
    let config = EmulatorConfig::for_tests()
        .with_ddl(ddl)
        .with_public_key(keys(0).1);
    let (emu, c) = connected(config).await;
    let ct = c.open_ok("c").await;
    let good = [
        json!({"ID": 1, "TM": "20:57:01.123456789+07:00", "TS": -1_700_000_000_123_i64,
               "ARR": "x", "OBJ": "{\"a\": [1, 2]}", "S": "é€ü"}),
        json!({"ID": 2, "TM": "08:57:01 PM", "TS": "9999-12-31 23:59:59", "ARR": [1, 2]}),
        json!({"ID": 3, "TM": "3600"}),
    ];
    // Epochs become wall clocks in the session zone, America/Los_Angeles by default.
    let bad = [
        json!({"ID": 4, "TS": "0000-12-31 23:59:59"}),
        json!({"ID": 5, "OBJ": "[1, 2]"}),
        json!({"ID": 6, "TM": "20:57:01+07:00"}),
        // 16,777,218 bytes in 8,388,609 characters: over 16 MB though under VARCHAR(16777216).
        json!({"ID": 7, "S": "é".repeat(8_388_609)}),
    ];
    let mut body = String::new();
    for row in good.iter().chain(&bad) {
        body.push_str(&row.to_string());
        body.push('\n');
    }
    c.append_ok("c", &ct, "1", &body).await;
    let status = c.wait_committed("c", "1").await;
    assert_eq!(status["rows_inserted"], 3, "{status}");
    assert_eq!(status["rows_error_count"], 4, "{status}");
    // The last refused row (the 7th) is the one reported.
    let message = status["last_error_message"].as_str().unwrap();
    assert!(message.contains("row 7"), "{message}");
    assert!(
        message.contains("exceeds the maximum VARCHAR size (16777216 bytes)")
            && message.contains("(column \"S\")"),
        "{message}"
    );

    assert_query(
        &emu,
        r#"SELECT ID, TM, TS, ARR, OBJ, S FROM "DB.SCH.T" ORDER BY ID"#,
        vec![
            vec![
                json!(1),
                json!("20:57:01.123456789"),
                json!("1916-02-17 17:46:39.877000000"),
                json!(r#"["x"]"#),
                json!(r#"{"a":[1,2]}"#),
                json!("é€ü"),
            ],
            vec![
                json!(2),
                json!("20:57:01.000000000"),
                json!("9999-12-31 23:59:59.000000000"),
                json!("[1,2]"),
                Value::Null,
                Value::Null,
            ],
            vec![
                json!(3),
                json!("17:00:00.000000000"),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ],
        ],
    );
    emu.shutdown().await;
}

/// The service's DATE/TIMESTAMP string formats, both directions: one example of each format
/// of its list lands as the service reads it (in a TIMESTAMP_TZ column, session zone UTC,
/// so the offset read shows), and strings outside the list are refused.
#[test]
fn timestamp_strings_follow_the_service_format_list() {
    let tz = T::TimestampTz { scale: 9 };
    let accepted = [
        // (format, example, stored)
        (
            "UUUU-MM-DD HH24:MI:SS.FFTZH:TZM",
            "2024-01-15 13:45:30.5+05:30",
            "2024-01-15 13:45:30.500000000+05:30",
        ),
        (
            "UUUU-MM-DD",
            "2024-01-15",
            "2024-01-15 00:00:00.000000000+00:00",
        ),
        (
            "YYYY-MM-DD\"T\"HH24:MI:SS.FFTZH:TZM",
            "2024-01-15T13:45:30.123Z",
            "2024-01-15 13:45:30.123000000+00:00",
        ),
        (
            "YYYY-MM-DD\"T\"HH24:MI:SS.FF",
            "2024-01-15T13:45:30.123456789",
            "2024-01-15 13:45:30.123456789+00:00",
        ),
        (
            "YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM",
            "2024-01-15T13:45:30-08:00",
            "2024-01-15 13:45:30.000000000-08:00",
        ),
        (
            "YYYY-MM-DD\"T\"HH24:MI:SS",
            "2024-01-15T13:45:30",
            "2024-01-15 13:45:30.000000000+00:00",
        ),
        (
            "YYYY-MM-DD\"T\"HH24:MITZH:TZM",
            "2024-01-15T13:45+01:00",
            "2024-01-15 13:45:00.000000000+01:00",
        ),
        (
            "YYYY-MM-DD\"T\"HH24:MI",
            "2024-01-15T13:45",
            "2024-01-15 13:45:00.000000000+00:00",
        ),
        (
            "YYYY-MM-DD\"T\"HH24",
            "2024-01-15T13",
            "2024-01-15 13:00:00.000000000+00:00",
        ),
        (
            "YYYY-MM-DD HH24:MI:SS.FFTZH",
            "2024-01-15 13:45:30.5+05",
            "2024-01-15 13:45:30.500000000+05:00",
        ),
        (
            "YYYY-MM-DD HH24:MI:SS.FF TZH:TZM",
            "2024-01-15 13:45:30.5 -03:30",
            "2024-01-15 13:45:30.500000000-03:30",
        ),
        (
            "YYYY-MM-DD HH24:MI:SS.FF TZHTZM",
            "2024-01-15 13:45:30.5 +0200",
            "2024-01-15 13:45:30.500000000+02:00",
        ),
        (
            "YYYY-MM-DD HH24:MI:SS.FF",
            "2024-01-15 13:45:30.25",
            "2024-01-15 13:45:30.250000000+00:00",
        ),
        (
            "YYYY-MM-DD HH24:MI:SS TZH:TZM",
            "2024-01-15 13:45:30 +05:30",
            "2024-01-15 13:45:30.000000000+05:30",
        ),
        (
            "YYYY-MM-DD HH24:MI:SS TZHTZM",
            "2024-01-15 13:45:30 -0700",
            "2024-01-15 13:45:30.000000000-07:00",
        ),
        (
            "YYYY-MM-DD HH24:MI:SSTZH:TZM",
            "2024-01-15 13:45:30+05:30",
            "2024-01-15 13:45:30.000000000+05:30",
        ),
        (
            "YYYY-MM-DD HH24:MI:SSTZH",
            "2024-01-15 13:45:30-04",
            "2024-01-15 13:45:30.000000000-04:00",
        ),
        (
            "YYYY-MM-DD HH24:MI:SS",
            "2024-01-15 13:45:30",
            "2024-01-15 13:45:30.000000000+00:00",
        ),
        (
            "YYYY-MM-DD HH24:MITZH:TZM",
            "2024-01-15 13:45Z",
            "2024-01-15 13:45:00.000000000+00:00",
        ),
        (
            "YYYY-MM-DD HH24:MI",
            "2024-01-15 13:45",
            "2024-01-15 13:45:00.000000000+00:00",
        ),
        (
            "YYYY-MM-DD HH24",
            "2024-01-15 13",
            "2024-01-15 13:00:00.000000000+00:00",
        ),
        (
            "DD-MON-YYYY",
            "17-DEC-1980",
            "1980-12-17 00:00:00.000000000+00:00",
        ),
        (
            "DY, DD MON YYYY HH24:MI:SS TZHTZM",
            "Wed, 17 Dec 1980 13:45:30 +0100",
            "1980-12-17 13:45:30.000000000+01:00",
        ),
        (
            "DY, DD MON YYYY HH24:MI:SS.FF TZHTZM",
            "Wed, 17 Dec 1980 13:45:30.5 -0500",
            "1980-12-17 13:45:30.500000000-05:00",
        ),
        (
            "DY, DD MON YYYY HH12:MI:SS AM TZHTZM",
            "Wed, 17 Dec 1980 01:45:30 PM +0000",
            "1980-12-17 13:45:30.000000000+00:00",
        ),
        (
            "DY, DD MON YYYY HH12:MI:SS.FF AM TZHTZM",
            "WED, 17 DEC 1980 12:45:30.5 AM +0000",
            "1980-12-17 00:45:30.500000000+00:00",
        ),
        (
            "DY, DD MON YYYY HH24:MI:SS",
            "Wed, 17 Dec 1980 13:45:30",
            "1980-12-17 13:45:30.000000000+00:00",
        ),
        (
            "DY, DD MON YYYY HH24:MI:SS.FF",
            "Wed, 17 Dec 1980 13:45:30.75",
            "1980-12-17 13:45:30.750000000+00:00",
        ),
        (
            "DY, DD MON YYYY HH12:MI:SS AM",
            "Wed, 17 Dec 1980 11:45:30 AM",
            "1980-12-17 11:45:30.000000000+00:00",
        ),
        (
            "DY, DD MON YYYY HH12:MI:SS.FF AM",
            "Wed, 17 Dec 1980 11:45:30.1 PM",
            "1980-12-17 23:45:30.100000000+00:00",
        ),
        (
            "DY MON DD HH24:MI:SS TZHTZM YYYY",
            "Wed Dec 17 13:45:30 +0100 1980",
            "1980-12-17 13:45:30.000000000+01:00",
        ),
        (
            "MM/DD/YYYY",
            "12/17/1980",
            "1980-12-17 00:00:00.000000000+00:00",
        ),
        (
            "MM/DD/YYYY HH24:MI:SS",
            "2/18/2008 02:36:48",
            "2008-02-18 02:36:48.000000000+00:00",
        ),
        // Integer strings are epochs, read before the formats.
        ("epoch", "1705312800", "2024-01-15 10:00:00.000000000+00:00"),
    ];
    for (format, example, stored) in accepted {
        assert_eq!(
            convert_one(&tz, json!(example)),
            Ok(text(stored)),
            "{format}: {example}"
        );
        // The same formats hold for DATE (its date part) and the other timestamps.
        assert_eq!(
            convert_one(&T::Date, json!(example)),
            Ok(text(&stored[..10])),
            "{example}"
        );
        assert!(
            convert_one(&T::TimestampNtz { scale: 9 }, json!(example)).is_ok(),
            "{example}"
        );
        assert!(
            convert_one(&T::TimestampLtz { scale: 9 }, json!(example)).is_ok(),
            "{example}"
        );
    }
    let refused = [
        "2024-01-15T13:45:30+0000",        // after `T` only `±hh:mm`
        "2024-01-15T13:45:30.5+0530",      // (with a fraction too)
        "2024-01-15t13:45:30",             // lower-case `t`
        "2024-01-15T13:45:30z",            // lower-case `z`
        "2024-01-15 13:45:30.5+0530",      // attached `±hhmm` is not listed after a space
        "2024-01-15T13:45:30 +05:30",      // nor a spaced offset after `T`
        "2024-1-15",                       // one-digit month in ISO
        "2024-01-15 1:45:30",              // one-digit hour
        "24-01-15",                        // two-digit year
        "2024-01-15 13:45:30.1234567891",  // ten fractional digits
        "2024-01-15 24:00:00",             // hour 24
        "2024-01-15 13:45:60",             // second 60
        "2024-02-30",                      // no such day
        "17-dec-1980",                     // lower-case month
        "17-December-1980",                // month spelled out
        "Thu, 17 Dec 1980 13:45:30 +0000", // 1980-12-17 was a Wednesday
        "Wed, 17 Dec 1980 13:45:30 pm",    // lower-case pm
        "Wed, 17 Dec 1980 13:45:30 PM",    // 13 is no 12-hour hour
        "2024-01-15T13:45:30+19:00",       // offsets reach 18 hours
        "12/17/80",                        // two-digit year
        "1980/12/17",
        "2024-01-15 13:45:30 UTC", // zone names are not in the list
        "yesterday",
        "",
    ];
    for example in refused {
        for ty in [&tz, &T::Date, &T::TimestampNtz { scale: 9 }] {
            let error = convert_one(ty, json!(example)).expect_err(example);
            assert!(
                error.message.contains("is not recognized") && error.message.contains("ISO 8601"),
                "{example}: {}",
                error.message
            );
        }
    }
}

/// The session zone (`EmulatorConfig::timezone`, `--timezone`): epoch numbers into
/// TIMESTAMP_NTZ are its wall clock, America/Los_Angeles by default (the Kafka connector's
/// end-to-end test records 1705312800 → 2024-01-15 02:00:00 on the service).
#[tokio::test]
async fn tz_epochs_and_offsetless_strings_follow_the_session_zone() {
    let ddl = "
        CREATE DATABASE IF NOT EXISTS DB;
        CREATE SCHEMA IF NOT EXISTS SCH;
        CREATE OR REPLACE TABLE T (ID NUMBER, NTZ TIMESTAMP_NTZ, LTZ TIMESTAMP_LTZ, D DATE);
        CREATE OR REPLACE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))
            MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;
    ";
    for (zone, ntz, ltz, date) in [
        (
            None,
            "2024-01-15 02:00:00.000000000",
            "2024-01-15 10:00:00.000000000Z",
            "2024-01-14",
        ),
        (
            Some(chrono_tz::UTC),
            "2024-01-15 10:00:00.000000000",
            "2024-01-15 02:00:00.000000000Z",
            "2024-01-15",
        ),
        (
            Some(chrono_tz::Asia::Tokyo),
            "2024-01-15 19:00:00.000000000",
            "2024-01-14 17:00:00.000000000Z",
            "2024-01-15",
        ),
    ] {
        let mut config = EmulatorConfig::for_tests()
            .with_ddl(ddl)
            .with_public_key(keys(0).1);
        if let Some(zone) = zone {
            config.timezone = zone;
        }
        let (emu, c) = connected(config).await;
        let ct = c.open_ok("c").await;
        let body = format!(
            "{}\n",
            json!({"ID": 1, "NTZ": 1_705_312_800, "LTZ": "2024-01-15 02:00:00", "D": 1_705_280_400})
        );
        c.append_ok("c", &ct, "1", &body).await;
        c.wait_committed("c", "1").await;
        let rows = emu.query(r#"SELECT NTZ, LTZ, D FROM "DB.SCH.T""#).unwrap();
        assert_eq!(
            rows,
            vec![vec![json!(ntz), json!(ltz), json!(date)]],
            "{zone:?}"
        );
        emu.shutdown().await;
    }
}

/// Issue 42 (stretch): a JSON number with more digits than a double holds reaches a NUMBER
/// column exactly as written (it was rounded to 17 significant digits); other columns and
/// numbers a double holds are unchanged.
#[test]
fn long_json_numbers_reach_number_columns_exactly() {
    let t = table(&[
        ("N", number(38, 10), true),
        ("I", number(38, 0), true),
        ("F", T::Float, true),
        ("V", T::Variant, true),
    ]);
    let cases: [(&str, [SqlValue; 4]); 4] = [
        (
            r#"{"n": 12345678901234567890.1234567891, "I": 123456789012345678901234567890}"#,
            [
                exact("12345678901234567890.1234567891"),
                exact("123456789012345678901234567890"),
                Null,
                Null,
            ],
        ),
        (
            r#"{"N": -1.23456789012345678901e15, "i": -98765432109876543210}"#,
            [
                exact("-1234567890123456.7890100000"),
                exact("-98765432109876543210"),
                Null,
                Null,
            ],
        ),
        // What a double holds is stored as before: REAL or INTEGER.
        (
            r#"{"N": 0.5, "I": 7, "F": 0.1}"#,
            [Real(0.5), Integer(7), Real(0.1), Null],
        ),
        // FLOAT and VARIANT take the parsed number, as before.
        (
            r#"{"F": 1.00000000000000000001, "V": {"x": 1}}"#,
            [Null, Null, Real(1.0), text(r#"{"x":1}"#)],
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(
            convert_line(&t, line.as_bytes()),
            Ok(expected.to_vec()),
            "{line}"
        );
    }
}
