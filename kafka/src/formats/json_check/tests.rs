//! The one pass against serde_json: generated, mutated and random input, and the edges.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::IgnoredAny;

use super::runs::{run, run_bytewise, run_in_words};
use super::*;

/// What the sink checked with before, and what [`is_one_value`] must agree with: serde_json,
/// and no object naming a key twice ([`names_a_key_twice`]).
pub(super) fn serde_says(b: &[u8]) -> bool {
    std::str::from_utf8(b)
        .is_ok_and(|t| serde_json::from_str::<IgnoredAny>(t).is_ok() && !names_a_key_twice(t))
}

/// Whether serde_json, reading `t` with a set of each object's keys (as the emulator does),
/// finds a key twice (past serde_json's depth of 128 it cannot tell: `false`).
pub(super) fn names_a_key_twice(t: &str) -> bool {
    super::key_twice::key_named_twice(t).is_some()
}

fn agree(b: &[u8]) {
    assert_eq!(
        is_one_value(b),
        serde_says(b),
        "is_one_value and serde_json disagree on {:?}",
        String::from_utf8_lossy(b)
    );
    assert_eq!(
        one_pass(b),
        serde_says(b).then(|| b.iter().any(|&c| c == b'\n' || c == b'\r')),
        "the one pass alone and serde_json disagree on {:?}",
        String::from_utf8_lossy(b)
    );
    // One value has a line break exactly where its bytes do (raw ones are only white
    // space), so a caller that skips the blanking for `Some(false)` misses none.
    let breaks = b.iter().any(|&c| c == b'\n' || c == b'\r');
    assert_eq!(
        line_breaks_of_one_value(b),
        serde_says(b).then_some(breaks),
        "line breaks misreported in {:?}",
        String::from_utf8_lossy(b)
    );
}

/// Fixed seeds in CI; `JSON_CHECK_SEED=random` (or a number) explores.
pub(super) fn seed() -> u64 {
    match std::env::var("JSON_CHECK_SEED").ok().as_deref() {
        Some("random") => {
            let s = rand::random();
            eprintln!("JSON_CHECK_SEED={s}");
            s
        }
        Some(s) => s.parse().expect("JSON_CHECK_SEED: a number or `random`"),
        None => 11,
    }
}

const PIECES: &[&str] = &[
    "\"", "\\", "{", "}", "[", "]", ",", ":", " ", "\n", "\t", "\r", "0", "1", "-", "+", ".", "e",
    "E", "t", "f", "n", "u", "true", "false", "null", "\\u", "\\uD800", "\\n", "\u{0}", "\u{1f}",
    "\u{7f}", "é", "€", "😀", "x", "00", "0.", ".5", "1e", "1e+", "\"a\":",
];
/// Bytes that are not UTF-8 on their own, or start sequences.
pub(super) const RAW: &[u8] = &[
    0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0xA0, 0x9F, 0x8F,
    0x90,
];

