//! The tests of `row.rs`.

use super::*;
use crate::rows::layout::Layout;
use crate::rows::record::{metadata_of, Record, TimestampKind};

type Headers<'a> = &'a [(&'a [u8], Option<&'a [u8]>)];

fn record<'a>(value: Option<&'a [u8]>, headers: Headers<'a>) -> Record<'a> {
    Record {
        topic: "t",
        partition: 1,
        offset: crate::rows::KafkaOffset::new(9),
        key: Some(b"k"),
        value,
        timestamp: Some((TimestampKind::CreateTime, 5)),
        headers,
    }
}

fn options(metadata: bool, layout: Layout) -> RowOptions {
    RowOptions {
        metadata,
        max_row_bytes: 1 << 20,
        layout: Layout {
            push_time: false,
            ..layout
        },
    }
}

const CONTENT: Layout = Layout {
    kind: LayoutKind::RecordContent,
    ..Layout::DEFAULT
};
const TEXT: Layout = Layout {
    value_text: ValueText::Text,
    ..CONTENT
};

/// What `record` becomes, as the router and the worker make it: `Ok(Some(row))`,
/// `Ok(None)` (skipped) or `Err(reason)`; checks that the worker and `record::reason`
/// agree, that nothing is written for what is no row, that the bytes written fit
/// [`row_len`] and that the value can be had back from the row.
fn to_row(record: &Record<'_>, o: RowOptions) -> Result<Option<String>, String> {
    let mut meta = Vec::new();
    let metadata = match metadata_of(record, o, &mut meta) {
        Ok(true) => Some(&meta[..]),
        Ok(false) => None,
        Err(why) => return Err(why),
    };
    let mut rows = b"previous\n".to_vec();
    let kept = rows.len();
    let written = write_row(record.value, metadata, &o, &mut rows);
    let why = crate::rows::row::reason(record, o);
    match written {
        Written::Skip | Written::NotRow => {
            assert_eq!(rows.len(), kept, "nothing written");
            assert_eq!(written == Written::Skip, why.is_none(), "{why:?}");
            why.map_or(Ok(None), Err)
        }
        Written::Row(c) => {
            let len = row_len(record.value, metadata.map(<[u8]>::len), &o);
            assert!(rows.len() - kept <= len, "{} > {len}", rows.len() - kept);
            let end = rows.len() - 1;
            let value = value_of(&[], &rows[c.rest..end], c.shape);
            let is_null = record
                .value
                .is_some_and(|v| matches!(v.trim_ascii(), b"null" | b""));
            if !is_null {
                assert_eq!(value.as_deref(), record.value, "the value from the row");
            }
            let ok = finish(
                &mut rows[c.start..end],
                c.rest - c.start,
                c.shape,
                o.max_row_bytes,
            );
            assert_eq!(ok, why.is_none(), "{why:?}");
            match why {
                None => Ok(Some(
                    String::from_utf8(rows[c.start..end].to_vec()).unwrap(),
                )),
                Some(why) => Err(why),
            }
        }
    }
}

const META: &str = r#"{"topic":"t","offset":9,"partition":1,"CreateTime":5,"key":"k"}"#;

#[test]
fn record_content_holds_any_json_value_as_written() {
    let cases: &[(&[u8], &str)] = &[
        (b"{\"a\":1}", "{\"a\":1}"),
        (b"[1,\"x\"]", "[1,\"x\"]"),
        (b"\"s\"", "\"s\""),
        (b"12.5", "12.5"),
        (b"true", "true"),
        (b" {\"a\":\n 1} ", " {\"a\":  1} "),
    ];
    for (value, content) in cases {
        let row = to_row(&record(Some(value), &[]), options(true, CONTENT));
        let want = format!("{{\"RECORD_METADATA\":{META},\"RECORD_CONTENT\":{content}}}");
        assert_eq!(row, Ok(Some(want)), "{value:?}");
        let row = to_row(&record(Some(value), &[]), options(false, CONTENT));
        assert_eq!(row, Ok(Some(format!("{{\"RECORD_CONTENT\":{content}}}"))));
    }
}

#[test]
fn record_content_refuses_what_is_not_one_json_value_and_says_why() {
    let cases: &[(&[u8], &str)] = &[
        (b"hello", "not JSON"),
        // A value that would close the row and add a RECORD_METADATA of its own.
        (b"1,\"RECORD_METADATA\":{}", "not JSON"),
        (b"{\"a\":1} {", "not JSON"),
        (&[0xff, 0x31], "not UTF-8"),
    ];
    for (value, why) in cases {
        let err = to_row(&record(Some(value), &[]), options(true, CONTENT)).unwrap_err();
        assert!(err.contains(why), "{value:?}: {err}");
    }
    let too_big = RowOptions {
        max_row_bytes: 30,
        ..options(false, CONTENT)
    };
    let err = to_row(&record(Some(b"\"0123456789abcdef\""), &[]), too_big).unwrap_err();
    assert!(err.contains("more than the 30"), "{err}");
}

#[test]
fn string_values_are_json_strings_and_bytes_that_are_not_text_are_refused() {
    let cases: &[(&[u8], &str)] = &[
        (b"plain", "\"plain\""),
        (b"{\"a\":1}", "\"{\\\"a\\\":1}\""),
        (b"two\nlines\t\x01", "\"two\\nlines\\t\\u0001\""),
        (b"", "\"\""),
        ("caf\u{e9}".as_bytes(), "\"caf\u{e9}\""),
    ];
    for (value, content) in cases {
        let row = to_row(&record(Some(value), &[]), options(false, TEXT));
        assert_eq!(row, Ok(Some(format!("{{\"RECORD_CONTENT\":{content}}}"))));
    }
    let err = to_row(&record(Some(&[0xc3, 0x28]), &[]), options(true, TEXT)).unwrap_err();
    assert!(err.contains("not UTF-8"), "{err}");
    let too_big = RowOptions {
        max_row_bytes: 30,
        ..options(false, TEXT)
    };
    let err = to_row(&record(Some(&[b'\n'; 10]), &[]), too_big).unwrap_err();
    assert!(err.contains("more than the 30"), "{err}");
}

