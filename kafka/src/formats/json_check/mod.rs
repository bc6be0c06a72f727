//! Whether bytes are one JSON value: the check every candidate row gets on its partition's
//! worker before it is appended (`layout::finish`, `record::finish_row`).
//!
//! **What it accepts** is exactly what `std::str::from_utf8` followed by
//! `serde_json::from_str::<serde::de::IgnoredAny>` accepts, which is what the sink checked with
//! before (the property tests in `tests.rs` compare the two on generated, mutated and random
//! input):
//!
//! * RFC 8259 JSON, white space being space, tab, line feed and carriage return;
//! * any depth: `IgnoredAny` keeps its own stack and no depth limit;
//! * escapes checked for their form only: `\uD800` alone passes, as in serde_json, which
//!   decides about surrogates only when it builds a string;
//! * UTF-8 checked inside strings only: JSON's structure is ASCII, so a byte of 0x80 or more
//!   anywhere else is an error either way.
//!
//! **Why not serde_json.** The check was a tenth of the sink's CPU at 1 KB rows: a UTF-8 pass
//! over every row, then serde_json's pass, whose strings are scanned 8 bytes at a time.
//!
//! **Two stages** (`simdjson`'s design, as a validator only: no tape, no copy, no unescaping).
//! Stage 1 ([`stage1`]) reads the whole row 64 bytes at a time into bitmaps (AVX2 where the
//! processor has it, SSE2 otherwise), finds from them the escaped bytes and which bytes are
//! inside strings, rejects what it can see there (control bytes in strings, escapes JSON has
//! not, UTF-8 that is not, an open string) and writes the positions of the tokens into a
//! buffer kept per thread. Stage 2 ([`stage2`]) walks the grammar over those positions, so
//! that no token's read waits for the one before it to end, the chain of dependent loads
//! that was 40 % of the one-pass check's time.
//!
//! **One pass** ([`one_pass`]) for rows shorter than [`TWO_STAGES_FROM`], where the stages'
//! set-up costs more than the chain, for rows longer than [`TWO_STAGES_UP_TO`], so that the
//! per-thread buffer stays small (4 bytes a row byte), and on targets other than x86_64,
//! where stage 1 would sort a byte at a time.

mod classify;
mod one_pass;
mod stack;
mod stage1;
mod stage2;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_blocks;

use std::cell::RefCell;

/// The shortest row the two stages take.
pub(crate) const TWO_STAGES_FROM: usize = 128;

/// The longest row the two stages take: their per-thread buffer holds 4 bytes a row byte.
pub(crate) const TWO_STAGES_UP_TO: usize = 1 << 20;

thread_local! {
    /// Stage 1's token positions, kept per thread so that no row allocates them.
    static TOKENS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Whether `bytes` hold exactly one JSON value, surrounded by nothing but white space (see the
/// module docs for what counts).
pub fn is_one_value(bytes: &[u8]) -> bool {
    line_breaks_of_one_value(bytes).is_some()
}

/// The one-pass check alone, for the bench that times it beside the two stages.
#[doc(hidden)]
pub fn is_one_value_in_one_pass(bytes: &[u8]) -> bool {
    one_pass::line_breaks_of_one_value(bytes).is_some()
}

/// [`is_one_value`], and for one value whether it holds a line feed or a carriage return (JSON
/// allows them only as white space between tokens, never raw inside a string): `None` when it
/// is not one value, `Some(false)` when it is one line already, so the caller that makes rows
/// one NDJSON line each need not look again.
pub(crate) fn line_breaks_of_one_value(bytes: &[u8]) -> Option<bool> {
    if cfg!(target_arch = "x86_64") && (TWO_STAGES_FROM..=TWO_STAGES_UP_TO).contains(&bytes.len()) {
        in_two_stages(bytes)
    } else {
        one_pass::line_breaks_of_one_value(bytes)
    }
}

/// [`line_breaks_of_one_value`] by the two stages, whatever the row's length (at most
/// [`stage1::MAX_LEN`]).
fn in_two_stages(bytes: &[u8]) -> Option<bool> {
    TOKENS.with(|tokens| {
        let mut tokens = tokens.borrow_mut();
        let found = stage1::tokens(bytes, &mut tokens)?;
        stage2::is_one_value(bytes, &tokens[..found.tokens])
            .then(|| found.maybe_breaks && memchr::memchr2(b'\n', b'\r', bytes).is_some())
    })
}
