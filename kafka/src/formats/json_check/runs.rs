//! The scans of a string's bytes: how many at the start may stand as they are, 16 at a time
//! (SSE2, which every x86_64 has), 8 at a time in a machine word elsewhere.

/// Whether `c` may stand in a string as it is and is ASCII.
fn plain(c: u8) -> bool {
    (0x20..0x80).contains(&c) && c != b'"' && c != b'\\'
}

/// Whether `c` may stand in a string as it is, as part of UTF-8 text.
fn text(c: u8) -> bool {
    c >= 0x20 && c != b'"' && c != b'\\'
}

/// How many bytes at the start of `s` are [`plain`].
pub(super) fn plain_run(s: &[u8]) -> usize {
    run(s, false)
}

/// How many bytes at the start of `s` are [`text`].
pub(super) fn text_run(s: &[u8]) -> usize {
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
