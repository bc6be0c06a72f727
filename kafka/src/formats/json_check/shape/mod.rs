//! Shape speculation: rows of one topic share their keys and their layout, so the previous
//! accepted row's shape is tried on the next one before the one pass.
//!
//! **A shape** is an accepted row cut at its scalar values (strings, numbers, `true`, `false`,
//! `null`; not objects or arrays): the runs of bytes between them (`{"event_id":"`,
//! `","ts":`, `},"tags":["`, …; a string's quotes belong to the runs, its contents to the value)
//! and each value's kind. The next row is walked along it: each run compared with the row's
//! bytes (16 at a time), each value scanned by the one pass's own scan for its kind, with every
//! check it makes (escapes, UTF-8, control bytes, the number grammar); at the end the row must
//! end where the last run does. Where the row leaves the shape (a run differs, a value is of
//! another kind, the row goes on), the one pass takes over at the start of that run or value,
//! in the state the shape's row had there (the open objects and arrays, kept with each value,
//! and whether white space so far held a line break), so a row that shares only its start
//! with the previous one still saves that start. **The one pass hands the row back** where
//! the part that differed ends (a user id of another kind, an array of other length): the
//! shape keeps its [`Point`]s, each place in its runs just after a `}` or `]` with the stack
//! there, and the one pass, taken on from a value with `d` objects and arrays open, stops just
//! after any `}` or `]` that leaves fewer than `d + 1` open; when a point further on in the
//! shape has that same stack, the walk goes on from that point (comparing the rest of its
//! run first), else the one pass goes on (at most [`MOST_HANDBACKS`] stops a row, each
//! looking at most [`POINTS_AHEAD`] points ahead). Only for shapes without line breaks, so
//! that the row's line breaks are the one pass's. A row the walk did not reach the end of is
//! not learned (learning the rest cost more than the next row's walk saved, on events that
//! vary as the sink bench's do); a row whose walk stopped at its first run is, when the one
//! pass accepts it, and a row it refuses leaves the shape as it was. When [`POOR_ROWS`] rows in
//! a row stop in their first eighth (rows of no one shape), rows go to the one pass alone for
//! [`REST_ROWS`] rows, then a shape is learned afresh. A value's scan that fails where the
//! one pass would make the same scan (a string after its quote, a number from `-` or a digit,
//! a literal from `t`, `f` or `n`) is the one pass's answer.
//!
//! **Keys named twice** ([`super::keys`]). A row the walk takes whole has the shape's row's
//! keys, each object's checked when the shape was learned. A row the walk takes part of gets
//! the one pass's key check where the one pass reads it, and, for each part the walk took,
//! the shape's [`Mark`]s of that part (its objects opening and closing, their keys), so that
//! the keys of an object the walk and the one pass share are all compared: a walked part's
//! keys are the shape's very bytes, compared where they stand in the shape's runs. An object
//! that opens and closes inside one walked part is the shape's row's own, and is skipped. The
//! outermost object's keys, most of a row's marks, are not told one by one: every walked part
//! of the row's outermost object is the shape's outermost object, whose keys are distinct, so
//! only the row's own keys there (read by the one pass) can name one twice. Each is compared
//! with the shape's outermost keys as it is read, and one it names counts against the row
//! when the row was walked where that key stands ([`Shape::outermost_once`]).
//!
//! **Why a row the walk accepts is one the one pass accepts.** The one pass is a machine whose
//! state at each byte (the stack of open objects and arrays, and what may come next) follows
//! from the bytes before it. Walk the new row and the shape's row side by side: at the start of
//! each run both are in the same state (at the start of the row, by definition; after a value,
//! by the step below); a run is the very bytes the one pass accepted from that state in the
//! shape's row, so it accepts them again and ends in the same state. The one pass looks past a
//! run's end only at the first byte of a number or a literal (white space ends there, an array
//! just opened is empty if it is `]`, and it picks the value's kind by it), and the walk scans
//! a number only from `-` or a digit and a literal only from `t`, `f` or `n`, which is where
//! the one pass would go too. Where another kind of value stands, the one pass takes over
//! there as from any value's start, except at a `]` (after white space): after an opening `[` the one pass reads it
//! as the array's end (the tests found this), so such a row goes to the one pass from its
//! start. A value's scan
//! is the one pass's own function from that same state, ending where the one pass's would; a
//! scalar changes no stack, so after it both are again in the same state. At the end the one
//! pass asks that nothing follow the value, and so does the walk. The same correspondence
//! gives the state the one pass takes over in. Raw line breaks stand only
//! in white space, all of it in the runs, so the new row has them exactly when the shape's row
//! did. So the walk accepts only rows the one pass accepts, with the same answer about line
//! breaks; everything else the one pass decides itself.
//!
//! **Why a handed-back row is judged as by the one pass.** Just after a `}` or `]` the one
//! pass's state is its stack alone (what may come next follows from the innermost open value),
//! and stopping there reads nothing more; the stop only watches. A point is such a place in
//! the shape's row, its stack counted at learning over the runs (keys skipped whole). So where
//! the one pass stops with a point's stack, the row and the shape's row are in the same state,
//! which is all the walk's argument above asks at the start of a run: from there the walk
//! accepts only what the one pass would. Line breaks: the shape has none, so those of the row
//! are exactly those the one pass met.
//!
//! The shape is kept per thread: a partition's worker checks its rows one after another on
//! its thread. Rows over [`MOST_BYTES`] or of more than [`MOST_VALUES`] values are not learned,
//! so the shape's memory stays within about 3 MB a thread: its runs at most 64 KiB, a step a
//! value, and a point or a mark (24 bytes each) at most for each `{`, `}`, `]` and key of the
//! runs (a row of nothing but empty objects has the most, about 24 bytes a byte of the row,
//! twice that with the vectors' room to grow).