fn string(rng: &mut ChaCha8Rng, out: &mut Vec<u8>) {
    out.push(b'"');
    for _ in 0..rng.gen_range(0..40) {
        match rng.gen_range(0..10) {
            0 => out.extend_from_slice(br#"\""#),
            1 => out.extend_from_slice(format!("\\u{:04x}", rng.gen::<u16>()).as_bytes()),
            2 => out.extend_from_slice(
                [r"\\", r"\/", r"\b", r"\f", r"\n", r"\r", r"\t"][rng.gen_range(0..7)].as_bytes(),
            ),
            3 => {
                let c: char = rng.gen();
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            // Long plain runs, to cross the 16-byte scan's edges.
            4 => out.extend(std::iter::repeat_n(b'x', rng.gen_range(0..40))),
            _ => out.push(rng.gen_range(0x20..0x7F_u8)),
        }
    }
    out.push(b'"');
}

fn number(rng: &mut ChaCha8Rng, out: &mut Vec<u8>) {
    let forms = [
        "0",
        "-0",
        "12",
        "-7",
        "3.25",
        "0.5e10",
        "1E-3",
        "-2e+8",
        "123456789012345678901234567890",
    ];
    out.extend_from_slice(forms[rng.gen_range(0..forms.len())].as_bytes());
}

fn ws(rng: &mut ChaCha8Rng, out: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(0..3) {
        out.push([b' ', b'\n', b'\t', b'\r'][rng.gen_range(0..4)]);
    }
}

pub(super) fn value(rng: &mut ChaCha8Rng, depth: u32, out: &mut Vec<u8>) {
    ws(rng, out);
    let kind = if depth > 6 {
        rng.gen_range(2..6)
    } else {
        rng.gen_range(0..6)
    };
    match kind {
        0 | 1 => {
            let object = kind == 0;
            out.push(if object { b'{' } else { b'[' });
            for k in 0..rng.gen_range(0..5) {
                if k > 0 {
                    out.push(b',');
                }
                if object {
                    ws(rng, out);
                    string(rng, out);
                    ws(rng, out);
                    out.push(b':');
                }
                value(rng, depth + 1, out);
            }
            ws(rng, out);
            out.push(if object { b'}' } else { b']' });
        }
        2 => string(rng, out),
        3 => number(rng, out),
        _ => out.extend_from_slice([&b"true"[..], b"false", b"null"][rng.gen_range(0..3)]),
    }
    ws(rng, out);
}

pub(super) fn mutate(rng: &mut ChaCha8Rng, v: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(1..4) {
        let at = rng.gen_range(0..=v.len());
        match rng.gen_range(0..5) {
            0 if at < v.len() => {
                v.remove(at);
            }
            1 => {
                let p = PIECES[rng.gen_range(0..PIECES.len())].as_bytes();
                v.splice(at..at, p.iter().copied());
            }
            2 => v.insert(at, RAW[rng.gen_range(0..RAW.len())]),
            3 if at < v.len() => v[at] = rng.gen(),
            _ => v.truncate(at),
        }
    }
}

#[test]
fn it_agrees_with_serde_json_on_generated_values_and_their_mutations() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let (mut valid, mut invalid) = (0, 0);
    for _ in 0..60_000 {
        let mut v = Vec::new();
        value(&mut rng, 0, &mut v);
        agree(&v);
        mutate(&mut rng, &mut v);
        if serde_says(&v) {
            valid += 1;
        } else {
            invalid += 1;
        }
        agree(&v);
    }
    // The mutations make both kinds, so both sides of every branch are compared.
    assert!(
        valid > 1_000 && invalid > 10_000,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn it_agrees_with_serde_json_on_random_bytes_from_json_pieces() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 0x5EED);
    for _ in 0..60_000 {
        let mut v = Vec::new();
        for _ in 0..rng.gen_range(0..12) {
            if rng.gen_bool(0.1) {
                v.push(RAW[rng.gen_range(0..RAW.len())]);
            } else {
                v.extend_from_slice(PIECES[rng.gen_range(0..PIECES.len())].as_bytes());
            }
        }
        agree(&v);
    }
}

#[test]
fn every_utf8_sequence_of_up_to_four_bytes_is_judged_as_std_judges_it() {
    // Every first byte 0x80..=0xFF with continuation bytes at the edges of each range,
    // inside a string after a plain run (the scan's edge) and alone.
    let edges = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF];
    for first in 0x80..=0xFF_u8 {
        for &a in &edges {
            for &b in &edges {
                for &c in &edges {
                    for pad in [0, 15] {
                        let mut v = b"\"".to_vec();
                        v.extend(std::iter::repeat_n(b'x', pad));
                        v.extend_from_slice(&[first, a, b, c]);
                        v.push(b'"');
                        agree(&v);
                        agree(&v[..v.len() - 2]);
                    }
                }
            }
        }
    }
}

