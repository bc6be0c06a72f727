//! The rules, one by one, against connector v4.1.0's own tests
//! (`src/test/java/com/snowflake/kafka/connector/internal/validation/RowValidatorTest.java`,
//! `RV` below) and the `DataValidationUtil` code they cite.

use serde_json::value::RawValue;

use super::rules::{check, Kind};
use super::*;

fn raw(s: &str) -> &RawValue {
    serde_json::from_str(s).unwrap()
}

/// The value `json` becomes in a column of `kind` (normalized time on): its new text, `None`
/// when kept, `Err` with v4's message.
fn value(kind: Kind, json: &str) -> Result<Option<String>, String> {
    check("C", kind, raw(json), true)
}

fn rewritten(kind: Kind, json: &str) -> String {
    value(kind, json).unwrap().expect("rewritten")
}

#[test]
fn desc_table_types_are_v4s_kinds() {
    // RV testColumnSchemaParse*, testStructured*TypeRejected, testUnstructured*TypeAccepted.
    for (ty, kind) in [
        ("NUMBER(38,0)", Kind::Fixed(38, 0)),
        ("NUMBER(10, 2)", Kind::Fixed(10, 2)),
        ("INT", Kind::Fixed(38, 0)),
        ("VARCHAR(16777216)", Kind::Text(16_777_216)),
        ("VARCHAR", Kind::Text(16_777_216)),
        ("BINARY(8388608)", Kind::Binary(8_388_608)),
        ("FLOAT", Kind::Real),
        ("TIMESTAMP_NTZ(9)", Kind::TimestampNtz),
        ("TIMESTAMP", Kind::TimestampNtz),
        ("TIMESTAMP_LTZ(6)", Kind::TimestampLtz),
        ("TIMESTAMP_TZ(9)", Kind::TimestampTz),
        ("TIME(9)", Kind::Time),
        ("DATE", Kind::Date),
        ("BOOLEAN", Kind::Boolean),
        ("VARIANT", Kind::Variant),
        ("OBJECT", Kind::Object),
        ("ARRAY", Kind::Array),
    ] {
        assert_eq!(Kind::of(ty), Ok(kind), "{ty}");
    }
    for ty in ["GEOGRAPHY", "VECTOR(INT, 3)", "OBJECT(a INT)", "ARRAY(INT)"] {
        assert!(Kind::of(ty).is_err(), "{ty}");
    }
}

#[test]
fn boolean_takes_0_1_and_the_boolean_words() {
    // RV testValidateRowBooleanIntegerZero/OneNormalized…, …StringTokensNormalizedToBoolean.
    assert_eq!(rewritten(Kind::Boolean, "0"), "false");
    assert_eq!(rewritten(Kind::Boolean, "1"), "true");
    assert_eq!(rewritten(Kind::Boolean, "1.0"), "true");
    for (text, b) in [
        ("\"yes\"", "true"),
        ("\" ON \"", "true"),
        ("\"n\"", "false"),
        ("\"0\"", "false"),
    ] {
        assert_eq!(rewritten(Kind::Boolean, text), b, "{text}");
    }
    assert_eq!(value(Kind::Boolean, "true"), Ok(None));
    // RV …NonZeroOneIntegerProducesTypeError, …InvalidInputProducesTypeError.
    for bad in ["2", "-1", "0.5", "\"maybe\"", "{}", "[]"] {
        assert!(value(Kind::Boolean, bad).is_err(), "{bad}");
    }
    assert!(value(Kind::Boolean, "42")
        .unwrap_err()
        .ends_with("reason: Only 0 and 1 are accepted for numeric boolean values"));
}

#[test]
fn binary_takes_hex_text() {
    // RV testValidateRowBinaryHexStringConvertedToByteArray / …LowercaseHexString /
    // …EmptyHexString / …OddLengthHexStringFails / …InvalidHexStringFails.
    assert_eq!(value(Kind::Binary(8_388_608), "\"FFFFFFFF\""), Ok(None));
    assert_eq!(value(Kind::Binary(8_388_608), "\"deadbeef\""), Ok(None));
    assert_eq!(value(Kind::Binary(8_388_608), "\"\""), Ok(None));
    assert_eq!(rewritten(Kind::Binary(4), "\" ABCD \""), "\"ABCD\"");
    let odd = value(Kind::Binary(8), "\"ABC\"").unwrap_err();
    assert!(odd.ends_with("column C of type BINARY, rowIndex:0, reason: Not a valid hex string"));
    assert!(value(Kind::Binary(8), "\"XYZW\"").is_err());
    assert!(value(Kind::Binary(1), "\"ABCD\"")
        .unwrap_err()
        .ends_with("Binary too long: length=2 maxLength=1"));
    assert!(value(Kind::Binary(8), "12")
        .unwrap_err()
        .contains("java.lang.Long"));
}

