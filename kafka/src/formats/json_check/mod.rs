//! Whether bytes are one JSON value, in one pass: the check every candidate row gets on its
//! partition's worker before it is appended (`layout::finish`, `record::finish_row`).
//!
//! **What it accepts** is exactly what `std::str::from_utf8` followed by
//! `serde_json::from_str::<serde::de::IgnoredAny>` accepts, which is what the sink checked with
//! before (the property tests below compare the two on generated, mutated and random input),
//! except an object that names a key twice, at any depth, which the server refuses as a row
//! error and this check therefore refuses too ([`keys`]; a row that walks the whole shape has
//! the shape's row's keys, checked when it was learned; a row the walk took part of has the
//! shape's keys of the parts it walked, taken from the shape, and its own elsewhere):
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
//! sequence at a time. A number's digits are read 8 at a time in a machine word.
//!
//! **The previous row's shape first** ([`shape`]): rows of one topic share their keys and
//! layout, so each thread keeps the last row it learned cut at its scalar values, and the next
//! row is walked along it, the bytes between values compared 16 at a time and only the values
//! scanned; where the row leaves the shape, the one pass goes on from there in the state the
//! shape's row had (its open objects and arrays), so a row that shares only its start with the
//! last one still saves that start; and the one pass hands the row back to the walk where an
//! object or array closes in the same state as at a place of the shape further on, so a row
//! that differs in the middle (a user id of another kind, an array of other length) is walked
//! again after that part. The shape module argues why the walk accepts only what the one pass
//! accepts. [`is_one_value_by_one_pass`] is the one pass alone.
//!
//! **Why not two stages** (`simdjson`'s design as a validator only: the row sorted 64 bytes at
//! a time into bitmaps and token positions, then the grammar walked over the positions): built
//! and tested against this check's tests, it lost to this one pass in the same bench run on
//! every row of the sink's shape (1.2–4× its time): sorting costs about 0.8 cycles a byte before
//! any grammar, and the grammar still branches on each token. The numbers: the performance
//! log, `docs/log/performance/2026-11-28-kafka-json-check.md`.

mod key_twice;
mod keys;
#[cfg(test)]
mod layout_tests;
mod runs;
mod shape;
#[cfg(test)]
mod shape_tests;
#[cfg(test)]
mod tests;

pub use key_twice::key_named_twice;
use keys::Keys;
use runs::{plain_run, text_run};
use shape::Kind;

/// Whether `bytes` hold exactly one JSON value, surrounded by nothing but white space (see the
/// module docs for what counts).
pub fn is_one_value(bytes: &[u8]) -> bool {
    line_breaks_of_one_value(bytes).is_some()
}

/// [`is_one_value`], and for one value whether it holds a line feed or a carriage return (JSON
/// allows them only as white space between tokens, never raw inside a string): `None` when it
/// is not one value, `Some(false)` when it is one line already, so the caller that makes rows
/// one NDJSON line each need not look again. The previous row's shape on this thread is tried
/// first ([`shape`]), then the one pass.
pub(crate) fn line_breaks_of_one_value(bytes: &[u8]) -> Option<bool> {
    shape::check_on_this_thread(bytes)
}

/// [`is_one_value`] by the one pass alone, without this thread's previous shape: for rows that
/// share no shape, and for the bench that compares the two.
pub fn is_one_value_by_one_pass(bytes: &[u8]) -> bool {
    one_pass(bytes).is_some()
}

/// [`is_one_value`] without its keys checked: whether `bytes` would be one value if no object
/// named a key twice (for a row whose repeated key the caller blanks, `own_columns`).
pub(crate) fn is_one_value_with_any_keys(bytes: &[u8]) -> bool {
    Scan::new(bytes, ()).document()
}

/// [`line_breaks_of_one_value`] by the one pass alone, with no shape.
fn one_pass(bytes: &[u8]) -> Option<bool> {
    let mut scan = Scan::new(bytes, ());
    scan.keys = Some(Keys::new(bytes, &[]));
    scan.document().then_some(scan.breaks)
}

/// Where the one pass tells each value it read other than an object or an array: its kind and
/// where it starts and ends (a string after its opening quote, through its closing one). `()`
/// forgets them, at no cost.
/// With each: the objects and arrays open around it, and whether white space before it held
/// a line break.
trait Values {
    fn value(&mut self, kind: Kind, start: usize, end: usize, stack: &Stack, breaks: bool);
}

impl Values for () {
    #[inline(always)]
    fn value(&mut self, _: Kind, _: usize, _: usize, _: &Stack, _: bool) {}
}

struct Scan<'a, V> {
    b: &'a [u8],
    i: usize,
    /// White space so far held a line feed or a carriage return.
    breaks: bool,
    /// Told each scalar value read.
    values: V,
    /// Stop [`resume`](Self::resume) right after an object or array closes to fewer open than
    /// this (0: never), for the shape to take the row on from there ([`shape`]).
    stop_below: usize,
    /// Where the scan stopped for `stop_below`: the objects and arrays still open.
    stopped: Option<(u64, u32)>,
    /// The keys of the open objects, to refuse a key given twice ([`keys`]); `None` for a
    /// scan that need not check them.
    keys: Option<Keys<'a>>,
    /// A string read so far held an escape (reset before a key, for [`Keys::is_new`]).
    escapes: bool,
}