#[test]
fn the_cases_that_matter_are_decided_as_serde_json_decides_them() {
    for (text, expected) in [
        (&br#"{"a":1}"#[..], true),
        (
            br#" { "a" : [1, 2.5e3, -0, true, false, null, {}] } "#,
            true,
        ),
        (br#"{"a":1,}"#, false),
        (b"[1,]", false),
        (b"01", false),
        (b"1.", false),
        (b"-", false),
        (b"1e", false),
        (br#""\uD800""#, true),
        (br#""\u12G4""#, false),
        (br#""\x""#, false),
        (b"\"\x1f\"", false),
        (b"\"\xed\xa0\x80\"", false),
        (b"\"\xf4\x90\x80\x80\"", false),
        (b"{\"a\":1}\x00", false),
        (b"{} {}", false),
        (b"", false),
        (b" ", false),
        (b"\xef\xbb\xbf{}", false),
    ] {
        assert_eq!(
            is_one_value(text),
            expected,
            "{:?}",
            String::from_utf8_lossy(text)
        );
        agree(text);
    }
}

#[test]
fn the_16_byte_scan_stops_where_the_word_scan_and_the_byte_rules_stop() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 0x16);
    let bytes = [
        b'x', b' ', b'"', b'\\', 0x1F, 0x00, 0x7F, 0x80, 0xC3, 0xFF, 0x20, b'~',
    ];
    for _ in 0..50_000 {
        let len = rng.gen_range(0..48);
        let mut v: Vec<u8> = (0..len).map(|_| b'a').collect();
        for _ in 0..rng.gen_range(0..3) {
            if len > 0 {
                v[rng.gen_range(0..len)] = bytes[rng.gen_range(0..bytes.len())];
            }
        }
        for beyond_ascii in [false, true] {
            let expected = run_bytewise(&v, beyond_ascii);
            assert_eq!(run(&v, beyond_ascii), expected, "{v:?} {beyond_ascii}");
            assert_eq!(
                run_in_words(&v, beyond_ascii),
                expected,
                "{v:?} {beyond_ascii}"
            );
        }
    }
}

#[test]
fn any_depth_is_accepted_as_serde_json_accepts_it() {
    for depth in [1, 63, 64, 65, 127, 128, 129, 200, 5_000, 100_000] {
        let mut v = "[".repeat(depth);
        v.push_str(&"]".repeat(depth));
        agree(v.as_bytes());
        assert!(is_one_value(v.as_bytes()));
        let mut o = r#"{"a":"#.repeat(depth);
        o.push('1');
        o.push_str(&"}".repeat(depth));
        agree(o.as_bytes());
        assert!(is_one_value(o.as_bytes()));
        // One closer short, or one of the wrong kind at depth 65.
        agree(&v.as_bytes()[..v.len() - 1]);
        let mut mixed = v.clone().into_bytes();
        mixed[depth + depth.min(65) - 1] = b'}';
        agree(&mixed);
    }
}

/// The digits' word form against the rule byte by byte: every byte at every place of a run of
/// digits, and random words.
#[test]
fn digits_in_words_stop_where_the_first_non_digit_stands() {
    let bytewise = |b: &[u8]| b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 0xD161);
    let mut rows: Vec<Vec<u8>> = Vec::new();
    for at in 0..20 {
        for byte in 0..=u8::MAX {
            let mut row = b"12345678901234567890".to_vec();
            row[at] = byte;
            rows.push(row);
        }
    }
    for _ in 0..20_000 {
        let len = rng.gen_range(0..24);
        rows.push(
            (0..len)
                .map(|_| {
                    if rng.gen_bool(0.8) {
                        b'0' + rng.gen_range(0..10)
                    } else {
                        rng.gen()
                    }
                })
                .collect(),
        );
    }
    for row in rows {
        let mut scan = Scan::new(&row, ());
        assert_eq!(scan.digits(), bytewise(&row), "{row:?}");
        assert_eq!(scan.i, bytewise(&row));
    }
}

/// Objects that name a key twice, at any depth, also as escapes of one text, are refused;
/// equal values under distinct keys, and one key in distinct objects, pass.
#[test]
fn a_key_twice_is_refused() {
    for b in [
        &br#"{"a":1,"a":2}"#[..],
        br#"{"a":1,"\u0061":2}"#,
        br#"{"x":{"k":[{"a":1,"b":2,"a":3}]}}"#,
        br#"[1,{"z":{},"z":null}]"#,
        r#"{"\uD83D\uDE00":1,"😀":2}"#.as_bytes(),
        br#"{"\n":1,"\u000a":2}"#,
        br#"{"\"":1,"\u0022":2}"#,
    ] {
        assert!(!is_one_value(b), "{}", String::from_utf8_lossy(b));
        assert!(one_pass(b).is_none(), "{}", String::from_utf8_lossy(b));
        agree(b);
    }
    for b in [
        &br#"{"a":1,"b":1}"#[..],
        br#"{"a":{"a":{"a":1}},"b":{"a":2}}"#,
        br#"[{"a":1},{"a":1}]"#,
        br#"{"a":"a","A":"a","a ":1}"#,
    ] {
        assert!(is_one_value(b), "{}", String::from_utf8_lossy(b));
        agree(b);
    }
}

/// Objects of many keys (past the linear compare, into the set): a key twice anywhere among
/// them is refused; all distinct pass; past [`keys::MOST_KEYS`] keys are not tracked.
#[test]
fn a_key_twice_among_many() {
    let linear = keys::LINEAR_KEYS;
    for n in [2, linear - 1, linear, linear + 1, 64, 1_000] {
        let keys: Vec<String> = (0..n).map(|k| format!("\"k{k}\":{k}")).collect();
        let distinct = format!("{{{}}}", keys.join(","));
        assert!(is_one_value(distinct.as_bytes()), "{n}");
        for twice in [0, n / 2, n - 1] {
            let row = format!("{{{},\"k{twice}\":0}}", keys.join(","));
            assert!(!is_one_value(row.as_bytes()), "{n} keys, k{twice} twice");
            agree(row.as_bytes());
        }
    }
    let n = keys::MOST_KEYS;
    let keys: Vec<String> = (0..n).map(|k| format!("\"k{k}\":{k}")).collect();
    let past = format!("{{{},\"x\":1,\"x\":2}}", keys.join(","));
    assert!(
        is_one_value(past.as_bytes()),
        "keys past the cap are not tracked"
    );
    let within = format!("{{{},\"k0\":1}}", keys[..n - 1].join(","));
    assert!(!is_one_value(within.as_bytes()));
    // Keys of one length and the same first and last three bytes (one tag): told apart by
    // their bytes.
    let alike: Vec<String> = (0..10).map(|k| format!("\"abc{k}def\":{k}")).collect();
    let row = format!("{{{}}}", alike.join(","));
    assert!(is_one_value(row.as_bytes()));
    let row = format!("{{{},\"abc7def\":0}}", alike.join(","));
    assert!(!is_one_value(row.as_bytes()));
}

/// A key twice after a shape was learned: where the row leaves the shape part way (another
/// key, a value of another kind, more members), after a handback, and from the start.
#[test]
fn a_key_twice_is_refused_along_a_shape() {
    let learned = br#"{"a":1,"b":{"c":"x","d":[1,2]},"e":true,"f":{"g":1}}"#;
    for row in [
        &br#"{"a":1,"b":{"c":"x","d":[1,2]},"e":true,"a":{"g":1}}"#[..],
        br#"{"a":1,"b":{"c":"x","d":[1,2,3]},"e":true,"f":{"g":1},"a":2}"#,
        br#"{"a":1,"b":{"c":"x","c":[1,2]},"e":true,"f":{"g":1}}"#,
        br#"{"a":"s","b":{"c":"x","d":[1,2]},"e":true,"f":{"g":1},"b":0}"#,
        br#"{"a":1,"b":{"c":"x","d":[1,{"z":1,"z":2}]},"e":true,"f":{"g":1}}"#,
        br#"{"a":1,"b":{"c":1,"d":[1,2]},"e":true,"f":{"g":1,"g":1}}"#,
        br#"{"\u0061":1,"a":{"c":"x","d":[1,2]},"e":true,"f":{"g":1}}"#,
    ] {
        let mut shape = shape::Shape::default();
        assert_eq!(shape.check(learned), Some(false));
        assert_eq!(shape.check(row), None, "{}", String::from_utf8_lossy(row));
        agree(row);
        // The refused row leaves the shape as it was: the learned row still walks.
        assert_eq!(shape.check(learned), Some(false));
    }
}

/// The thread's reused key buffers: wide objects nested in wide objects, a key twice once
/// escaped past the linear keys, and rows checked after a refused one (whose buffers were
/// left mid-object) judged afresh.
#[test]
fn reused_key_buffers_judge_each_row_afresh() {
    let wide = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|k| format!("\"{prefix}{k}\":{k}")).collect()
    };
    let inner = format!("{{{}}}", wide("i", 20).join(","));
    let nested = format!("{{{},\"in\":{inner},\"k3\":0}}", wide("k", 12).join(","));
    let escaped = format!("{{{},\"\\u006b5\":0}}", wide("k", 12).join(","));
    let fine = format!("{{{},\"in\":{inner}}}", wide("k", 12).join(","));
    for _ in 0..3 {
        assert!(
            !is_one_value(nested.as_bytes()),
            "k3 twice around a wide object"
        );
        assert!(!is_one_value(escaped.as_bytes()), "k5 twice, once escaped");
        assert!(is_one_value(fine.as_bytes()), "no key twice");
        assert!(is_one_value(inner.as_bytes()));
        agree(nested.as_bytes());
        agree(escaped.as_bytes());
    }
}

