//! Stage 1's block edges: every kind of byte sorted alike by each form, and what straddles a
//! 64-byte block's edge (a quote, a backslash run, an escape, a UTF-8 sequence, a control
//! byte, a number or literal) decided as serde_json decides it, by every form of the check.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::classify::{prefix_xor_by_shifts, Bytewise, Classify};
use super::tests::{agree, serde_says};

/// Each form's masks of `block` against the byte-at-a-time rules.
fn same_masks(block: &[u8; 64]) {
    // SAFETY: the byte-at-a-time form needs no target feature.
    #[allow(
        unsafe_code,
        reason = "the trait's method is unsafe for the SIMD forms"
    )]
    let expected = unsafe { Bytewise::classify(block) };
    #[cfg(target_arch = "x86_64")]
    {
        use super::classify::{Avx2, Sse2};
        // SAFETY: SSE2 is part of every x86_64.
        #[allow(unsafe_code, reason = "the SSE2 form")]
        let sse2 = unsafe { Sse2::classify(block) };
        assert_eq!(sse2, expected, "SSE2 on {block:?}");
        if super::stage1::has_avx2() {
            // SAFETY: the processor has both features, just checked.
            #[allow(unsafe_code, reason = "the AVX2 form, where the processor has it")]
            let avx2 = unsafe { Avx2::classify(block) };
            assert_eq!(avx2, expected, "AVX2 on {block:?}");
        }
    }
}

#[test]
fn every_byte_at_every_place_of_a_block_is_sorted_alike_by_each_form() {
    for c in 0..=255_u8 {
        for at in 0..64 {
            let mut block = [b'a'; 64];
            block[at] = c;
            same_masks(&block);
            let mut block = [c; 64];
            block[at] = b'"';
            same_masks(&block);
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(64);
    for _ in 0..20_000 {
        let block: [u8; 64] = std::array::from_fn(|_| rng.gen());
        same_masks(&block);
    }
}

#[test]
fn carry_less_multiplication_gives_the_prefix_xor_the_shifts_give() {
    #[cfg(target_arch = "x86_64")]
    if super::stage1::has_avx2() {
        let mut rng = ChaCha8Rng::seed_from_u64(0xC1);
        for x in [0, 1, 1 << 63, u64::MAX]
            .into_iter()
            .chain((0..10_000).map(|_| rng.gen()))
        {
            // SAFETY: the processor has both features, just checked.
            #[allow(unsafe_code, reason = "the AVX2 form, where the processor has it")]
            let clmul = unsafe { super::classify::Avx2::prefix_xor(x) };
            assert_eq!(clmul, prefix_xor_by_shifts(x), "{x:#x}");
        }
        return;
    }
    eprintln!("skipped: no AVX2 with PCLMULQDQ here, the form the test is about");
}

/// `piece` at every offset from 0 to 140 (so each of its bytes on each side of the edges at
/// 64 and 128), after a string that pads it there and before one that makes the row longer
/// than the two stages' shortest.
fn at_every_offset(piece: &[u8]) {
    for pad in 0..=140 {
        let mut row = b"[\"".to_vec();
        row.extend(std::iter::repeat_n(b'x', pad));
        row.extend_from_slice(b"\",");
        row.extend_from_slice(piece);
        row.extend_from_slice(b",\"");
        row.extend(std::iter::repeat_n(b'y', 130));
        row.extend_from_slice(b"\"]");
        agree(&row);
    }
}

#[test]
fn quotes_escapes_utf8_control_bytes_and_scalars_across_a_block_edge() {
    let pieces: &[&[u8]] = &[
        b"\"\"",
        b"\"\\\"\"",
        b"\"\\\\\"",
        b"\"a\\nb\\tc\\/d\"",
        b"\"\\u00e9\\uD800\\uffff\"",
        b"\"\\u12G4\"",
        b"\"\\u12\"",
        b"\"\\x\"",
        b"\"\\\x01\"",
        "\"é€😀日本\"".as_bytes(),
        b"\"\xe2\x82\"",
        b"\"\xed\xa0\x80\"",
        b"\"\xf0\x9f\x98\x80\xc3\"",
        b"\"a\x01b\"",
        b"\"\x1f\"",
        b"\"line\nbreak\"",
        b"\"\x7f\"",
        b"\xc3\xa9",
        b"-123.5e-7",
        b"0123",
        b"1.e5",
        b"12345678901234567890",
        b"true",
        b"truex",
        b"nul",
        b"null",
        b"false ",
        b"{\"k\":[1,{}, []],\"l\":null}",
        b"{\"k\" : 1 , }",
        b"{\"k\"1}",
        b"[1\"a\"]",
        b"\t\r\n 1 \n",
        b"\x00",
        b"\\",
        b"\"open",
    ];
    for piece in pieces {
        at_every_offset(piece);
    }
}

#[test]
fn backslash_runs_of_every_length_to_130_across_a_block_edge() {
    for len in 1..=130 {
        for after in [&b"\""[..], b"n", b"u0041", b"x"] {
            for pad in [0, 30, 58, 61, 62, 63, 64, 65, 66, 127, 128] {
                let mut row = b"[\"".to_vec();
                row.extend(std::iter::repeat_n(b'x', pad));
                row.extend(std::iter::repeat_n(b'\\', len));
                row.extend_from_slice(after);
                row.extend_from_slice(b"\",\"");
                row.extend(std::iter::repeat_n(b'y', 130));
                row.extend_from_slice(b"\"]");
                // An even run is whole escapes, so a quote after it closes the string (and
                // the next opens one around `,` that the `y`s then leave open); an odd one
                // escapes what follows: a quote, `n`, `u0041`, but not `x`.
                let odd = len % 2 == 1;
                let valid = match after {
                    b"\"" => odd,
                    b"x" => !odd,
                    _ => true,
                };
                assert_eq!(serde_says(&row), valid, "{len} {after:?}");
                agree(&row);
            }
        }
    }
}

/// Rows of many blocks: generated values of 1–20 KB with a byte flipped, fixed seed.
#[test]
fn long_rows_with_a_byte_flipped_are_decided_as_serde_json_decides_them() {
    let mut rng = ChaCha8Rng::seed_from_u64(0xB10C);
    let bytes = [
        b'"', b'\\', b'{', b'}', b',', b':', 0x00, 0x1F, 0x80, 0xC3, b' ', b'\n', b'1',
    ];
    let mut checked = (0, 0);
    for _ in 0..300 {
        let mut row = b"{".to_vec();
        for k in 0..rng.gen_range(20..400) {
            if k > 0 {
                row.push(b',');
            }
            row.extend_from_slice(format!("\"f{k}\":").as_bytes());
            match rng.gen_range(0..4) {
                0 => row.extend_from_slice(format!("{}.{}", rng.gen::<u32>(), k).as_bytes()),
                1 => row.extend_from_slice("\"é\\\"x\\u0041 日本\"".as_bytes()),
                2 => row.extend_from_slice(b"[true,false,null,{}]"),
                _ => row.extend(
                    std::iter::repeat_n(b'z', rng.gen_range(0..70))
                        .chain([b'"'])
                        .rev()
                        .chain([b'"']),
                ),
            }
        }
        row.push(b'}');
        agree(&row);
        let at = rng.gen_range(0..row.len());
        row[at] = bytes[rng.gen_range(0..bytes.len())];
        if serde_says(&row) {
            checked.0 += 1;
        } else {
            checked.1 += 1;
        }
        agree(&row);
    }
    assert!(
        checked.1 > 100,
        "{checked:?}: the flips made too few errors"
    );
}
