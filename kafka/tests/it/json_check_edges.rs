//! The row check's edges (`snowpipe_kafka::is_one_value`, `kafka/src/formats/json_check/mod.rs`)
//! against what it must agree with, `std::str::from_utf8` then `serde_json` into
//! `IgnoredAny` with no object naming a key twice: every byte that stops its 16-byte scan at every offset of three blocks, UTF-8
//! (valid, invalid, cut short) at every offset, and long strings with a byte flipped; quotes,
//! escapes, backslash runs of 1 to 130, UTF-8, control bytes and numbers at every offset
//! across 64-byte edges; rows of many blocks with a byte flipped. The
//! module's own tests compare generated values, their mutations and random pieces.
//! `JSON_CHECK_SEED=random` (or a number) explores; the seed is fixed otherwise.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::IgnoredAny;
use snowpipe_kafka::{is_one_value, key_named_twice};

/// What the sink checked with before, and what [`is_one_value`] must agree with: serde_json,
/// and no object naming a key twice (serde_json with a set of each object's keys, as the
/// emulator reads a row).
fn serde_says(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok_and(|t| {
        serde_json::from_slice::<IgnoredAny>(t.as_bytes()).is_ok() && key_named_twice(t).is_none()
    })
}

fn agree(b: &[u8]) {
    assert_eq!(
        is_one_value(b),
        serde_says(b),
        "is_one_value and serde_json disagree on {:?}",
        String::from_utf8_lossy(b)
    );
}

fn seed() -> u64 {
    match std::env::var("JSON_CHECK_SEED").ok().as_deref() {
        Some("random") => {
            let s = rand::random();
            eprintln!("JSON_CHECK_SEED={s}");
            s
        }
        Some(s) => s.parse().expect("JSON_CHECK_SEED: a number or `random`"),
        None => 85,
    }
}

/// Bytes that are not UTF-8 on their own, or start sequences.
const RAW: &[u8] = &[
    0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0xA0, 0x9F, 0x8F,
    0x90,
];

/// `serde_json::from_slice::<IgnoredAny>` alone is not the oracle: it skips a string's bytes
/// without checking their UTF-8, where the check (and the text the SDK sends) needs text.
#[test]
fn from_slice_alone_would_pass_what_is_not_text() {
    for b in [&b"\"\xff\""[..], b"\"\xed\xa0\x80\"", b"[\"a\xc3\"]"] {
        assert!(serde_json::from_slice::<IgnoredAny>(b).is_ok());
        assert!(!is_one_value(b), "{b:?}");
        agree(b);
    }
}

/// Sequences that are not UTF-8 (a lone continuation, overlong, a surrogate, past U+10FFFF,
/// cut short, bytes UTF-8 never holds) and ones that are, at every offset of three 16-byte
/// blocks of a string, with plain text or the string's end right after.
#[test]
fn utf8_at_every_offset_of_a_16_byte_block_is_judged_as_std_judges_it() {
    let sequences: &[&[u8]] = &[
        b"\x80",
        b"\xbf\xbf",
        b"\xc0\x80",
        b"\xc1\xbf",
        b"\xe0\x80\x80",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80",
        b"\xff",
        b"\xe2\x82",
        b"\xf0\x9f\x98",
        b"\xc3",
        "é".as_bytes(),
        "€".as_bytes(),
        "😀".as_bytes(),
        "日本".as_bytes(),
    ];
    for prefix in [&b"\""[..], b"{\"k\":\""] {
        for at in 0..48 {
            for seq in sequences {
                for after in [0, 1, 3, 15, 16, 17] {
                    let mut v = prefix.to_vec();
                    v.extend(std::iter::repeat_n(b'a', at));
                    v.extend_from_slice(seq);
                    v.extend(std::iter::repeat_n(b'b', after));
                    v.push(b'"');
                    if prefix.len() > 1 {
                        v.push(b'}');
                    }
                    agree(&v);
                    // Cut short: the row ends inside the string.
                    agree(&v[..prefix.len() + at + seq.len()]);
                }
            }
        }
    }
}

