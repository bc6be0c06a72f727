//! The tests of `schema.rs`: MySQL column types mapped to Snowflake's, and the DDL written.

use super::*;

fn info(name: &str, data_type: &str, column_type: &str) -> ColumnInfo {
    ColumnInfo {
        name: name.into(),
        data_type: data_type.into(),
        column_type: column_type.into(),
        nullable: true,
        ..ColumnInfo::default()
    }
}

#[test]
fn every_mysql_type_maps_to_a_snowflake_type() {
    let cases = [
        (info("a", "tinyint", "tinyint(1)"), "BOOLEAN"),
        (info("a", "tinyint", "tinyint(4)"), "NUMBER(3,0)"),
        (info("a", "bigint", "bigint(20) unsigned"), "NUMBER(20,0)"),
        (info("a", "bigint", "bigint(20)"), "NUMBER(19,0)"),
        (
            info("a", "mediumint", "mediumint(8) unsigned"),
            "NUMBER(8,0)",
        ),
        (info("a", "float", "float"), "FLOAT"),
        (info("a", "date", "date"), "DATE"),
        (info("a", "time", "time(3)"), "VARCHAR(20)"),
        (info("a", "year", "year(4)"), "NUMBER(4,0)"),
        (info("a", "bit", "bit(7)"), "NUMBER(20,0)"),
        (info("a", "json", "json"), "VARIANT"),
        (
            ColumnInfo {
                json_checked: true,
                ..info("a", "longtext", "longtext")
            },
            "VARIANT",
        ),
        (info("a", "longtext", "longtext"), "VARCHAR"),
    ];
    for (c, want) in cases {
        assert_eq!(snowflake_type(&kind_of(&c).unwrap()), want, "{c:?}");
    }
    let mut d = info("d", "decimal", "decimal(38,10)");
    d.precision = Some(38);
    d.scale = Some(10);
    assert_eq!(snowflake_type(&kind_of(&d).unwrap()), "NUMBER(38,10)");
    d.precision = Some(65);
    assert_eq!(snowflake_type(&kind_of(&d).unwrap()), "VARCHAR");
    let mut dt = info("t", "datetime", "datetime(6)");
    dt.datetime_precision = Some(6);
    assert_eq!(snowflake_type(&kind_of(&dt).unwrap()), "TIMESTAMP_NTZ(6)");
    for spatial in ["geometry", "point", "polygon", "multipolygon"] {
        let k = kind_of(&info("g", spatial, spatial)).unwrap();
        assert_eq!(snowflake_type(&k), "BINARY", "{spatial}");
    }
    let err = kind_of(&info("a", "uuid", "uuid")).unwrap_err();
    assert!(
        err.to_string().contains("uuid") && is_unmapped(&err),
        "{err}"
    );
    assert!(is_unmapped(&err.context("cannot describe t")));
}

#[test]
fn values_convert_exactly() {
    let big = to_json(
        &Kind::Int {
            unsigned: true,
            digits: 20,
        },
        &Value::UInt(u64::MAX),
    )
    .unwrap();
    assert_eq!(big.to_string(), "18446744073709551615");
    let dec = Kind::Decimal {
        precision: 38,
        scale: 10,
    };
    let max = "9999999999999999999999999999.9999999999";
    assert_eq!(
        to_json(&dec, &Value::Bytes(max.into())).unwrap(),
        Json::String(max.into())
    );
    assert_eq!(
        to_json(&Kind::Float, &Value::Float(0.1))
            .unwrap()
            .to_string(),
        "0.1"
    );
    assert_eq!(
        to_json(&Kind::Bool, &Value::Int(5)).unwrap(),
        Json::Bool(true)
    );
    assert_eq!(
        to_json(
            &Kind::Binary { max_bytes: None },
            &Value::Bytes(vec![0, 0xab, 0xff])
        )
        .unwrap(),
        Json::String("00abff".into())
    );
    assert_eq!(
        to_json(
            &Kind::Time { fsp: 3 },
            &Value::Time(true, 34, 22, 59, 59, 123_000)
        )
        .unwrap(),
        Json::String("-838:59:59.123".into())
    );
    assert_eq!(
        to_json(
            &Kind::DateTime { fsp: 6 },
            &Value::Date(9999, 12, 31, 23, 59, 59, 999_999)
        )
        .unwrap(),
        Json::String("9999-12-31 23:59:59.999999".into())
    );
    assert_eq!(
        to_json(&Kind::Bit, &Value::Bytes(vec![1, 0])).unwrap(),
        Json::from(256)
    );
    assert_eq!(to_json(&Kind::Json, &Value::NULL).unwrap(), Json::Null);
    assert_eq!(
        to_json(&Kind::Date, &Value::Date(0, 0, 0, 0, 0, 0, 0)).unwrap(),
        Json::Null
    );
}

