/// The row limit of the tests that do not test it.
const ROW: usize = 1 << 20;

use super::*;
use prost::Message as _;

const PROTO: &str = r#"
syntax = "proto3";
package shop;
message Order {
  int64 id = 1;
  uint64 big = 2;
  float ratio = 3;
  double price = 4;
  bool paid = 5;
  string note = 6;
  bytes blob = 7;
  Tier tier = 8;
  Customer customer = 9;
  repeated int32 qty = 10;
  map<string, int64> counts = 11;
  optional string maybe = 12;
  sint32 delta = 13;
  message Line { string sku = 1; }
  repeated Line lines = 14;
}
enum Tier { GOLD = 0; SILVER = 1; }
message Customer { string name = 1; }
message WithOneof { int32 id = 3; oneof pick { string a = 1; int32 b = 2; } optional int32 o = 4; oneof other { bool c = 5; } }
message WithTime {
  google.protobuf.Timestamp at = 1;
  google.protobuf.Int32Value wrapped = 2;
  google.protobuf.Duration took = 3;
  map<int32, string> by_id = 4;
  google.protobuf.Struct doc = 5;
}
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/struct.proto";
"#;

/// `message` (by its full name) built from JSON with prost-reflect, in the wire body.
fn body(schema: &ProtoSchema, indexes: &[u8], name: &str, json: &str) -> Vec<u8> {
    let d = find(schema, name);
    let mut de = serde_json::Deserializer::from_str(json);
    let m = DynamicMessage::deserialize(d, &mut de).expect("JSON message");
    let mut out = indexes.to_vec();
    out.extend(m.encode_to_vec());
    out
}

fn find(schema: &ProtoSchema, name: &str) -> MessageDescriptor {
    map_pool(schema).get_message_by_name(name).expect(name)
}

/// The schema's pool with its map entries marked as maps again (the pool the `.proto` text
/// makes; the schema decodes with them cleared, `maps::wire_pool`).
fn map_pool(schema: &ProtoSchema) -> DescriptorPool {
    fn mark(
        m: &mut prost_reflect::prost_types::DescriptorProto,
        scope: &str,
        maps: &maps::MapEntries,
    ) {
        let name = format!("{scope}.{}", m.name())
            .trim_start_matches('.')
            .to_owned();
        if maps.contains(&name) {
            m.options.get_or_insert_with(Default::default).map_entry = Some(true);
        }
        for n in &mut m.nested_type {
            mark(n, &name, maps);
        }
    }
    let mut files: Vec<_> = schema.messages[0]
        .parent_pool()
        .file_descriptor_protos()
        .cloned()
        .collect();
    for f in &mut files {
        let package = f.package().to_owned();
        for m in &mut f.message_type {
            mark(m, &package, &schema.maps);
        }
    }
    DescriptorPool::from_file_descriptor_set(prost_reflect::prost_types::FileDescriptorSet {
        file: files,
    })
    .unwrap()
}

#[test]
fn message_indexes_are_zigzag_varints_and_a_zero_means_the_first_message() {
    let cases: &[(&[u8], &[i64], &[u8])] = &[
        (b"\x00rest", &[0], b"rest"),
        (b"\x02\x02rest", &[1], b"rest"),
        (b"\x04\x00\x02", &[0, 1], b""),
        (b"\x02\xac\x02", &[150], b""),
    ];
    for (body, want, rest) in cases {
        let (got, r) = message_indexes(body).unwrap();
        assert_eq!((&got[..], r), (*want, *rest), "{body:?}");
    }
    for (body, why) in [
        (&b""[..], "cut short"),
        (b"\x04\x00", "cut short"),
        (b"\x01", "count is -1"),
        (b"\xfe\x01", "count is 127"),
    ] {
        let err = message_indexes(body).unwrap_err();
        assert!(err.contains(why), "{body:?}: {err}");
    }
}

