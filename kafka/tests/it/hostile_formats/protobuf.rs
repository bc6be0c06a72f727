//! `hostile_protobuf_values`: Protobuf bodies in the Confluent wire format (message indexes as
//! zigzag varints, then the message), written tag by tag ([`super::wire`]) against the
//! `.proto` below: a message of scalars, a repeated field, a map, and itself nested for depth.

use std::collections::HashMap;

use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::Rng;

use super::wire::{
    letters, pb_bytes, pb_double, pb_varint, tag, varint, varint_11, varint_len, varint_overflow,
    zigzag,
};
use super::{framing_faults, run_registry_format, Msg, Surface, MAX_MESSAGE};
use crate::common::registry::wire;

const PROTO: &str = r#"syntax = "proto3";
package hostile;
message H {
  int64 ID = 1; string A = 2; bytes B = 3; repeated int64 C = 4;
  map<string, string> D = 5; string E = 6; double F = 7; H N = 8;
}
message M { int64 ID = 1; Meta RECORD_METADATA = 2; }
message Meta { string topic = 1; int32 partition = 2; int64 offset = 3; }
"#;

/// The good fields of one `H`, with `a` as `A`.
fn fields(out: &mut Vec<u8>, id: i64, a: &[u8]) {
    pb_varint(out, 1, id as u64);
    pb_bytes(out, 2, a);
    pb_bytes(out, 3, b"\x00\xff");
    let mut c = Vec::new();
    varint(&mut c, id as u64);
    pb_bytes(out, 4, &c);
    let mut entry = Vec::new();
    pb_bytes(&mut entry, 1, b"k");
    pb_bytes(&mut entry, 2, b"v");
    pb_bytes(out, 5, &entry);
    pb_bytes(out, 6, b"123.45");
    pb_double(out, 7, 1.5);
}

/// `H` under schema 1: the message indexes `[0]` (one byte 0), then `body`.
fn h(body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = vec![0];
    body(&mut b);
    wire(1, &b)
}

fn good(id: i64) -> Vec<u8> {
    h(|b| fields(b, id, b"good"))
}

/// `H` nested `depth` levels through `N`, each level `ID` = 1; written outside in, each
/// length computed beforehand (no copying per level).
fn nested(depth: usize) -> Vec<u8> {
    let mut sizes = vec![2u64];
    for k in 1..=depth {
        let inner = sizes[k - 1];
        sizes.push(2 + 1 + varint_len(inner) + inner);
    }
    h(|b| {
        for k in (0..=depth).rev() {
            b.extend_from_slice(&[0x08, 0x01]);
            if k > 0 {
                tag(b, 8, 2);
                varint(b, sizes[k - 1]);
            }
        }
    })
}

/// `H` whose map `D` has `n` entries.
fn many_entries(n: usize) -> Vec<u8> {
    h(|b| {
        pb_varint(b, 1, 1);
        for i in 0..n {
            let mut entry = Vec::new();
            pb_bytes(&mut entry, 1, format!("k{i}").as_bytes());
            pb_bytes(&mut entry, 2, b"v");
            pb_bytes(b, 5, &entry);
        }
    })
}

/// Every hostile value of `class`, sizes and lengths from `rng`.
fn values(class: Class, rng: &mut Rng, id: i64) -> Vec<Msg> {
    let bad = Msg::bad;
    match class {
        Class::Size => {
            let a = letters(rng.range(100_000, MAX_MESSAGE as u64) as usize, rng);
            let blob = letters(rng.range(1_000, 800_000) as usize, rng);
            vec![
                bad(h(|b| fields(b, id, &a))),
                bad(h(|b| pb_bytes(b, 3, &blob))),
            ]
        }
        Class::Depth => vec![
            bad(nested(101)),
            bad(nested(rng.range(102, 30_000) as usize)),
        ],
        Class::Count => {
            let (unpacked, packed) = (rng.range(10_000, 300_000), rng.range(10_000, 600_000));
            let unknown = rng.range(10_000, 100_000);
            vec![
                bad(h(|b| {
                    for _ in 0..unpacked {
                        b.extend_from_slice(&[0x20, 0x00]);
                    }
                })),
                bad(h(|b| pb_bytes(b, 4, &vec![0; packed as usize]))),
                bad(h(|b| {
                    for f in 100..100 + unknown {
                        pb_varint(b, f, 0);
                    }
                })),
                bad(many_entries(rng.range(5_000, 40_000) as usize)),
            ]
        }
        Class::Claim => claims(rng, id),
        Class::Number => numbers(id),
        Class::Encoding => {
            let invalid = [b"x".as_slice(), gen::invalid_utf8(rng), b"y"].concat();
            let ctl = [gen::BOM, gen::control_chars(rng), b"\"\\"].concat();
            vec![
                bad(h(|b| fields(b, id, &invalid))),
                bad(h(|b| fields(b, id, &ctl))),
            ]
        }
        Class::Reserved => reserved(id),
    }
}

