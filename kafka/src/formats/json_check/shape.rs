//! Shape speculation: rows of one topic share their keys and their layout, so the previous
//! learned row's shape is tried on the next one before the one pass.
//!
//! **A shape** is an accepted row cut at its scalar values (strings, numbers, `true`, `false`,
//! `null`; not objects or arrays): the runs of bytes between them (`{"event_id":"`,
//! `","ts":`, `},"tags":["`, …; a string's quotes belong to the runs, its contents to the value)
//! and each value's kind. The next row is walked along it: each run compared with the row's
//! bytes (16 at a time), each value scanned by the one pass's own scan for its kind, with every
//! check it makes (escapes, UTF-8, control bytes, the number grammar); at the end the row must
//! end where the last run does. Where the row leaves the shape (a run differs, a value is of
//! another kind, the row goes on), the one pass takes over at the start of that run or value,
//! in the state the shape's row had there (the open objects and arrays, kept with each value),
//! with whether the row's white space so far held a line break.
//!
//! **Meeting the shape again** ([`super::sync`]): rows of one topic differ in places (a value
//! that is a string or `null`, an array of other length, a field more or less) and agree
//! after them, so while the one pass reads the part that differs it watches, at each place
//! where a value ends, for one of the shape's own such places a little further on (kept with
//! the shape: where in a run, the rest of that run, the stack there) with the same stack and
//! the rest of that run next in the row; there the walk goes on along the shape. A row walks,
//! leaves and meets the shape again as often as it differs, so rows that vary as the sink
//! bench's events do stay on the shape for most of their bytes. A row the walk left at its
//! first run is learned, when the one pass accepts it; one that left later is not (learning
//! cost more than it saved on varying events), and a row refused leaves the shape as it was.
//! When [`POOR_ROWS`] rows in a row were walked for less than an eighth of their bytes (rows of
//! no one shape), rows go to the one pass alone for [`REST_ROWS`] rows, then a shape is
//! learned afresh. A value's scan that fails where the one pass would make the same scan (a
//! string after its quote, a number from `-` or a digit, a literal from `t`, `f` or `n`) is the
//! one pass's answer.
//!
//! **Why a row the walk accepts is one the one pass accepts.** The one pass is a machine whose
//! state at each byte (the stack of open objects and arrays, and what may come next) follows
//! from the bytes before it. Walk the new row and the shape's row side by side: at the start of
//! each run both are in the same state (at the start of the row, by definition; after a value,
//! by the step below; where the row met the shape again, by the next paragraph); a run is the
//! very bytes the one pass accepted from that state in the shape's row, so it accepts them
//! again and ends in the same state. The one pass looks past a
//! run's end only at the first byte of a number or a literal (white space ends there, an array
//! just opened is empty if it is `]`, and it picks the value's kind by it), and the walk scans
//! a number only from `-` or a digit and a literal only from `t`, `f` or `n`, which is where
//! the one pass would go too. Where another kind of value stands, the one pass takes over
//! there as from any value's start, except at a `]` (after white space): after an opening `[`
//! the one pass reads it as the array's end (the tests found this), so such a row goes to the
//! one pass from its start. A value's scan
//! is the one pass's own function from that same state, ending where the one pass's would; a
//! scalar changes no stack, so after it both are again in the same state. At the end the one
//! pass asks that nothing follow the value, and so does the walk. The same correspondence
//! gives the state the one pass takes over in.
//!
//! **Why meeting again keeps that.** Just after a value (a scalar read, or an object or array
//! closed) the one pass's state is the stack open there and nothing else: what may come next
//! (white space, a comma, a closing of the innermost, or the end at the top) follows from the
//! stack alone. The places kept with the shape are the one pass's own such places in the
//! shape's row, each with its stack as the one pass had it; the row meets one only where the
//! one pass, reading the row, is at such a place with the same stack, so both rows are in the
//! same state there, and the walk goes on from that place under the argument above: the rest
//! of the run matched is bytes the one pass accepted in that same state.
//!
//! **Line breaks.** Raw ones stand only in white space, all of it in the runs; each run (and
//! each rest of a run after a place) carries whether it holds one, the walk adds those it
//! matched and the one pass those it read, so the answer about line breaks is the row's own.
//! So the walk accepts only rows the one pass accepts, with the same answer about line
//! breaks; everything else the one pass decides itself.
//!
//! The shape is kept per thread: a partition's worker checks its rows one after another on
//! its thread. Rows over [`MOST_BYTES`] or of more than [`MOST_VALUES`] values are not learned
//! (with its places, the shape's memory stays under about half a MB a thread).

use std::cell::RefCell;

use super::sync::{Learning, Sync, Watch};
use super::{one_pass, Scan, Stack};