#[test]
fn a_tombstone_is_a_metadata_row_skipped_or_a_dead_letter_as_on_null_value_says() {
    let meta_row = Ok(Some(format!("{{\"RECORD_METADATA\":{META}}}")));
    for layout in [Layout::DEFAULT, CONTENT, TEXT] {
        let with = |on_null| options(true, Layout { on_null, ..layout });
        let without = |on_null| RowOptions {
            metadata: false,
            ..with(on_null)
        };
        let tombstone = record(None, &[]);
        assert_eq!(to_row(&tombstone, with(OnNullValue::Write)), meta_row);
        assert_eq!(to_row(&tombstone, without(OnNullValue::Write)), Ok(None));
        assert_eq!(to_row(&tombstone, with(OnNullValue::Skip)), Ok(None));
        let err = to_row(&tombstone, with(OnNullValue::DeadLetter)).unwrap_err();
        assert!(err.contains("tombstone"), "{err}");
    }
    // The JsonConverter reads the JSON text `null` as no value.
    let null = record(Some(b" null "), &[]);
    assert_eq!(to_row(&null, options(true, CONTENT)), meta_row);
    let row = to_row(&null, options(true, TEXT)).unwrap().unwrap();
    assert!(row.ends_with(",\"RECORD_CONTENT\":\" null \"}"), "{row}");
    // In `columns` too, and an empty value (the JsonConverter's no content) alike.
    assert_eq!(to_row(&null, options(true, Layout::DEFAULT)), meta_row);
    let empty = record(Some(b" "), &[]);
    assert_eq!(to_row(&empty, options(true, Layout::DEFAULT)), meta_row);
    assert_eq!(to_row(&empty, options(true, CONTENT)), meta_row);
    // `{}` with no metadata is no row: the connector appends none.
    let bare = record(Some(b"{ }"), &[]);
    assert_eq!(to_row(&bare, options(false, Layout::DEFAULT)), Ok(None));
}

#[test]
fn metadata_is_in_the_connectors_key_order_with_push_time_and_typed_headers_on_request() {
    let headers: Headers<'_> = &[
        (b"n", Some(b"42")),
        (b"obj", Some(b"{\"a\":\n[1]}")),
        (b"text", Some(b"hi")),
        (b"bin", Some(&[0xff])),
        (b"none", None),
    ];
    let r = record(Some(b"{}"), headers);
    let mut meta = Vec::new();
    assert_eq!(metadata_of(&r, options(true, CONTENT), &mut meta), Ok(true));
    assert_eq!(
        String::from_utf8(meta.clone()).unwrap(),
        r#"{"topic":"t","offset":9,"partition":1,"CreateTime":5,"key":"k","headers":{"n":"42","obj":"{\"a\":\n[1]}","text":"hi","bin":{"base64":"/w=="},"none":null}}"#
    );
    let typed = options(
        true,
        Layout {
            structured_headers: true,
            ..CONTENT
        },
    );
    assert_eq!(metadata_of(&r, typed, &mut meta), Ok(true));
    assert_eq!(
        String::from_utf8(meta.clone()).unwrap(),
        r#"{"topic":"t","offset":9,"partition":1,"CreateTime":5,"key":"k","headers":{"n":42,"obj":{"a": [1]},"text":"hi","bin":{"base64":"/w=="},"none":null}}"#
    );
    let pushed = RowOptions {
        layout: CONTENT,
        ..options(true, CONTENT)
    };
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert_eq!(metadata_of(&record(None, &[]), pushed, &mut meta), Ok(true));
    let text = String::from_utf8(meta.clone()).unwrap();
    let rest = text
        .strip_prefix(
            r#"{"topic":"t","offset":9,"partition":1,"CreateTime":5,"SnowflakeConnectorPushTime":"#,
        )
        .unwrap_or_else(|| panic!("{text}"));
    let (ms, tail) = rest.split_once(',').unwrap();
    assert!(ms.parse::<u128>().unwrap() >= before, "{text}");
    assert_eq!(tail, r#""key":"k"}"#);
}

#[test]
fn string_values_need_the_record_content_layout() {
    let parse = |extra: &str| crate::cli::args::args_with(extra).unwrap().row_layout();
    let err = parse("--value-format string").unwrap_err();
    assert!(err.contains("--layout record-content"), "{err}");
    assert_eq!(
        parse("--layout record-content --value-format string --on-null-value skip"),
        Ok(Layout {
            on_null: OnNullValue::Skip,
            ..TEXT
        })
    );
    assert_eq!(parse(""), Ok(Layout::DEFAULT));
    // Registry formats are decoded to JSON, then laid out as JSON values.
    for format in ["avro", "json-schema", "protobuf"] {
        assert_eq!(
            parse(&format!("--layout record-content --value-format {format}")),
            Ok(CONTENT),
            "{format}"
        );
    }
    assert_eq!(
        parse("--no-push-time --structured-headers"),
        Ok(Layout {
            push_time: false,
            structured_headers: true,
            ..Layout::DEFAULT
        })
    );
}
