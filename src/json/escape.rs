//! JSON string escaping, byte for byte as serde_json writes it.
//!
//! serde_json escapes `"`, `\` and the control characters below U+0020 (`\b \t \n \f \r` by
//! their short forms, the others as `\u00XX` with lowercase hex) and nothing else: not U+007F,
//! not `/`, not non-ASCII. Most strings in rows need no escape at all, so a string is copied
//! eight bytes at a time and each word tested for escapes as it is copied (SWAR); a string that
//! needs one is written again, escape by escape. On the throughput harness's rows this made
//! the serializer a third cheaper than a one-table-load-per-byte scan followed by a copy
//! (0.69 → 0.46 CPU-s per GB of NDJSON; docs/PERFORMANCE.md).

/// The bytes serde_json escapes: below 0x20, `"` and `\`.
static ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20 || b == b'"' as usize || b == b'\\' as usize;
        b += 1;
    }
    table
};

#[inline]
fn byte_needs_escape(b: u8) -> bool {
    ESCAPED[usize::from(b)]
}

/// Whether any of the eight bytes of `w` is below 0x20, `"` or `\`. Exact for the word as a
/// whole: the borrows of these SWAR tests can mark bytes after a match, never a word without
/// one.
#[inline(always)]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (below_space | quote | backslash) & HIGH != 0
}

/// Copies `n` bytes from `src` to `dst` and says whether any of them needs an escape: whole
/// words, the last one overlapping the one before; four-byte halves below eight bytes.
///
/// # Safety
/// `src` is readable and `dst` writable for `n` bytes, and the two do not overlap.
#[allow(unsafe_code)] // See `write_between`.
#[inline(always)]
unsafe fn copy_and_scan(src: *const u8, dst: *mut u8, n: usize) -> bool {
    use std::ptr::{read_unaligned, write_unaligned};
    if n >= 8 {
        let mut any = false;
        let mut i = 0;
        while i + 8 <= n {
            let w = read_unaligned(src.add(i).cast::<u64>());
            write_unaligned(dst.add(i).cast::<u64>(), w);
            any |= word_needs_escape(w);
            i += 8;
        }
        if i < n {
            let w = read_unaligned(src.add(n - 8).cast::<u64>());
            write_unaligned(dst.add(n - 8).cast::<u64>(), w);
            any |= word_needs_escape(w);
        }
        any
    } else if n >= 4 {
        let head = read_unaligned(src.cast::<u32>());
        let tail = read_unaligned(src.add(n - 4).cast::<u32>());
        write_unaligned(dst.cast::<u32>(), head);
        write_unaligned(dst.add(n - 4).cast::<u32>(), tail);
        word_needs_escape(u64::from(head) | u64::from(tail) << 32)
    } else {
        let mut any = false;
        for i in 0..n {
            let b = *src.add(i);
            *dst.add(i) = b;
            any |= byte_needs_escape(b);
        }
        any
    }
}

/// Appends `s` to `out` as a JSON string (with its quotes).
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    write_between(out, b"", s, b"");
}

/// Appends `before`, then `s` as a JSON string, then `after`: one reservation and one pass for
/// a struct field's `,"KEY":`.
///
/// The crate's only `unsafe` code (`#![deny(unsafe_code)]` everywhere else): writing into
/// reserved capacity. Safe code measured 0.55 CPU-s per GB of NDJSON against 0.46 for this
/// (an `extend_from_slice` per string calls `memcpy` for a dozen bytes; per-word pushes
/// check the capacity each time). Every length from 0 to 40, every position and every
/// escape are tested against serde_json below.
#[allow(unsafe_code)]
#[inline]
pub(crate) fn write_between(out: &mut Vec<u8>, before: &[u8], s: &str, after: &[u8]) {
    let bytes = s.as_bytes();
    let n = bytes.len();
    let total = before.len() + n + 2 + after.len();
    out.reserve(total);
    let start = out.len();
    // SAFETY: the reservation above makes room for the `total` bytes written from `start`
    // (`before`, a quote, `n` bytes, a quote, `after`), and `set_len` covers only bytes written.
    unsafe {
        let mut dst = out.as_mut_ptr().add(start);
        // Byte loops, not `copy_nonoverlapping`: at most two bytes, and a call to `memcpy`
        // for them costs more than the rest of a short field.
        for &b in before {
            *dst = b;
            dst = dst.add(1);
        }
        *dst = b'"';
        dst = dst.add(1);
        if !copy_and_scan(bytes.as_ptr(), dst, n) {
            dst = dst.add(n);
            *dst = b'"';
            dst = dst.add(1);
            for &b in after {
                *dst = b;
                dst = dst.add(1);
            }
            out.set_len(start + total);
            return;
        }
        out.set_len(start + before.len() + 1);
    }
    write_escaped(out, bytes);
    out.push(b'"');
    out.extend_from_slice(after);
}

#[cold]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if byte_needs_escape(b) {
            out.extend_from_slice(&bytes[run..i]);
            write_escape(out, b);
            run = i + 1;
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

#[cold]
fn write_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0C => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xF)],
            ]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length the word, half-word and byte paths take (0 to 40), every position in it,
    /// and every byte that is, or borders, an escape; as a plain string and as a field
    /// between `,` and `:` (what must not move when the string needs an escape).
    #[test]
    fn every_length_and_position_copies_and_escapes_like_serde_json() {
        let bytes: Vec<u8> = (0u8..0x20)
            .chain([b' ', b'!', b'"', b'#', b'[', b'\\', b']', b'~', 0x7F])
            .collect();
        for len in 0..=40 {
            for pos in 0..len.max(1) {
                for &b in &bytes {
                    let mut s: String = (0..len)
                        .map(|i| char::from(b'a' + (i % 26) as u8))
                        .collect();
                    if len > 0 {
                        s.replace_range(pos..=pos, &char::from(b).to_string());
                    }
                    let expected = serde_json::to_vec(&s).unwrap();
                    let mut out = b"kept".to_vec();
                    write_str(&mut out, &s);
                    assert_eq!(
                        &out[4..],
                        &expected[..],
                        "len {len}, byte {b:#04x} at {pos}"
                    );
                    assert_eq!(&out[..4], b"kept");
                    let mut field = b"{".to_vec();
                    write_between(&mut field, b",", &s, b":");
                    let mut want = b"{,".to_vec();
                    want.extend_from_slice(&expected);
                    want.push(b':');
                    assert_eq!(field, want, "field: len {len}, byte {b:#04x} at {pos}");
                }
            }
        }
        // Multibyte characters across word boundaries are copied, never escaped.
        for len in 0..20 {
            let s = "é✓😀".repeat(len);
            let mut out = Vec::new();
            write_str(&mut out, &s);
            assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{len}");
        }
    }

    #[test]
    fn every_byte_in_every_position_escapes_like_serde_json() {
        for b in 0u8..=0x7F {
            for pos in 0..17 {
                let mut s = "a".repeat(pos);
                s.push(char::from(b));
                s.push_str("tail-of-nine");
                let mut out = Vec::new();
                write_str(&mut out, &s);
                assert_eq!(
                    out,
                    serde_json::to_vec(&s).unwrap(),
                    "byte {b:#04x} at {pos}"
                );
            }
        }
        let s = "ünïcødé ✓ \u{7f} \u{1F600} \"q\" \\ \u{0}\u{1f}";
        let mut out = Vec::new();
        write_str(&mut out, s);
        assert_eq!(out, serde_json::to_vec(s).unwrap());
    }
}
