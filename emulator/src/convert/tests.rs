use super::*;
use serde_json::json;

#[test]
fn decimals_parse_and_round_half_away_from_zero() {
    let d = Decimal::parse("-0012.345e1").unwrap();
    assert_eq!(d.digits, b"12345");
    assert_eq!(d.exponent, -2);
    assert!(d.negative);
    assert_eq!(d.rescale(0, 38).unwrap(), b"123");
    assert_eq!(
        Decimal::parse("0.005").unwrap().rescale(2, 38).unwrap(),
        b"1"
    );
    assert_eq!(
        Decimal::parse("0.004").unwrap().rescale(2, 38).unwrap(),
        b""
    );
    assert_eq!(
        Decimal::parse("9.995").unwrap().rescale(2, 4).unwrap(),
        b"1000"
    );
    assert_eq!(Decimal::parse("9.995").unwrap().rescale(2, 3), None);
    assert_eq!(
        Decimal::parse("1e5").unwrap().rescale(0, 38).unwrap(),
        b"100000"
    );
    assert_eq!(
        Decimal::parse("1e999999999999").unwrap().rescale(0, 38),
        None
    );
    assert_eq!(
        Decimal::parse("1e-999999999999")
            .unwrap()
            .rescale(2, 38)
            .unwrap(),
        b""
    );
    for bad in [
        "", "-", ".", "e5", "1e", "1.2.3", "0x10", "1_000", "NaN", "inf",
    ] {
        assert_eq!(Decimal::parse(bad), None, "{bad}");
    }
    assert_eq!(decimal_text(true, b"5", 2), "-0.05");
    assert_eq!(decimal_text(false, b"", 2), "0.00");
    assert_eq!(decimal_text(false, b"12345", 2), "123.45");
}

fn defaults_table() -> (crate::catalog::Catalog, String) {
    let mut catalog = crate::catalog::Catalog::new();
    catalog
        .apply_sql(
            "CREATE DATABASE D; CREATE TABLE T (ID INT AUTOINCREMENT, \
                 S VARCHAR NOT NULL DEFAULT 'dflt', N NUMBER(5,2) DEFAULT 7, \
                 TS TIMESTAMP_NTZ DEFAULT CURRENT_TIMESTAMP(), V VARIANT); \
                 CREATE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) \
                 MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE; \
                 CREATE PIPE X AS COPY INTO T (V, S) FROM \
                 (SELECT $1:v, $1:s FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')))",
        )
        .unwrap();
    (catalog, "T".into())
}

/// A value a transform cannot use is quoted in the row's error, which lands in the
/// channel's `last_error` and in every error-table row: cut to 1,000 characters, not
/// the value's 2 MB.
#[test]
fn a_pipe_error_quotes_at_most_a_thousand_characters_of_the_value() {
    let mut catalog = crate::catalog::Catalog::new();
    catalog
        .apply_sql(
            "CREATE DATABASE D; CREATE TABLE T (N NUMBER(38,0)); \
                 CREATE PIPE ADD_IT AS COPY INTO T (N) FROM \
                 (SELECT $1:n + 1 FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))); \
                 CREATE PIPE FILTER_IT AS COPY INTO T (N) FROM \
                 (SELECT 1 FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) WHERE $1:n + 1 > 0)",
        )
        .unwrap();
    let table = catalog.table("D", "PUBLIC", "T").unwrap();
    let huge = "x".repeat(2 << 20);
    let row = json!({ "n": huge });
    for pipe in ["ADD_IT", "FILTER_IT"] {
        let p = catalog.pipe_definition("D", "PUBLIC", pipe).unwrap();
        let e = convert_row_for_pipe(
            table,
            p,
            row.as_object().unwrap(),
            &ConvertOptions::default(),
        )
        .unwrap_err();
        assert!(e.message.len() < 1_200, "{pipe}: {} bytes", e.message.len());
        assert!(
            e.message.starts_with("Numeric value 'xxx")
                || e.message.starts_with("WHERE: Numeric value 'xxx"),
            "{pipe}: {}",
            &e.message[..200.min(e.message.len())]
        );
        // Cut here, not before: the value was quoted whole (2 MiB and the text).
        let more: usize = e
            .message
            .rsplit_once("... (")
            .unwrap()
            .1
            .trim_end_matches(" more bytes)")
            .parse()
            .unwrap();
        assert!(more > (2 << 20) - 1_000, "{pipe}: {more}");
    }
}

