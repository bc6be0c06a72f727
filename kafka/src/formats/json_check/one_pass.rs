//! The one-pass check: a scan that reads each token where the previous one ended, strings
//! 16 bytes at a time (SSE2, which every x86_64 has; 8 at a time in a machine word elsewhere)
//! up to the bytes that end the fast path: `"`, `\`, a control character, or a byte of 0x80
//! or more. From such a byte to the string's next quote, backslash or control character (all
//! ASCII, so never inside a UTF-8 sequence) the text goes to the standard library's UTF-8
//! check, which takes text beyond ASCII faster than a sequence at a time.
//!
//! It takes the rows the two stages do not (`super`'s docs say which): its cost is a chain of
//! dependent loads, each token's end being where the next token is read, which at short rows
//! is cheaper than the two stages' set-up.

use super::stack::Stack;

/// Whether `bytes` are one JSON value (`None` if not) and whether it holds a line feed or a
/// carriage return: `super::line_breaks_of_one_value`, in one pass.
pub(super) fn line_breaks_of_one_value(bytes: &[u8]) -> Option<bool> {
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
pub(super) fn run_bytewise(s: &[u8], beyond_ascii: bool) -> usize {
    let ok = if beyond_ascii { text } else { plain };
    s.iter().take_while(|&&c| ok(c)).count()
}

/// How many bytes at the start of `s` are [`text`] (with `beyond_ascii`) or [`plain`].
#[cfg(target_arch = "x86_64")]
pub(super) fn run(s: &[u8], beyond_ascii: bool) -> usize {
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
pub(super) fn run(s: &[u8], beyond_ascii: bool) -> usize {
    run_in_words(s, beyond_ascii)
}

/// [`run`] 8 bytes at a time in a machine word, where there is no SSE2.
#[cfg(any(test, not(target_arch = "x86_64")))]
pub(super) fn run_in_words(s: &[u8], beyond_ascii: bool) -> usize {
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