use std::cell::RefCell;

mod marks;

use super::keys::{Keys, Outermost};
use super::{one_pass, Scan, Stack, Values};
use marks::Mark;

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
/// The most times the one pass stops to hand a row back to the walk ([`Shape::resynced`]).
const MOST_HANDBACKS: u32 = 8;
/// The points looked at for each stop ([`Shape::resynced`]).
const POINTS_AHEAD: usize = 64;
/// Zero bytes after the runs, so that a 16-byte load from any run's start stays inside.
const PAD: usize = 16;

/// What a scalar value is, as the one pass tells it to [`Values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A string (after its opening quote, through its closing one).
    String,
    /// A number, its minus sign included.
    Number,
    /// `true`, `false` or `null`.
    Literal,
}

/// A value the one pass read: its kind, its bytes, and the one pass's state there.
#[derive(Debug, Clone, Copy)]
struct Span {
    kind: Kind,
    start: u32,
    end: u32,
    /// The objects and arrays open around it ([`Stack::as_word`]); `None` deeper than 64.
    stack: Option<(u64, u32)>,
    /// White space before it held a line break.
    breaks: bool,
}

/// The spans of one row, kept only up to one past [`MOST_VALUES`] (more are not learned).
impl Values for Vec<Span> {
    #[inline(always)]
    fn value(&mut self, kind: Kind, start: usize, end: usize, stack: &Stack, breaks: bool) {
        if self.len() <= MOST_VALUES {
            // Rows over `MOST_BYTES` are never recorded, so both fit.
            self.push(Span {
                kind,
                start: start as u32,
                end: end as u32,
                stack: stack.as_word(),
                breaks,
            });
        }
    }
}

/// A value of a shape: the run before it, its kind, and the one pass's state at it (the same
/// as after it: a scalar opens and closes nothing).
#[derive(Debug, Clone, Copy)]
struct Step {
    run: u32,
    /// The length of the run after it (the next step's, or the tail).
    after: u32,
    kind: Kind,
    depth: u32,
    top: u64,
    /// White space up to the value held a line break.
    breaks: bool,
}