#[test]
fn omitted_columns_get_their_default_on_the_default_pipe_only() {
    let (catalog, name) = defaults_table();
    let table = catalog.table("D", "PUBLIC", &name).unwrap();
    let row = |v: Value| v.as_object().unwrap().clone();
    let options = ConvertOptions::default();
    // The default pipe: DEFAULT constants, the time, and a sequence marker.
    let values = convert_row(table, &row(serde_json::json!({"v": 1}))).unwrap();
    assert_eq!(values[0], SqlValue::NextIdentity);
    assert_eq!(values[1], SqlValue::Text("dflt".into()));
    assert_eq!(values[2], SqlValue::Real(7.0));
    assert!(
        matches!(&values[3], SqlValue::Text(t) if t.len() == 29 && t.starts_with("20")),
        "{:?}",
        values[3]
    );
    // A value given, even null, is kept: defaults fill only what is omitted.
    let values = convert_row(
        table,
        &row(serde_json::json!({"ID": 5, "N": null, "S": "s"})),
    )
    .unwrap();
    assert_eq!(
        values[..3],
        [
            SqlValue::Integer(5),
            SqlValue::Text("s".into()),
            SqlValue::Null
        ]
    );
    // MATCH_BY_COLUMN_NAME: the omitted columns are NULL, so NOT NULL S rejects the row.
    let p = catalog.pipe_definition("D", "PUBLIC", "P").unwrap();
    let e = convert_row_for_pipe(table, p, &row(serde_json::json!({"S": "s"})), &options)
        .map(|values| values.unwrap()[..3].to_vec());
    assert_eq!(
        e,
        Ok(vec![
            SqlValue::Null,
            SqlValue::Text("s".into()),
            SqlValue::Null
        ])
    );
    assert!(convert_row_for_pipe(table, p, &row(serde_json::json!({})), &options).is_err());
    // A transform: the columns it does not target get their defaults.
    let x = catalog.pipe_definition("D", "PUBLIC", "X").unwrap();
    let values = convert_row_for_pipe(table, x, &row(serde_json::json!({"s": "given"})), &options)
        .unwrap()
        .unwrap();
    assert_eq!(values[0], SqlValue::NextIdentity);
    assert_eq!(values[1], SqlValue::Text("given".into()));
    assert_eq!(values[2], SqlValue::Real(7.0));
    assert_eq!(values[4], SqlValue::Null);
}

/// `value` in a column of type `ty`, in UTC (so epochs keep their UTC wall clock).
fn one(ty: ColumnType, value: Value) -> Result<SqlValue, RowError> {
    one_in(chrono_tz::UTC, ty, value)
}

/// `value` in a column of type `ty`, with the session time zone `tz`.
fn one_in(tz: chrono_tz::Tz, ty: ColumnType, value: Value) -> Result<SqlValue, RowError> {
    let column = Column {
        name: "C".into(),
        ty,
        nullable: true,
        default: None,
    };
    let options = ConvertOptions {
        timezone: tz,
        ..ConvertOptions::default()
    };
    convert_value(&column, &value, &options)
}

fn text(s: &str) -> Result<SqlValue, RowError> {
    Ok(SqlValue::Text(s.into()))
}

fn message(result: Result<SqlValue, RowError>) -> String {
    match result {
        Ok(value) => panic!(
            "must be a row error, got {}",
            truncate(&format!("{value:?}"), 80)
        ),
        Err(error) => {
            assert_eq!(error.column.as_deref(), Some("C"));
            error.message
        }
    }
}

#[test]
fn time_takes_the_documented_formats_and_integer_stored_times() {
    let time = || ColumnType::Time { scale: 9 };
    // HH24:MI:SS.FFTZH:TZM: the offset is dropped, the wall clock kept.
    assert_eq!(
        one(time(), json!("20:57:01.123456789+07:00")),
        text("20:57:01.123456789")
    );
    assert_eq!(
        one(time(), json!("20:57:01.5Z")),
        text("20:57:01.500000000")
    );
    // HH12 forms with AM/PM.
    assert_eq!(
        one(time(), json!("08:57:01.25 PM")),
        text("20:57:01.250000000")
    );
    assert_eq!(one(time(), json!("12:05 AM")), text("00:05:00.000000000"));
    assert_eq!(one(time(), json!("12:05 PM")), text("12:05:00.000000000"));
    // Integer-stored times: the time of day of that epoch value, in the session zone
    // (UTC here).
    assert_eq!(one(time(), json!("3600")), text("01:00:00.000000000"));
    assert_eq!(one(time(), json!(3600)), text("01:00:00.000000000"));
    assert_eq!(one(time(), json!(-1)), text("23:59:59.000000000"));
    assert_eq!(
        one(time(), json!(1_700_000_000_123_i64)),
        text("22:13:20.123000000")
    );
    for bad in [
        json!("20:57:01+07:00"), // an offset needs fractional seconds
        json!("13:00 PM"),
        json!("00:30 AM"),
        json!("12:00 XM"),
        // The service's list has AM/PM in upper case only, and no timestamp.
        json!("08:57:01 pm"),
        json!("08:57 am"),
        json!("2024-01-02 03:04:05"),
        json!("2024-01-02T03:04:05.5Z"),
        // One-digit hours and more than 9 fractional digits are not in the list.
        json!("3:04:05"),
        json!("03:04:05.1234567891"),
        json!("3600.5"),
        json!(3600.5),
    ] {
        assert!(
            message(one(time(), bad.clone())).starts_with("Time '"),
            "{bad}"
        );
    }
}