/// The longest row whose shape is learned.
pub(super) const MOST_BYTES: usize = 64 << 10;
/// The most values a learned shape holds.
pub(super) const MOST_VALUES: usize = 4_096;
/// A walk that stops before this part of the row (1/`POOR_PART`) saves little.
const POOR_PART: usize = 8;
/// Rows in a row whose walk saved little before the shape rests.
const POOR_ROWS: u32 = 8;
/// Rows that then go to the one pass alone, before a shape is learned afresh.
const REST_ROWS: u32 = 256;
/// Zero bytes after the runs, so that a 16-byte load from any run's start stays inside.
const PAD: usize = 16;

/// What a scalar value is, as the one pass tells it to [`super::Values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A string (after its opening quote, through its closing one).
    String,
    /// A number, its minus sign included.
    Number,
    /// `true`, `false` or `null`.
    Literal,
}

/// A value of a shape: the run before it (where it starts in the runs, its length, whether it
/// holds a line break), its kind, and the one pass's state at it (the same as after it: a
/// scalar opens and closes nothing).
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    pub(super) run_at: u32,
    pub(super) run: u32,
    pub(super) run_breaks: bool,
    pub(super) kind: Kind,
    pub(super) depth: u32,
    pub(super) top: u64,
}

/// How far a row walked along a shape.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Walk {
    /// To its end: the one pass's answer.
    Done(Option<bool>),
    /// Up to `at`, where the one pass takes over in the state the shape's row had there (with
    /// `breaks`: whether the row's white space so far held a line break); the shape's places
    /// after the value, from `sync` on, are where the row may meet it again.
    Resume {
        at: usize,
        stack: (u64, u32),
        after_value: bool,
        breaks: bool,
        sync: usize,
    },
    /// Not past the first run: the one pass from the start.
    Start,
}

/// Where a walk starts: at `i` in the row, with the rest of a run (`at`, `len`, whether it
/// holds a line break) then the value of step `k` (or the row's end) to come, in the one
/// pass's state after a value with `state` open (`None`: the row's start).
#[derive(Debug, Clone, Copy)]
struct Entry {
    i: usize,
    k: usize,
    at: usize,
    len: usize,
    run_breaks: bool,
    state: Option<(u64, u32)>,
    breaks: bool,
}

/// The previous accepted row's shape (the module docs), and the room to learn the next.
#[derive(Debug, Default)]
pub(super) struct Shape {
    /// The runs one after another, then [`PAD`] zero bytes; empty while none is known.
    pub(super) runs: Vec<u8>,
    /// Each value: the run before it, its kind and the state there.
    pub(super) steps: Vec<Step>,
    /// Where the run after the last value starts, its length, and whether it holds a line break.
    pub(super) tail_at: usize,
    pub(super) tail: usize,
    pub(super) tail_breaks: bool,
    /// The places in the runs where a value has just ended, in order ([`Sync`]).
    pub(super) syncs: Vec<Sync>,
    /// Rows in a row whose walk stopped in their first part ([`Shape::note_poor`]).
    poor: u32,
    /// Rows still to go to the one pass alone.
    rest: u32,
    /// The values and places of the row being learned, kept to reuse their memory.
    learning: Learning,
    /// Times a row met the shape again after leaving it, to see the tests reach that way.
    #[cfg(test)]
    pub(super) met: usize,
}

thread_local! {
    static SHAPE: RefCell<Shape> = RefCell::default();
}

/// [`Shape::check`] with this thread's shape.
pub(super) fn check_on_this_thread(bytes: &[u8]) -> Option<bool> {
    SHAPE.with(|shape| match shape.try_borrow_mut() {
        Ok(mut shape) => shape.check(bytes),
        Err(_) => one_pass(bytes),
    })
}

impl Shape {
    /// What the one pass says of `bytes` ([`super::line_breaks_of_one_value`]): by the shape
    /// where the row has it, the one pass between (meeting the shape again where it can),
    /// else by the one pass from the start, learning the row's shape if it is one value.
    pub(super) fn check(&mut self, bytes: &[u8]) -> Option<bool> {
        if self.rest > 0 {
            self.rest -= 1;
            if self.rest == 0 {
                // Learn afresh from the next row.
                self.runs.clear();
                self.steps.clear();
            }
            return one_pass(bytes);
        }
        let mut entry = self.start();
        let mut walked = 0;
        loop {
            let from = entry.i;
            match self.walk_from(bytes, entry) {
                Walk::Done(answer) => {
                    // Counted as any walk: a row that meets the shape only at its end (a
                    // closing brace) is not of this shape.
                    self.note_poor(walked + bytes.len() - from < bytes.len() / POOR_PART);
                    return answer;
                }
                Walk::Start => break,
                Walk::Resume {
                    at,
                    stack: (top, depth),
                    after_value,
                    breaks,
                    sync,
                } => {
                    walked += at - from;
                    let mut scan = Scan::new(bytes, Watch::new(self, sync));
                    (scan.i, scan.breaks) = (at, breaks);
                    let ok = scan.resume(Stack::from_word(top, depth), after_value);
                    let (found, i, breaks) = (scan.values.found, scan.i, scan.breaks);
                    match found {
                        Some(c) if ok => {
                            #[cfg(test)]
                            {
                                self.met += 1;
                            }
                            entry = self.entry_at(c, i, breaks);
                        }
                        _ => {
                            self.note_poor(walked < bytes.len() / POOR_PART);
                            return ok.then_some(breaks);
                        }
                    }
                }
            }
        }
        self.note_poor(walked < bytes.len() / POOR_PART);
        if bytes.len() > MOST_BYTES {
            return one_pass(bytes);
        }
        let mut scan = Scan::new(bytes, std::mem::take(&mut self.learning));
        scan.values.clear();
        let ok = scan.document();
        let breaks = scan.breaks;
        let learning = scan.values;
        if ok && learning.fits() {
            self.learn(bytes, &learning, breaks);
        }
        self.learning = learning;
        ok.then_some(breaks)
    }