/// The open objects (`true`) and arrays (`false`) around the scan, innermost last: 64 levels in
/// a word, deeper ones spilled (allocating only for values nested more than 64 deep).
#[derive(Default)]
pub(super) struct Stack {
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

    /// The stack as one word and its depth, when it is at most 64 deep.
    fn as_word(&self) -> Option<(u64, u32)> {
        (self.depth <= 64).then_some((self.top, self.depth as u32))
    }

    /// The stack [`as_word`](Self::as_word) gave.
    fn from_word(top: u64, depth: u32) -> Self {
        Stack {
            top,
            depth: depth as usize,
            spilled: Vec::new(),
        }
    }

    /// Whether the innermost open value is an object; `None` at the top level.
    fn innermost(&self) -> Option<bool> {
        (self.depth > 0).then(|| self.top >> ((self.depth - 1) % 64) & 1 == 1)
    }
}

impl<'a, V: Values> Scan<'a, V> {
    fn new(b: &'a [u8], values: V) -> Self {
        Scan {
            b,
            i: 0,
            breaks: false,
            values,
            stop_below: 0,
            stopped: None,
            keys: None,
            escapes: false,
        }
    }

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
        self.resume::<false>(Stack::default(), false)
    }

    /// The rest of the document from `self.i`, with `stack` open around it: from a value or
    /// the opening of one, or (`after_value`) from just after a value. With `STOP` (a
    /// separate copy, so that the one pass alone pays nothing for it), `false` also when it
    /// stopped for [`stop_below`](Self::stop_below) (then [`stopped`](Self::stopped) is set).
    fn resume<const STOP: bool>(&mut self, mut stack: Stack, mut after_value: bool) -> bool {
        loop {
            if !after_value && !self.value(&mut stack) {
                return false;
            }
            after_value = false;
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
                    Some(b'}') if object => {
                        stack.pop();
                        if let Some(keys) = &mut self.keys {
                            keys.close();
                        }
                    }
                    Some(b']') if !object => stack.pop(),
                    _ => return false,
                }
                self.i += 1;
                if STOP && stack.depth < self.stop_below {
                    // Just after a value, as at any closing: the state is the stack alone.
                    self.stopped = stack.as_word();
                    return false;
                }
            }
        }
    }

    /// A value, or the opening of one: whether it was read, a scalar or an empty object or
    /// array whole, or one that opens (pushed on `stack`) and, for an object, its first key.
    #[inline(always)]
    fn value(&mut self, stack: &mut Stack) -> bool {
        loop {
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
                        if object {
                            if let Some(keys) = &mut self.keys {
                                keys.open();
                            }
                            if !self.key() {
                                return false;
                            }
                        }
                        // Its first member's value, or its first element.
                        continue;
                    }
                }
                Some(b'"') => {
                    self.i += 1;
                    let start = self.i;
                    let ok = self.string();
                    self.values
                        .value(Kind::String, start, self.i, stack, self.breaks);
                    ok
                }
                Some(c @ (b'-' | b'0'..=b'9')) => {
                    let start = self.i;
                    self.i += usize::from(c == b'-');
                    let ok = self.number();
                    self.values
                        .value(Kind::Number, start, self.i, stack, self.breaks);
                    ok
                }
                Some(c @ (b't' | b'f' | b'n')) => {
                    let start = self.i;
                    let ok = self.literal_at(c);
                    self.values
                        .value(Kind::Literal, start, self.i, stack, self.breaks);
                    ok
                }
                _ => false,
            };
            return scalar;
        }
    }

    /// A member's name and its colon (white space before the name already skipped).
    #[inline(always)]
    fn key(&mut self) -> bool {
        if self.peek() != Some(b'"') {
            return false;
        }
        self.i += 1;
        let start = self.i;
        self.escapes = false;
        if !self.string() {
            return false;
        }
        if let Some(keys) = &mut self.keys {
            if !keys.is_new(start, self.i - 1, self.escapes) {
                return false;
            }
        }
        self.white_space();
        if self.peek() != Some(b':') {
            return false;
        }
        self.i += 1;
        true
    }

    /// `true`, `false` or `null`, whichever starts with `first`.
    fn literal_at(&mut self, first: u8) -> bool {
        match first {
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => false,
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    /// The digits from `self.i`, 8 at a time in a machine word, the last few a byte at a time:
    /// how many.
    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let stop = non_digits(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
            if stop != 0 {
                self.i += stop.trailing_zeros() as usize / 8;
                return self.i - start;
            }
            self.i += 8;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
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
                    self.escapes = true;
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

/// The bytes of `x` (8, the first in its lowest byte) that are not ASCII digits: a bit set in
/// each such byte, exact from the lowest byte up to the first such byte (a carry reaches only
/// bytes after a byte already flagged).
fn non_digits(x: u64) -> u64 {
    const ONES: u64 = u64::MAX / 255;
    // A digit becomes 0..=9 (its high half 0); 0x0A..=0x0F overflow into the high half by 6.
    let a = x ^ (ONES * 0x30);
    (a | a.wrapping_add(ONES * 0x06)) & (ONES * 0xF0)
}
