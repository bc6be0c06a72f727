//! Stage 1 of the two-stage check: the whole row, 64 bytes at a time, to the positions of its
//! tokens. Each block is sorted ([`classify`](super::classify)); from the backslashes the
//! escaped bytes (a run of backslashes of odd length escapes the byte after it, carried from
//! block to block), from the quotes not escaped which bytes are inside a string (the XOR of
//! all quotes before each byte, carried too). Then, for the whole row, without following its
//! grammar:
//!
//! * a control byte inside a string is an error;
//! * each escaped byte must be one of `"\/bfnrtu`, a `u` followed by four hex digits;
//! * the UTF-8 of the blocks from the first that holds a byte of 0x80 or more to the last is
//!   the standard library's to check (outside strings such a byte is an error anyway, as a
//!   token that is no value: stage 2 rejects it);
//! * a string still open at the end is an error.
//!
//! The tokens: each `,:[]{}` outside strings, each string's opening quote, and the first byte
//! of each run outside strings that is neither white space nor structure nor a string (a
//! number or literal, or bytes that are no value), for stage 2 to walk.

use super::classify::Classify;

/// What stage 1 found in a row that it did not reject.
pub(super) struct Found {
    /// How many token positions it wrote.
    pub(super) tokens: usize,
    /// Whether the row holds a tab, line feed or carriage return outside strings (inside
    /// one they are errors): only then can it have a line break.
    pub(super) maybe_breaks: bool,
}

/// The longest row stage 1 takes: its positions are `u32`, and each block may write 64 past
/// the last.
pub(super) const MAX_LEN: usize = u32::MAX as usize - 128;

/// The row's token positions into `out` (grown to `row.len() + 64` if shorter, never shrunk),
/// or `None` where the row is not JSON for a reason listed in the module docs.
pub(super) fn tokens(row: &[u8], out: &mut Vec<u32>) -> Option<Found> {
    debug_assert!(row.len() <= MAX_LEN);
    if out.len() < row.len() + 64 {
        out.resize(row.len() + 64, 0);
    }
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            // SAFETY: the processor has the features, just checked.
            #[allow(unsafe_code, reason = "the AVX2 form, chosen at run time")]
            return unsafe { tokens_avx2(row, out) };
        }
        // SAFETY: SSE2 is part of every x86_64.
        #[allow(unsafe_code, reason = "the SSE2 form")]
        unsafe {
            tokens_with::<super::classify::Sse2>(row, out)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        tokens_bytewise(row, out)
    }
}

/// [`tokens`] sorting a byte at a time (the tests' reference for the others).
#[cfg(any(test, not(target_arch = "x86_64")))]
pub(super) fn tokens_bytewise(row: &[u8], out: &mut [u32]) -> Option<Found> {
    // SAFETY: the byte-at-a-time form needs no target feature.
    #[allow(
        unsafe_code,
        reason = "the trait's method is unsafe for the SIMD forms"
    )]
    unsafe {
        tokens_with::<super::classify::Bytewise>(row, out)
    }
}

/// Whether the processor has what [`tokens_avx2`] is compiled for (every one with AVX2 but
/// the rarest has the others; `std` caches the answers).
#[cfg(target_arch = "x86_64")]
pub(super) fn has_avx2() -> bool {
    use std::arch::is_x86_feature_detected as has;
    has!("avx2") && has!("pclmulqdq") && has!("popcnt") && has!("bmi1")
}

/// [`tokens`] with AVX2, carry-less multiplication, and the bit counts' own instructions
/// (without them a count of ones is a dozen instructions, a count of trailing zeros two).
///
/// # Safety
///
/// The processor has AVX2, PCLMULQDQ, POPCNT and BMI1 ([`has_avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,pclmulqdq,popcnt,bmi1")]
#[allow(
    unsafe_code,
    reason = "compiled for AVX2, called where the processor has it"
)]
pub(super) unsafe fn tokens_avx2(row: &[u8], out: &mut [u32]) -> Option<Found> {
    // SAFETY: the caller's contract is `Avx2`'s.
    unsafe { tokens_with::<super::classify::Avx2>(row, out) }
}

/// [`tokens`] with SSE2 (the tests', where [`tokens`] takes AVX2).
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) fn tokens_sse2(row: &[u8], out: &mut [u32]) -> Option<Found> {
    // SAFETY: SSE2 is part of every x86_64.
    #[allow(unsafe_code, reason = "the SSE2 form")]
    unsafe {
        tokens_with::<super::classify::Sse2>(row, out)
    }
}

const EVEN: u64 = 0x5555_5555_5555_5555;

/// What carries from one block to the next.
#[derive(Default)]
struct Carry {
    /// 1 if the next block's first byte is escaped.
    escaped: u64,
    /// All ones if the next block starts inside a string.
    in_string: u64,
    /// 1 if the last byte was part of a number, literal or other run.
    scalar: u64,
}