impl Step {
    /// Where the one pass goes on from, at `at` in this step's state (`after_value`: from just
    /// after the value, else from where the value starts), and what of the shape still holds.
    /// `shape_at`: where in the runs the walk stopped.
    fn resume(&self, at: usize, after_value: bool, shape_at: usize) -> Walk {
        Walk::Resume {
            at,
            stack: (self.top, self.depth),
            after_value,
            breaks: self.breaks,
            shape_at,
        }
    }
}

/// A place in the runs just after an object or array closes, where the one pass may hand a
/// row back to the walk ([`Shape::resynced`]): the one pass's state there is its stack alone.
#[derive(Debug, Clone, Copy)]
struct Point {
    /// Where in the runs.
    at: u32,
    /// The step whose run holds it (the number of steps: the tail).
    step: u32,
    /// The bytes of that run after it.
    rest: u32,
    top: u64,
    depth: u32,
}

impl Point {
    /// The one pass from `at` in the state the shape's row had here.
    fn resume(&self, at: usize) -> Walk {
        Walk::Resume {
            at,
            stack: (self.top, self.depth),
            after_value: true,
            breaks: false,
            shape_at: self.at as usize,
        }
    }
}

/// How far a row walked along a shape.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Walk {
    /// To its end: the one pass's answer.
    Done(Option<bool>),
    /// Up to `at`, where the one pass takes over in the state the shape's row had there.
    /// `shape_at`: where in the shape's runs the row left them.
    Resume {
        at: usize,
        stack: (u64, u32),
        after_value: bool,
        breaks: bool,
        shape_at: usize,
    },
    /// Not past the first run: the one pass from the start.
    Start,
}

/// The previous accepted row's shape (the module docs), and the room to learn the next.
#[derive(Debug, Default)]
pub(super) struct Shape {
    /// The runs one after another, then [`PAD`] zero bytes; empty while none is known.
    runs: Vec<u8>,
    /// Each value: the run before it, its kind and the state there.
    steps: Vec<Step>,
    /// The length of the run after the last value.
    tail: usize,
    /// The shape's row had line breaks (in its white space, all in the runs).
    breaks: bool,
    /// Where the one pass may hand a row back to the walk, in the runs' order.
    points: Vec<Point>,
    /// The shape's row's objects and keys, in the runs' order.
    marks: Vec<Mark>,
    /// The keys of the shape's row's outermost object, when it is one.
    outermost: Outermost,
    /// Rows in a row whose walk stopped in their first part ([`Shape::note_poor`]).
    poor: u32,
    /// Rows still to go to the one pass alone.
    rest: u32,
    /// The spans of the row being learned, kept to reuse their memory.
    spans: Vec<Span>,
    /// Rows the one pass handed back to the walk, to test that it does.
    #[cfg(test)]
    pub(super) handbacks: std::cell::Cell<u32>,
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
    /// when the row has it, else by the one pass, learning the row's shape if it is one value.
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
        let walk = self.walk(bytes);
        let (at, stack, after_value, breaks, shape_at) = match walk {
            Walk::Done(answer) => {
                self.poor = 0;
                return answer;
            }
            Walk::Start => (0, Stack::default(), false, false, 0),
            Walk::Resume {
                at,
                stack: (top, depth),
                after_value,
                breaks,
                shape_at,
            } => (
                at,
                Stack::from_word(top, depth),
                after_value,
                breaks,
                shape_at,
            ),
        };
        let part_way = at > 0;
        self.note_poor(at < bytes.len() / POOR_PART);
        if part_way && !self.breaks {
            // Not learned either; the walk may take the row on again further.
            return self.resynced(bytes, walk);
        }
        if bytes.len() > MOST_BYTES || part_way {
            // A row that leaves the shape part way is not learned: learning the rest costs
            // more than the next row's walk would save, where rows vary.
            let mut keys = Keys::new(bytes, &self.runs);
            keys.back_outermost(&self.outermost);
            if !self.replay(&mut keys, 0, shape_at) {
                return None;
            }
            let mut scan = Scan::new(bytes, ());
            (scan.i, scan.breaks, scan.keys) = (at, breaks, Some(keys));
            let ok = scan.resume::<false>(stack, after_value);
            let walked = [(0, shape_at)];
            return (ok && self.outermost_once(scan.keys.as_ref()?, &walked))
                .then_some(scan.breaks);
        }
        let mut scan = Scan::new(bytes, std::mem::take(&mut self.spans));
        scan.keys = Some(Keys::new(bytes, &[]));
        scan.values.clear();
        let ok = scan.resume::<false>(stack, after_value);
        let breaks = scan.breaks;
        let spans = scan.values;
        if ok && spans.len() <= MOST_VALUES && spans.iter().all(|s| s.stack.is_some()) {
            self.learn(bytes, &spans, breaks);
        }
        self.spans = spans;
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