/// A shape whose outermost object has more keys than are compared one by one, so that a
/// row's own outermost keys are looked up among them by hash: a row that leaves the shape at
/// its first value names every other key of it again as its own and passes; naming the first
/// key (walked) or one of its own again is refused.
#[test]
fn outermost_keys_past_the_linear_ones_are_looked_up_by_hash() {
    for n in [keys::LINEAR_KEYS - 1, keys::LINEAR_KEYS + 1, 1_000] {
        let members = |first: &str| {
            let rest = (1..n).map(|k| format!("\"k{k}\":{k}"));
            std::iter::once(format!("\"k0\":{first}"))
                .chain(rest)
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut shape = shape::Shape::default();
        let learned = format!("{{{}}}", members("0"));
        assert_eq!(shape.check(learned.as_bytes()), Some(false), "{n}");
        for (row, once) in [
            (format!("{{{}}}", members("\"s\"")), true),
            (format!("{{{},\"k0\":1}}", members("\"s\"")), false),
            (format!("{{{},\"k{}\":1}}", members("\"s\""), n - 1), false),
            (format!("{{{},\"x\":1}}", members("\"s\"")), true),
        ] {
            assert_eq!(shape.check(row.as_bytes()).is_some(), once, "{n}: {row}");
            assert_eq!(serde_says(row.as_bytes()), once, "{n}: {row}");
            assert!(!shape.is_empty(), "{n}: the shape is kept");
        }
    }
}

/// Keys along a shape against serde_json reading each object's keys into a set: a random
/// object is learned, then rows made from it by a member added just after a `{` or just
/// before a `}` (so the walk takes part of the row, the one pass the rest, and the shape's
/// marks the keys of the parts walked), each with a key of a few spellings of three names,
/// and with the learned row itself and a fresh random object after them.
#[test]
fn keys_along_a_shape_agree_with_a_set_of_each_objects_keys() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 0x4B_E75);
    let (mut refused, mut passed) = (0, 0);
    for _ in 0..3_000 {
        let learned = random_object(&mut rng, 0);
        let mut shape = shape::Shape::default();
        let said = |shape: &mut shape::Shape, t: &str| {
            let answer = shape.check(t.as_bytes()).is_some();
            assert_eq!(answer, serde_says(t.as_bytes()), "{learned} then {t}");
            answer
        };
        if !said(&mut shape, &learned) || shape.is_empty() {
            continue;
        }
        let braces: Vec<usize> = outside_strings(&learned, b"{}");
        for _ in 0..4 {
            let Some(&at) = braces.get(rng.gen_range(0..braces.len().max(1))) else {
                break;
            };
            let member = random_member(&mut rng, 1);
            let row = if learned.as_bytes()[at] == b'{' {
                format!("{}{member},{}", &learned[..=at], &learned[at + 1..])
            } else {
                format!("{},{member}{}", &learned[..at], &learned[at..])
            };
            if said(&mut shape, &row) {
                passed += 1;
            } else {
                refused += 1;
            }
            said(&mut shape, &learned);
        }
        said(&mut shape, &random_object(&mut rng, 0));
    }
    assert!(
        refused > 500 && passed > 500,
        "{refused} refused, {passed} passed"
    );
}