#[test]
fn negative_epoch_integers_are_scaled_like_positive_ones() {
    let ntz = || ColumnType::TimestampNtz { scale: 9 };
    assert_eq!(
        one(ntz(), json!(-1_700_000_000)),
        text("1916-02-18 01:46:40.000000000")
    );
    assert_eq!(
        one(ntz(), json!(-1_700_000_000_123_i64)),
        text("1916-02-18 01:46:39.877000000")
    );
    assert_eq!(
        one(ntz(), json!("-1700000000123456")),
        text("1916-02-18 01:46:39.876544000")
    );
    assert_eq!(
        one(ntz(), json!(-1_700_000_000_123_456_789_i64)),
        text("1916-02-18 01:46:39.876543211")
    );
    assert_eq!(
        one(ColumnType::Date, json!(-1_700_000_000_123_i64)),
        text("1916-02-18")
    );
}

#[test]
fn timestamps_outside_years_1_to_9999_are_refused() {
    for ty in [
        ColumnType::TimestampNtz { scale: 9 },
        ColumnType::TimestampLtz { scale: 9 },
        ColumnType::TimestampTz { scale: 9 },
    ] {
        for bad in [
            json!("0000-12-31 23:59:59"),
            // Epoch nanoseconds: 10000-01-01 and 0000-12-31.
            json!("253402300800000000000"),
            json!("-62135596801000000000"),
        ] {
            let error = message(one(ty.clone(), bad.clone()));
            assert!(
                error.contains("out of the representable range of years 1 to 9999"),
                "{bad}: {error}"
            );
        }
        assert!(one(ty.clone(), json!("0001-01-01 00:00:00")).is_ok());
        assert!(one(ty.clone(), json!("9999-12-31 23:59:59.999999999")).is_ok());
    }
}

/// Epoch numbers are instants; the types that keep a wall clock (TIMESTAMP_NTZ, DATE,
/// TIME) take it in the session zone, as the service does for TIMESTAMP_NTZ (1705312800 →
/// 2024-01-15 02:00:00 in America/Los_Angeles, Snowflake's default TIMEZONE).
#[test]
fn epochs_are_wall_clocks_in_the_session_zone() {
    let la = DEFAULT_TIMEZONE;
    let tokyo = chrono_tz::Asia::Tokyo;
    let ntz = ColumnType::TimestampNtz { scale: 9 };
    let ltz = ColumnType::TimestampLtz { scale: 9 };
    let tz = ColumnType::TimestampTz { scale: 9 };
    let time = ColumnType::Time { scale: 9 };
    for (zone, ty, value, expected) in [
        (
            la,
            &ntz,
            json!(1_705_312_800),
            "2024-01-15 02:00:00.000000000",
        ),
        (
            la,
            &ntz,
            json!("1705312800"),
            "2024-01-15 02:00:00.000000000",
        ),
        (
            la,
            &ntz,
            json!(1_705_312_800_000_i64),
            "2024-01-15 02:00:00.000000000",
        ),
        (
            chrono_tz::UTC,
            &ntz,
            json!(1_705_312_800),
            "2024-01-15 10:00:00.000000000",
        ),
        (
            tokyo,
            &ntz,
            json!(1_705_312_800),
            "2024-01-15 19:00:00.000000000",
        ),
        // Summer time: seven hours behind UTC.
        (
            la,
            &ntz,
            json!(1_721_030_400),
            "2024-07-15 01:00:00.000000000",
        ),
        // TIMESTAMP_LTZ is the instant (stored in UTC) whatever the zone.
        (
            la,
            &ltz,
            json!(1_705_312_800),
            "2024-01-15 10:00:00.000000000Z",
        ),
        (
            tokyo,
            &ltz,
            json!(1_705_312_800),
            "2024-01-15 10:00:00.000000000Z",
        ),
        // TIMESTAMP_TZ: the instant with the session zone's offset then.
        (
            la,
            &tz,
            json!(1_705_312_800),
            "2024-01-15 02:00:00.000000000-08:00",
        ),
        (
            tokyo,
            &tz,
            json!(1_705_312_800),
            "2024-01-15 19:00:00.000000000+09:00",
        ),
        (la, &ColumnType::Date, json!(1_705_312_800), "2024-01-15"),
        (la, &ColumnType::Date, json!(1_705_280_400), "2024-01-14"),
        (tokyo, &ColumnType::Date, json!(1_705_280_400), "2024-01-15"),
        (la, &time, json!(3600), "17:00:00.000000000"),
        (tokyo, &time, json!("3600"), "10:00:00.000000000"),
    ] {
        assert_eq!(
            one_in(zone, ty.clone(), value.clone()),
            text(expected),
            "{value} in {ty} at {zone}"
        );
    }
}

