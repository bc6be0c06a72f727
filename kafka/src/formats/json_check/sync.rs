//! Where a row that left the previous row's shape meets it again ([`super::shape`]): the places
//! in a shape's row where a value has just ended, learned with the shape, and the watch the
//! one pass keeps for them while it reads the part of a row that differs.
//!
//! After a value (a scalar, or an object or array just closed) the one pass's whole state is
//! the stack of objects and arrays open there (the module docs of [`super::shape`] say why):
//! so where the row being read is after a value with the stack the shape's row had at one of
//! these places, and the row's next bytes are the rest of the shape's run from there, the row
//! is where the shape's row was, and the walk along the shape goes on.

use super::shape::{has_breaks, Kind, Shape, MOST_VALUES};
use super::{Stack, Values};

/// Places after the one a row left the shape at that the watch compares at each place the
/// row's own values end: rows that vary as events do (a value of another kind, an array of
/// other length, a field more or less) meet the shape again within a few.
const WINDOW: usize = 8;
/// Places where the row's values end that the watch looks at, before it leaves the rest of
/// the row to the one pass alone (a row that is not of the shape costs at most this).
const LOOKS: u32 = 32;

/// The most places a learned shape keeps (past them a row that leaves the shape does not
/// meet it again): the shape's memory stays under about half a MB a thread.
const MOST_PLACES: usize = 2 * MOST_VALUES;

/// A value the one pass read while learning: its kind, its bytes, and the objects and arrays
/// open around it ([`Stack::as_word`]; `None` deeper than 64).
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub(super) kind: Kind,
    pub(super) start: u32,
    pub(super) end: u32,
    pub(super) stack: Option<(u64, u32)>,
}

/// A place in a shape's row where a value has just ended: in the run before step `k`'s value
/// (the tail when `k` is the number of steps), at `at` in the runs with `len` bytes of that
/// run after it (holding a line break: `breaks`), and the stack open there.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sync {
    pub(super) k: u32,
    pub(super) at: u32,
    pub(super) len: u32,
    pub(super) breaks: bool,
    pub(super) top: u64,
    pub(super) depth: u32,
}

/// What the one pass tells while it learns a row: its values, kept only up to one past
/// [`MOST_VALUES`] (more are not learned), and the first [`MOST_PLACES`] places where a value
/// ended.
#[derive(Debug, Default)]
pub(super) struct Learning {
    pub(super) spans: Vec<Span>,
    afters: Vec<(u32, Option<(u64, u32)>)>,
}

impl Values for Learning {
    #[inline(always)]
    fn value(&mut self, kind: Kind, start: usize, end: usize, stack: &Stack) {
        if self.spans.len() <= MOST_VALUES {
            // Rows over `MOST_BYTES` are never learned, so both fit.
            self.spans.push(Span {
                kind,
                start: start as u32,
                end: end as u32,
                stack: stack.as_word(),
            });
        }
    }

    #[inline(always)]
    fn after(&mut self, i: usize, stack: &Stack, _: &[u8]) -> bool {
        if self.afters.len() < MOST_PLACES {
            self.afters.push((i as u32, stack.as_word()));
        }
        false
    }
}

impl Learning {
    pub(super) fn clear(&mut self) {
        self.spans.clear();
        self.afters.clear();
    }

    /// Whether a row read so can be learned: few enough values, none deeper than 64.
    pub(super) fn fits(&self) -> bool {
        self.spans.len() <= MOST_VALUES && self.spans.iter().all(|s| s.stack.is_some())
    }

    /// The places of `bytes`, just learned as `shape` (its runs and steps), where a value
    /// ended inside an object or array, no deeper than 64, with bytes of a run after them;
    /// in `out`, emptied first.
    /// (`breaks`: whether the row holds a line break at all.)
    pub(super) fn syncs(
        &self,
        shape: &Shape,
        bytes: &[u8],
        breaks: bool,
        mut out: Vec<Sync>,
    ) -> Vec<Sync> {
        out.clear();
        // The runs in the row, one after another: the k-th from `from` to `to`.
        let mut k = 0;
        let mut from = 0;
        for &(i, stack) in &self.afters {
            let i = i as usize;
            // The run holding `i`: a value's end starts the run after it.
            while let Some(span) = self.spans.get(k).filter(|s| s.start as usize <= i) {
                from = span.end as usize;
                k += 1;
            }
            let to = self.spans.get(k).map_or(bytes.len(), |s| s.start as usize);
            let Some((top, depth)) = stack.filter(|&(_, depth)| depth > 0) else {
                continue;
            };
            if i >= to {
                continue;
            }
            let run_at = shape
                .steps
                .get(k)
                .map_or(shape.tail_at, |s| s.run_at as usize);
            out.push(Sync {
                k: k as u32,
                at: (run_at + i - from) as u32,
                len: (to - i) as u32,
                breaks: breaks && has_breaks(&bytes[i..to]),
                top,
                depth,
            });
        }
        out
    }
}

/// The one pass's watch, from place `next` of a shape's [`Sync`]s on, for where the row meets
/// the shape again: `found` that place, and the one pass stops there.
pub(super) struct Watch<'s> {
    shape: &'s Shape,
    next: usize,
    looks: u32,
    pub(super) found: Option<usize>,
}

impl<'s> Watch<'s> {
    pub(super) fn new(shape: &'s Shape, next: usize) -> Self {
        Watch {
            shape,
            next,
            looks: LOOKS,
            found: None,
        }
    }
}

impl Values for Watch<'_> {
    #[inline(always)]
    fn value(&mut self, _: Kind, _: usize, _: usize, _: &Stack) {}

    #[inline(always)]
    fn after(&mut self, i: usize, stack: &Stack, b: &[u8]) -> bool {
        if self.looks == 0 {
            return false;
        }
        self.looks -= 1;
        let Some((top, depth)) = stack.as_word() else {
            return false;
        };
        let syncs = &self.shape.syncs;
        let end = syncs.len().min(self.next + WINDOW);
        for (c, s) in syncs[self.next.min(end)..end].iter().enumerate() {
            let c = c + self.next;
            if s.depth == depth
                && s.top == top
                && self.shape.same(b, i, s.at as usize, s.len as usize)
            {
                self.found = Some(c);
                return true;
            }
        }
        false
    }
}
