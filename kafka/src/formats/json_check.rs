//! Whether bytes are one JSON value, in one pass: the check every candidate row gets on its
//! partition's worker before it is appended (`layout::finish`, `record::finish_row`).
//!
//! **What it accepts** is exactly what `std::str::from_utf8` followed by
//! `serde_json::from_str::<serde::de::IgnoredAny>` accepts, which is what the sink checked with
//! before (the property tests below compare the two on generated, mutated and random input):
//!
//! * RFC 8259 JSON, white space being space, tab, line feed and carriage return;
//! * any depth: `IgnoredAny` keeps its own stack and no depth limit;
//! * escapes checked for their form only: `\uD800` alone passes, as in serde_json, which
//!   decides about surrogates only when it builds a string;
//! * UTF-8 checked inside strings only: JSON's structure is ASCII, so a byte of 0x80 or more
//!   anywhere else is an error either way.
//!
//! **Why not serde_json.** The check was a tenth of the sink's CPU at 1 KB rows: a UTF-8 pass
//! over every row, then serde_json's pass, whose strings are scanned 8 bytes at a time. Here the
//! bytes of strings, most of a row, are scanned once, 16 at a time (SSE2, which every x86_64
//! has; 8 at a time in a machine word elsewhere), for the bytes that end the fast path: `"`,
//! `\`, a control character, or a byte of 0x80 or more. From such a byte to the string's next
//! quote, backslash or control character (all ASCII, so never inside a UTF-8 sequence) the text
//! goes to the standard library's UTF-8 check, which takes text beyond ASCII faster than a
//! sequence at a time.
//!
//! **Why not two stages** (`simdjson`'s design as a validator only: the row sorted 64 bytes at
//! a time into bitmaps and token positions, then the grammar walked over the positions): built
//! and tested against this check's tests, it lost to this one pass in the same bench run on
//! every row of the sink's shape (1.2–4× its time): sorting costs about 0.8 cycles a byte before
//! any grammar, and the grammar still branches on each token. `docs/PERFORMANCE.md` ("A SIMD
//! validator for the JSON check?") has the numbers.

/// Whether `bytes` hold exactly one JSON value, surrounded by nothing but white space (see the
/// module docs for what counts).
pub fn is_one_value(bytes: &[u8]) -> bool {
    line_breaks_of_one_value(bytes).is_some()
}

/// [`is_one_value`], and for one value whether it holds a line feed or a carriage return (JSON
/// allows them only as white space between tokens, never raw inside a string): `None` when it
/// is not one value, `Some(false)` when it is one line already, so the caller that makes rows
/// one NDJSON line each need not look again.
pub(crate) fn line_breaks_of_one_value(bytes: &[u8]) -> Option<bool> {
    let mut scan = Scan {
        b: bytes,
        i: 0,
        breaks: false,
    };
    scan.document().then_some(scan.breaks)
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    /// White space so far held a line feed or a carriage return.
    breaks: bool,
}

/// The open objects (`true`) and arrays (`false`) around the scan, innermost last: 64 levels in
/// a word, deeper ones spilled (allocating only for values nested more than 64 deep).
#[derive(Default)]
struct Stack {
    top: u64,
    depth: usize,
    spilled: Vec<u64>,
}

impl Stack {
    fn push(&mut self, object: bool) {
        if self.depth > 0 && self.depth % 64 == 0 {
            self.spilled.push(self.top);
            self.top = 0;
        }
        self.top |= u64::from(object) << (self.depth % 64);
        self.depth += 1;
    }

    fn pop(&mut self) {
        self.depth -= 1;
        self.top &= !(1 << (self.depth % 64));
        if self.depth > 0 && self.depth % 64 == 0 {
            self.top = self.spilled.pop().unwrap_or(0);
        }
    }

    /// Whether the innermost open value is an object; `None` at the top level.
    fn innermost(&self) -> Option<bool> {
        (self.depth > 0).then(|| self.top >> ((self.depth - 1) % 64) & 1 == 1)
    }
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn white_space(&mut self) {
        while let Some(c @ (b' ' | b'\n' | b'\t' | b'\r')) = self.peek() {
            self.breaks |= c == b'\n' || c == b'\r';
            self.i += 1;
        }
    }

