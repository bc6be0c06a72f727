//! An object's keys, each at most once: the server (and Snowflake's `PARSE_JSON`, strict by
//! default) refuses an object that names a key twice at any depth as a row error
//! (`emulator/src/convert/strict_row.rs`), so the check refuses it first and the message
//! becomes a dead letter with its own partition and offset.
//!
//! Keys are compared as the text they stand for: `"a"` and `"\u0061"` are one key. A key
//! without a backslash is its own bytes; one with escapes is decoded (a lone surrogate, which
//! the check lets pass as serde_json does, as its three WTF-8 bytes, which no character's
//! UTF-8 equals). An object's first [`LINEAR_KEYS`] keys are compared one by one, each by a
//! [`tag`] of its length and end bytes before its bytes (most objects of a row have a few
//! dozen keys at most); past that, each key's hash goes into a set (seeded per
//! thread, so no input can aim collisions), a hit confirmed against the keys themselves. At
//! most [`MOST_KEYS`] keys of one object are tracked (`docs/SECURITY.md`'s caps table): the
//! keys after those are not checked (a duplicate among them the server refuses as a row
//! error).
//!
//! The keys are kept as ranges of the row's bytes in buffers each thread reuses (a [`Keys`]
//! takes them and gives them back when dropped), so checking a row allocates nothing once
//! its thread has checked a row as wide and as deep.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// Keys of one object compared one by one (by their [`tag`] first) before a hash set is built.
pub(super) const LINEAR_KEYS: usize = 32;
/// The most keys of one object tracked.
pub(super) const MOST_KEYS: usize = 65_536;

/// One key: where its text (between its quotes) is in the row, whether it has escapes, and
/// its [`tag`].
#[derive(Clone, Copy)]
struct Key {
    start: usize,
    end: usize,
    escaped: bool,
    tag: u64,
}

/// The buffers a thread's checks reuse.
#[derive(Default)]
struct Buffers {
    /// Every open object's keys so far, one after another.
    keys: Vec<Key>,
    /// For each open object: where its keys start in `keys`, and its set of key hashes once
    /// it has more than [`LINEAR_KEYS`].
    objects: Vec<(usize, Option<Hashes>)>,
    /// Sets of closed objects, empty, for the next wide object.
    spare: Vec<Hashes>,
}

/// A set of key hashes: each is already a keyed hash ([`SEED`]), so the set takes it as is.
type Hashes = HashSet<u64, BuildHasherDefault<Taken>>;

/// The hasher of [`Hashes`]: the value it is given, which is a hash already.
#[derive(Default)]
struct Taken(u64);

impl Hasher for Taken {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::default();
    /// The hash of keys, seeded once per thread.
    static SEED: RandomState = RandomState::new();
}

/// The keys of the objects open around the scan, innermost last: this thread's buffers,
/// given back when dropped.
pub(super) struct Keys {
    b: Buffers,
    hasher: RandomState,
}

impl Default for Keys {
    fn default() -> Self {
        let b = BUFFERS
            .try_with(|b| b.try_borrow_mut().map(|mut b| std::mem::take(&mut *b)).ok())
            .ok()
            .flatten()
            .unwrap_or_default();
        let hasher = SEED.try_with(RandomState::clone).unwrap_or_default();
        Self { b, hasher }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let mut b = std::mem::take(&mut self.b);
        b.keys.clear();
        for (_, set) in b.objects.drain(..) {
            if let Some(mut set) = set {
                set.clear();
                b.spare.push(set);
            }
        }
        let _ = BUFFERS.try_with(|cell| {
            if let Ok(mut cell) = cell.try_borrow_mut() {
                *cell = b;
            }
        });
    }
}

impl Keys {
    /// An object opens.
    pub(super) fn open(&mut self) {
        self.b.objects.push((self.b.keys.len(), None));
    }

    /// The innermost object closes.
    pub(super) fn close(&mut self) {
        if let Some((start, set)) = self.b.objects.pop() {
            self.b.keys.truncate(start);
            if let Some(mut set) = set {
                set.clear();
                self.b.spare.push(set);
            }
        }
    }

    /// The innermost object's next key, `row[start..end]` (between its quotes, checked
    /// already): whether it is new there.
    pub(super) fn is_new(&mut self, row: &[u8], start: usize, end: usize) -> bool {
        let (b, hasher) = (&mut self.b, &self.hasher);
        let Some((first, set)) = b.objects.last_mut() else {
            return true;
        };
        let seen = b.keys.len() - *first;
        if seen >= MOST_KEYS {
            return true;
        }
        let raw = &row[start..end];
        let escaped = memchr::memchr(b'\\', raw).is_some();
        let key = Key {
            start,
            end,
            escaped,
            tag: if escaped {
                tag(&decoded(raw))
            } else {
                tag(raw)
            },
        };
        let mine = &b.keys[*first..];
        if let Some(set) = set {
            let h = hash(hasher, row, key);
            if !set.insert(h) && mine.iter().any(|k| same(row, *k, key)) {
                return false;
            }
        } else if mine.iter().any(|k| k.tag == key.tag && same(row, *k, key)) {
            return false;
        } else if seen + 1 > LINEAR_KEYS {
            let mut all = b.spare.pop().unwrap_or_default();
            all.extend(mine.iter().map(|k| hash(hasher, row, *k)));
            all.insert(hash(hasher, row, key));
            *set = Some(all);
        }
        b.keys.push(key);
        true
    }
}

