//! MariaDB's `INET6` in the binlog: the 16 bytes of the address (trailing zero bytes dropped,
//! as for every fixed-width string), written back as the text the server gives a `SELECT`, so
//! the snapshot and the stream agree value by value.
//!
//! The server's text is not RFC 5952's: the longest run of zero groups is written `::` even
//! when it is one group long (the first run of that length wins), hex digits are lower case
//! without leading zeros, and an address whose first 96 bits are zero (IPv4-compatible) or
//! whose first 80 bits are zero and next 16 are `ffff` (IPv4-mapped) ends in dotted IPv4 —
//! unless the zero run is longer (`::1` stays `::1`). Rust's `Ipv6Addr` display differs on
//! single zero groups and on IPv4-compatible addresses, hence this module.

use std::fmt::Write as _;

use anyhow::{bail, Result};

/// The text of the address whose binlog bytes are `bytes` (at most 16; missing trailing
/// bytes are zeros).
///
/// # Errors
/// More than 16 bytes: not an `INET6` value.
pub(super) fn text(bytes: &[u8]) -> Result<String> {
    if bytes.len() > 16 {
        bail!(
            "an INET6 value of {} bytes (an address has 16)",
            bytes.len()
        );
    }
    let mut b = [0u8; 16];
    b[..bytes.len()].copy_from_slice(bytes);
    let words: [u16; 8] = std::array::from_fn(|i| u16::from_be_bytes([b[2 * i], b[2 * i + 1]]));
    let (gap_at, gap_len) = longest_zero_run(&words);
    let mut out = String::with_capacity(39);
    let mut i = 0;
    while i < 8 {
        if Some(i) == gap_at {
            out.push_str(if i == 0 { "::" } else { ":" });
            i += gap_len;
            continue;
        }
        let ipv4_tail =
            i == 6 && gap_at == Some(0) && (gap_len == 6 || (gap_len == 5 && words[5] == 0xffff));
        if ipv4_tail {
            let _ = write!(out, "{}.{}.{}.{}", b[12], b[13], b[14], b[15]);
            return Ok(out);
        }
        let _ = write!(out, "{:x}", words[i]);
        if i + 1 < 8 {
            out.push(':');
        }
        i += 1;
    }
    Ok(out)
}

/// Where the first longest run of zero words starts, and its length (`None, 0`: no zero).
fn longest_zero_run(words: &[u16; 8]) -> (Option<usize>, usize) {
    let (mut best, mut best_len) = (None, 0);
    let mut i = 0;
    while i < 8 {
        if words[i] != 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < 8 && words[i] == 0 {
            i += 1;
        }
        if i - start > best_len {
            (best, best_len) = (Some(start), i - start);
        }
    }
    (best, best_len)
}

#[cfg(test)]
mod tests {
    use super::text;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Each pair: the bytes `HEX(col)` gives and the text `SELECT col` gives, read off
    /// MariaDB 10.11 (the integration test checks the same against the running server).
    #[test]
    fn the_text_is_the_servers() {
        for (bytes, want) in [
            ("00000000000000000000000000000000", "::"),
            ("00000000000000000000000000000001", "::1"),
            ("00000000000000000000FFFF01020304", "::ffff:1.2.3.4"),
            ("00000000000000000000000001020304", "::1.2.3.4"),
            (
                "20010DB80000000000008A2E03707334",
                "2001:db8::8a2e:370:7334",
            ),
            ("00010000000200030004000500060007", "1::2:3:4:5:6:7"),
            ("20010DB8000000000001000000000000", "2001:db8:0:0:1::"),
            ("FE800000000000000001000000000000", "fe80::1:0:0:0"),
            ("00000000000000000000000000000102", "::102"),
            ("00010002000300040005000600070000", "1:2:3:4:5:6:7::"),
            ("00000001000000010000000100000001", "::1:0:1:0:1:0:1"),
            (
                "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            ),
            ("00000000000000000000FFFF00000000", "::ffff:0.0.0.0"),
        ] {
            assert_eq!(text(&hex(bytes)).unwrap(), want, "{bytes}");
        }
    }

    #[test]
    fn dropped_trailing_zeros_are_put_back_and_a_long_value_refused() {
        assert_eq!(text(&hex("20010DB8")).unwrap(), "2001:db8::");
        assert_eq!(text(&[]).unwrap(), "::");
        assert!(text(&[1; 17]).unwrap_err().to_string().contains("17 bytes"));
    }
}