#[test]
fn every_type_becomes_the_connectors_json() {
    let schema = ProtoSchema::parse(PROTO).unwrap();
    let json = r#"{"id": "-9007199254740993", "big": "18446744073709551615",
            "ratio": 0.1, "price": 2.5, "paid": true, "note": "ünï \"q\"",
            "blob": "/wAB", "tier": "SILVER", "customer": {"name": "c"},
            "qty": [1, -2], "counts": {"b": "2", "a": "1"}, "delta": -3,
            "lines": [{"sku": "x"}]}"#;
    let got = schema
        .to_json(&body(&schema, b"\x00", "shop.Order", json), ROW)
        .unwrap();
    assert_eq!(
        got,
        r#"{"id":-9007199254740993,"big":18446744073709551615,"ratio":0.1,"price":2.5,"paid":true,"note":"ünï \"q\"","blob":"/wAB","tier":"SILVER","customer":{"name":"c"},"qty":[1,-2],"counts":{"a":1,"b":2},"maybe":null,"delta":-3,"lines":[{"sku":"x"}]}"#
    );
    // Unset fields: proto3 defaults, an absent message and an unset `optional` as null.
    let got = schema
        .to_json(
            &body(&schema, b"\x00", "shop.Order", r#"{"maybe": ""}"#),
            ROW,
        )
        .unwrap();
    assert_eq!(
        got,
        r#"{"id":0,"big":0,"ratio":0.0,"price":0.0,"paid":false,"note":"","blob":"","tier":"GOLD","customer":null,"qty":[],"counts":{},"maybe":"","delta":0,"lines":[]}"#
    );
    // The message indexes pick the message: [1] is Customer, [0, 0] Order.Line.
    let customer = body(&schema, b"\x02\x02", "shop.Customer", r#"{"name": "n"}"#);
    assert_eq!(schema.to_json(&customer, ROW).unwrap(), r#"{"name":"n"}"#);
    let line = body(
        &schema,
        b"\x04\x00\x00",
        "shop.Order.Line",
        r#"{"sku": "s"}"#,
    );
    assert_eq!(schema.to_json(&line, ROW).unwrap(), r#"{"sku":"s"}"#);
}

/// A `Node` nested `levels` deep (each level a length-delimited field 1), after the
/// message indexes `[0]`.
fn nested(levels: usize) -> Vec<u8> {
    let mut lens = vec![0usize];
    for _ in 0..levels {
        let inner = *lens.last().unwrap();
        lens.push(1 + prost::encoding::encoded_len_varint(inner as u64) + inner);
    }
    let mut body = vec![0u8];
    for len in lens[..levels].iter().rev() {
        body.push(0x0a);
        prost::encoding::encode_varint(*len as u64, &mut body);
    }
    body
}

/// Two bytes of payload per empty sub-message, each written with its 30 fields' defaults
/// (~450 bytes): 50,000 of them would be a 22 MB row. It is refused when the row passes
/// the limit, having built no more than the limit and one value.
#[test]
fn empty_sub_messages_that_ask_for_a_huge_row_are_refused_at_the_row_limit() {
    let fields: String = (1..=30)
        .map(|i| format!("int32 field_{i} = {i}; "))
        .collect();
    let schema = ProtoSchema::parse(&format!(
        "syntax = \"proto3\"; message Outer {{ repeated Inner items = 1; }} \
             message Inner {{ {fields} }}"
    ))
    .unwrap();
    let body = |n: usize| {
        let mut body = vec![0u8];
        for _ in 0..n {
            body.extend([0x0a, 0x00]);
        }
        body
    };
    let small = schema.to_json(&body(10), ROW).unwrap();
    assert_eq!(small.matches("\"field_30\":0").count(), 10);
    if let Ok(n) = std::env::var("PROTO_AMPLIFICATION_ITEMS") {
        // Measurement: `PROTO_AMPLIFICATION_ITEMS=500000 cargo test … -- --nocapture`.
        let body = body(n.parse().unwrap());
        for limit in [ROW, usize::MAX] {
            let t = std::time::Instant::now();
            let r = schema.to_json(&body, limit);
            eprintln!(
                "body {} B, limit {limit}: {:?} in {:?}; process {}",
                body.len(),
                r.map(|t| t.len()),
                t.elapsed(),
                peak_rss()
            );
        }
    }
    let err = schema.to_json(&body(50_000), ROW).unwrap_err();
    assert!(err.contains("grows past 1048576 bytes"), "{err}");
}

/// The decoder stops at prost's recursion limit (100 messages), as deep as the writer goes
/// ([`MAX_DEPTH`]): a deeper payload is a dead letter, never a stack overflow, and one at
/// the limit decodes on half of a tokio worker's stack in this (debug) build.
#[test]
fn a_message_nested_past_the_limit_is_a_dead_letter_not_a_stack_overflow() {
    let on_stack = |bytes, levels| {
        std::thread::Builder::new()
            .stack_size(bytes)
            .spawn(move || {
                let schema =
                    ProtoSchema::parse("syntax = \"proto3\"; message Node { Node next = 1; }")
                        .unwrap();
                schema.to_json(&nested(levels), ROW)
            })
            .unwrap()
            .join()
            .unwrap()
    };
    let at_limit = on_stack(1 << 20, 99).unwrap();
    assert_eq!(at_limit.matches("{\"next\":").count(), 100, "{at_limit}");
    for levels in [101, 200_000] {
        let err = on_stack(2 << 20, levels).unwrap_err();
        assert!(err.contains("does not decode as Node"), "{err}");
    }
}

/// Connector v4's shapes (`kafka/docs/connector-compatibility-registry.md` §6): a oneof as
/// `<name>_<index>`, a Timestamp as its ISO text, wrappers and Durations as plain
/// messages, maps with other keys as `[key, value]` pairs, NaN and infinities as strings,
/// an unset proto2 `optional` as null.
#[test]
fn the_connectors_v4_shapes() {
    let schema = ProtoSchema::parse(PROTO).unwrap();
    let json = |name: &str, index: &[u8], value: &str| {
        schema
            .to_json(&body(&schema, index, name, value), ROW)
            .unwrap()
    };
    assert_eq!(
        json("shop.WithOneof", b"\x02\x04", r#"{"id": 1, "b": 7}"#),
        r#"{"pick_0":{"a":null,"b":7},"id":1,"o":null,"other_1":null}"#
    );
    assert_eq!(
        json(
            "shop.WithOneof",
            b"\x02\x04",
            r#"{"a": "x", "o": 2, "c": false}"#
        ),
        r#"{"pick_0":{"a":"x","b":null},"id":0,"o":2,"other_1":{"c":false}}"#
    );
    assert_eq!(
        json(
            "shop.WithTime",
            b"\x02\x06",
            r#"{"at": "2024-01-15T10:00:00.123456Z", "wrapped": 5, "took": "90.000000500s",
                    "by_id": {"2": "two", "-1": "minus one"}}"#
        ),
        concat!(
            r#"{"at":"2024-01-15T10:00:00.123Z","wrapped":{"value":5},"#,
            r#""took":{"seconds":90,"nanos":500},"by_id":[[-1,"minus one"],[2,"two"]],"doc":null}"#
        )
    );
    assert_eq!(
        json(
            "shop.WithTime",
            b"\x02\x06",
            r#"{"at": "1969-12-31T23:59:59.999Z"}"#
        ),
        r#"{"at":"1969-12-31T23:59:59.999Z","wrapped":null,"took":null,"by_id":[],"doc":null}"#
    );
    let nan = json(
        "shop.Order",
        b"\x00",
        r#"{"price": "NaN", "ratio": "-Infinity"}"#,
    );
    assert!(nan.contains(r#""ratio":"-Inf","price":"NaN""#), "{nan}");
    let proto2 = ProtoSchema::parse(
        "syntax = \"proto2\"; message P { optional int32 x = 1; required int32 y = 2; }",
    )
    .unwrap();
    let mut de = serde_json::Deserializer::from_str(r#"{"y": 5}"#);
    let m = DynamicMessage::deserialize(proto2.messages[0].clone(), &mut de).unwrap();
    let mut body = vec![0u8];
    body.extend(m.encode_to_vec());
    assert_eq!(proto2.to_json(&body, ROW).unwrap(), r#"{"x":null,"y":5}"#);
}

#[test]
fn what_cannot_be_read_exactly_is_refused_with_the_reason() {
    let schema = ProtoSchema::parse(PROTO).unwrap();
    let structured = body(
        &schema,
        b"\x02\x06",
        "shop.WithTime",
        r#"{"doc": {"k": 1}}"#,
    );
    let mut enum_9 = b"\x00".to_vec();
    enum_9.extend([8 << 3, 9]);
    let cases: &[(&[u8], &str)] = &[
        (b"\x02\x08", "indexes [4] name no message"),
        (b"\x04\x02\x00", "indexes [1, 0] name no message"),
        (b"\x00\xff\xff", "does not decode as shop.Order"),
        (&structured, "google.protobuf.Struct is not read"),
        (&enum_9, "9 is not a value of enum shop.Tier"),
    ];
    for (body, why) in cases {
        let err = schema.to_json(body, ROW).unwrap_err();
        assert!(err.contains(why), "{body:?}: {err}");
    }
    for (text, why) in [
        ("syntax = \"proto3\"; message {", "does not parse"),
        (
            "syntax = \"proto3\"; import \"other.proto\";",
            "does not compile",
        ),
        ("syntax = \"proto3\";", "defines no message"),
    ] {
        let err = ProtoSchema::parse(text).unwrap_err();
        assert!(err.contains(why), "{text}: {err}");
    }
}

/// `items` sub-messages of one set field each (four bytes apiece), then a packed repeated
/// `int32` of `values` one-byte values, after the message indexes `[0]`.
fn tiny_parts(items: usize, values: usize) -> Vec<u8> {
    let mut body = vec![0u8];
    for _ in 0..items {
        body.extend([0x0a, 0x02, 0x08, 0x01]);
    }
    if values > 0 {
        body.push(0x12);
        prost::encoding::encode_varint(values as u64, &mut body);
        body.extend(std::iter::repeat_n(0x01, values));
    }
    body
}

const TINY: &str = "syntax = \"proto3\"; message Outer { repeated Inner items = 1; \
                    repeated int32 packed = 2; } message Inner { int32 a = 1; }";

/// Before `prost-reflect` builds a thing, the payload's decode is costed from its wire format:
/// a million four-byte sub-messages (a `DynamicMessage` and a field map each) or four million
/// packed one-byte values (a `Value` each) would take hundreds of MB to decode from 4 MB, and
/// are refused naming the limit, even where the row's own limit would allow them; the same
/// shapes at a thousand decode as before.
#[test]
fn a_payload_that_would_take_too_much_to_decode_is_refused_before_decoding() {
    let schema = ProtoSchema::parse(TINY).unwrap();
    for (items, values) in [(1_000_000, 0), (0, 4_000_000)] {
        let body = tiny_parts(items, values);
        let err = schema.to_json(&body, usize::MAX).unwrap_err();
        assert!(
            err.contains("MiB to decode"),
            "{items} items, {values} values: {err}"
        );
    }
    let json = schema.to_json(&tiny_parts(1_000, 1_000), ROW).unwrap();
    assert_eq!(json.matches("{\"a\":1}").count(), 1_000);
    assert_eq!(json.matches(",1").count(), 999);
    if let Ok(n) = std::env::var("PROTO_DECODE_ITEMS") {
        // Measurement of the decoder alone: `PROTO_DECODE_ITEMS=1000000 cargo test … --
        // --nocapture a_payload_that_would`.
        let n: usize = n.parse().unwrap();
        let (items, values) = if std::env::var("PROTO_DECODE_PACKED").is_ok() {
            (0, n)
        } else {
            (n, 0)
        };
        let body = tiny_parts(items, values);
        let descriptor = find(&schema, "Outer");
        let t = std::time::Instant::now();
        let decoded = DynamicMessage::decode(descriptor, &body[1..]).map(|_| ());
        eprintln!(
            "decoder alone, {} B: {decoded:?} in {:?}; process {}",
            body.len(),
            t.elapsed(),
            peak_rss()
        );
    }
}

/// Seeded: orders of random shape (every field kind, lists, maps, nested messages) pass the
/// cost check and decode as before, and random cuts and flips of them never panic the check
/// or the decoder: each is a row or a dead letter with a reason.
#[test]
fn the_cost_check_passes_real_messages_and_survives_garbage() {
    use rand::{Rng, SeedableRng};
    let schema = ProtoSchema::parse(PROTO).unwrap();
    let descriptor = find(&schema, "shop.Order");
    let mut rng = rand::rngs::StdRng::seed_from_u64(56);
    for _ in 0..300 {
        let qty: Vec<i32> = (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect();
        let lines: Vec<serde_json::Value> = (0..rng.gen_range(0..50))
            .map(|i| serde_json::json!({ "sku": format!("s{i}") }))
            .collect();
        let counts: serde_json::Map<String, serde_json::Value> = (0..rng.gen_range(0..20))
            .map(|i| (format!("k{i}"), serde_json::json!(i)))
            .collect();
        let order = serde_json::json!({
            "id": rng.gen::<i32>(),
            "note": "n".repeat(rng.gen_range(0..300)),
            "customer": { "name": "c" },
            "qty": qty,
            "lines": lines,
            "counts": counts,
        });
        let body = body(&schema, &[0], "shop.Order", &order.to_string());
        assert_eq!(scan::check(&descriptor, &body[1..], Walk::new(ROW)), Ok(()));
        let json = schema.to_json(&body, ROW).unwrap();
        assert!(json.contains(&format!("\"id\":{}", order["id"])), "{json}");
        let mut bad = body.clone();
        if rng.gen_bool(0.5) {
            bad.truncate(rng.gen_range(1..=bad.len()));
        } else {
            let at = rng.gen_range(1..bad.len());
            bad[at] ^= 1 << rng.gen_range(0..8);
        }
        let _ = schema.to_json(&bad, ROW);
    }
}

/// Issue 56: `protox` parses a `.proto` recursively, option values too: an option whose value
/// nests messages 120 deep overflowed a 2 MiB stack in a debug build (the process aborts, and
/// a restarted sink fetches the same schema). The text's nesting is counted first (strings
/// and comments aside) and refused past 48 levels, naming it; 40 levels compile on that
/// stack.
#[test]
fn a_schema_nested_past_the_limit_is_refused_before_it_is_parsed() {
    let schema = |depth: usize| {
        let nested = format!("{}b: 1{}", "a { ".repeat(depth), " }".repeat(depth));
        format!(
            "syntax = \"proto2\"; import \"google/protobuf/descriptor.proto\"; \
             message O {{ optional O a = 1; optional int32 b = 2; }} \
             extend google.protobuf.MessageOptions {{ optional O o = 50000; }} \
             message M {{ option (o) = {{ {nested} }}; optional int32 x = 1; }} \
             // a comment with {{{{{{ and a \"string {{{{\" do not count"
        )
    };
    for (depth, refused) in [(40, false), (100_000, true)] {
        let text = schema(depth);
        let parsed = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || ProtoSchema::parse(&text).map(|_| ()))
            .unwrap()
            .join()
            .expect("no stack overflow");
        match parsed {
            Err(e) if refused => assert!(e.contains("nests"), "{}", &e[..e.len().min(300)]),
            Ok(()) if !refused => {}
            other => panic!(
                "depth {depth}: {:?}",
                other.map_err(|e| e.chars().take(300).collect::<String>())
            ),
        }
    }
}

/// The test process's peak resident memory, as `/proc` words it (for the measurements).
pub(super) fn peak_rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("")
        .to_owned()
}

/// Connect maps in the order of the Java `HashMap` `ProtobufData` puts the entries in, wire
/// order first (`kafka/docs/connector-compatibility-registry.md` §6.13, §6.14; each expectation printed
/// by a JDK 17 `HashMap` filled in the same order).
#[test]
fn maps_are_written_in_java_hash_map_order() {
    let schema = ProtoSchema::parse(
        r#"syntax = "proto3";
        message M {
          map<int32, string> ints = 1;
          map<int64, string> longs = 2;
          map<uint64, int32> unsigned = 3;
          map<bool, string> flags = 4;
          map<string, int32> names = 5;
        }"#,
    )
    .unwrap();
    // Entries in a chosen wire order: the schema's own pool decodes maps as entry lists.
    let wire = |json: &str| {
        let d = schema.messages[0].clone();
        let mut de = serde_json::Deserializer::from_str(json);
        let m = DynamicMessage::deserialize(d, &mut de).expect("JSON message");
        let mut out = vec![0u8];
        out.extend(m.encode_to_vec());
        schema.to_json(&out, ROW).unwrap()
    };
    let row = wire(
        r#"{"ints": [{"key": 16, "value": "p"}, {"key": 1, "value": "a"}, {"key": 2, "value": "b"}],
            "longs": [{"key": "4294967296", "value": "hi"}, {"key": "1", "value": "one"}],
            "unsigned": [{"key": "18446744073709551615", "value": 7}, {"key": "3", "value": 8}],
            "flags": [{"key": true, "value": "t"}, {"key": false, "value": "f"}],
            "names": [{"key": "a", "value": 1}, {"key": "zz", "value": 2}]}"#,
    );
    assert_eq!(
        row,
        concat!(
            r#"{"ints":[[16,"p"],[1,"a"],[2,"b"]],"longs":[[4294967296,"hi"],[1,"one"]],"#,
            r#""unsigned":[[18446744073709551615,7],[3,8]],"flags":[[false,"f"],[true,"t"]],"#,
            r#""names":{"zz":2,"a":1}}"#
        )
    );
    // A key given twice keeps its first place and takes its last value; a missing key is 0.
    let row = wire(
        r#"{"ints": [{"key": 17, "value": "x"}, {"key": 1, "value": "a"}, {"key": 17, "value": "y"},
                     {"value": "zero"}]}"#,
    );
    assert!(
        row.starts_with(r#"{"ints":[[0,"zero"],[17,"y"],[1,"a"]],"longs":[]"#),
        "{row}"
    );
    // A repeated field of a message shaped like an entry stays a list.
    let lookalike = ProtoSchema::parse(
        "syntax = \"proto3\"; message L { message PairEntry { int32 key = 1; string value = 2; } \
         repeated PairEntry pair = 1; }",
    )
    .unwrap();
    let body = body(
        &lookalike,
        b"\x00",
        "L",
        r#"{"pair": [{"key": 2, "value": "b"}]}"#,
    );
    assert_eq!(
        lookalike.to_json(&body, ROW).unwrap(),
        r#"{"pair":[{"key":2,"value":"b"}]}"#
    );
}

/// `hostile_registry_schemas` (long mode, class `Count`): a schema of 19,000–30,000 fields
/// took the sink 17–23 s of CPU (debug) to refuse, where compiling it takes about one. Fields
/// numbered 19,000–19,999 (Protobuf's reserved range) are each an error of the descriptor
/// pool, and each error looked up its place in the text: a scan of every source location and
/// of the text up to it, so the refusal cost the errors times the text. Compiled without the
/// source locations (the error names the field number, the text is not quoted), the
/// refusal costs the text. Two texts of about the same size, one with 16 times the errors of
/// the other: their CPU may differ by the text, not by the errors (it was 16 times before).
#[test]
fn a_schema_of_many_invalid_fields_is_refused_in_time_linear_in_its_text() {
    use snowpipe_cli_support::process::{rusage, Who};
    let schema = |fields: usize| {
        let f: String = (1..=fields)
            .map(|i| format!("int32 f{i} = {i}; "))
            .collect();
        format!("syntax = \"proto3\"; message G {{ {f}}}")
    };
    let refuse = |text: &str| {
        let before = rusage(Who::Thread).cpu_s();
        let e = ProtoSchema::parse(text).unwrap_err();
        assert!(e.contains("invalid field number '19000'"), "{e}");
        rusage(Who::Thread).cpu_s() - before
    };
    let (few, many) = (schema(19_050), schema(19_800));
    assert!(many.len() < few.len() * 21 / 20);
    let (cpu_few, cpu_many) = (refuse(&few), refuse(&many));
    eprintln!("50 invalid fields: {cpu_few:.3} s CPU, 800: {cpu_many:.3} s");
    assert!(
        cpu_many < 3.0 * cpu_few + 0.2,
        "800 invalid fields took {cpu_many:.3} s of CPU, 50 took {cpu_few:.3} s: the refusal \
         costs the errors times the text"
    );
}