#[test]
fn invalid_dates_are_refused_naming_the_date() {
    let dt = Kind::DateTime { fsp: 0 };
    for (y, m, d) in [
        (2024, 2, 30),
        (2023, 2, 29),
        (2024, 0, 15),
        (2024, 4, 0),
        (2024, 13, 1),
    ] {
        let err = to_json(&dt, &Value::Date(y, m, d, 1, 2, 3, 0)).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("invalid date {y:04}-{m:02}-{d:02}")),
            "{err}"
        );
        assert!(to_json(&Kind::Date, &Value::Date(y, m, d, 0, 0, 0, 0)).is_err());
    }
    assert_eq!(
        to_json(&Kind::Date, &Value::Date(2024, 2, 29, 0, 0, 0, 0)).unwrap(),
        Json::String("2024-02-29".into())
    );
    assert_eq!(
        to_json(&dt, &Value::Date(0, 0, 0, 0, 0, 0, 0)).unwrap(),
        Json::Null
    );
    let err = to_json(&Kind::Json, &Value::Bytes(b"{not json".to_vec())).unwrap_err();
    assert!(err.to_string().contains("invalid JSON"), "{err}");
    let err = to_json(&Kind::Text { max_chars: None }, &Value::Bytes(vec![0xff])).unwrap_err();
    assert!(err.to_string().contains("not valid UTF-8"), "{err}");
}

#[test]
fn values_longer_than_snowflakes_columns_are_refused_at_the_limit() {
    let text = Kind::Text { max_chars: None };
    let at = VARCHAR_MAX as usize;
    assert!(to_json(&text, &Value::Bytes(vec![b'x'; at])).is_ok());
    let err = to_json(&text, &Value::Bytes(vec![b'x'; at + 1])).unwrap_err();
    assert!(
        err.to_string()
            .contains("VARCHAR of at most 16777216 bytes"),
        "{err}"
    );
    let bin = Kind::Binary { max_bytes: None };
    assert!(to_json(&bin, &Value::Bytes(vec![0; BINARY_MAX as usize])).is_ok());
    let err = to_json(&bin, &Value::Bytes(vec![0; BINARY_MAX as usize + 1])).unwrap_err();
    assert!(
        err.to_string().contains("BINARY of at most 8388608 bytes"),
        "{err}"
    );
}

#[test]
fn keys_must_be_one_integer_column() {
    let col = |name: &str, kind: Kind, nullable: bool| SourceColumn {
        name: name.into(),
        column_type: format!("{kind:?}"),
        kind,
        nullable,
        charset: None,
    };
    let cols = vec![
        col(
            "id",
            Kind::Int {
                unsigned: true,
                digits: 20,
            },
            false,
        ),
        col(
            "name",
            Kind::Text {
                max_chars: Some(10),
            },
            false,
        ),
        col(
            "n",
            Kind::Int {
                unsigned: false,
                digits: 10,
            },
            true,
        ),
    ];
    assert_eq!(key_index("t", &cols, &["id".into()], None).unwrap(), 0);
    let composite = key_index("t", &cols, &["id".into(), "name".into()], None).unwrap_err();
    assert!(composite
        .to_string()
        .contains("composite primary key (id, name)"));
    assert!(composite.to_string().contains("single-column integer key"));
    let text = key_index("t", &cols, &[], Some("name")).unwrap_err();
    assert!(text.to_string().contains("not an integer"), "{text}");
    assert!(key_index("t", &cols, &[], None)
        .unwrap_err()
        .to_string()
        .contains("no primary key"));
    assert!(key_index("t", &cols, &[], Some("n"))
        .unwrap_err()
        .to_string()
        .contains("nullable"));
    assert!(key_value(&Value::Int(-1)).is_err());
    assert_eq!(key_value(&Value::UInt(u64::MAX)).unwrap(), u64::MAX);
}

#[test]
fn ddl_declares_table_and_pipe() {
    let table = SourceTable {
        name: "orders".into(),
        columns: vec![
            SourceColumn {
                name: "id".into(),
                column_type: "bigint".into(),
                kind: Kind::Int {
                    unsigned: false,
                    digits: 19,
                },
                nullable: false,
                charset: None,
            },
            SourceColumn {
                name: "note text".into(),
                column_type: "text".into(),
                kind: Kind::Text {
                    max_chars: Some(65535),
                },
                nullable: true,
                charset: None,
            },
        ],
        key: 0,
        keys: vec![0],
    };
    let ddl = ddl(&table, "DB", "PUBLIC", "ORDERS", "ORDERS_PIPE");
    assert!(ddl.contains("CREATE TABLE IF NOT EXISTS DB.PUBLIC.ORDERS (\n    ID NUMBER(19,0) NOT NULL,\n    \"NOTE TEXT\" VARCHAR(65535)\n);"), "{ddl}");
    assert!(
        ddl.contains("CREATE PIPE IF NOT EXISTS DB.PUBLIC.ORDERS_PIPE AS"),
        "{ddl}"
    );
}