#[test]
fn timestamps_format_an_integer_epoch_in_utc() {
    // RV testValidateRowTimestampNtzIntegerEpochNormalized / …LtzIntegerEpochNormalized.
    assert_eq!(
        rewritten(Kind::TimestampNtz, "1705312800"),
        "\"2024-01-15T10:00\""
    );
    assert_eq!(
        rewritten(Kind::TimestampLtz, "1705312800"),
        "\"2024-01-15T10:00Z\""
    );
    assert_eq!(
        rewritten(Kind::TimestampTz, "1705312800"),
        "\"2024-01-15T10:00Z\""
    );
    assert_eq!(
        rewritten(Kind::TimestampNtz, "1705312800123"),
        "\"2024-01-15T10:00:00.123\""
    );
    // RV testValidateRowTimestampNtzStringPassthrough / …InvalidStringRejects.
    assert_eq!(
        value(Kind::TimestampNtz, "\"2024-01-15T13:45:30\""),
        Ok(None)
    );
    assert_eq!(
        value(Kind::TimestampLtz, "\"2024-01-15T13:45:30+01:00\""),
        Ok(None)
    );
    assert_eq!(value(Kind::TimestampNtz, "\"2024-01-15\""), Ok(None));
    assert_eq!(value(Kind::TimestampNtz, "\"1705312800\""), Ok(None));
    assert!(value(Kind::TimestampNtz, "\"not_a_timestamp\"").is_err());
    // Not ISO: Java's parsers refuse the space.
    assert!(value(Kind::TimestampNtz, "\"2024-01-15 13:45:30\"").is_err());
    // Only Integer/Long are epochs; a Double or a Boolean is no type a TIMESTAMP takes.
    assert!(value(Kind::TimestampNtz, "1.5")
        .unwrap_err()
        .contains("java.lang.Double"));
    assert!(value(Kind::TimestampNtz, "true").is_err());
    assert!(value(Kind::TimestampNtz, "\"10000-01-01T00:00\"").is_err());
}

#[test]
fn time_drops_its_offset() {
    // RV validateRow_timeOffset_isNormalized / …normalizeEnabled_returnsLocalTime /
    // …normalizeDisabled_rawValuePassedThrough / validateRow_invalidTime_normalizeDisabled_isRejected.
    assert_eq!(rewritten(Kind::Time, "\"00:00:00Z\""), "\"00:00:00\"");
    assert_eq!(
        rewritten(Kind::Time, "\"13:02:06.123456789+05:00\""),
        "\"13:02:06.123456789\""
    );
    assert_eq!(value(Kind::Time, "\"13:02:06\""), Ok(None));
    assert_eq!(
        check("C", Kind::Time, raw("\"00:00:00Z\""), false),
        Ok(None)
    );
    assert!(check("C", Kind::Time, raw("\"not_a_time\""), false).is_err());
    // An epoch in text is a time of day in UTC; a JSON number is no type a TIME takes.
    assert_eq!(rewritten(Kind::Time, "\"3600\""), "\"01:00:00\"");
    assert!(value(Kind::Time, "3600")
        .unwrap_err()
        .contains("java.lang.Long"));
}