/// Strings without an offset are read in the session zone for TIMESTAMP_LTZ and
/// TIMESTAMP_TZ; TIMESTAMP_NTZ keeps the wall clock; an offset in the string wins.
#[test]
fn strings_without_an_offset_are_read_in_the_session_zone() {
    let la = DEFAULT_TIMEZONE;
    let ntz = ColumnType::TimestampNtz { scale: 9 };
    let ltz = ColumnType::TimestampLtz { scale: 9 };
    let tz = ColumnType::TimestampTz { scale: 9 };
    for (ty, value, expected) in [
        (&ntz, "2024-01-15 02:00:00", "2024-01-15 02:00:00.000000000"),
        (
            &ltz,
            "2024-01-15 02:00:00",
            "2024-01-15 10:00:00.000000000Z",
        ),
        (
            &tz,
            "2024-01-15 02:00:00",
            "2024-01-15 02:00:00.000000000-08:00",
        ),
        (
            &tz,
            "2024-07-15 02:00:00",
            "2024-07-15 02:00:00.000000000-07:00",
        ),
        (&tz, "2024-01-15", "2024-01-15 00:00:00.000000000-08:00"),
        (
            &ltz,
            "2024-01-15T02:00:00Z",
            "2024-01-15 02:00:00.000000000Z",
        ),
        (
            &tz,
            "2024-01-15T02:00:00+05:30",
            "2024-01-15 02:00:00.000000000+05:30",
        ),
        // A wall clock skipped by the spring change moves forward by the gap (02:30 PST
        // is 03:30 PDT); one repeated in the autumn takes the earlier offset.
        (
            &ltz,
            "2024-03-10 02:30:00",
            "2024-03-10 10:30:00.000000000Z",
        ),
        (
            &ltz,
            "2024-11-03 01:30:00",
            "2024-11-03 08:30:00.000000000Z",
        ),
    ] {
        assert_eq!(
            one_in(la, ty.clone(), json!(value)),
            text(expected),
            "{value} in {ty}"
        );
    }
    assert_eq!(
        one_in(chrono_tz::UTC, ltz, json!("2024-01-15 02:00:00")),
        text("2024-01-15 02:00:00.000000000Z")
    );
}