    fn document(&mut self) -> bool {
        let mut stack = Stack::default();
        loop {
            // A value, or the opening of one.
            self.white_space();
            let scalar = match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    let object = open == b'{';
                    self.i += 1;
                    self.white_space();
                    if self.peek() == Some(if object { b'}' } else { b']' }) {
                        // Empty: a whole value.
                        self.i += 1;
                        true
                    } else {
                        stack.push(object);
                        if object && !self.key() {
                            return false;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.i += 1;
                    self.string()
                }
                Some(b'-') => {
                    self.i += 1;
                    self.number()
                }
                Some(b'0'..=b'9') => self.number(),
                Some(b't') => self.literal(b"true"),
                Some(b'f') => self.literal(b"false"),
                Some(b'n') => self.literal(b"null"),
                _ => false,
            };
            if !scalar {
                return false;
            }
            // After a value: close what ends here, up to the next comma.
            loop {
                self.white_space();
                let Some(object) = stack.innermost() else {
                    return self.i == self.b.len();
                };
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if object {
                            self.white_space();
                            if !self.key() {
                                return false;
                            }
                        }
                        break;
                    }
                    Some(b'}') if object => stack.pop(),
                    Some(b']') if !object => stack.pop(),
                    _ => return false,
                }
                self.i += 1;
            }
        }
    }

    /// A member's name and its colon (white space before the name already skipped).
    #[inline(always)]
    fn key(&mut self) -> bool {
        if self.peek() != Some(b'"') {
            return false;
        }
        self.i += 1;
        if !self.string() {
            return false;
        }
        self.white_space();
        if self.peek() != Some(b':') {
            return false;
        }
        self.i += 1;
        true
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn digits(&mut self) -> usize {
        let n = self.b[self.i..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        self.i += n;
        n
    }

    /// A number, after its minus sign if any.
    fn number(&mut self) -> bool {
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return false;
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return false,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return false;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }

    /// A string, after its opening quote, through its closing one. Inlined (as [`key`](Self::key)):
    /// a realistic row is mostly short strings, and the call's own cost was about a tenth of
    /// the check's (the sink bench's events: 0.97 → 0.84 s per GB, best of five).
    #[inline(always)]
    fn string(&mut self) -> bool {
        loop {
            self.i += plain_run(&self.b[self.i..]);
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return true;
                }
                Some(b'\\') => {
                    self.i += 1;
                    if !self.escape() {
                        return false;
                    }
                }
                // Text beyond ASCII: up to the next quote, backslash or control character
                // (all ASCII, so never inside a UTF-8 sequence), checked by the standard
                // library's UTF-8 check, which takes such text faster than byte by byte.
                Some(0x80..=0xFF) => {
                    let end = self.i + text_run(&self.b[self.i..]);
                    if std::str::from_utf8(&self.b[self.i..end]).is_err() {
                        return false;
                    }
                    self.i = end;
                }
                // A control character, or the end.
                _ => return false,
            }
        }
    }

    /// An escape, after its backslash.
    fn escape(&mut self) -> bool {
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 1;
                true
            }
            Some(b'u') => {
                let hex = self.b.get(self.i + 1..self.i + 5);
                if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    self.i += 5;
                    true
                } else {
                    false
                }
            }
            _ => false,
        }
    }
}

/// Whether `c` may stand in a string as it is and is ASCII.
fn plain(c: u8) -> bool {
    (0x20..0x80).contains(&c) && c != b'"' && c != b'\\'
}

/// Whether `c` may stand in a string as it is, as part of UTF-8 text.
fn text(c: u8) -> bool {
    c >= 0x20 && c != b'"' && c != b'\\'
}

/// How many bytes at the start of `s` are [`plain`].
fn plain_run(s: &[u8]) -> usize {
    run(s, false)
}

/// How many bytes at the start of `s` are [`text`].
fn text_run(s: &[u8]) -> usize {
    run(s, true)
}

/// [`run`] a byte at a time: the rules themselves, and the last few bytes of the faster forms.
fn run_bytewise(s: &[u8], beyond_ascii: bool) -> usize {
    let ok = if beyond_ascii { text } else { plain };
    s.iter().take_while(|&&c| ok(c)).count()
}

