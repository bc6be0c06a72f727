//! The open objects and arrays around a check, innermost last, for both checks.

/// The open objects (`true`) and arrays (`false`) around the scan, innermost last: 64 levels in
/// a word, deeper ones spilled (allocating only for values nested more than 64 deep).
#[derive(Default)]
pub(super) struct Stack {
    top: u64,
    depth: usize,
    spilled: Vec<u64>,
}

impl Stack {
    pub(super) fn push(&mut self, object: bool) {
        if self.depth > 0 && self.depth % 64 == 0 {
            self.spilled.push(self.top);
            self.top = 0;
        }
        self.top |= u64::from(object) << (self.depth % 64);
        self.depth += 1;
    }

    pub(super) fn pop(&mut self) {
        self.depth -= 1;
        self.top &= !(1 << (self.depth % 64));
        if self.depth > 0 && self.depth % 64 == 0 {
            self.top = self.spilled.pop().unwrap_or(0);
        }
    }

    /// Whether the innermost open value is an object; `None` at the top level.
    pub(super) fn innermost(&self) -> Option<bool> {
        (self.depth > 0).then(|| self.top >> ((self.depth - 1) % 64) & 1 == 1)
    }
}
