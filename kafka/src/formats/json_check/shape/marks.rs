//! The shape's [`Mark`]s: its row's objects opening and closing and their keys, in the runs'
//! order, learned with the shape's [`Point`]s in one scan of each run, and told to a row's
//! [`Keys`] for the parts the walk took of it (the parent module's docs, "Keys named twice").

use super::super::keys::tag_of;
use super::{Keys, Point, Shape, Stack};

/// An object opening or closing, or a key, in the shape's runs ([`Shape::replay`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark {
    /// Where in the runs: the `{`, the `}`, or the key's opening quote.
    at: u32,
    what: What,
}

#[derive(Debug, Clone, Copy)]
enum What {
    /// `{`, with the index of the mark that closes it and where that `}` is.
    Open {
        close: u32,
        close_at: u32,
    },
    Close,
    /// A key of an object inside the outermost one (the outermost object's keys are in
    /// [`Shape::outermost`]), its text from just after `at` to `end`.
    Key {
        end: u32,
        escaped: bool,
        tag: u64,
    },
}

impl Shape {
    /// Whether no key the row's outermost object named itself is one of the shape's outermost
    /// object's keys in a `walked` part ([`Keys::back_outermost`]).
    pub(super) fn outermost_once(&self, keys: &Keys<'_>, walked: &[(usize, usize)]) -> bool {
        keys.suspects().iter().all(|&k| {
            let Some(key) = self.outermost.get(k) else {
                return true;
            };
            let at = key.start as usize - 1;
            !walked.iter().any(|&(from, to)| from <= at && at < to)
        })
    }

    /// Tells `keys` the shape's row's objects and keys in the runs from `from` to `to`, a part
    /// a row was walked along (the module docs): whether each key is new in its object. An
    /// object that opens and closes in between is skipped: the shape's row's own, its keys
    /// checked when it was learned.
    pub(super) fn replay(&self, keys: &mut Keys<'_>, from: usize, to: usize) -> bool {
        let mut k = self.marks.partition_point(|m| (m.at as usize) < from);
        while let Some(m) = self.marks.get(k) {
            if m.at as usize >= to {
                break;
            }
            k += 1;
            match m.what {
                What::Open { close, close_at } => {
                    if (close_at as usize) < to {
                        k = close as usize + 1;
                    } else {
                        keys.open();
                    }
                }
                What::Close => keys.close(),
                What::Key { end, escaped, tag } => {
                    let start = m.at as usize + 1;
                    if !keys.is_new_in_shape(start, end as usize, escaped, tag) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Each `{`'s mark learns which mark closes it, and where.
    pub(super) fn link_marks(&mut self) {
        let mut open = Vec::new();
        for k in 0..self.marks.len() {
            match self.marks[k].what {
                What::Open { .. } => open.push(k),
                What::Close => {
                    if let Some(o) = open.pop() {
                        let close_at = self.marks[k].at;
                        self.marks[o].what = What::Open {
                            close: k as u32,
                            close_at,
                        };
                    }
                }
                What::Key { .. } => {}
            }
        }
    }

    /// Keeps the [`Point`]s of `run`, the run before step `step` about to be appended to the
    /// runs, which starts with the objects and arrays `before` open: after each `}` or `]`
    /// outside its keys (a run holds keys whole, and a string value's opening quote last).
    pub(super) fn points_in(&mut self, run: &[u8], step: usize, before: (u64, u32)) {
        let mut stack = Stack::from_word(before.0, before.1);
        let (mut in_key, mut escaped) = (false, false);
        // The key being read: where its opening quote is, and whether it has an escape.
        let (mut key_at, mut key_escaped) = (0, false);
        let base = self.runs.len();
        for (k, &c) in run.iter().enumerate() {
            if in_key {
                key_escaped |= c == b'\\';
                (in_key, escaped) = (escaped || c != b'"', !escaped && c == b'\\');
                if !in_key {
                    let (at, end) = (base + key_at, base + k);
                    let tag = tag_of(&run[key_at + 1..k], key_escaped);
                    if stack.depth == 1 {
                        self.outermost.push(at + 1, end, key_escaped, tag);
                    } else {
                        self.marks.push(Mark {
                            at: at as u32,
                            what: What::Key {
                                end: end as u32,
                                escaped: key_escaped,
                                tag,
                            },
                        });
                    }
                }
                continue;
            }
            match c {
                b'"' => (in_key, key_at, key_escaped) = (true, k, false),
                b'{' | b'[' => {
                    stack.push(c == b'{');
                    if c == b'{' {
                        let at = (base + k) as u32;
                        let what = What::Open {
                            close: u32::MAX,
                            close_at: u32::MAX,
                        };
                        self.marks.push(Mark { at, what });
                    }
                }
                b'}' | b']' if stack.depth > 0 => {
                    if c == b'}' {
                        let at = (base + k) as u32;
                        self.marks.push(Mark {
                            at,
                            what: What::Close,
                        });
                    }
                    stack.pop();
                    if let Some((top, depth)) = stack.as_word() {
                        self.points.push(Point {
                            at: (base + k + 1) as u32,
                            step: step as u32,
                            rest: (run.len() - k - 1) as u32,
                            top,
                            depth,
                        });
                    }
                }
                _ => {}
            }
        }
    }
}
