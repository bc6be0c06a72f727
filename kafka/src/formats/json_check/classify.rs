//! Stage 1's first step: a 64-byte block's bytes sorted into the kinds the check needs, one
//! bit a byte (bit `i` is byte `i`), in three forms that give the same answer: AVX2 (chosen at
//! run time where the processor has it), SSE2 (every x86_64 has it) and a byte at a time (the
//! reference the tests compare the others with, and the form on other targets).

/// A block's bytes by kind, one bit a byte.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(super) struct Masks {
    /// `"`.
    pub(super) quote: u64,
    /// `\`.
    pub(super) backslash: u64,
    /// `,` `:` `[` `]` `{` `}`.
    pub(super) structural: u64,
    /// JSON's white space: space, tab, line feed, carriage return.
    pub(super) white: u64,
    /// Below 0x20 (tab, line feed and carriage return among them).
    pub(super) control: u64,
    /// 0x80 or more: part of a UTF-8 sequence, or not text.
    pub(super) high: u64,
}

/// One way of sorting a block.
#[allow(unsafe_code, reason = "the SIMD forms need their target features")]
pub(super) trait Classify {
    /// `block`'s [`Masks`].
    ///
    /// # Safety
    ///
    /// The processor has the target features the implementation names.
    unsafe fn classify(block: &[u8; 64]) -> Masks;

    /// Bit `i` of the result is the XOR of bits `0..=i` of `x`: which bytes are inside a
    /// string, from where its quotes are.
    ///
    /// # Safety
    ///
    /// As for [`classify`](Self::classify).
    #[inline(always)]
    unsafe fn prefix_xor(x: u64) -> u64 {
        prefix_xor_by_shifts(x)
    }
}

/// [`Classify::prefix_xor`] in six shifts and XORs.
#[inline(always)]
pub(super) fn prefix_xor_by_shifts(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// A byte at a time: the rules themselves.
#[cfg(any(test, not(target_arch = "x86_64")))]
pub(super) struct Bytewise;

#[cfg(any(test, not(target_arch = "x86_64")))]
#[allow(
    unsafe_code,
    reason = "the trait's methods are unsafe for the SIMD forms"
)]
impl Classify for Bytewise {
    #[inline(always)]
    unsafe fn classify(block: &[u8; 64]) -> Masks {
        let mut m = Masks::default();
        for (i, &c) in block.iter().enumerate() {
            let bit = 1 << i;
            let kind = |yes: bool| if yes { bit } else { 0 };
            m.quote |= kind(c == b'"');
            m.backslash |= kind(c == b'\\');
            m.structural |= kind(matches!(c, b',' | b':' | b'[' | b']' | b'{' | b'}'));
            m.white |= kind(matches!(c, b' ' | b'\t' | b'\n' | b'\r'));
            m.control |= kind(c < 0x20);
            m.high |= kind(c >= 0x80);
        }
        m
    }
}

/// 16 bytes at a time with SSE2's byte compares.
#[cfg(target_arch = "x86_64")]
pub(super) struct Sse2;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, reason = "SSE2 sorts 16 bytes at a time")]
impl Classify for Sse2 {
    #[inline(always)]
    unsafe fn classify(block: &[u8; 64]) -> Masks {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        let mut m = Masks::default();
        for k in 0..4 {
            // SAFETY: the 16 bytes read are `block[16 * k..16 * k + 16]`, inside the block
            // (`k < 4`); `_mm_loadu_si128` needs no alignment; SSE2 is part of every x86_64.
            let v = unsafe { _mm_loadu_si128(block.as_ptr().add(16 * k).cast()) };
            let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
            let bits = |x| u64::from(_mm_movemask_epi8(x) as u16) << (16 * k);
            // `[` and `{`, `]` and `}` differ in bit 5 alone, and no other byte becomes
            // either with it set.
            let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
            let bracket = _mm_or_si128(
                _mm_cmpeq_epi8(lower, _mm_set1_epi8(b'{' as i8)),
                _mm_cmpeq_epi8(lower, _mm_set1_epi8(b'}' as i8)),
            );
            m.quote |= bits(eq(b'"'));
            m.backslash |= bits(eq(b'\\'));
            m.structural |= bits(_mm_or_si128(bracket, _mm_or_si128(eq(b','), eq(b':'))));
            m.white |= bits(_mm_or_si128(
                _mm_or_si128(eq(b' '), eq(b'\t')),
                _mm_or_si128(eq(b'\n'), eq(b'\r')),
            ));
            // Unsigned: min(v, 0x1F) == v where v <= 0x1F.
            m.control |= bits(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v));
            m.high |= bits(v);
        }
        m
    }
}

