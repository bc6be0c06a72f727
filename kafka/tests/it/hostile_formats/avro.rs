//! `hostile_avro_values`: Avro bodies in the Confluent wire format, written byte by byte
//! ([`super::wire`]) against the record `H` below (a string, bytes, an array, a map, a decimal,
//! a double, and itself nested in a union for depth).

use std::collections::HashMap;

use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::Rng;

use super::wire::{avro_bytes, letters, varint_11, varint_overflow, zigzag};
use super::{framing_faults, run_registry_format, Msg, Surface, MAX_MESSAGE};
use crate::common::registry::wire;

const H: &str = r#"{"type": "record", "name": "H", "fields": [
  {"name": "ID", "type": "long"},
  {"name": "A", "type": "string"},
  {"name": "B", "type": "bytes"},
  {"name": "C", "type": {"type": "array", "items": "long"}},
  {"name": "D", "type": {"type": "map", "values": "string"}},
  {"name": "E", "type": {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 2}},
  {"name": "F", "type": "double"},
  {"name": "N", "type": ["null", "H"]}
]}"#;

/// A record whose field is the sink's own column's name.
const FORGED: &str = r#"{"type": "record", "name": "M", "fields": [
  {"name": "ID", "type": "long"},
  {"name": "RECORD_METADATA", "type": {"type": "record", "name": "Meta", "fields": [
    {"name": "topic", "type": "string"}, {"name": "partition", "type": "int"},
    {"name": "offset", "type": "long"}]}}
]}"#;

/// The fields of one `H` before `N`, with `a` as `A` and `c` as `C`'s one block.
fn fields(out: &mut Vec<u8>, id: i64, a: &[u8], c: &[i64]) {
    zigzag(out, id);
    avro_bytes(out, a);
    avro_bytes(out, b"\x00\xff");
    if !c.is_empty() {
        zigzag(out, c.len() as i64);
        for v in c {
            zigzag(out, *v);
        }
    }
    zigzag(out, 0);
    zigzag(out, 1);
    avro_bytes(out, b"k");
    avro_bytes(out, b"v");
    zigzag(out, 0);
    avro_bytes(out, &[0x30, 0x39]); // 123.45
    out.extend_from_slice(&1.5f64.to_le_bytes());
}

/// A good `H` (no `N`) under schema 1.
fn good(id: i64) -> Vec<u8> {
    let mut b = Vec::new();
    fields(&mut b, id, b"good", &[id]);
    zigzag(&mut b, 0);
    wire(1, &b)
}

/// `H` with `a` as `A`, its other fields good.
fn with_a(id: i64, a: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    fields(&mut b, id, a, &[]);
    zigzag(&mut b, 0);
    wire(1, &b)
}

/// `H` whose fields from `C` on are `tail` (written by the caller).
fn up_to_c(id: i64, tail: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = Vec::new();
    zigzag(&mut b, id);
    avro_bytes(&mut b, b"x");
    avro_bytes(&mut b, b"");
    tail(&mut b);
    wire(1, &b)
}

/// The fields of `H` after `C`: an empty map, a decimal, a double, no `N`.
fn after_c(b: &mut Vec<u8>) {
    zigzag(b, 0);
    avro_bytes(b, &[1]);
    b.extend_from_slice(&0f64.to_le_bytes());
    zigzag(b, 0);
}

/// `H` nested `depth` levels through `N`.
fn nested(id: i64, depth: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for _ in 0..depth {
        fields(&mut b, id, b"", &[]);
        zigzag(&mut b, 1);
    }
    fields(&mut b, id, b"", &[]);
    zigzag(&mut b, 0);
    wire(1, &b)
}

/// `H` whose map `D` has `n` entries in one block.
fn many_entries(n: usize) -> Vec<u8> {
    up_to_c(1, |b| {
        zigzag(b, 0);
        zigzag(b, n as i64);
        for i in 0..n {
            avro_bytes(b, format!("k{i}").as_bytes());
            avro_bytes(b, b"v");
        }
        zigzag(b, 0);
        avro_bytes(b, &[1]);
        b.extend_from_slice(&0f64.to_le_bytes());
        zigzag(b, 0);
    })
}

/// `H` whose `E` (decimal) and `F` (double) are `e` and `f`, or whose `ID` is `id` written raw.
fn numbers(id: &[u8], e: &[u8], f: f64) -> Vec<u8> {
    let mut b = id.to_vec();
    avro_bytes(&mut b, b"n");
    avro_bytes(&mut b, b"");
    zigzag(&mut b, 0);
    zigzag(&mut b, 0);
    avro_bytes(&mut b, e);
    b.extend_from_slice(&f.to_le_bytes());
    zigzag(&mut b, 0);
    wire(1, &b)
}

