//! `hostile_json_schema_values`: JSON text in the Confluent wire format, under the JSON Schema
//! below (an integer, a string, an array, a `connect.type` map, numbers).

use std::collections::HashMap;

use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::Rng;

use super::wire::letters;
use super::{run_registry_format, Msg, Surface, MAX_MESSAGE};
use crate::common::registry::wire;

const SCHEMA: &str = r#"{"type": "object", "properties": {
  "ID": {"type": "integer"}, "A": {"type": "string"},
  "C": {"type": "array", "items": {"type": "integer"}},
  "D": {"type": "object", "connect.type": "map", "additionalProperties": {"type": "string"}},
  "E": {"type": "number"}, "F": {"type": "number"}
}}"#;

/// An object whose property is the sink's own column's name.
const FORGED: &str = r#"{"type": "object", "properties": {
  "ID": {"type": "integer"},
  "RECORD_METADATA": {"type": "object", "properties": {"topic": {"type": "string"},
    "partition": {"type": "integer"}, "offset": {"type": "integer"}}}
}}"#;

/// The members of a good value after `ID`: each field of [`SCHEMA`] is required (none admits
/// null, as Connect reads it), so a hostile value keeps them and replaces one.
const MEMBERS: [(&str, &str); 5] = [
    ("A", r#""good""#),
    ("C", "[1,2]"),
    ("D", r#"{"k":"v"}"#),
    ("E", "123.45"),
    ("F", "1.5"),
];

/// A value under schema 1 with `ID` `id`, the good members, `name` (a field or not) written
/// as `raw`.
fn with(id: i64, name: &str, raw: &[u8]) -> Vec<u8> {
    let mut b = format!(r#"{{"ID":{id}"#).into_bytes();
    for (k, v) in MEMBERS.iter().filter(|(k, _)| *k != name) {
        b.extend_from_slice(format!(r#","{k}":{v}"#).as_bytes());
    }
    b.extend_from_slice(format!(r#","{name}":"#).as_bytes());
    b.extend_from_slice(raw);
    b.push(b'}');
    wire(1, &b)
}

fn good(id: i64) -> Vec<u8> {
    with(id, "A", br#""good""#)
}

/// A value whose map `D` has `n` entries.
fn many_entries(n: usize) -> Vec<u8> {
    let mut d = b"{".to_vec();
    for i in 0..n {
        if i > 0 {
            d.push(b',');
        }
        d.extend_from_slice(format!(r#""k{i}":"v""#).as_bytes());
    }
    d.push(b'}');
    with(1, "D", &d)
}

/// `A` written as `raw`.
fn with_a(id: i64, raw: &[u8]) -> Vec<u8> {
    with(id, "A", raw)
}

/// Every hostile value of `class`, sizes and lengths from `rng`.
fn values(class: Class, rng: &mut Rng, id: i64) -> Vec<Msg> {
    let bad = Msg::bad;
    match class {
        Class::Size => {
            let mut s = Vec::new();
            gen::long_json_string(&mut s, rng.range(100_000, MAX_MESSAGE as u64) as usize, rng);
            vec![bad(with_a(id, &s))]
        }
        Class::Depth => {
            let (mut at_cap, mut deep) = (Vec::new(), Vec::new());
            gen::nested_json(&mut at_cap, 257, rng);
            gen::nested_json(&mut deep, rng.range(258, 100_000) as usize, rng);
            vec![bad(with_a(id, &at_cap)), bad(with(id, "Z", &deep))]
        }
        Class::Count => {
            let (mut keys, mut items) = (Vec::new(), b"[".to_vec());
            gen::many_keys_object(&mut keys, rng.range(5_000, 50_000) as usize);
            for i in 0..rng.range(10_000, 100_000) {
                items.extend_from_slice(format!("{i},").as_bytes());
            }
            items.extend_from_slice(b"0]");
            vec![
                bad(with(id, "Z", &keys)),
                bad(wire(1, &keys)),
                bad(with(id, "C", &items)),
                bad(many_entries(rng.range(5_000, 40_000) as usize)),
            ]
        }
        Class::Claim => {
            let mut truncated = good(id);
            let cut = rng.range(1, truncated.len() as u64 - 6) as usize;
            truncated.truncate(truncated.len() - cut);
            let mut trailing = good(id);
            trailing.extend_from_slice(&letters(rng.range(1, 64) as usize, rng));
            vec![
                Msg::dead(truncated),
                // Jackson reads the first value and leaves what follows it.
                bad(trailing),
                Msg::dead(with_a(id, br#""never closed"#)),
                Msg::dead(wire(99, &good(id)[5..])),
                Msg::dead(wire(3, &good(id)[5..])),
                Msg::dead(wire(1, b"")),
                bad(with_a(id, br#""x"} {"ID":2"#)),
            ]
        }
        Class::Number => numbers(id),
        Class::Encoding => {
            let invalid = [b"\"x".as_slice(), gen::invalid_utf8(rng), b"\""].concat();
            let mut bom = gen::BOM.to_vec();
            bom.extend_from_slice(&good(id)[5..]);
            let escape = format!(r#""x{}""#, gen::bad_json_escape(rng));
            vec![
                bad(with_a(id, &invalid)),
                bad(wire(1, &bom)),
                bad(with_a(id, escape.as_bytes())),
                bad(with_a(
                    id,
                    &[b"\"".as_slice(), gen::control_chars(rng), b"\""].concat(),
                )),
            ]
        }
        Class::Reserved => {
            let forged = r#"{"topic":"forged","partition":7,"offset":0}"#;
            vec![
                bad(wire(
                    2,
                    format!(r#"{{"ID":{id},"RECORD_METADATA":{forged}}}"#).as_bytes(),
                )),
                bad(with(id, "RECORD_METADATA", forged.as_bytes())),
                bad(with(id, "A", br#""one","A":"two","ID":3"#)),
                Msg::dead(Vec::new()),
                Msg::dead(vec![0, 0, 0]),
                bad(wire(1, b"null")),
                Msg::dead(wire(1, b"[]")),
                Msg::tombstone(),
            ]
        }
    }
}

/// Every edge number into the integer and the number properties, and NaN, the infinities,
/// `i64::MIN` and one past it, 100 digits.
fn numbers(id: i64) -> Vec<Msg> {
    let edges = gen::EDGE_NUMBERS
        .iter()
        .copied()
        .chain(["-9223372036854775808", "-9223372036854775809"])
        .chain(["18446744073709551616"]);
    let hundred = "9".repeat(100);
    let mut msgs = Vec::new();
    for n in edges.chain([hundred.as_str()]) {
        let as_id = format!(r#"{{"ID":{n},"A":"n","C":[],"D":{{}},"E":1,"F":1}}"#);
        msgs.push(Msg::bad(wire(1, as_id.as_bytes())));
        msgs.push(Msg::bad(with(id, "E", n.as_bytes())));
        msgs.push(Msg::bad(with(id, "C", format!("[{n}]").as_bytes())));
    }
    // Not JSON, but numbers to Confluent's mapper (`ALLOW_NON_NUMERIC_NUMBERS`, `json_tree.rs`).
    for n in ["NaN", "Infinity", "-Infinity"] {
        msgs.push(Msg::bad(with(id, "E", n.as_bytes())));
    }
    msgs
}

/// JSON Schema values of every class between good ones; the linear check on a map of many
/// entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_json_schema_values() {
    let surface = Surface {
        name: "json_schema_values",
        topic: "hostile.jsonschema",
        table: "HOSTILE_F",
        schemas: HashMap::from([
            (1, ("JSON", SCHEMA.to_owned())),
            (2, ("JSON", FORGED.to_owned())),
            (3, ("AVRO", r#""long""#.to_owned())),
        ]),
        args: &["--value-format", "json-schema"],
    };
    run_registry_format(surface, good, values, many_entries).await;
}