/// 32 bytes at a time with AVX2: structure and white space from two 16-entry tables (by a
/// byte's low and high half), as `simdjson` sorts them; the string's quotes by carry-less
/// multiplication.
#[cfg(target_arch = "x86_64")]
pub(super) struct Avx2;

/// Bits of the tables' entries: `,` 1, `:` 2, brackets and braces 4, space 8, tab, line feed
/// and carriage return 16. A byte is of a kind when the entries for its two halves share the
/// kind's bit (the test of all 256 bytes against [`Bytewise`] checks the tables).
#[cfg(target_arch = "x86_64")]
const LOW_HALF: [u8; 16] = [8, 0, 0, 0, 0, 0, 0, 0, 0, 16, 18, 4, 1, 20, 0, 0];
#[cfg(target_arch = "x86_64")]
const HIGH_HALF: [u8; 16] = [16, 0, 9, 2, 0, 4, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0];

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, reason = "AVX2 sorts 32 bytes at a time")]
impl Classify for Avx2 {
    #[inline(always)]
    unsafe fn classify(block: &[u8; 64]) -> Masks {
        use std::arch::x86_64::{
            __m256i, _mm256_and_si256, _mm256_broadcastsi128_si256, _mm256_cmpeq_epi8,
            _mm256_loadu_si256, _mm256_min_epu8, _mm256_movemask_epi8, _mm256_set1_epi8,
            _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_srli_epi16, _mm_loadu_si128,
        };
        // SAFETY (every block below): the caller has made sure of AVX2 (the trait's
        // contract); the loads read 16 bytes of a 16-byte table and 32 bytes of the block at
        // 0 or 32, inside it, and need no alignment.
        unsafe {
            let table =
                |t: &[u8; 16]| _mm256_broadcastsi128_si256(_mm_loadu_si128(t.as_ptr().cast()));
            let (low, high) = (table(&LOW_HALF), table(&HIGH_HALF));
            let zero = _mm256_setzero_si256();
            let mut m = Masks::default();
            for k in 0..2 {
                let v = _mm256_loadu_si256(block.as_ptr().add(32 * k).cast());
                let bits = |x: __m256i| u64::from(_mm256_movemask_epi8(x) as u32) << (32 * k);
                let eq = |c: u8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8));
                let high_half = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F));
                // A byte of 0x80 or more finds 0 in the low table (the shuffle's rule).
                let kinds = _mm256_and_si256(
                    _mm256_shuffle_epi8(low, v),
                    _mm256_shuffle_epi8(high, high_half),
                );
                let none_of =
                    |b: i8| _mm256_cmpeq_epi8(_mm256_and_si256(kinds, _mm256_set1_epi8(b)), zero);
                m.quote |= bits(eq(b'"'));
                m.backslash |= bits(eq(b'\\'));
                m.structural |= !bits(none_of(7)) & (u64::from(u32::MAX) << (32 * k));
                m.white |= !bits(none_of(0x18)) & (u64::from(u32::MAX) << (32 * k));
                m.control |= bits(_mm256_cmpeq_epi8(
                    _mm256_min_epu8(v, _mm256_set1_epi8(0x1F)),
                    v,
                ));
                m.high |= bits(v);
            }
            m
        }
    }

    #[inline(always)]
    unsafe fn prefix_xor(x: u64) -> u64 {
        use std::arch::x86_64::{
            _mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set1_epi8, _mm_set_epi64x,
        };
        // SAFETY: the caller has made sure of PCLMULQDQ with AVX2 (the trait's contract).
        unsafe {
            let product = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1), 0);
            _mm_cvtsi128_si64(product) as u64
        }
    }
}