#[test]
fn text_takes_a_map_or_list_as_json_text() {
    // RV testValidateRowVarcharMapSerializedToJson / …ListSerializedToJson /
    // …NestedMapSerializedToJson / …MapExceedsLengthLimit.
    assert_eq!(
        rewritten(Kind::Text(100), r#"{"key":"value"}"#),
        r#""{\"key\":\"value\"}""#
    );
    assert_eq!(rewritten(Kind::Text(100), "[1, 2, 3]"), r#""[1,2,3]""#);
    assert_eq!(
        rewritten(Kind::Text(100), r#"{"a":{"b":1}}"#),
        r#""{\"a\":{\"b\":1}}""#
    );
    assert!(value(Kind::Text(5), r#"{"key":"value"}"#).is_err());
    // RV testValidateRowVarcharExceedsLengthRejected / …ExactLengthAccepted.
    assert_eq!(value(Kind::Text(5), "\"héllo\""), Ok(None));
    assert!(value(Kind::Text(4), "\"héllo\"")
        .unwrap_err()
        .ends_with("String too long: length=5 characters maxLength=4 characters"));
    // Numbers and booleans stay as they are (the server writes their text).
    assert_eq!(value(Kind::Text(3), "1.50"), Ok(None));
    assert!(value(Kind::Text(2), "100").is_err());
    assert_eq!(value(Kind::Text(4), "true"), Ok(None));
}

#[test]
fn numbers_are_range_checked_only() {
    // RV testValidateRowNumber*: rounded half up to the scale, then (-1e(p-s)..1e(p-s)).
    let n = Kind::Fixed(5, 2);
    assert_eq!(value(n, "999.99"), Ok(None));
    assert_eq!(value(n, "999.994"), Ok(None));
    assert!(value(n, "999.995").is_err()); // rounds up to 1000.00
    assert!(value(n, "-1000").is_err());
    assert!(value(n, "1e3").is_err());
    assert_eq!(value(n, "\" 12.5 \""), Ok(None));
    assert!(value(Kind::Fixed(38, 0), "\"abc\"")
        .unwrap_err()
        .ends_with("reason: Not a valid number"));
    assert!(value(n, "true").unwrap_err().contains("java.lang.Boolean"));
    assert!(value(Kind::Fixed(2, 0), "100")
        .unwrap_err()
        .contains("Number out of representable exclusive range of (-1e2..1e2)"));
    assert_eq!(value(Kind::Real, "\"NaN\""), Ok(None));
    assert_eq!(value(Kind::Real, "\"-inf\""), Ok(None));
    assert_eq!(value(Kind::Real, "\"1.5e3\""), Ok(None));
    assert!(value(Kind::Real, "\"infinity\"").is_err());
    assert!(value(Kind::Real, "{}").is_err());
}

/// A number whose exponent is at the edge of a `long`, into a number column: out of range,
/// never an overflow (a debug-build panic that stopped the sink, a wrapped digit count in a
/// release build). Found by the hostile-input suite (issue 81).
#[test]
fn numbers_at_the_exponents_edge_are_out_of_range_not_an_overflow() {
    for (kind, n) in [
        (Kind::Fixed(38, 0), "1e9223372036854775807"),
        (Kind::Fixed(38, 2), "1e9223372036854775807"),
        (Kind::Fixed(38, 2), "9.99e9223372036854775807"),
        (Kind::Fixed(5, 2), "-1e9223372036854775806"),
    ] {
        let why = value(kind, n).expect_err(n);
        assert!(
            why.contains("Number out of representable exclusive range"),
            "{n}: {why}"
        );
    }
    assert_eq!(
        value(Kind::Fixed(38, 2), "1e-9223372036854775807"),
        Ok(None)
    );
    // The same edge into a boolean column: not 1, so refused, never an overflow.
    let why = value(Kind::Boolean, "10e9223372036854775807").unwrap_err();
    assert!(why.contains("Only 0 and 1 are accepted"), "{why}");
}

#[test]
fn semi_structured_strings_are_parsed() {
    // RV testValidateRowVariantJsonObjectStringNormalizedToMap / …ArrayStringNormalizedToList /
    // …InvalidJsonStringProducesTypeError / …NativeObjectPassthrough.
    assert_eq!(rewritten(Kind::Variant, r#""{\"a\":1}""#), r#"{"a":1}"#);
    assert_eq!(rewritten(Kind::Variant, r#""[1,2,3]""#), "[1,2,3]");
    assert_eq!(
        rewritten(Kind::Variant, r#""{\n\"a\": 1}""#),
        r#"{ "a": 1}"#
    );
    assert_eq!(rewritten(Kind::Variant, r#""  ""#), "null");
    assert!(value(Kind::Variant, r#""not valid json""#)
        .unwrap_err()
        .ends_with("column C of type VARIANT, rowIndex:0, reason: Not a valid JSON"));
    assert_eq!(value(Kind::Variant, r#"{"a":1}"#), Ok(None));
    // RV testValidateRowArrayJsonStringNormalizedToList / …NonArrayJsonStringWrappedInList.
    assert_eq!(rewritten(Kind::Array, r#""[1,2,3]""#), "[1,2,3]");
    assert_eq!(rewritten(Kind::Array, r#""\"hello\"""#), r#"["hello"]"#);
    assert!(value(Kind::Array, r#""[1,""#).is_err());
    assert_eq!(value(Kind::Array, "[1]"), Ok(None));
    // RV testValidateRowObjectInvalidJsonString… / …ArrayJsonString… / …ValidJsonStringAccepted.
    assert_eq!(value(Kind::Object, r#""{\"a\":1}""#), Ok(None));
    assert!(value(Kind::Object, r#""[1]""#)
        .unwrap_err()
        .ends_with("Not an object"));
    assert!(value(Kind::Object, r#""{""#)
        .unwrap_err()
        .ends_with("Not a valid JSON"));
    assert!(value(Kind::Object, "5").is_err());
}

#[test]
fn dates_are_checked_only() {
    assert_eq!(value(Kind::Date, "\"2024-01-15\""), Ok(None));
    assert_eq!(value(Kind::Date, "\"2024-01-15T10:00:00Z\""), Ok(None));
    assert!(value(Kind::Date, "\"15/01/2024\"").is_err());
    assert!(value(Kind::Date, "19737")
        .unwrap_err()
        .contains("java.lang.Long"));
}

fn columns(cols: &[(&str, &str, &str, &str)]) -> Columns {
    Columns::from_describe(cols.iter().copied()).unwrap()
}

#[test]
fn rows_are_checked_against_their_columns() {
    let cols = columns(&[
        ("RECORD_METADATA", "VARIANT", "Y", ""),
        ("B", "BOOLEAN", "Y", ""),
        ("TS", "TIMESTAMP_NTZ(9)", "Y", ""),
        ("N", "NUMBER(38,0)", "N", ""),
        ("D", "VARCHAR(10)", "N", "'x'"),
    ]);
    assert_eq!(
        row(
            br#"{"RECORD_METADATA":{"offset":1},"B":1,"TS":1705312800,"N":5}"#,
            &cols,
            true
        ),
        Outcome::Rewritten(
            br#"{"B":true,"N":5,"RECORD_METADATA":{"offset":1},"TS":"2024-01-15T10:00"}"#.to_vec()
        )
    );
    assert_eq!(
        row(br#"{"B":true,"N":5,"TS":null}"#, &cols, true),
        Outcome::Same
    );
    let Outcome::Refused(why) = row(br#"{"B":7,"N":5}"#, &cols, true) else {
        panic!("refused")
    };
    assert!(why.starts_with("Validation failed for column B: The given row cannot be converted"));
    // RV testValidateRowExtraColumn / …MissingNotNull / …NullInNotNull; a column with a
    // default may be missing (…missingDefaultNotNullColumn_passes).
    let Outcome::Structural(s) = row(br#"{"NEW":1.5,"OTHER":{"a":1},"B":null}"#, &cols, true)
    else {
        panic!("structural")
    };
    assert_eq!(
        s.extra,
        vec![
            ("NEW".to_owned(), "DOUBLE"),
            ("OTHER".to_owned(), "VARIANT")
        ]
    );
    assert_eq!(s.missing_not_null, vec!["N".to_owned()]);
    assert_eq!(
        s.reason("Structural validation error (schema evolution disabled)"),
        "Structural validation error (schema evolution disabled): extraCols=[NEW, OTHER], \
         missingNotNull=[N]"
    );
    let Outcome::Structural(s) = row(br#"{"N":null}"#, &cols, true) else {
        panic!("structural")
    };
    assert_eq!(s.null_not_null, vec!["N".to_owned()]);
}

#[test]
fn new_columns_take_the_mappers_types_for_schemaless_values() {
    // `SnowflakeColumnTypeMapper.mapJsonNodeTypeToKafkaType` + `mapToColumnType`.
    for (json, ty) in [
        ("1", "BIGINT"),
        ("1.5", "DOUBLE"),
        ("\"a\"", "VARCHAR"),
        ("null", "VARCHAR"),
        ("false", "BOOLEAN"),
        ("[1]", "ARRAY"),
        ("{}", "VARIANT"),
    ] {
        assert_eq!(json_column_type(raw(json)), ty, "{json}");
    }
}

#[test]
fn a_table_of_a_type_v4_does_not_validate_is_not_validated() {
    let e = Columns::from_describe([("G", "GEOGRAPHY", "Y", "")]).unwrap_err();
    assert!(e.contains("column G"), "{e}");
}

/// A row with its schema's Connect field types: new columns typed by
/// `SnowflakeColumnTypeMapper.mapToColumnType` (`TableSchemaResolver
/// .getTableSchemaFromRecordSchema`), BYTES into BINARY as v4's `byte[]`
/// (`DataValidationUtil.validateAndParseBinary`: passes, only its length checked).
#[test]
fn schema_typed_rows_evolve_by_the_schema_and_bytes_land_as_bytes() {
    let fields = FieldTypes::new([
        ("DAY".to_owned(), ConnectType::Date),
        ("T".to_owned(), ConnectType::Time),
        ("TS".to_owned(), ConnectType::Timestamp),
        ("DEC".to_owned(), ConnectType::Decimal),
        ("I8".to_owned(), ConnectType::Int8),
        ("B".to_owned(), ConnectType::Bytes),
        ("RAW".to_owned(), ConnectType::Bytes),
    ]);
    let cols = columns(&[("B", "BINARY(2)", "Y", "")]);
    let row = br#"{"B":"3q0=","DAY":"2024-01-15T00:00:00.000Z","DEC":1.5,"I8":1,"NOPE":"x","T":"10:00:00.000Z","TS":"2024-01-15T10:00:00.000Z"}"#;
    let Outcome::Structural(s) = typed_row(row, &cols, true, Some(&fields)) else {
        panic!("structural")
    };
    let extra: Vec<(&str, &str)> = s.extra.iter().map(|(c, t)| (c.as_str(), *t)).collect();
    assert_eq!(
        extra,
        [
            ("DAY", "DATE"),
            ("DEC", "VARCHAR"),
            ("I8", "BYTEINT"),
            ("NOPE", "VARCHAR"),
            ("T", "TIME(6)"),
            ("TS", "TIMESTAMP(6)")
        ]
    );
    // BYTES: their hex, what the service reads as the same bytes; without the field's type
    // the same text is refused as not hex (a JSON row's text must be hex).
    assert_eq!(
        typed_row(br#"{"B":"3q0="}"#, &cols, true, Some(&fields)),
        Outcome::Rewritten(br#"{"B":"DEAD"}"#.to_vec())
    );
    assert!(matches!(
        row_of(br#"{"B":"3q0="}"#, &cols),
        Outcome::Refused(_)
    ));
    let Outcome::Refused(why) = typed_row(br#"{"B":"AAEC"}"#, &cols, true, Some(&fields)) else {
        panic!("refused")
    };
    assert!(
        why.ends_with("reason: Binary too long: length=3 maxLength=2"),
        "{why}"
    );
    for t in [ConnectType::Int16, ConnectType::Int32, ConnectType::Int64] {
        assert!(["SMALLINT", "INT", "BIGINT"].contains(&schema_column_type(t)));
    }
    assert_eq!(schema_column_type(ConnectType::Float32), "FLOAT");
    assert_eq!(schema_column_type(ConnectType::Float64), "DOUBLE");
    assert_eq!(schema_column_type(ConnectType::Bytes), "BINARY");
    assert_eq!(schema_column_type(ConnectType::Map), "VARIANT");
    assert_eq!(schema_column_type(ConnectType::Struct), "VARIANT");
    assert_eq!(schema_column_type(ConnectType::Array), "ARRAY");
}

fn row_of(row: &[u8], cols: &Columns) -> Outcome {
    super::row(row, cols, true)
}

/// Issue 81, item 1: a number's plain form (`stripTrailingZeros().toPlainString()`) is
/// measured, never written: an exponent of 9.2 × 10^18 is refused with its length, as v4's
/// message gives it, instead of aborting on the allocation.
#[test]
fn a_numbers_plain_form_is_measured_not_written() {
    let long = Kind::Text(16_777_216);
    assert!(value(long, "1e9223372036854775807")
        .unwrap_err()
        .ends_with("String too long: length=9223372036854775808 bytes maxLength=16777216 bytes"));
    assert!(value(long, "-1e-9223372036854775807")
        .unwrap_err()
        .ends_with("String too long: length=9223372036854775810 bytes maxLength=16777216 bytes"));
    assert!(value(long, "1e-300000000")
        .unwrap_err()
        .ends_with("String too long: length=300000002 bytes maxLength=16777216 bytes"));
    // 16 MiB exactly is taken; one more digit is not.
    assert_eq!(value(long, "1e16777215"), Ok(None));
    assert!(value(long, "1e16777216").is_err());
    // The plain forms' lengths, against a column one short of each: "150", "-0.0015", "0",
    // "12345.6789", "100" (trailing zeros stripped, then written back by the exponent).
    for (number, plain) in [
        ("1.50e2", 3),
        ("-15.0e-4", 7),
        ("0.000e9", 1),
        ("-0", 1),
        ("123456789e-4", 10),
        ("1000e-1", 3),
        ("12", 2),
        ("9.99E+2", 3),
    ] {
        assert_eq!(value(Kind::Text(plain), number), Ok(None), "{number}");
        let short = value(Kind::Text(plain - 1), number).unwrap_err();
        assert!(
            short.ends_with(&format!(
                "length={plain} characters maxLength={} characters",
                plain - 1
            )),
            "{number}: {short}"
        );
    }
}

/// A structural dead letter's reason names at most 20 keys and how many there are: with
/// every key of a 900 KB message in it, the reason header and the message passed the dead
/// letter topic's 1 MB limit, and the dead letter was lost.
#[test]
fn a_structural_reason_names_a_few_keys_and_their_count() {
    let columns = Columns::from_describe([("A", "VARCHAR", "Y", "")]).unwrap();
    let keys: Vec<String> = (0..5_000).map(|i| format!("\"K{i:04}\":1")).collect();
    let row = format!("{{{}}}", keys.join(","));
    let Outcome::Structural(s) = super::row(row.as_bytes(), &columns, true) else {
        panic!("structural");
    };
    let reason = s.reason("Head");
    assert!(
        reason.starts_with("Head: extraCols=[K0000, K0001, "),
        "{reason}"
    );
    assert!(
        reason.ends_with("K0019, … 5000 in all], missingNotNull=[]"),
        "{reason}"
    );
    assert!(reason.len() < 300, "{}", reason.len());
    // 20 or fewer: v4's text exactly.
    let few = super::row(br#"{"B":1,"C":2}"#, &columns, true);
    let Outcome::Structural(s) = few else {
        panic!("structural");
    };
    assert_eq!(
        s.reason("Head"),
        "Head: extraCols=[B, C], missingNotNull=[]"
    );
}

/// A map or list nested past 1,000 levels into a text column is refused before it is written
/// (Jackson's default `maxNestingDepth`, which Kafka's JsonConverter reads with): 100,000
/// levels (200 KB) overflowed the stack of the thread writing it, one frame a level, and
/// aborted the sink. 1,000 levels are written on a 2 MiB stack even in a debug build (the
/// sink's runtime threads have 8 MiB, `STACK_BYTES`).
#[test]
fn a_value_nested_past_the_limit_is_refused_before_it_is_written() {
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let worker = std::thread::Builder::new().stack_size(2 << 20);
    let outcomes = worker
        .spawn(move || {
            let deep = value(Kind::Text(16_777_216), &nested(100_000));
            let deep_map = value(
                Kind::Text(16_777_216),
                &format!("{{\"a\":{}}}", nested(1_000)),
            );
            let limit = value(Kind::Text(16_777_216), &nested(1_000));
            (deep, deep_map, limit)
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
    let (deep, deep_map, limit) = outcomes;
    for refused in [deep, deep_map] {
        assert!(refused
            .unwrap_err()
            .ends_with("nested deeper than 1000 levels (Jackson's maxNestingDepth)"));
    }
    let written = limit.unwrap().expect("rewritten as text");
    assert_eq!(written.len(), 2 + 2 * 1_000 + 1);
}