/// How many bytes at the start of `s` are [`text`] (with `beyond_ascii`) or [`plain`].
#[cfg(target_arch = "x86_64")]
fn run(s: &[u8], beyond_ascii: bool) -> usize {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8,
    };
    let mut i = 0;
    while i + 16 <= s.len() {
        // SAFETY: the 16 bytes read, `s[i..i + 16]`, are in `s` (`i + 16 <= s.len()`), and
        // `_mm_loadu_si128` needs no alignment. SSE2, the other intrinsics' only need, is part
        // of every x86_64 target.
        #[allow(unsafe_code, reason = "SSE2 scans 16 bytes at a time")]
        let stop = unsafe {
            let v = _mm_loadu_si128(s.as_ptr().add(i).cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            let below = if beyond_ascii {
                // Unsigned: min(v, 0x1F) == v where v <= 0x1F.
                _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v)
            } else {
                // Signed: a byte of 0x80 or more is negative, so below 0x20 too.
                _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))
            };
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), below))
        };
        if stop != 0 {
            return i + stop.trailing_zeros() as usize;
        }
        i += 16;
    }
    i + run_bytewise(&s[i..], beyond_ascii)
}

/// How many bytes at the start of `s` are [`text`] (with `beyond_ascii`) or [`plain`].
#[cfg(not(target_arch = "x86_64"))]
fn run(s: &[u8], beyond_ascii: bool) -> usize {
    run_in_words(s, beyond_ascii)
}

/// [`run`] 8 bytes at a time in a machine word, where there is no SSE2.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn run_in_words(s: &[u8], beyond_ascii: bool) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let has = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    for chunk in s.chunks_exact(8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // Each term flags a byte exactly where the first such byte is (borrows only reach
        // bytes after it): below 0x20, a quote, a backslash, and unless `beyond_ascii` 0x80
        // or more.
        let mut stop = (x.wrapping_sub(ONES * 0x20) & !x)
            | has(x ^ (ONES * u64::from(b'"')))
            | has(x ^ (ONES * u64::from(b'\\')));
        if !beyond_ascii {
            stop |= x;
        }
        let stop = stop & HIGH;
        if stop != 0 {
            return i + stop.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    i + run_bytewise(&s[i..], beyond_ascii)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde::de::IgnoredAny;

    use super::*;

    /// What the sink checked with before, and what [`is_one_value`] must agree with.
    fn serde_says(b: &[u8]) -> bool {
        std::str::from_utf8(b).is_ok_and(|t| serde_json::from_str::<IgnoredAny>(t).is_ok())
    }

    fn agree(b: &[u8]) {
        assert_eq!(
            is_one_value(b),
            serde_says(b),
            "is_one_value and serde_json disagree on {:?}",
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
    fn seed() -> u64 {
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
        "\"", "\\", "{", "}", "[", "]", ",", ":", " ", "\n", "\t", "\r", "0", "1", "-", "+", ".",
        "e", "E", "t", "f", "n", "u", "true", "false", "null", "\\u", "\\uD800", "\\n", "\u{0}",
        "\u{1f}", "\u{7f}", "é", "€", "😀", "x", "00", "0.", ".5", "1e", "1e+", "\"a\":",
    ];
    /// Bytes that are not UTF-8 on their own, or start sequences.
    const RAW: &[u8] = &[
        0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0xA0, 0x9F,
        0x8F, 0x90,
    ];

    fn string(rng: &mut ChaCha8Rng, out: &mut Vec<u8>) {
        out.push(b'"');
        for _ in 0..rng.gen_range(0..40) {
            match rng.gen_range(0..10) {
                0 => out.extend_from_slice(br#"\""#),
                1 => out.extend_from_slice(format!("\\u{:04x}", rng.gen::<u16>()).as_bytes()),
                2 => out.extend_from_slice(
                    [r"\\", r"\/", r"\b", r"\f", r"\n", r"\r", r"\t"][rng.gen_range(0..7)]
                        .as_bytes(),
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

    fn value(rng: &mut ChaCha8Rng, depth: u32, out: &mut Vec<u8>) {
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

    fn mutate(rng: &mut ChaCha8Rng, v: &mut Vec<u8>) {
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
}