/// Whether `row`, one JSON value already checked, names no key twice in one object: a pass that
/// reads only what keys need (a `{` opens an object, a `}` closes one, a string followed by a
/// `:` is a key), jumping over everything else with `memchr`, for a row whose grammar was
/// checked without its keys (the shape's walk took part of it).
pub(super) fn once_in_checked(row: &[u8]) -> bool {
    let mut keys = Keys::default();
    let mut i = 0;
    while let Some(at) = memchr::memchr3(b'"', b'{', b'}', &row[i..]) {
        let at = i + at;
        match row[at] {
            b'{' => {
                keys.open();
                i = at + 1;
            }
            b'}' => {
                keys.close();
                i = at + 1;
            }
            _ => {
                let start = at + 1;
                let Some(end) = string_end(row, start) else {
                    return true;
                };
                i = end + 1;
                let next = row[i..]
                    .iter()
                    .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
                if next.is_some_and(|n| row[i + n] == b':') && !keys.is_new(row, start, end) {
                    return false;
                }
            }
        }
    }
    true
}

/// Where the string whose text starts at `row[start]` ends: the index of its closing quote.
fn string_end(row: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    loop {
        let at = i + memchr::memchr2(b'"', b'\\', &row[i..])?;
        if row[at] == b'"' {
            return Some(at);
        }
        // An escape: its next byte is never the end (`\"`, `\\`, `\u…`).
        i = at + 2;
        if i > row.len() {
            return None;
        }
    }
}

/// What two keys' texts must share to be one: their length and their first and last three
/// bytes, packed (a filter before the bytes are compared).
fn tag(text: &[u8]) -> u64 {
    let n = text.len();
    let at = |i: usize| u64::from(text.get(i).copied().unwrap_or(0));
    let back = |i: usize| u64::from(n.checked_sub(i + 1).map_or(0, |j| text[j]));
    ((n as u64 & 0xFFFF) << 48)
        | (at(0) << 40)
        | (at(1) << 32)
        | (at(2) << 24)
        | (back(0) << 16)
        | (back(1) << 8)
        | back(2)
}

/// Whether keys `a` and `b` of `row` stand for the same text.
fn same(row: &[u8], a: Key, b: Key) -> bool {
    let (ra, rb) = (&row[a.start..a.end], &row[b.start..b.end]);
    if !a.escaped && !b.escaped {
        return ra == rb;
    }
    decoded(ra) == decoded(rb)
}

/// The hash of the text key `k` of `row` stands for.
fn hash(hasher: &RandomState, row: &[u8], k: Key) -> u64 {
    let raw = &row[k.start..k.end];
    if k.escaped {
        hasher.hash_one(decoded(raw).as_ref())
    } else {
        hasher.hash_one(raw)
    }
}

/// The text a key's `raw` bytes (a JSON string's, between its quotes, already checked) stand
/// for, as UTF-8 (a lone surrogate as WTF-8).
pub(super) fn decoded(raw: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'\\', raw).is_none() {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = raw.get(i + 1).copied().unwrap_or(b'\\');
        i += 2;
        let simple = match e {
            b'b' => 0x08,
            b'f' => 0x0C,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = hex4(raw, i);
                i += 4;
                let mut code = u32::from(unit);
                if (0xD800..0xDC00).contains(&unit)
                    && raw.get(i..i + 2) == Some(b"\\u")
                    && (0xDC00..0xE000).contains(&hex4(raw, i + 2))
                {
                    let low = hex4(raw, i + 2);
                    code = 0x10000 + ((code - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    i += 6;
                }
                push_code(&mut out, code);
                continue;
            }
            other => other,
        };
        out.push(simple);
    }
    Cow::Owned(out)
}

/// The four hex digits at `raw[i..]` (checked already; 0 where there are none).
fn hex4(raw: &[u8], i: usize) -> u16 {
    raw.get(i..i + 4)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| u16::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

/// `code` as UTF-8, a surrogate as the same three-byte form (WTF-8).
fn push_code(out: &mut Vec<u8>, code: u32) {
    if let Some(c) = char::from_u32(code) {
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    } else {
        out.extend_from_slice(&[
            0xE0 | (code >> 12) as u8,
            0x80 | ((code >> 6) & 0x3F) as u8,
            0x80 | (code & 0x3F) as u8,
        ]);
    }
}