/// Lengths that disagree with the bytes, message indexes past the descriptor, tags no message
/// has, truncated bodies, trailing garbage.
fn claims(rng: &mut Rng, id: i64) -> Vec<Msg> {
    let len_claim = |n: u64| {
        h(|b| {
            pb_varint(b, 1, id as u64);
            tag(b, 2, 2);
            varint(b, n);
            b.extend_from_slice(b"abc");
        })
    };
    let indexes = |ix: &[i64]| {
        let mut b = Vec::new();
        for i in ix {
            zigzag(&mut b, *i);
        }
        fields(&mut b, id, b"x");
        wire(1, &b)
    };
    let raw = |bytes: &[u8]| {
        h(|b| {
            pb_varint(b, 1, id as u64);
            b.extend_from_slice(bytes);
        })
    };
    let mut truncated = good(id);
    // Inside the last field (`F`, a tag and 8 bytes): a cut between fields is a shorter
    // message, valid Protobuf.
    let cut = rng.range(1, 8) as usize;
    truncated.truncate(truncated.len() - cut);
    let mut trailing = good(id);
    trailing.extend_from_slice(&letters(rng.range(1, 64) as usize, rng));
    let mut past = Vec::new();
    tag(&mut past, 4, 2);
    varint(&mut past, 3);
    past.extend_from_slice(&[1, 2]);
    let mut nested_past = Vec::new();
    tag(&mut nested_past, 8, 2);
    varint(&mut nested_past, 1 << 40);
    pb_varint(&mut nested_past, 1, 1);
    vec![
        Msg::dead(len_claim(1 << 62)),
        Msg::dead(len_claim(u64::MAX)),
        Msg::dead(len_claim(gen::bad_length(rng, 3) as u64)),
        Msg::dead(raw(&past)),
        Msg::dead(raw(&nested_past)),
        Msg::dead(indexes(&[1 << 62])),
        Msg::dead(indexes(&[-5])),
        Msg::dead(indexes(&[1, 5])),
        Msg::dead(indexes(&[2, 0, 3])),
        Msg::dead(indexes(&[1, -1])),
        Msg::dead(raw(&[0x00, 0x01])),
        Msg::dead(raw(&[0x0F, 0x01])),
        Msg::dead(raw(&[0x4B, 0x08, 0x01])),
        Msg::dead(truncated),
        // Letters after a message may read as more fields.
        Msg::bad(trailing),
    ]
}

/// Numbers at the edges: varints of 11 bytes and past 64 bits, `i64::MIN`, NaN and the
/// infinities, a double on a varint's wire type, a decimal text of 100 digits.
fn numbers(id: i64) -> Vec<Msg> {
    let raw_id = |write: fn(&mut Vec<u8>)| {
        h(|b| {
            tag(b, 1, 0);
            write(b);
            pb_bytes(b, 2, b"n");
        })
    };
    let double = |f: f64| {
        h(|b| {
            pb_varint(b, 1, id as u64);
            pb_double(b, 7, f);
        })
    };
    vec![
        Msg::dead(raw_id(varint_11)),
        Msg::bad(raw_id(varint_overflow)),
        Msg::bad(raw_id(|b| varint(b, i64::MIN as u64))),
        Msg::bad(raw_id(|b| varint(b, i64::MAX as u64))),
        Msg::bad(double(f64::NAN)),
        Msg::bad(double(f64::INFINITY)),
        Msg::bad(double(f64::NEG_INFINITY)),
        Msg::bad(double(f64::MIN_POSITIVE / 2.0)),
        Msg::bad(h(|b| pb_varint(b, 7, 1))),
        Msg::bad(h(|b| {
            tag(b, 1, 1);
            b.extend_from_slice(&i64::MIN.to_le_bytes());
        })),
        Msg::bad(h(|b| {
            pb_varint(b, 1, id as u64);
            pb_bytes(b, 6, &[b'9'; 100]);
        })),
    ]
}

/// The sink's own column in a message, unknown ids, no body, no value.
fn reserved(id: i64) -> Vec<Msg> {
    let mut meta = Vec::new();
    pb_bytes(&mut meta, 1, b"forged");
    pb_varint(&mut meta, 2, 7);
    pb_varint(&mut meta, 3, 0);
    let mut forged = vec![0x02, 0x02];
    pb_varint(&mut forged, 1, id as u64);
    pb_bytes(&mut forged, 2, &meta);
    let mut msgs = vec![Msg::bad(wire(1, &forged))];
    msgs.extend(framing_faults(good(id)));
    msgs
}

/// Protobuf values of every class between good ones; the linear check on a map of many
/// entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_protobuf_values() {
    let surface = Surface {
        name: "protobuf_values",
        topic: "hostile.protobuf",
        table: "HOSTILE_F",
        schemas: HashMap::from([(1, ("PROTOBUF", PROTO.to_owned()))]),
        args: &["--value-format", "protobuf"],
    };
    run_registry_format(surface, good, values, many_entries).await;
}
