use apache_avro::types::Record;
use apache_avro::Decimal;

use super::*;

const SCHEMA: &str = r#"{
      "type": "record", "name": "Order", "namespace": "shop",
      "fields": [
        {"name": "id", "type": "long"},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 10}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "at_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "time", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "time_us", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
          {"name": "name", "type": "string"},
          {"name": "tier", "type": {"type": "enum", "name": "Tier", "symbols": ["GOLD", "SILVER"]}}
        ]}},
        {"name": "previous", "type": ["null", "Customer"]},
        {"name": "note", "type": ["null", "string"]},
        {"name": "blob", "type": "bytes"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "counts", "type": {"type": "map", "values": "int"}},
        {"name": "ratio", "type": "float"},
        {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 2}}
      ]
    }"#;

fn customer(name: &str) -> Value {
    Value::Record(vec![
        ("name".into(), Value::String(name.into())),
        ("tier".into(), Value::Enum(0, "GOLD".into())),
    ])
}

fn encode(schema: &Schema, note: Option<&str>, price: i128) -> Vec<u8> {
    let mut r = Record::new(schema).unwrap();
    r.put("id", Value::Long(7));
    r.put(
        "price",
        Value::Decimal(Decimal::from(price.to_be_bytes().to_vec())),
    );
    r.put("at", Value::TimestampMicros(1_700_000_000_123_456));
    r.put("at_ms", Value::TimestampMillis(1_700_000_000_123));
    r.put("day", Value::Date(19_737));
    r.put("time", Value::TimeMillis(49_530_123));
    r.put("time_us", Value::TimeMicros(1_000_001));
    r.put(
        "uid",
        Value::Uuid("67e55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap()),
    );
    r.put("customer", customer("Ada"));
    r.put("previous", Value::Union(0, Box::new(Value::Null)));
    r.put(
        "note",
        match note {
            Some(n) => Value::Union(1, Box::new(Value::String(n.into()))),
            None => Value::Union(0, Box::new(Value::Null)),
        },
    );
    r.put("blob", Value::Bytes(vec![0, 1, 0xff]));
    r.put(
        "tags",
        Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
    );
    r.put(
        "counts",
        Value::Map(
            [
                ("z".to_owned(), Value::Int(1)),
                ("a".to_owned(), Value::Int(2)),
            ]
            .into(),
        ),
    );
    r.put("ratio", Value::Float(0.1));
    r.put("hash", Value::Fixed(2, vec![0xab, 0xcd]));
    apache_avro::to_avro_datum(schema, r).unwrap()
}

#[test]
fn every_type_becomes_the_connectors_json() {
    let parsed = AvroSchema::parse(SCHEMA).unwrap();
    // 12345678901234567890.1234567890 at scale 10.
    let body = encode(
        &parsed.root,
        Some("x\ny"),
        123_456_789_012_345_678_901_234_567_890,
    );
    let json = parsed.to_json(&body).unwrap();
    assert_eq!(
        json,
        concat!(
            r#"{"id":7,"price":12345678901234567890.1234567890,"at":1700000000123456,"#,
            r#""at_ms":"2023-11-14T22:13:20.123Z","day":"2024-01-15T00:00:00.000Z","#,
            r#""time":"13:45:30.123Z","time_us":1000001,"#,
            r#""uid":"67e55044-10b1-426f-9247-bb680e5fe0c8","#,
            r#""customer":{"name":"Ada","tier":"GOLD"},"previous":null,"note":"x\ny","#,
            r#""blob":"AAH/","tags":["a","b"],"counts":{"a":2,"z":1},"ratio":0.1,"#,
            r#""hash":"q80="}"#
        )
    );
    let negative = parsed.to_json(&encode(&parsed.root, None, -5)).unwrap();
    assert!(negative.contains(r#""price":-0.0000000005,"#), "{negative}");
    assert!(negative.contains(r#""note":null,"#), "{negative}");
}

#[test]
fn what_is_not_a_datum_of_the_schema_is_refused_with_the_reason() {
    let parsed = AvroSchema::parse(SCHEMA).unwrap();
    let mut body = encode(&parsed.root, None, 1);
    body.push(0);
    let cases: &[(&[u8], &str)] = &[
        (&body, "1 bytes are left"),
        (&body[..body.len() - 6], "does not decode"),
        (
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            "does not decode",
        ),
    ];
    for (bytes, why) in cases {
        let err = parsed.to_json(bytes).unwrap_err();
        assert!(err.contains(why), "{err}");
    }
    let string = AvroSchema::parse(r#""string""#).unwrap();
    let err = string.to_json(b"\x02a").unwrap_err();
    assert!(err.contains("a string, not a record"), "{err}");
    let double = AvroSchema::parse(
        r#"{"type":"record","name":"R","fields":[{"name":"d","type":"double"}]}"#,
    )
    .unwrap();
    for (d, json) in [
        (f64::NAN, r#"{"d":"NaN"}"#),
        (f64::INFINITY, r#"{"d":"Inf"}"#),
        (f64::NEG_INFINITY, r#"{"d":"-Inf"}"#),
    ] {
        assert_eq!(double.to_json(&d.to_le_bytes()).unwrap(), json);
    }
    let union = AvroSchema::parse(
        r#"{"type":"record","name":"R","fields":[{"name":"u","type":["null","int","string"]}]}"#,
    )
    .unwrap();
    // Several non-null branches: Connect's Union struct, one key per branch.
    assert_eq!(
        union.to_json(b"\x02\x04").unwrap(),
        r#"{"u":{"int":2,"string":null}}"#
    );
    assert_eq!(union.to_json(b"\x00").unwrap(), r#"{"u":null}"#);
    let customer = AvroSchema::parse(
        r#"{"type":"record","name":"R","fields":[{"name":"u","type":["int",
               {"type":"record","name":"Customer","namespace":"shop","fields":[
                 {"name":"name","type":"string"}]}]}]}"#,
    )
    .unwrap();
    assert_eq!(
        customer.to_json(b"\x02\x06Ann").unwrap(),
        r#"{"u":{"int":null,"Customer":{"name":"Ann"}}}"#
    );
    // AvroConverter's map with non-string keys: an array of MapEntry records.
    let entries = AvroSchema::parse(
        r#"{"type":"record","name":"R","fields":[{"name":"m","type":{"type":"array",
               "items":{"type":"record","name":"MapEntry","namespace":"io.confluent.connect.avro",
               "fields":[{"name":"key","type":"int"},{"name":"value","type":"string"}]}}}]}"#,
    )
    .unwrap();
    assert_eq!(
        entries.to_json(b"\x02\x02\x06one\x00").unwrap(),
        r#"{"m":[[1,"one"]]}"#
    );
    // A top-level map's keys are columns; a standalone null schema is refused.
    let map = AvroSchema::parse(r#"{"type":"map","values":"int"}"#).unwrap();
    assert_eq!(map.to_json(b"\x02\x02a\x02\x00").unwrap(), r#"{"a":1}"#);
    let null = AvroSchema::parse(r#""null""#).unwrap();
    assert!(null
        .value_to_json(b"")
        .unwrap_err()
        .contains("Standalone null"));
    assert!(AvroSchema::parse("{\"type\":\"nope\"}")
        .unwrap_err()
        .contains("not an Avro schema"));
}

/// Decimals of more than 38 digits are strings, as Java's `BigDecimal.toString` writes
/// them; timestamps before the epoch are ISO strings too.
#[test]
fn the_connectors_v4_numbers_and_times() {
    assert_eq!(java_big_decimal("123", 0), "123");
    assert_eq!(java_big_decimal("-5", 10), "-5E-10");
    assert_eq!(java_big_decimal("12", 7), "0.0000012");
    assert_eq!(java_big_decimal("12", 8), "1.2E-7");
    assert_eq!(java_big_decimal("1", -400), "1E+400");
    assert_eq!(java_big_decimal("0", 10), "0E-10");
    let mut out = String::new();
    write_iso_millis(&mut out, -23_155_200_000);
    assert_eq!(out, "\"1969-04-08T00:00:00.000Z\"");
    out.clear();
    write_iso_millis(&mut out, -1);
    assert_eq!(out, "\"1969-12-31T23:59:59.999Z\"");
    let wide = AvroSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"p","type":{"type":"bytes","logicalType":"decimal","precision":40,"scale":2}}]}"#,
        )
        .unwrap();
    let big: i128 = i128::MAX; // 39 digits
    let mut r = apache_avro::types::Record::new(&wide.root).unwrap();
    r.put(
        "p",
        Value::Decimal(Decimal::from(big.to_be_bytes().to_vec())),
    );
    let body = apache_avro::to_avro_datum(&wide.root, r).unwrap();
    assert_eq!(
        wide.to_json(&body).unwrap(),
        r#"{"p":"1701411834604692317316873037158841057.27"}"#
    );
}

/// `RECORD_CONTENT` takes any value, converted as a record's field would be; a null
/// union's null is `null` (the layout's tombstone).
#[test]
fn any_value_converts_for_record_content() {
    let cases: &[(&str, &[u8], &str)] = &[
        (r#""string""#, b"\x02a", r#""a""#),
        (r#""long""#, b"\x03", "-2"),
        (r#""bytes""#, b"\x04\x00\xff", r#""AP8=""#),
        (
            r#"{"type":"array","items":"int"}"#,
            b"\x04\x02\x04\x00",
            "[1,2]",
        ),
        (r#"["null","string"]"#, b"\x00", "null"),
        (r#"["null","string"]"#, b"\x02\x02b", r#""b""#),
        (
            r#"{"type":"bytes","logicalType":"decimal","precision":5,"scale":2}"#,
            b"\x02\x7b",
            "1.23",
        ),
    ];
    for (schema, body, json) in cases {
        let parsed = AvroSchema::parse(schema).unwrap();
        assert_eq!(parsed.value_to_json(body).as_deref(), Ok(*json), "{schema}");
    }
    let record = AvroSchema::parse(SCHEMA).unwrap();
    let body = encode(&record.root, None, 1);
    assert_eq!(record.value_to_json(&body), record.to_json(&body));
    let nullable = AvroSchema::parse(r#"["null","string"]"#).unwrap();
    assert_eq!(
        nullable.to_json(b"\x00").as_deref(),
        Ok("null"),
        "a tombstone"
    );
    assert!(nullable
        .to_json(b"\x02\x02b")
        .unwrap_err()
        .contains("not a record"));
    let string = AvroSchema::parse(r#""string""#).unwrap();
    assert!(string
        .value_to_json(b"\x02a\x00")
        .unwrap_err()
        .contains("left"));
}

/// A recursive schema: each level of nesting costs the producer one byte.
const NODE: &str =
    r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}"#;

/// The body of a `Node` nested `records` deep (the branch `Node` `records - 1` times, then
/// `null`), and its JSON.
fn nested(records: usize) -> (Vec<u8>, String) {
    let mut body = vec![2u8; records - 1];
    body.push(0);
    let json = format!(
        "{}null{}",
        r#"{"next":"#.repeat(records),
        "}".repeat(records)
    );
    (body, json)
}

/// `f` on a thread with a stack of `bytes` (the sink's runtime threads have
/// [`crate::formats::avro_depth::STACK_BYTES`]).
fn on_stack<T: Send + 'static>(bytes: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(bytes)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// One producer's deeply nested value must be a dead letter, never a stack overflow (which
/// aborts the process, and the restarted sink reads the same message again).
#[test]
fn a_value_nested_past_the_limit_is_a_dead_letter_not_a_stack_overflow() {
    let deep = crate::formats::avro_depth::MAX_DEPTH + 1;
    for records in [deep, 1 << 20] {
        let err = on_stack(crate::formats::avro_depth::STACK_BYTES, move || {
            let schema = AvroSchema::parse(NODE).unwrap();
            let (body, _) = nested(records);
            (schema.to_json(&body), schema.value_to_json(&body))
        });
        for err in [err.0.unwrap_err(), err.1.unwrap_err()] {
            assert!(
                err.contains(&format!(
                    "nests deeper than {} levels",
                    crate::formats::avro_depth::MAX_DEPTH
                )),
                "{records}: {err}"
            );
        }
    }
    // A record that holds itself, with no union to end it, nests without end: even an
    // empty body would recurse for ever in the decoder.
    let endless = on_stack(crate::formats::avro_depth::STACK_BYTES, || {
        AvroSchema::parse(
            r#"{"type":"record","name":"Loop","fields":[{"name":"again","type":"Loop"}]}"#,
        )
        .unwrap()
        .to_json(b"")
    });
    assert!(endless.unwrap_err().contains("nests deeper than"));
}

/// At the limit, the worst shape (a union whose branch refers to a record: three decoder
/// frames a level) decodes and is written as it always was, on three quarters of a runtime
/// thread's stack in this (debug) build.
#[test]
fn a_value_at_the_limit_decodes_as_before_on_a_small_stack() {
    for records in [1, 2, crate::formats::avro_depth::MAX_DEPTH] {
        let (got, want) = on_stack(crate::formats::avro_depth::STACK_BYTES / 4 * 3, move || {
            let schema = AvroSchema::parse(NODE).unwrap();
            let (body, json) = nested(records);
            (schema.to_json(&body), json)
        });
        assert_eq!(got, Ok(want), "{records} records");
    }
}

/// The stack a decode takes, for choosing the limit: `AVRO_PROBE_RECORDS` records deep
/// (without the depth check) on a thread of `AVRO_PROBE_STACK` bytes. Run it alone and
/// watch for an abort.
#[test]
#[ignore]
fn probe_the_stack_a_decode_takes() {
    let env = |k: &str| std::env::var(k).unwrap().parse::<usize>().unwrap();
    let (records, stack) = (env("AVRO_PROBE_RECORDS"), env("AVRO_PROBE_STACK"));
    let ok = on_stack(stack, move || {
        let mut schema = AvroSchema::parse(NODE).unwrap();
        schema.resolved = None;
        let (body, json) = nested(records);
        schema.to_json(&body) == Ok(json)
    });
    assert!(ok);
}

#[test]
fn decimals_keep_their_scale_and_dates_are_proleptic_gregorian() {
    let cases = [
        ("0", 2, "0.00"),
        ("5", 3, "0.005"),
        ("-5", 3, "-0.005"),
        ("12345", 2, "123.45"),
        ("-12345", 5, "-0.12345"),
        ("42", 0, "42"),
    ];
    for (digits, scale, want) in cases {
        assert_eq!(with_scale(digits, scale), want, "{digits} at {scale}");
    }
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    assert_eq!(civil_from_days(19_737), (2024, 1, 15));
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
}

/// AvroConverter's Connect map (an array of `io.confluent.connect.avro.MapEntry` records) in
/// the order of the `new HashMap<>(entries)` `AvroData` fills in wire order, each key once
/// with its last value (expectations printed by a JDK 17 `HashMap` filled the same way).
#[test]
fn map_entries_are_written_in_java_hash_map_order() {
    let schema = |key: &str, value: &str| {
        AvroSchema::parse(&format!(
            r#"{{"type":"record","name":"R","fields":[{{"name":"m","type":{{"type":"array",
               "items":{{"type":"record","name":"MapEntry","namespace":"io.confluent.connect.avro",
               "fields":[{{"name":"key","type":{key}}},{{"name":"value","type":{value}}}]}}}}}}]}}"#
        ))
        .unwrap()
    };
    let row = |s: &AvroSchema, entries: Vec<(Value, Value)>| {
        let entries = entries
            .into_iter()
            .map(|(k, v)| Value::Record(vec![("key".into(), k), ("value".into(), v)]))
            .collect();
        let datum = Value::Record(vec![("m".into(), Value::Array(entries))]);
        s.to_json(&apache_avro::to_avro_datum(&s.root, datum).unwrap())
            .unwrap()
    };
    let text = |t: &str| Value::String(t.into());
    let ints = schema(r#""int""#, r#""string""#);
    // The issue's example: {16: "p", 1: "a", 2: "b"}.
    let entries = vec![
        (Value::Int(16), text("p")),
        (Value::Int(1), text("a")),
        (Value::Int(2), text("b")),
    ];
    assert_eq!(row(&ints, entries), r#"{"m":[[16,"p"],[1,"a"],[2,"b"]]}"#);
    // A map sized for two entries has two buckets: 5 and 1 share one, in wire order.
    let entries = vec![(Value::Int(5), text("five")), (Value::Int(1), text("one"))];
    assert_eq!(row(&ints, entries), r#"{"m":[[5,"five"],[1,"one"]]}"#);
    // A key given twice: its first place, its last value.
    let entries = vec![
        (Value::Int(17), text("x")),
        (Value::Int(1), text("a")),
        (Value::Int(17), text("y")),
    ];
    assert_eq!(row(&ints, entries), r#"{"m":[[17,"y"],[1,"a"]]}"#);
    let longs = schema(r#""long""#, r#""string""#);
    let entries = vec![
        (Value::Long(1 << 32), text("hi")),
        (Value::Long(1), text("one")),
    ];
    assert_eq!(
        row(&longs, entries),
        r#"{"m":[[4294967296,"hi"],[1,"one"]]}"#
    );
    // Optional text keys make a Connect STRING-keyed map: an object, `null` as "null".
    let optional = schema(r#"["null","string"]"#, r#""int""#);
    let entries = vec![
        (Value::Union(0, Box::new(Value::Null)), Value::Int(1)),
        (Value::Union(1, Box::new(text("a"))), Value::Int(2)),
    ];
    assert_eq!(row(&optional, entries), r#"{"m":{"null":1,"a":2}}"#);
    let strings = schema(r#""string""#, r#""int""#);
    let entries = vec![
        (text("zz"), Value::Int(2)),
        (text("a"), Value::Int(1)),
        (text("b"), Value::Int(3)),
    ];
    assert_eq!(row(&strings, entries), r#"{"m":{"zz":2,"a":1,"b":3}}"#);
    // Record keys (whose Java hash holds identity hashes): wire order, each key once.
    let records = schema(
        r#"{"type":"record","name":"K","fields":[{"name":"k","type":"int"}]}"#,
        r#""int""#,
    );
    let key = |n: i32| Value::Record(vec![("k".into(), Value::Int(n))]);
    let entries = vec![
        (key(2), Value::Int(20)),
        (key(1), Value::Int(10)),
        (key(2), Value::Int(21)),
    ];
    assert_eq!(
        row(&records, entries),
        r#"{"m":[[{"k":2},21],[{"k":1},10]]}"#
    );
}

/// Found by the standing suite (`hostile_registry_schemas`, seed 0x4d057020598952ee, case 4,
/// Encoding): a control character in a record's name made the parser panic (an `unwrap` in
/// `apache-avro`'s name handling) on the blocking thread that compiles schemas; tokio caught it
/// and the message became a dead letter, but a panic is a crash to the suite, and the failure
/// was not remembered, so every message of the id compiled (and panicked) again.
#[test]
fn a_control_character_in_a_name_is_refused_not_a_panic() {
    let text = r#"{"type":"record","name":"T\u007f","fields":[{"name":"id","type":"long"}]}"#;
    let outcome = std::panic::catch_unwind(|| AvroSchema::parse(text).map(|_| ()));
    let why = outcome.expect("no panic").expect_err("refused");
    assert!(why.contains("name"), "{why}");
}