    /// Counts rows in a row whose walk was `poor` (stopped in the row's first part); after
    /// [`POOR_ROWS`] of them, rows go to the one pass alone for [`REST_ROWS`] rows, then a
    /// shape is learned afresh.
    fn note_poor(&mut self, poor: bool) {
        if !poor {
            self.poor = 0;
            return;
        }
        self.poor += 1;
        if self.poor >= POOR_ROWS {
            self.poor = 0;
            self.rest = REST_ROWS;
        }
    }

    /// How far `bytes` walk along the shape from their start, alone (the module docs).
    #[cfg(test)]
    pub(super) fn walk(&self, bytes: &[u8]) -> Walk {
        self.walk_from(bytes, self.start())
    }

    /// The walk's start: the row's, with the first run to come.
    fn start(&self) -> Entry {
        let (at, len, run_breaks) = self.run(0);
        Entry {
            i: 0,
            k: 0,
            at,
            len,
            run_breaks,
            state: None,
            breaks: false,
        }
    }

    /// The walk's start at place `c` of [`Self::syncs`], where the row is at `i` with `breaks`.
    fn entry_at(&self, c: usize, i: usize, breaks: bool) -> Entry {
        let s = &self.syncs[c];
        Entry {
            i,
            k: s.k as usize,
            at: s.at as usize,
            len: s.len as usize,
            run_breaks: s.breaks,
            state: Some((s.top, s.depth)),
            breaks,
        }
    }

    /// The run before step `k`'s value (the tail after the last): where, how long, and
    /// whether it holds a line break.
    fn run(&self, k: usize) -> (usize, usize, bool) {
        match self.steps.get(k) {
            Some(step) => (step.run_at as usize, step.run as usize, step.run_breaks),
            None => (self.tail_at, self.tail, self.tail_breaks),
        }
    }

    /// The first of [`Self::syncs`] at or past `at` in the runs.
    fn syncs_from(&self, at: usize) -> usize {
        self.syncs.partition_point(|s| (s.at as usize) < at)
    }

    /// How far `bytes` walk along the shape from `e` (the module docs).
    fn walk_from(&self, bytes: &[u8], e: Entry) -> Walk {
        if self.runs.is_empty() {
            return Walk::Start;
        }
        let mut scan = Scan::new(bytes, ());
        scan.i = e.i;
        let (mut at, mut len, mut run_breaks) = (e.at, e.len, e.run_breaks);
        let mut breaks = e.breaks;
        // The one pass's state before the run being compared: the entry's, then each value's.
        let left_at = |i: usize, at: usize, k: usize, breaks: bool| match k
            .checked_sub(e.k + 1)
            .map(|_| &self.steps[k - 1])
        {
            Some(before) => self.resume_after(i, before, at, breaks),
            None => match e.state {
                Some(stack) => Walk::Resume {
                    at: i,
                    stack,
                    after_value: true,
                    breaks,
                    sync: self.syncs_from(at),
                },
                None => Walk::Start,
            },
        };
        for (k, step) in self.steps.iter().enumerate().skip(e.k) {
            if !self.same(bytes, scan.i, at, len) {
                return left_at(scan.i, at, k, breaks);
            }
            scan.i += len;
            breaks |= run_breaks;
            // Where the value's first byte picks the one pass's way, a failure is its
            // answer; a first byte of another kind is another value for the one pass.
            let ok = match (step.kind, scan.peek()) {
                (Kind::String, _) => scan.string(),
                (Kind::Number, Some(b'-')) => {
                    scan.i += 1;
                    scan.number()
                }
                (Kind::Number, Some(b'0'..=b'9')) => scan.number(),
                (Kind::Literal, Some(c @ (b't' | b'f' | b'n'))) => scan.literal_at(c),
                // Right after an array's opening, `]` (after white space) closes it empty, a
                // state the shape's row never was in: the one pass from the start (the module
                // docs).
                _ if bytes[scan.i..]
                    .iter()
                    .find(|c| !matches!(c, b' ' | b'\n' | b'\t' | b'\r'))
                    == Some(&b']') =>
                {
                    return Walk::Start
                }
                _ => {
                    return Walk::Resume {
                        at: scan.i,
                        stack: (step.top, step.depth),
                        after_value: false,
                        breaks,
                        sync: self.syncs_from(self.run(k + 1).0),
                    };
                }
            };
            if !ok {
                return Walk::Done(None);
            }
            (at, len, run_breaks) = self.run(k + 1);
        }
        let k = self.steps.len();
        if !self.same(bytes, scan.i, at, len) {
            return left_at(scan.i, at, k, breaks);
        }
        scan.i += len;
        breaks |= run_breaks;
        if scan.i == bytes.len() {
            return Walk::Done(Some(breaks));
        }
        // Only white space may follow, which the one pass decides.
        Walk::Resume {
            at: scan.i,
            stack: (0, 0),
            after_value: true,
            breaks,
            sync: self.syncs.len(),
        }
    }