/// Every hostile value of `class`, sizes and lengths from `rng`.
fn values(class: Class, rng: &mut Rng, id: i64) -> Vec<Msg> {
    let bad = Msg::bad;
    match class {
        Class::Size => vec![
            bad(with_a(
                id,
                &letters(rng.range(100_000, MAX_MESSAGE as u64) as usize, rng),
            )),
            bad(up_to_c(id, |b| {
                b.truncate(b.len() - 1);
                avro_bytes(b, &letters(rng.range(1_000, 800_000) as usize, rng));
                zigzag(b, 0);
                after_c(b);
            })),
        ],
        Class::Depth => vec![
            bad(nested(id, 65)),
            bad(nested(id, rng.range(66, 40_000) as usize)),
        ],
        Class::Count => {
            let items = rng.range(10_000, 300_000) as usize;
            let blocks = rng.range(10_000, 200_000) as usize;
            vec![
                bad(up_to_c(id, |b| {
                    zigzag(b, items as i64);
                    b.resize(b.len() + items, 0);
                    zigzag(b, 0);
                    after_c(b);
                })),
                bad(up_to_c(id, |b| {
                    for _ in 0..blocks {
                        b.extend_from_slice(&[2, 0]);
                    }
                    zigzag(b, 0);
                    after_c(b);
                })),
                bad(many_entries(rng.range(5_000, 40_000) as usize)),
            ]
        }
        Class::Claim => claims(rng, id),
        Class::Number => {
            let mut min = Vec::new();
            zigzag(&mut min, i64::MIN);
            let mut max = Vec::new();
            zigzag(&mut max, i64::MAX);
            let (mut eleven, mut over) = (Vec::new(), Vec::new());
            varint_11(&mut eleven);
            varint_overflow(&mut over);
            // 0x7F then 41 bytes of 0xFF: 2^335 - 1, a decimal of 101 digits.
            let mut hundred_digits = vec![0xFF; 42];
            hundred_digits[0] = 0x7F;
            let mut own = Vec::new();
            zigzag(&mut own, id);
            vec![
                bad(numbers(&own, &hundred_digits, 0.0)),
                bad(numbers(&own, &[0x80; 17], 0.0)),
                bad(numbers(&own, &[1], f64::NAN)),
                bad(numbers(&own, &[1], f64::INFINITY)),
                bad(numbers(&own, &[1], f64::NEG_INFINITY)),
                bad(numbers(&min, &[1], f64::MIN_POSITIVE / 2.0)),
                bad(numbers(&max, &[1], f64::MAX)),
                Msg::dead(numbers(&eleven, &[1], 0.0)),
                bad(numbers(&over, &[1], 0.0)),
            ]
        }
        Class::Encoding => {
            let invalid = [b"x".as_slice(), gen::invalid_utf8(rng), b"y"].concat();
            let ctl = [gen::BOM, gen::control_chars(rng), b"\"\\"].concat();
            vec![bad(with_a(id, &invalid)), bad(with_a(id, &ctl))]
        }
        Class::Reserved => reserved(id),
    }
}

/// Lengths and counts that disagree with the bytes, truncated bodies, trailing garbage.
fn claims(rng: &mut Rng, id: i64) -> Vec<Msg> {
    let claim = |n: i64| {
        let mut b = Vec::new();
        zigzag(&mut b, id);
        zigzag(&mut b, n);
        b.extend_from_slice(b"abc");
        wire(1, &b)
    };
    let block = |count: i64, size: Option<i64>| {
        up_to_c(id, |b| {
            zigzag(b, count);
            if let Some(s) = size {
                zigzag(b, s);
            }
            b.extend_from_slice(&[2, 4]);
        })
    };
    let map = up_to_c(id, |b| {
        zigzag(b, 0);
        zigzag(b, 1 << 50);
        avro_bytes(b, b"k");
    });
    let mut truncated = good(id);
    let cut = rng.range(1, truncated.len() as u64 - 6) as usize;
    truncated.truncate(truncated.len() - cut);
    let mut trailing = good(id);
    trailing.extend_from_slice(&letters(rng.range(1, 64) as usize, rng));
    vec![
        Msg::dead(claim(1 << 62)),
        Msg::dead(claim(i64::MAX)),
        Msg::dead(claim(-1 - rng.below(1_000) as i64)),
        Msg::dead(claim(gen::bad_length(rng, 3))),
        Msg::dead(block(1 << 40, None)),
        Msg::dead(block(-(1 << 40), Some(1 << 50))),
        Msg::dead(block(i64::MIN, Some(-1))),
        Msg::dead(map),
        Msg::dead(truncated),
        // Confluent's deserializer reads the datum and ignores what follows it.
        Msg::bad(trailing),
    ]
}

/// The sink's own column in a value, unknown ids, no body, no value.
fn reserved(id: i64) -> Vec<Msg> {
    let mut forged = Vec::new();
    zigzag(&mut forged, id);
    avro_bytes(&mut forged, b"forged");
    zigzag(&mut forged, 7);
    zigzag(&mut forged, 0);
    let mut msgs = vec![Msg::bad(wire(2, &forged))];
    msgs.extend(framing_faults(good(id)));
    msgs
}

/// Avro values of every class between good ones; the linear check on a map of many entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_avro_values() {
    let surface = Surface {
        name: "avro_values",
        topic: "hostile.avro",
        table: "HOSTILE_F",
        schemas: HashMap::from([
            (1, ("AVRO", H.to_owned())),
            (2, ("AVRO", FORGED.to_owned())),
        ]),
        args: &["--value-format", "avro"],
    };
    run_registry_format(surface, good, values, many_entries).await;
}