/// Each byte that ends the 16-byte scan (a quote, a backslash and its escape, a control
/// character, the first byte of UTF-8 text) and the bytes either side of the rules (0x1F and
/// 0x20, 0x7F and 0x80), at every offset of three blocks, and the row's end at each offset.
#[test]
fn every_stop_at_every_offset_of_three_blocks_is_decided_as_serde_json_decides_it() {
    let stops: &[&[u8]] = &[
        b"\"", b"\\\"", b"\\\\", b"\\n", b"\\x", b"\\u00e9", b"\\u00g9", b"\\u12", b"\\", b"\x00",
        b"\x1f", b"\x20", b"\x7f", b"\x80", b"\t", b"\n",
    ];
    for at in 0..48 {
        for stop in stops {
            for after in [0, 5, 16] {
                let mut v = b"[\"".to_vec();
                v.extend(std::iter::repeat_n(b'x', at));
                v.extend_from_slice(stop);
                v.extend(std::iter::repeat_n(b'y', after));
                v.extend_from_slice(b"\",1]");
                agree(&v);
                for end in [v.len() - 1, v.len() - 3, 2 + at] {
                    agree(&v[..end]);
                }
            }
        }
    }
}

/// Long random strings of printable ASCII, escapes, UTF-8 and raw bytes, each string then
/// flipped at one random byte: the scan's blocks end everywhere in them.
#[test]
fn long_strings_and_their_flipped_bytes_are_decided_as_serde_json_decides_them() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 0x10B);
    for _ in 0..20_000 {
        let mut v = b"{\"s\":\"".to_vec();
        for _ in 0..rng.gen_range(0..120) {
            match rng.gen_range(0..12) {
                0 => v.extend_from_slice(br#"\""#),
                1 => v.extend_from_slice(format!("\\u{:04X}", rng.gen::<u16>()).as_bytes()),
                2 => {
                    let c: char = rng.gen();
                    let mut buf = [0; 4];
                    v.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                3 => v.push(RAW[rng.gen_range(0..RAW.len())]),
                _ => v.push(rng.gen_range(0x20..0x7F_u8)),
            }
        }
        v.extend_from_slice(b"\"}");
        agree(&v);
        let at = rng.gen_range(0..v.len());
        v[at] = rng.gen();
        agree(&v);
    }
}

/// `piece` at every offset from 0 to 140 (so each of its bytes on each side of the 64-byte
/// edges at 64 and 128 a block-wise check would have, and of the 16-byte scan's), after a
/// string that pads it there and before a long one.
fn at_every_offset(piece: &[u8]) {
    for pad in 0..=140 {
        let mut row = b"[\"".to_vec();
        row.extend(std::iter::repeat_n(b'x', pad));
        row.extend_from_slice(b"\",");
        row.extend_from_slice(piece);
        row.extend_from_slice(b",\"");
        row.extend(std::iter::repeat_n(b'y', 130));
        row.extend_from_slice(b"\"]");
        agree(&row);
    }
}

#[test]
fn quotes_escapes_utf8_control_bytes_and_scalars_across_a_block_edge() {
    let pieces: &[&[u8]] = &[
        b"\"\"",
        b"\"\\\"\"",
        b"\"\\\\\"",
        b"\"a\\nb\\tc\\/d\"",
        b"\"\\u00e9\\uD800\\uffff\"",
        b"\"\\u12G4\"",
        b"\"\\u12\"",
        b"\"\\x\"",
        b"\"\\\x01\"",
        "\"é€😀日本\"".as_bytes(),
        b"\"\xe2\x82\"",
        b"\"\xed\xa0\x80\"",
        b"\"\xf0\x9f\x98\x80\xc3\"",
        b"\"a\x01b\"",
        b"\"\x1f\"",
        b"\"line\nbreak\"",
        b"\"\x7f\"",
        b"\xc3\xa9",
        b"-123.5e-7",
        b"0123",
        b"1.e5",
        b"12345678901234567890",
        b"true",
        b"truex",
        b"nul",
        b"null",
        b"false ",
        b"{\"k\":[1,{}, []],\"l\":null}",
        b"{\"k\" : 1 , }",
        b"{\"k\"1}",
        b"[1\"a\"]",
        b"\t\r\n 1 \n",
        b"\x00",
        b"\\",
        b"\"open",
    ];
    for piece in pieces {
        at_every_offset(piece);
    }
}

#[test]
fn backslash_runs_of_every_length_to_130_across_a_block_edge() {
    for len in 1..=130 {
        for after in [&b"\""[..], b"n", b"u0041", b"x"] {
            for pad in [0, 30, 58, 61, 62, 63, 64, 65, 66, 127, 128] {
                let mut row = b"[\"".to_vec();
                row.extend(std::iter::repeat_n(b'x', pad));
                row.extend(std::iter::repeat_n(b'\\', len));
                row.extend_from_slice(after);
                row.extend_from_slice(b"\",\"");
                row.extend(std::iter::repeat_n(b'y', 130));
                row.extend_from_slice(b"\"]");
                // An even run is whole escapes, so a quote after it closes the string (and
                // the next opens one around `,` that the `y`s then leave open); an odd one
                // escapes what follows: a quote, `n`, `u0041`, but not `x`.
                let odd = len % 2 == 1;
                let valid = match after {
                    b"\"" => odd,
                    b"x" => !odd,
                    _ => true,
                };
                assert_eq!(serde_says(&row), valid, "{len} {after:?}");
                agree(&row);
            }
        }
    }
}

/// Rows of many blocks: generated values of 1–20 KB with a byte flipped, fixed seed.
#[test]
fn long_rows_with_a_byte_flipped_are_decided_as_serde_json_decides_them() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 0xB10C);
    let bytes = [
        b'"', b'\\', b'{', b'}', b',', b':', 0x00, 0x1F, 0x80, 0xC3, b' ', b'\n', b'1',
    ];
    let mut checked = (0, 0);
    for _ in 0..300 {
        let mut row = b"{".to_vec();
        for k in 0..rng.gen_range(20..400) {
            if k > 0 {
                row.push(b',');
            }
            row.extend_from_slice(format!("\"f{k}\":").as_bytes());
            match rng.gen_range(0..4) {
                0 => row.extend_from_slice(format!("{}.{}", rng.gen::<u32>(), k).as_bytes()),
                1 => row.extend_from_slice("\"é\\\"x\\u0041 日本\"".as_bytes()),
                2 => row.extend_from_slice(b"[true,false,null,{}]"),
                _ => row.extend(
                    std::iter::repeat_n(b'z', rng.gen_range(0..70))
                        .chain([b'"'])
                        .rev()
                        .chain([b'"']),
                ),
            }
        }
        row.push(b'}');
        agree(&row);
        let at = rng.gen_range(0..row.len());
        row[at] = bytes[rng.gen_range(0..bytes.len())];
        if serde_says(&row) {
            checked.0 += 1;
        } else {
            checked.1 += 1;
        }
        agree(&row);
    }
    assert!(
        checked.1 > 100,
        "{checked:?}: the flips made too few errors"
    );
}

