use super::convert::{java_float, java_hash_map_order};
use super::parse_string::{parse_number, Cv, MAX_DEPTH};
use super::*;
use crate::formats::connect_type::ConnectType;

/// The header's `RECORD_METADATA` value, flattened and structured.
fn simple(text: &str) -> (String, String) {
    let mut flat = Vec::new();
    write_header(
        &mut flat,
        Some(text.as_bytes()),
        HeaderConverter::Simple,
        false,
    )
    .unwrap();
    let mut typed = Vec::new();
    write_header(
        &mut typed,
        Some(text.as_bytes()),
        HeaderConverter::Simple,
        true,
    )
    .unwrap();
    (
        String::from_utf8(flat).unwrap(),
        String::from_utf8(typed).unwrap(),
    )
}

#[test]
fn simple_header_converter_values_as_connector_v4_writes_them() {
    // (header text, v4 flattened, v4 structured): the connector's e2e and unit tests and
    // the document's §11.
    for (text, flat, typed) in [
        ("value1", r#""value1""#, r#""value1""#),
        ("hello world", r#""hello world""#, r#""hello world""#),
        ("42", r#""42""#, "42"),
        ("true", r#""true""#, "true"),
        ("{}", r#""[]""#, "[]"),
        (r#"{"a":1}"#, r#""{a=1}""#, r#"{"a":1}"#),
        ("[1,2,3]", r#""[1, 2, 3]""#, "[1,2,3]"),
        ("1.50", r#""1.5""#, "1.5"),
        ("3.14159265358979", r#""3.1415927""#, "3.1415927"),
        (
            "2024-01-15",
            r#""2024-01-15T00:00:00.000Z""#,
            r#""2024-01-15T00:00:00.000Z""#,
        ),
        ("null", "null", "null"),
        (r#""hello""#, r#""\"hello\"""#, r#""\"hello\"""#),
        ("10:20:30.123Z", r#""10:20:30.123Z""#, r#""10:20:30.123Z""#),
        (
            "2024-01-15T10:20:30.123Z",
            r#""2024-01-15T10:20:30.123Z""#,
            r#""2024-01-15T10:20:30.123Z""#,
        ),
        ("1.0", r#""1""#, "1"),
        ("300", r#""300""#, "300"),
        ("[1, 2.5]", r#""[1.0, 2.5]""#, "[1.0,2.5]"),
        (r#"{1:"a"}"#, r#""[[1, a]]""#, r#"[[1,"a"]]"#),
        ("true}", r#""true}""#, r#""true}""#),
        (
            "12345678901234567890",
            r#""12345678901234567890""#,
            "12345678901234567890",
        ),
        ("1e20", r#""1.0E20""#, "1.0E20"),
        ("-0.0001", r#""-1.0E-4""#, "-1.0E-4"),
        ("", r#""""#, r#""""#),
        ("{a=1}", r#""{a=1}""#, r#""{a=1}""#),
    ] {
        assert_eq!(
            simple(text),
            (flat.to_owned(), typed.to_owned()),
            "{text:?}"
        );
    }
}

#[test]
fn bytes_that_are_not_utf8_are_replaced_as_java_decodes_them() {
    let mut out = Vec::new();
    write_header(&mut out, Some(&[0xff]), HeaderConverter::Simple, false).unwrap();
    assert_eq!(out, "\"\u{fffd}\"".as_bytes());
    let mut out = Vec::new();
    write_key(&mut out, &[0xff, 0xfe], KeyConverter::String, None).unwrap();
    assert_eq!(out, ",\"key\":\"\u{fffd}\u{fffd}\"".as_bytes());
}

#[test]
fn keys_by_converter() {
    let key = |k: &[u8], c| {
        let mut out = Vec::new();
        write_key(&mut out, k, c, None).map(|()| String::from_utf8(out).unwrap())
    };
    assert_eq!(
        key(b"{\"number\": \"0\"}", KeyConverter::Json).unwrap(),
        r#","key":{"number": "0"}"#
    );
    assert_eq!(key(b"123", KeyConverter::Json).unwrap(), r#","key":123"#);
    assert_eq!(key(b"null", KeyConverter::Json).unwrap(), "");
    assert!(key(b"{oops", KeyConverter::Json)
        .unwrap_err()
        .contains("not JSON"));
    assert_eq!(
        key(b"hello", KeyConverter::Bytes).unwrap(),
        r#","key":"aGVsbG8=""#
    );
    assert_eq!(
        key(&[0xff], KeyConverter::Raw).unwrap(),
        r#","key_base64":"/w==""#
    );
}

#[test]
fn other_header_converters() {
    let h = |v: &[u8], c, s| {
        let mut out = Vec::new();
        write_header(&mut out, Some(v), c, s).map(|()| String::from_utf8(out).unwrap())
    };
    assert_eq!(
        h(b"hello", HeaderConverter::Bytes, true).unwrap(),
        r#""aGVsbG8=""#
    );
    assert_eq!(
        h(b"{\"a\":1}", HeaderConverter::String, true).unwrap(),
        r#""{\"a\":1}""#
    );
    assert_eq!(
        h(b"\"hello\"", HeaderConverter::Json, true).unwrap(),
        r#""hello""#
    );
    assert_eq!(
        h(b"\"hello\"", HeaderConverter::Json, false).unwrap(),
        r#""hello""#
    );
    assert_eq!(
        h(b"[1,2.50]", HeaderConverter::Json, false).unwrap(),
        r#""[1, 2.5]""#
    );
    assert!(h(b"{x", HeaderConverter::Json, true).is_err());
}

#[test]
fn java_hash_map_order_is_javas() {
    // new HashMap<>() with "b", "a", "c" put in that order iterates a, b, c; "Aa" and "BB"
    // share a hash code and keep their insertion order.
    let k = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
    let keys = k(&["b", "a", "c"]);
    let refs: Vec<&String> = keys.iter().collect();
    assert_eq!(java_hash_map_order(&refs), vec![1, 0, 2]);
    let keys = k(&["BB", "Aa"]);
    let refs: Vec<&String> = keys.iter().collect();
    assert_eq!(java_hash_map_order(&refs), vec![0, 1]);
}

#[test]
fn java_number_text() {
    assert_eq!(java_float(100.0, "1e2"), "100.0");
    assert_eq!(java_float(1e7, "1e7"), "1.0E7");
    assert_eq!(java_float(0.001, "1e-3"), "0.001");
    // Integral, but far past a long: a float when the scale is not 0, else a decimal.
    assert_eq!(parse_number("1e100"), Some(Cv::F64(1e100)));
    assert_eq!(
        parse_number("0000000000000000000000007"),
        Some(Cv::Int(7, ConnectType::Int8))
    );
    assert_eq!(parse_number("1e20"), Some(Cv::F32(1e20)));
    assert_eq!(parse_number("1e400"), Some(Cv::Decimal("1E+400".into(), 1)));
    assert_eq!(
        parse_number("-123456789012345678901234567890"),
        Some(Cv::Decimal("-123456789012345678901234567890".into(), 30))
    );
    assert_eq!(parse_number("-0001.50e-10"), Some(Cv::F32(-1.5e-10)));
}

/// Arrays nested `n` deep around `1`.
fn nested_text(n: usize) -> String {
    format!("{}1{}", "[".repeat(n), "]".repeat(n))
}

#[test]
fn header_nested_to_the_limit_is_an_array() {
    let mut v = parse_string(&nested_text(MAX_DEPTH)).unwrap();
    let mut levels = 0;
    while let Cv::Array(mut items) = v {
        assert_eq!(items.len(), 1);
        v = items.pop().unwrap();
        levels += 1;
    }
    assert_eq!(levels, MAX_DEPTH);
    assert_eq!(v, Cv::Int(1, ConnectType::Int8));
}

/// Issue 81: a header of 30,000 nested brackets overflowed the converting thread's stack.
/// Past [`MAX_DEPTH`] the whole header is its text (Kafka keeps its bytes), on a thread with
/// an 8 MiB stack, which 100,000 levels of recursion would overflow.
#[test]
fn header_nested_past_the_limit_is_its_text() {
    for (n, text) in [
        (MAX_DEPTH + 1, nested_text(MAX_DEPTH + 1)),
        (30_000, nested_text(30_000)),
        (100_000, "{\"a\":".repeat(100_000)),
    ] {
        let parsed = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn({
                let text = text.clone();
                move || parse_string(&text)
            })
            .unwrap()
            .join()
            .unwrap_or_else(|_| panic!("{n} levels"));
        assert_eq!(parsed, Some(Cv::Str(text)), "{n} levels");
    }
}