    /// How far `bytes` walk along the shape (the module docs).
    pub(super) fn walk(&self, bytes: &[u8]) -> Walk {
        match self.steps.first() {
            _ if self.runs.is_empty() => Walk::Start,
            Some(first) => self.walk_from(bytes, 0, 0, 0, first.run as usize, None),
            None => self.walk_from(bytes, 0, 0, 0, self.tail, None),
        }
    }

    /// The walk from `i` in `bytes` and `at` in the runs, inside the run before step `first`
    /// (the tail when `first` is the number of steps), `len` bytes of which remain: from the
    /// row's start (`from` is `None`), or from a point where the one pass handed it back.
    fn walk_from(
        &self,
        bytes: &[u8],
        i: usize,
        mut at: usize,
        first: usize,
        len: usize,
        from: Option<&Point>,
    ) -> Walk {
        let mut scan = Scan::new(bytes, ());
        scan.i = i;
        // Where the walk stops before any value of its own: the state it started in.
        let at_start = |i: usize| from.map_or(Walk::Start, |p| p.resume(i));
        if !self.same(bytes, i, at, len) {
            return at_start(i);
        }
        scan.i += len;
        at += len;
        for step in &self.steps[first..] {
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
                    return step.resume(scan.i, false, at);
                }
            };
            if !ok {
                return Walk::Done(None);
            }
            let len = step.after as usize;
            if !self.same(bytes, scan.i, at, len) {
                return step.resume(scan.i, true, at);
            }
            scan.i += len;
            at += len;
        }
        if scan.i == bytes.len() {
            Walk::Done(Some(self.breaks))
        } else {
            // The row goes on after the tail: the one pass from the tail's start.
            match self.steps[first..].last() {
                Some(last) => last.resume(scan.i - self.tail, true, at - self.tail),
                None => at_start(i),
            }
        }
    }

    /// The rest of a row whose walk stopped part way ([`Walk::Resume`]), by the one pass,
    /// which hands the row back to the walk where an object or array closes at a [`Point`]
    /// of the shape further on with the same stack (at most [`MOST_HANDBACKS`] tries): its
    /// state there is the shape's row's, so the walk's argument holds from there (the module
    /// docs). Only for shapes without line breaks, so that the row's come from the one pass.
    fn resynced(&self, bytes: &[u8], mut walk: Walk) -> Option<bool> {
        let mut breaks = false;
        let mut tries = MOST_HANDBACKS;
        // The keys: the walked parts' from the shape's marks, from `from` in the runs on, the
        // parts being `walked[..parts]`.
        let mut keys = Keys::new(bytes, &self.runs);
        keys.back_outermost(&self.outermost);
        let mut from = 0;
        let mut walked = [(0, 0); MOST_HANDBACKS as usize + 1];
        let mut parts = 0;
        loop {
            // The walked part ends where the row left the shape, or at the shape's end.
            let to = match walk {
                Walk::Start => return one_pass(bytes),
                Walk::Done(_) => usize::MAX,
                Walk::Resume { shape_at, .. } => shape_at,
            };
            let Some(part) = walked.get_mut(parts) else {
                return one_pass(bytes);
            };
            *part = (from, to);
            parts += 1;
            if !self.replay(&mut keys, from, to) {
                return None;
            }
            let (at, (top, depth), after_value) = match walk {
                Walk::Start => return one_pass(bytes),
                Walk::Done(answer) => {
                    let once = self.outermost_once(&keys, &walked[..parts]);
                    return answer.map(|b| b || breaks).filter(|_| once);
                }
                Walk::Resume {
                    at,
                    stack,
                    after_value,
                    breaks: before,
                    ..
                } => {
                    breaks |= before;
                    (at, stack, after_value)
                }
            };
            let mut scan = Scan::new(bytes, ());
            (scan.i, scan.breaks, scan.keys) = (at, breaks, Some(keys));
            scan.stop_below = if tries > 0 { depth as usize + 1 } else { 0 };
            let (mut stack, mut after_value) = (Stack::from_word(top, depth), after_value);
            walk = loop {
                if scan.resume::<true>(stack, after_value) {
                    let once = self.outermost_once(scan.keys.as_ref()?, &walked[..parts]);
                    return once.then_some(scan.breaks);
                }
                let (top, depth) = scan.stopped.take()?;
                tries -= 1;
                // The points after where the row left the shape, a few (a hostile row's
                // shape may hold thousands).
                let ahead = self.points.partition_point(|p| p.at as usize <= to);
                let next = self.points[ahead..]
                    .iter()
                    .take(POINTS_AHEAD)
                    .find(|p| p.depth == depth && p.top == top);
                if let Some(p) = next {
                    #[cfg(test)]
                    self.handbacks.set(self.handbacks.get() + 1);
                    breaks = scan.breaks;
                    keys = scan.keys.take()?;
                    from = p.at as usize;
                    break self.walk_from(
                        bytes,
                        scan.i,
                        from,
                        p.step as usize,
                        p.rest as usize,
                        Some(p),
                    );
                }
                if tries == 0 {
                    scan.stop_below = 0;
                }
                (stack, after_value) = (Stack::from_word(top, depth), true);
            };
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
        format!("{:?} {:?} {}", self.runs, self.steps, self.tail)
    }

    /// Whether `bytes[i..]` starts with the `len` bytes of the runs at `at`.
    #[inline(always)]
    fn same(&self, bytes: &[u8], i: usize, at: usize, len: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        if len <= 16 && i + 16 <= bytes.len() {
            return same16(&bytes[i..i + 16], &self.runs[at..at + 16], len);
        }
        bytes.get(i..i + len) == Some(&self.runs[at..at + len])
    }
    /// Keeps the shape of `bytes`, which the one pass accepted reading `spans`.
    fn learn(&mut self, bytes: &[u8], spans: &[Span], breaks: bool) {
        self.runs.clear();
        self.steps.clear();
        self.points.clear();
        self.marks.clear();
        self.outermost.clear();
        let mut from = 0;
        let mut before = (0, 0);
        for span in spans {
            let (start, end) = (span.start as usize, span.end as usize);
            let (top, depth) = span.stack.unwrap_or_default();
            self.points_in(&bytes[from..start], self.steps.len(), before);
            before = (top, depth);
            self.runs.extend_from_slice(&bytes[from..start]);
            if let Some(last) = self.steps.last_mut() {
                last.after = (start - from) as u32;
            }
            self.steps.push(Step {
                run: (start - from) as u32,
                after: 0,
                kind: span.kind,
                depth,
                top,
                breaks: span.breaks,
            });
            from = end;
        }
        self.points_in(&bytes[from..], self.steps.len(), before);
        self.runs.extend_from_slice(&bytes[from..]);
        self.runs.extend_from_slice(&[0; PAD]);
        self.tail = bytes.len() - from;
        if let Some(last) = self.steps.last_mut() {
            last.after = self.tail as u32;
        }
        self.breaks = breaks;
        self.link_marks();
        self.outermost.seal(&self.runs);
    }
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
