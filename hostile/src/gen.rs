//! The classes of hostile input, each a small function that writes bytes. A surface composes
//! them into its own format (an NDJSON line, a CSV record, a Kafka value, a request body).
//!
//! The classes are the ones that kept finding bugs in this project's earlier rounds: sizes
//! past every limit, depth, counts, numbers at the edges, encodings, claims that disagree with
//! the bytes, and duplicates of reserved names.

use crate::rng::Rng;

/// The classes, for surfaces that sweep all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A record, field or name longer than the surface's limit.
    Size,
    /// Nesting deeper than any parser's stack.
    Depth,
    /// Many keys, columns, fields or references in one record.
    Count,
    /// Numbers at the edges: huge exponents, thousands of digits, NaN, infinities.
    Number,
    /// A byte order mark, invalid UTF-8, control characters.
    Encoding,
    /// A length, dictionary or footer that disagrees with the bytes.
    Claim,
    /// A name the surface itself writes (metadata columns), or the same key twice.
    Reserved,
}

impl Class {
    /// Every class, in sweep order.
    pub const ALL: [Class; 7] = [
        Class::Size,
        Class::Depth,
        Class::Count,
        Class::Number,
        Class::Encoding,
        Class::Claim,
        Class::Reserved,
    ];
}

/// Appends `n` bytes of `fill` (a long value without a separator in it).
pub fn long_run(out: &mut Vec<u8>, n: usize, fill: u8) {
    out.resize(out.len() + n, fill);
}

/// Appends a JSON string value of `n` printable ASCII characters (quoted).
pub fn long_json_string(out: &mut Vec<u8>, n: usize, rng: &mut Rng) {
    out.push(b'"');
    let c = b'a' + rng.below(26) as u8;
    long_run(out, n, c);
    out.push(b'"');
}

/// Appends a JSON value nested `depth` deep: arrays, objects (`{"a":…}`) or a mix.
pub fn nested_json(out: &mut Vec<u8>, depth: usize, rng: &mut Rng) {
    let style = rng.below(3);
    let mut closers = Vec::with_capacity(depth);
    for i in 0..depth {
        let object = match style {
            0 => false,
            1 => true,
            _ => i % 2 == 1,
        };
        if object {
            out.extend_from_slice(b"{\"a\":");
            closers.push(b'}');
        } else {
            out.push(b'[');
            closers.push(b']');
        }
    }
    out.extend_from_slice(b"1");
    out.extend(closers.iter().rev());
}

/// Appends a JSON object with `n` distinct keys `k0…` (each with a small number value).
pub fn many_keys_object(out: &mut Vec<u8>, n: usize) {
    out.push(b'{');
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"k{i}\":{i}").as_bytes());
    }
    out.push(b'}');
}

/// Appends a JSON object with the key `name` `n` times (duplicate keys: which one wins?).
pub fn duplicate_keys_object(out: &mut Vec<u8>, name: &str, n: usize) {
    out.push(b'{');
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"{name}\":{i}").as_bytes());
    }
    out.push(b'}');
}

/// Numbers at the edges, as a JSON or CSV producer could write them: exponents past every
/// float and decimal, digits past every precision, the non-JSON spellings of NaN and
/// infinity, negative zero, integers one past 64 bits. A surface that can afford it sends
/// them all (one message each); [`edge_number`] draws one.
pub const EDGE_NUMBERS: [&str; 16] = [
    "1e9223372036854775807",
    "1e-300000000",
    "-1E+999999999",
    "1e400",
    "-1e-400",
    "NaN",
    "Infinity",
    "-Infinity",
    "-0",
    "-0.0e0",
    "18446744073709551616",
    "-9223372036854775809",
    "0.0000000000000000000000000000000000000001",
    "1.",
    "01",
    "1e",
];

/// One number at the edges: one of [`EDGE_NUMBERS`], or thousands of digits (a decimal's
/// precision is 38), or a fraction of thousands of digits.
pub fn edge_number(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => {
            let n = rng.range(39, 5000) as usize;
            let mut s = String::with_capacity(n + 1);
            s.push('9');
            s.extend(std::iter::repeat_n('9', n - 1));
            s
        }
        1 => format!("0.{}1", "0".repeat(rng.range(38, 4000) as usize)),
        _ => EDGE_NUMBERS[rng.below(EDGE_NUMBERS.len() as u64) as usize].to_owned(),
    }
}

/// A UTF-8 byte order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Invalid UTF-8: a lone continuation byte, a truncated sequence, an encoded surrogate, a code
/// point past U+10FFFF, an overlong encoding, bytes that never appear in UTF-8.
pub fn invalid_utf8(rng: &mut Rng) -> &'static [u8] {
    const BAD: [&[u8]; 7] = [
        b"\x80",
        b"\xC3",
        b"\xED\xA0\x80",
        b"\xF4\x90\x80\x80",
        b"\xC0\xAF",
        b"\xFF\xFE",
        b"\xE2\x82",
    ];
    BAD[rng.below(BAD.len() as u64) as usize]
}

/// Control characters that forge or garble log lines and files: NUL, CR, LF, an ANSI escape,
/// DEL, a line separator (U+2028), and a forged log line after a newline.
pub fn control_chars(rng: &mut Rng) -> &'static [u8] {
    const CTL: [&[u8]; 8] = [
        b"\x00",
        b"\r",
        b"\n",
        b"\x1b[31mRED\x1b[0m",
        b"\x7f",
        b"\xE2\x80\xA8",
        b"\n2026-01-01T00:00:00Z ERROR forged log line",
        b"\x08\x08\x08",
    ];
    CTL[rng.below(CTL.len() as u64) as usize]
}

