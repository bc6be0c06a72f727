//! Shape speculation against serde_json: rows one byte off a learned shape (every place, every
//! byte), rows whose values change kind, and streams of valid and invalid rows after a shape.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::shape::{Shape, Walk};
use super::tests::{mutate, seed, serde_says, value};

/// Rows a shape is learned from: every kind of value, white space and line breaks, escapes,
/// text beyond ASCII, empty and nested objects and arrays, keys that repeat.
const SHAPES: &[&str] = &[
    r#"{"id":48213,"kind":"add_to_cart","amount":-23.5e2,"ok":true,"no":false,"none":null}"#,
    "{ \"a\" : [1, \"x\\n\\u00e9\", {}, [], {\"b\":{\"c\":\"d\"}}],\r\n \"e\":\"M\u{fc}nchen \u{1f600}\"}\t",
    r#"[0,"",true,null,{"":-0}]"#,
    r#""just a string""#,
    "12.5",
    "null",
    r#"{"session":{"id":"a3f1c2e4b5d6","started":1764277843,"hits":17},"tags":["a","b\n"]}"#,
];

/// The shape learned from `template`, which must be one value.
fn learned(template: &[u8]) -> Shape {
    let mut shape = Shape::default();
    assert!(shape.check(template).is_some(), "{template:?}");
    // The template itself now walks along its own shape.
    assert!(walks(&shape, template));
    shape
}

/// Whether `row` walks along `shape` to its end and is accepted there.
fn walks(shape: &Shape, row: &[u8]) -> bool {
    matches!(shape.walk(row), Walk::Done(Some(_)))
}

/// Whether `row` walks along `shape` part of the way, the one pass going on from there.
fn resumes(shape: &Shape, row: &[u8]) -> bool {
    matches!(shape.walk(row), Walk::Resume { .. })
}

/// `shape` judges `b` as the one pass and serde_json do, line breaks included.
pub(super) fn agree(shape: &mut Shape, b: &[u8]) {
    let breaks = b.iter().any(|&c| c == b'\n' || c == b'\r');
    assert_eq!(
        shape.check(b),
        serde_says(b).then_some(breaks),
        "a shape and serde_json disagree on {:?}",
        String::from_utf8_lossy(b)
    );
}

#[test]
fn a_row_one_byte_off_its_shape_anywhere_gets_serde_jsons_answer() {
    let (mut walked, mut resumed, mut valid) = (0, 0, 0);
    for template in SHAPES.iter().map(|t| t.as_bytes()) {
        for at in 0..=template.len() {
            for byte in 0..=u8::MAX {
                let mut rows = Vec::new();
                if at < template.len() {
                    let mut changed = template.to_vec();
                    changed[at] = byte;
                    rows.push(changed);
                }
                let mut inserted = template.to_vec();
                inserted.insert(at, byte);
                rows.push(inserted);
                for row in rows {
                    let mut shape = learned(template);
                    walked += usize::from(walks(&shape, &row));
                    resumed += usize::from(resumes(&shape, &row));
                    valid += usize::from(serde_says(&row));
                    agree(&mut shape, &row);
                }
            }
            if at < template.len() {
                let mut removed = template.to_vec();
                removed.remove(at);
                agree(&mut learned(template), &removed);
                agree(&mut learned(template), &template[..at]);
            }
        }
    }
    // Every way out of the walk is taken: rows it accepts, rows the one pass takes on from
    // where the walk stopped, and valid rows it leaves to the one pass.
    assert!(
        walked > 1_000 && resumed > 10_000 && valid > walked,
        "{walked} walked, {resumed} resumed, {valid} valid"
    );
}

/// Each value of `SHAPES[0]` replaced by each kind in turn.
#[test]
fn rows_whose_values_change_kind_get_serde_jsons_answer() {
    let values = [
        "\"s\"",
        "\"\"",
        "\"\\u12\"",
        "\"\\\"\"",
        "7",
        "-0",
        "-",
        "01",
        "1.",
        "1e5",
        "true",
        "false",
        "null",
        "nul",
        "truex",
        "{}",
        "[]",
        "[1]",
        "{\"a\":1}",
        " 5",
        "5 ",
        "\"\u{7}\"",
    ];
    let slots = [
        r#"{"id":"#,
        r#","kind":"#,
        r#","amount":"#,
        r#","ok":"#,
        r#","no":"#,
        r#","none":"#,
        "}",
    ];
    let template = SHAPES[0].as_bytes();
    for slot in 0..slots.len() - 1 {
        for v in values {
            let mut row = String::new();
            for (i, key) in slots.iter().enumerate() {
                row.push_str(key);
                if i == slot {
                    row.push_str(v);
                } else if i + 1 < slots.len() {
                    row.push_str(["1", "\"k\"", "2.5", "true", "false", "null"][i]);
                }
            }
            let mut shape = learned(template);
            agree(&mut shape, row.as_bytes());
            // And again after whatever it learned from that row.
            agree(&mut shape, row.as_bytes());
            agree(&mut shape, template);
        }
    }
}