/// Where in `t` (JSON) the bytes `of` stand outside strings.
fn outside_strings(t: &str, of: &[u8]) -> Vec<usize> {
    let (mut in_string, mut escaped) = (false, false);
    let mut at = Vec::new();
    for (i, &c) in t.as_bytes().iter().enumerate() {
        if in_string {
            (in_string, escaped) = (escaped || c != b'"', !escaped && c == b'\\');
        } else if c == b'"' {
            in_string = true;
        } else if of.contains(&c) {
            at.push(i);
        }
    }
    at
}

/// An object of 0–6 members whose keys come from a few spellings of six names, its values
/// strings that look like keys, numbers, arrays and objects, up to depth 3.
fn random_object(rng: &mut ChaCha8Rng, depth: u32) -> String {
    let members: Vec<String> = (0..rng.gen_range(0..7))
        .map(|_| random_member(rng, depth))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// One member of [`random_object`].
fn random_member(rng: &mut ChaCha8Rng, depth: u32) -> String {
    const KEYS: [&str; 9] = ["a", "\\u0061", "b", "\\\"", "\\u0022", "c", "d", "e", "f"];
    let key = KEYS[rng.gen_range(0..KEYS.len())];
    let value = match rng.gen_range(0..5) {
        0 if depth < 3 => random_object(rng, depth + 1),
        1 if depth < 3 => format!("[{},\"a\",\"{{\"]", random_object(rng, depth + 1)),
        2 => format!("\"{}\"", KEYS[rng.gen_range(0..KEYS.len())]),
        3 => "\":\"".replace(':', " : "),
        _ => rng.gen_range(0..100).to_string(),
    };
    let space = if rng.gen_bool(0.3) { " " } else { "" };
    format!("\"{key}\"{space}:{space}{value}")
}