    /// [`Walk::Resume`] after the value of `before`, at `i` in the row and `at` in the runs.
    fn resume_after(&self, i: usize, before: &Step, at: usize, breaks: bool) -> Walk {
        Walk::Resume {
            at: i,
            stack: (before.top, before.depth),
            after_value: true,
            breaks,
            // The place left is a candidate too: a row with an element more meets it after
            // that element.
            sync: self.syncs_from(at),
        }
    }

    /// Whether no shape is known (none learned yet, or forgotten after a rest).
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// What the shape is, to compare.
    #[cfg(test)]
    pub(super) fn learned(&self) -> String {
        format!(
            "{:?} {:?} {} {:?}",
            self.runs, self.steps, self.tail, self.syncs
        )
    }

    /// Whether `bytes[i..]` starts with the `len` bytes of the runs at `at`.
    #[inline(always)]
    pub(super) fn same(&self, bytes: &[u8], i: usize, at: usize, len: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        if len <= 16 && i + 16 <= bytes.len() {
            return same16(&bytes[i..i + 16], &self.runs[at..at + 16], len);
        }
        bytes.get(i..i + len) == Some(&self.runs[at..at + len])
    }

    /// Keeps the shape of `bytes`, which the one pass accepted telling `learning` its values
    /// and places.
    fn learn(&mut self, bytes: &[u8], learning: &Learning, breaks: bool) {
        // A row without line breaks has none in any run: no need to look.
        let has_breaks = |run: &[u8]| breaks && has_breaks(run);
        self.runs.clear();
        self.steps.clear();
        let mut from = 0;
        for span in &learning.spans {
            let (start, end) = (span.start as usize, span.end as usize);
            let (top, depth) = span.stack.unwrap_or_default();
            let run = &bytes[from..start];
            self.steps.push(Step {
                run_at: self.runs.len() as u32,
                run: run.len() as u32,
                run_breaks: has_breaks(run),
                kind: span.kind,
                depth,
                top,
            });
            self.runs.extend_from_slice(run);
            from = end;
        }
        self.tail_at = self.runs.len();
        self.tail = bytes.len() - from;
        self.tail_breaks = has_breaks(&bytes[from..]);
        self.runs.extend_from_slice(&bytes[from..]);
        self.runs.extend_from_slice(&[0; PAD]);
        let syncs = std::mem::take(&mut self.syncs);
        self.syncs = learning.syncs(self, bytes, breaks, syncs);
    }
}

/// Whether `run` holds a line feed or a carriage return.
pub(super) fn has_breaks(run: &[u8]) -> bool {
    run.iter().any(|&c| c == b'\n' || c == b'\r')
}

/// Whether the first `len` (at most 16) of the 16 bytes `a` and `b` are the same.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn same16(a: &[u8], b: &[u8], len: usize) -> bool {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8};
    assert!(a.len() >= 16 && b.len() >= 16 && len <= 16);
    // SAFETY: both loads read 16 bytes that `a` and `b` hold (asserted above), and
    // `_mm_loadu_si128` needs no alignment; SSE2 is part of every x86_64 target.
    #[allow(unsafe_code, reason = "SSE2 compares 16 bytes of a run at once")]
    let equal = unsafe {
        _mm_movemask_epi8(_mm_cmpeq_epi8(
            _mm_loadu_si128(a.as_ptr().cast()),
            _mm_loadu_si128(b.as_ptr().cast()),
        ))
    } as u32;
    let want = (1u32 << len) - 1;
    equal & want == want
}