/// Rows made from a shape's own row by mutation, valid and not, one after another on one
/// shape: a refused row leaves the shape as it was, an accepted one replaces it.
#[test]
fn streams_of_rows_after_a_shape_get_serde_jsons_answer() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 0x5_4A9E);
    let (mut valid, mut invalid, mut walked) = (0, 0, 0);
    let mut shape = Shape::default();
    for _ in 0..3_000 {
        let mut template = Vec::new();
        value(&mut rng, 0, &mut template);
        agree(&mut shape, &template);
        for _ in 0..10 {
            let mut row = template.clone();
            mutate(&mut rng, &mut row);
            walked += usize::from(walks(&shape, &row));
            if serde_says(&row) {
                valid += 1;
            } else {
                invalid += 1;
            }
            let before = shape.learned();
            agree(&mut shape, &row);
            if !serde_says(&row) {
                // As it was, or forgotten when a rest ended.
                assert!(
                    shape.learned() == before || shape.is_empty(),
                    "a refused row changed the shape"
                );
            }
        }
    }
    assert!(
        valid > 1_000 && invalid > 10_000 && walked > 100,
        "{valid} valid, {invalid} invalid, {walked} walked"
    );
}

/// Values that change but keep their kind: numbers of each form, strings with escapes,
/// control bytes and every UTF-8 edge, literals swapped.
#[test]
fn rows_of_one_shape_with_new_values_get_serde_jsons_answer() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 0x5A3E);
    let strings: &[&[u8]] = &[
        b"",
        b"x",
        b"\\n",
        b"\\u00e9",
        b"\\uD800",
        b"\\u00G0",
        b"\\x",
        b"\x1f",
        b"\x7f",
        b"\xc3\xa9",
        b"\xc3",
        b"\xed\xa0\x80",
        b"\xf0\x9f\x98\x80",
        b"\xff",
        b"\\",
        b"\\\"",
        b"0123456789abcdef0123",
        b"\"",
        b"\n",
    ];
    let numbers: &[&[u8]] = &[
        b"0",
        b"-0",
        b"12",
        b"-7",
        b"3.25",
        b"1E-3",
        b"-2e+8",
        b"01",
        b"-",
        b"1.",
        b"1e",
        b".5",
        b"1.5.5",
        b"1e+",
        b"--1",
        b"+1",
        b"123456789012345678901234567890",
    ];
    let literals: &[&[u8]] = &[
        b"true", b"false", b"null", b"tru", b"nulll", b"True", b"fals",
    ];
    let mut shape = Shape::default();
    for _ in 0..20_000 {
        let mut row = br#"{"s":""#.to_vec();
        row.extend_from_slice(strings[rng.gen_range(0..strings.len())]);
        row.extend_from_slice(br#"","n":"#);
        row.extend_from_slice(numbers[rng.gen_range(0..numbers.len())]);
        row.extend_from_slice(br#","l":["#);
        row.extend_from_slice(literals[rng.gen_range(0..literals.len())]);
        row.extend_from_slice(b"]}");
        agree(&mut shape, &row);
    }
}

/// A row of the sink bench's shape, learned, walks along its own shape to its end.
#[test]
fn an_event_walks_along_its_own_shape_to_its_end() {
    let event = r#"{"id":48213,"kind":"add_to_cart","ts":"2026-11-27T21:14:03.512Z","session":{"id":"a3f1","hits":17,"referrer":"https://www.example.com/search?q=x"},"user":{"logged_in":true,"segments":[]},"page":{"title":"Trail Runner X2 – Größe 42 · Blau","category":["shoes","running"]},"screen":{"w":1920,"dpr":1.25},"geo":{"city":"München","lat":48.1374,"lon":-11.5755},"flags":{"bot":false,"new_visitor":null},"cart":{"items":[{"sku":"TRX2-BL-42","qty":1,"price":139.95,"name":"Laufsocken \"Pro\" 3er"}]}}"#;
    let shape = learned(event.as_bytes());
    assert_eq!(shape.walk(event.as_bytes()), Walk::Done(Some(false)));
}