/// [`tokens`] with `C`'s sorting; `out` holds at least `row.len() + 64`.
///
/// # Safety
///
/// The processor has `C`'s target features.
#[inline(always)]
#[allow(
    unsafe_code,
    reason = "calls C's methods, whose features the caller vouches for"
)]
unsafe fn tokens_with<C: Classify>(row: &[u8], out: &mut [u32]) -> Option<Found> {
    let mut carry = Carry::default();
    let (mut errors, mut tabs_or_breaks, mut n) = (0, 0, 0);
    let mut high_blocks: Option<(usize, usize)> = None;
    // Whole blocks, then the rest padded with white space (which no check sees).
    let whole = row.chunks_exact(64);
    let tail = whole.remainder();
    let mut padded = [b' '; 64];
    padded[..tail.len()].copy_from_slice(tail);
    let blocks = whole
        .map(|b| <&[u8; 64]>::try_from(b).unwrap_or(&[b' '; 64]))
        .chain((!tail.is_empty()).then_some(&padded));
    for (k, block) in blocks.enumerate() {
        // SAFETY: the caller's contract.
        let m = unsafe { C::classify(block) };
        let escaped = escaped(m.backslash, &mut carry.escaped);
        let quote = m.quote & !escaped;
        // SAFETY: the caller's contract.
        let in_string = unsafe { C::prefix_xor(quote) } ^ carry.in_string;
        carry.in_string = ((in_string as i64) >> 63) as u64;
        // The string's bytes with both quotes (`in_string` has the opening one only).
        let strings = in_string | quote;
        errors |= m.control & in_string;
        tabs_or_breaks |= m.white & m.control;
        if escaped != 0 && !escapes_are_json(row, block, k * 64, escaped) {
            return None;
        }
        if m.high != 0 {
            high_blocks = Some((high_blocks.map_or(k, |(first, _)| first), k));
        }
        let scalar = !(strings | m.white | m.structural);
        let scalar_starts = scalar & !(scalar << 1 | carry.scalar);
        carry.scalar = scalar >> 63;
        let tokens = (m.structural & !strings) | (quote & in_string) | scalar_starts;
        n = write_positions(out, n, (k * 64) as u32, tokens);
    }
    if errors != 0 || carry.in_string != 0 {
        return None;
    }
    if let Some((first, last)) = high_blocks {
        // The bytes before the first such block and after the last are ASCII, so the range
        // starts on a character's first byte and cuts none short that was whole.
        let end = row.len().min((last + 1) * 64);
        std::str::from_utf8(&row[first * 64..end]).ok()?;
    }
    Some(Found {
        tokens: n,
        maybe_breaks: tabs_or_breaks != 0,
    })
}

/// Which bytes of a block a backslash escapes (`simdjson`'s way): a run of backslashes that
/// starts on an even bit escapes the byte after it when its length is odd, found by adding
/// the runs' starts on odd bits to the backslashes (the carry says which runs are odd).
/// `carry` is 1 where the block before ended in an escaping backslash, and is updated.
#[inline(always)]
fn escaped(backslash: u64, carry: &mut u64) -> u64 {
    let backslash = backslash & !*carry;
    let follows = backslash << 1 | *carry;
    let odd_starts = backslash & !EVEN & !follows;
    let (even_runs, overflow) = odd_starts.overflowing_add(backslash);
    *carry = u64::from(overflow);
    (EVEN ^ (even_runs << 1)) & follows
}

/// Whether each escaped byte of `block` (at `base` in `row`) is an escape JSON has. A byte
/// past the row's end (its last byte a backslash) is padding, which is none.
#[inline(never)]
fn escapes_are_json(row: &[u8], block: &[u8; 64], base: usize, mut escaped: u64) -> bool {
    while escaped != 0 {
        let i = escaped.trailing_zeros() as usize;
        match block[i] {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
            b'u' => {
                let hex = row.get(base + i + 1..base + i + 5);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
            }
            _ => return false,
        }
        escaped &= escaped - 1;
    }
    true
}

/// Writes the position of each bit of `bits` (`base` + its index) at `out[n..]`, returns the
/// new count. The first 8 and the next 8 are written whatever the count, so that the loop's
/// end is not a branch the predictor misses (`simdjson`'s way); `out` holds 64 past `n`.
#[inline(always)]
fn write_positions(out: &mut [u32], n: usize, base: u32, mut bits: u64) -> usize {
    let count = bits.count_ones() as usize;
    let slots = &mut out[n..n + 64];
    let mut put = |slots: &mut [u32]| {
        for slot in slots {
            *slot = base + bits.trailing_zeros();
            bits &= bits.wrapping_sub(1);
        }
    };
    put(&mut slots[..8]);
    if count > 8 {
        put(&mut slots[8..16]);
        if count > 16 {
            put(&mut slots[16..count]);
        }
    }
    n + count
}