/// A JSON string escape that is not valid Unicode (a lone surrogate), or a NUL escape.
pub fn bad_json_escape(rng: &mut Rng) -> &'static str {
    const ESC: [&str; 4] = ["\\ud800", "\\udfff", "\\u0000", "\\ud800\\u0041"];
    ESC[rng.below(ESC.len() as u64) as usize]
}

/// A big-endian length prefix claiming `claimed` bytes (a claim a decoder might allocate).
pub fn length_claim_be(out: &mut Vec<u8>, claimed: u32) {
    out.extend_from_slice(&claimed.to_be_bytes());
}

/// Avro's zig-zag varint of `v`: the encoding of lengths and counts in Avro binary data.
pub fn avro_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7F) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
}

/// A claimed length for a decoder to believe: huge, negative, or just past the real bytes.
pub fn bad_length(rng: &mut Rng, real: usize) -> i64 {
    match rng.below(4) {
        0 => i64::MAX,
        1 => -1 - rng.below(1000) as i64,
        2 => real as i64 + 1,
        _ => 1 << rng.range(31, 62),
    }
}

/// Flips, truncates or overwrites the tail of `bytes` (where footers and trailers live).
pub fn corrupt_tail(bytes: &mut Vec<u8>, rng: &mut Rng) {
    if bytes.is_empty() {
        return;
    }
    match rng.below(3) {
        0 => {
            let cut = rng.range(1, bytes.len().min(64) as u64) as usize;
            bytes.truncate(bytes.len() - cut);
        }
        1 => {
            let at = bytes.len() - 1 - rng.below(bytes.len().min(16) as u64) as usize;
            bytes[at] ^= 0xFF;
        }
        _ => {
            let n = bytes.len().min(8);
            let start = bytes.len() - n;
            bytes[start..].copy_from_slice(&u64::MAX.to_le_bytes()[..n]);
        }
    }
}

/// A JSON object that repeats `reserved` (a name the surface writes itself) next to `rest`.
pub fn reserved_json_object(reserved: &str, value: &str, rest: &str) -> String {
    format!("{{\"{reserved}\":{value},{rest}}}")
}

/// Spellings of one key that a JSON reader takes as the same text: plain, and escaped.
const SAME_KEY: [[&str; 2]; 4] = [
    ["a", "\\u0061"],
    ["\u{e9}t\u{e9}", "\\u00e9t\\u00E9"],
    ["\u{1F600}", "\\uD83D\\uDE00"],
    ["a\\nb", "a\\u000ab"],
];

/// A JSON object of `rest` (its members, without braces) and one that names a key twice:
/// nested up to 64 deep in objects and arrays, among up to 5,000 keys, or the same text
/// spelled once plainly and once as escapes (`"a"` and `"\u0061"`).
pub fn key_twice_json(rest: &str, rng: &mut Rng) -> String {
    let (first, second) = {
        let same = SAME_KEY[rng.below(SAME_KEY.len() as u64) as usize];
        let flip = rng.one_in(2);
        (same[usize::from(flip)], same[usize::from(!flip)])
    };
    let n = match rng.below(3) {
        0 => 1,
        1 => rng.range(2, 9) as usize,
        _ => rng.range(9, 5_000) as usize,
    };
    let at = rng.below(n as u64 + 1) as usize;
    let mut members: Vec<String> = (0..n).map(|k| format!("\"k{k}\":{k}")).collect();
    members.insert(at, format!("\"{first}\":1"));
    members.push(format!("\"{second}\":2"));
    let mut inner = format!("{{{}}}", members.join(","));
    for d in 0..rng.below(65) {
        inner = if d % 2 == 0 {
            format!("{{\"x\":{d},\"in\":{inner}}}")
        } else {
            format!("[{d},{inner}]")
        };
    }
    format!("{{{rest},\"nested\":{inner}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_twice_is_valid_json_naming_its_key_twice() {
        let mut rng = Rng::new(7);
        for _ in 0..50 {
            let v = key_twice_json("\"id\":1", &mut rng);
            let parsed: serde_json::Value = serde_json::from_str(&v).expect("valid JSON");
            assert_eq!(parsed["id"], 1, "{v}");
            let both = SAME_KEY.iter().any(|[plain, escaped]| {
                v.contains(&format!("\"{plain}\":")) && v.contains(&format!("\"{escaped}\":"))
            });
            assert!(both, "one key, spelled plainly and escaped: {v}");
        }
    }

    #[test]
    fn nesting_closes_what_it_opens() {
        let mut rng = Rng::new(1);
        for _ in 0..10 {
            let mut out = Vec::new();
            nested_json(&mut out, 50, &mut rng);
            let opens = out.iter().filter(|b| matches!(b, b'[' | b'{')).count();
            let closes = out.iter().filter(|b| matches!(b, b']' | b'}')).count();
            assert_eq!((opens, closes), (50, 50));
        }
    }

    #[test]
    fn avro_longs_are_zig_zag_varints() {
        let enc = |v| {
            let mut o = Vec::new();
            avro_long(&mut o, v);
            o
        };
        assert_eq!(enc(0), [0]);
        assert_eq!(enc(-1), [1]);
        assert_eq!(enc(1), [2]);
        assert_eq!(enc(64), [0x80, 1]);
        assert_eq!(enc(i64::MAX).len(), 10);
    }

    #[test]
    fn invalid_utf8_is_invalid_and_edge_numbers_are_numbers_or_spellings_of_them() {
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            assert!(std::str::from_utf8(invalid_utf8(&mut rng)).is_err());
            let n = edge_number(&mut rng);
            assert!(!n.is_empty());
        }
        let mut o = Vec::new();
        many_keys_object(&mut o, 3);
        assert_eq!(o, br#"{"k0":0,"k1":1,"k2":2}"#);
    }
}
