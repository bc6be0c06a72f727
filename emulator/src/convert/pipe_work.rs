//! What one row's transform may cost (docs/SECURITY.md "A pipe's per-row cost"): the bytes
//! its expressions build, copy or compare, and the clock of the append it belongs to.
//!
//! Every value an expression builds (a copied `$1` path, a literal, a cast, `PARSE_JSON`,
//! `||` and the string functions) and every comparison of a value used more than once (`IN`
//! lists, `CASE x WHEN …`, `BETWEEN`) is charged by its size before or as it is made. One row
//! may spend [`ROW_WORK_BYTES`]: that bounds both what the row holds while it is evaluated
//! and, at memory speed, its CPU. An append's rows share its deadline
//! ([`super::ConvertOptions::deadline`]): rows of a few bytes, each under the row's bound, add
//! up to the request's; past the deadline every remaining row of that append is a row error.

use std::cell::Cell;
use std::time::Instant;

use serde_json::Value;

use super::pipe_value::Val;

/// The most bytes one row's transform may build, copy or compare: four copies of a 16 MB
/// value (Snowflake's largest); a nested `REPLACE` growing tenfold per level stops here
/// instead of at terabytes.
pub(crate) const ROW_WORK_BYTES: u64 = 64 << 20;

/// How long one append's transforms may run: a 4 MB request of the heaviest legitimate
/// rows takes a fraction of this; rows of a few bytes, each with up to [`ROW_WORK_BYTES`] of
/// work, would take hours.
pub(crate) const APPEND_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// How often (in charges) the clock is read when no charge is large.
const CLOCK_EVERY: u32 = 256;

/// One row's spending.
pub(super) struct Work {
    spent: Cell<u64>,
    charges: Cell<u32>,
    deadline: Option<Instant>,
}

impl Work {
    pub(super) fn new(deadline: Option<Instant>) -> Self {
        Self {
            spent: Cell::new(0),
            charges: Cell::new(0),
            deadline,
        }
    }

    /// Charges `bytes` built, copied or compared.
    ///
    /// # Errors
    ///
    /// The row error's message past [`ROW_WORK_BYTES`] or past the append's deadline.
    pub(super) fn charge(&self, bytes: u64) -> Result<(), String> {
        let spent = self.spent.get().saturating_add(bytes);
        self.spent.set(spent);
        if spent > ROW_WORK_BYTES {
            return Err(format!(
                "the transform built, copied or compared more than the emulator's {} MiB for \
                 one row (docs/SECURITY.md); use fewer or simpler functions over large values",
                ROW_WORK_BYTES >> 20
            ));
        }
        let charges = self.charges.get().wrapping_add(1);
        self.charges.set(charges);
        if bytes >= 1 << 16 || charges % CLOCK_EVERY == 0 {
            self.check_clock()?;
        }
        Ok(())
    }

    /// Fails past the append's deadline.
    ///
    /// # Errors
    ///
    /// The row error's message once the deadline has passed.
    pub(super) fn check_clock(&self) -> Result<(), String> {
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Err(
                "the append's transforms ran past the emulator's time for one request \
                 (docs/SECURITY.md); send fewer rows a request or simplify the pipe"
                    .to_owned(),
            ),
            _ => Ok(()),
        }
    }
}

/// About the bytes a value holds: text by its length, a VARIANT by its strings, keys and a
/// word a node, anything else a word.
pub(super) fn weight(value: &Val) -> u64 {
    match value {
        Val::Text(s) | Val::Temporal(_, s) => s.len() as u64 + 16,
        Val::Variant(v) => variant_weight(v),
        Val::Null | Val::Number(_) | Val::Float(_) | Val::Bool(_) => 16,
    }
}

/// A VARIANT's weight; JSON nests at most 128 levels where it is parsed, so the recursion is
/// shallow.
fn variant_weight(value: &Value) -> u64 {
    16 + match value {
        Value::String(s) => s.len() as u64,
        Value::Array(items) => items.iter().map(variant_weight).sum(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| k.len() as u64 + variant_weight(v))
            .sum(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}