/// The service refuses JSON numbers for BOOLEAN; the row error names the fix.
#[test]
fn booleans_refuse_numbers_and_keep_the_string_tokens() {
    for number in [json!(0), json!(1), json!(2.5), json!(-1)] {
        let error = message(one(ColumnType::Boolean, number.clone()));
        assert!(
            error.contains("to BOOLEAN") && error.contains(r#""true"/"false""#),
            "{number}: {error}"
        );
    }
    for (token, expected) in [("1", 1), ("0", 0), ("TRUE", 1), ("off", 0), (" y ", 1)] {
        assert_eq!(
            one(ColumnType::Boolean, json!(token)),
            Ok(SqlValue::Integer(expected)),
            "{token}"
        );
    }
}

/// VARIANT, OBJECT and ARRAY values hold at most 16 MiB of compact JSON.
#[test]
fn semi_structured_values_hold_at_most_16_mib() {
    // A 17 MB string: its JSON text is two quotes longer.
    let big = "x".repeat(17_000_000);
    for (ty, value) in [
        (ColumnType::Variant, json!(big)),
        (ColumnType::Variant, json!({ "k": big })),
        (ColumnType::Object, json!({ "k": big })),
        (ColumnType::Array, json!([big])),
        (ColumnType::Array, json!(big)),
    ] {
        let error = message(one(ty.clone(), value));
        assert!(
            error.contains(&format!("{ty} value of 170000")) && error.contains("(16777216 bytes)"),
            "{ty}: {error}"
        );
    }
    // Exactly 16 MiB of JSON text fits.
    let fits = "x".repeat(SEMI_STRUCTURED_MAX - 2);
    assert!(one(ColumnType::Variant, json!(fits)).is_ok());
    let over = "x".repeat(SEMI_STRUCTURED_MAX - 1);
    assert!(one(ColumnType::Variant, json!(over)).is_err());
}

#[test]
fn varchar_holds_at_most_16_mb_of_utf8_bytes() {
    // 8,388,609 two-byte characters: 16,777,218 bytes.
    let wide = "é".repeat(8_388_609);
    for max_len in [None, Some(20_000_000)] {
        let error = message(one(ColumnType::Varchar { max_len }, json!(wide.clone())));
        assert!(
            error.contains("16777218 bytes") && error.contains("16777216"),
            "{error}"
        );
    }
    // A declared length counts characters: three 2- and 3-byte characters fit VARCHAR(3).
    assert_eq!(
        one(ColumnType::Varchar { max_len: Some(3) }, json!("é€ü")),
        text("é€ü")
    );
    let max = "é".repeat(8_388_608);
    assert_eq!(
        one(ColumnType::Varchar { max_len: None }, json!(max.clone())),
        Ok(SqlValue::Text(max))
    );
}

#[test]
fn arrays_wrap_other_values_and_objects_parse_json_text() {
    assert_eq!(one(ColumnType::Array, json!("x")), text(r#"["x"]"#));
    assert_eq!(one(ColumnType::Array, json!("[1,2]")), text(r#"["[1,2]"]"#));
    assert_eq!(one(ColumnType::Array, json!(5)), text("[5]"));
    assert_eq!(
        one(ColumnType::Array, json!({"a": 1})),
        text(r#"[{"a":1}]"#)
    );
    assert_eq!(one(ColumnType::Array, json!([1, "x"])), text(r#"[1,"x"]"#));
    assert_eq!(
        one(ColumnType::Object, json!(r#" {"b": [1, 2]} "#)),
        text(r#"{"b":[1,2]}"#)
    );
    assert_eq!(one(ColumnType::Object, json!({"a": 1})), text(r#"{"a":1}"#));
    for bad in [json!("[1]"), json!("5"), json!("not json"), json!([1])] {
        let error = message(one(ColumnType::Object, bad.clone()));
        assert!(error.contains("OBJECT"), "{bad}: {error}");
    }
}

/// Issue 83 item 4: a zoned value as the SDK writes it keeps its offset; the session zone's
/// offset past the tz tables' last transition is its POSIX rule's (Paris summers after 2099
/// are +02:00, which chrono-tz's tables, ending at 2100, gave as +01:00), and St_Johns moves
/// at its own minute.
#[test]
fn session_zone_offsets_follow_the_zones_rule_after_2099_and_off_the_quarter_hour() {
    let paris = chrono_tz::Europe::Paris;
    let tz = ColumnType::TimestampTz { scale: 0 };
    let ltz = ColumnType::TimestampLtz { scale: 0 };
    for (zone, ty, value, expected) in [
        // What the SDK sends for a zoned Arrow value: the offset written is the one kept.
        (
            paris,
            &tz,
            json!("2100-07-01 14:00:00+02:00"),
            "2100-07-01 14:00:00.000000000+02:00",
        ),
        // An epoch: the instant with the session zone's offset then.
        (
            paris,
            &tz,
            json!(4_118_126_400_i64),
            "2100-07-01 14:00:00.000000000+02:00",
        ),
        (
            paris,
            &tz,
            json!(5_759_121_600_i64),
            "2152-07-01 14:00:00.000000000+02:00",
        ),
        // A wall clock without an offset: read in the session zone.
        (
            paris,
            &tz,
            json!("2100-07-01 14:00:00"),
            "2100-07-01 14:00:00.000000000+02:00",
        ),
        (
            paris,
            &ltz,
            json!("2100-07-01 14:00:00"),
            "2100-07-01 12:00:00.000000000Z",
        ),
        (
            chrono_tz::America::St_Johns,
            &tz,
            json!(923_196_660),
            "1999-04-04 01:01:00.000000000-02:30",
        ),
        (
            chrono_tz::America::St_Johns,
            &tz,
            json!(923_196_659),
            "1999-04-04 00:00:59.000000000-03:30",
        ),
    ] {
        assert_eq!(
            one_in(zone, ty.clone(), value.clone()),
            text(expected),
            "{zone} {ty:?} {value}"
        );
    }
}