/// Objects that name a key twice, at any depth and as any escape of one text, among many keys
/// (past the check's linear compare), are refused, and serde_json's reading finds the key;
/// the same objects with the key once pass.
#[test]
fn a_key_twice_anywhere_is_refused() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let spellings = [r#""a""#, r#""\u0061""#];
    for n in [1usize, 3, 8, 9, 40, 500] {
        for depth in [0usize, 1, 5, 60] {
            let keys: Vec<String> = (0..n).map(|k| format!(r#""k{k}":{k}"#)).collect();
            let first = spellings[rng.gen_range(0..spellings.len())];
            let second = spellings[rng.gen_range(0..spellings.len())];
            let at = rng.gen_range(0..=n);
            let mut twice = keys.clone();
            twice.insert(at, format!("{first}:1"));
            twice.push(format!("{second}:2"));
            let mut once = keys.clone();
            once.insert(at, format!("{first}:1"));
            let wrap = |members: &[String]| {
                let mut v = format!("{{{}}}", members.join(","));
                for d in 0..depth {
                    v = if d % 2 == 0 {
                        format!(r#"{{"x":1,"in":{v}}}"#)
                    } else {
                        format!("[0,{v}]")
                    };
                }
                v
            };
            let bad = wrap(&twice);
            assert!(!is_one_value(bad.as_bytes()), "{bad}");
            assert_eq!(key_named_twice(&bad).as_deref(), Some(r#""a""#), "{bad}");
            agree(bad.as_bytes());
            let good = wrap(&once);
            assert!(is_one_value(good.as_bytes()), "{good}");
            agree(good.as_bytes());
        }
    }
}
